//! What the core keeps per session. A session's lifecycle state is its `life` (see
//! `lifecycle`); the rest is its tasks, their queue and counts, and what its holder has
//! been sent. A task moves only through the session's methods here (add, start, retry,
//! requeue, rerun, finish, refuse, cancel, delivered), which call the task's own
//! transitions (`task`) and keep the counts and the queue in step.

use super::failure::Failure;
use super::task::{Counts, Task};
use super::{lifecycle, now_ms, once};
use bytes::Bytes;
use soam_profile::{Service, SessionType};
use soam_proto::msg::TaskState;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

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
    /// What its tasks did, for monitoring (`metrics`): joins its application's at its end.
    /// Only counts: the time histograms are made from the tasks' own times when asked
    /// (`core::metrics::time_tasks`), which keeps the task path to a few additions.
    pub(super) tally: crate::metrics::Tally,
}

impl Session {
    /// Adds a submitted task, pending; `queued`: at the back of the queue now (a
    /// recoverable session's join it once committed, `Core::accepted`).
    pub(super) fn add_task(&mut self, input: Bytes, now: u64, queued: bool) {
        let idx = self.tasks.len() as u32;
        self.tasks.push(Task::new(input, now));
        if queued {
            self.pending.push_back(idx);
        }
        self.counts.pending += 1;
        self.tally.submitted += 1;
    }

    /// Adds a task the store kept, in the state it was stored in: pending ones join the
    /// queue, ended ones not yet delivered wait for the holder.
    pub(super) fn add_recovered(&mut self, t: Task) {
        let tid = self.tasks.len() as u64 + 1;
        *self.counts.slot(t.state()) += 1;
        match t.state() {
            TaskState::Pending => self.pending.push_back(tid as u32 - 1),
            _ if !t.delivered() && t.result().is_some() => {
                self.undelivered.insert(tid);
            }
            _ => {}
        }
        self.tasks.push(t);
    }

    /// Canceled placeholders up to `len` tasks, for ids the store lost (recovery).
    pub(super) fn fill_lost(&mut self, len: usize) {
        while self.tasks.len() < len {
            self.tasks.push(Task::canceled_placeholder());
            self.counts.canceled += 1;
        }
    }

    /// Starts the next pending task, on `node`: its index and the attempt it starts.
    pub(super) fn start_next(&mut self, now: u64, node: u16) -> Option<(usize, u32)> {
        let idx = self.pending.pop_front()? as usize;
        self.counts.moved(TaskState::Pending, TaskState::Running);
        Some((idx, self.tasks[idx].start(now, node)))
    }

    /// A running attempt failed in a way that counts: how many have failed so far.
    /// (Then [`Session::retry`] or [`Session::finish`].)
    pub(super) fn count_failure(&mut self, idx: usize) -> u32 {
        self.tasks[idx].count_failure()
    }

    /// A failed attempt is run again: back of the queue.
    pub(super) fn retry(&mut self, idx: usize) {
        self.tasks[idx].retry();
        self.counts.moved(TaskState::Running, TaskState::Pending);
        self.tally.retried += 1;
        self.pending.push_back(idx as u32);
    }

    /// A running attempt is taken back (suspend, reclaim, a lost node, an admin's
    /// requeue): not counted as an attempt, first in the queue.
    pub(super) fn requeue(&mut self, idx: usize) {
        self.tasks[idx].take_back();
        self.counts.moved(TaskState::Running, TaskState::Pending);
        self.pending.push_front(idx as u32);
    }

    /// An ended task is run again from scratch (an admin's requeue).
    pub(super) fn rerun(&mut self, idx: usize) {
        let tid = idx as u64 + 1;
        self.undelivered.remove(&tid);
        self.unacked.remove(&tid);
        let from = self.tasks[idx].state();
        self.tasks[idx].rerun();
        self.counts.moved(from, TaskState::Pending);
        self.pending.push_back(idx as u32);
    }

    /// Ends a task (running, or pending for a kill) in `state` with `result`. A pending
    /// one leaves the queue.
    pub(super) fn finish(&mut self, idx: usize, state: TaskState, result: Bytes, now: u64) {
        let from = self.tasks[idx].finish(state, result, now);
        if from == TaskState::Pending {
            self.pending.retain(|&i| i as usize != idx);
        }
        self.counts.moved(from, state);
        self.tally.ended(state);
    }

    /// A pending task whose submit could not be committed (see `Task::refuse`).
    pub(super) fn refuse(&mut self, idx: usize, why: &str, now: u64) {
        self.tasks[idx].refuse(why, now);
        self.counts.moved(TaskState::Pending, TaskState::Canceled);
    }

    /// The session ended: every task not ended is canceled.
    pub(super) fn cancel_open(&mut self, now: u64) {
        for t in self.tasks.iter_mut().filter(|t| !t.state().is_ended()) {
            let from = t.cancel(now);
            self.counts.moved(from, TaskState::Canceled);
        }
    }

    /// The holder acknowledged task `idx`'s output (see `Task::delivered_now`).
    pub(super) fn delivered(&mut self, idx: usize, discard: bool) {
        self.tasks[idx].delivered_now(discard);
    }

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
            tally: Default::default(),
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
