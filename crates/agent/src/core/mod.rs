//! The session manager: one task that owns every application, session, task, connection
//! and service instance, so no state is shared and no lock is taken.
//!
//! Data flow: connections, instance I/O tasks, timers, Slurm and the store's commit
//! callbacks post [`CoreMsg`]s to the [`Inbox`] (`crate::ports`). `crate::reactor` runs
//! the core in turns: [`Core::handle`] for a message and every other one already
//! waiting, then [`Core::end_turn`], which schedules once and flushes outputs once, so
//! bursts are handled in batches (many tasks per dispatch, many outputs per frame). The
//! core writes to connections and instances through their ports and asks its
//! [`Launcher`] for every other effect; it spawns nothing itself. Anything that must be
//! durable before the client hears of it goes to the store with a callback that sends
//! the reply after the commit.
//!
//! Submodules by role:
//! - what the core holds: `session` (sessions), `task` (a task's states and the only
//!   writes to them), `inst` (an instance's serving and ending states, the same way),
//!   `lifecycle` (a session's state machine, pure), `blob`, `once`;
//! - answering clients: `requests` (dispatch, permissions, replies after commits), then
//!   one file per area: `apps`, `sessions`, `tasks`, `views` (with `session_list`, the
//!   paged session listing), `history`;
//! - moving sessions through their lifecycle: `effects` (`Core::drive` carries out
//!   what `lifecycle` decides, including ending a session);
//! - running tasks: `sched` (who gets slots, with `shares`), `dispatch` (feeding
//!   instances, starting and stopping them), `instances` (what services reply), `exits`
//!   (instances stopped, dead or overrunning; timers and the ticker), `head_timer`
//!   (the running method's timeout, one timer per instance),
//!   `delivery` (outputs to holders), `cluster` (Slurm allocations and workers),
//!   `blocked` (hosts an application may no longer start on, `actionOnSI="blockHost"`),
//!   `packages` and `preload` (service packages; instances started ahead);
//! - durability: `persist` (what is written when, and recovery).

mod apps;
mod blob;
mod blocked;
mod cluster;
mod delivery;
mod dispatch;
mod effects;
mod exits;
mod failure;
mod head_timer;
mod history;
mod inst;
mod instances;
mod lifecycle;
mod metrics;
mod once;
mod packages;
mod persist;
mod preload;
mod requests;
mod sched;
mod session;
mod session_list;
mod sessions;
mod shares;
mod task;
mod tasks;
mod views;
mod watchers;

#[cfg(test)]
mod tests;

use crate::config::AgentConfig;
use crate::ports::{CoreMsg, Inbox, InstCmd, InstEvent, InstId, Launcher, Outbox};
use soam_profile::{Profile, Service, SessionType};
use soam_proto::msg::{AgentFrame, Event, SessionState};
use soam_service::wire::Kind;
use soam_store::records::{AppRecord, HistoryRecord};
use soam_store::{Loaded, Store};
use std::collections::{BTreeMap, VecDeque};
// FxHash: these maps are keyed by the agent's own small integers (and names clients
// already had to register), looked up several times per task; SipHash's resistance to
// chosen keys buys nothing here, and its hashing was a large share of the core's
// instructions (docs/benchmarks.md, "What bounds each figure, and what moved it").
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

pub(crate) use failure::did_you_mean;
use inst::Instance;
pub(crate) use persist::recovered_task;
use session::{Session, Staged};
use task::Task;

pub use crate::ports::{ConnId, Sid};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The profile's timeout and failure action for one service method.
fn method_control(c: &soam_profile::Control, kind: Kind) -> &soam_profile::MethodControl {
    match kind {
        Kind::CreateService => &c.create_service,
        Kind::SessionEnter => &c.session_enter,
        Kind::Invoke => &c.invoke,
        Kind::SessionUpdate => &c.session_update,
        Kind::SessionLeave => &c.session_leave,
        Kind::DestroyService => &c.destroy_service,
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
    /// The application's name as the scheduler's keys hold it (`shares::Key`): cloning
    /// it for every candidate of every schedule is a count, not a copy of the text.
    name: Arc<str>,
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
    /// A service package being uploaded (`PackageChunk`), to its job; gone with the
    /// connection, which ends the job and removes what it wrote.
    upload: Option<std::sync::mpsc::Sender<packages::UploadMsg>>,
}

pub struct Core {
    cfg: AgentConfig,
    store: Store,
    inbox: Inbox,
    /// Every effect beyond writing to connections and instances (see `ports`).
    launcher: Arc<dyn Launcher>,
    started: Instant,
    agent_uid: u32,
    apps: HashMap<String, App>,
    /// Next session id per application; never goes back.
    counters: HashMap<String, u64>,
    sessions: HashMap<Sid, Session>,
    /// Open sessions per application, for maxSessions without counting them all at
    /// every create.
    open_per_app: HashMap<String, u32>,
    /// Tasks held by open sessions, for `maxStoredTasks` without summing every session
    /// on every submit.
    tasks_held: u64,
    /// When to hand freed memory back: the frames of a large submit are freed as their
    /// tasks are stored, and glibc keeps that memory (often in another thread's arena)
    /// until it is trimmed (see `tick`).
    trim: exits::TrimGate,
    /// (app, id) and (app, name) to the internal handle.
    /// Ordered, so listing sessions walks them in (app, id) order from where a page
    /// starts instead of sorting every session for every page.
    by_id: BTreeMap<(String, u64), Sid>,
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
    /// Hosts applications may no longer start services on (`actionOnSI="blockHost"`).
    blocked: blocked::Blocked,
    /// What ended sessions counted, per application (`metricsAddress`).
    tallies: metrics::Counters,
    /// Connections told of changes as they happen (`soamview events`).
    watchers: watchers::Watchers,
    /// This machine's name, as blocks and listings name it.
    local_host: String,
    /// Per pool, the sessions that may have work, in the order slots are offered: what
    /// the scheduler reads instead of every session.
    wants: sched::Wants,
    /// What `schedule` fills and empties every turn, kept so that a warm turn allocates
    /// nothing (a one-task round trip runs it twice).
    scratch: sched::Scratch,
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
    /// store counts only what is committed, and `maxRecordBytes` must hold for both.
    store_reserved: u64,
    /// Open sessions by the request id that created them, so a repeated create
    /// (`Request::Once`) finds its session instead of making another.
    created: HashMap<u128, Sid>,
    /// Deployed service packages (`soamdeploy`).
    packages: packages::Packages,
}

impl Core {
    /// `loaded` as [`Store::open_with`] gives it with [`recovered_task`].
    pub fn new(
        cfg: AgentConfig,
        store: Store,
        loaded: Loaded<Task>,
        inbox: Inbox,
        launcher: Arc<dyn Launcher>,
        shutdown: watch::Sender<bool>,
    ) -> Core {
        let cfg_data_dir = cfg.paths.data_dir.clone();
        let mut core = Core {
            cfg,
            store,
            inbox,
            launcher,
            started: Instant::now(),
            // SAFETY: geteuid has no preconditions.
            agent_uid: unsafe { libc::geteuid() },
            apps: HashMap::default(),
            counters: loaded.counters.into_iter().collect(),
            sessions: HashMap::default(),
            open_per_app: HashMap::default(),
            tasks_held: 0,
            trim: exits::TrimGate::default(),
            by_id: BTreeMap::new(),
            by_name: HashMap::default(),
            next_sid: 1,
            conns: HashMap::default(),
            instances: HashMap::default(),
            next_inst: 1,
            next_seq: 1,
            identities: HashMap::default(),
            cluster: cluster::Cluster::default(),
            blocked: blocked::Blocked::default(),
            tallies: metrics::Counters::default(),
            watchers: watchers::Watchers::default(),
            local_host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|| "localhost".into()),
            wants: Default::default(),
            scratch: Default::default(),
            history: loaded.history.into(),
            dirty: HashSet::default(),
            pending_ends: Vec::new(),
            needs_schedule: false,
            shutdown,
            store_fault: None,
            store_reserved: 0,
            created: HashMap::default(),
            packages: packages::Packages::open(&cfg_data_dir),
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

    /// Ends a turn (see `crate::reactor`): schedules once for everything the turn's
    /// messages changed, commits the turn's task ends, and sends outputs.
    pub fn end_turn(&mut self) {
        if self.needs_schedule {
            self.needs_schedule = false;
            self.schedule();
            self.cluster_demand();
        }
        self.commit_ends();
        self.flush();
    }

    /// A client asked the agent to stop.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The first step of shutdown: asks every instance to stop (DestroyService, or a kill
    /// if it is busy) and every worker to stop. Returns the allocations' jobs to cancel.
    /// Then [`Core::stopped`] until every instance is gone or the wait is over, and
    /// [`Core::close`].
    pub fn stop(&mut self) -> Vec<u64> {
        self.stop_instances();
        self.cluster_shutdown()
    }

    /// Whether every local instance is gone (the rest are killed by [`Core::close`]).
    pub fn stopped(&mut self) -> bool {
        self.instances.retain(|_, i| !i.tx.is_closed());
        self.instances.is_empty()
    }

    /// Kills what is left and gives back the store, to be closed off the runtime.
    pub fn close(self) -> Store {
        for i in self.instances.values() {
            let _ = i.tx.send(InstCmd::Kill);
        }
        self.store
    }

    /// The way to effects, for the reactor's shutdown.
    pub fn launcher(&self) -> Arc<dyn Launcher> {
        self.launcher.clone()
    }

    /// Handles one message of a turn.
    pub fn handle(&mut self, msg: CoreMsg) {
        use crate::trace::{Step, mark};
        match &msg {
            CoreMsg::Request {
                req: soam_proto::msg::Request::Submit { .. },
                ..
            } => mark(Step::SubmitHandled),
            CoreMsg::Instance {
                ev: InstEvent::Reply { .. },
                ..
            } => mark(Step::ReplyHandled),
            _ => {}
        }
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
                        upload: None,
                    },
                );
            }
            CoreMsg::Request { conn, id, req } => self.request(conn, id, req),
            CoreMsg::Disconnected { conn } => self.disconnected(conn),
            CoreMsg::Writable { conn } => {
                if let Some(c) = self.conns.get(&conn) {
                    self.dirty.extend(c.held.iter().copied());
                }
                self.watcher_writable(conn);
            }
            CoreMsg::Instance { inst, ev } => self.instance_event(inst, ev),
            CoreMsg::Timer(t) => self.timer(t),
            CoreMsg::Tick => self.tick(),
            CoreMsg::Metrics(reply) => {
                let _ = reply.send(self.metrics());
            }
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
}
