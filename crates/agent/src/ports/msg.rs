//! What reaches the core: every event (a connection, a request, an instance's output, a
//! timer, a commit, Slurm) is a [`CoreMsg`] in one unbounded inbox, handled in arrival
//! order.

use super::{ConnId, InstEvent, InstId, Outbox, Sid};
use soam_proto::worker::FromWorker;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

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
    /// A scrape of `/metrics` (`crate::metrics`): the core answers with what it counts.
    Metrics(tokio::sync::oneshot::Sender<crate::metrics::Snapshot>),
    /// These task ends (recoverable sessions) are committed: their outputs may go out.
    Persisted(Vec<(Sid, u64)>),
    /// A session's creation could not be committed; its client was told so.
    Unsaved(Sid),
    /// Tasks `first..first+count` of a recoverable session are committed: they may run.
    /// `reserved`: what the submit held against `maxRecordBytes`, now counted by the
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A holder vanished; if nobody reopened by now, run the disconnect action.
    Disconnect { sid: Sid, generation: u64 },
    /// The instance's one method timer (set for `at`) fired: see `core::head_timer`.
    MethodTimeout { inst: InstId, at: Instant },
    /// taskCleanupPeriod is over: stop the instance if it still runs the ended work.
    Cleanup { inst: InstId, sid: Sid },
    /// suspendGracePeriod is over: stop what still runs for the suspended session.
    SuspendGrace { sid: Sid, generation: u64 },
    /// reclaimGracePeriod is over for an instance given back by a session.
    ReclaimGrace { inst: InstId, sid: Sid },
}

/// What Slurm and the workers tell the core (all Slurm I/O is in `crate::slurm`).
pub enum ClusterEvent {
    /// The agent's leftover jobs from an earlier life are cancelled: requests may go.
    Ready,
    AllocQueued {
        alloc: u64,
        job: u64,
    },
    AllocGranted {
        alloc: u64,
        job: u64,
        nodes: Vec<String>,
        cpus: u32,
    },
    /// `queued`: Slurm had given it a job id (then revoked or ended it): a failure of
    /// that job, asked again for; otherwise Slurm refused the request itself.
    AllocFailed {
        alloc: u64,
        why: String,
        queued: bool,
    },
    WorkerMsg {
        worker: u64,
        msg: FromWorker,
    },
    WorkerGone {
        worker: u64,
        why: String,
        /// Slurm ended its job or lost its node: not the worker's own failure.
        slurm_lost: bool,
    },
    /// squeue's view of our jobs (`None`: it could not tell).
    Polled(Option<Vec<JobStatus>>),
    /// A package version is on its way to a worker, whole and in order, ahead of any
    /// Start sent after this (or could not be read: `error`).
    PackageSent {
        worker: u64,
        sha256: String,
        error: Option<String>,
    },
}

/// One job's line of `squeue`.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub job: u64,
    /// PENDING, RUNNING, COMPLETING...
    pub state: String,
    /// Why it waits (Resources, Priority, ...), "None" when running.
    pub reason: String,
    pub time_left_s: Option<u64>,
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
