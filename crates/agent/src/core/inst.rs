//! A service instance as the core holds it: what it owes (its `expect` queue), which
//! session it serves and how far ([`Serving`]), and whether it is ending (retiring or
//! killed). The serving state and the ending flags change only through the transitions
//! here; other modules ask.
//!
//! ```text
//!          bind               entered (SessionEnter's reply)
//!  Free ─────────▶ Entering ───────────────────────────────▶ Entered
//!   ▲                 │  release: finish what is queued, then    │
//!   └──── unbind ─────┴──────────────────────────────────────────┘
//! ```

use super::head_timer::HeadTimer;
use crate::ports::{InstLink, Sid};
use soam_profile::Service;
use soam_service::wire::Kind;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Which session an instance serves. `release`: its session gave it back; it finishes
/// what it has queued, then unbinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Serving {
    Free,
    /// SessionEnter sent, not answered yet.
    Entering {
        sid: Sid,
        release: bool,
    },
    /// SessionEnter succeeded (or counts as such: `onFailure: succeed`).
    Entered {
        sid: Sid,
        release: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Expect {
    pub(super) kind: Kind,
    pub(super) sid: Sid,
    pub(super) task: u64,
    /// An Invoke's attempt; what a SessionEnter was sent with in that field
    /// (`wire::ENTER_EARLY` or 0), which its reply handling reads back.
    pub(super) attempt: u32,
    pub(super) seq: u64,
    /// When it was sent, to measure service time.
    pub(super) sent: Instant,
    /// Sent to an idle instance: its reply took one round trip plus its own run, no
    /// wait behind others.
    pub(super) alone: bool,
    /// An Invoke sent early behind a SessionEnter that then failed: the service answers
    /// it unrun and its task was requeued already, so its reply only clears the queue.
    pub(super) void: bool,
}

impl Expect {
    /// An attempt of a task of `sid` that is (or may be) running here.
    pub(super) fn runs_task_of(&self, sid: Sid) -> bool {
        self.kind == Kind::Invoke && !self.void && self.sid == sid
    }
}

#[derive(Debug, Clone)]
pub(super) enum KillReason {
    /// The service broke the protocol: the method at the head failed with this
    /// message, as if its process had exited (`<Exit>`).
    Failed(String),
    /// The method at the head overran its timeout (`<Timeout>`), saying so.
    TimedOut(String),
    /// Suspend or reclaim: what it was running goes back to pending, no retry counted.
    Requeue,
    /// taskCleanupPeriod ran out on work whose session or task already ended.
    Cleanup,
    /// Retired (profile changed, idle, shutdown).
    Retire,
}

pub(super) struct Instance {
    pub(super) app: String,
    pub(super) service: Arc<Service>,
    /// The uid its process runs as; it serves only sessions whose processes run so.
    pub(super) run_uid: u32,
    /// The cluster worker it runs on; `None`: a local process of the agent's.
    pub(super) worker: Option<u64>,
    pub(super) tx: crate::ports::InstLink,
    pub(super) pid: Option<u32>,
    /// Which session it serves, and how far (changed only here, see [`Serving`]).
    serving: Serving,
    /// Its service announced early invokes (`wire::features::EARLY_INVOKES`) in its
    /// CreateService reply: see `Core::ready_for`.
    pub(super) early_invokes: bool,
    /// What it was asked and has not answered, in order: the head is running.
    pub(super) expect: VecDeque<Expect>,
    pub(super) invokes: usize,
    /// SessionUpdates sent and not yet answered: no task is sent meanwhile, so none
    /// runs on common data the service may fail to take.
    pub(super) updating: u32,
    /// Stop it as soon as it is idle.
    retire: bool,
    /// Stopped by the agent, and why: what it was running is decided by this when
    /// its exit comes.
    kill: Option<KillReason>,
    /// The running method's timeout: its deadline and the instance's one timer.
    pub(super) head_timer: HeadTimer,
    pub(super) idle_since: Instant,
    /// When its last reply came: a queued task starts no earlier than that.
    pub(super) last_reply: Instant,
    /// About the time from sending a task to an idle instance to its reply (ns): the
    /// round trip to the process and one run. Work queued on an instance covers it too, else a remote
    /// instance waits for its next tasks a round trip after each batch (see `dispatch`).
    pub(super) round_trip_ns: u64,
    /// Its own measured task time (ns, a moving average over every session it served):
    /// a session it has just entered that has no measure yet starts from it.
    pub(super) task_ns: u64,
    /// The service package version (its SHA-256) it started from, here or on a node: an
    /// idle instance of an older version than the current one takes no new session.
    pub(super) deployed: Option<String>,
}

impl Instance {
    pub(super) fn new(app: &str, service: Arc<Service>, run_uid: u32, worker: Option<u64>, tx: InstLink, pid: Option<u32>) -> Instance {
        Instance {
            app: app.to_string(),
            service,
            run_uid,
            worker,
            tx,
            pid,
            serving: Serving::Free,
            early_invokes: false,
            expect: VecDeque::new(),
            invokes: 0,
            updating: 0,
            retire: false,
            kill: None,
            head_timer: HeadTimer::default(),
            idle_since: Instant::now(),
            last_reply: Instant::now(),
            round_trip_ns: 0,
            task_ns: 0,
            deployed: None,
        }
    }

    /// The session it serves (SessionEnter sent or done).
    pub(super) fn bound(&self) -> Option<Sid> {
        match self.serving {
            Serving::Free => None,
            Serving::Entering { sid, .. } | Serving::Entered { sid, .. } => Some(sid),
        }
    }

    /// The session whose SessionEnter succeeded.
    pub(super) fn entered(&self) -> Option<Sid> {
        match self.serving {
            Serving::Entered { sid, .. } => Some(sid),
            _ => None,
        }
    }

    /// Given back by its session: it takes no more of its tasks.
    pub(super) fn releasing(&self) -> bool {
        matches!(
            self.serving,
            Serving::Entering { release: true, .. } | Serving::Entered { release: true, .. }
        )
    }

    /// To be stopped once idle.
    pub(super) fn retiring(&self) -> bool {
        self.retire
    }

    /// Stopped by the agent, and why.
    pub(super) fn killed(&self) -> Option<&KillReason> {
        self.kill.as_ref()
    }

    /// Free → Entering: SessionEnter is being sent for `sid`.
    pub(super) fn bind(&mut self, sid: Sid) {
        debug_assert_eq!(self.serving, Serving::Free, "an instance binds to one session at a time");
        self.serving = Serving::Entering { sid, release: false };
    }

    /// Entering → Entered, if it is still entering `sid`; false otherwise.
    pub(super) fn enter(&mut self, sid: Sid) -> bool {
        match self.serving {
            Serving::Entering { sid: s, release } if s == sid => {
                self.serving = Serving::Entered { sid, release };
                true
            }
            Serving::Entered { sid: s, .. } => s == sid,
            _ => false,
        }
    }

    /// Its session gives it back: it finishes what it has queued, then unbinds. Nothing
    /// for a free instance.
    pub(super) fn release(&mut self) {
        if let Serving::Entering { release, .. } | Serving::Entered { release, .. } = &mut self.serving {
            *release = true;
        }
    }

    /// Back to Free: the session it served, and whether it had entered it (then it is
    /// owed a SessionLeave).
    pub(super) fn unbind(&mut self) -> Option<(Sid, bool)> {
        let was = std::mem::replace(&mut self.serving, Serving::Free);
        self.idle_since = Instant::now();
        match was {
            Serving::Free => None,
            Serving::Entering { sid, .. } => Some((sid, false)),
            Serving::Entered { sid, .. } => Some((sid, true)),
        }
    }

    /// Stop it once it is idle (profile changed, idle, drain).
    pub(super) fn retire(&mut self) {
        self.retire = true;
    }

    /// It is being stopped for `reason`. A later reason replaces an earlier one, but a
    /// deliberate reason never replaces a method's failure: that is what its exit must
    /// report.
    pub(super) fn kill(&mut self, reason: KillReason) {
        if !matches!(self.kill, Some(KillReason::Failed(_) | KillReason::TimedOut(_))) {
            self.kill = Some(reason);
        }
    }
}
