//! One session's workflow for a Rust program: create or open it, submit tasks, receive
//! their outputs, and detach, close or abort it, riding out a lost agent.
//!
//! Data flow: a [`Session`] owns one [`Client`] holding the session. [`Session::submit`]
//! sends a submission under a fresh request id (staged in several messages when it is
//! large, accepted whole or not at all); if the connection is lost before the answer, it
//! connects again, reopens the session and sends the same submission under the same id,
//! and the agent answers with what it did the first time, so nothing is accepted twice.
//! [`Session::next`] yields what the agent sends for the session, dropping outputs seen
//! before (delivery is at least once), pinging the agent while it waits and reconnecting
//! (and reopening) when it is lost. The caller acknowledges outputs with
//! [`Session::ack`] once it has kept them: unacknowledged ones go to the next holder.
//!
//! ```no_run
//! # async fn f() -> Result<(), soam_client::ClientError> {
//! use soam_client::session::{Next, Session, SessionConfig};
//! let cfg = SessionConfig::new(soam_client::ConnectOptions::from_env("my-program", None));
//! let mut s = Session::create(cfg, "sampleApp", None).await?;
//! let inputs = (1..=100).map(|i| bytes::Bytes::from(i.to_string())).collect();
//! let sub = s.submit(inputs).await?;
//! let mut left = sub.count;
//! while left > 0 {
//!     match s.next().await? {
//!         Next::Outputs(outputs) => {
//!             for o in &outputs {
//!                 println!("{}: {:?}", o.task, o.data);
//!             }
//!             left -= outputs.len() as u64;
//!             s.ack(&outputs);
//!         }
//!         Next::Drained => {}
//!         Next::TakenOver | Next::Ended { .. } => break,
//!     }
//! }
//! s.close().await
//! # }
//! ```

use crate::{Client, ClientError, ConnectOptions, Dedup, batches};
use bytes::Bytes;
use soam_proto::msg::{CreateSession, ErrorKind, Event, Reply, Request, RequestId, SessionInfo, SessionState, TaskOutput};
use soam_proto::{SessionKey, SessionRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a session's connection is made and kept.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub connect: ConnectOptions,
    /// The session fetches results directly (FetchResultsDirectly): outputs go to the
    /// holder only, never to the store. Must match how it was created.
    pub direct: bool,
    /// How often the agent is pinged while [`Session::next`] waits; an unanswered ping
    /// means it is lost.
    pub ping_interval: Duration,
    /// How long to keep reconnecting (and reopening) after losing the agent; zero gives
    /// up at once.
    pub reconnect_timeout: Duration,
}

impl SessionConfig {
    /// Pings every 5 s, reconnects for up to 60 s.
    pub fn new(connect: ConnectOptions) -> SessionConfig {
        SessionConfig {
            connect,
            direct: false,
            ping_interval: Duration::from_secs(5),
            reconnect_timeout: Duration::from_secs(60),
        }
    }
}

/// What [`Session::next`] brings.
#[derive(Debug)]
pub enum Next {
    /// Outputs not seen before, as they came. Acknowledge them once kept.
    Outputs(Vec<TaskOutput>),
    /// Nothing is pending or running and every ended task's output was sent.
    Drained,
    /// Another client opened the session: this one may no longer act on it.
    TakenOver,
    /// The session ended (an admin, a failure, a profile update).
    Ended { state: SessionState, reason: String },
}

/// Tasks `first..first+count` were accepted, in submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    pub first: u64,
    pub count: u64,
}

/// Most tasks in one message (bytes are capped separately).
const BATCH_TASKS: usize = 16_384;

/// A fresh random request id.
pub fn new_request_id() -> RequestId {
    let mut id = [0u8; 16];
    // The kernel's random source; a failure here means a broken system, where a clock
    // and pid still make a usable id.
    if getrandom::fill(&mut id).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        id = (t ^ ((std::process::id() as u128) << 96)).to_le_bytes();
    }
    id
}

/// Connects and sends the request `send` makes, until it is answered. When the
/// connection is lost before the answer and `send` said the request may be sent again,
/// connects again (waiting out an agent restart) for up to the reconnect timeout. No
/// agent at the first try is an error at once.
async fn first_answer<F>(cfg: &SessionConfig, mut send: impl FnMut(&Client) -> (F, bool)) -> Result<(Client, Reply), ClientError>
where
    F: std::future::Future<Output = Result<Reply, ClientError>>,
{
    let deadline = Instant::now() + cfg.reconnect_timeout;
    let mut lost: Option<String> = None;
    loop {
        let client = match Client::connect(&cfg.connect).await {
            Ok(c) => c,
            // Cut during the handshake: nothing was asked yet.
            Err(ClientError::Lost(why)) if Instant::now() < deadline => {
                lost = Some(why);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // Gone after a loss: it may be restarting.
            Err(e @ ClientError::NoAgent(_)) if lost.is_some() && Instant::now() < deadline => {
                tracing::debug!("{e}; still reconnecting");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let (reply, again) = send(&client);
        match reply.await {
            Ok(r) => return Ok((client, r)),
            Err(ClientError::Lost(why)) if again && Instant::now() < deadline => {
                tracing::warn!("{why}; reconnecting for up to {} s", cfg.reconnect_timeout.as_secs_f64());
                lost = Some(why);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `req` under `request`, if the agent knows idempotent requests (protocol 4 on).
fn once(client: &Client, request: RequestId, req: Request) -> Request {
    if client.agent_protocol >= 4 {
        Request::Once {
            request,
            req: Box::new(req),
        }
    } else {
        req
    }
}

pub struct Session {
    client: Client,
    cfg: SessionConfig,
    /// `APP:ID`, whatever name it was opened by.
    addr: SessionRef,
    /// As the agent described it when it was created or opened.
    info: SessionInfo,
    dedup: Dedup,
    ping: tokio::time::Interval,
    /// Set while a ping is unanswered.
    awaiting: Arc<AtomicBool>,
}

impl Session {
    fn new(client: Client, cfg: SessionConfig, info: SessionInfo) -> Session {
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + cfg.ping_interval, cfg.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Session {
            client,
            addr: SessionRef {
                app: info.app.clone(),
                key: SessionKey::Id(info.id),
            },
            cfg,
            info,
            dedup: Dedup::default(),
            ping,
            awaiting: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Creates a session of `app` (of `session_type`, or the application's default)
    /// held by this program.
    pub async fn create(cfg: SessionConfig, app: &str, session_type: Option<&str>) -> Result<Session, ClientError> {
        let c = CreateSession {
            app: app.into(),
            session_type: session_type.map(String::from),
            name: None,
            tag: None,
            common_data: Bytes::new(),
            direct: cfg.direct,
            attach: true,
        };
        Session::create_with(cfg, c).await
    }

    /// Creates a session as `c` describes, held by this program. A create whose answer
    /// was lost with the connection is sent again under the same request id: it is
    /// carried out once.
    pub async fn create_with(cfg: SessionConfig, c: CreateSession) -> Result<Session, ClientError> {
        Session::create_as(cfg, new_request_id(), c).await
    }

    /// As [`Session::create_with`], under a request id of the caller's: created once,
    /// however often it is sent while the session is open.
    pub async fn create_as(cfg: SessionConfig, request: RequestId, mut c: CreateSession) -> Result<Session, ClientError> {
        c.attach = true;
        let (client, reply) = first_answer(&cfg, |client| {
            // Sent again only under its id: otherwise a lost answer could mean two sessions.
            let again = client.agent_protocol >= 4;
            (client.send(once(client, request, Request::CreateSession(c.clone()))), again)
        })
        .await?;
        match reply {
            Reply::Session(info) => Ok(Session::new(client, cfg, info)),
            other => Err(crate::unexpected(&other)),
        }
    }

    /// Takes an existing session (`APP:ID` or `APP:NAME`); its undelivered outputs
    /// follow through [`Session::next`]. Also returns how many were waiting.
    pub async fn open(cfg: SessionConfig, session: &SessionRef, all: bool) -> Result<(Session, u64), ClientError> {
        let req = Request::OpenSession {
            session: session.clone(),
            direct: cfg.direct,
            all,
        };
        // Taking a session twice is taking it once: always safe to send again.
        let (client, reply) = first_answer(&cfg, |client| (client.send(req.clone()), true)).await?;
        match reply {
            Reply::Opened { session, to_deliver } => Ok((Session::new(client, cfg, session), to_deliver)),
            other => Err(crate::unexpected(&other)),
        }
    }

    /// `APP:ID`.
    pub fn addr(&self) -> &SessionRef {
        &self.addr
    }

    /// The session as it was when created or opened.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The connection, for requests this type does not wrap. It is replaced when the
    /// session reconnects.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Submits `inputs` as one submission: accepted whole, in order, or refused whole.
    /// If the connection is lost before the answer, reconnects, reopens the session and
    /// sends it again under the same request id, so it is accepted once.
    pub async fn submit(&mut self, inputs: Vec<Bytes>) -> Result<Submitted, ClientError> {
        self.submit_as(new_request_id(), inputs).await
    }

    /// As [`Session::submit`], under a request id of the caller's (the offline journal
    /// keeps one per submission, so a replay cut short is carried out once).
    pub async fn submit_as(&mut self, request: RequestId, inputs: Vec<Bytes>) -> Result<Submitted, ClientError> {
        let batches = batches(inputs, BATCH_TASKS.min(soam_proto::frame::MAX_TASKS_PER_SUBMIT));
        loop {
            match self.try_submit(request, &batches).await {
                // Safe to send again only to an agent that knows the id.
                Err(ClientError::Lost(why)) if self.client.agent_protocol >= 4 => self.reconnect(&why).await?,
                r => return r,
            }
        }
    }

    /// Submits `inputs` in batches that the agent accepts (and starts running) one by
    /// one as they arrive: the fastest way to feed a long session, but a failure can
    /// leave the first batches accepted and the rest not. Each batch has its own
    /// request id, so after a lost connection they are all sent again and each is
    /// accepted once.
    pub async fn submit_streaming(&mut self, inputs: Vec<Bytes>) -> Result<Submitted, ClientError> {
        let request = new_request_id();
        let batches = batches(inputs, BATCH_TASKS.min(soam_proto::frame::MAX_TASKS_PER_SUBMIT));
        loop {
            match self.try_stream(request, &batches).await {
                Err(ClientError::Lost(why)) if self.client.agent_protocol >= 4 => self.reconnect(&why).await?,
                r => return r,
            }
        }
    }

    async fn try_stream(&self, request: RequestId, batches: &[Vec<Bytes>]) -> Result<Submitted, ClientError> {
        let c = &self.client;
        let replies: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(i, tasks)| {
                // The batch's own id: the submission's, with its number mixed in.
                let mut id = request;
                for (b, x) in id[12..].iter_mut().zip((i as u32).to_le_bytes()) {
                    *b ^= x;
                }
                let req = Request::Submit {
                    session: self.addr.clone(),
                    tasks: tasks.clone(),
                };
                c.send(once(c, id, req))
            })
            .collect();
        let (mut first, mut count) = (u64::MAX, 0);
        for r in replies {
            match r.await? {
                Reply::Submitted { first: f, count: k } if k > 0 => {
                    first = first.min(f);
                    count += k;
                }
                Reply::Submitted { .. } => {}
                other => return Err(crate::unexpected(&other)),
            }
        }
        Ok(Submitted {
            first: if count == 0 { 0 } else { first },
            count,
        })
    }

    async fn try_submit(&self, request: RequestId, batches: &[Vec<Bytes>]) -> Result<Submitted, ClientError> {
        let c = &self.client;
        // All batches go out before the first reply is awaited. Every batch but the last
        // is staged, and the last submits them all (an agent older than staging takes
        // each batch on its own).
        let staging = c.agent_protocol >= 3;
        let n = batches.len().max(1);
        let empty = [Vec::new()];
        let batches = if batches.is_empty() { &empty[..] } else { batches };
        let replies: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(i, tasks)| {
                let session = self.addr.clone();
                let tasks = tasks.clone();
                if staging && i + 1 < n {
                    c.send(Request::Stage { session, tasks })
                } else {
                    c.send(once(c, request, Request::Submit { session, tasks }))
                }
            })
            .collect();
        let (mut first, mut count) = (u64::MAX, 0);
        for r in replies {
            match r.await? {
                Reply::Submitted { first: f, count: k } => {
                    if k > 0 {
                        first = first.min(f);
                        count += k;
                    }
                }
                Reply::Staged { .. } => {}
                other => return Err(crate::unexpected(&other)),
            }
        }
        Ok(Submitted {
            first: if count == 0 { 0 } else { first },
            count,
        })
    }

    /// Connects again and reopens the session, for up to the reconnect timeout.
    async fn reconnect(&mut self, why: &str) -> Result<(), ClientError> {
        if self.cfg.reconnect_timeout.is_zero() {
            return Err(ClientError::Lost(why.to_string()));
        }
        tracing::warn!("{why}; reconnecting for up to {} s", self.cfg.reconnect_timeout.as_secs_f64());
        let deadline = Instant::now() + self.cfg.reconnect_timeout;
        loop {
            if let Ok(c) = Client::connect(&self.cfg.connect).await {
                let req = Request::OpenSession {
                    session: self.addr.clone(),
                    direct: self.cfg.direct,
                    all: false,
                };
                match c.call(req).await {
                    Ok(_) => {
                        tracing::warn!("reconnected; session {} reopened", self.addr);
                        self.client = c;
                        self.awaiting = Arc::new(AtomicBool::new(false));
                        return Ok(());
                    }
                    Err(e @ ClientError::Refused { .. }) => return Err(e),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Lost(format!(
                    "{why}; gave up reconnecting after {} s",
                    self.cfg.reconnect_timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The next thing the agent says about the session. Outputs seen before are
    /// dropped; a lost agent is reconnected to (and the session reopened). Errors only
    /// when it could not be: `Lost` after the reconnect timeout, `Refused` when the
    /// session could not be reopened. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Next, ClientError> {
        loop {
            let ev = tokio::select! {
                ev = self.client.next_event() => Some(ev),
                _ = self.ping.tick() => None,
            };
            let lost = match ev {
                // A ping is due: the previous one must have been answered.
                None if self.awaiting.load(Ordering::Relaxed) => Some(format!(
                    "the agent did not answer a ping within {} s",
                    self.cfg.ping_interval.as_secs_f64()
                )),
                None => {
                    self.awaiting.store(true, Ordering::Relaxed);
                    let (flag, reply) = (self.awaiting.clone(), self.client.send(Request::Ping));
                    tokio::spawn(async move {
                        if reply.await.is_ok() {
                            flag.store(false, Ordering::Relaxed);
                        }
                    });
                    continue;
                }
                Some(None) => Some(self.client.lost().unwrap_or_else(|| "connection to the agent lost".into())),
                Some(Some(_)) => None,
            };
            if let Some(why) = lost {
                self.reconnect(&why).await?;
                continue;
            }
            let Some(Some(ev)) = ev else { continue };
            let id = self.info.id;
            match ev {
                Event::Outputs { session, outputs, .. } if session == id => {
                    let (new, seen): (Vec<TaskOutput>, Vec<TaskOutput>) = outputs.into_iter().partition(|o| self.dedup.first(o.task));
                    // Already handed to the caller: acknowledged again here, or the agent
                    // would keep them for the next holder.
                    self.ack(&seen);
                    if !new.is_empty() {
                        return Ok(Next::Outputs(new));
                    }
                }
                Event::Drained { session, .. } if session == id => return Ok(Next::Drained),
                Event::TakenOver { session, .. } if session == id => return Ok(Next::TakenOver),
                Event::Ended {
                    session, state, reason, ..
                } if session == id => return Ok(Next::Ended { state, reason }),
                _ => {}
            }
        }
    }

    /// Acknowledges outputs: delivered for good. Sent without waiting; if the agent is
    /// gone just then they come again after the reconnect (and are dropped as seen).
    pub fn ack(&self, outputs: &[TaskOutput]) {
        self.ack_ids(outputs.iter().map(|o| o.task).collect())
    }

    /// As [`Session::ack`], by task id.
    pub fn ack_ids(&self, tasks: Vec<u64>) {
        if tasks.is_empty() {
            return;
        }
        // A lost connection is found by `next`, which reconnects.
        let _ = self.client.notify(Request::Ack {
            session: self.addr.clone(),
            tasks,
        });
    }

    /// Leaves the session open and unheld: its workload keeps running.
    pub async fn detach(mut self) -> Result<(), ClientError> {
        let req = Request::Detach {
            session: self.addr.clone(),
        };
        self.finish(req).await
    }

    /// Ends the session (closed); what was not delivered is discarded.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let req = Request::Close {
            session: self.addr.clone(),
        };
        self.finish(req).await
    }

    /// Ends the session (aborted): pending tasks are canceled, running ones stopped.
    pub async fn abort(mut self) -> Result<(), ClientError> {
        let req = Request::Abort {
            session: self.addr.clone(),
        };
        self.finish(req).await
    }

    /// Sends the last request; if the agent is lost just then, reconnects and sends it
    /// again. A close or abort repeated after a lost answer may find the session ended
    /// by the first: that is what was asked.
    async fn finish(&mut self, req: Request) -> Result<(), ClientError> {
        match self.client.call(req.clone()).await {
            Ok(_) => Ok(()),
            Err(ClientError::Lost(why)) => {
                match self.reconnect(&why).await {
                    Ok(()) => {}
                    Err(ClientError::Refused {
                        kind: ErrorKind::Ended, ..
                    }) if !matches!(req, Request::Detach { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                }
                self.client.call(req).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

/// Puts outputs back in task order: each is held until every task before it has come.
/// With no first task known (`None`), everything is held until [`Reorder::rest`].
#[derive(Debug, Default)]
pub struct Reorder {
    held: std::collections::BTreeMap<u64, TaskOutput>,
    /// The next task id to release.
    next: Option<u64>,
}

impl Reorder {
    /// Releases from task `first` on (a submission's first id), or, with `None`, only
    /// at the end, sorted.
    pub fn new(first: Option<u64>) -> Reorder {
        Reorder {
            held: Default::default(),
            next: first,
        }
    }

    /// Takes an output; returns those now in order, oldest first.
    pub fn push(&mut self, o: TaskOutput) -> Vec<TaskOutput> {
        self.held.insert(o.task, o);
        let mut out = Vec::new();
        if let Some(n) = self.next.as_mut() {
            while let Some(o) = self.held.remove(n) {
                out.push(o);
                *n += 1;
            }
        }
        out
    }

    /// How many are held back.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Everything still held, in task order.
    pub fn rest(&mut self) -> Vec<TaskOutput> {
        std::mem::take(&mut self.held).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soam_proto::msg::TaskState;

    fn out(task: u64) -> TaskOutput {
        TaskOutput {
            task,
            state: TaskState::Done,
            attempts: 1,
            data: Bytes::new(),
        }
    }

    #[test]
    fn reorder_releases_in_task_order() {
        let ids = |v: Vec<TaskOutput>| v.into_iter().map(|o| o.task).collect::<Vec<_>>();
        let mut r = Reorder::new(Some(5));
        assert_eq!(ids(r.push(out(6))), Vec::<u64>::new());
        assert_eq!(ids(r.push(out(8))), Vec::<u64>::new());
        assert_eq!(ids(r.push(out(5))), vec![5, 6]);
        assert_eq!(r.held(), 1);
        assert_eq!(ids(r.push(out(7))), vec![7, 8]);
        let mut r = Reorder::new(None);
        assert!(r.push(out(3)).is_empty() && r.push(out(1)).is_empty());
        assert_eq!(ids(r.rest()), vec![1, 3]);
        assert_eq!(r.held(), 0);
    }
}
