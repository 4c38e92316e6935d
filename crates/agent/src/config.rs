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
    /// Bytes of records the store may hold (`maxRecordBytes`); recoverable submissions
    /// and new sessions beyond it are refused.
    pub max_record_bytes: Option<u64>,
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
    /// Where Prometheus metrics are served (`metricsAddress`); `None`: nowhere.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// What the config file said that still works but should change (an old key's
    /// name): logged once the log is open.
    pub notes: Vec<String>,
}

/// One key of `soamd.yaml`, as soamd.yaml(5) describes it.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    pub key: &'static str,
    /// The values it takes, as a refusal names them (a test holds the two together).
    pub valid: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn k(key: &'static str, valid: &'static str, default: &'static str, meaning: &'static str) -> ConfigKey {
    ConfigKey {
        key,
        valid,
        default,
        meaning,
    }
}

/// Every key the agent's config file takes, in the order the page lists them.
pub const KEYS: &[ConfigKey] = &[
    k(
        "slots",
        "1 to 100000",
        "the number of CPUs",
        "Service instances that may run at once, one per slot. SOAM_SLOTS and soamd --slots win over it.",
    ),
    k(
        "shared",
        "true | false",
        "false",
        "One agent for every user of the host: its socket open to all, each session owned by the uid that made it \
         (docs/security.md). soamd --shared sets it too.",
    ),
    k(
        "instanceIdleTimeout",
        "0 or more",
        "60",
        "Seconds a service instance with no work waits before it is stopped. SOAM_INSTANCE_IDLE_TIMEOUT wins over it.",
    ),
    k(
        "maxStoredSessions",
        "0 or more",
        "no limit",
        "Open sessions held at once; a create beyond it is refused.",
    ),
    k(
        "maxStoredTasks",
        "0 or more",
        "no limit",
        "Tasks held in open sessions; a submission that would pass it is refused whole.",
    ),
    k(
        "maxRecordBytes",
        "0 or more",
        "no limit",
        "Bytes of records the store may hold (keys and values, counted by every commit); a new session, or a \
         recoverable submission that could pass it, is refused whole. Outputs of accepted tasks and history are \
         always written. It bounds the records, not the file: the file is larger by the store's pages and free \
         space (docs/usage.md). maxStoreBytes, its first name, is still read as it, with a warning in the log.",
    ),
    k(
        "storeCacheBytes",
        "0 or more",
        "16777216 (16 MiB)",
        "The store's page cache in memory.",
    ),
    k(
        "adminGroup",
        "a group name or gid",
        "none",
        "Members of this group are admins of a shared agent, as are root and the agent's own user.",
    ),
    k(
        "maxConnections",
        "1 or more",
        "1024",
        "Connections served at once; more are refused, so descriptors stay for admins and recovery.",
    ),
    k(
        "maxConnectionsPerUser",
        "1 or more",
        "64",
        "Connections one uid may hold at once in a shared agent.",
    ),
    k(
        "handshakeTimeoutMs",
        "0 or more",
        "10000",
        "Milliseconds a new connection has to say hello before it is closed.",
    ),
    k(
        "workerHost",
        "a host name or address",
        "this host's name",
        "Where cluster workers connect back to (docs/cluster.md). SOAM_WORKER_HOST wins over it.",
    ),
    k(
        "workerPort",
        "0 to 65535",
        "0 (any free port)",
        "The TCP port cluster workers connect back to. SOAM_WORKER_PORT wins over it.",
    ),
    k(
        "logMaxBytes",
        "4096 or more",
        "10485760 (10 MiB)",
        "The log file is rotated once it reaches this size.",
    ),
    k("logKeep", "0 to 100", "3", "Rotated log files kept beside it (soamd.log.1 ...)."),
    k(
        "metricsAddress",
        "PORT or ADDRESS:PORT",
        "none (no metrics served)",
        "Where the agent serves Prometheus metrics over HTTP, at /metrics (docs/usage.md, Metrics). A port alone \
         is on the loopback address (127.0.0.1); any other address is served as written, with a warning in the \
         log, since whoever reaches it sees every application's figures (docs/security.md).",
    ),
];

/// The config file's values, checked (see [`read_file`]).
#[derive(Debug, Default)]
struct FileConfig {
    slots: Option<u32>,
    shared: Option<bool>,
    instance_idle_timeout: Option<u64>,
    max_stored_sessions: Option<u64>,
    max_stored_tasks: Option<u64>,
    max_record_bytes: Option<u64>,
    /// The line `maxStoreBytes` (the key's old name) was read from, when it was.
    old_record_key: Option<u64>,
    store_cache_bytes: Option<usize>,
    admin_group: Option<String>,
    max_connections: Option<u32>,
    max_connections_per_user: Option<u32>,
    handshake_timeout_ms: Option<u64>,
    worker_host: Option<String>,
    worker_port: Option<u16>,
    log_max_bytes: Option<u64>,
    log_keep: Option<u32>,
    metrics_address: Option<std::net::SocketAddr>,
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
    max_record_bytes: Raw,
    /// `maxRecordBytes` under its first name, which said it bounded the file: read as
    /// `maxRecordBytes`, so a config written for an earlier release still works.
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
    metrics_address: Raw,
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
        // Said as a profile's ranges are.
        let valid = soam_profile::range_text(lo as i64, hi.min(i64::MAX as u64) as i64);
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
        max_record_bytes: match (&raw.max_record_bytes, &raw.max_store_bytes) {
            (Some(_), Some(old)) => {
                return Err(format!(
                    "{}:{}: maxStoreBytes: the old name of maxRecordBytes, which is given too (valid: only maxRecordBytes)",
                    file.display(),
                    old.referenced.line()
                ));
            }
            (None, Some(_)) => num("maxStoreBytes", &raw.max_store_bytes, 0, u64::MAX, &bad)?,
            _ => num("maxRecordBytes", &raw.max_record_bytes, 0, u64::MAX, &bad)?,
        },
        old_record_key: raw.max_store_bytes.as_ref().map(|v| v.referenced.line()),
        store_cache_bytes: num("storeCacheBytes", &raw.store_cache_bytes, 0, usize::MAX as u64, &bad)?,
        admin_group: text(raw.admin_group),
        max_connections: num("maxConnections", &raw.max_connections, 1, u32::MAX as u64, &bad)?,
        max_connections_per_user: num("maxConnectionsPerUser", &raw.max_connections_per_user, 1, u32::MAX as u64, &bad)?,
        handshake_timeout_ms: num("handshakeTimeoutMs", &raw.handshake_timeout_ms, 0, u64::MAX, &bad)?,
        worker_host: text(raw.worker_host),
        worker_port: num("workerPort", &raw.worker_port, 0, 65_535, &bad)?,
        log_max_bytes: num("logMaxBytes", &raw.log_max_bytes, 4096, u64::MAX, &bad)?,
        log_keep: num("logKeep", &raw.log_keep, 0, 100, &bad)?,
        metrics_address: match &raw.metrics_address {
            None => None,
            Some(v) => Some(metrics_address(&v.value).ok_or_else(|| bad("metricsAddress", v, "PORT or ADDRESS:PORT"))?),
        },
    })
}

/// `metricsAddress`: `PORT` (loopback) or `ADDRESS:PORT` (`[::1]:9464` for IPv6).
fn metrics_address(v: &str) -> Option<std::net::SocketAddr> {
    let v = v.trim();
    match v.parse::<u16>() {
        Ok(port) => Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => v.parse().ok(),
    }
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
            max_record_bytes: None,
            admin_gid: None,
            max_connections: 1024,
            max_connections_per_user: 64,
            handshake_timeout_ms: 10_000,
            worker_host: None,
            worker_port: 0,
            log_max_bytes: 10 << 20,
            log_keep: 3,
            metrics_address: None,
            notes: Vec::new(),
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
            max_record_bytes: fc.max_record_bytes,
            notes: fc
                .old_record_key
                .map(|line| {
                    format!(
                        "{}:{line}: maxStoreBytes is the old name of maxRecordBytes, read as it: it bounds the bytes of \
                         records the store holds, not the file (rename the key to keep this warning away)",
                        file.display()
                    )
                })
                .into_iter()
                .collect(),
            store_cache_bytes: fc.store_cache_bytes.unwrap_or(d.store_cache_bytes),
            admin_gid,
            max_connections,
            max_connections_per_user,
            handshake_timeout_ms: fc.handshake_timeout_ms.unwrap_or(d.handshake_timeout_ms),
            worker_host: std::env::var("SOAM_WORKER_HOST").ok().filter(|h| !h.is_empty()).or(fc.worker_host),
            worker_port: env_num("SOAM_WORKER_PORT")?.or(fc.worker_port).unwrap_or(d.worker_port),
            metrics_address: fc.metrics_address,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// soamd.yaml(5) lists every key the file takes, and each key's values as a refusal
    /// names them.
    #[test]
    fn the_documented_keys_are_the_file_s_keys_with_their_ranges() {
        let unknown = serde_saphyr::from_str::<RawConfig>("nope: 1").map(|_| ()).unwrap_err().to_string();
        let list = unknown
            .split("expected one of ")
            .nth(1)
            .and_then(|l| l.lines().next())
            .unwrap_or_default();
        // The old name is documented with the key it is read as.
        let mut expected: Vec<&str> = list.split(", ").filter(|k| *k != "maxStoreBytes").collect();
        let mut documented: Vec<&str> = KEYS.iter().map(|k| k.key).collect();
        expected.sort_unstable();
        documented.sort_unstable();
        assert_eq!(documented, expected, "{unknown}");
        for key in KEYS {
            let raw: RawConfig = serde_saphyr::from_str(&format!("{}: 'not valid'", key.key)).unwrap();
            match checked(raw, Path::new("soamd.yaml")) {
                Ok(_) => assert!(["adminGroup", "workerHost"].contains(&key.key), "{} took anything", key.key),
                Err(e) => assert!(e.ends_with(&format!("(valid: {})", key.valid)), "{}: {e}", key.key),
            }
        }
    }
}
