//! Whose agent this client talks to: its own user's, root's, or the shared agent's named
//! by `SOAM_AGENT_UID`; any other is refused before a byte of work is sent.

use crate::ClientError;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use soam_proto::msg::ErrorKind;
use std::path::Path;

/// The uids whose agent this client talks to: its own, root's, and the shared agent's
/// named by `SOAM_AGENT_UID` (a uid or a user name).
fn trusted_agent_uids() -> Result<Vec<u32>, ClientError> {
    // SAFETY: getuid has no preconditions.
    let mut uids = vec![unsafe { libc::getuid() }, 0];
    if let Some(v) = std::env::var_os("SOAM_AGENT_UID").filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy().into_owned();
        let uid = match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => nix::unistd::User::from_name(&v)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
                .ok_or_else(|| ClientError::NoAgent(format!("SOAM_AGENT_UID: no user named '{v}'")))?,
        };
        uids.push(uid);
    }
    Ok(uids)
}

/// Refuses a socket served by anyone else: whoever could create the socket path could
/// otherwise collect this user's tasks and answer with anything (SO_PEERCRED names the
/// process that listens, as the kernel saw it).
pub(crate) fn check_agent_uid(stream: &Stream, socket: &Path) -> Result<(), ClientError> {
    let creds = stream
        .peer_creds()
        .map_err(|e| ClientError::NoAgent(format!("cannot tell who serves {}: {e}", socket.display())))?;
    let uid = creds.euid().unwrap_or(u32::MAX);
    if trusted_agent_uids()?.contains(&uid) {
        return Ok(());
    }
    Err(ClientError::refused(
        ErrorKind::Permission,
        format!(
            "refusing to talk to {}: it is served by uid {uid}, not by you, root or SOAM_AGENT_UID",
            socket.display()
        ),
    ))
}
