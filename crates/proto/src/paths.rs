//! Where the agent's socket, store, log and config live.
//!
//! `SOAM_HOME=DIR` puts everything under one folder (tests use it). Otherwise XDG: the
//! socket under `$XDG_RUNTIME_DIR/soam/` (fallback `/tmp/soam-$UID/`), data under
//! `$XDG_DATA_HOME/soam/` (fallback `~/.local/share/soam/`), config
//! `$XDG_CONFIG_HOME/soam/soamd.yaml`. `SOAM_SOCKET` overrides the socket alone.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Paths {
    /// The Unix socket commands connect to.
    pub socket: PathBuf,
    /// Folder holding the redb store, the lock file and the autostart log.
    pub data_dir: PathBuf,
    /// Default agent config file (may not exist).
    pub config: PathBuf,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

impl Paths {
    pub fn from_env() -> Paths {
        let mut p = if let Some(home) = env_path("SOAM_HOME") {
            Paths {
                socket: home.join("run").join("soamd.sock"),
                data_dir: home.join("data"),
                config: home.join("soamd.yaml"),
            }
        } else {
            let home = env_path("HOME").unwrap_or_else(|| PathBuf::from("/"));
            let runtime = env_path("XDG_RUNTIME_DIR")
                .map(|d| d.join("soam"))
                .unwrap_or_else(|| PathBuf::from(format!("/tmp/soam-{}", uid())));
            let data = env_path("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share"));
            let config = env_path("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
            Paths {
                socket: runtime.join("soamd.sock"),
                data_dir: data.join("soam"),
                config: config.join("soam").join("soamd.yaml"),
            }
        };
        if let Some(s) = env_path("SOAM_SOCKET") {
            p.socket = s;
        }
        p
    }

    pub fn store(&self) -> PathBuf {
        self.data_dir.join("soam.redb")
    }

    pub fn lock(&self) -> PathBuf {
        self.data_dir.join("soamd.lock")
    }

    pub fn log(&self) -> PathBuf {
        self.data_dir.join("soamd.log")
    }
}
