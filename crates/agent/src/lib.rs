//! `soamd` as a library, so tests and benchmarks can run the agent in-process as well as
//! as the real binary.
//!
//! Start-up order matters: take the lock file (naming the holder if another agent has
//! it), open and recover the store completely, and only then bind the socket: no client
//! is served before recovery is done. Shutdown (SIGTERM, SIGINT or a client's request)
//! stops accepting, stops service instances, commits and closes the store, and removes
//! the socket.

pub mod config;
mod core;
pub mod identity;
pub mod instance;
mod launch;
pub mod logfile;
pub mod metrics;
pub mod ports;
pub mod pylib;
mod reactor;
mod server;
pub mod service_stderr;
mod slurm;
pub mod trace;
pub mod worker;

pub use config::{AgentConfig, Overrides};

use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use soam_store::Store;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write as _};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("another agent (pid {pid}) is using the store in {dir}")]
    AlreadyRunning { pid: String, dir: String },
    #[error("{0}")]
    Setup(String),
}

/// Holds the store's lock file for the agent's lifetime; the OS releases it if we die.
pub struct LockGuard {
    _file: File,
}

fn take_lock(path: &Path) -> Result<LockGuard, AgentError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| AgentError::Setup(format!("cannot open lock file {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(AgentError::AlreadyRunning {
                pid: if pid.is_empty() { "unknown".into() } else { pid.into() },
                dir: path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(AgentError::Setup(format!("cannot lock {}: {e}", path.display()))),
    }
    f.set_len(0).ok();
    f.rewind().ok();
    let _ = write!(f, "{}", std::process::id());
    let _ = f.flush();
    Ok(LockGuard { _file: f })
}

/// Creates `dir` (and missing parents) mode 0700, or accepts an existing one only if it
/// is a folder of this agent's user that nobody else can write to: a folder another
/// user made beforehand (say `/tmp/soam-UID`) could hold their socket or files. One of
/// ours that others can read is narrowed to `mode`.
fn private_dir(dir: &Path, mode: u32) -> Result<(), AgentError> {
    use std::os::unix::fs::MetadataExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AgentError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    let m = fs::metadata(dir).map_err(|e| AgentError::Setup(format!("cannot inspect {}: {e}", dir.display())))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !m.is_dir() {
        return Err(AgentError::Setup(format!("{} is not a folder", dir.display())));
    }
    if m.uid() != me {
        return Err(AgentError::Setup(format!(
            "{} belongs to uid {}, not to this agent's user (uid {me}); refusing to use it (remove it, or set SOAM_HOME)",
            dir.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(AgentError::Setup(format!(
            "{} is writable by other users (mode {:o}); refusing to use it (chmod 700 it, or remove it)",
            dir.display(),
            m.mode() & 0o7777
        )));
    }
    if m.mode() & 0o777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::Setup(format!("cannot set the mode of {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Store, lock and log hold task payloads and who ran what: the agent's user only.
fn private_file(path: &Path) {
    if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot make {} private: {e}", path.display());
    }
}

/// Opens the agent's log in its data folder (made private first, as the agent will
/// want it), rotated as the config says.
pub fn open_log(cfg: &AgentConfig) -> Result<logfile::RotatingLog, AgentError> {
    private_dir(&cfg.paths.data_dir, 0o700)?;
    let path = cfg.paths.log();
    logfile::RotatingLog::open(&path, cfg.log_max_bytes, cfg.log_keep)
        .map_err(|e| AgentError::Setup(format!("cannot open the log {}: {e}", path.display())))
}

/// A running agent's handle, for in-process use: request shutdown, await the end.
pub struct AgentHandle {
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl AgentHandle {
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Binds the socket at `path`, replacing one a dead agent left (the caller holds the
/// lock, so no live agent owns it).
fn listen(path: &Path, mode: u32) -> Result<interprocess::local_socket::tokio::Listener, AgentError> {
    match fs::remove_file(path) {
        Ok(()) => tracing::info!("replaced a stale socket at {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(AgentError::Setup(format!("cannot remove stale socket {}: {e}", path.display())));
        }
    }
    let name = path
        .to_path_buf()
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| AgentError::Setup(e.to_string()))?;
    ListenerOptions::new()
        .name(name)
        .mode(mode)
        .create_tokio()
        .map_err(|e| AgentError::Setup(format!("cannot listen on {}: {e}", path.display())))
}

/// The socket systemd listened on for us (socket activation). It must be where the
/// commands look, or they would start a second agent beside it.
fn listener_from_systemd(
    l: std::os::unix::net::UnixListener,
    path: &Path,
) -> Result<interprocess::local_socket::tokio::Listener, AgentError> {
    use interprocess::os::unix::uds_local_socket::tokio::Listener as UdsListener;
    let at = l.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf));
    if at.as_deref() != Some(path) {
        return Err(AgentError::Setup(format!(
            "systemd passed a socket at {}, but commands look for the agent at {}: set the unit's ListenStream= to that path (or SOAM_SOCKET to this one)",
            at.map_or("(no path)".into(), |p| p.display().to_string()),
            path.display()
        )));
    }
    tracing::info!("serving on the socket systemd passed ({})", path.display());
    let fd: std::os::fd::OwnedFd = l.into();
    UdsListener::try_from(fd)
        .map(Into::into)
        .map_err(|e| AgentError::Setup(format!("cannot use the socket systemd passed: {e}")))
}

/// Takes the lock, recovers the store and binds the socket; the agent then serves in
/// the background until shut down.
pub async fn start(cfg: AgentConfig) -> Result<AgentHandle, AgentError> {
    start_on(cfg, None).await
}

/// As [`start`], serving on `activated` (a socket systemd passed) if given.
pub async fn start_on(cfg: AgentConfig, activated: Option<std::os::unix::net::UnixListener>) -> Result<AgentHandle, AgentError> {
    let paths = cfg.paths.clone();
    private_dir(&paths.data_dir, 0o700)?;
    let lock = take_lock(&paths.lock())?;
    let store_path = paths.store();
    let cache = cfg.store_cache_bytes;
    let t0 = std::time::Instant::now();
    let (store, loaded) = tokio::task::spawn_blocking(move || Store::open_with(&store_path, cache, core::recovered_task))
        .await
        .map_err(|e| AgentError::Setup(e.to_string()))?
        .map_err(|e| AgentError::Setup(e.to_string()))?;
    // A restart's time goes to these two steps: say which took it.
    let tasks: usize = loaded.tasks.iter().map(|(_, t)| t.len()).sum();
    tracing::info!("store read in {:.3} s ({tasks} tasks)", t0.elapsed().as_secs_f64());
    private_file(&paths.store());
    private_file(&paths.log());

    let sock_dir = paths.socket.parent().unwrap_or(Path::new("/")).to_path_buf();
    // Others must reach a shared agent's socket, and may list nothing else there.
    private_dir(&sock_dir, if cfg.shared { 0o755 } else { 0o700 })?;
    let mode = if cfg.shared { 0o666 } else { 0o600 };
    let systemd_socket = activated.is_some();
    let listener = match activated {
        Some(l) => listener_from_systemd(l, &paths.socket)?,
        None => listen(&paths.socket, mode)?,
    };
    // The mode passes through the umask (or the unit's SocketMode); a shared socket
    // must really be 0666.
    fs::set_permissions(&paths.socket, fs::Permissions::from_mode(mode))
        .map_err(|e| AgentError::Setup(format!("cannot set the mode of {}: {e}", paths.socket.display())))?;

    // Before any client is served, so that an address that cannot be had stops the start.
    let metrics_listener = match cfg.metrics_address {
        Some(addr) => Some(metrics::bind(addr).await.map_err(AgentError::Setup)?),
        None => None,
    };
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    let (inbox, rx) = ports::inbox();
    let t0 = std::time::Instant::now();
    let launcher = std::sync::Arc::new(launch::Real::new(inbox.clone(), &cfg));
    let core = core::Core::new(cfg.clone(), store, loaded, inbox.clone(), launcher, shutdown.clone());
    tracing::info!("state rebuilt in {:.3} s", t0.elapsed().as_secs_f64());
    let core_task = tokio::spawn(reactor::run(core, inbox.clone(), rx, shutdown.subscribe()));
    // SAFETY: geteuid has no preconditions.
    let agent_uid = unsafe { libc::geteuid() };
    tracing::info!(
        "soamd {} serving on {} (pid {}, {} slots)",
        soam_proto::SOAM_VERSION,
        paths.socket.display(),
        std::process::id(),
        cfg.slots
    );

    if let Some(l) = metrics_listener {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!("metrics served at http://{addr}/metrics");
        if !l.local_addr().is_ok_and(|a| a.ip().is_loopback()) {
            tracing::warn!("metrics are served beyond this host ({addr}): anyone who reaches it sees every application's figures");
        }
        let (inbox, mut stop) = (inbox.clone(), shutdown.subscribe());
        tokio::spawn(async move {
            tokio::select! {
                _ = metrics::serve(l, inbox) => {}
                _ = stop.changed() => {}
            }
        });
    }
    let ctx = std::sync::Arc::new(server::Ctx::new(&cfg, agent_uid));
    let done = tokio::spawn(async move {
        let mut next_conn = 1u64;
        // Accept errors (out of descriptors, say) persist while their cause does:
        // retrying at once would spin and flood the log, so each retry waits longer.
        let mut backoff = Duration::ZERO;
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok(stream) => {
                        backoff = Duration::ZERO;
                        let conn = next_conn;
                        next_conn += 1;
                        tokio::spawn(server::connection(stream, conn, inbox.clone(), ctx.clone()));
                    }
                    Err(e) => {
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tracing::warn!("accept failed: {e}; retrying in {} ms", backoff.as_millis());
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown_rx.changed() => break,
                        }
                    }
                },
                _ = shutdown_rx.changed() => break,
            }
        }
        drop(listener);
        let _ = core_task.await;
        // A socket systemd made stays: it listens on for the next start.
        if !systemd_socket {
            let _ = fs::remove_file(&paths.socket);
        }
        drop(lock);
        tracing::info!("soamd stopped");
    });
    Ok(AgentHandle { shutdown, done })
}

/// Runs the agent in the foreground until SIGTERM, SIGINT or a client asks it to stop,
/// on `activated` if systemd passed a socket.
pub async fn run(cfg: AgentConfig, activated: Option<std::os::unix::net::UnixListener>) -> Result<(), AgentError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers first: a signal that comes as soon as the socket serves (a test, a
    // service manager) must stop the agent cleanly, not kill it by default action.
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    let handle = start_on(cfg, activated).await?;
    let stop = handle.shutdown.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = signals else {
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = stop.send(true);
    });
    handle.wait().await;
    Ok(())
}
