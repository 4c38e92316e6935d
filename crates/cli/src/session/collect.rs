//! The output loop shared by submit, reopen and fetch: take outputs from the session
//! (`soam_client::session`, which drops duplicates and rides out a lost agent), write
//! them (lines, JSON lines or files; optionally in task order), acknowledge them, and
//! stop when the caller's condition is met or the session is lost.

use crate::common::exit;
use base64::Engine;
use clap::Args;
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle};
use soam_client::ClientError;
use soam_client::session::{Next, Reorder, Session, SessionConfig};
use soam_proto::SessionRef;
use soam_proto::msg::{TaskOutput, TaskState};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write each output to DIR/TASK.out (failures to DIR/TASK.err) instead of stdout
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// One JSON object per task: task, state, attempts, output or output_base64, error
    #[arg(long, conflicts_with = "output_dir")]
    pub jsonl: bool,
    /// Write outputs in task order rather than as they come
    #[arg(long)]
    pub ordered: bool,
    /// Show progress even when stdout is not a terminal: a bar if stderr is one, else a summary line a second on stderr
    #[arg(long)]
    pub progress: bool,
}

/// How progress is shown while collecting.
enum Progress {
    /// Nobody is watching (outputs are piped away): nothing but outputs.
    Off,
    /// A bar on stderr's terminal; outputs are written with it cleared, so the
    /// scrollback holds outputs only.
    Bar(ProgressBar),
    /// `--progress` without a terminal: a summary line on stderr at most once a second.
    Lines { total: u64, start: Instant, last: Instant },
}

impl Progress {
    fn new(args: &OutputArgs, total: u64) -> Progress {
        let err_tty = std::io::stderr().is_terminal();
        let watched = err_tty && (std::io::stdout().is_terminal() || args.output_dir.is_some());
        if total == 0 || !(watched || args.progress) {
            return Progress::Off;
        }
        if !err_tty {
            let now = Instant::now();
            return Progress::Lines {
                total,
                start: now,
                last: now,
            };
        }
        let pb = ProgressBar::new(total);
        // Whole tasks a second: four decimals of a rate are noise.
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} tasks {rate} eta {eta}")
            .map(|s| {
                s.with_key("rate", |st: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", st.per_sec());
                })
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        pb.set_style(style);
        Progress::Bar(pb)
    }

    /// A line-mode summary, once a second or when `last` (the end).
    fn line(&mut self, done: u64, end: bool) {
        if let Progress::Lines { total, start, last } = self
            && (end || last.elapsed() >= Duration::from_secs(1))
        {
            *last = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
            if end {
                eprintln!("soamsession: {done}/{total} tasks in {}", HumanDuration(start.elapsed()));
            } else {
                let eta = (rate > 0.0).then(|| Duration::from_secs_f64(total.saturating_sub(done) as f64 / rate));
                let eta = eta.map_or_else(|| "?".to_string(), |d| HumanDuration(d).to_string());
                eprintln!("soamsession: {done}/{total} tasks, {rate:.0}/s, eta {eta}");
            }
        }
    }
}

/// How a waiting command rides out a lost agent.
#[derive(Debug, Clone, Args)]
pub struct ResilienceArgs {
    /// Seconds between liveness pings while waiting; an unanswered ping means the agent is lost
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub ping_interval: f64,
    /// Seconds to keep reconnecting (and reopening the session) after losing the agent; 0 gives up at once
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub reconnect_timeout: f64,
}

impl ResilienceArgs {
    /// How the session's connection is kept, per these flags.
    pub fn config(&self, connect: soam_client::ConnectOptions, direct: bool) -> SessionConfig {
        SessionConfig {
            connect,
            direct,
            ping_interval: Duration::from_secs_f64(self.ping_interval.max(0.05)),
            reconnect_timeout: Duration::from_secs_f64(self.reconnect_timeout.max(0.0)),
        }
    }
}

/// Sends the session's last request (close, detach); a failure to reach the agent is
/// said as a stop.
pub async fn finish(s: Session, close: bool) -> anyhow::Result<Option<Stop>> {
    let r = if close { s.close().await } else { s.detach().await };
    match r {
        Ok(()) => Ok(None),
        Err(ClientError::Lost(why)) => Ok(Some(Stop::Lost(why))),
        Err(e) => Err(e.into()),
    }
}

/// Why collecting stopped.
#[derive(Debug)]
pub enum Stop {
    /// The caller's condition was met.
    Done,
    /// The session has nothing pending, running or undelivered.
    Drained,
    Timeout,
    TakenOver,
    Ended(String),
    Lost(String),
    Interrupted,
    /// The reader of the output went away (`| head`): `written` outputs were written and
    /// acknowledged, of `total` where known; the rest stay undelivered.
    OutputClosed {
        written: u64,
        total: Option<u64>,
    },
}

/// When to stop, besides the session ending or being taken.
#[derive(Debug, Default)]
pub struct Until {
    /// Stop once this many of *our* tasks (ids in `mine`) have ended.
    pub mine: Option<(u64, u64, u64)>,
    /// Stop once this many outputs arrived (duplicates included).
    pub messages: Option<u64>,
    /// Stop once this many outputs were written.
    pub max: Option<u64>,
    pub deadline: Option<Instant>,
    pub drained: bool,
}

pub struct Collector {
    args: OutputArgs,
    /// Outputs of the batch being taken, written out together (with the bar cleared).
    out: Vec<u8>,
    /// In --ordered mode, what waits for an earlier task.
    order: Option<Reorder>,
    pub written: u64,
    pub failed: u64,
    pub received: u64,
    progress: Progress,
}

impl Collector {
    pub fn new(args: OutputArgs, first_task: Option<u64>, total: u64) -> anyhow::Result<Collector> {
        if let Some(d) = &args.output_dir {
            std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
        }
        let progress = Progress::new(&args, total);
        Ok(Collector {
            order: args.ordered.then(|| Reorder::new(first_task)),
            args,
            out: Vec::with_capacity(1 << 16),
            written: 0,
            failed: 0,
            received: 0,
            progress,
        })
    }

    fn write(&mut self, o: &TaskOutput) -> anyhow::Result<()> {
        self.written += 1;
        if o.state != TaskState::Done {
            self.failed += 1;
        }
        if let Progress::Bar(p) = &self.progress {
            p.inc(1);
        }
        if let Some(dir) = &self.args.output_dir {
            let ext = if o.state == TaskState::Done { "out" } else { "err" };
            let path = dir.join(format!("{}.{ext}", o.task));
            std::fs::write(&path, &o.data).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            return Ok(());
        }
        if self.args.jsonl {
            let mut obj = serde_json::Map::new();
            obj.insert("task".into(), o.task.into());
            obj.insert("state".into(), o.state.as_str().into());
            obj.insert("attempts".into(), o.attempts.into());
            if o.state == TaskState::Done {
                match std::str::from_utf8(&o.data) {
                    Ok(s) => obj.insert("output".into(), s.into()),
                    Err(_) => obj.insert(
                        "output_base64".into(),
                        base64::engine::general_purpose::STANDARD.encode(&o.data).into(),
                    ),
                };
            } else {
                obj.insert("error".into(), String::from_utf8_lossy(&o.data).into_owned().into());
            }
            writeln!(self.out, "{}", serde_json::Value::Object(obj))?;
            return Ok(());
        }
        if o.state == TaskState::Done {
            self.out.write_all(&o.data)?;
            if !o.data.ends_with(b"\n") {
                self.out.write_all(b"\n")?;
            }
        } else {
            // Outputs before it go first, so stdout and stderr keep their order on a terminal.
            self.flush()?;
            let msg = String::from_utf8_lossy(&o.data);
            let first = soam_proto::text::escape(msg.lines().next().unwrap_or("")).into_owned();
            let line = format!("soamsession: task {} {}: {first}", o.task, o.state);
            match &self.progress {
                Progress::Bar(p) => p.println(line),
                _ => eprintln!("{line}"),
            }
        }
        Ok(())
    }

    /// Writes the outputs taken so far to stdout: with a bar, while it is cleared (it is
    /// drawn again after), so no copy of it is left above them.
    fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            let buf = std::mem::take(&mut self.out);
            let write = || {
                let mut o = std::io::stdout().lock();
                o.write_all(&buf).and_then(|()| o.flush())
            };
            match &self.progress {
                Progress::Bar(p) => p.suspend(write),
                _ => write(),
            }?;
            self.out = buf;
            self.out.clear();
        }
        self.progress.line(self.written, false);
        Ok(())
    }

    /// Takes one output (the session already dropped duplicates).
    fn take(&mut self, o: TaskOutput) -> anyhow::Result<()> {
        let ready = match self.order.as_mut() {
            Some(order) => order.push(o),
            None => vec![o],
        };
        for o in &ready {
            self.write(o)?;
        }
        Ok(())
    }

    /// How many outputs --ordered holds back.
    fn held(&self) -> u64 {
        self.order.as_ref().map_or(0, |o| o.held() as u64)
    }

    /// Writes whatever --ordered still holds, and flushes.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let rest = self.order.as_mut().map(Reorder::rest).unwrap_or_default();
        for o in &rest {
            self.write(o)?;
        }
        self.flush()?;
        match &self.progress {
            Progress::Bar(p) => p.finish_and_clear(),
            Progress::Lines { .. } => self.progress.line(self.written, true),
            Progress::Off => {}
        }
        Ok(())
    }

    /// Receives until `until` is met or the session is lost for good; acknowledges what
    /// it took. A lost agent is reconnected to (and the session reopened) by `session`.
    pub async fn collect(&mut self, session: &mut Session, until: &mut Until) -> anyhow::Result<Stop> {
        let mut mine_left = until.mine.map(|(_, _, n)| n);
        loop {
            if mine_left == Some(0)
                || until.messages.is_some_and(|m| self.received >= m)
                || until.max.is_some_and(|m| self.written + self.held() >= m)
            {
                return Ok(Stop::Done);
            }
            let deadline = until.deadline;
            let next = tokio::select! {
                n = session.next() => n,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d.into()).await, None => std::future::pending().await } } => return Ok(Stop::Timeout),
                _ = tokio::signal::ctrl_c() => return Ok(Stop::Interrupted),
            };
            let outputs = match next {
                Ok(Next::Outputs(o)) => o,
                Ok(Next::Drained) if until.drained => return Ok(Stop::Drained),
                Ok(Next::Drained) => continue,
                Ok(Next::TakenOver) => return Ok(Stop::TakenOver),
                Ok(Next::Ended { state, reason }) => return Ok(Stop::Ended(format!("{state}: {reason}"))),
                Err(ClientError::Lost(why)) => return Ok(Stop::Lost(why)),
                Err(e @ ClientError::Refused { .. }) => return Ok(Stop::Ended(e.to_string())),
                Err(e) => return Err(e.into()),
            };
            let mut acks = Vec::with_capacity(outputs.len());
            // Written and acknowledged before this batch: what a closed output leaves done.
            let written_before = self.written;
            let closed = |e: anyhow::Error| {
                if crate::common::is_broken_pipe(&e) {
                    Ok(Stop::OutputClosed {
                        written: written_before,
                        total: until.mine.map(|(_, _, n)| n),
                    })
                } else {
                    Err(e)
                }
            };
            for o in outputs {
                if until.max.is_some_and(|m| self.written + self.held() >= m) {
                    break; // not acknowledged: it stays for a later fetch
                }
                self.received += 1;
                acks.push(o.task);
                let task = o.task;
                if let Err(e) = self.take(o) {
                    return closed(e);
                }
                if let (Some((first, last, _)), Some(left)) = (until.mine, mine_left.as_mut())
                    && (first..=last).contains(&task)
                {
                    *left -= 1;
                }
            }
            // The batch is acknowledged only once it is written: one the reader did not
            // take stays undelivered, for a later reopen.
            if let Err(e) = self.flush() {
                return closed(e);
            }
            session.ack_ids(acks);
        }
    }
}

/// What to tell the user, and the exit code, when collecting stopped early.
pub fn report_stop(stop: &Stop, session: &SessionRef) -> Option<i32> {
    match stop {
        Stop::Done | Stop::Drained | Stop::Timeout => None,
        Stop::TakenOver => {
            eprintln!("soamsession: session {session} was taken over by another client");
            Some(exit::FAILED)
        }
        Stop::Ended(why) => {
            eprintln!("soamsession: session {session} ended ({})", soam_proto::text::escape(why));
            Some(exit::FAILED)
        }
        Stop::Lost(why) => {
            eprintln!("soamsession: connection to the agent permanently lost ({why}); reopen later with: soamsession reopen {session}");
            Some(exit::UNREACHABLE)
        }
        Stop::Interrupted => {
            eprintln!("soamsession: detached from {session}; its workload keeps running. Collect it with: soamsession reopen {session}");
            Some(exit::INTERRUPTED)
        }
        Stop::OutputClosed { written, total } => {
            let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
            eprintln!(
                "soamsession: the output's reader went away after {written}{of} outputs; session {session} stays open, \
                 detached, with the rest undelivered. Collect them with: soamsession reopen {session}"
            );
            // A reader that stops early (| head) is a normal end for a pipeline.
            Some(exit::OK)
        }
    }
}
