//! One service instance's process and its I/O, outside the core.
//!
//! The core sends [`InstCmd`]s; a task per instance turns them into service-protocol
//! bytes on the process's stdin (persistent mode) or into one process per Invoke (exec
//! mode), and sends every reply and the process's exit back as [`InstEvent`]s. Replies
//! come back in request order in both modes, which is what lets the core track what an
//! instance is doing as a simple queue.

use crate::ports::{EventSink, InstCmd, InstEvent, InstId, InstanceIn, OutMsg, Owner, each_message};
use bytes::Bytes;
use soam_profile::{Mode, Service};
use soam_service::wire::{self, Kind, Message, Status};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How a persistent instance reports what its service writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    /// One [`InstEvent::Reply`] per message: the core's own instances.
    Parsed,
    /// [`InstEvent::Output`] with whole messages as read, many per event: a worker
    /// passes them on to its agent without decoding them.
    Raw,
}

pub struct Spawned {
    pub tx: InstTx,
    pub pid: Option<u32>,
}

/// The way to an instance: commands queued for its task, and, for a persistent
/// service, its input pipe itself. Small messages are written to the pipe by the caller
/// (the core) when nothing is queued: waking the instance task to write them was a
/// thread hand-off on every task's way to its service.
#[derive(Clone)]
pub struct InstTx {
    tx: mpsc::UnboundedSender<InstCmd>,
    /// `None` for exec mode and remote instances: only the task writes.
    pipe: Option<Arc<Pipe>>,
}

/// A persistent service's input, shared by its instance task (which owns the pipe and
/// writes what is queued) and [`InstTx`] (which writes directly when nothing is).
struct Pipe {
    /// The pipe's descriptor while the task keeps it open; `None` from just before it
    /// closes it, so a direct write never goes to a reused descriptor number. Locked
    /// for the length of a direct write.
    fd: std::sync::Mutex<Option<std::os::fd::RawFd>>,
    /// Bytes queued for the task and not yet written: a direct write only happens at
    /// zero, so it never overtakes what is queued.
    queued: std::sync::atomic::AtomicUsize,
}

/// Largest batch written directly (see [`InstTx`]); larger ones go to the instance
/// task, which writes large payloads from their own buffers.
const DIRECT_MAX: usize = 64 * 1024;

/// Service-protocol bytes `msgs` take on the wire.
fn wire_len(msgs: &[OutMsg]) -> usize {
    msgs.iter().map(|m| 4 + wire::HEADER + m.payload.len()).sum()
}

impl InstTx {
    /// Commands for a task that does all the writing (a remote instance's relay).
    pub fn new(tx: mpsc::UnboundedSender<InstCmd>) -> InstTx {
        InstTx { tx, pipe: None }
    }

    /// Queues `cmd` for the instance task.
    pub fn send(&self, cmd: InstCmd) -> Result<(), mpsc::error::SendError<InstCmd>> {
        use std::sync::atomic::Ordering;
        let bytes = match &cmd {
            InstCmd::Send(msgs) => wire_len(msgs),
            InstCmd::Raw(b) => b.len(),
            InstCmd::Kill => 0,
        };
        if let Some(p) = &self.pipe {
            p.queued.fetch_add(bytes, Ordering::SeqCst);
        }
        self.tx.send(cmd).inspect_err(|_| {
            if let Some(p) = &self.pipe {
                p.queued.fetch_sub(bytes, Ordering::SeqCst);
            }
        })
    }

    /// Sends `msgs` to the service: written to its pipe here if they are small and
    /// nothing is queued, else (or for what the pipe did not take) queued.
    pub fn send_msgs(&self, msgs: Vec<OutMsg>) {
        use std::sync::atomic::Ordering;
        if let Some(p) = &self.pipe
            && p.queued.load(Ordering::SeqCst) == 0
            && wire_len(&msgs) <= DIRECT_MAX
            && crate::ports::turn::direct_write()
        {
            let open = p.fd.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(fd) = *open {
                let mut buf = Vec::with_capacity(wire_len(&msgs));
                encode_all(&mut buf, &msgs, None);
                // SAFETY: `fd` is the pipe's open descriptor: the task marks it `None`
                // under this lock before closing it. The pipe is non-blocking (tokio's).
                let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
                crate::trace::mark(crate::trace::Step::InvokeWritten);
                let n = usize::try_from(n).unwrap_or(0);
                drop(open);
                if n < buf.len() {
                    // A full pipe (or a failing one: the task will find out why).
                    let _ = self.send(InstCmd::Raw(Bytes::copy_from_slice(&buf[n..])));
                }
                return;
            }
        }
        let _ = self.send(InstCmd::Send(msgs));
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl InstanceIn for InstTx {
    fn send(&self, cmd: InstCmd) -> bool {
        InstTx::send(self, cmd).is_ok()
    }
    fn send_msgs(&self, msgs: Vec<OutMsg>) {
        InstTx::send_msgs(self, msgs)
    }
    fn is_closed(&self) -> bool {
        InstTx::is_closed(self)
    }
}

/// Marks the pipe closed when dropped: declared after the pipe's owner, so that it
/// runs first however the task ends (see [`Pipe::fd`]).
struct ClosePipe(Arc<Pipe>);

impl Drop for ClosePipe {
    fn drop(&mut self) {
        *self.0.fd.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Makes `cmd` start as `owner`: HOME, USER and LOGNAME are theirs (the profile's `env`
/// may still set them), and groups, gid and uid are switched in the child before exec,
/// so not one instruction of the service runs with the agent's rights.
fn run_as(cmd: &mut std::process::Command, owner: &Owner) {
    use std::os::unix::process::CommandExt;
    let Some(who) = owner.clone() else { return };
    cmd.env("HOME", &who.home).env("USER", &who.name).env("LOGNAME", &who.name);
    // SAFETY: become_user only makes async-signal-safe calls on memory owned by the
    // closure, as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || who.become_user());
    }
}

/// Gives `cmd` the soam Python package on `PYTHONPATH` (crate::pylib), ahead of the
/// profile's `PYTHONPATH` or else the agent's own.
fn python_path(cmd: &mut std::process::Command, svc: &Service) {
    let rest = match svc.env.get("PYTHONPATH") {
        Some(v) => Some(std::ffi::OsString::from(v)),
        None => std::env::var_os("PYTHONPATH"),
    };
    if let Some(p) = crate::pylib::python_path(rest.as_deref()) {
        cmd.env("PYTHONPATH", p);
    }
}

/// Makes `cmd` start in `dir`, creating it (and the folders above it) first if it does
/// not exist: as the instance's user, after `run_as` switched to them (this is
/// registered after it), so that a profile can have no folder made that its user could
/// not make. The paths are made before the fork; the child only calls mkdir and chdir,
/// which are async-signal-safe.
fn in_work_dir(cmd: &mut std::process::Command, dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let mut made: Vec<std::ffi::CString> = dir
        .ancestors()
        .filter_map(|p| std::ffi::CString::new(p.as_os_str().as_bytes()).ok())
        .collect();
    made.reverse();
    let Some(target) = made.last().cloned() else { return };
    // SAFETY: mkdir, chdir and errno are async-signal-safe; the closure owns its paths.
    unsafe {
        cmd.pre_exec(move || {
            if libc::chdir(target.as_ptr()) == 0 {
                return Ok(());
            }
            for p in &made {
                libc::mkdir(p.as_ptr(), 0o755);
            }
            if libc::chdir(target.as_ptr()) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Why an instance of `svc` could not start, in words: a workDir that could not be
/// made is named as such rather than as the program's failure.
fn start_failure(svc: &Service, e: &std::io::Error) -> String {
    if !svc.work_dir.is_dir() {
        return format!(
            "cannot start service '{}': its workDir {} does not exist and cannot be created ({e})",
            svc.name,
            svc.work_dir.display()
        );
    }
    format!("cannot start service '{}' ({}): {e}", svc.name, svc.command[0])
}

/// What `${SOAM_HOME}` (and `${EGO_SHARED_TOP}`) are for an instance run as `owner`: a
/// folder of that user's soam data on this host (for the agent's own user, the agent's
/// data folder), made when a workDir under it is.
fn soam_home(owner: &Owner) -> PathBuf {
    match owner {
        Some(who) => who.home.join(".local/share/soam/home"),
        None => soam_proto::paths::Paths::from_env().data_dir.join("home"),
    }
}

/// Set in a cluster worker: there the agent has already put in every variable but
/// `SOAM_HOME` and `EGO_SHARED_TOP`, and the worker's environment (which may be the
/// shared agent's, root's) is never read.
pub static IN_WORKER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `svc` with its `${NAME}`s expanded for an instance run as `owner` on this host
/// (soam_profile::vars): the agent's environment is read only for its own user's
/// instances, never for another user's.
pub fn ready(svc: &Arc<Service>, owner: &Owner) -> Result<Arc<Service>, String> {
    let has_vars = |t: &str| t.contains("${");
    let any = svc.command.iter().any(|a| has_vars(a)) || has_vars(&svc.work_dir.to_string_lossy()) || svc.env.values().any(|v| has_vars(v));
    if !any {
        return Ok(svc.clone());
    }
    let known = soam_profile::vars::Known {
        deploy_dir: Some(svc.deploy_dir.clone()),
        soam_home: Some(soam_home(owner)),
        environment: owner.is_none() && !IN_WORKER.load(std::sync::atomic::Ordering::Relaxed),
        env: &svc.env,
    };
    svc.expanded(&known).map(Arc::new)
}

fn base_command(svc: &Service, app: &str, owner: &Owner) -> Command {
    let argv = &svc.command;
    let mut std_cmd = std::process::Command::new(&argv[0]);
    run_as(&mut std_cmd, owner);
    in_work_dir(&mut std_cmd, &svc.work_dir);
    std_cmd.envs(&svc.env);
    python_path(&mut std_cmd, svc);
    let mut cmd = Command::from(std_cmd);
    cmd.args(&argv[1..])
        .env("SOAM_APP", app)
        .env("SOAM_SERVICE", &svc.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C meant for a foreground soamd is the agent's
        // to handle, not every service's.
        .process_group(0);
    cmd
}

/// Starts an instance. Failure to start is reported as an `Exited` event, never a panic.
pub fn spawn(id: InstId, app: &str, svc: Arc<Service>, owner: Owner, sink: EventSink) -> Spawned {
    spawn_with(id, app, svc, owner, sink, Replies::Parsed)
}

/// As [`spawn`], choosing how a persistent instance reports its replies.
pub fn spawn_with(id: InstId, app: &str, svc: Arc<Service>, owner: Owner, sink: EventSink, replies: Replies) -> Spawned {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tx = InstTx::new(tx);
    let svc = match ready(&svc, &owner) {
        Ok(s) => s,
        Err(why) => {
            sink(id, InstEvent::Exited { why });
            return Spawned { tx, pid: None };
        }
    };
    match svc.mode {
        Mode::Persistent => {
            let mut cmd = base_command(&svc, app, &owner);
            cmd.stderr(Stdio::piped());
            match cmd.spawn() {
                Ok(mut child) => {
                    let pid = child.id();
                    let stderr = child.stderr.take().map(|e| crate::service_stderr::watch(e, app, id));
                    let stdin = child.stdin.take().expect("stdin piped");
                    let pipe = Arc::new(Pipe {
                        fd: std::sync::Mutex::new(Some(std::os::fd::AsRawFd::as_raw_fd(&stdin))),
                        queued: 0.into(),
                    });
                    tx.pipe = Some(pipe.clone());
                    tokio::spawn(persistent(id, child, stdin, pipe, stderr, rx, sink, replies));
                    Spawned { tx, pid }
                }
                Err(e) => {
                    let why = start_failure(&svc, &e);
                    sink(id, InstEvent::Exited { why });
                    Spawned { tx, pid: None }
                }
            }
        }
        Mode::Exec => {
            spawn_exec(id, app.to_string(), svc, owner, rx, sink);
            Spawned { tx, pid: None }
        }
    }
}

/// Reads whole messages from a service's output and passes them on in the chunks they
/// arrive in, checking only their lengths; returns why the output ended.
async fn read_raw(id: InstId, mut out: tokio::process::ChildStdout, sink: EventSink) -> String {
    let mut buf = bytes::BytesMut::with_capacity(1 << 16);
    loop {
        match out.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return "its output ended".into(),
            Ok(0) => return "its output ended inside a message".into(),
            Ok(_) => {}
            Err(e) => return format!("its output failed ({e})"),
        }
        let (done, next) = match wire::whole(&buf) {
            Ok(w) => w,
            Err(e) => return format!("it sent a malformed message ({e})"),
        };
        if done > 0 {
            sink(id, InstEvent::Output(buf.split_to(done).freeze()));
        }
        // Room for the rest of a big message at once, or for the next read.
        buf.reserve(next.saturating_sub(buf.len()).max(1 << 12));
    }
}

#[allow(clippy::too_many_arguments)]
async fn persistent(
    id: InstId,
    mut child: Child,
    mut stdin: tokio::process::ChildStdin,
    pipe: Arc<Pipe>,
    stderr: Option<crate::service_stderr::Watch>,
    mut rx: mpsc::UnboundedReceiver<InstCmd>,
    sink: EventSink,
    replies: Replies,
) {
    let close_pipe = ClosePipe(pipe.clone());
    let stdout = child.stdout.take().expect("stdout piped");
    let reader_sink = sink.clone();
    let mut reader = tokio::spawn(async move {
        if replies == Replies::Raw {
            return read_raw(id, stdout, reader_sink).await;
        }
        let mut r = BufReader::with_capacity(1 << 16, stdout);
        loop {
            let mut len = [0u8; 4];
            if r.read_exact(&mut len).await.is_err() {
                return "its output ended".to_string();
            }
            let len = match wire::check_len(u32::from_le_bytes(len)) {
                Ok(l) => l,
                Err(e) => return format!("it sent a malformed message ({e})"),
            };
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).await.is_err() {
                return "its output ended inside a message".to_string();
            }
            let body = Bytes::from(body);
            match wire::parse(&body) {
                Ok(m) => {
                    let payload = body.slice(wire::payload_at(&body)..);
                    crate::trace::mark(crate::trace::Step::ReplyRead);
                    reader_sink(
                        id,
                        InstEvent::Reply {
                            kind: m.kind,
                            status: m.status,
                            task: m.task,
                            attempt: m.attempt,
                            code: m.code,
                            payload,
                        },
                    );
                }
                Err(e) => return format!("it sent a malformed message ({e})"),
            }
        }
    });
    let mut parts = soam_proto::frame::Parts::default();
    let why = loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd @ (InstCmd::Send(_) | InstCmd::Raw(_))) => {
                    parts.clear();
                    let kill = coalesce(cmd, &mut rx, &mut parts.buf, Some(&mut parts.big));
                    if soam_proto::frame::write_parts(&mut stdin, &parts).await.is_err() || stdin.flush().await.is_err() {
                        // Left counted as queued: nothing is written directly any more.
                        // The reader will see the end too; let the exit status speak.
                        let _ = (&mut reader).await;
                        break "its input closed".to_string();
                    }
                    pipe.queued.fetch_sub(parts.len(), std::sync::atomic::Ordering::SeqCst);
                    if kill {
                        let _ = child.start_kill();
                        let _ = (&mut reader).await;
                        break "it was stopped by the agent".to_string();
                    }
                }
                Some(InstCmd::Kill) | None => {
                    let _ = child.start_kill();
                    let _ = (&mut reader).await;
                    break "it was stopped by the agent".to_string();
                }
            },
            r = &mut reader => break r.unwrap_or_else(|e| e.to_string()),
        }
    };
    drop(close_pipe);
    drop(stdin);
    let status = match tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await {
        Ok(Ok(s)) => s.to_string(),
        _ => {
            let _ = child.kill().await;
            "killed".to_string()
        }
    };
    let mut why = format!("service process ended ({status}; {why})");
    if let Some(w) = stderr {
        // What it said last is most often why it ended.
        let tail = w.finish(std::time::Duration::from_millis(300)).await;
        if !tail.is_empty() {
            why = format!("{why}; {tail}");
        }
    }
    sink(id, InstEvent::Exited { why });
}

/// Encodes `first` and whatever else is already queued (up to about 1 MiB) into `buf`,
/// so it goes out in one write. True if a `Kill` was among them: everything before it
/// is in `buf`, nothing after it was taken.
///
/// With `big`, payloads of at least [`SHARE_MIN`] bytes are not copied into `buf`: each
/// is put in `big` with the place in `buf` it goes to, for `frame::write_parts` to write from
/// its own buffer (a 1 MiB copy is a megabyte of fresh pages to fault in).
pub fn coalesce(
    first: InstCmd,
    rx: &mut mpsc::UnboundedReceiver<InstCmd>,
    buf: &mut Vec<u8>,
    mut big: Option<&mut Vec<(usize, Bytes)>>,
) -> bool {
    let mut next = Some(first);
    let mut bytes = 0;
    while let Some(cmd) = next.take() {
        match cmd {
            InstCmd::Send(msgs) => bytes += encode_all(buf, &msgs, big.as_deref_mut()),
            InstCmd::Raw(b) => {
                buf.extend_from_slice(&b);
                bytes += b.len();
            }
            InstCmd::Kill => return true,
        }
        if bytes < 1 << 20 {
            next = rx.try_recv().ok();
        }
    }
    false
}

/// Payloads from this size on are not copied in the agent: the core keeps the buffer
/// they came in (`core::blob`) and the instance writes from it (see [`coalesce`]).
pub use soam_proto::frame::SHARE_MIN;

/// Encodes `msgs` into `buf` (large payloads into `big`, see [`coalesce`]); returns the
/// bytes they take on the wire.
fn encode_all(buf: &mut Vec<u8>, msgs: &[OutMsg], mut big: Option<&mut Vec<(usize, Bytes)>>) -> usize {
    let mut bytes = 0;
    for m in msgs {
        let msg = Message {
            kind: m.kind,
            status: Status::Success,
            session: m.session,
            task: m.task,
            attempt: m.attempt,
            code: 0,
            payload: &m.payload,
        };
        bytes += 4 + wire::HEADER + m.payload.len();
        match big.as_deref_mut() {
            Some(big) if m.payload.len() >= SHARE_MIN => {
                wire::encode_header(buf, &msg);
                big.push((buf.len(), m.payload.clone()));
            }
            _ => wire::encode(buf, &msg),
        }
    }
    bytes
}

/// The requests in `bytes`, as [`encode_all`] wrote them.
fn decode_all(bytes: &Bytes) -> std::io::Result<Vec<OutMsg>> {
    let mut msgs = Vec::new();
    each_message(bytes, |m, payload| {
        msgs.push(OutMsg {
            kind: m.kind,
            session: m.session,
            task: m.task,
            attempt: m.attempt,
            payload,
        })
    })?;
    Ok(msgs)
}

/// Exec mode runs on a thread of its own with blocking `std::process`: per task that is
/// one spawn, a poll over two pipes and a wait, as close to `xargs -P` as it gets (the
/// async process machinery costs epoll registrations and SIGCHLD wake-ups per task).
/// A small async forwarder hands work to the thread and turns `Kill` into a signal to
/// the task process running at that moment.
fn spawn_exec(id: InstId, app: String, svc: Arc<Service>, owner: Owner, mut rx: mpsc::UnboundedReceiver<InstCmd>, sink: EventSink) {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
    let running = Arc::new(AtomicI32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (work_tx, work_rx) = std::sync::mpsc::channel::<Vec<OutMsg>>();
    // Dropped by the thread when it ends, so the forwarder (and with it the instance's
    // channel, which the agent watches at shutdown) ends too.
    let (thread_alive, mut thread_ended) = tokio::sync::oneshot::channel::<()>();
    {
        let (running, stop) = (running.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let cmd = tokio::select! {
                    cmd = rx.recv() => cmd,
                    _ = &mut thread_ended => return,
                };
                match cmd {
                    Some(InstCmd::Send(msgs)) => {
                        if work_tx.send(msgs).is_err() {
                            return;
                        }
                    }
                    Some(InstCmd::Raw(bytes)) => match decode_all(&bytes) {
                        Ok(msgs) => {
                            if work_tx.send(msgs).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            eprintln!("exec instance {id}: stopping: bad input from the agent: {e}");
                            break;
                        }
                    },
                    Some(InstCmd::Kill) | None => break,
                }
            }
            stop.store(true, Ordering::SeqCst);
            let pid = running.load(Ordering::SeqCst);
            if pid > 0 {
                // The whole group: a `sh -c` task's children would otherwise hold its
                // output pipe open. SAFETY: kill has no memory effects.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        });
    }
    let spawned = std::thread::Builder::new().name(format!("soam-exec-{id}")).spawn({
        let sink = sink.clone();
        move || {
            let why = exec_thread(&app, &svc, &owner, work_rx, &sink, id, &running, &stop);
            sink(id, InstEvent::Exited { why });
            drop(thread_alive);
        }
    });
    if let Err(e) = spawned {
        sink(
            id,
            InstEvent::Exited {
                why: format!("cannot start an exec runner: {e}"),
            },
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn exec_thread(
    app: &str,
    svc: &Service,
    owner: &Owner,
    work: std::sync::mpsc::Receiver<Vec<OutMsg>>,
    sink: &EventSink,
    id: InstId,
    running: &std::sync::atomic::AtomicI32,
    stop: &std::sync::atomic::AtomicBool,
) -> String {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::Ordering;
    let argv = &svc.command;
    while let Ok(msgs) = work.recv() {
        for m in msgs {
            if stop.load(Ordering::SeqCst) {
                return "it was stopped by the agent".into();
            }
            let reply = |status, payload: Bytes| InstEvent::Reply {
                kind: m.kind,
                status,
                task: m.task,
                attempt: m.attempt,
                code: 0,
                payload,
            };
            if m.kind != Kind::Invoke {
                // Exec mode has no lifecycle: every other method trivially succeeds.
                sink(id, reply(Status::Success, Bytes::new()));
                if m.kind == Kind::DestroyService {
                    return "exec instance stopped".into();
                }
                continue;
            }
            let mut cmd = std::process::Command::new(&argv[0]);
            run_as(&mut cmd, owner);
            in_work_dir(&mut cmd, &svc.work_dir);
            cmd.envs(&svc.env);
            python_path(&mut cmd, svc);
            cmd.args(&argv[1..])
                .env("SOAM_APP", app)
                .env("SOAM_SERVICE", &svc.name)
                .env("SOAM_SESSION", m.session.to_string())
                .env("SOAM_TASK", m.task.to_string())
                .env("SOAM_ATTEMPT", m.attempt.to_string())
                .stdin(if m.payload.is_empty() { Stdio::null() } else { Stdio::piped() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0);
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    sink(id, reply(Status::Failure, Bytes::from(start_failure(svc, &e))));
                    continue;
                }
            };
            running.store(child.id() as i32, Ordering::SeqCst);
            let output = std::thread::scope(|scope| {
                // A big input is fed from a second thread so a task that writes before it
                // has read everything cannot deadlock against us.
                if let Some(mut stdin) = child.stdin.take() {
                    let input = &m.payload;
                    scope.spawn(move || {
                        let _ = stdin.write_all(input);
                    });
                }
                child.wait_with_output()
            });
            running.store(0, Ordering::SeqCst);
            if stop.load(Ordering::SeqCst) {
                return "it was stopped by the agent".into();
            }
            let event = match output {
                Err(e) => reply(Status::Failure, Bytes::from(format!("task process failed: {e}"))),
                Ok(o) if o.status.success() => reply(Status::Success, Bytes::from(o.stdout)),
                Ok(o) => {
                    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
                    let msg = if err.is_empty() {
                        format!("task process ended with {}", o.status)
                    } else {
                        err
                    };
                    reply(Status::Failure, Bytes::from(msg))
                }
            };
            sink(id, event);
        }
    }
    "exec instance stopped".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke(task: u64) -> OutMsg {
        OutMsg {
            kind: Kind::Invoke,
            session: 1,
            task,
            attempt: 1,
            payload: Bytes::from(format!("{task}:{}", "y".repeat(10_000))),
        }
    }

    /// A pipe that takes only part of a message written directly (the service is not
    /// reading yet): the rest goes to the instance task, the messages after it are
    /// queued behind it, and the service reads every byte in order.
    #[tokio::test]
    async fn the_rest_of_a_partial_direct_write_reaches_the_service_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (flag, out) = (dir.path().join("go"), dir.path().join("out"));
        // Reads nothing until `go` exists, then copies its input to `out`, keeping its
        // output (the agent's reader) open on descriptor 3.
        let script = r#"while [ ! -e "$0" ]; do sleep 0.01; done; exec cat 3>&1 > "$1""#;
        let svc = Arc::new(Service {
            name: "s".into(),
            default: true,
            mode: Mode::Persistent,
            command: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                flag.display().to_string(),
                out.display().to_string(),
            ],
            work_dir: dir.path().to_path_buf(),
            deploy_dir: dir.path().to_path_buf(),
            package: None,
            env: Default::default(),
            launcher: soam_profile::Launcher::Local,
            control: Default::default(),
        });
        let sink: EventSink = Arc::new(|_, _| {});
        let spawned = spawn(1, "app", svc, None, sink);
        let pipe = spawned.tx.pipe.clone().expect("a persistent instance has a pipe");
        crate::ports::turn::allow_direct_writes(u32::MAX);
        // The instance task cannot run before this test awaits (one thread), so what
        // the pipe does not take stays queued.
        let mut partial = None;
        let mut expected = Vec::new();
        for task in 0..40 {
            encode_all(&mut expected, &[invoke(task)], None);
            let was_queued = pipe.queued.load(std::sync::atomic::Ordering::SeqCst);
            spawned.tx.send_msgs(vec![invoke(task)]);
            if partial.is_none() && was_queued == 0 && pipe.queued.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                partial = Some(task);
            }
        }
        let partial = partial.expect("the pipe took every message: no partial write happened");
        assert!(partial > 0, "the first message already did not fit: nothing was written directly");
        std::fs::write(&flag, b"").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let got = std::fs::read(&out).unwrap_or_default();
            if got.len() >= expected.len() {
                assert!(got == expected, "the service read other bytes than were sent");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the service read {} of {} bytes",
                got.len(),
                expected.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(spawned);
    }
}
