//! What services answer (what happens when they die or overrun: `exits`).
//!
//! An instance answers in request order, so each reply is matched with the head of its
//! `expect` queue. A reply for a task that no longer runs with that attempt (killed,
//! requeued, its session ended) is dropped.

use super::inst::{Expect, KillReason};
use super::method_control;
use super::{Core, lifecycle};
use crate::ports::{InstEvent, InstId, Sid};
use bytes::Bytes;
use soam_profile::{FailureAction, InstanceAction, MethodEvent};
use soam_proto::msg::TaskState;
use soam_service::wire::{Kind, Status};
use std::time::Instant;

impl Core {
    pub(super) fn instance_event(&mut self, iid: InstId, ev: InstEvent) {
        match ev {
            InstEvent::Reply {
                kind,
                status,
                task,
                attempt,
                code,
                payload,
            } => self.reply(iid, kind, (status, code), task, attempt, payload),
            InstEvent::Output(bytes) => {
                let parsed = crate::ports::each_message(&bytes, |m, payload| {
                    self.reply(iid, m.kind, (m.status, m.code), m.task, m.attempt, payload)
                });
                if let Err(e) = parsed {
                    self.kill(iid, KillReason::Failed(format!("it sent a malformed message ({e})")));
                }
            }
            InstEvent::Exited { why } => self.exited(iid, why, false),
        }
        self.needs_schedule = true;
    }

    /// `answer`: the reply's status and control code.
    fn reply(&mut self, iid: InstId, kind: Kind, answer: (Status, i32), task: u64, attempt: u32, payload: Bytes) {
        let (status, code) = answer;
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        let Some(e) = inst.expect.pop_front() else {
            self.kill(
                iid,
                KillReason::Failed(format!("the service sent a {} reply nobody asked for", kind.name())),
            );
            return;
        };
        if e.kind != kind || (kind == Kind::Invoke && (e.task != task || e.attempt != attempt)) {
            inst.expect.push_front(e);
            let msg = format!(
                "the service answered {} (task {task}) where {} (task {}) was due",
                kind.name(),
                e.kind.name(),
                e.task
            );
            self.kill(iid, KillReason::Failed(msg));
            return;
        }
        // The service answers in order: a reply's own time starts at the later of its
        // request's sending and the reply before, whatever that answered (a SessionEnter
        // that early Invokes were queued behind, say).
        let now = Instant::now();
        let since = e.sent.max(inst.last_reply);
        inst.last_reply = now;
        if kind == Kind::Invoke {
            // A void Invoke did not run: it measures nothing.
            if !e.void {
                let took = now.duration_since(since).as_nanos() as u64;
                // Only a task that waited behind no other measures the trip itself.
                if e.alone {
                    let trip = now.duration_since(e.sent).as_nanos() as u64;
                    inst.round_trip_ns = if inst.round_trip_ns == 0 {
                        trip
                    } else {
                        (inst.round_trip_ns * 3 + trip) / 4
                    };
                }
                let avg = |old: u64| if old == 0 { took.max(1) } else { (old * 7 + took) / 8 }.max(1);
                inst.task_ns = avg(inst.task_ns);
                if let Some(s) = self.sessions.get_mut(&e.sid) {
                    s.task_ns = avg(s.task_ns);
                }
            }
            let inst = self.instances.get_mut(&iid).unwrap();
            inst.invokes -= 1;
            if inst.invokes == 0 {
                inst.idle_since = now;
            }
        }
        // What the profile says this answer does (`<Return>`, `<Exception>`): to the
        // work in hand, and to the instance.
        let event = match status {
            Status::Success => MethodEvent::Return,
            Status::Failure => MethodEvent::Failure,
            Status::Fatal => MethodEvent::Fatal,
        };
        let action = method_control(&self.instances[&iid].service.control, kind).action(event, code);
        let failed = action.workload != FailureAction::Succeed;
        // Why the method failed: the service's message, or the code that made a success fail.
        let why = || match status {
            Status::Success => format!("{} returned control code {code}", kind.name()),
            _ => format!("{} failed: {}", kind.name(), String::from_utf8_lossy(&payload)),
        };
        match kind {
            Kind::CreateService => {
                if status == Status::Success {
                    self.instances.get_mut(&iid).unwrap().early_invokes = attempt & soam_service::wire::features::EARLY_INVOKES != 0;
                }
                if failed {
                    if let Some(sid) = self.instances[&iid].bound() {
                        self.bind_failure(sid, &why(), action.workload);
                    }
                    // An instance whose CreateService failed cannot serve: it goes,
                    // whatever actionOnSI says, and blocks its host if that says so.
                    self.instance_action(iid, action.instance, kind, event, code);
                    self.kill(iid, KillReason::Cleanup);
                    return;
                }
            }
            Kind::SessionEnter => {
                if status != Status::Success && e.attempt & soam_service::wire::ENTER_EARLY != 0 {
                    self.void_early_invokes(iid, e.sid);
                }
                let bound = self.instances[&iid].bound();
                if bound != Some(e.sid) && status == Status::Success {
                    // Its session ended (or let it go) while SessionEnter was under way:
                    // tell the service it left, so every Enter has its Leave.
                    let session = self.sessions.get(&e.sid).map(|s| s.id).unwrap_or(0);
                    self.send_method(iid, Kind::SessionLeave, e.sid, session, Bytes::new());
                } else if bound == Some(e.sid) {
                    if !failed {
                        self.instances.get_mut(&iid).unwrap().enter(e.sid);
                        if status == Status::Success {
                            let _ = self.drive(e.sid, lifecycle::Event::Bound);
                        }
                    } else {
                        self.unbind(iid);
                        self.bind_failure(e.sid, &why(), action.workload);
                    }
                }
            }
            Kind::SessionUpdate => {
                let inst = self.instances.get_mut(&iid).unwrap();
                inst.updating = inst.updating.saturating_sub(1);
                if failed {
                    // The service may hold the old common data, or none: it runs no more
                    // of the session's tasks. Retried as a new bind (SessionEnter with the
                    // current data), counted with SessionEnter failures.
                    // Not counted where the instance no longer serves the session (its
                    // SessionEnter failed first, which counted).
                    if inst.bound() == Some(e.sid) {
                        self.unbind(iid);
                        self.bind_failure(e.sid, &why(), action.workload);
                    }
                }
                self.needs_schedule = true;
            }
            Kind::Invoke if e.void => {}
            Kind::Invoke => self.invoke_done(e, (status, code), payload, action.workload),
            Kind::SessionLeave | Kind::DestroyService => {}
        }
        if action.instance != InstanceAction::KeepAlive {
            self.instance_action(iid, action.instance, kind, event, code);
        }
        self.arm_head(iid);
        if let Some(inst) = self.instances.get(&iid)
            && inst.releasing()
            && inst.invokes == 0
        {
            self.unbind(iid);
        }
    }

    /// The session's Invokes queued behind its failed early SessionEnter will come back
    /// unrun: their tasks go back to pending now, uncounted, and their replies are
    /// ignored (the tasks may by then run elsewhere with the same attempt number).
    fn void_early_invokes(&mut self, iid: InstId, sid: Sid) {
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        let mut requeue = Vec::new();
        for e in inst.expect.iter_mut().filter(|e| e.runs_task_of(sid)) {
            e.void = true;
            requeue.push(*e);
        }
        // Back to the front in their order: the last pushed ends up first.
        for e in requeue.iter().rev() {
            if let Some(idx) = self.live_task(e) {
                self.requeue(sid, idx);
            }
        }
    }

    pub(super) fn live_task(&self, e: &Expect) -> Option<usize> {
        let s = self.sessions.get(&e.sid)?;
        let idx = (e.task - 1) as usize;
        let t = s.tasks.get(idx)?;
        (t.state() == TaskState::Running && t.attempts() == e.attempt).then_some(idx)
    }

    /// A task's answer, and what the profile says it does (`<Return>`, `<Exception>`).
    fn invoke_done(&mut self, e: Expect, answer: (Status, i32), payload: Bytes, action: FailureAction) {
        let Some(idx) = self.live_task(&e) else { return };
        match (answer, action) {
            ((Status::Success, _), FailureAction::Succeed) => self.end_task(e.sid, idx, TaskState::Done, payload),
            // A success its control code makes a failure: the code is the message.
            ((Status::Success, code), action) => {
                let why = Bytes::from(format!("the service returned control code {code}"));
                self.task_failed(e.sid, idx, why, action)
            }
            (_, action) => self.task_failed(e.sid, idx, payload, action),
        }
    }

    /// `actionOnSI` of what an instance answered: stop it once it has answered what it
    /// was sent (`restartService`), and never start its application on its host again
    /// until the application is enabled again (`blockHost`).
    fn instance_action(&mut self, iid: InstId, what: InstanceAction, kind: Kind, event: MethodEvent, code: i32) {
        let Some(inst) = self.instances.get(&iid) else { return };
        if what == InstanceAction::BlockHost {
            let (app, host) = (inst.app.clone(), self.host_of(inst.worker));
            let method = kind.name();
            let why = format!(
                "{method} of service '{}' answered {} with control code {code}",
                inst.service.name,
                event.as_str()
            );
            self.block_host(&app, host, why);
        }
        if what != InstanceAction::KeepAlive {
            self.restart_instance(iid);
        }
    }

    /// An attempt failed: retry while the limit allows, else the task is in error.
    pub(super) fn task_failed(&mut self, sid: Sid, idx: usize, message: Bytes, action: FailureAction) {
        let s = self.sessions.get_mut(&sid).unwrap();
        match action {
            FailureAction::Succeed => self.end_task(sid, idx, TaskState::Done, Bytes::new()),
            FailureAction::Fail => self.end_task(sid, idx, TaskState::Error, message),
            FailureAction::Retry => {
                if s.count_failure(idx) > s.stype.task_retry_limit {
                    self.end_task(sid, idx, TaskState::Error, message);
                } else {
                    let attempts = s.tasks[idx].attempts();
                    tracing::debug!("task {}:{} attempt {attempts} failed; retrying", s.addr(), idx + 1);
                    s.retry(idx);
                    self.persist_tasks(sid, [idx as u64 + 1]);
                    if self.watching() {
                        let detail = format!("attempt {attempts} failed: {}", super::watchers::brief(&message));
                        self.emit_task(sid, idx, "pending", detail);
                    }
                }
            }
        }
    }

    /// Back to pending without counting a retry (suspend, reclaim, lost instance).
    pub(super) fn requeue(&mut self, sid: Sid, idx: usize) {
        self.sessions.get_mut(&sid).unwrap().requeue(idx);
    }

    /// SessionEnter/SessionUpdate (or CreateService for a bound instance) failed, and
    /// the profile says `action` for how it failed.
    pub(super) fn bind_failure(&mut self, sid: Sid, msg: &str, action: FailureAction) {
        let ev = lifecycle::Event::BindFailed {
            msg: msg.to_string(),
            action,
        };
        let _ = self.drive(sid, ev);
    }
}
