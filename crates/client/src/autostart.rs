//! Starting `soamd` when no agent answers (unless `SOAM_NO_AUTOSTART=1`).

use crate::{ClientError, ConnectOptions};
use std::path::PathBuf;

/// Where the agent binary is: `SOAM_AGENT_BIN`, next to this program, or on PATH.
fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SOAM_AGENT_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("soamd");
        if sibling.is_file() {
            return sibling;
        }
        // Test binaries live in target/*/deps; the agent one level up.
        if let Some(up) = exe.parent().and_then(|p| p.parent()).map(|p| p.join("soamd"))
            && up.is_file()
        {
            return up;
        }
    }
    PathBuf::from("soamd")
}

pub(crate) fn start_agent(opts: &ConnectOptions) -> Result<std::process::Child, ClientError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    let data = &opts.paths.data_dir;
    // Private from the start: the agent checks it again and refuses one others own.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(|e| ClientError::NoAgent(format!("cannot create {}: {e}", data.display())))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(opts.paths.log())
        .map_err(|e| ClientError::NoAgent(format!("cannot open {}: {e}", opts.paths.log().display())))?;
    let bin = agent_binary();
    let mut cmd = std::process::Command::new(&bin);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| ClientError::NoAgent(e.to_string()))?)
        .stderr(log)
        .env("SOAM_SOCKET", &opts.socket);
    // SAFETY: setsid, sigemptyset and pthread_sigmask are async-signal-safe. The child
    // leaves our session so it outlives this command and is not hit by the terminal's
    // Ctrl-C; it starts with no signal blocked, whatever the thread that started it had
    // blocked (the Python package's library threads block every signal), or it would
    // never see SIGTERM.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        ClientError::NoAgent(format!(
            "no agent answers on {} and starting {} failed: {e}",
            opts.socket.display(),
            bin.display()
        ))
    })
}
