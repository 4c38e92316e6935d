//! The core's side of the session lifecycle: everything that moves a session from one
//! state to another goes through [`Core::drive`], which asks the pure machine in
//! `lifecycle` what the event means and carries out the effects it names, in order
//! (persisting the record, becoming a candidate for slots, arming timers, telling
//! clients, ending the session). Handlers never set a session's state themselves.

use super::inst::KillReason;
use super::lifecycle::{Effect, Event, Refused};
use super::{Core, now_ms};
use crate::ports::{ConnId, InstId, Sid, Timer};
use bytes::Bytes;
use soam_proto::msg::SessionState;
use soam_service::wire::Kind;
use soam_store::Write;
use soam_store::records::HistoryRecord;
use std::time::Instant;

impl Core {
    /// Applies `ev` to the session and carries out what it asks. A session that is gone
    /// ignores events (a late timer, a reply after its end).
    pub(super) fn drive(&mut self, sid: Sid, ev: Event) -> Result<(), Refused> {
        // Read only while someone watches (`watchers`): drive runs for every bind.
        let watching = self.watching();
        let Some(s) = self.sessions.get_mut(&sid) else { return Ok(()) };
        let before = watching.then(|| s.life.state());
        let effects = s.life.on(ev, &s.stype)?;
        let after = s.life.state();
        // An end is said with its reason where it is carried out (`finish_session`).
        if before.is_some_and(|b| b != after) && !after.is_ended() {
            self.emit_session(sid, after.as_str(), String::new());
        }
        for e in effects {
            self.carry_out(sid, e);
        }
        Ok(())
    }

    pub(super) fn carry_out(&mut self, sid: Sid, e: Effect) {
        if let Effect::Finish { state, reason, notify } = e {
            return self.finish_session(sid, state, &reason, notify);
        }
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        match e {
            Effect::Persist => self.persist_session(sid),
            Effect::Want => self.want(sid),
            Effect::Schedule => self.needs_schedule = true,
            Effect::Holder { from, to } => {
                // What the previous holder never acknowledged is sent to the next.
                let unacked = std::mem::take(&mut s.unacked);
                s.undelivered.extend(unacked);
                if let Some(c) = from.and_then(|f| self.conns.get_mut(&f)) {
                    c.held.remove(&sid);
                }
                if let Some(c) = to.and_then(|t| self.conns.get_mut(&t)) {
                    c.held.insert(sid);
                    self.dirty.insert(sid);
                }
            }
            Effect::TakenOver(conn) => {
                let (app, session) = (s.app.clone(), s.id);
                self.event(conn, soam_proto::msg::Event::TakenOver { app, session });
            }
            Effect::ArmDisconnect { generation } => {
                let timeout = self
                    .apps
                    .get(&s.app)
                    .map_or(0, |a| a.profile.consumer.transient_disconnection_timeout_s);
                tracing::info!(
                    "session {}: no client; {} in {timeout} s unless reopened",
                    s.addr(),
                    s.stype.on_client_disconnect.as_str()
                );
                self.after(timeout * 1000, Timer::Disconnect { sid, generation });
            }
            Effect::ArmSuspendGrace { generation } => {
                let grace = s.stype.suspend_grace_period_ms;
                self.after(grace, Timer::SuspendGrace { sid, generation });
            }
            Effect::StopRunning => {
                let running: Vec<InstId> = self
                    .instances
                    .iter()
                    .filter(|(_, i)| i.expect.iter().any(|e| e.kind == Kind::Invoke && e.sid == sid))
                    .map(|(&id, _)| id)
                    .collect();
                for iid in running {
                    self.kill(iid, KillReason::Requeue);
                }
            }
            Effect::SendDrained => {
                if let Some(h) = s.life.holder() {
                    let (app, session) = (s.app.clone(), s.id);
                    self.event(h, soam_proto::msg::Event::Drained { app, session });
                }
            }
            Effect::Log(line) => tracing::info!("session {}: {line}", s.addr()),
            Effect::Finish { .. } => unreachable!("handled above"),
        }
    }

    /// Ends a session (closed or aborted) for `reason`. `tell_holder`: its holder hears
    /// of it as an event (not when the holder itself asked: its reply says so).
    pub(super) fn end_session(&mut self, sid: Sid, state: SessionState, reason: &str, tell_holder: bool) {
        let ev = Event::End {
            state,
            reason: reason.to_string(),
            tell_holder,
        };
        let _ = self.drive(sid, ev);
    }

    /// The session has ended: pending and running tasks are canceled (running ones get
    /// taskCleanupPeriod), instances are released, history is written.
    fn finish_session(&mut self, sid: Sid, state: SessionState, reason: &str, notify: Option<ConnId>) {
        if self.watching() {
            self.emit_session(sid, state.as_str(), reason.to_string());
        }
        let Some(mut s) = self.sessions.remove(&sid) else { return };
        if let Some(n) = self.open_per_app.get_mut(&s.app) {
            *n = n.saturating_sub(1);
        }
        self.tasks_held = self.tasks_held.saturating_sub(s.tasks.len() as u64);
        tracing::info!("session {} {state}: {reason}", s.addr());
        if let Some(request) = s.created_by {
            self.created.remove(&request);
        }
        self.by_id.remove(&(s.app.clone(), s.id));
        if let Some(n) = &s.name {
            self.by_name.remove(&(s.app.clone(), n.clone()));
        }
        let now = now_ms();
        s.cancel_open(now);
        self.count_ended(&s, state);
        let period = s.stype.task_cleanup_period_ms;
        let (mut cleanup, mut leave) = (Vec::new(), Vec::new());
        for (&iid, inst) in self.instances.iter_mut() {
            if inst.bound() == Some(sid) && inst.unbind() == Some((sid, true)) {
                leave.push(iid);
            }
            if inst.expect.iter().any(|e| e.runs_task_of(sid)) {
                cleanup.push(iid);
            }
        }
        for iid in leave {
            self.send_method(iid, Kind::SessionLeave, sid, s.id, Bytes::new());
        }
        for iid in cleanup {
            self.after(period, Timer::Cleanup { inst: iid, sid });
        }
        if let Some(c) = s.life.holder().and_then(|h| self.conns.get_mut(&h)) {
            c.held.remove(&sid);
        }
        if let Some(h) = notify {
            self.event(
                h,
                soam_proto::msg::Event::Ended {
                    app: s.app.clone(),
                    session: s.id,
                    state,
                    reason: reason.to_string(),
                },
            );
        }
        let mut writes = vec![Write::DeleteSession {
            app: s.app.clone(),
            id: s.id,
        }];
        if s.stype.recoverable {
            writes.push(Write::DeleteTasks {
                app: s.app.clone(),
                session: s.id,
            });
        }
        if s.stype.persist_session_history {
            let h = self.history_record(&s, state, reason, now);
            // Memory keeps the summary; task rows are read from the store when asked for.
            self.history.push_front(HistoryRecord {
                session: h.session.clone(),
                tasks: Vec::new(),
            });
            self.history.truncate(soam_store::HISTORY_LOADED);
            writes.push(Write::PutHistory(h));
        }
        self.store.submit(writes, None);
        self.needs_schedule = true;
        if s.tasks.len() >= 10_000 {
            drop(s);
            self.launcher.trim_memory();
        }
    }

    /// A connection is gone: the sessions it held are without a client.
    pub(super) fn disconnected(&mut self, conn: ConnId) {
        self.unwatch(conn);
        let Some(c) = self.conns.remove(&conn) else { return };
        for sid in c.held {
            let _ = self.drive(sid, Event::HolderLost(conn));
        }
    }

    /// idleTimeout, once a second: a session that has been detached with nothing to do
    /// for that long is closed.
    pub(super) fn tick_sessions(&mut self, now: Instant) {
        let mut effects = Vec::new();
        for (&sid, s) in self.sessions.iter_mut() {
            let quiet =
                s.counts.pending == 0 && s.counts.running == 0 && s.persisting == 0 && s.undelivered.is_empty() && s.unacked.is_empty();
            if let Ok(fx) = s.life.on(Event::Tick { quiet, now }, &s.stype) {
                effects.extend(fx.into_iter().map(|e| (sid, e)));
            }
        }
        for (sid, e) in effects {
            self.carry_out(sid, e);
        }
    }
}
