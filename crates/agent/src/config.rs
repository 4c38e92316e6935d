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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    slots: Option<u32>,
    shared: Option<bool>,
    instance_idle_timeout: Option<u64>,
    max_stored_sessions: Option<u64>,
    max_stored_tasks: Option<u64>,
    max_store_bytes: Option<u64>,
    store_cache_bytes: Option<usize>,
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
    pub fn load(o: &Overrides) -> Result<AgentConfig, String> {
        let paths = Paths::from_env();
        let file = o.config.clone().unwrap_or_else(|| paths.config.clone());
        let fc = read_file(&file, o.config.is_some())?;
        let slots = o.slots.or(env_num("SOAM_SLOTS")?).or(fc.slots).unwrap_or_else(cpus);
        if slots == 0 || slots > 100_000 {
            return Err(format!("slots: {slots} is out of range (valid: 1 to 100000)"));
        }
        Ok(AgentConfig {
            paths,
            slots,
            shared: o.shared || fc.shared.unwrap_or(false),
            instance_idle_timeout_s: env_num("SOAM_INSTANCE_IDLE_TIMEOUT")?.or(fc.instance_idle_timeout).unwrap_or(60),
            max_stored_sessions: fc.max_stored_sessions,
            max_stored_tasks: fc.max_stored_tasks,
            max_store_bytes: fc.max_store_bytes,
            store_cache_bytes: fc.store_cache_bytes.unwrap_or(16 << 20),
        })
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(FileConfig::default()),
        Ok(text) => serde_saphyr::from_str(&text).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            let msg = e.to_string();
            format!("{}:{line}: {}", path.display(), msg.lines().next().unwrap_or("invalid config"))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
        Err(e) => Err(format!("cannot read config {}: {e}", path.display())),
    }
}
