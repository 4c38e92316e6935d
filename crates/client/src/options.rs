//! Where the agent is and how to reach it, from the environment.

use soam_proto::paths::Paths;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub socket: PathBuf,
    pub paths: Paths,
    /// Start `soamd` if nobody answers.
    pub autostart: bool,
    /// Shown by the agent as the holder of sessions ("soamsession submit").
    pub client_name: String,
}

impl ConnectOptions {
    /// Paths from the environment; `socket` overrides (`--socket`).
    pub fn from_env(client_name: &str, socket: Option<PathBuf>) -> ConnectOptions {
        let paths = Paths::from_env();
        let autostart = !matches!(std::env::var("SOAM_NO_AUTOSTART").as_deref(), Ok("1") | Ok("true") | Ok("yes"));
        ConnectOptions {
            socket: socket.unwrap_or_else(|| paths.socket.clone()),
            paths,
            autostart,
            client_name: client_name.into(),
        }
    }
}
