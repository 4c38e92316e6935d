//! The session manager: one task that owns every application, session, task, connection
//! and service instance, so no state is shared and no lock is taken.
//!
//! Data flow: connections, instance I/O tasks, timers and the ticker post [`CoreMsg`]s to
//! the [`Inbox`]. The loop takes a message, then every other message already waiting,
//! and only then schedules once and flushes outputs once, so bursts are handled in
//! batches (many tasks per dispatch, many outputs per frame). Anything that must be
//! durable before the client hears of it goes to the store with a callback that sends
//! the reply after the commit.
//!
//! Submodules by role: `requests` answers clients, `sched` shares slots and dispatches
//! tasks, `instances` handles what services reply, `views` builds what `soamview` shows.

mod blob;
mod cluster;
mod effects;
mod instances;
mod lifecycle;
mod once;
mod persist;
mod requests;
mod sched;
mod shares;
mod views;

use crate::config::AgentConfig;
use crate::instance::{InstCmd, InstEvent, InstId};
use crate::server::Outbox;
use blob::Blob;
use bytes::Bytes;
use soam_profile::{Profile, Service, SessionType};
use soam_proto::msg::{AgentFrame, ErrorKind, Event, SessionState, TaskState};
use soam_service::wire::Kind;
use soam_store::records::{AppRecord, HistoryRecord};
use soam_store::{Loaded, Store, Write};
use std::collections::{BTreeSet, VecDeque};
// FxHash: these maps are keyed by the agent's own small integers (and names clients
// already had to register), looked up several times per task; SipHash's resistance to
// chosen keys buys nothing here and cost a fifth of the core's instructions.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

pub use cluster::ClusterEvent;

pub type ConnId = u64;
/// The agent's own handle for a session, unique across applications (cheap to copy into
/// every in-flight task entry, unlike `APP:ID`).
pub type Sid = u64;

pub enum CoreMsg {
    Connected {
        conn: ConnId,
        out: Outbox,
        uid: u32,
        /// May do admin acts and see every session (see `server::Ctx::is_admin`).
        admin: bool,
        /// Whom this user's processes run as (shared agent only), looked up off the core.
        run_as: Option<Arc<crate::identity::RunAs>>,
        pid: Option<i32>,
        client: String,
    },
    Request {
        conn: ConnId,
        id: u64,
        req: soam_proto::msg::Request,
    },
    Disconnected {
        conn: ConnId,
    },
    /// A connection whose outbox was full has room again: send what was held back.
    Writable {
        conn: ConnId,
    },
    Instance {
        inst: InstId,
        ev: InstEvent,
    },
    Timer(Timer),
    Tick,
    /// These task ends (recoverable sessions) are committed: their outputs may go out.
    Persisted(Vec<(Sid, u64)>),
    /// A session's creation could not be committed; its client was told so.
    Unsaved(Sid),
    /// Tasks `first..first+count` of a recoverable session are committed: they may run.
    /// `reserved`: what the submit held against `maxStoreBytes`, now counted by the
    /// store (or never written), so released.
    Accepted {
        sid: Sid,
        first: u64,
        count: u64,
        reserved: u64,
    },
    /// Their commit failed and the client was told so: they never run.
    NotAccepted {
        sid: Sid,
        first: u64,
        count: u64,
        why: String,
        reserved: u64,
    },
    /// A repeated `Request::Once` can be answered: every commit before it is decided.
    /// `session`: the session a repeated submit went to; `None` for a repeated create.
    Repeat {
        conn: ConnId,
        id: u64,
        request: u128,
        session: Option<Sid>,
        attach: bool,
    },
    /// The store started failing (the reason) or works again (`None`).
    StoreHealth(Option<String>),
    /// Slurm and the workers (cluster mode).
    Cluster(ClusterEvent),
}

#[derive(Debug, Clone, Copy)]
pub enum Timer {
    /// A holder vanished; if nobody reopened by now, run the disconnect action.
    Disconnect { sid: Sid, generation: u64 },
    /// The method at the head of an instance's queue (by seq) overran its timeout.
    MethodTimeout { inst: InstId, seq: u64 },
    /// taskCleanupPeriod is over: stop the instance if it still runs the ended work.
    Cleanup { inst: InstId, sid: Sid },
    /// suspendGracePeriod is over: stop what still runs for the suspended session.
    SuspendGrace { sid: Sid, generation: u64 },
    /// reclaimGracePeriod is over for an instance given back by a session.
    ReclaimGrace { inst: InstId, sid: Sid },
}

/// A refused request: its kind, so a client can act on it without reading the text,
/// and the one-line reason.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// `app` is not registered; `known` are the names that are, for a suggestion.
    fn unknown_app<'a>(app: &str, known: impl Iterator<Item = &'a String>) -> Failure {
        let hint = did_you_mean(app, known)
            .map(|m| format!("; did you mean '{m}'?"))
            .unwrap_or_default();
        Failure::new(
            ErrorKind::UnknownApp,
            format!("unknown application '{app}'{hint} (soamview app lists them)"),
        )
    }
}

/// The candidate closest to a misspelt `typed`, if one is close enough to be meant
/// (Jaro-Winkler similarity above 0.8, as clap suggests subcommands).
pub(crate) fn did_you_mean<'a>(typed: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(typed, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

/// Text alone: a failure of no particular kind.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(ErrorKind::Other, message)
    }
}

/// The one way into the core.
#[derive(Clone)]
pub struct Inbox(mpsc::UnboundedSender<CoreMsg>);

impl Inbox {
    pub fn send(&self, m: CoreMsg) {
        let _ = self.0.send(m);
    }
}

pub fn inbox() -> (Inbox, mpsc::UnboundedReceiver<CoreMsg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Inbox(tx), rx)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The profile's timeout and failure action for one service method.
fn method_control(c: &soam_profile::Control, kind: Kind) -> soam_profile::MethodControl {
    match kind {
        Kind::CreateService => c.create_service,
        Kind::SessionEnter => c.session_enter,
        Kind::Invoke => c.invoke,
        Kind::SessionUpdate => c.session_update,
        Kind::SessionLeave => c.session_leave,
        Kind::DestroyService => c.destroy_service,
    }
}

/// Most outputs sent to a holder and not yet acknowledged: bounds what a slow client
/// can make the agent buffer.
const DELIVERY_WINDOW: usize = 65_536;
/// Most invocations queued ahead on one instance.
const PIPELINE: usize = 64;
/// How much work (by the session's measured task time) to queue on one instance: enough
/// that a fast service never waits for the agent, little enough that a slow task does
/// not hold others another instance could start.
const PIPELINE_TARGET_NS: u64 = 2_000_000;

struct App {
    profile: Arc<Profile>,
    record: AppRecord,
    /// Each service's config, shared by its instances and sessions; replaced on update,
    /// which is how instances notice they run an outdated config.
    services: HashMap<String, Arc<Service>>,
    types: HashMap<String, Arc<SessionType>>,
}

struct Conn {
    out: Outbox,
    uid: u32,
    admin: bool,
    /// Shown as the holder of the sessions it holds.
    label: String,
    held: HashSet<Sid>,
    /// Tasks sent with `Stage`, per session, waiting for the `Submit` that accepts them
    /// with its own (all or none); gone with the connection.
    staged: HashMap<Sid, Staged>,
}

/// One session's staged tasks on one connection.
#[derive(Default)]
struct Staged {
    tasks: Vec<Bytes>,
    /// Their input bytes, for the staging limits.
    bytes: usize,
    /// Why a part was refused: the rest of the submission, already on its way, is
    /// refused too, up to and including its `Submit`.
    refused: Option<Failure>,
}

#[derive(Debug, Clone)]
struct Task {
    input: Blob,
    /// Output (done) or message (error, canceled) until discarded.
    result: Option<Blob>,
    state: TaskState,
    /// Attempts started (SOAM_ATTEMPT of the latest one).
    attempts: u32,
    /// Failed attempts that count against taskRetryLimit.
    failures: u32,
    delivered: bool,
    /// Where its latest attempt ran: a cluster node's index (see `Core::node_name`),
    /// 0 for the agent's host. Two bytes that fit in the padding.
    node: u16,
    submitted_ms: u64,
    started_ms: u64,
    ended_ms: u64,
}

// Ten million tasks are held at once: every byte here is 10 MB there.
const _: () = assert!(std::mem::size_of::<Task>() <= 56);

impl Task {
    fn new(input: Bytes, now: u64) -> Task {
        Task {
            input: boxed(input),
            result: None,
            state: TaskState::Pending,
            attempts: 0,
            failures: 0,
            delivered: false,
            node: 0,
            submitted_ms: now,
            started_ms: 0,
            ended_ms: 0,
        }
    }

    /// Stands in for a task the store lost, so later ids keep their place.
    fn canceled_placeholder() -> Task {
        Task {
            state: TaskState::Canceled,
            result: Some(Blob::from(&b"lost from the store"[..])),
            ..Task::new(Bytes::new(), 0)
        }
    }
}

fn boxed(b: Bytes) -> Blob {
    Blob::new(&b)
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    pending: u64,
    running: u64,
    done: u64,
    error: u64,
    canceled: u64,
}

impl Counts {
    fn slot(&mut self, s: TaskState) -> &mut u64 {
        match s {
            TaskState::Pending => &mut self.pending,
            TaskState::Running => &mut self.running,
            TaskState::Done => &mut self.done,
            TaskState::Error => &mut self.error,
            TaskState::Canceled => &mut self.canceled,
        }
    }
}

struct Session {
    app: String,
    id: u64,
    name: Option<String>,
    tag: Option<String>,
    stype: Arc<SessionType>,
    service: Arc<Service>,
    /// Where it stands and who holds it: changed only through `lifecycle::Life::on`.
    life: lifecycle::Life,
    direct: bool,
    common_data: Bytes,
    created_ms: u64,
    owner_uid: u32,
    /// Task id N is `tasks[N-1]`.
    tasks: Vec<Task>,
    /// Indexes into `tasks`, in dispatch order.
    pending: VecDeque<u32>,
    counts: Counts,
    /// Ended tasks whose output the current holder has not been sent yet.
    undelivered: BTreeSet<u64>,
    /// Sent to the current holder, not yet acknowledged.
    unacked: BTreeSet<u64>,
    /// Instances bound to this session.
    bound: u32,
    /// Moving average of how long its tasks take on an instance (0 = not measured yet);
    /// sets how many tasks are queued ahead on an instance.
    task_ns: u64,
    /// Task ends being committed (recoverable): not yet deliverable, not yet drained.
    persisting: u64,
    /// The request id it was created under (`Request::Once`), to forget it at its end.
    created_by: Option<u128>,
    /// In its pool's candidates for slots (`sched::Wants`).
    candidate: bool,
    /// The latest request ids it was given tasks under, so a repeat is not accepted twice.
    remembered: once::Remembered,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    fn new(
        app: &str,
        id: u64,
        name: Option<String>,
        tag: Option<String>,
        stype: Arc<SessionType>,
        service: Arc<Service>,
        direct: bool,
        common_data: Bytes,
        owner_uid: u32,
    ) -> Session {
        Session {
            app: app.to_string(),
            id,
            name,
            tag,
            stype,
            service,
            life: lifecycle::Life::new(),
            direct,
            common_data,
            created_ms: now_ms(),
            owner_uid,
            tasks: Vec::new(),
            pending: VecDeque::new(),
            counts: Counts::default(),
            undelivered: BTreeSet::new(),
            unacked: BTreeSet::new(),
            bound: 0,
            task_ns: 0,
            persisting: 0,
            created_by: None,
            candidate: false,
            remembered: Default::default(),
        }
    }
}

impl Session {
    fn addr(&self) -> String {
        format!("{}:{}", self.app, self.id)
    }
    fn set_state(&mut self, idx: usize, to: TaskState) {
        let from = self.tasks[idx].state;
        *self.counts.slot(from) -= 1;
        *self.counts.slot(to) += 1;
        self.tasks[idx].state = to;
    }

    /// Canceled placeholders up to `len` tasks, for ids the store lost (recovery).
    fn fill_lost(&mut self, len: usize) {
        while self.tasks.len() < len {
            self.tasks.push(Task::canceled_placeholder());
            self.counts.canceled += 1;
        }
    }

    fn runnable(&self) -> bool {
        self.life.runnable()
    }
}

#[derive(Debug, Clone, Copy)]
struct Expect {
    kind: Kind,
    sid: Sid,
    task: u64,
    attempt: u32,
    seq: u64,
    /// When it was sent, to measure service time.
    sent: Instant,
    /// Sent to an idle instance: its reply took one round trip plus its own run, no
    /// wait behind others.
    alone: bool,
}

#[derive(Debug, Clone)]
enum KillReason {
    /// A method overran its timeout: the method at the head failed with this message.
    Failed(String),
    /// Suspend or reclaim: what it was running goes back to pending, no retry counted.
    Requeue,
    /// taskCleanupPeriod ran out on work whose session or task already ended.
    Cleanup,
    /// Retired (profile changed, idle, shutdown).
    Retire,
}

struct Instance {
    app: String,
    service: Arc<Service>,
    /// The uid its process runs as; it serves only sessions whose processes run so.
    run_uid: u32,
    /// The cluster worker it runs on; `None`: a local process of the agent's.
    worker: Option<u64>,
    tx: mpsc::UnboundedSender<InstCmd>,
    pid: Option<u32>,
    /// The session it serves now (SessionEnter sent or done).
    bound: Option<Sid>,
    /// SessionEnter succeeded for this session.
    entered: Option<Sid>,
    /// What it was asked and has not answered, in order: the head is running.
    expect: VecDeque<Expect>,
    invokes: usize,
    /// Given back by its session: finish what is queued, then unbind.
    release: bool,
    /// SessionUpdates sent and not yet answered: no task is sent meanwhile, so none
    /// runs on common data the service may fail to take.
    updating: u32,
    /// Stop it as soon as it is idle.
    retire: bool,
    kill: Option<KillReason>,
    /// Seq of the head whose timeout timer is armed.
    armed_seq: u64,
    idle_since: Instant,
    /// When its last reply came: a queued task starts no earlier than that.
    last_reply: Instant,
    /// About the time from sending a task to an idle instance to its reply (ns): the
    /// round trip to the process and one run. Work queued on an instance covers it too, else a remote
    /// instance waits for its next tasks a round trip after each batch (see `dispatch`).
    round_trip_ns: u64,
}

pub struct Core {
    cfg: AgentConfig,
    store: Store,
    inbox: Inbox,
    started: Instant,
    agent_uid: u32,
    apps: HashMap<String, App>,
    /// Next session id per application; never goes back.
    counters: HashMap<String, u64>,
    sessions: HashMap<Sid, Session>,
    /// Open sessions per application, for maxSessions without counting them all at
    /// every create.
    open_per_app: HashMap<String, u32>,
    /// (app, id) and (app, name) to the internal handle.
    by_id: HashMap<(String, u64), Sid>,
    by_name: HashMap<(String, String), Sid>,
    next_sid: Sid,
    conns: HashMap<ConnId, Conn>,
    instances: HashMap<InstId, Instance>,
    next_inst: InstId,
    next_seq: u64,
    /// Whom each session owner's processes run as (shared agent), refreshed whenever
    /// that user connects.
    identities: HashMap<u32, Arc<crate::identity::RunAs>>,
    /// Slurm allocations and their workers (services with `launcher: slurm`).
    cluster: cluster::Cluster,
    /// Per pool, the sessions that may have work, in the order slots are offered: what
    /// the scheduler reads instead of every session.
    wants: sched::Wants,
    /// Ended sessions, newest first, for `soamview history` and `session -a`.
    history: VecDeque<HistoryRecord>,
    /// Sessions whose outputs or drained state may need sending at the next flush.
    dirty: HashSet<Sid>,
    /// Task ends of recoverable sessions to commit at the end of this loop turn.
    pending_ends: Vec<(Sid, u64)>,
    needs_schedule: bool,
    shutdown: watch::Sender<bool>,
    /// Why the store cannot be written, while it cannot: requests that would write are
    /// refused with it, and `soamcontrol agent status` shows it.
    store_fault: Option<String>,
    /// Bytes accepted submits will add to the store, until their commit is done: the
    /// store counts only what is committed, and `maxStoreBytes` must hold for both.
    store_reserved: u64,
    /// Open sessions by the request id that created them, so a repeated create
    /// (`Request::Once`) finds its session instead of making another.
    created: HashMap<u128, Sid>,
}

impl Core {
    pub fn new(cfg: AgentConfig, store: Store, loaded: Loaded, inbox: Inbox, shutdown: watch::Sender<bool>) -> Core {
        let mut core = Core {
            cfg,
            store,
            inbox,
            started: Instant::now(),
            // SAFETY: geteuid has no preconditions.
            agent_uid: unsafe { libc::geteuid() },
            apps: HashMap::default(),
            counters: loaded.counters.into_iter().collect(),
            sessions: HashMap::default(),
            open_per_app: HashMap::default(),
            by_id: HashMap::default(),
            by_name: HashMap::default(),
            next_sid: 1,
            conns: HashMap::default(),
            instances: HashMap::default(),
            next_inst: 1,
            next_seq: 1,
            identities: HashMap::default(),
            cluster: cluster::Cluster::default(),
            wants: Default::default(),
            history: loaded.history.into(),
            dirty: HashSet::default(),
            pending_ends: Vec::new(),
            needs_schedule: false,
            shutdown,
            store_fault: None,
            store_reserved: 0,
            created: HashMap::default(),
        };
        let health = core.inbox.clone();
        core.store
            .on_health(Box::new(move |fault| health.send(CoreMsg::StoreHealth(fault))));
        for rec in loaded.apps {
            match soam_profile::parse(&rec.profile, std::path::Path::new(&rec.source)) {
                Ok(p) => core.install_app(p, rec),
                Err(e) => tracing::error!("registered application '{}' no longer validates ({e}); it is skipped", rec.name),
            }
        }
        core.recover_sessions(loaded.sessions, loaded.tasks, loaded.requests);
        core
    }

    fn install_app(&mut self, profile: Profile, record: AppRecord) {
        let services = profile.services.iter().map(|s| (s.name.clone(), Arc::new(s.clone()))).collect();
        let types = profile
            .session_types
            .iter()
            .map(|t| (t.name.clone(), Arc::new(t.clone())))
            .collect();
        let name = profile.application.clone();
        self.apps.insert(
            name,
            App {
                profile: Arc::new(profile),
                record,
                services,
                types,
            },
        );
    }

    /// Runs until shutdown is requested; then stops every instance and closes the store.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<CoreMsg>) {
        let ticker = {
            let inbox = self.inbox.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_secs(1));
                loop {
                    t.tick().await;
                    inbox.send(CoreMsg::Tick);
                }
            })
        };
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = shutdown.changed() => None,
            };
            let Some(msg) = msg else { break };
            self.handle(msg);
            let mut n = 0;
            while n < 4096 {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                }
                n += 1;
            }
            if self.needs_schedule {
                self.needs_schedule = false;
                self.schedule();
                self.cluster_demand();
            }
            self.commit_ends();
            self.flush();
            if *self.shutdown.borrow() {
                break;
            }
        }
        ticker.abort();
        self.stop_instances().await;
        self.cluster_shutdown().await;
        let Core { store, .. } = self;
        tokio::task::spawn_blocking(move || store.close()).await.ok();
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Connected {
                conn,
                out,
                uid,
                admin,
                run_as,
                pid,
                client,
            } => {
                if let Some(r) = run_as {
                    self.identities.insert(uid, r);
                }
                let label = match pid {
                    Some(p) => format!("pid {p} {client}"),
                    None => client,
                };
                self.conns.insert(
                    conn,
                    Conn {
                        out,
                        uid,
                        admin,
                        label,
                        held: HashSet::default(),
                        staged: HashMap::default(),
                    },
                );
            }
            CoreMsg::Request { conn, id, req } => self.request(conn, id, req),
            CoreMsg::Disconnected { conn } => self.disconnected(conn),
            CoreMsg::Writable { conn } => {
                if let Some(c) = self.conns.get(&conn) {
                    self.dirty.extend(c.held.iter().copied());
                }
            }
            CoreMsg::Instance { inst, ev } => self.instance_event(inst, ev),
            CoreMsg::Timer(t) => self.timer(t),
            CoreMsg::Tick => self.tick(),
            CoreMsg::Persisted(ends) => self.persisted(ends),
            CoreMsg::Accepted {
                sid,
                first,
                count,
                reserved,
            } => self.accepted(sid, first, count, reserved),
            CoreMsg::NotAccepted {
                sid,
                first,
                count,
                why,
                reserved,
            } => self.not_accepted(sid, first, count, &why, reserved),
            // The store's writer has logged the fault and the recovery.
            CoreMsg::StoreHealth(fault) => self.store_fault = fault,
            CoreMsg::Cluster(ev) => self.cluster_event(ev),
            CoreMsg::Repeat {
                conn,
                id,
                request,
                session,
                attach,
            } => self.answer_repeat(conn, id, request, session, attach),
            CoreMsg::Unsaved(sid) => self.end_session(sid, SessionState::Aborted, "its creation could not be saved", false),
        }
    }

    fn send(&self, conn: ConnId, f: AgentFrame) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.out.send(f);
        }
    }

    fn event(&self, conn: ConnId, e: Event) {
        self.send(conn, AgentFrame::Event(e));
    }

    fn after(&self, ms: u64, t: Timer) {
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            inbox.send(CoreMsg::Timer(t));
        });
    }

    /// Sends queued outputs to holders and tells them when their session is drained.
    fn flush(&mut self) {
        let dirty: Vec<Sid> = self.dirty.drain().collect();
        for sid in dirty {
            let Some(s) = self.sessions.get_mut(&sid) else { continue };
            let Some(conn) = s.life.holder() else { continue };
            // A holder that does not read gets nothing more until it does: its outputs
            // wait here, where they are kept anyway.
            if let Some(c) = self.conns.get(&conn)
                && c.out.full()
                && !c.out.room_or_notify()
            {
                continue;
            }
            let room = DELIVERY_WINDOW.saturating_sub(s.unacked.len());
            let mut outputs = Vec::new();
            while outputs.len() < room {
                let Some(tid) = s.undelivered.pop_first() else { break };
                let t = &s.tasks[(tid - 1) as usize];
                outputs.push(soam_proto::msg::TaskOutput {
                    task: tid,
                    state: t.state,
                    attempts: t.attempts,
                    data: t.result.as_deref().map(Bytes::copy_from_slice).unwrap_or_default(),
                });
                s.unacked.insert(tid);
            }
            let drained = s.counts.pending == 0 && s.counts.running == 0 && s.persisting == 0 && s.undelivered.is_empty();
            let send_drained = s
                .life
                .on(lifecycle::Event::Flushed { drained }, &s.stype)
                .is_ok_and(|fx| fx.contains(&lifecycle::Effect::SendDrained));
            let (app, id) = (s.app.clone(), s.id);
            let Some(c) = self.conns.get(&conn) else { continue };
            // Keep frames under the cap: outputs can be large.
            let mut batch = Vec::new();
            let mut bytes = 0;
            for o in outputs {
                bytes += o.data.len() + 32;
                batch.push(o);
                if bytes > soam_proto::frame::BATCH_BYTES {
                    let _ = c.out.send(AgentFrame::Event(Event::Outputs {
                        app: app.clone(),
                        session: id,
                        outputs: std::mem::take(&mut batch),
                    }));
                    bytes = 0;
                }
            }
            if !batch.is_empty() {
                let _ = c.out.send(AgentFrame::Event(Event::Outputs {
                    app: app.clone(),
                    session: id,
                    outputs: batch,
                }));
            }
            if send_drained {
                let _ = c.out.send(AgentFrame::Event(Event::Drained { app, session: id }));
            }
        }
    }

    fn tick(&mut self) {
        self.cluster_tick();
        let now = Instant::now();
        self.tick_sessions(now);
        // Idle instances are stopped after a while: reuse is for bursts, not forever.
        // One bound to a session with nothing to run first leaves it.
        let idle_for = Duration::from_secs(self.cfg.instance_idle_timeout_s);
        let idle_bound: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.bound.is_some() && i.expect.is_empty() && i.kill.is_none() && now.duration_since(i.idle_since) >= idle_for)
            .map(|(&id, _)| id)
            .collect();
        for id in idle_bound {
            self.unbind(id);
        }
        let stale: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.bound.is_none() && i.expect.is_empty() && i.kill.is_none() && now.duration_since(i.idle_since) >= idle_for)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.destroy_instance(id);
        }
    }

    async fn stop_instances(&mut self) {
        let ids: Vec<InstId> = self.instances.keys().copied().collect();
        for id in ids {
            // A busy instance would only answer DestroyService after its tasks.
            if self.instances[&id].invokes > 0 {
                self.kill(id, KillReason::Retire);
            } else {
                self.destroy_instance(id);
            }
        }
        // Give services a moment to run DestroyService, then stop what is left.
        // (Remote ones go with their workers, right after.)
        self.instances.retain(|_, i| i.worker.is_none());
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.instances.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.instances.retain(|_, i| !i.tx.is_closed());
        }
        for i in self.instances.values() {
            let _ = i.tx.send(InstCmd::Kill);
        }
    }
}
