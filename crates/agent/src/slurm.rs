//! Talking to Slurm, outside the core: asking for an allocation (`salloc --no-shell`),
//! starting a worker on each of its nodes (`srun --jobid=J -w NODE`), reading the queue
//! (`squeue`) and releasing (`scancel`). Each runs on its own task and reports to the
//! core as a [`ClusterEvent`]; the core decides.
//!
//! Slurm's own words reach the user: a refused `salloc` is reported with its error
//! lines, a pending job with the reason `squeue` gives.
//!
//! A worker's traffic does not go through the step's stdio: Slurm's I/O connection
//! between srun and slurmstepd is a TCP stream without `TCP_NODELAY`, and a service's
//! request/reply pattern over it settles now and then into Nagle's algorithm waiting
//! for delayed acknowledgements, a round trip many times slower (figures in
//! docs/cluster.md). So each worker connects back to the agent over TCP (the
//! [`Rendezvous`]), with `TCP_NODELAY`, and proves who it is with a 128-bit token the
//! agent gave only to that worker's srun, through the environment (readable by the
//! agent's user and root only, never on a command line). The step's stdio stays open
//! as the worker's lifeline: when srun goes, the worker stops.

use crate::ports::{ClusterEvent, CoreMsg, Inbox, JobStatus};
use soam_profile::SlurmOptions;
use soam_proto::frame;
use soam_proto::worker::{FromWorker, ToWorker};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

/// How long a started worker has to connect back.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a connection may send before it has shown its token.
const HELLO_CAP: usize = 4096;

/// Where workers connect back: one TCP listener per agent, opened with its first
/// allocation. Each connection's first frame is the worker's `Hello` with the token
/// of a worker being started; anything else is dropped.
pub struct Rendezvous {
    /// `host:port` as workers are told to reach it.
    pub addr: String,
    /// Workers started and not yet connected, by token.
    waiting: Mutex<HashMap<String, oneshot::Sender<(TcpStream, FromWorker)>>>,
}

impl Rendezvous {
    /// Listens on every interface at `port` (0: any free one), advertised as `host`
    /// (default: this host's name).
    pub fn open(host: Option<&str>, port: u16) -> Result<Arc<Rendezvous>, String> {
        let listener = std::net::TcpListener::bind(("0.0.0.0", port))
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| format!("cannot listen for cluster workers on port {port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let host = host.map(str::to_string).unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|| "localhost".into())
        });
        let rdv = Arc::new(Rendezvous {
            addr: format!("{host}:{port}"),
            waiting: Mutex::new(HashMap::new()),
        });
        tracing::info!("cluster workers connect back to {}", rdv.addr);
        let weak = Arc::downgrade(&rdv);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors, say: wait rather than spin.
                        tracing::warn!("accepting a worker connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let Some(rdv) = weak.upgrade() else { return };
                tokio::spawn(async move {
                    if let Err(why) = rdv.admit(stream).await {
                        tracing::warn!("worker connection from {peer} dropped: {why}");
                    }
                });
            }
        });
        Ok(rdv)
    }

    async fn admit(&self, mut stream: TcpStream) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        let hello = tokio::time::timeout(Duration::from_secs(10), async {
            let len = frame::read_len(&mut stream, HELLO_CAP).await?;
            let body = frame::read_body(&mut stream, len).await?;
            frame::decode::<FromWorker>(&body)
        })
        .await
        .map_err(|_| "no hello within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
        let FromWorker::Hello { token, .. } = &hello else {
            return Err("its first message is not a hello".into());
        };
        let waiter = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
        match waiter {
            Some(w) => {
                let _ = w.send((stream, hello));
                Ok(())
            }
            None => Err("unknown token".into()),
        }
    }

    fn expect(&self, token: String) -> oneshot::Receiver<(TcpStream, FromWorker)> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(token, tx);
        rx
    }

    fn forget(&self, token: &str) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}

/// 128 random bits in hex: a worker's proof that the agent started it.
fn new_token() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a worker token: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Seconds in squeue's time-left format (`[D-]H:M:S`, `M:S`); `None` for UNLIMITED and
/// the like.
pub fn parse_left(s: &str) -> Option<u64> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [s] => *s,
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(days * 86_400 + secs)
}

/// `salloc` arguments for one allocation of `o`.
fn salloc_args(o: &SlurmOptions, name: &str) -> Vec<String> {
    let mut a = vec![
        "--no-shell".to_string(),
        format!("--job-name={name}"),
        format!("--nodes={}", o.nodes),
    ];
    match o.cpus_per_node {
        Some(c) => a.extend(["--ntasks-per-node=1".to_string(), format!("--cpus-per-task={c}")]),
        None => a.push("--exclusive".into()),
    }
    for (flag, v) in [
        ("partition", &o.partition),
        ("account", &o.account),
        ("qos", &o.qos),
        ("time", &o.time_limit),
        ("mem", &o.memory),
    ] {
        if let Some(v) = v {
            a.push(format!("--{flag}={v}"));
        }
    }
    a.extend(o.extra_args.iter().cloned());
    a
}

/// Asks for an allocation and reports it queued, granted (with its nodes) or refused.
pub fn request(alloc: u64, opts: SlurmOptions, name: String, inbox: Inbox) {
    tokio::spawn(async move {
        let ev = match request_inner(alloc, &opts, &name, &inbox).await {
            Ok(ev) => ev,
            Err((why, queued)) => ClusterEvent::AllocFailed { alloc, why, queued },
        };
        inbox.send(CoreMsg::Cluster(ev));
    });
}

/// Errors say whether Slurm had queued the request (a job id was given) before it
/// failed: then the failure is of that job (revoked, cancelled), not a refusal.
async fn request_inner(alloc: u64, opts: &SlurmOptions, name: &str, inbox: &Inbox) -> Result<ClusterEvent, (String, bool)> {
    let mut cmd = Command::new("salloc");
    cmd.args(salloc_args(opts, name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // If the agent dies while the request waits in the queue, salloc gets SIGTERM and
    // withdraws it: no allocation is granted to nobody.
    // SAFETY: prctl takes plain integers and is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| (format!("cannot run salloc: {e}"), false))?;
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut job = None;
    let mut said = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!("salloc: {line}");
        if job.is_none()
            && let Some(j) = line
                .split_whitespace()
                .filter_map(|w| w.trim_end_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().ok())
                .next()
            && (line.contains("allocation") || line.contains("job"))
        {
            job = Some(j);
            if line.contains("Pending") || line.contains("queued") {
                inbox.send(CoreMsg::Cluster(ClusterEvent::AllocQueued { alloc, job: j }));
            }
        }
        if line.contains("error") {
            said.push(line.trim().to_string());
        }
    }
    let status = child.wait().await.map_err(|e| (format!("salloc: {e}"), job.is_some()))?;
    let job = match (status.success(), job) {
        (true, Some(j)) => j,
        (_, queued) => {
            let why = if said.is_empty() {
                format!("salloc ended with {status}")
            } else {
                said.join("; ")
            };
            return Err((why, queued.is_some()));
        }
    };
    let (nodes, cpus) = job_nodes(job).await.map_err(|e| (e, true))?;
    Ok(ClusterEvent::AllocGranted { alloc, job, nodes, cpus })
}

/// The nodes of a running job and the CPUs it holds on each.
async fn job_nodes(job: u64) -> Result<(Vec<String>, u32), String> {
    let out = Command::new("squeue")
        .args(["-h", "-j", &job.to_string(), "-o", "%N|%C|%D"])
        .output()
        .await
        .map_err(|e| format!("cannot run squeue: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut f = text.split('|');
    let (list, cpus, count) = (f.next().unwrap_or(""), f.next().unwrap_or("1"), f.next().unwrap_or("1"));
    let out = Command::new("scontrol")
        .args(["show", "hostnames", list])
        .output()
        .await
        .map_err(|e| format!("cannot run scontrol: {e}"))?;
    let nodes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if nodes.is_empty() {
        return Err(format!("job {job} was granted but squeue shows no nodes for it"));
    }
    let per = cpus.parse::<u32>().unwrap_or(1) / count.parse::<u32>().unwrap_or(1).max(1);
    Ok((nodes, per.max(1)))
}

/// The worker program started on each node: `SOAM_WORKER_BIN`, or `soam-worker` next
/// to this agent (clusters share the software's folder between login and compute
/// nodes), or on PATH.
fn worker_binary() -> String {
    if let Some(p) = std::env::var_os("SOAM_WORKER_BIN") {
        return p.to_string_lossy().into_owned();
    }
    std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name("soam-worker"))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "soam-worker".into())
}

/// Starts the worker of `node` as a step of `job`; returns where to send it requests.
/// Its messages, and its end (with what srun said), come to the core as events.
pub fn start_worker(worker: u64, job: u64, node: &str, cpus: u32, rdv: Arc<Rendezvous>, inbox: Inbox) -> mpsc::UnboundedSender<ToWorker> {
    let (tx, rx) = mpsc::unbounded_channel::<ToWorker>();
    let node = node.to_string();
    tokio::spawn(async move {
        let (why, child) = run_worker(job, &node, cpus, &rdv, rx, &inbox, worker).await;
        let why = match child {
            Some((mut child, err_tail)) => {
                // The worker ends its step when its connection goes; srun follows.
                let status = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(s) => s.map(|s| s.to_string()).unwrap_or_default(),
                    Err(_) => {
                        let _ = child.kill().await;
                        "killed".into()
                    }
                };
                let said = err_tail.await.unwrap_or_default();
                if said.is_empty() {
                    format!("srun {status} ({why})")
                } else {
                    format!("srun {status}: {said}")
                }
            }
            None => why,
        };
        let slurm_lost = lost_by_slurm(job, &node).await;
        inbox.send(CoreMsg::Cluster(ClusterEvent::WorkerGone { worker, why, slurm_lost }));
    });
    tx
}

type Srun = (tokio::process::Child, tokio::task::JoinHandle<String>);

/// Runs one worker until its connection ends; returns why, and srun if it started.
async fn run_worker(
    job: u64,
    node: &str,
    cpus: u32,
    rdv: &Rendezvous,
    mut rx: mpsc::UnboundedReceiver<ToWorker>,
    inbox: &Inbox,
    worker: u64,
) -> (String, Option<Srun>) {
    let token = match new_token() {
        Ok(t) => t,
        Err(e) => return (e, None),
    };
    let connected = rdv.expect(token.clone());
    let mut cmd = Command::new("srun");
    cmd.args([
        format!("--jobid={job}"),
        "--nodes=1".into(),
        "--ntasks=1".into(),
        format!("--nodelist={node}"),
        format!("--cpus-per-task={cpus}"),
        "--overlap".into(),
        "--quiet".into(),
        "--export=ALL".into(),
        worker_binary(),
    ])
    .env("SOAM_WORKER_CANCEL_JOB", "1")
    .env("SOAM_WORKER_CONNECT", &rdv.addr)
    .env("SOAM_WORKER_TOKEN", &token)
    // Held open and never written: the worker's lifeline (see the module doc).
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            rdv.forget(&token);
            return (format!("cannot run srun: {e}"), None);
        }
    };
    // Taken out of `child`, whose `wait` would close it.
    let _lifeline = child.stdin.take();
    let stderr = child.stderr.take().expect("piped");
    let tag = node.to_string();
    let err_tail = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::info!("worker on {tag}: {l}");
            tail.push(l);
            if tail.len() > 3 {
                tail.remove(0);
            }
        }
        tail.join("; ")
    });
    let (stream, hello) = tokio::select! {
        c = connected => match c {
            Ok(c) => c,
            Err(_) => return ("its connection was lost before it was made".into(), Some((child, err_tail))),
        },
        _ = child.wait() => {
            rdv.forget(&token);
            return ("it ended before connecting back".into(), Some((child, err_tail)));
        }
        _ = tokio::time::sleep(CONNECT_TIMEOUT) => {
            rdv.forget(&token);
            let _ = child.start_kill();
            let why = format!(
                "the worker did not connect back to {} within {} s (can node {node} reach that address? see workerHost in docs/cluster.md)",
                rdv.addr,
                CONNECT_TIMEOUT.as_secs()
            );
            return (why, Some((child, err_tail)));
        }
    };
    inbox.send(CoreMsg::Cluster(ClusterEvent::WorkerMsg { worker, msg: hello }));
    let (read, write) = stream.into_split();
    let writer = tokio::spawn(async move { frame::write_queued(write, &mut rx).await });
    // Buffered: a worker's messages are often small, two reads each unbuffered.
    let mut read = BufReader::with_capacity(1 << 16, read);
    let why = loop {
        match frame::read_msg::<_, FromWorker>(&mut read).await {
            Ok(msg) => inbox.send(CoreMsg::Cluster(ClusterEvent::WorkerMsg { worker, msg })),
            Err(e) => break e.to_string(),
        }
    };
    writer.abort();
    (why, Some((child, err_tail)))
}

/// Whether Slurm itself took a worker's ground away: its job is no longer running
/// (cancelled, failed with its node, out of time) or its node is down, drained or
/// not responding. Such an end says nothing about whether workers can start. Asked of
/// Slurm rather than read from srun's words, which change between versions; a Slurm
/// that does not answer in time counts as not lost.
async fn lost_by_slurm(job: u64, node: &str) -> bool {
    let ask = async {
        let j = Command::new("squeue")
            .args(["-h", "-j", &job.to_string(), "-o", "%T"])
            .output()
            .await
            .ok()?;
        let job_state = String::from_utf8_lossy(&j.stdout).trim().to_string();
        let n = Command::new("sinfo")
            .args(["-h", "-N", "-n", node, "-o", "%T"])
            .output()
            .await
            .ok()?;
        let node_state = String::from_utf8_lossy(&n.stdout).trim().to_lowercase();
        if !n.status.success() {
            return None;
        }
        Some(job_ended_or_node_lost(j.status.success(), &job_state, &node_state))
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The verdict of [`lost_by_slurm`] from squeue's job state and sinfo's node state,
/// asked of a controller that answered. squeue refuses (`squeue_ok` false) or lists
/// nothing for a job it no longer knows: that job has ended.
pub fn job_ended_or_node_lost(squeue_ok: bool, job_state: &str, node_state: &str) -> bool {
    let job_gone = !squeue_ok || !matches!(job_state, "RUNNING" | "CONFIGURING");
    let node_gone = ["down", "drain", "fail", "not_responding", "unknown"]
        .iter()
        .any(|s| node_state.contains(s))
        || node_state.ends_with('*');
    job_gone || node_gone
}

/// Reads the state of these jobs; jobs Slurm no longer lists are left out.
pub fn poll(jobs: Vec<u64>, inbox: Inbox) {
    tokio::spawn(async move {
        let list: Vec<String> = jobs.iter().map(u64::to_string).collect();
        let out = Command::new("squeue")
            .args(["-h", "-j", &list.join(","), "-o", "%i|%T|%r|%L"])
            .output()
            .await;
        let Ok(out) = out else { return };
        if !out.status.success() {
            // squeue refuses a list with ended jobs on some versions: ask for all ours.
            return inbox.send(CoreMsg::Cluster(ClusterEvent::Polled(None)));
        }
        let rows = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.trim().split('|').collect();
                Some(JobStatus {
                    job: f.first()?.parse().ok()?,
                    state: f.get(1)?.to_string(),
                    reason: f.get(2)?.to_string(),
                    time_left_s: f.get(3).and_then(|t| parse_left(t)),
                })
            })
            .collect();
        inbox.send(CoreMsg::Cluster(ClusterEvent::Polled(Some(rows))));
    });
}

/// Releases an allocation.
pub fn cancel(job: u64) {
    tokio::spawn(async move {
        let _ = Command::new("scancel").arg(job.to_string()).status().await;
    });
}

/// Releases these allocations and waits (briefly) until Slurm took the request.
pub async fn cancel_now(jobs: &[u64]) {
    let mut cmd = Command::new("scancel");
    cmd.args(jobs.iter().map(u64::to_string));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cmd.status()).await;
}

/// Cancels what an earlier life of this agent left (its jobs carry this name).
pub async fn cancel_leftovers(name: &str) {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.name);
    let mut cmd = Command::new("scancel");
    cmd.arg(format!("--name={name}"));
    if let Some(u) = user {
        cmd.arg(format!("--user={u}"));
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cmd.status()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_losses_are_told_from_worker_failures() {
        // A worker whose program fails: its job runs on, its node is fine.
        assert!(!job_ended_or_node_lost(true, "RUNNING", "mixed"));
        assert!(!job_ended_or_node_lost(true, "RUNNING", "allocated"));
        // Slurm took the ground away.
        assert!(job_ended_or_node_lost(true, "RUNNING", "down*"));
        assert!(job_ended_or_node_lost(true, "RUNNING", "drained"));
        assert!(job_ended_or_node_lost(true, "RUNNING", "idle*"));
        assert!(job_ended_or_node_lost(true, "NODE_FAIL", "idle"));
        assert!(job_ended_or_node_lost(true, "COMPLETING", "mixed"));
        assert!(job_ended_or_node_lost(true, "", "idle"));
        assert!(job_ended_or_node_lost(false, "", "idle"));
    }

    fn hello(token: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let m = FromWorker::Hello {
            token: token.into(),
            node: "n1".into(),
            cpus: 2,
            job: 7,
            pid: 1,
        };
        frame::encode_into(&m, &mut out).unwrap();
        out
    }

    /// Reads until the agent closes the connection (true) or 5 s pass (false).
    async fn closed_by_agent(s: &mut TcpStream) -> bool {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn only_a_worker_with_its_token_gets_in() {
        use tokio::io::AsyncWriteExt;
        let rdv = Rendezvous::open(Some("127.0.0.1"), 0).unwrap();
        let token = new_token().unwrap();
        assert_eq!(token.len(), 32);
        let mut waiting = rdv.expect(token.clone());
        // A wrong token, a first message that is no hello, an over-long first frame:
        // each connection is closed and the worker still waited for stays waiting.
        for bytes in [
            hello(&new_token().unwrap()),
            {
                let mut v = Vec::new();
                frame::encode_into(&FromWorker::Exited { inst: 1, why: "x".into() }, &mut v).unwrap();
                v
            },
            ((HELLO_CAP + 1) as u32).to_le_bytes().to_vec(),
        ] {
            let mut s = TcpStream::connect(&rdv.addr).await.unwrap();
            s.write_all(&bytes).await.unwrap();
            assert!(closed_by_agent(&mut s).await);
            assert!(waiting.try_recv().is_err());
        }
        // The right one is handed over with its hello, once.
        let mut s = TcpStream::connect(&rdv.addr).await.unwrap();
        s.write_all(&hello(&token)).await.unwrap();
        let (_stream, h) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(matches!(h, FromWorker::Hello { job: 7, .. }));
        let mut again = TcpStream::connect(&rdv.addr).await.unwrap();
        again.write_all(&hello(&token)).await.unwrap();
        assert!(closed_by_agent(&mut again).await);
    }
}
