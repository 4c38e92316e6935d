//! `soam-worker`: the agent's hands on one node of a Slurm allocation.
//!
//! The agent starts one worker per node as a job step (`srun --jobid=J -w NODE ...`);
//! the worker connects back to it over TCP (`SOAM_WORKER_CONNECT`, with the token in
//! `SOAM_WORKER_TOKEN`; see `crate::slurm`) and speaks [`soam_proto::worker`]. The worker
//! starts the node's service instances and exec tasks with the same code a local agent
//! uses ([`crate::instance`]), relays their service-protocol bytes both ways (cut at
//! message boundaries, not decoded: see [`soam_proto::worker`]), and reports each
//! instance's end. Nothing else: sessions, scheduling and the store stay
//! with the agent.
//!
//! When its connection ends (the agent died or let go of it), its stdin ends (srun is
//! gone), on `Stop`, or on SIGTERM, it
//! stops every instance and, if the agent asked it to (`SOAM_WORKER_CANCEL_JOB=1`),
//! cancels its own job, so no allocation is held for an agent that is gone.

use crate::instance::{self, Replies};
use crate::ports::{InstCmd, InstEvent};
use soam_profile::{Control, Launcher, Mode, Service};
use soam_proto::frame;
use soam_proto::worker::{FromWorker, ToWorker};
use soam_service::wire::{self, Message, Status};
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a report of a process killed by a signal waits (see `run`).
const HOLD: Duration = Duration::from_millis(1500);

/// A failure that says the process was killed by SIGTERM or SIGKILL.
fn by_signal(text: &[u8]) -> bool {
    let t = String::from_utf8_lossy(text);
    t.contains("signal: 15") || t.contains("signal: 9 ") || t.contains("signal: 9)") || t.contains("SIGTERM") || t.contains("SIGKILL")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn node_name() -> String {
    std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// CPUs this worker may fill: the step's, else the job's on this node, else the host's.
fn cpus() -> u32 {
    let step = env_u64("SLURM_CPUS_PER_TASK");
    let node = env_u64("SLURM_CPUS_ON_NODE");
    step.or(node)
        .map(|n| n as u32)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1))
        .max(1)
}

/// Where this node keeps the package versions it was sent: on its own disk (the
/// temporary folder), per user and per node, so that nodes sharing a home never share
/// (or race on) a cache.
fn package_cache() -> std::path::PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("soam-deploy-{uid}")).join(node_name())
}

/// Package versions being received, and why a version could not be unpacked here.
#[derive(Default)]
struct Received {
    uploads: HashMap<String, soam_deploy::Upload>,
    failed: HashMap<String, String>,
}

impl Received {
    fn chunk(&mut self, sha: String, data: &[u8], last: bool) {
        let cache = package_cache();
        if self.failed.contains_key(&sha) || cache.join("deploy").join(&sha).is_dir() {
            return;
        }
        let up = match self.uploads.entry(sha.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match soam_deploy::Upload::new(&cache.join("packages")) {
                Ok(u) => v.insert(u),
                Err(e) => {
                    self.failed.insert(sha, e.to_string());
                    return;
                }
            },
        };
        if let Err(e) = up.write(data) {
            self.uploads.remove(&sha);
            self.failed.insert(sha, e.to_string());
            return;
        }
        if !last {
            return;
        }
        let Some(up) = self.uploads.remove(&sha) else { return };
        let done = up.finish(&cache.join("packages")).and_then(|(got, _, archive)| {
            let unpacked = if got == sha {
                soam_deploy::unpack(&archive, &cache.join("deploy").join(&sha)).map(|_| ())
            } else {
                Err(soam_deploy::PackageError::Damaged(format!("it arrived as {got}")))
            };
            let _ = std::fs::remove_file(&archive);
            unpacked
        });
        if let Err(e) = done {
            self.failed.insert(sha, e.to_string());
        }
    }
}

fn service(spec: soam_proto::worker::ServiceSpec) -> Service {
    Service {
        name: spec.name,
        default: false,
        mode: if spec.exec { Mode::Exec } else { Mode::Persistent },
        command: spec.command,
        work_dir: spec.work_dir.into(),
        // Its package's copy on this node; without one, the agent put in what it
        // stands for before sending the spec.
        deploy_dir: spec
            .package
            .as_ref()
            .map(|sha| package_cache().join("deploy").join(sha))
            .unwrap_or_default(),
        package: None,
        env: spec.env.into_iter().collect(),
        launcher: Launcher::Local,
        control: Control::default(),
    }
}

/// An exec task's result as the service-protocol reply a persistent service would
/// have written.
fn encoded_reply(kind: wire::Kind, status: Status, task: u64, attempt: u32, code: i32, payload: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(4 + wire::HEADER + payload.len());
    wire::encode(
        &mut out,
        &Message {
            kind,
            status,
            session: 0,
            task,
            attempt,
            code,
            payload,
        },
    );
    out.into()
}

/// The connection back to the agent (`SOAM_WORKER_CONNECT`, set by the agent that
/// started this worker), for reading and for writing.
fn connect() -> Result<(TcpStream, TcpStream), String> {
    let addr = std::env::var("SOAM_WORKER_CONNECT")
        .map_err(|_| "SOAM_WORKER_CONNECT is not set: soam-worker is started by soamd on a Slurm node, not by hand".to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match TcpStream::connect(&addr) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => return Err(format!("cannot connect back to the agent at {addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let _ = stream.set_nodelay(true);
    let read = stream.try_clone().map_err(|e| e.to_string())?;
    Ok((read, stream))
}

/// Serves the agent until told to stop or cut off.
pub async fn run() -> Result<(), String> {
    crate::instance::IN_WORKER.store(true, std::sync::atomic::Ordering::Relaxed);
    let job = env_u64("SLURM_JOB_ID").unwrap_or(0);
    let (input, output) = connect()?;
    let (out_tx, out_rx) = mpsc::unbounded_channel::<FromWorker>();
    let writer = std::thread::Builder::new()
        .name("soam-worker-out".into())
        .spawn(move || write_out(output, out_rx))
        .map_err(|e| e.to_string())?;
    let _ = out_tx.send(FromWorker::Hello {
        token: std::env::var("SOAM_WORKER_TOKEN").unwrap_or_default(),
        node: node_name(),
        cpus: cpus(),
        job,
        pid: std::process::id(),
    });
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<(u64, InstEvent)>();
    let sink: crate::ports::EventSink = Arc::new(move |id, ev| {
        let _ = ev_tx.send((id, ev));
    });
    // Requests are read (and replies written) on threads of their own with plain
    // blocking calls, as when this was a pipe, where tokio's stdio measured slower
    // (docs/benchmarks.md); not measured again over TCP.
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<ToWorker>();
    std::thread::Builder::new()
        .name("soam-worker-in".into())
        .spawn(move || read_in(input, req_tx))
        .map_err(|e| e.to_string())?;
    // stdin comes from the agent's srun and carries nothing: its end means srun is
    // gone (the agent's host died, or the step is ending).
    let (lifeline_tx, mut lifeline) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("soam-worker-lifeline".into())
        .spawn(move || {
            use std::io::Read;
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = lifeline_tx.send(());
        })
        .map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut insts: HashMap<u64, instance::InstTx> = HashMap::new();
    let mut received = Received::default();
    // When Slurm ends the step (scancel, time limit, node down) every process of it
    // gets SIGTERM at once: an instance or task may report dying of it before this
    // worker has handled its own. Such reports wait a moment here; if the worker is
    // stopping by then they are dropped, and the agent requeues the work as lost (no
    // retry counted) instead of seeing a task fail.
    let mut held: Vec<(tokio::time::Instant, FromWorker)> = Vec::new();
    let why = loop {
        let next_due = held.first().map(|(t, _)| *t);
        tokio::select! {
            _ = async { tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)).await }, if next_due.is_some() => {
                let now = tokio::time::Instant::now();
                while held.first().is_some_and(|(t, _)| *t <= now) {
                    let _ = out_tx.send(held.remove(0).1);
                }
            }
            req = req_rx.recv() => match req {
                Some(ToWorker::Start { inst, app, service: spec }) => {
                    let unpack_failed = spec.package.as_ref().and_then(|sha| received.failed.get(sha).map(|e| (sha.clone(), e.clone())));
                    if let Some((sha, e)) = unpack_failed {
                        let why = format!("service '{}': its package version {} cannot be unpacked on {}: {e}", spec.name, &sha[..sha.len().min(12)], node_name());
                        let _ = out_tx.send(FromWorker::Exited { inst, why });
                        continue;
                    }
                    let spawned = instance::spawn_with(inst, &app, Arc::new(service(spec)), None, sink.clone(), Replies::Raw);
                    insts.insert(inst, spawned.tx);
                }
                // Unpacked here, before the next message: a Start after it finds it.
                Some(ToWorker::PackageChunk { sha256, data, last }) => received.chunk(sha256, &data, last),
                Some(ToWorker::Input { inst, bytes }) => {
                    if let Some(tx) = insts.get(&inst) {
                        let _ = tx.send(InstCmd::Raw(bytes));
                    }
                }
                Some(ToWorker::Kill { inst }) => {
                    if let Some(tx) = insts.get(&inst) {
                        let _ = tx.send(InstCmd::Kill);
                    }
                }
                Some(ToWorker::Stop) => break "the agent stopped it",
                None => break "its agent is gone (input ended)",
            },
            ev = ev_rx.recv() => match ev {
                Some((inst, InstEvent::Output(bytes))) => {
                    let _ = out_tx.send(FromWorker::Output { inst, bytes });
                }
                // Exec tasks' results, which the worker produced itself.
                Some((inst, InstEvent::Reply { kind, status, task, attempt, code, payload })) => {
                    let signalled = status != Status::Success && by_signal(&payload);
                    let m = FromWorker::Output { inst, bytes: encoded_reply(kind, status, task, attempt, code, &payload) };
                    if signalled {
                        held.push((tokio::time::Instant::now() + HOLD, m));
                    } else {
                        let _ = out_tx.send(m);
                    }
                }
                Some((inst, InstEvent::Exited { why })) => {
                    insts.remove(&inst);
                    let signalled = by_signal(why.as_bytes());
                    let m = FromWorker::Exited { inst, why };
                    if signalled {
                        held.push((tokio::time::Instant::now() + HOLD, m));
                    } else {
                        let _ = out_tx.send(m);
                    }
                }
                None => break "no event source",
            },
            _ = term.recv() => break "SIGTERM",
            _ = &mut lifeline => break "its srun is gone (stdin ended)",
        }
    };
    eprintln!("soam-worker on {}: stopping: {why}", node_name());
    for tx in insts.values() {
        let _ = tx.send(InstCmd::Kill);
    }
    // Give instances a moment to end, then go. Nothing more is reported: the agent
    // requeues whatever ran here when this worker's step ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !insts.is_empty() {
        match tokio::time::timeout_at(deadline, ev_rx.recv()).await {
            Ok(Some((inst, InstEvent::Exited { .. }))) => {
                insts.remove(&inst);
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    if job > 0 && std::env::var("SOAM_WORKER_CANCEL_JOB").as_deref() == Ok("1") {
        // The allocation exists for this agent only: do not leave it held.
        let _ = tokio::process::Command::new("scancel").arg(job.to_string()).status().await;
    }
    drop(out_tx);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    Ok(())
}

fn read_in(input: TcpStream, req_tx: mpsc::UnboundedSender<ToWorker>) {
    use std::io::Read;
    let mut input = std::io::BufReader::with_capacity(1 << 16, input);
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if input.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > frame::MAX_FRAME {
            eprintln!("soam-worker: a {len}-byte message from the agent is over the cap");
            return;
        }
        body.resize(len, 0);
        if input.read_exact(&mut body).is_err() {
            return;
        }
        match frame::decode::<ToWorker>(&body) {
            Ok(m) => {
                if req_tx.send(m).is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("soam-worker: bad message from the agent: {e}");
                return;
            }
        }
    }
}

/// Writes what is queued, coalescing everything already waiting into one write.
fn write_out(mut out: TcpStream, mut rx: mpsc::UnboundedReceiver<FromWorker>) {
    use std::io::Write;
    let mut buf = Vec::with_capacity(1 << 16);
    while let Some(m) = rx.blocking_recv() {
        buf.clear();
        let mut next = Some(m);
        while let Some(m) = next {
            let _ = frame::encode_into(&m, &mut buf);
            next = if buf.len() < 1 << 20 { rx.try_recv().ok() } else { None };
        }
        if out.write_all(&buf).is_err() {
            return;
        }
    }
}
