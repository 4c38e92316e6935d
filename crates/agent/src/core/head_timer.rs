//! The timeout of the method an instance is running (the head of its queue), with at
//! most one timer pending per instance.
//!
//! Every reply makes the next queued method the head, and that method's timeout counts
//! from then. A timer for every head put one sleeping task into the runtime for every
//! task run, each living as long as the timeout: with a long `invoke` timeout, memory
//! and time grew with the tasks run (docs/benchmarks.md, "Method timeouts"). Instead an instance keeps
//! its head's deadline and one timer. A timer that fires before the head's deadline (the
//! head changed meanwhile) is set again for that deadline; only a deadline earlier than
//! the pending timer's (a method with a shorter timeout) starts another, and the timer
//! it overtakes is stale when it fires.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(super) struct HeadTimer {
    /// Seq of the head whose timeout is counted (seqs start at 2, so 0 is none).
    seq: u64,
    /// When that head's timeout runs out; `None`: its method has no timeout.
    deadline: Option<Instant>,
    /// When the instance's pending timer fires; `None`: no timer is pending. A timer
    /// that fires for any other time has been overtaken and is ignored.
    timer_at: Option<Instant>,
}

/// What a timer that fired means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fired {
    /// The head has overrun its timeout: stop the instance.
    Expired,
    /// The head's deadline is later: set a timer for it.
    Again(Instant),
    /// Nothing to do: an overtaken timer, or the head it was for is done and no later
    /// one has a timeout.
    Nothing,
}

impl HeadTimer {
    /// Whether the head `seq` is the one counted (then there is nothing to arm).
    pub(super) fn counts(&self, seq: u64) -> bool {
        self.seq == seq
    }

    /// Head `seq` starts now, with its method's `timeout` (`None`: none). Returns when a
    /// new timer must fire, when one must be started.
    pub(super) fn arm(&mut self, seq: u64, timeout: Option<Duration>, now: Instant) -> Option<Instant> {
        if self.counts(seq) {
            return None;
        }
        self.seq = seq;
        self.deadline = timeout.map(|t| now + t);
        let deadline = self.deadline?;
        if self.timer_at.is_some_and(|at| at <= deadline) {
            // The pending timer fires first and is then set again for this deadline.
            return None;
        }
        self.timer_at = Some(deadline);
        Some(deadline)
    }

    /// The timer set for `at` fired at `now`; `head` is the seq at the head of the
    /// instance's queue (`None`: the queue is empty).
    pub(super) fn fired(&mut self, at: Instant, head: Option<u64>, now: Instant) -> Fired {
        if self.timer_at != Some(at) {
            return Fired::Nothing;
        }
        self.timer_at = None;
        let Some(deadline) = self.deadline else { return Fired::Nothing };
        if head != Some(self.seq) {
            return Fired::Nothing;
        }
        if now >= deadline {
            return Fired::Expired;
        }
        self.timer_at = Some(deadline);
        Fired::Again(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::{Fired, HeadTimer};
    use std::time::{Duration, Instant};

    const MIN: Duration = Duration::from_secs(60);

    /// Heads of one method after another, each done in a millisecond: one timer for
    /// the whole stream, set again once when it fires, however many heads there were.
    #[test]
    fn a_stream_of_heads_keeps_one_timer() {
        let (mut t, t0) = (HeadTimer::default(), Instant::now());
        let first = t.arm(2, Some(MIN), t0).expect("the first head starts a timer");
        let mut started = 1;
        for seq in 3..10_000u64 {
            started += usize::from(t.arm(seq, Some(MIN), t0 + Duration::from_millis(seq)).is_some());
        }
        assert_eq!(started, 1, "later deadlines wait for the pending timer");
        let last = t0 + Duration::from_millis(9_999) + MIN;
        assert_eq!(
            t.fired(first, Some(9_999), first),
            Fired::Again(last),
            "set again for the head now running"
        );
        assert_eq!(t.fired(last, Some(9_999), last), Fired::Expired, "that head has overrun");
    }

    #[test]
    fn a_head_that_ends_in_time_is_not_expired() {
        let (mut t, t0) = (HeadTimer::default(), Instant::now());
        let at = t.arm(2, Some(MIN), t0).unwrap();
        assert_eq!(t.fired(at, None, at), Fired::Nothing, "the queue emptied");
        // A head with no timeout after one with a timeout: nothing to fire for.
        let at = t.arm(3, Some(MIN), at).unwrap();
        assert_eq!(t.arm(4, None, at), None);
        assert_eq!(t.fired(at, Some(4), at), Fired::Nothing);
    }

    /// A method with a shorter timeout behind one with a longer: a timer of its own,
    /// and the overtaken one does nothing when it fires.
    #[test]
    fn an_earlier_deadline_overtakes_the_pending_timer() {
        let (mut t, t0) = (HeadTimer::default(), Instant::now());
        let long = t.arm(2, Some(MIN * 60), t0).unwrap();
        let short = t
            .arm(3, Some(Duration::from_secs(10)), t0 + Duration::from_secs(1))
            .expect("an earlier deadline starts a timer");
        assert!(short < long);
        assert_eq!(t.fired(short, Some(3), short), Fired::Expired);
        assert_eq!(t.fired(long, Some(3), long), Fired::Nothing, "overtaken");
    }

    #[test]
    fn the_same_head_is_armed_once() {
        let (mut t, t0) = (HeadTimer::default(), Instant::now());
        assert!(t.arm(2, Some(MIN), t0).is_some());
        assert!(t.counts(2));
        assert_eq!(t.arm(2, Some(MIN), t0 + MIN), None, "its deadline stays where it was");
        assert_eq!(t.fired(t0 + MIN, Some(2), t0 + MIN), Fired::Expired);
    }
}
