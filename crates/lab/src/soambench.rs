//! `soambench`: measures SPEC section 12 on this machine, with its own agent in a
//! temporary home and the Rust no-op service (`soam-echo-service --noop`).
//!
//! Every figure is end to end as a client sees it: sessions are driven through the
//! client library (submit many tasks per frame, collect, acknowledge), the agent is the
//! real `soamd` binary, and `soamview` is the real command. `--quick` runs the same code
//! on small sizes (CI checks it completes and prints valid JSON, never its speed).

use crate::floor::{Percentiles, percentiles};
use crate::rounds::{Figure, Latency, collect, collect_one, create, create_request, median, session_ref, submit, throughput};
use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;
use soam_client::{Client, ConnectOptions};
use soam_proto::msg::{Event, Reply, Request, SessionAction};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "soambench",
    version,
    about = "Measure soam against SPEC section 12 (throughput, latency, memory, restart, soamview)",
    after_help = soam_cli::common::exit::after_help("Examples:\n  soambench            # full sizes, a table\n  soambench --json     # one JSON object with the SPEC keys\n  soambench --quick    # small sizes (CI)\n  soambench --python   # the Python package's figures beside the Rust client's")
)]
pub struct Args {
    /// One JSON object with the SPEC section 12 keys
    #[arg(long)]
    pub json: bool,
    /// Small sizes of the same measurements
    #[arg(long)]
    pub quick: bool,
    /// Agent slots (default: number of CPUs)
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
    /// Instead: 1,000,000 tasks through 1, 10, 1,000 and 10,000 busy sessions at once;
    /// then 10,000 open sessions plus one of 1,000,000 pending tasks, and how fast
    /// soamview answers then
    #[arg(long)]
    pub scale: bool,
    /// Instead: agent memory and a normal client's throughput under hostile clients
    /// (700 pipelined ListApps never read; 8 connections sending maximal frames)
    #[arg(long, conflicts_with_all = ["json", "scale"])]
    pub attack: bool,
    /// Instead: throughput through the session library against raw requests
    /// (alternating runs), and how fast the offline journal is written and replayed
    #[arg(long, conflicts_with_all = ["json", "scale", "attack"])]
    pub client: bool,
    /// Instead: one session of 10,000,000 tasks run and collected (the agent's peak
    /// memory), and a restart with 10,000,000 recoverable tasks pending
    #[arg(long, conflicts_with_all = ["scale", "attack", "client"])]
    pub big: bool,
    /// Instead: only one task's latency and 1 MiB payloads, each against its floor
    #[arg(long, conflicts_with_all = ["scale", "attack", "client", "big"])]
    pub floor: bool,
    /// Instead: only the Python package's figures (its client, soamapi, pure-Python
    /// service instances, a round trip), each run in turn with the Rust client's; needs
    /// the package installed for python3 (pip install .) or SOAM_PYTHON
    #[arg(long, conflicts_with_all = ["scale", "attack", "client", "big", "floor"])]
    pub python: bool,
}

struct Sizes {
    throughput_tasks: usize,
    throughput_runs: usize,
    exec_tasks: usize,
    latency_rounds: usize,
    /// Rounds after an idle pause, soam's and the floor's each.
    idle_rounds: usize,
    /// 1 MiB tasks a payload run sends (and gets back).
    payload_tasks: usize,
    big_session: usize,
    soamview_runs: usize,
}

/// The agent under test, in its own home; killed when dropped.
struct Agent {
    home: PathBuf,
    bin_dir: PathBuf,
    slots: u32,
    child: Option<Child>,
}

impl Agent {
    fn opts(&self) -> ConnectOptions {
        let mut o = ConnectOptions::from_env("soambench", Some(self.home.join("run/soamd.sock")));
        o.autostart = false;
        o
    }

    /// Starts soamd; returns the time until it answered a status request.
    fn start(&mut self) -> anyhow::Result<Duration> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("agent.log"))?;
        let t0 = Instant::now();
        let child = Command::new(self.bin_dir.join("soamd"))
            .args(["--slots", &self.slots.to_string()])
            .env("SOAM_HOME", &self.home)
            .env_remove("SOAM_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start soamd (is it built next to soambench?)")?;
        self.child = Some(child);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let opts = self.opts();
        rt.block_on(async {
            loop {
                if let Ok(c) = Client::connect(&opts).await
                    && c.call(Request::Status).await.is_ok()
                {
                    return Ok(t0.elapsed());
                }
                if t0.elapsed() > Duration::from_secs(60) {
                    bail!(
                        "the agent did not answer within 60 s (see {})",
                        self.home.join("agent.log").display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// `count` of each thread's `/proc/PID/task/TID/<file>`, summed over the threads of
/// `pid` (0 once it is gone).
fn over_threads(pid: u32, file: &str, count: impl Fn(&str) -> u64) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join(file)).ok())
        .map(|text| count(&text))
        .sum()
}

/// Times the threads of process `pid` have stopped running (they waited, or were
/// preempted), all threads together: a count of its wake-ups that noise does not move.
pub(crate) fn switches(pid: u32) -> u64 {
    over_threads(pid, "status", |st| {
        st.lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    })
}

/// CPU time of all the threads of `pid` so far, in nanoseconds (the first field of each
/// thread's `schedstat`, which the kernel keeps in nanoseconds where `/proc/PID/stat`
/// counts clock ticks).
pub(crate) fn cpu_ns(pid: u32) -> u64 {
    over_threads(pid, "schedstat", |st| {
        st.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
    })
}

/// What one process did per round of a latency phase: thread switches and CPU time.
#[derive(Clone, Copy, Default)]
pub struct PerRound {
    pub switches: f64,
    pub cpu_us: f64,
}

/// Switches and CPU time of one process summed over the blocks of rounds it was
/// measured in (the floor's and soam's blocks alternate, and the client is in both).
pub(crate) struct Tally {
    pid: u32,
    switches: u64,
    ns: u64,
    rounds: usize,
}

impl Tally {
    pub(crate) fn new(pid: u32) -> Tally {
        Tally {
            pid,
            switches: 0,
            ns: 0,
            rounds: 0,
        }
    }

    /// Runs `block` of `rounds` rounds, adding what each tally's process did in it.
    pub(crate) fn measure<T>(tallies: [&mut Tally; 2], rounds: usize, block: impl FnOnce() -> T) -> T {
        let at = tallies.each_ref().map(|t| (switches(t.pid), cpu_ns(t.pid)));
        let out = block();
        for (t, (sw, ns)) in tallies.into_iter().zip(at) {
            t.switches += switches(t.pid).saturating_sub(sw);
            t.ns += cpu_ns(t.pid).saturating_sub(ns);
            t.rounds += rounds;
        }
        out
    }

    pub(crate) fn per_round(&self) -> PerRound {
        let n = self.rounds.max(1) as f64;
        PerRound {
            switches: self.switches as f64 / n,
            cpu_us: self.ns as f64 / n / 1000.0,
        }
    }
}

fn rss_mib(pid: u32) -> f64 {
    crate::attack::mem_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0
}

/// As `throughput`, through the session library (`soam_client::session`): batches
/// under request ids (`atomic`: one submission, staged and accepted whole), outputs
/// through `next`, acknowledged.
async fn throughput_library(opts: &ConnectOptions, n: usize, atomic: bool) -> anyhow::Result<f64> {
    use soam_client::session::{Next, Session, SessionConfig};
    let t0 = Instant::now();
    let mut s = Session::create(SessionConfig::new(opts.clone()), "bench", None).await?;
    if atomic {
        s.submit(vec![Bytes::new(); n]).await?;
    } else {
        s.submit_streaming(vec![Bytes::new(); n]).await?;
    }
    let mut got = 0;
    while got < n {
        match s.next().await? {
            Next::Outputs(o) => {
                got += o.len();
                s.ack(&o);
            }
            Next::Drained => {}
            other => bail!("session stopped: {other:?}"),
        }
    }
    s.close().await?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// The library against raw requests, and the offline journal: written with the agent
/// away, replayed into it.
fn client(agent: &Agent, rt: &tokio::runtime::Runtime, tasks: usize, runs: usize, entries: usize) -> anyhow::Result<()> {
    use soam_client::journal;
    let mut opts = agent.opts();
    // The journal of the bench's own home, not the user's.
    opts.paths.data_dir = agent.home.join("data");
    let (mut raw, mut lib, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        raw.push(rt.block_on(throughput(&opts, "bench", None, tasks))?);
        lib.push(rt.block_on(throughput_library(&opts, tasks, false))?);
        whole.push(rt.block_on(throughput_library(&opts, tasks, true))?);
    }
    let (raw, lib, whole) = (median(&mut raw), median(&mut lib), median(&mut whole));
    let per_entry = tasks / entries;
    let inputs = vec![Bytes::from_static(b"journalled"); per_entry];
    let t0 = Instant::now();
    for _ in 0..entries {
        let target = journal::new_target("bench", None, false);
        journal::add_submit(&opts, target, soam_client::session::new_request_id(), &inputs)?;
    }
    let write_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let replayed = rt.block_on(journal::replay(&opts, false))?.context("the journal was busy")?;
    let replay_s = t0.elapsed().as_secs_f64();
    if replayed.done.len() != entries || replayed.stopped.is_some() {
        bail!(
            "replay carried out {} of {entries} entries ({:?})",
            replayed.done.len(),
            replayed.stopped
        );
    }
    let total = (per_entry * entries) as f64;
    let out = json!({
        "tasks_per_run": tasks,
        "runs": runs,
        "throughput_raw_requests_tasks_per_s": raw.round(),
        "throughput_session_library_tasks_per_s": lib.round(),
        "library_to_raw_ratio": (lib / raw * 1000.0).round() / 1000.0,
        "throughput_session_library_atomic_submit_tasks_per_s": whole.round(),
        "atomic_to_raw_ratio": (whole / raw * 1000.0).round() / 1000.0,
        "journal_entries": entries,
        "journal_tasks": total,
        "journal_write_tasks_per_s": (total / write_s).round(),
        "journal_replay_tasks_per_s": (total / replay_s).round(),
    });
    soam_cli::outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `count` tasks of `size` bytes through the echo service and back, after one task to
/// start its instance: MB/s each way.
async fn payload(opts: &ConnectOptions, count: usize, size: usize) -> anyhow::Result<f64> {
    let mut c = Client::connect(opts).await?;
    let id = create(&c, "echo", None, true).await?;
    let s = session_ref("echo", id);
    let warm = c.send(Request::Submit {
        session: s.clone(),
        tasks: vec![Bytes::from_static(b"warm")],
    });
    collect_one(&mut c, &s).await?;
    warm.await?;
    let input = Bytes::from(vec![7u8; size]);
    let t0 = Instant::now();
    let replies: Vec<_> = soam_client::batches(vec![input; count], 16_384)
        .into_iter()
        .map(|tasks| c.send(Request::Submit { session: s.clone(), tasks }))
        .collect();
    collect(&mut c, &s, count).await?;
    let secs = t0.elapsed().as_secs_f64();
    for r in replies {
        r.await?;
    }
    c.call(Request::Close { session: s }).await?;
    Ok((count * size) as f64 / secs / 1e6)
}

/// A suspended session holding `n` pending tasks; returns its id.
async fn parked_session(opts: &ConnectOptions, stype: Option<&str>, n: usize) -> anyhow::Result<u64> {
    let c = Client::connect(opts).await?;
    let id = create(&c, "bench", stype, true).await?;
    let s = session_ref("bench", id);
    c.call(Request::SessionControl {
        session: s.clone(),
        action: SessionAction::Suspend,
    })
    .await?;
    submit(&c, &s, n).await?;
    c.call(Request::Detach { session: s }).await?;
    Ok(id)
}

fn write_profiles(home: &Path, bin_dir: &Path) -> anyhow::Result<()> {
    let svc = bin_dir.join("soam-echo-service");
    let bench = format!(
        "application: bench\nservices:\n  - name: noop\n    command: [\"{}\", \"--noop\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n  - name: Recoverable\n    recoverable: true\n    persistTaskHistory: none\n",
        svc.display()
    );
    std::fs::write(home.join("bench.yaml"), bench)?;
    let echo = format!(
        "application: echo\nservices:\n  - name: echo\n    command: [\"{}\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n",
        svc.display()
    );
    std::fs::write(home.join("echo.yaml"), echo)?;
    crate::bench_python::write_profiles(home)?;
    std::fs::write(
        home.join("exec.yaml"),
        "application: exec\nservices:\n  - name: true\n    mode: exec\n    command: [\"true\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n",
    )?;
    Ok(())
}

async fn register(opts: &ConnectOptions, home: &Path) -> anyhow::Result<()> {
    let c = Client::connect(opts).await?;
    for f in ["bench.yaml", "exec.yaml", "echo.yaml", "pysvc.yaml", "pyraw.yaml"] {
        let p = home.join(f);
        c.call(Request::RegisterApp {
            profile: std::fs::read_to_string(&p)?,
            path: p.display().to_string(),
            force: true,
        })
        .await?;
    }
    Ok(())
}

fn xargs_seconds(n: usize, slots: u32) -> anyhow::Result<f64> {
    let input: String = (0..n).map(|i| format!("{i}\n")).collect();
    let t0 = Instant::now();
    let mut child = Command::new("xargs")
        .args(["-P", &slots.to_string(), "-n", "1", "true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run xargs")?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("xargs failed: {status}");
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Median wall time of the real `soamview` command with these arguments.
fn soamview_ms(agent: &Agent, args: &[&str], runs: usize) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let o = Command::new(agent.bin_dir.join("soamview"))
            .args(args)
            .env("SOAM_HOME", &agent.home)
            .env("SOAM_NO_AUTOSTART", "1")
            .env_remove("SOAM_SOCKET")
            .stdout(Stdio::null())
            .output()?;
        if !o.status.success() {
            bail!("soamview failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(&mut times))
}

/// Memory and a normal client's throughput while hostile clients do their worst
/// (SPEC section 11: backpressure, frame budget). Peaks are the agent's `VmHWM`, reset
/// before each phase.
fn attack(agent: &Agent, rt: &tokio::runtime::Runtime, tasks: usize) -> anyhow::Result<()> {
    use crate::attack as hostile;
    let opts = agent.opts();
    let socket = agent.home.join("run/soamd.sock");
    let pid = agent.pid();
    // A profile of about 1 MiB, so each ListApps reply is that large.
    let big = agent.home.join("big.yaml");
    let mut text = String::from("application: big\nservices:\n  - name: s\n    command: [\"true\"]\n");
    for _ in 0..1000 {
        text.push_str(&format!("# {}\n", "x".repeat(1000)));
    }
    std::fs::write(&big, &text)?;
    rt.block_on(async {
        let c = Client::connect(&opts).await?;
        c.call(Request::RegisterApp {
            profile: text,
            path: big.display().to_string(),
            force: true,
        })
        .await?;
        anyhow::Ok(())
    })?;
    let rate = |runs: usize| -> anyhow::Result<f64> {
        let mut v: Vec<f64> = (0..runs)
            .map(|_| rt.block_on(throughput(&opts, "bench", None, tasks)))
            .collect::<anyhow::Result<_>>()?;
        Ok(median(&mut v))
    };
    let mib = |k: u64| k as f64 / 1024.0;
    let quiet = rate(3)?;
    if !hostile::reset_peak(pid) {
        bail!("cannot reset the agent's peak RSS (/proc/{pid}/clear_refs)");
    }
    let base = hostile::mem_kib(pid, "VmRSS").unwrap_or(0);

    // 700 ListApps of 1 MiB each, pipelined; the attacker reads nothing until the
    // normal client has measured its throughput.
    let s = hostile::connect(&socket)?;
    let w = s.try_clone()?;
    let writer = std::thread::spawn(move || hostile::pipeline_list_apps(w, 700));
    let under_pipelining = rate(3)?;
    let mut r = s;
    let answered = hostile::read_replies(&mut r, 700)?;
    writer.join().map_err(|_| anyhow::anyhow!("attacker thread panicked"))??;
    drop(r);
    let pipelining_peak = hostile::mem_kib(pid, "VmHWM").unwrap_or(0);
    let after = hostile::mem_kib(pid, "VmRSS").unwrap_or(0);

    // Eight connections sending maximal frames of empty tasks over and over.
    hostile::reset_peak(pid);
    let base2 = hostile::mem_kib(pid, "VmRSS").unwrap_or(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let frame = std::sync::Arc::new(hostile::maximal_empty_submit(1));
    let frames: Vec<_> = (0..8)
        .map(|_| {
            let (socket, stop, frame) = (socket.clone(), stop.clone(), frame.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if hostile::send_maximal_frame(&socket, &frame).is_err() {
                        break;
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let under_frames = rate(3)?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u64 = frames.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let frames_peak = hostile::mem_kib(pid, "VmHWM").unwrap_or(0);

    let out = json!({
        "tasks_per_run": tasks,
        "throughput_quiet_tasks_per_s": quiet.round(),
        "baseline_rss_mib": mib(base),
        "pipelining_requests_answered": answered,
        "pipelining_peak_above_baseline_mib": mib(pipelining_peak.saturating_sub(base)),
        "pipelining_rss_after_mib": mib(after),
        "throughput_under_pipelining_tasks_per_s": under_pipelining.round(),
        "maximal_frames_sent": sent,
        "maximal_frames_peak_above_baseline_mib": mib(frames_peak.saturating_sub(base2)),
        "throughput_under_maximal_frames_tasks_per_s": under_frames.round(),
    });
    soam_cli::outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn main() -> i32 {
    // The floor's own processes (see floor.rs): internal modes, before any parsing.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().take(4).collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some(crate::floor::ECHO_ARG) => return crate::floor::echo_main(),
        Some(crate::floor::RELAY_ARG) if argv.len() == 4 => match crate::floor::Relay::from_arg(&argv[3].to_string_lossy()) {
            Some(how) => return crate::floor::relay_main(Path::new(&argv[2]), how),
            None => return 2,
        },
        _ => {}
    }
    soam_cli::complete::from_env(<Args as clap::CommandFactory>::command);
    let args = Args::parse();
    soam_cli::common::init_logging(0);
    match bench(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("soambench: {e:#}");
            1
        }
    }
}

/// `tasks` no-op tasks spread evenly over `sessions` sessions that are all busy at once,
/// driven from `min(sessions, 100)` connections (each creates, feeds and collects its
/// share of the sessions): tasks per second from the first submit to the last output.
/// Creating and closing the sessions is not timed.
async fn busy(opts: &ConnectOptions, sessions: usize, tasks: usize) -> anyhow::Result<f64> {
    let conns = sessions.clamp(1, 100);
    let mut clients = Vec::with_capacity(conns);
    for k in 0..conns {
        let c = Client::connect(opts).await?;
        let mine = sessions / conns + usize::from(k < sessions % conns);
        let replies: Vec<_> = (0..mine).map(|_| c.send(create_request("bench", None, true))).collect();
        let mut ids = Vec::with_capacity(mine);
        for r in replies {
            match r.await? {
                Reply::Session(s) => ids.push(s.id),
                _ => bail!("unexpected reply"),
            }
        }
        clients.push((c, ids));
    }
    let per = tasks / sessions;
    let t0 = Instant::now();
    let runs = clients.into_iter().map(|(mut c, ids)| async move {
        let mut replies = Vec::new();
        for &id in &ids {
            for batch in soam_client::batches(vec![Bytes::new(); per], 16_384) {
                replies.push(c.send(Request::Submit {
                    session: session_ref("bench", id),
                    tasks: batch,
                }));
            }
        }
        let want = per * ids.len();
        let mut got = 0;
        while got < want {
            match c.next_event().await {
                Some(Event::Outputs { session, outputs, .. }) => {
                    got += outputs.len();
                    c.notify(Request::Ack {
                        session: session_ref("bench", session),
                        tasks: outputs.iter().map(|o| o.task).collect(),
                    })?;
                }
                Some(Event::Ended { reason, .. }) => bail!("session ended: {reason}"),
                None => bail!("connection lost"),
                _ => {}
            }
        }
        for r in replies {
            r.await?;
        }
        anyhow::Ok((c, ids))
    });
    let done = futures_join_all(runs).await?;
    let rate = (per * sessions) as f64 / t0.elapsed().as_secs_f64();
    for (c, ids) in done {
        let closes: Vec<_> = ids
            .into_iter()
            .map(|id| {
                c.send(Request::Close {
                    session: session_ref("bench", id),
                })
            })
            .collect();
        for r in closes {
            r.await?;
        }
    }
    Ok(rate)
}

/// Runs the futures concurrently on this thread; the first error wins.
async fn futures_join_all<T: 'static>(
    futs: impl IntoIterator<Item = impl std::future::Future<Output = anyhow::Result<T>> + 'static>,
) -> anyhow::Result<Vec<T>> {
    let set = tokio::task::LocalSet::new();
    let handles: Vec<_> = futs.into_iter().map(|f| set.spawn_local(f)).collect();
    set.await;
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await??);
    }
    Ok(out)
}

/// Busy sessions at once, then many open sessions and one very large one: does the agent
/// keep its throughput, and keep answering?
fn scale(agent: &Agent, rt: &tokio::runtime::Runtime, sessions: usize, tasks: usize, json: bool) -> anyhow::Result<()> {
    let opts = agent.opts();
    let mut figures: Vec<(String, String, f64)> = Vec::new();
    // Each figure is said as it comes (stderr), since the whole run takes minutes.
    let mut add = |key: &str, label: String, v: f64| {
        if !json {
            eprintln!("soambench: {label}: {v:.3}");
        }
        figures.push((key.to_string(), label, v))
    };
    // The same tasks through one session, then through more and more at once; then
    // one session and the most sessions twice more, in turn, so that the ratio of the
    // two is taken pair by pair (the machine's speed drifts between phases), and each
    // figure is the median of its three runs.
    let mut ones = vec![rt.block_on(busy(&opts, 1, tasks))?];
    let mut mid = Vec::new();
    for n in [10, 1_000] {
        mid.push((n.min(sessions), rt.block_on(busy(&opts, n.min(sessions), tasks))?));
    }
    let mut most = vec![rt.block_on(busy(&opts, sessions, tasks))?];
    for most_first in [true, false] {
        for is_most in [most_first, !most_first] {
            let (n, runs) = if is_most { (sessions, &mut most) } else { (1, &mut ones) };
            runs.push(rt.block_on(busy(&opts, n, tasks))?);
        }
    }
    let mut ratios: Vec<f64> = most.iter().zip(&ones).map(|(m, o)| m / o).collect();
    add(
        "throughput_one_session_tasks_per_s",
        format!("{tasks} tasks through 1 session (median of 3)"),
        median(&mut ones),
    );
    for ((n, v), key) in mid
        .into_iter()
        .zip(["throughput_10_sessions_tasks_per_s", "throughput_1k_sessions_tasks_per_s"])
    {
        add(
            key,
            format!("{tasks} tasks through {n} sessions busy at once ({} connections)", n.min(100)),
            v,
        );
    }
    add(
        "throughput_10k_sessions_tasks_per_s",
        format!(
            "{tasks} tasks through {sessions} sessions busy at once ({} connections; median of 3)",
            sessions.min(100)
        ),
        median(&mut most),
    );
    add(
        "throughput_10k_sessions_vs_one",
        format!("{sessions} busy sessions against one (median of 3 pairs)"),
        median(&mut ratios),
    );
    let t0 = Instant::now();
    rt.block_on(async {
        let c = Client::connect(&opts).await?;
        // Pipelined: the creates share group commits.
        let replies: Vec<_> = (0..sessions).map(|_| c.send(create_request("bench", None, false))).collect();
        for r in replies {
            r.await?;
        }
        anyhow::Ok(())
    })?;
    add(
        "create_10k_sessions_s",
        format!("create {sessions} sessions (pipelined)"),
        t0.elapsed().as_secs_f64(),
    );
    let t0 = Instant::now();
    let big = rt.block_on(parked_session(&opts, None, tasks))?;
    add(
        "submit_1m_tasks_s",
        format!("submit {tasks} tasks into one session"),
        t0.elapsed().as_secs_f64(),
    );
    add("agent_rss_scale_mib", "agent RSS".into(), rss_mib(agent.pid()));
    // The agent's own part of listing everything: one request through the client library.
    let list_ms = rt.block_on(async {
        let c = Client::connect(&opts).await?;
        let mut times = Vec::new();
        for _ in 0..10 {
            let t0 = Instant::now();
            c.call(Request::ListSessions(Default::default())).await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        anyhow::Ok(median(&mut times))
    })?;
    add(
        "list_10k_sessions_agent_ms",
        "list every session: agent answer through the client library (median of 10)".into(),
        list_ms,
    );
    let listing = Command::new(agent.bin_dir.join("soamview"))
        .arg("session")
        .env("SOAM_HOME", &agent.home)
        .env("SOAM_NO_AUTOSTART", "1")
        .env_remove("SOAM_SOCKET")
        .output()?
        .stdout
        .len();
    add(
        "soamview_10k_sessions_bytes",
        "`soamview session` output (bytes)".into(),
        listing as f64,
    );
    for (key, args) in [
        ("soamview_app_ms", &["app"][..]),
        ("soamview_suspended_ms", &["session", "--state", "suspended"]),
        ("soamview_10k_sessions_json_ms", &["session", "--json"]),
        ("soamview_10k_sessions_ms", &["session"]),
    ] {
        let ms = soamview_ms(agent, args, 10)?;
        add(key, format!("soamview {} (median of 10, ms)", args.join(" ")), ms);
    }
    // Every task of the big session, in pages, printed as they arrive.
    let addr = format!("bench:{big}");
    for (key, args) in [
        ("soamview_1m_tasks_ms", &["task", addr.as_str()][..]),
        ("soamview_1m_tasks_json_ms", &["task", addr.as_str(), "--json"]),
    ] {
        let ms = soamview_ms(agent, args, 3)?;
        add(key, format!("soamview {} ({tasks} tasks, median of 3, ms)", args.join(" ")), ms);
    }
    if json {
        let m: serde_json::Map<String, serde_json::Value> = figures
            .into_iter()
            .map(|(k, _, v)| (k, json!((v * 1000.0).round() / 1000.0)))
            .collect();
        soam_cli::outln!("{}", serde_json::Value::Object(m));
    } else {
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING);
        t.set_header(["SCALE FIGURE", "VALUE", "KEY"]);
        for (k, label, v) in figures {
            t.add_row([label, format!("{v:.3}"), k]);
        }
        soam_cli::outln!("{t}");
    }
    Ok(())
}

/// One very large session through the agent: its peak memory while the session is
/// submitted, run and collected; then as many recoverable tasks left pending, and how
/// long a restarted agent takes to serve.
fn big(agent: &mut Agent, rt: &tokio::runtime::Runtime, tasks: usize, json: bool) -> anyhow::Result<()> {
    let opts = agent.opts();
    let say = |what: String| {
        if !json {
            eprintln!("soambench: {what}");
        }
    };
    say(format!("{tasks} tasks through one session"));
    let base = rss_mib(agent.pid());
    let rate = rt.block_on(throughput(&opts, "bench", None, tasks))?;
    let peak = crate::attack::mem_kib(agent.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    say(format!("{tasks} recoverable tasks left pending, then restarts"));
    let t0 = Instant::now();
    rt.block_on(parked_session(&opts, Some("Recoverable"), tasks))?;
    let submit_s = t0.elapsed().as_secs_f64();
    let held = rss_mib(agent.pid());
    agent.kill();
    let (mut restarts, mut restart_peak) = (Vec::new(), 0.0f64);
    for _ in 0..3 {
        restarts.push(agent.start()?.as_secs_f64());
        // The peak of reading the store and rebuilding the sessions, which it has done
        // by the time it answers.
        let hwm = crate::attack::mem_kib(agent.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
        restart_peak = restart_peak.max(hwm);
        agent.kill();
    }
    let figures = [
        ("agent_rss_before_big_mib", base),
        ("throughput_big_session_tasks_per_s", rate),
        ("agent_rss_10m_tasks_mib", peak),
        ("submit_10m_recoverable_s", submit_s),
        ("agent_rss_10m_pending_mib", held),
        ("restart_10m_tasks_s", median(&mut restarts)),
        ("agent_peak_rss_restart_10m_mib", restart_peak),
    ];
    if json {
        let m: serde_json::Map<String, serde_json::Value> = figures
            .iter()
            .map(|(k, v)| (k.to_string(), json!((v * 1000.0).round() / 1000.0)))
            .collect();
        soam_cli::outln!("{}", serde_json::Value::Object(m));
    } else {
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING);
        t.set_header(["FIGURE", "VALUE"]);
        for (k, v) in figures {
            t.add_row([k.to_string(), format!("{v:.3}")]);
        }
        soam_cli::outln!(
            "{t}\n({tasks} tasks; peak RSS is the agent's VmHWM after the run, the restart's the highest of 3; restart median of 3)"
        );
    }
    Ok(())
}

fn bench(args: &Args) -> anyhow::Result<()> {
    let sizes = if args.quick {
        Sizes {
            throughput_tasks: 20_000,
            throughput_runs: 3,
            exec_tasks: 100,
            latency_rounds: 300,
            idle_rounds: 5,
            payload_tasks: 20,
            big_session: 50_000,
            soamview_runs: 5,
        }
    } else {
        Sizes {
            throughput_tasks: 500_000,
            throughput_runs: 5,
            exec_tasks: 2_000,
            latency_rounds: 5_000,
            idle_rounds: 40,
            payload_tasks: 200,
            big_session: 1_000_000,
            soamview_runs: 20,
        }
    };
    let slots = args
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1));
    let bin_dir = std::env::current_exe()?.parent().context("no binary folder")?.to_path_buf();
    let home = std::env::temp_dir().join(format!("soambench-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    write_profiles(&home, &bin_dir)?;
    let mut agent = Agent {
        home: home.clone(),
        bin_dir,
        slots,
        child: None,
    };
    agent.start()?;
    let opts = agent.opts();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let say = |what: &str| {
        if !args.json {
            eprintln!("soambench: {what}");
        }
    };
    rt.block_on(register(&opts, &home))?;
    if args.scale {
        let (n, tasks) = if args.quick { (500, 50_000) } else { (10_000, 1_000_000) };
        return scale(&agent, &rt, n, tasks, args.json);
    }
    if args.attack {
        return attack(&agent, &rt, if args.quick { 20_000 } else { 200_000 });
    }
    if args.big {
        return big(&mut agent, &rt, if args.quick { 200_000 } else { 10_000_000 }, args.json);
    }
    if args.client {
        let (tasks, runs) = if args.quick { (20_000, 3) } else { (500_000, 5) };
        return client(&agent, &rt, tasks, runs, 10);
    }
    if args.python {
        if let Some(why) = crate::bench_python::unavailable() {
            anyhow::bail!("{why}");
        }
        let sizes = crate::bench_python::Sizes::new(args.quick);
        let figures = crate::bench_python::figures(&home, &opts, &rt, &sizes, &say)?;
        let note = format!(
            "{} runs (median): client {} tasks, soamapi {} tasks from 8 threads, service {} tasks on {slots} slots, {} round trips",
            sizes.runs, sizes.client_tasks, sizes.soamapi_tasks, sizes.service_tasks, sizes.latency_rounds
        );
        return print_figures(&figures, args.json, &note);
    }
    if args.floor {
        let f = against_floor(&home, &agent, &opts, &rt, &sizes, &say)?;
        let note = format!(
            "latency {} rounds, {} after {LATENCY_IDLE_MS} ms idle; payload {} x 1 MiB x 3 runs (median)",
            sizes.latency_rounds, sizes.idle_rounds, sizes.payload_tasks
        );
        return print_figures(&f.figures(), args.json, &note);
    }

    // Exec and latency first, on a quiet agent: after the throughput phases the store
    // thread is still deleting what the recoverable sessions left, and would be measured
    // too. Exec and xargs alternate, three rounds each; the ratio is of the medians.
    say("exec mode against xargs -P");
    let (mut soam_exec, mut xargs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        soam_exec.push(rt.block_on(throughput(&opts, "exec", None, sizes.exec_tasks))?);
        xargs.push(sizes.exec_tasks as f64 / xargs_seconds(sizes.exec_tasks, slots)?);
    }
    let exec_ratio = median(&mut soam_exec) / median(&mut xargs);
    let f = against_floor(&home, &agent, &opts, &rt, &sizes, &say)?;
    say("throughput, non-recoverable");
    let mut nonrec: Vec<f64> = (0..sizes.throughput_runs)
        .map(|_| rt.block_on(throughput(&opts, "bench", None, sizes.throughput_tasks)))
        .collect::<anyhow::Result<_>>()?;
    say("throughput, recoverable");
    let mut rec: Vec<f64> = (0..sizes.throughput_runs)
        .map(|_| rt.block_on(throughput(&opts, "bench", Some("Recoverable"), sizes.throughput_tasks)))
        .collect::<anyhow::Result<_>>()?;
    // The Python package's figures (SPEC section 13), where it is installed.
    let python = match crate::bench_python::unavailable() {
        None => crate::bench_python::figures(&home, &opts, &rt, &crate::bench_python::Sizes::new(args.quick), &say)?,
        Some(why) => {
            say(&format!("no Python figures: {why}"));
            Vec::new()
        }
    };
    say("memory with a large pending session");
    rt.block_on(parked_session(&opts, None, sizes.big_session))?;
    let rss_at_submit = rss_mib(agent.pid());
    // What the session holds, once the agent has handed back what the submit's frames
    // took (see RSS_SETTLE).
    std::thread::sleep(RSS_SETTLE);
    let rss = rss_mib(agent.pid());
    say("soamview");
    let view_ms = soamview_ms(&agent, &["session"], sizes.soamview_runs)?;
    say("restart with a large recoverable session");
    rt.block_on(parked_session(&opts, Some("Recoverable"), sizes.big_session))?;
    agent.kill();
    let mut restarts: Vec<f64> = Vec::new();
    for _ in 0..3 {
        restarts.push(agent.start()?.as_secs_f64());
        agent.kill();
    }
    let restart = median(&mut restarts);

    let figures = [
        (
            "throughput_nonrecoverable_tasks_per_s",
            median(&mut nonrec),
            ">= 100000",
            median(&mut nonrec) >= 100_000.0,
        ),
        (
            "throughput_recoverable_tasks_per_s",
            median(&mut rec),
            ">= 50000",
            median(&mut rec) >= 50_000.0,
        ),
        ("exec_vs_xargs_ratio", exec_ratio, ">= 0.9", exec_ratio >= 0.9),
    ];
    let figures = [
        &figures[..],
        &f.figures(),
        &[
            ("agent_rss_1m_tasks_mib", rss, "< 256", rss < 256.0),
            ("agent_rss_1m_tasks_at_submit_mib", rss_at_submit, "", true),
            ("restart_1m_tasks_s", restart, "< 2", restart < 2.0),
            ("soamview_ms", view_ms, "< 10", view_ms < 10.0),
        ],
        &python,
    ]
    .concat();
    let size_note = format!(
        "{} slots; {} tasks x {} runs (median); exec {} tasks; latency {} rounds, {} after {LATENCY_IDLE_MS} ms idle; payload {} x 1 MiB x 3 runs (median); large session {} tasks",
        slots,
        sizes.throughput_tasks,
        sizes.throughput_runs,
        sizes.exec_tasks,
        sizes.latency_rounds,
        sizes.idle_rounds,
        sizes.payload_tasks,
        sizes.big_session
    );
    print_figures(&figures, args.json, &size_note)
}

/// Latency and 1 MiB payloads, soam's and the floor's on the same run.
/// Round trips of the latency phase, floor and soam each, before any is measured.
const LATENCY_WARMUP: usize = 200;
/// Blocks the latency phase's rounds are measured in, floor and soam in turn: short
/// (100 rounds, 2-9 ms at the p50s measured), so that a burst of the machine's noise,
/// which lasts tens of milliseconds here, falls on all four (the floor, its duplex
/// kind, soam through the client library and through the bare client) rather than on
/// one contestant's block.
const LATENCY_BLOCKS: usize = 50;

/// Unmeasured rounds at the start of every block, each contestant's: the first round
/// after the others ran is a cold one (see [`LATENCY_IDLE_MS`]), measured on its own.
const BLOCK_WARMUP: usize = 3;
/// The pause before each round of the after-idle figures: long enough for the CPUs to
/// idle and the round's threads to be woken cold, as a script's occasional task is.
const LATENCY_IDLE_MS: u64 = 20;
/// How long after a large submit the agent's memory is read: past the first whole
/// second without submits (the agent ticks each second), when it hands back memory
/// freed by the submit's frames. A wait, not a poll: nothing but the figure itself
/// says the trim has run, and an agent with nothing to hand back never changes it.
const RSS_SETTLE: Duration = Duration::from_millis(2500);

struct FloorFigures {
    floor: Percentiles,
    /// The floor with a thread per direction in its middle process.
    duplex: Percentiles,
    soam: Percentiles,
    /// soam through a bare blocking client (`bare.rs`) instead of the client library.
    bare: Percentiles,
    /// One round after an idle pause, medians: soam's and the floor's.
    soam_idle_p50: f64,
    floor_idle_p50: f64,
    floor_mb: f64,
    soam_mb: f64,
    /// Per round trip: the floor's middle process and its client, the agent and its.
    floor_middle: PerRound,
    floor_client: PerRound,
    agent: PerRound,
    client: PerRound,
    /// The same two in the bare client's rounds.
    agent_bare: PerRound,
    bare_client: PerRound,
}

impl FloorFigures {
    fn figures(&self) -> Vec<Figure> {
        let (p50, p99, floor_p50, floor_p99) = (self.soam.p50, self.soam.p99, self.floor.p50, self.floor.p99);
        let (soam_mb, floor_mb) = (self.soam_mb, self.floor_mb);
        vec![
            ("latency_p50_us", p50, "< 100", p50 < 100.0),
            ("latency_p99_us", p99, "", true),
            ("latency_floor_p50_us", floor_p50, "", true),
            ("latency_floor_p99_us", floor_p99, "", true),
            ("latency_p999_us", self.soam.p999, "", true),
            ("latency_floor_p999_us", self.floor.p999, "", true),
            ("latency_floor_duplex_p50_us", self.duplex.p50, "", true),
            ("latency_floor_duplex_p99_us", self.duplex.p99, "", true),
            ("latency_bare_client_p50_us", self.bare.p50, "", true),
            ("latency_bare_client_p99_us", self.bare.p99, "", true),
            ("latency_bare_client_p50_vs_floor", self.bare.p50 / floor_p50, "", true),
            ("latency_after_idle_p50_us", self.soam_idle_p50, "", true),
            ("latency_floor_after_idle_p50_us", self.floor_idle_p50, "", true),
            ("latency_p50_vs_floor", p50 / floor_p50, "<= 1.3", p50 / floor_p50 <= 1.3),
            ("latency_p99_vs_floor", p99 / floor_p99, "<= 2", p99 / floor_p99 <= 2.0),
            ("payload_1mib_mb_per_s", soam_mb, "", true),
            ("payload_floor_mb_per_s", floor_mb, "", true),
            ("payload_vs_floor", floor_mb / soam_mb, "<= 1.5", floor_mb / soam_mb <= 1.5),
            ("latency_floor_switches_per_task", self.floor_middle.switches, "", true),
            ("latency_agent_switches_per_task", self.agent.switches, "", true),
            ("latency_floor_cpu_us_per_task", self.floor_middle.cpu_us, "", true),
            ("latency_agent_cpu_us_per_task", self.agent.cpu_us, "", true),
            ("latency_floor_client_cpu_us_per_task", self.floor_client.cpu_us, "", true),
            ("latency_client_cpu_us_per_task", self.client.cpu_us, "", true),
            ("latency_bare_agent_cpu_us_per_task", self.agent_bare.cpu_us, "", true),
            ("latency_bare_client_cpu_us_per_task", self.bare_client.cpu_us, "", true),
        ]
    }
}

/// The floor on the same run, just before soam: the same processes and hops, nothing
/// else. Payloads alternate floor and soam, three rounds, medians.
fn against_floor(
    home: &Path,
    agent: &Agent,
    opts: &ConnectOptions,
    rt: &tokio::runtime::Runtime,
    sizes: &Sizes,
    say: &dyn Fn(&str),
) -> anyhow::Result<FloorFigures> {
    // The floor and soam alternate in blocks, so that both see the same machine: on a
    // virtual machine the cost of a wake-up drifts within seconds, and a ratio of two
    // phases measured one after the other would mostly measure the drift.
    say("latency: floor (socket and pipes, no soam) and soam, alternating");
    let mut floor = crate::floor::Floor::start(home, crate::floor::Relay::PingPong)?;
    // The middle relaying with a thread per direction, as a floor with one hand-off
    // between threads more: the cost of that hand-off on this machine, same run.
    let mut duplex = crate::floor::Floor::start(home, crate::floor::Relay::Duplex)?;
    let mut lat = rt.block_on(Latency::open(opts))?;
    let mut bare = crate::bare::Bare::open(&opts.socket, "bench")?;
    let (mut warm, mut floor_us, mut duplex_us, mut soam_us, mut bare_us) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    floor.rounds(LATENCY_WARMUP, 64, &mut warm)?;
    duplex.rounds(LATENCY_WARMUP, 64, &mut warm)?;
    rt.block_on(lat.rounds(LATENCY_WARMUP, &mut warm))?;
    bare.rounds(LATENCY_WARMUP, &mut warm)?;
    let (mut floor_middle, mut floor_client) = (Tally::new(floor.relay_pid()), Tally::new(std::process::id()));
    let (mut agent_round, mut client) = (Tally::new(agent.pid()), Tally::new(std::process::id()));
    let (mut agent_bare, mut bare_client) = (Tally::new(agent.pid()), Tally::new(std::process::id()));
    let blocks = LATENCY_BLOCKS.min(sizes.latency_rounds).max(1);
    for b in 0..blocks {
        let n = sizes.latency_rounds * (b + 1) / blocks - sizes.latency_rounds * b / blocks;
        // Each goes first in turn, so none always follows another.
        for turn in 0..4 {
            match (b + turn) % 4 {
                0 => {
                    floor.rounds(BLOCK_WARMUP, 64, &mut warm)?;
                    Tally::measure([&mut floor_middle, &mut floor_client], n, || floor.rounds(n, 64, &mut floor_us))?
                }
                1 => {
                    rt.block_on(lat.rounds(BLOCK_WARMUP, &mut warm))?;
                    Tally::measure([&mut agent_round, &mut client], n, || rt.block_on(lat.rounds(n, &mut soam_us)))?
                }
                2 => {
                    duplex.rounds(BLOCK_WARMUP, 64, &mut warm)?;
                    duplex.rounds(n, 64, &mut duplex_us)?
                }
                _ => {
                    bare.rounds(BLOCK_WARMUP, &mut warm)?;
                    Tally::measure([&mut agent_bare, &mut bare_client], n, || bare.rounds(n, &mut bare_us))?
                }
            }
        }
    }
    // Single rounds after a pause, in turn: what a script's occasional task costs, when
    // every process on the path has gone to sleep and its CPU may have gone idle.
    let (mut soam_idle, mut floor_idle) = (Vec::new(), Vec::new());
    for _ in 0..sizes.idle_rounds {
        std::thread::sleep(Duration::from_millis(LATENCY_IDLE_MS));
        rt.block_on(lat.rounds(1, &mut soam_idle))?;
        std::thread::sleep(Duration::from_millis(LATENCY_IDLE_MS));
        floor.rounds(1, 64, &mut floor_idle)?;
    }
    rt.block_on(lat.close())?;
    bare.close()?;
    drop(floor);
    let (floor_pct, duplex_pct, soam_pct) = (percentiles(floor_us), percentiles(duplex_us), percentiles(soam_us));
    let (floor_middle, floor_client) = (floor_middle.per_round(), floor_client.per_round());
    let (agent_round, client) = (agent_round.per_round(), client.per_round());
    let (agent_bare, bare_client) = (agent_bare.per_round(), bare_client.per_round());
    say("1 MiB payloads: floor and soam, alternating");
    let (mut soam_mb, mut floor_mb) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        floor_mb.push(duplex.stream(sizes.payload_tasks, 1 << 20)?);
        soam_mb.push(rt.block_on(payload(opts, sizes.payload_tasks, 1 << 20))?);
    }
    drop(duplex);
    Ok(FloorFigures {
        floor: floor_pct,
        duplex: duplex_pct,
        soam: soam_pct,
        bare: percentiles(bare_us),
        soam_idle_p50: percentiles(soam_idle).p50,
        floor_idle_p50: percentiles(floor_idle).p50,
        floor_mb: median(&mut floor_mb),
        soam_mb: median(&mut soam_mb),
        floor_middle,
        floor_client,
        agent: agent_round,
        client,
        agent_bare,
        bare_client,
    })
}

fn print_figures(figures: &[Figure], json: bool, size_note: &str) -> anyhow::Result<()> {
    if json {
        let mut m = serde_json::Map::new();
        for (k, v, _, _) in figures {
            m.insert((*k).into(), json!((v * 1000.0).round() / 1000.0));
        }
        soam_cli::outln!("{}", serde_json::Value::Object(m));
    } else {
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING);
        t.set_header(["FIGURE", "VALUE", "TARGET", "MET"]);
        for (k, v, target, ok) in figures {
            t.add_row([
                k.to_string(),
                format!("{v:.3}"),
                target.to_string(),
                if target.is_empty() {
                    String::new()
                } else if *ok {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]);
        }
        soam_cli::outln!("{t}\n({size_note})");
    }
    Ok(())
}
