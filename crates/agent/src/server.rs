//! The socket side: accept connections, check who they are, run the handshake, then
//! shuttle frames between the peer and the core.
//!
//! Each connection has a reader (frames in, decoded, forwarded to the core's inbox) and a
//! writer (frames out, coalesced: everything queued goes in one write). A malformed or
//! oversized frame gets one error reply and closes that connection only.
//!
//! What one peer can make the agent hold is bounded here, before the core sees it:
//! - connections: at most `maxConnections`, and `maxConnectionsPerUser` per uid in a
//!   shared agent, refused with a reason at the handshake;
//! - a peer that never says hello is closed after `handshakeTimeoutMs`, and its hello
//!   may be a few KiB at most;
//! - replies it does not read: the [`Outbox`] counts the bytes queued for it, and the
//!   reader stops taking its requests while they exceed [`OUTBOX_CAP`] (backpressure,
//!   not an unbounded queue); the core holds back outputs for it meanwhile;
//! - frames being read: a large frame's body is only allocated against a budget shared
//!   by all connections ([`FRAME_BUDGET`]), so many peers sending maximal frames at once
//!   queue instead of each costing 16 MiB;
//! - counts inside a frame (tasks in a Submit) are refused from their length prefix,
//!   before anything is decoded for them.

use crate::ports::turn::{self, STAGE_MAX, StagedWriter};
use crate::ports::{ConnId, CoreMsg, Inbox};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use soam_proto::frame::{self, FrameError};
use soam_proto::msg::{AgentFrame, ClientFrame, Hello, MAGIC, Welcome};
use soam_proto::sock::Sock;
use soam_proto::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore, mpsc};

/// Bytes of replies and events queued for one connection beyond which its requests are
/// no longer read (and outputs for it are held back in the core).
pub const OUTBOX_CAP: usize = 8 << 20;
/// Bytes of frame bodies being read at once, over all connections. Frames under
/// [`SMALL_FRAME`] do not count, so ordinary traffic never waits on it.
pub const FRAME_BUDGET: usize = 32 << 20;
const SMALL_FRAME: usize = 64 << 10;
/// Requests read from one connection and not yet answered: beyond any of these the
/// reader waits. Bytes bound what is queued toward the core (submits waiting for their
/// commit, say); views are limited on their own because their replies can be large
/// while the requests are tiny.
const INFLIGHT_BYTES: usize = 64 << 20;
const INFLIGHT_REQUESTS: usize = 4096;
const INFLIGHT_VIEWS: usize = 2;
/// Largest hello a peer may send before it is known to be a soam client.
const HELLO_MAX: usize = 4 << 10;
/// A frame whose body has started must arrive within this, so a stalled peer cannot
/// sit on the shared frame budget.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection's read buffer. Without one a frame costs two reads (length, then body)
/// and a third finds the socket empty; with it, one read takes every small frame that
/// has arrived, and a short read tells tokio the socket is empty. Larger bodies are
/// read past it, straight into their own buffer.
const READ_BUF: usize = 8 << 10;

/// Everything connections share: settings, the connection counts and the frame budget.
pub struct Ctx {
    pub shared: bool,
    pub agent_uid: u32,
    pub admin_gid: Option<u32>,
    pub max_connections: u32,
    pub max_per_user: u32,
    pub handshake_timeout: Duration,
    /// Connections now open: in all, and per uid.
    counts: Mutex<(u32, HashMap<u32, u32>)>,
    frame_budget: Semaphore,
}

impl Ctx {
    pub fn new(cfg: &crate::AgentConfig, agent_uid: u32) -> Ctx {
        Ctx {
            shared: cfg.shared,
            agent_uid,
            admin_gid: cfg.admin_gid,
            max_connections: cfg.max_connections,
            max_per_user: cfg.max_connections_per_user,
            handshake_timeout: Duration::from_millis(cfg.handshake_timeout_ms),
            counts: Mutex::new((0, HashMap::new())),
            frame_budget: Semaphore::new(FRAME_BUDGET),
        }
    }

    /// Counts a new connection of `uid`, or says why it is refused.
    fn admit(self: &Arc<Self>, uid: u32) -> Result<Admitted, String> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.0 >= self.max_connections {
            return Err(format!(
                "the agent serves {} connections, its maxConnections limit; try again later",
                c.0
            ));
        }
        let mine = c.1.entry(uid).or_insert(0);
        // The agent's own user and root are never capped per user: they are how an
        // admin gets in to look at what is using the connections.
        if self.shared && uid != 0 && uid != self.agent_uid && *mine >= self.max_per_user {
            return Err(format!(
                "uid {uid} already has {mine} connections open, the maxConnectionsPerUser limit ({})",
                self.max_per_user
            ));
        }
        *mine += 1;
        c.0 += 1;
        Ok(Admitted { ctx: self.clone(), uid })
    }

    /// Root, the agent's own user, and members of `adminGroup`. Everyone who can reach
    /// a one-user agent is one of the first two.
    async fn is_admin(&self, uid: u32, gid: u32) -> bool {
        if !self.shared || uid == 0 || uid == self.agent_uid {
            return true;
        }
        let Some(admin_gid) = self.admin_gid else { return false };
        // The user database may be a directory service: keep it off the reactor.
        tokio::task::spawn_blocking(move || crate::identity::in_group(uid, gid, admin_gid))
            .await
            .unwrap_or(false)
    }
}

/// One counted connection; uncounted when dropped, however the connection ends.
struct Admitted {
    ctx: Arc<Ctx>,
    uid: u32,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.ctx.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.0 -= 1;
        if let Some(n) = c.1.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                c.1.remove(&self.uid);
            }
        }
    }
}

/// What the core sends one connection, with a running count of the bytes not yet
/// written to it. The core sees it as a [`crate::ports::Client`].
#[derive(Clone)]
pub struct Outbox(Arc<OutboxInner>);

impl std::ops::Deref for Outbox {
    type Target = OutboxInner;
    fn deref(&self) -> &OutboxInner {
        &self.0
    }
}

pub struct OutboxInner {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    /// The core held outputs back for this connection: the writer tells it when there
    /// is room again.
    stalled: Arc<AtomicBool>,
    /// For writing a small frame to the socket at once when nothing is queued, instead
    /// of waking the writer task: a thread hand-off on every reply's way out.
    direct: Arc<Direct>,
}

/// What the writer task is handed. (A frame as it is, not boxed: that would be an
/// allocation per frame for the rare partial write.)
#[allow(clippy::large_enum_variant)]
enum Out {
    Frame(AgentFrame),
    /// The rest of a frame the socket took only part of when written directly.
    Raw(bytes::Bytes),
    /// A reply the core encoded itself (see [`Outbox::send_encoded`]).
    Encoded {
        id: u64,
        frame: bytes::Bytes,
    },
}

/// What writing a frame takes besides the bytes, shared by [`Outbox::send`] and the
/// writer task.
struct Direct {
    stream: Arc<Sock>,
    /// The client is older than typed failures: they go out as plain error replies.
    untyped: bool,
    inflight: Arc<Inflight>,
    /// Wakes the reader, which may be waiting for answered requests.
    drained: Arc<Notify>,
    /// Held while a frame joins the writer's queue, and while the core writes directly:
    /// what another thread queues (a reply after a commit) then comes either before the
    /// direct write, which sees the queue busy and queues too, or after all of it,
    /// including any rest it queued.
    order: Mutex<()>,
}

/// Largest frame [`Outbox::send`] writes directly; larger ones go to the writer task,
/// which writes large payloads from their own buffers.
const DIRECT_MAX: usize = STAGE_MAX;

impl Direct {
    /// The frame as this client gets it, its request counted as answered.
    fn prepare(&self, mut m: AgentFrame) -> AgentFrame {
        if let AgentFrame::Reply { id, .. } | AgentFrame::Failed { id, .. } = &m {
            self.inflight.answered(*id);
        }
        if self.untyped
            && let AgentFrame::Failed { id, message, .. } = m
        {
            m = AgentFrame::Reply { id, result: Err(message) };
        }
        m
    }
}

/// Appends `m`'s frame to `parts`; one too large to send is replaced by an error reply
/// rather than leave the peer waiting for a reply that never comes.
fn encode_or_refuse(parts: &mut frame::Parts, m: &AgentFrame) {
    if let Err(e) = parts.encode(m)
        && let AgentFrame::Reply { id, .. } | AgentFrame::Failed { id, .. } = m
    {
        let _ = parts.encode(&AgentFrame::Reply {
            id: *id,
            result: Err(format!("the reply could not be sent: {e}")),
        });
    }
}

impl StagedWriter for OutboxInner {
    /// Writes `parts` (no large payloads) to the socket without blocking; what it does
    /// not take goes to the writer task, which is idle (nothing is queued).
    fn write_now(&self, parts: &frame::Parts) {
        // An error (the socket full or failing) sends it all to the writer, which
        // finds out which. So does a queue another thread filled since this was staged
        // (a reply after a commit, from the store's thread): the writer may be partway
        // through a frame, and a direct write would land inside it. See `order`.
        let order = self.direct.order.lock().unwrap_or_else(|e| e.into_inner());
        let n = if self.queued.load(Ordering::SeqCst) == 0 {
            self.direct.stream.send(&[std::io::IoSlice::new(&parts.buf)]).unwrap_or(0)
        } else {
            0
        };
        crate::trace::mark(crate::trace::Step::StagedSent);
        if n < parts.buf.len() {
            let rest = bytes::Bytes::copy_from_slice(&parts.buf[n..]);
            self.queued.fetch_add(rest.len(), Ordering::SeqCst);
            let _ = self.tx.send(Out::Raw(rest));
        }
        drop(order);
        self.direct.drained.notify_one();
    }
}

impl Outbox {
    /// Where this connection's frames are staged in a turn (see [`turn::stage`]).
    fn key(&self) -> *const () {
        Arc::as_ptr(&self.0) as *const ()
    }

    fn writer(&self) -> Arc<dyn StagedWriter> {
        self.0.clone()
    }

    pub fn send(&self, f: AgentFrame) -> bool {
        let size = f.approx_size();
        let f = if size <= DIRECT_MAX && self.queued.load(Ordering::SeqCst) == 0 && !self.tx.is_closed() {
            // Nothing queued, so nothing this could overtake: the writer only writes
            // what is queued, and counts it off after writing.
            match self.stage(f, size) {
                None => return true,
                Some(f) => f,
            }
        } else {
            f
        };
        // Whatever was staged for this connection goes before it.
        self.unstage();
        let _order = self.direct.order.lock().unwrap_or_else(|e| e.into_inner());
        self.queued.fetch_add(size, Ordering::SeqCst);
        self.tx.send(Out::Frame(f)).is_ok()
    }

    /// Sends the frame answering request `id`, encoded by the caller (a page of a
    /// listing), as [`Outbox::send`] sends a reply: staged for the end of the core's
    /// turn when it may be, else through the writer task, behind what is queued.
    pub fn send_encoded(&self, id: u64, frame: Vec<u8>) -> bool {
        let size = frame.len();
        if size <= DIRECT_MAX && self.queued.load(Ordering::SeqCst) == 0 && !self.tx.is_closed() {
            let staged = turn::stage(
                self.key(),
                size,
                || self.writer(),
                |parts| {
                    self.direct.inflight.answered(id);
                    parts.buf.extend_from_slice(&frame);
                },
            );
            if staged.is_some() {
                return true;
            }
        }
        self.unstage();
        let _order = self.direct.order.lock().unwrap_or_else(|e| e.into_inner());
        self.queued.fetch_add(size, Ordering::SeqCst);
        self.tx.send(Out::Encoded { id, frame: frame.into() }).is_ok()
    }

    /// Adds `f` to what this connection is sent at the end of the core's turn (None);
    /// gives it back if it may not be (see [`turn::stage`]), or if it has a payload to
    /// keep aside.
    fn stage(&self, f: AgentFrame, size: usize) -> Option<AgentFrame> {
        let mut f = Some(f);
        let kept = turn::stage(
            self.key(),
            size,
            || self.writer(),
            |parts| {
                let g = self.direct.prepare(f.take()?);
                let start = parts.buf.len();
                encode_or_refuse(parts, &g);
                if !parts.big.is_empty() {
                    // A payload kept aside after all (the size is an estimate): the writer
                    // sends those. Preparing twice changes nothing.
                    parts.buf.truncate(start);
                    parts.big.clear();
                    return Some(g);
                }
                None
            },
        );
        match kept {
            Some(back) => back,
            None => f,
        }
    }

    /// Writes what is staged for this connection now, ahead of a frame that must go
    /// through the writer task.
    fn unstage(&self) {
        turn::unstage(self.key());
    }

    /// More is queued than the connection may hold: send it nothing optional.
    pub fn full(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > OUTBOX_CAP
    }

    /// For the core: true if there is room now; if not, the core gets
    /// [`CoreMsg::Writable`] once there is. (Flag first, then look: the writer empties
    /// the queue first, then looks at the flag, so one of them sees the other.)
    pub fn room_or_notify(&self) -> bool {
        self.stalled.store(true, Ordering::SeqCst);
        !self.full()
    }
}

impl crate::ports::Client for Outbox {
    fn send(&self, f: AgentFrame) -> bool {
        Outbox::send(self, f)
    }
    fn send_encoded(&self, id: u64, frame: Vec<u8>) -> bool {
        Outbox::send_encoded(self, id, frame)
    }
    fn full(&self) -> bool {
        Outbox::full(self)
    }
    fn room_or_notify(&self) -> bool {
        Outbox::room_or_notify(self)
    }
}

/// Requests of one connection that the core has and has not answered yet, by id:
/// added by the reader, removed by the writer as their replies go out.
#[derive(Default)]
struct Inflight {
    ids: Mutex<HashMap<u64, (usize, bool)>>,
    bytes: AtomicUsize,
    views: AtomicUsize,
}

impl Inflight {
    fn add(&self, id: u64, bytes: usize, view: bool) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((b, v)) = ids.insert(id, (bytes, view)) {
            // A reused id: the earlier request's reply will not find its entry.
            self.bytes.fetch_sub(b, Ordering::SeqCst);
            self.views.fetch_sub(usize::from(v), Ordering::SeqCst);
        }
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        self.views.fetch_add(usize::from(view), Ordering::SeqCst);
    }

    fn answered(&self, id: u64) {
        let done = self.ids.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        if let Some((b, v)) = done {
            self.bytes.fetch_sub(b, Ordering::SeqCst);
            self.views.fetch_sub(usize::from(v), Ordering::SeqCst);
        }
    }

    fn full(&self) -> bool {
        self.bytes.load(Ordering::SeqCst) > INFLIGHT_BYTES
            || self.views.load(Ordering::SeqCst) >= INFLIGHT_VIEWS
            || self.ids.lock().unwrap_or_else(|e| e.into_inner()).len() >= INFLIGHT_REQUESTS
    }
}

/// Requests whose replies are listings, as large as what they list.
fn is_view(req: &soam_proto::msg::Request) -> bool {
    use soam_proto::msg::Request as R;
    matches!(
        req,
        R::ListApps { .. }
            | R::ListSessions(_)
            | R::ListTasks { .. }
            | R::History { .. }
            | R::TaskHistory { .. }
            | R::ListTasksPage { .. }
            | R::TaskHistoryPage { .. }
            | R::ListSessionsPage { .. }
            | R::ListSessionsAhead { .. }
            | R::ListAppsPage { .. }
    )
}

/// Serves one accepted connection until it closes.
pub async fn connection(stream: Stream, conn: ConnId, inbox: Inbox, ctx: Arc<Ctx>) {
    let creds = stream.peer_creds();
    let interprocess::local_socket::tokio::Stream::UdSocket(stream) = stream;
    let stream = match OwnedFd::try_from(stream).and_then(Sock::new) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("connection {conn}: {e}");
            return;
        }
    };
    // `&Sock` reads and writes, so the reader and writer tasks share one socket.
    let stream = Arc::new(stream);
    let mut rx = &*stream;
    let tx = &*stream;
    let (uid, gid, pid) = match creds {
        Ok(c) => (c.euid().unwrap_or(u32::MAX), c.egid().unwrap_or(u32::MAX), c.pid()),
        Err(e) => {
            tracing::warn!("connection {conn}: no peer credentials: {e}");
            return;
        }
    };
    if !ctx.shared && uid != ctx.agent_uid && uid != 0 {
        let reason = format!(
            "this agent serves uid {} only (start it with --shared to serve others)",
            ctx.agent_uid
        );
        let _ = refuse(tx, reason).await;
        return;
    }
    let _admitted = match ctx.admit(uid) {
        Ok(a) => a,
        Err(reason) => {
            tracing::warn!("connection {conn} from uid {uid} refused: {reason}");
            let _ = refuse(tx, reason).await;
            return;
        }
    };
    let hello = async {
        let len = frame::read_len(&mut rx, HELLO_MAX).await?;
        let body = frame::read_body(&mut rx, len).await?;
        frame::decode::<Hello>(&body)
    };
    let hello: Hello = match tokio::time::timeout(ctx.handshake_timeout, hello).await {
        Ok(Ok(h)) => h,
        Ok(Err(FrameError::Closed)) => return,
        Ok(Err(e)) => {
            let _ = refuse(tx, format!("bad handshake: {e}")).await;
            return;
        }
        Err(_) => {
            tracing::debug!("connection {conn}: no hello within {:?}; closed", ctx.handshake_timeout);
            return;
        }
    };
    if hello.magic != MAGIC || !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
        let reason = format!(
            "protocol mismatch: client speaks version {}, agent speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}; use commands from the agent's release ({})",
            hello.version,
            soam_proto::SOAM_VERSION
        );
        let _ = refuse(tx, reason).await;
        return;
    }
    let admin = ctx.is_admin(uid, gid).await;
    let run_as = if ctx.shared && uid != ctx.agent_uid {
        tokio::task::spawn_blocking(move || Arc::new(crate::identity::RunAs::of(uid)))
            .await
            .ok()
    } else {
        None
    };
    let welcome = Welcome::Ok {
        version: PROTOCOL_VERSION,
        agent_version: soam_proto::SOAM_VERSION.into(),
    };
    if frame::write_msg(&mut &*stream, &welcome).await.is_err() {
        return;
    }
    let (out, writer) = outbox(stream.clone(), hello.version < 4, conn, inbox.clone());
    let (inflight, drained) = (out.direct.inflight.clone(), out.direct.drained.clone());
    inbox.send(CoreMsg::Connected {
        conn,
        out: Arc::new(out.clone()),
        uid,
        admin,
        run_as,
        pid,
        client: hello.client,
    });
    read_loop(rx, conn, &inbox, &out, &inflight, &drained, &ctx).await;
    drop(out);
    inbox.send(CoreMsg::Disconnected { conn });
    let _ = writer.await;
}

/// The connection's outbox and its writer task. `untyped`: the client is older than
/// typed failures.
fn outbox(stream: Arc<Sock>, untyped: bool, conn: ConnId, inbox: Inbox) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let direct = Arc::new(Direct {
        stream,
        untyped,
        inflight: Arc::new(Inflight::default()),
        drained: Arc::new(Notify::new()),
        order: Mutex::new(()),
    });
    let out = Outbox(Arc::new(OutboxInner {
        tx: out_tx,
        queued: Arc::new(AtomicUsize::new(0)),
        stalled: Arc::new(AtomicBool::new(false)),
        direct: direct.clone(),
    }));
    let writer = tokio::spawn(write_loop(direct, out_rx, (out.queued.clone(), out.stalled.clone()), (conn, inbox)));
    (out, writer)
}

async fn refuse(mut tx: &Sock, reason: String) -> Result<(), FrameError> {
    frame::write_msg(&mut tx, &Welcome::Refused { reason }).await
}

/// Reads one frame; a large body waits for room in the shared frame budget first and
/// must then arrive within [`BODY_TIMEOUT`].
async fn read_budgeted<R: tokio::io::AsyncRead + Unpin>(rx: &mut R, ctx: &Ctx) -> Result<Vec<u8>, FrameError> {
    let len = frame::read_len(rx, frame::MAX_FRAME).await?;
    if len < SMALL_FRAME {
        return frame::read_body(rx, len).await;
    }
    let _permit = ctx.frame_budget.acquire_many(len as u32).await.map_err(|_| FrameError::Closed)?;
    match tokio::time::timeout(BODY_TIMEOUT, frame::read_body(rx, len)).await {
        Ok(r) => r,
        Err(_) => Err(FrameError::Malformed(format!(
            "a {len}-byte frame did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        ))),
    }
}

async fn read_loop(rx: &Sock, conn: ConnId, inbox: &Inbox, out: &Outbox, inflight: &Inflight, drained: &Notify, ctx: &Ctx) {
    let mut rx = tokio::io::BufReader::with_capacity(READ_BUF, rx);
    loop {
        // Backpressure: a peer that does not read what it asked for gets no more
        // requests taken until it does.
        while out.full() || inflight.full() {
            drained.notified().await;
        }
        let body = match read_budgeted(&mut rx, ctx).await {
            Ok(b) => bytes::Bytes::from(b),
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::warn!("connection {conn}: {e}; closing it");
                out.send(AgentFrame::Reply {
                    id: 0,
                    result: Err(e.to_string()),
                });
                return;
            }
        };
        match frame::decode_shared::<ClientFrame>(&body) {
            Ok(f) => {
                // Id 0 expects no reply (acknowledgements).
                if f.id != 0 {
                    inflight.add(f.id, body.len(), is_view(&f.req));
                }
                if matches!(f.req, soam_proto::msg::Request::Submit { .. }) {
                    crate::trace::mark(crate::trace::Step::SubmitRead);
                }
                inbox.send(CoreMsg::Request {
                    conn,
                    id: f.id,
                    req: f.req,
                })
            }
            // Framing is intact: refuse this request, keep the connection.
            Err(FrameError::OverLimit(reason)) if frame::leading_id(&body).is_some() => {
                let id = frame::leading_id(&body).unwrap_or(0);
                out.send(AgentFrame::Failed {
                    id,
                    kind: soam_proto::msg::ErrorKind::Limit,
                    message: reason,
                });
            }
            Err(e) => {
                tracing::warn!("connection {conn}: {e}; closing it");
                out.send(AgentFrame::Reply {
                    id: 0,
                    result: Err(e.to_string()),
                });
                return;
            }
        }
    }
}

/// Writes what the core queued, coalescing what is already waiting into one write, and
/// counts it off the connection's outbox. Under the cap again, it wakes the reader and,
/// if the core held outputs back, tells it it may send them.
async fn write_loop(
    direct: Arc<Direct>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    // The outbox's counters only: holding its sender would keep the channel open.
    (queued, stalled): (Arc<AtomicUsize>, Arc<AtomicBool>),
    // Whom to tell that the connection is writable again.
    (conn, inbox): (ConnId, Inbox),
) {
    let mut w = &*direct.stream;
    // Large outputs stay in their buffers, written from there (see `frame::Parts`).
    let mut parts = frame::Parts::default();
    while let Some(m) = rx.recv().await {
        parts.clear();
        let mut size = 0;
        let mut next = Some(m);
        while let Some(m) = next {
            match m {
                Out::Frame(m) => {
                    size += m.approx_size();
                    encode_or_refuse(&mut parts, &direct.prepare(m));
                }
                Out::Raw(b) => {
                    size += b.len();
                    parts.buf.extend_from_slice(&b);
                }
                Out::Encoded { id, frame } => {
                    direct.inflight.answered(id);
                    size += frame.len();
                    // Written from its own buffer, as a large payload is.
                    parts.big.push((parts.buf.len(), frame));
                }
            }
            next = if parts.len() < 1 << 20 { rx.try_recv().ok() } else { None };
        }
        if frame::write_parts(&mut w, &parts).await.is_err() {
            return;
        }
        let left = queued.fetch_sub(size, Ordering::SeqCst) - size;
        // A stored permit at worst: the reader looks at its limits again anyway.
        direct.drained.notify_one();
        if left <= OUTBOX_CAP && stalled.swap(false, Ordering::SeqCst) {
            inbox.send(CoreMsg::Writable { conn });
        }
    }
    let _ = w.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use soam_proto::msg::Reply;
    use std::os::fd::{AsRawFd, OwnedFd};

    fn reply(i: u64) -> AgentFrame {
        AgentFrame::Reply {
            id: i,
            result: Ok(Reply::Registered {
                app: format!("{i}:{}", "x".repeat(3000)),
                created: true,
                warnings: vec![],
            }),
        }
    }

    /// An outbox on a socket whose send buffer (4 KiB) fills after a few frames, in a
    /// turn of the core that may write directly as often as it likes; and the peer.
    fn narrow_outbox() -> (Outbox, tokio::task::JoinHandle<()>, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let size: libc::c_int = 4096;
        // SAFETY: a valid socket and option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw const size).cast(),
                std::mem::size_of_val(&size) as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        ours.set_nonblocking(true).unwrap();
        let stream = Sock::new(OwnedFd::from(ours)).unwrap();
        let (inbox, _core) = crate::ports::inbox();
        let (out, writer) = outbox(Arc::new(stream), false, 1, inbox);
        turn::allow_direct_writes(u32::MAX);
        (out, writer, theirs)
    }

    /// Bytes the peer can read now.
    fn waiting(s: &std::os::unix::net::UnixStream) -> libc::c_int {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes the readable byte count into `n`.
        assert_eq!(unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) }, 0);
        n
    }

    /// A socket that takes only part of a frame written directly: the rest goes to the
    /// writer task, the frames after it are queued behind it, and the peer reads every
    /// frame whole and in order.
    #[tokio::test]
    async fn the_rest_of_a_partial_direct_write_goes_out_whole_and_in_order() {
        let (out, writer, theirs) = narrow_outbox();
        // The writer task cannot run before this test awaits (one thread), so what the
        // socket does not take stays queued.
        let mut partial = None;
        for i in 0..40 {
            let was_queued = out.queued.load(Ordering::SeqCst);
            assert!(out.send(reply(i)));
            if partial.is_none() && was_queued == 0 && out.queued.load(Ordering::SeqCst) > 0 {
                partial = Some(i);
            }
        }
        turn::send_staged();
        let partial = partial.expect("the socket took every frame: no partial write happened");
        assert!(partial > 0, "the first frame already did not fit: nothing was written directly");
        drop(out);
        theirs.set_nonblocking(true).unwrap();
        let mut theirs = tokio::net::UnixStream::from_std(theirs).unwrap();
        for i in 0..40 {
            let body = frame::read_frame(&mut theirs).await.unwrap();
            let got: AgentFrame = frame::decode(&body).unwrap();
            assert_eq!(format!("{got:?}"), format!("{:?}", reply(i)), "frame {i}");
        }
        writer.await.unwrap();
    }

    /// A frame staged in a turn while another thread queues one for the writer task (a
    /// reply after a commit) goes behind it: the writer may be partway through that
    /// frame when the turn ends, and a direct write then would land inside it.
    #[tokio::test]
    async fn a_staged_frame_never_lands_inside_one_the_writer_is_writing() {
        let (out, writer, theirs) = narrow_outbox();
        assert!(out.send(reply(1)));
        assert_eq!(out.queued.load(Ordering::SeqCst), 0, "not staged");
        // The store's thread: no turn there, so this goes to the writer task.
        let large = AgentFrame::Reply {
            id: 2,
            result: Err("y".repeat(200_000)),
        };
        std::thread::scope(|t| {
            t.spawn(|| assert!(out.send(large.clone())));
        });
        // The writer starts on the large frame and stops when the socket is full.
        let started = async {
            while waiting(&theirs) == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), started)
            .await
            .expect("the writer task never wrote the large frame");
        // What it wrote read: the socket has room while the writer is not looking.
        let mut got = vec![0u8; waiting(&theirs) as usize];
        std::io::Read::read_exact(&mut &theirs, &mut got).unwrap();
        turn::send_staged();
        drop(out);
        theirs.set_nonblocking(true).unwrap();
        let mut rest = tokio::net::UnixStream::from_std(theirs).unwrap();
        tokio::io::AsyncReadExt::read_to_end(&mut rest, &mut got).await.unwrap();
        writer.await.unwrap();
        let mut r = &got[..];
        for want in [large, reply(1)] {
            let body = frame::read_frame(&mut r).await.unwrap();
            let f: AgentFrame = frame::decode(&body).unwrap();
            assert_eq!(format!("{f:?}"), format!("{want:?}"));
        }
        assert!(r.is_empty());
    }

    /// Frames the core writes in a turn wait until the turn ends and then go out in one
    /// write, in order; a frame that must go through the writer task (too large to
    /// write directly) sends what was staged before it first.
    #[tokio::test]
    async fn frames_of_a_turn_go_out_in_one_write_at_its_end() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let stream = Sock::new(OwnedFd::from(ours)).unwrap();
        let (inbox, _core) = crate::ports::inbox();
        let (out, writer) = outbox(Arc::new(stream), false, 1, inbox);
        turn::allow_direct_writes(2);
        for i in 0..3 {
            assert!(out.send(reply(i)));
        }
        assert_eq!(waiting(&theirs), 0, "a frame went out before the turn ended");
        assert_eq!(out.queued.load(Ordering::SeqCst), 0, "a small frame went to the writer task");
        turn::send_staged();
        let three = waiting(&theirs);
        assert!(three > 9000, "the three frames are not there at the turn's end: {three} bytes");
        // A second turn: a large frame sends what was staged ahead of itself.
        assert!(out.send(reply(3)));
        assert_eq!(waiting(&theirs), three, "staged, not written yet");
        assert_eq!(out.queued.load(Ordering::SeqCst), 0, "a small frame went to the writer task");
        let large = AgentFrame::Reply {
            id: 4,
            result: Err("y".repeat(DIRECT_MAX + 1)),
        };
        let want = [reply(0), reply(1), reply(2), reply(3), large.clone()];
        assert!(out.send(large));
        assert!(waiting(&theirs) > three, "what was staged did not go ahead of the large frame");
        turn::send_staged();
        drop(out);
        let mut theirs = tokio::net::UnixStream::from_std(theirs).unwrap();
        for (i, w) in want.iter().enumerate() {
            let body = frame::read_frame(&mut theirs).await.unwrap();
            let got: AgentFrame = frame::decode(&body).unwrap();
            assert_eq!(format!("{got:?}"), format!("{w:?}"), "frame {i}");
        }
        writer.await.unwrap();
    }

    /// Replies the core encoded itself go out as `send` sends others: a small one with
    /// the turn's staged frames, a large one through the writer task behind them, each
    /// counting its request as answered (a view request stays in flight until then).
    #[tokio::test]
    async fn encoded_replies_go_out_in_order_and_count_as_answered() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let stream = Sock::new(OwnedFd::from(ours)).unwrap();
        let (inbox, _core) = crate::ports::inbox();
        let (out, writer) = outbox(Arc::new(stream), false, 1, inbox);
        turn::allow_direct_writes(u32::MAX);
        let encoded = |f: &AgentFrame| {
            let mut b = Vec::new();
            frame::encode_into(f, &mut b).unwrap();
            b
        };
        let large = AgentFrame::Reply {
            id: 3,
            result: Err("y".repeat(DIRECT_MAX + 1)),
        };
        for id in [1, 3] {
            out.direct.inflight.add(id, 10, true);
        }
        assert!(out.send(reply(0)));
        assert!(out.send_encoded(1, encoded(&reply(1))));
        assert_eq!(
            out.queued.load(Ordering::SeqCst),
            0,
            "a small encoded reply went to the writer task"
        );
        assert_eq!(
            out.direct.inflight.views.load(Ordering::SeqCst),
            1,
            "the staged reply did not count as answered"
        );
        assert!(out.send(reply(2)));
        assert!(out.send_encoded(3, encoded(&large)));
        assert!(
            out.queued.load(Ordering::SeqCst) > DIRECT_MAX,
            "the large encoded reply was not queued"
        );
        turn::send_staged();
        let direct = out.direct.clone();
        drop(out);
        let mut theirs = tokio::net::UnixStream::from_std(theirs).unwrap();
        for (i, w) in [reply(0), reply(1), reply(2), large].iter().enumerate() {
            let body = frame::read_frame(&mut theirs).await.unwrap();
            let got: AgentFrame = frame::decode(&body).unwrap();
            assert_eq!(format!("{got:?}"), format!("{w:?}"), "frame {i}");
        }
        writer.await.unwrap();
        assert_eq!(
            direct.inflight.views.load(Ordering::SeqCst),
            0,
            "the written reply did not count as answered"
        );
    }
}
