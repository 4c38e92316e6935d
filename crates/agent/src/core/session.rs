//! What the core keeps per session. A session's lifecycle state is its `life` (see
//! `lifecycle`); its tasks and how they move are `task`'s; the rest is the queues and
//! counts of its tasks and what its holder has been sent.

pub(super) use super::task::{Counts, Task};
use super::*;

/// One session's staged tasks on one connection.
#[derive(Default)]
pub(super) struct Staged {
    pub(super) tasks: Vec<Bytes>,
    /// Their input bytes, for the staging limits.
    pub(super) bytes: usize,
    /// Why a part was refused: the rest of the submission, already on its way, is
    /// refused too, up to and including its `Submit`.
    pub(super) refused: Option<Failure>,
}

pub(super) struct Session {
    pub(super) app: String,
    pub(super) id: u64,
    pub(super) name: Option<String>,
    pub(super) tag: Option<String>,
    pub(super) stype: Arc<SessionType>,
    pub(super) service: Arc<Service>,
    /// Where it stands and who holds it: changed only through `lifecycle::Life::on`.
    pub(super) life: lifecycle::Life,
    pub(super) direct: bool,
    pub(super) common_data: Bytes,
    pub(super) created_ms: u64,
    pub(super) owner_uid: u32,
    /// Task id N is `tasks[N-1]`.
    pub(super) tasks: Vec<Task>,
    /// Indexes into `tasks`, in dispatch order.
    pub(super) pending: VecDeque<u32>,
    pub(super) counts: Counts,
    /// Ended tasks whose output the current holder has not been sent yet.
    pub(super) undelivered: BTreeSet<u64>,
    /// Sent to the current holder, not yet acknowledged.
    pub(super) unacked: BTreeSet<u64>,
    /// Instances bound to this session.
    pub(super) bound: u32,
    /// Moving average of how long its tasks take on an instance (0 = not measured yet);
    /// sets how many tasks are queued ahead on an instance.
    pub(super) task_ns: u64,
    /// Task ends being committed (recoverable): not yet deliverable, not yet drained.
    pub(super) persisting: u64,
    /// The request id it was created under (`Request::Once`), to forget it at its end.
    pub(super) created_by: Option<u128>,
    /// In its pool's candidates for slots (`sched::Wants`).
    pub(super) candidate: bool,
    /// The latest request ids it was given tasks under, so a repeat is not accepted twice.
    pub(super) remembered: once::Remembered,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
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

    pub(super) fn addr(&self) -> String {
        format!("{}:{}", self.app, self.id)
    }
    pub(super) fn runnable(&self) -> bool {
        self.life.runnable()
    }
}
