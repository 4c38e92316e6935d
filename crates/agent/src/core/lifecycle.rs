//! A session's lifecycle as one state machine: where it stands (open, reconnecting,
//! suspended, ended), who holds it, and what each event asks of the core.
//!
//! Pure: no I/O, no clock but the instants events carry, no access to the core. The core
//! turns what happens (a request, a lost connection, a timer, a service's failure, a
//! tick) into an [`Event`], hands it to [`Life::on`] with the session's type, and
//! carries out the [`Effect`]s it gets back, in order (`Core::drive`). A refused event
//! changes nothing. Timers carry the generation they were armed under: one armed
//! before a later transition is stale and ignored here, so the core never cancels one.
//!
//! The table of transitions is in docs/architecture.md ("The session lifecycle").
//! What a session's *tasks* do (pending, running, ended, delivered) is not here: those
//! are counts the core keeps per session, and the machine hears of them only as
//! `Work` (tasks added or put back), `Flushed` (everything delivered or not) and
//! `Tick { quiet }` (nothing left to do).

use super::ConnId;
use soam_profile::{DisconnectAction, FailureAction, SessionType};
use soam_proto::msg::SessionState;
use std::time::{Duration, Instant};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Runs its tasks, held by a client or detached.
    Open,
    /// Recovered after a restart with a client attached: runs its tasks while that
    /// client has transientDisconnectionTimeout to come back.
    Reconnecting,
    /// Runs nothing new; who suspended it decides what resumes it.
    Suspended(Suspender),
    /// Closed or aborted: no event changes it any more.
    Ended(SessionState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Suspender {
    /// An admin (or a store that said so after a restart): only resume undoes it.
    Admin,
    /// Its disconnect action: its client reopening it undoes it too.
    Disconnect,
}

#[derive(Debug)]
pub(super) enum Event {
    /// A client takes the session (create with attach, reopen).
    Attach(ConnId),
    /// `by` asked that nobody hold it (detach, from its holder or a shell).
    Detach { by: ConnId },
    /// This connection went away; if it held the session, the session is without one.
    HolderLost(ConnId),
    /// The transientDisconnectionTimeout armed under `generation` is over.
    DisconnectTimeout { generation: u64 },
    /// An admin suspends it.
    Suspend,
    /// An admin resumes it.
    Resume,
    /// The suspendGracePeriod armed under `generation` is over.
    SuspendGraceOver { generation: u64 },
    /// Tasks were added or put back: it may have work, and is no longer drained.
    Work,
    /// The holder was sent what was waiting; `drained`: nothing is pending, running,
    /// being committed or left to send.
    Flushed { drained: bool },
    /// The agent's clock ticked; `quiet`: nothing pending, running, being committed,
    /// undelivered or unacknowledged.
    Tick { quiet: bool, now: Instant },
    /// SessionEnter succeeded on an instance.
    Bound,
    /// SessionEnter, SessionUpdate or a bound instance's CreateService failed, and the
    /// method's failure action is `action` (the profile's for how it failed: a fatal
    /// failure's is `fail` unless the profile says otherwise).
    BindFailed { msg: String, action: FailureAction },
    /// Task `task` ended in error.
    TaskFailed { task: u64 },
    /// Closed or aborted by a client, an admin, or the agent. `tell_holder`: its holder
    /// hears of it as an event (not when the holder asked, since the reply says so).
    End {
        state: SessionState,
        reason: String,
        tell_holder: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Write its record: its state or holder changed, and a restart must know.
    Persist,
    /// It may have work it can run: make it a candidate for slots.
    Want,
    /// Slots may change hands: it stopped running, or may run again.
    Schedule,
    /// Its holder changed. What `from` was sent and never acknowledged goes to whoever
    /// holds it next.
    Holder { from: Option<ConnId>, to: Option<ConnId> },
    /// Tell `conn` it no longer holds the session.
    TakenOver(ConnId),
    /// Start the transientDisconnectionTimeout timer under `generation`.
    ArmDisconnect { generation: u64 },
    /// Start the suspendGracePeriod timer under `generation`.
    ArmSuspendGrace { generation: u64 },
    /// Stop what still runs for it; those tasks go back to pending, no retry counted.
    StopRunning,
    /// Tell the holder everything is delivered.
    SendDrained,
    /// Worth a line in the agent's log (the core adds the session's address).
    Log(String),
    /// It has ended: cancel what is pending or running (running tasks get
    /// taskCleanupPeriod), release its instances, tell `notify` (if any) why, delete
    /// it from the store and record its history per persistSessionHistory.
    Finish {
        state: SessionState,
        reason: String,
        notify: Option<ConnId>,
    },
}

/// Why an event was refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    AlreadySuspended,
    NotSuspended(SessionState),
}

/// A session's place in its lifecycle and what goes with it.
#[derive(Debug)]
pub(super) struct Life {
    phase: Phase,
    holder: Option<ConnId>,
    /// Bumped whenever the holder changes: a disconnect timer armed before is stale.
    disconnect_gen: u64,
    /// Bumped on every suspension: the grace timer of an earlier one is stale.
    suspend_gen: u64,
    /// `Drained` was sent to the current holder and nothing was added since.
    drained_sent: bool,
    /// Since when it has been open, detached and quiet, for idleTimeout.
    quiet_since: Option<Instant>,
    /// SessionEnter/SessionUpdate failures, against sessionRetryLimit.
    bind_failures: u32,
    /// The latest of them while it is retried: shown as the open session's reason, so
    /// the person watching sees why nothing runs before it is aborted.
    last_failure: Option<String>,
}

impl Default for Life {
    fn default() -> Life {
        Life::new()
    }
}

impl Life {
    /// A new session: open, held by nobody yet.
    pub fn new() -> Life {
        Life {
            phase: Phase::Open,
            holder: None,
            disconnect_gen: 0,
            suspend_gen: 0,
            drained_sent: false,
            quiet_since: None,
            bind_failures: 0,
            last_failure: None,
        }
    }

    /// A session read back from the store after a restart: `suspended` as it was;
    /// otherwise `attached` (a client held it) makes it reconnecting, with its client's
    /// disconnect timer started, and open if not. It may have work either way.
    pub fn recovered(suspended: bool, attached: bool) -> (Life, Vec<Effect>) {
        let mut life = Life::new();
        let mut effects = Vec::new();
        life.phase = if suspended {
            Phase::Suspended(Suspender::Admin)
        } else if attached {
            effects.push(Effect::ArmDisconnect { generation: 0 });
            Phase::Reconnecting
        } else {
            Phase::Open
        };
        effects.extend([Effect::Want, Effect::Schedule]);
        (life, effects)
    }

    /// The state clients see.
    pub fn state(&self) -> SessionState {
        match self.phase {
            Phase::Open => SessionState::Open,
            Phase::Reconnecting => SessionState::Reconnecting,
            Phase::Suspended(_) => SessionState::Suspended,
            Phase::Ended(s) => s,
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn holder(&self) -> Option<ConnId> {
        self.holder
    }

    /// May start tasks.
    pub fn runnable(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Reconnecting)
    }

    /// What the store keeps as "a client held it": reconnecting still waits for one.
    pub fn attached(&self) -> bool {
        self.holder.is_some() || self.phase == Phase::Reconnecting
    }

    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Applies `ev` under the rules of `rules` (the session's type) and says what the
    /// core must do about it, in order.
    pub fn on(&mut self, ev: Event, rules: &SessionType) -> Result<Vec<Effect>, Refused> {
        use Effect as E;
        if let Phase::Ended(_) = self.phase {
            return Ok(Vec::new());
        }
        let mut fx = Vec::new();
        match ev {
            Event::Attach(conn) => {
                let prev = self.set_holder(Some(conn), &mut fx);
                if let Some(p) = prev.filter(|&p| p != conn) {
                    fx.push(E::TakenOver(p));
                }
                self.drained_sent = false;
                self.quiet_since = None;
                // Its client came back: what its absence set in motion is undone.
                if matches!(self.phase, Phase::Reconnecting | Phase::Suspended(Suspender::Disconnect)) {
                    self.phase = Phase::Open;
                    fx.extend([E::Want, E::Schedule]);
                }
                fx.push(E::Persist);
            }
            Event::Detach { by } => {
                let prev = self.set_holder(None, &mut fx);
                if let Some(p) = prev.filter(|&p| p != by) {
                    fx.push(E::TakenOver(p));
                }
                fx.push(E::Persist);
            }
            Event::HolderLost(conn) => {
                if self.holder == Some(conn) {
                    self.set_holder(None, &mut fx);
                    fx.extend([
                        E::ArmDisconnect {
                            generation: self.disconnect_gen,
                        },
                        E::Persist,
                    ]);
                }
            }
            Event::DisconnectTimeout { generation } => {
                if self.holder.is_some() || generation != self.disconnect_gen {
                    return Ok(fx);
                }
                let action = rules.on_client_disconnect;
                match action {
                    DisconnectAction::Abort => {
                        fx.push(E::Log(format!("its client did not come back; {}", action.as_str())));
                        self.end(
                            SessionState::Aborted,
                            "its client disconnected and did not come back in time",
                            false,
                            &mut fx,
                        );
                    }
                    DisconnectAction::Suspend => {
                        if !matches!(self.phase, Phase::Suspended(_)) {
                            fx.push(E::Log(format!("its client did not come back; {}", action.as_str())));
                            self.suspend(Suspender::Disconnect, &mut fx);
                        }
                    }
                    DisconnectAction::Continue => {
                        if self.phase == Phase::Reconnecting {
                            fx.push(E::Log(format!("its client did not come back; {}", action.as_str())));
                            self.phase = Phase::Open;
                            fx.extend([E::Persist, E::Want]);
                        }
                    }
                }
            }
            Event::Suspend => {
                if let Phase::Suspended(_) = self.phase {
                    return Err(Refused::AlreadySuspended);
                }
                self.suspend(Suspender::Admin, &mut fx);
            }
            Event::Resume => {
                let Phase::Suspended(_) = self.phase else {
                    return Err(Refused::NotSuspended(self.state()));
                };
                self.phase = Phase::Open;
                fx.extend([E::Persist, E::Want, E::Schedule]);
            }
            Event::SuspendGraceOver { generation } => {
                if matches!(self.phase, Phase::Suspended(_)) && generation == self.suspend_gen {
                    fx.push(E::StopRunning);
                }
            }
            Event::Work => {
                self.drained_sent = false;
                self.quiet_since = None;
                fx.push(E::Want);
            }
            Event::Flushed { drained } => {
                if drained && !self.drained_sent && self.holder.is_some() {
                    self.drained_sent = true;
                    fx.push(E::SendDrained);
                }
            }
            Event::Tick { quiet, now } => {
                if !(quiet && self.holder.is_none() && self.phase == Phase::Open) {
                    self.quiet_since = None;
                    return Ok(fx);
                }
                let since = *self.quiet_since.get_or_insert(now);
                let timeout = rules.idle_timeout_s;
                if timeout > 0 && now.duration_since(since) >= Duration::from_secs(timeout) {
                    self.end(SessionState::Closed, "idle timeout", true, &mut fx);
                }
            }
            Event::Bound => self.last_failure = None,
            Event::BindFailed { msg, action } => match action {
                FailureAction::Succeed => {}
                FailureAction::Fail => self.end(SessionState::Aborted, &msg, true, &mut fx),
                FailureAction::Retry => {
                    self.bind_failures += 1;
                    let (n, limit) = (self.bind_failures, rules.session_retry_limit);
                    if n > limit {
                        let why = match limit {
                            0 => format!("{msg} (sessionRetryLimit is 0: no retries)"),
                            1 => format!("{msg} (failed twice: 1 retry, sessionRetryLimit 1)"),
                            _ => format!("{msg} (failed {n} times: {limit} retries, sessionRetryLimit {limit})"),
                        };
                        self.end(SessionState::Aborted, &why, true, &mut fx);
                    } else {
                        let why = format!("retry {n} of {limit} after: {msg}");
                        fx.push(E::Log(why.clone()));
                        self.last_failure = Some(why);
                    }
                }
            },
            Event::TaskFailed { task } => {
                if rules.abort_session_if_task_fail {
                    let why = format!("task {task} failed and abortSessionIfTaskFail is true");
                    self.end(SessionState::Aborted, &why, true, &mut fx);
                }
            }
            Event::End {
                state,
                reason,
                tell_holder,
            } => self.end(state, &reason, tell_holder, &mut fx),
        }
        Ok(fx)
    }

    /// Changes who holds it; returns who did.
    fn set_holder(&mut self, to: Option<ConnId>, fx: &mut Vec<Effect>) -> Option<ConnId> {
        let from = std::mem::replace(&mut self.holder, to);
        self.disconnect_gen += 1;
        fx.push(Effect::Holder { from, to });
        from
    }

    fn suspend(&mut self, by: Suspender, fx: &mut Vec<Effect>) {
        self.phase = Phase::Suspended(by);
        self.suspend_gen += 1;
        fx.extend([
            Effect::ArmSuspendGrace {
                generation: self.suspend_gen,
            },
            Effect::Persist,
            Effect::Schedule,
        ]);
    }

    fn end(&mut self, state: SessionState, reason: &str, tell_holder: bool, fx: &mut Vec<Effect>) {
        self.phase = Phase::Ended(state);
        fx.push(Effect::Finish {
            state,
            reason: reason.to_string(),
            notify: self.holder.filter(|_| tell_holder),
        });
    }
}

#[cfg(test)]
mod tests;
