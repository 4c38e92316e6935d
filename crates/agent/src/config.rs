//! Agent settings: config file < environment < command-line flag.

use serde::Deserialize;
use soam_proto::paths::Paths;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub paths: Paths,
    /// Service instances that may run at once.
    pub slots: u32,
    /// Socket 0666 and per-uid session ownership instead of a one-user agent.
    pub shared: bool,
    /// Seconds an unbound instance waits for work before it is stopped.
    pub instance_idle_timeout_s: u64,
    pub max_stored_sessions: Option<u64>,
    pub max_stored_tasks: Option<u64>,
    /// Bound on redb's page cache.
    pub store_cache_bytes: usize,
    /// Size the store file may reach; recoverable submissions and new sessions beyond it
    /// are refused.
    pub max_store_bytes: Option<u64>,
    /// Members of this group (by gid) are admins of a shared agent, as are root and the
    /// agent's own user.
    pub admin_gid: Option<u32>,
    /// Connections served at once; more are refused, so descriptors stay for admins
    /// and recovery.
    pub max_connections: u32,
    /// Connections one uid may hold at once in a shared agent, so no user can take them
    /// all.
    pub max_connections_per_user: u32,
    /// A connection that has not said hello by then is closed.
    pub handshake_timeout_ms: u64,
    /// The name or address cluster workers connect back to (default: this host's name).
    pub worker_host: Option<String>,
    /// The TCP port workers connect back to (0: any free port).
    pub worker_port: u16,
    /// The log file is rotated once it reaches this size.
    pub log_max_bytes: u64,
    /// Rotated log files kept beside it (`soamd.log.1` ..).
    pub log_keep: u32,
}

/// The config file's values, checked (see [`read_file`]).
#[derive(Debug, Default)]
struct FileConfig {
    slots: Option<u32>,
    shared: Option<bool>,
    instance_idle_timeout: Option<u64>,
    max_stored_sessions: Option<u64>,
    max_stored_tasks: Option<u64>,
    max_store_bytes: Option<u64>,
    store_cache_bytes: Option<usize>,
    admin_group: Option<String>,
    max_connections: Option<u32>,
    max_connections_per_user: Option<u32>,
    handshake_timeout_ms: Option<u64>,
    worker_host: Option<String>,
    worker_port: Option<u16>,
    log_max_bytes: Option<u64>,
    log_keep: Option<u32>,
}

/// The file as written: every value as its text and line, so that a bad one is refused
/// in the profiles' form (`FILE:LINE: key: 'value' is not valid (valid: RANGE)`) rather
/// than in the YAML reader's words.
type Raw = Option<serde_saphyr::Spanned<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    slots: Raw,
    shared: Raw,
    instance_idle_timeout: Raw,
    max_stored_sessions: Raw,
    max_stored_tasks: Raw,
    max_store_bytes: Raw,
    store_cache_bytes: Raw,
    admin_group: Raw,
    max_connections: Raw,
    max_connections_per_user: Raw,
    handshake_timeout_ms: Raw,
    worker_host: Raw,
    worker_port: Raw,
    log_max_bytes: Raw,
    log_keep: Raw,
}

/// Checks each key of `raw` against its range.
fn checked(raw: RawConfig, file: &Path) -> Result<FileConfig, String> {
    let bad = |key: &str, v: &serde_saphyr::Spanned<String>, valid: &str| {
        format!(
            "{}:{}: {key}: '{}' is not valid (valid: {valid})",
            file.display(),
            v.referenced.line(),
            v.value
        )
    };
    fn num<T: TryFrom<u64>>(
        key: &str,
        v: &Raw,
        lo: u64,
        hi: u64,
        bad: &dyn Fn(&str, &serde_saphyr::Spanned<String>, &str) -> String,
    ) -> Result<Option<T>, String> {
        let Some(v) = v else { return Ok(None) };
        let valid = if hi >= u64::from(u32::MAX) {
            format!("{lo} or more")
        } else {
            format!("{lo} to {hi}")
        };
        v.value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(key, v, &valid))
    }
    let flag = |key: &str, v: &Raw| -> Result<Option<bool>, String> {
        let Some(v) = v else { return Ok(None) };
        match v.value.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(bad(key, v, "true | false")),
        }
    };
    let text = |v: Raw| v.map(|v| v.value);
    Ok(FileConfig {
        slots: num("slots", &raw.slots, 1, 100_000, &bad)?,
        shared: flag("shared", &raw.shared)?,
        instance_idle_timeout: num("instanceIdleTimeout", &raw.instance_idle_timeout, 0, u64::MAX, &bad)?,
        max_stored_sessions: num("maxStoredSessions", &raw.max_stored_sessions, 0, u64::MAX, &bad)?,
        max_stored_tasks: num("maxStoredTasks", &raw.max_stored_tasks, 0, u64::MAX, &bad)?,
        max_store_bytes: num("maxStoreBytes", &raw.max_store_bytes, 0, u64::MAX, &bad)?,
        store_cache_bytes: num("storeCacheBytes", &raw.store_cache_bytes, 0, usize::MAX as u64, &bad)?,
        admin_group: text(raw.admin_group),
        max_connections: num("maxConnections", &raw.max_connections, 1, u32::MAX as u64, &bad)?,
        max_connections_per_user: num("maxConnectionsPerUser", &raw.max_connections_per_user, 1, u32::MAX as u64, &bad)?,
        handshake_timeout_ms: num("handshakeTimeoutMs", &raw.handshake_timeout_ms, 0, u64::MAX, &bad)?,
        worker_host: text(raw.worker_host),
        worker_port: num("workerPort", &raw.worker_port, 0, 65_535, &bad)?,
        log_max_bytes: num("logMaxBytes", &raw.log_max_bytes, 4096, u64::MAX, &bad)?,
        log_keep: num("logKeep", &raw.log_keep, 0, 100, &bad)?,
    })
}

/// What the command line said (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub slots: Option<u32>,
    pub shared: bool,
}

fn cpus() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
}

fn env_num<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| format!("{name}='{v}' is not a valid number")),
        _ => Ok(None),
    }
}

impl AgentConfig {
    /// Every setting at its default, with these paths (in-process agents, tests).
    pub fn with_paths(paths: Paths) -> AgentConfig {
        AgentConfig {
            paths,
            slots: cpus(),
            shared: false,
            instance_idle_timeout_s: 60,
            max_stored_sessions: None,
            max_stored_tasks: None,
            store_cache_bytes: 16 << 20,
            max_store_bytes: None,
            admin_gid: None,
            max_connections: 1024,
            max_connections_per_user: 64,
            handshake_timeout_ms: 10_000,
            worker_host: None,
            worker_port: 0,
            log_max_bytes: 10 << 20,
            log_keep: 3,
        }
    }

    pub fn load(o: &Overrides) -> Result<AgentConfig, String> {
        let paths = Paths::from_env();
        let file = o.config.clone().unwrap_or_else(|| paths.config.clone());
        let fc = read_file(&file, o.config.is_some())?;
        let slots = o.slots.or(env_num("SOAM_SLOTS")?).or(fc.slots).unwrap_or_else(cpus);
        if slots == 0 || slots > 100_000 {
            return Err(format!("slots: {slots} is out of range (valid: 1 to 100000)"));
        }
        let d = AgentConfig::with_paths(paths);
        let admin_gid = fc.admin_group.as_deref().map(crate::identity::group_gid).transpose()?;
        // The file's values were checked as it was read (`checked`).
        let max_connections = fc.max_connections.unwrap_or(d.max_connections);
        let max_connections_per_user = fc.max_connections_per_user.unwrap_or(d.max_connections_per_user);
        let log_max_bytes = fc.log_max_bytes.unwrap_or(d.log_max_bytes);
        let log_keep = fc.log_keep.unwrap_or(d.log_keep);
        Ok(AgentConfig {
            log_max_bytes,
            log_keep,
            slots,
            shared: o.shared || fc.shared.unwrap_or(false),
            instance_idle_timeout_s: env_num("SOAM_INSTANCE_IDLE_TIMEOUT")?
                .or(fc.instance_idle_timeout)
                .unwrap_or(d.instance_idle_timeout_s),
            max_stored_sessions: fc.max_stored_sessions,
            max_stored_tasks: fc.max_stored_tasks,
            max_store_bytes: fc.max_store_bytes,
            store_cache_bytes: fc.store_cache_bytes.unwrap_or(d.store_cache_bytes),
            admin_gid,
            max_connections,
            max_connections_per_user,
            handshake_timeout_ms: fc.handshake_timeout_ms.unwrap_or(d.handshake_timeout_ms),
            worker_host: std::env::var("SOAM_WORKER_HOST").ok().filter(|h| !h.is_empty()).or(fc.worker_host),
            worker_port: env_num("SOAM_WORKER_PORT")?.or(fc.worker_port).unwrap_or(d.worker_port),
            ..d
        })
    }
}

/// A config someone else could write would let them pick the admin group or the
/// limits: the file and its folder must belong to this user or root and be writable by
/// nobody else.
fn check_trusted(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    for p in [folder, path] {
        let Ok(m) = std::fs::metadata(p) else { continue };
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "config {}: {} belongs to uid {}, not to this user (uid {me}) or root; refusing it",
                path.display(),
                p.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "config {}: {} is writable by other users (mode {:o}); refusing it",
                path.display(),
                p.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, String> {
    if path.exists() {
        check_trusted(path)?;
    }
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(FileConfig::default()),
        Ok(text) => {
            let raw: RawConfig = serde_saphyr::from_str(&text).map_err(|e| {
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                let msg = e.to_string();
                let msg = msg.lines().next().unwrap_or("invalid config");
                // The reader's own "error: line L column C: " repeats what FILE:LINE says.
                let msg = msg.strip_prefix("error: ").unwrap_or(msg);
                let msg = match msg.split_once(": ") {
                    Some((at, rest)) if at.starts_with("line ") => rest,
                    _ => msg,
                };
                format!("{}:{line}: {msg}", path.display())
            })?;
            checked(raw, path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
        Err(e) => Err(format!("cannot read config {}: {e}", path.display())),
    }
}
