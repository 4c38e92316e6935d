//! A task and how it moves: the one place a task's state and data change.
//!
//! ```text
//!            start             end (Done | Error | Canceled)
//!  Pending ─────────▶ Running ──────────────────────────────▶ ended
//!     ▲ ▲   retry (a counted failure),   │                       │
//!     │ └── requeue (not counted) ───────┘                       │
//!     │     cancel, refuse (never ran) ─▶ Canceled               │
//!     └────────────────── rerun (an admin's requeue) ────────────┘
//! ```
//!
//! Every transition is a method of [`Session`] here, because a task's state is also
//! counted in its session ([`Counts`]) and its pending queue; each checks (in debug
//! builds, which every test runs) that the move is one [`may_follow`] allows. Other
//! modules read a task through its accessors and never write it.
//!
//! The state is the protocol's [`TaskState`] beside the data, not an enum carrying its
//! data: ten million tasks are held at once, and an enum whose ended variant carried
//! the result, both times and the node would not fit the 56 bytes a task takes now.

use super::blob::Blob;
use super::session::Session;
use bytes::Bytes;
use soam_proto::msg::TaskState;
use soam_store::records::{StoredTaskState, TaskRecord};

#[derive(Debug, Clone)]
pub(crate) struct Task {
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

/// Whether a task in `from` may move to `to` (the diagram above).
pub(super) fn may_follow(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    matches!(
        (from, to),
        (Pending, Running | Canceled) | (Running, Pending | Done | Error | Canceled) | (Done | Error | Canceled, Pending)
    )
}

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

    /// A stored task as the agent holds it, made as the store reads it (see
    /// [`soam_store::Store::open_with`]): the record itself is never kept.
    pub(crate) fn recovered(t: TaskRecord) -> Task {
        Task {
            input: boxed(t.input),
            result: t.result.map(boxed),
            state: match t.state {
                StoredTaskState::Pending => TaskState::Pending,
                StoredTaskState::Done => TaskState::Done,
                StoredTaskState::Error => TaskState::Error,
                StoredTaskState::Canceled => TaskState::Canceled,
            },
            attempts: t.attempts,
            failures: t.failures,
            delivered: t.delivered,
            // Not stored: node names are this agent life's.
            node: 0,
            submitted_ms: t.submitted_ms,
            started_ms: t.started_ms,
            ended_ms: t.ended_ms,
        }
    }

    pub(super) fn state(&self) -> TaskState {
        self.state
    }
    pub(super) fn input(&self) -> &Blob {
        &self.input
    }
    pub(super) fn result(&self) -> Option<&Blob> {
        self.result.as_ref()
    }
    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }
    pub(super) fn failures(&self) -> u32 {
        self.failures
    }
    pub(super) fn delivered(&self) -> bool {
        self.delivered
    }
    pub(super) fn node(&self) -> u16 {
        self.node
    }
    pub(super) fn submitted_ms(&self) -> u64 {
        self.submitted_ms
    }
    pub(super) fn started_ms(&self) -> u64 {
        self.started_ms
    }
    pub(super) fn ended_ms(&self) -> u64 {
        self.ended_ms
    }
}

fn boxed(b: Bytes) -> Blob {
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

impl Session {
    /// Moves task `idx` to `to`, counted; the only write of a task's state.
    fn move_task(&mut self, idx: usize, to: TaskState) -> &mut Task {
        let t = &mut self.tasks[idx];
        debug_assert!(
            may_follow(t.state, to),
            "task {} of {}:{}: {} may not become {}",
            idx + 1,
            self.app,
            self.id,
            t.state,
            to
        );
        *self.counts.slot(t.state) -= 1;
        *self.counts.slot(to) += 1;
        t.state = to;
        t
    }

    /// Adds a submitted task, pending; `queued`: at the back of the queue now (a
    /// recoverable session's join it once committed, `Core::accepted`).
    pub(super) fn add_task(&mut self, input: Bytes, now: u64, queued: bool) {
        let idx = self.tasks.len() as u32;
        self.tasks.push(Task::new(input, now));
        if queued {
            self.pending.push_back(idx);
        }
        self.counts.pending += 1;
    }

    /// Adds a task the store kept, in the state it was stored in: pending ones join the
    /// queue, ended ones not yet delivered wait for the holder.
    pub(super) fn add_recovered(&mut self, t: Task) {
        let tid = self.tasks.len() as u64 + 1;
        *self.counts.slot(t.state) += 1;
        match t.state {
            TaskState::Pending => self.pending.push_back(tid as u32 - 1),
            _ if !t.delivered && t.result.is_some() => {
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
        let t = self.move_task(idx, TaskState::Running);
        t.attempts += 1;
        t.started_ms = now;
        t.node = node;
        Some((idx, t.attempts))
    }

    /// A running attempt failed in a way that counts against taskRetryLimit; how many
    /// have failed so far. (Then [`Session::retry`] or [`Session::finish`].)
    pub(super) fn count_failure(&mut self, idx: usize) -> u32 {
        let t = &mut self.tasks[idx];
        t.failures += 1;
        t.failures
    }

    /// A failed attempt is run again: back of the queue.
    pub(super) fn retry(&mut self, idx: usize) {
        self.move_task(idx, TaskState::Pending);
        self.pending.push_back(idx as u32);
    }

    /// A running attempt is taken back (suspend, reclaim, a lost node, an admin's
    /// requeue): not counted as an attempt, first in the queue.
    pub(super) fn requeue(&mut self, idx: usize) {
        let t = self.move_task(idx, TaskState::Pending);
        t.attempts = t.attempts.saturating_sub(1);
        self.pending.push_front(idx as u32);
    }

    /// An ended task is run again from scratch (an admin's requeue).
    pub(super) fn rerun(&mut self, idx: usize) {
        let tid = idx as u64 + 1;
        self.undelivered.remove(&tid);
        self.unacked.remove(&tid);
        let t = self.move_task(idx, TaskState::Pending);
        t.result = None;
        t.failures = 0;
        t.delivered = false;
        self.pending.push_back(idx as u32);
    }

    /// Ends a task (running, or pending for a kill) in `state` with `result`. A pending
    /// one leaves the queue.
    pub(super) fn finish(&mut self, idx: usize, state: TaskState, result: Bytes, now: u64) {
        debug_assert!(matches!(state, TaskState::Done | TaskState::Error | TaskState::Canceled));
        if self.tasks[idx].state == TaskState::Pending {
            self.pending.retain(|&i| i as usize != idx);
        }
        let t = self.move_task(idx, state);
        t.ended_ms = now;
        t.result = Some(boxed(result));
    }

    /// A pending task whose submit could not be committed: canceled with why, and
    /// counted as delivered (its client was told in the submit's reply).
    pub(super) fn refuse(&mut self, idx: usize, why: &str, now: u64) {
        let t = self.move_task(idx, TaskState::Canceled);
        t.ended_ms = now;
        t.delivered = true;
        t.result = Some(boxed(Bytes::from(format!("not accepted: {why}"))));
    }

    /// The session ended: every task not ended is canceled, with no message each
    /// (nobody can fetch a task of an ended session).
    pub(super) fn cancel_open(&mut self, now: u64) {
        for idx in 0..self.tasks.len() {
            if !self.tasks[idx].state.is_ended() {
                let t = self.move_task(idx, TaskState::Canceled);
                t.ended_ms = now;
                t.result = None;
            }
        }
    }

    /// The holder acknowledged task `idx`'s output; with `discard`, a done task's
    /// output is let go (failure messages are small and wanted by views and history).
    pub(super) fn delivered(&mut self, idx: usize, discard: bool) {
        let t = &mut self.tasks[idx];
        t.delivered = true;
        if discard && t.state == TaskState::Done {
            t.result = None;
        }
    }
}
