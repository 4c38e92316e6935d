//! The output loop shared by submit, reopen and fetch: receive outputs, drop duplicates,
//! write them (lines, JSON lines or files; optionally in task order), acknowledge them,
//! and stop when the caller's condition is met or the session is lost.

use crate::common::exit;
use base64::Engine;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use soam_client::{Client, Dedup};
use soam_proto::SessionRef;
use soam_proto::msg::{Event, Request, TaskOutput, TaskState};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// What reconnecting needs to know.
pub struct Reconnect {
    pub opts: soam_client::ConnectOptions,
    pub direct: bool,
    pub ping: Duration,
    pub timeout: Duration,
}

impl Reconnect {
    pub fn new(r: &ResilienceArgs, opts: soam_client::ConnectOptions, direct: bool) -> Reconnect {
        Reconnect {
            opts,
            direct,
            ping: Duration::from_secs_f64(r.ping_interval.max(0.05)),
            timeout: Duration::from_secs_f64(r.reconnect_timeout.max(0.0)),
        }
    }

    /// Sends the final close or detach; if the agent is lost just then, reconnects
    /// (reopening the session) and sends it again.
    pub async fn finish(&self, client: &mut Client, req: Request, session: &SessionRef) -> anyhow::Result<Option<Stop>> {
        match client.call(req.clone()).await {
            Ok(_) => Ok(None),
            Err(soam_client::ClientError::Lost(why)) => match self.again(session, &why).await {
                Ok(c) => {
                    *client = c;
                    client.call(req).await?;
                    Ok(None)
                }
                Err(stop) => Ok(Some(stop)),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Connects again and reopens the session; Err says why it could not.
    async fn again(&self, session: &SessionRef, why: &str) -> Result<Client, Stop> {
        if self.timeout.is_zero() {
            return Err(Stop::Lost(why.to_string()));
        }
        eprintln!("soamsession: {why}; reconnecting for up to {} s", self.timeout.as_secs_f64());
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Ok(c) = Client::connect(&self.opts).await {
                match c
                    .call(Request::OpenSession {
                        session: session.clone(),
                        direct: self.direct,
                        all: false,
                    })
                    .await
                {
                    Ok(_) => {
                        eprintln!("soamsession: reconnected; session {session} reopened");
                        return Ok(c);
                    }
                    Err(e @ soam_client::ClientError::Refused { .. }) => return Err(Stop::Ended(e.to_string())),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(Stop::Lost(format!(
                    "{why}; gave up reconnecting after {} s",
                    self.timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
    dedup: Dedup,
    out: std::io::BufWriter<std::io::Stdout>,
    held: BTreeMap<u64, TaskOutput>,
    /// In --ordered mode, the next task id to write (None: write all at the end).
    next: Option<u64>,
    pub written: u64,
    pub failed: u64,
    pub received: u64,
    progress: Option<ProgressBar>,
}

impl Collector {
    pub fn new(args: OutputArgs, first_task: Option<u64>, total: u64) -> anyhow::Result<Collector> {
        if let Some(d) = &args.output_dir {
            std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
        }
        // A bar only for a person watching: never when the outputs are piped away.
        let watched = std::io::stderr().is_terminal() && (std::io::stdout().is_terminal() || args.output_dir.is_some());
        let progress = (watched && total > 0).then(|| {
            let pb = ProgressBar::new(total);
            pb.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} tasks {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb
        });
        Ok(Collector {
            next: if args.ordered { first_task } else { None },
            args,
            dedup: Dedup::default(),
            out: std::io::BufWriter::new(std::io::stdout()),
            held: BTreeMap::new(),
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
        if let Some(p) = &self.progress {
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
            self.out.flush()?;
            let msg = String::from_utf8_lossy(&o.data);
            let line = |m: &str| {
                let first = soam_proto::text::escape(m.lines().next().unwrap_or("")).into_owned();
                format!("soamsession: task {} {}: {first}", o.task, o.state)
            };
            match &self.progress {
                Some(p) => p.println(line(&msg)),
                None => eprintln!("{}", line(&msg)),
            }
        }
        Ok(())
    }

    /// Takes one output: false if it was a duplicate.
    fn take(&mut self, o: TaskOutput) -> anyhow::Result<bool> {
        if !self.dedup.first(o.task) {
            return Ok(false);
        }
        if self.args.ordered {
            self.held.insert(o.task, o);
            if let Some(mut n) = self.next {
                while let Some(o) = self.held.remove(&n) {
                    self.write(&o)?;
                    n += 1;
                }
                self.next = Some(n);
            }
        } else {
            self.write(&o)?;
        }
        Ok(true)
    }

    /// Writes whatever --ordered still holds, and flushes.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let held = std::mem::take(&mut self.held);
        for o in held.values() {
            self.write(o)?;
        }
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        self.out.flush()?;
        Ok(())
    }

    /// Receives until `until` is met or the session is lost for good; acknowledges what
    /// it took. A lost agent is reconnected to (and the session reopened) per `rc`.
    pub async fn collect(
        &mut self,
        client: &mut Client,
        session: &SessionRef,
        id: u64,
        until: &mut Until,
        rc: &Reconnect,
    ) -> anyhow::Result<Stop> {
        let mut mine_left = until.mine.map(|(_, _, n)| n);
        let mut ping = tokio::time::interval(rc.ping);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        // Set while a ping is unanswered.
        let mut awaiting = Arc::new(AtomicBool::new(false));
        loop {
            if mine_left == Some(0)
                || until.messages.is_some_and(|m| self.received >= m)
                || until.max.is_some_and(|m| self.written + self.held.len() as u64 >= m)
            {
                return Ok(Stop::Done);
            }
            let deadline = until.deadline;
            let ev = tokio::select! {
                ev = client.next_event() => Some(ev),
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d.into()).await, None => std::future::pending().await } } => return Ok(Stop::Timeout),
                _ = tokio::signal::ctrl_c() => return Ok(Stop::Interrupted),
                _ = ping.tick() => None,
            };
            let lost = match ev {
                // A ping is due: the previous one must have been answered.
                None if awaiting.load(Ordering::Relaxed) => {
                    Some(format!("the agent did not answer a ping within {} s", rc.ping.as_secs_f64()))
                }
                None => {
                    awaiting.store(true, Ordering::Relaxed);
                    let (flag, reply) = (awaiting.clone(), client.send(Request::Ping));
                    tokio::spawn(async move {
                        if reply.await.is_ok() {
                            flag.store(false, Ordering::Relaxed);
                        }
                    });
                    continue;
                }
                Some(None) => Some(client.lost().unwrap_or_else(|| "connection to the agent lost".into())),
                Some(Some(_)) => None,
            };
            if let Some(why) = lost {
                match rc.again(session, &why).await {
                    Ok(c) => {
                        *client = c;
                        awaiting = Arc::new(AtomicBool::new(false));
                        continue;
                    }
                    Err(stop) => return Ok(stop),
                }
            }
            let Some(ev) = ev.flatten() else { continue };
            match ev {
                Event::Outputs { session: sid, outputs, .. } if sid == id => {
                    let mut acks = Vec::with_capacity(outputs.len());
                    for o in outputs {
                        if until.max.is_some_and(|m| self.written + self.held.len() as u64 >= m) {
                            break; // not acknowledged: it stays for a later fetch
                        }
                        self.received += 1;
                        acks.push(o.task);
                        let task = o.task;
                        if self.take(o)?
                            && let (Some((first, last, _)), Some(left)) = (until.mine, mine_left.as_mut())
                            && (first..=last).contains(&task)
                        {
                            *left -= 1;
                        }
                    }
                    self.out.flush()?;
                    // If the agent is gone the acknowledgement is lost: harmless (those
                    // outputs come again and are dropped as duplicates), and the closed
                    // event stream brings us to the reconnect below.
                    let _ = client.notify(Request::Ack {
                        session: session.clone(),
                        tasks: acks,
                    });
                }
                Event::Drained { session: sid, .. } if sid == id && until.drained => return Ok(Stop::Drained),
                Event::TakenOver { session: sid, .. } if sid == id => return Ok(Stop::TakenOver),
                Event::Ended {
                    session: sid,
                    state,
                    reason,
                    ..
                } if sid == id => return Ok(Stop::Ended(format!("{state}: {reason}"))),
                _ => {}
            }
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
    }
}
