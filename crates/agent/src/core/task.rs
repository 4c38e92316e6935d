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
//! Every transition is a method of [`Task`] here, each checked (in debug builds, which
//! every test runs) against [`may_follow`]; a session calls them through its own
//! methods (`session.rs`), which keep its [`Counts`] and its pending queue in step.
//! Other modules read a task through its accessors and never write it.
//!
//! The state is the protocol's [`TaskState`] beside the data, not an enum carrying its
//! data: ten million tasks are held at once, and an enum whose ended variant carried
//! the result, both times and the node would not fit the 56 bytes a task takes now.

use super::blob::Blob;
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

impl Counts {
    /// A task moved from `from` to `to`.
    pub(super) fn moved(&mut self, from: TaskState, to: TaskState) {
        *self.slot(from) -= 1;
        *self.slot(to) += 1;
    }
}

impl Task {
    /// The only write of a task's state; returns the state it left.
    fn go(&mut self, to: TaskState) -> TaskState {
        debug_assert!(may_follow(self.state, to), "a {} task may not become {}", self.state, to);
        std::mem::replace(&mut self.state, to)
    }

    /// Pending -> Running on `node`: the attempt it starts.
    pub(super) fn start(&mut self, now: u64, node: u16) -> u32 {
        self.go(TaskState::Running);
        self.attempts += 1;
        self.started_ms = now;
        self.node = node;
        self.attempts
    }

    /// A running attempt failed in a way that counts against taskRetryLimit; how many
    /// have failed so far.
    pub(super) fn count_failure(&mut self) -> u32 {
        self.failures += 1;
        self.failures
    }

    /// Running -> Pending after a counted failure.
    pub(super) fn retry(&mut self) {
        self.go(TaskState::Pending);
    }

    /// Running -> Pending, the attempt not counted (suspend, reclaim, a lost node).
    pub(super) fn take_back(&mut self) {
        self.go(TaskState::Pending);
        self.attempts = self.attempts.saturating_sub(1);
    }

    /// Ended -> Pending, from scratch (an admin's requeue).
    pub(super) fn rerun(&mut self) {
        self.go(TaskState::Pending);
        self.result = None;
        self.failures = 0;
        self.delivered = false;
    }

    /// Running (or pending, for a kill) -> `state`, an end, with `result`; the state it
    /// left.
    pub(super) fn finish(&mut self, state: TaskState, result: Bytes, now: u64) -> TaskState {
        debug_assert!(state.is_ended());
        let from = self.go(state);
        self.ended_ms = now;
        self.result = Some(boxed(result));
        from
    }

    /// Pending -> Canceled: its submit could not be committed; counted as delivered
    /// (its client was told in the submit's reply).
    pub(super) fn refuse(&mut self, why: &str, now: u64) {
        self.go(TaskState::Canceled);
        self.ended_ms = now;
        self.delivered = true;
        self.result = Some(boxed(Bytes::from(format!("not accepted: {why}"))));
    }

    /// Not ended -> Canceled with no message (its session ended: nobody can fetch it);
    /// the state it left.
    pub(super) fn cancel(&mut self, now: u64) -> TaskState {
        let from = self.go(TaskState::Canceled);
        self.ended_ms = now;
        self.result = None;
        from
    }

    /// The holder acknowledged its output; with `discard`, a done task's output is let
    /// go (failure messages are small and wanted by views and history).
    pub(super) fn delivered_now(&mut self, discard: bool) {
        self.delivered = true;
        if discard && self.state == TaskState::Done {
            self.result = None;
        }
    }
}
