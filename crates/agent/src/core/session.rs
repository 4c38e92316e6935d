//! What the core keeps per session and per task. A session's lifecycle state is its
//! `life` (see `lifecycle`); the rest is its tasks, their queues and counts, and what
//! its holder has been sent.

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

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(super) input: Blob,
    /// Output (done) or message (error, canceled) until discarded.
    pub(super) result: Option<Blob>,
    pub(super) state: TaskState,
    /// Attempts started (SOAM_ATTEMPT of the latest one).
    pub(super) attempts: u32,
    /// Failed attempts that count against taskRetryLimit.
    pub(super) failures: u32,
    pub(super) delivered: bool,
    /// Where its latest attempt ran: a cluster node's index (see `Core::node_name`),
    /// 0 for the agent's host. Two bytes that fit in the padding.
    pub(super) node: u16,
    pub(super) submitted_ms: u64,
    pub(super) started_ms: u64,
    pub(super) ended_ms: u64,
}

// Ten million tasks are held at once: every byte here is 10 MB there.
const _: () = assert!(std::mem::size_of::<Task>() <= 56);

impl Task {
    pub(super) fn new(input: Bytes, now: u64) -> Task {
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
    pub(super) fn canceled_placeholder() -> Task {
        Task {
            state: TaskState::Canceled,
            result: Some(Blob::from(&b"lost from the store"[..])),
            ..Task::new(Bytes::new(), 0)
        }
    }
}

pub(super) fn boxed(b: Bytes) -> Blob {
    Blob::from_bytes(b)
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) pending: u64,
    pub(super) running: u64,
    pub(super) done: u64,
    pub(super) error: u64,
    pub(super) canceled: u64,
}

impl Counts {
    pub(super) fn slot(&mut self, s: TaskState) -> &mut u64 {
        match s {
            TaskState::Pending => &mut self.pending,
            TaskState::Running => &mut self.running,
            TaskState::Done => &mut self.done,
            TaskState::Error => &mut self.error,
            TaskState::Canceled => &mut self.canceled,
        }
    }
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
    pub(super) fn set_state(&mut self, idx: usize, to: TaskState) {
        let from = self.tasks[idx].state;
        *self.counts.slot(from) -= 1;
        *self.counts.slot(to) += 1;
        self.tasks[idx].state = to;
    }

    /// Canceled placeholders up to `len` tasks, for ids the store lost (recovery).
    pub(super) fn fill_lost(&mut self, len: usize) {
        while self.tasks.len() < len {
            self.tasks.push(Task::canceled_placeholder());
            self.counts.canceled += 1;
        }
    }

    pub(super) fn runnable(&self) -> bool {
        self.life.runnable()
    }
}
