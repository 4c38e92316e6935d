//! Feeding instances: the methods queued on an instance (its `expect` queue, whose
//! head's timeout is armed), the tasks sent to a bound, entered instance (as many as
//! cover about `PIPELINE_TARGET_NS` of its measured task time), and starting, binding
//! and stopping instance processes. What to bind to whom is decided in `sched`.

use super::inst::{Expect, Instance, KillReason};
use super::{Core, PIPELINE, PIPELINE_TARGET_NS, method_control, now_ms};
use crate::ports::{CoreMsg, InstEvent, InstId, InstLink, NeverStarted, OutMsg, Owner, Sid, Timer};
use bytes::Bytes;
use soam_profile::Service;
use soam_service::wire;
use soam_service::wire::Kind;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks may go to the instance behind a SessionEnter still under way: its service
/// refuses them unrun should that SessionEnter fail. Not where the profile decides
/// otherwise than the reply's status (a failed SessionEnter that counts as entered, or
/// a control code that fails a successful one): the service cannot know that.
fn early(inst: &Instance) -> bool {
    inst.early_invokes && inst.service.control.session_enter.success_is_the_reply()
}

/// The instance may be sent the session's tasks: it entered the session, or is entering
/// it early. An instance moving between sessions then runs the new session's first tasks
/// right behind SessionLeave/SessionEnter instead of idling until the agent has heard
/// the SessionEnter's reply: measured in `soambench --scale` (docs/benchmarks.md, "Early
/// invokes").
fn ready_for(inst: &Instance, sid: Sid) -> bool {
    inst.entered() == Some(sid) || (inst.bound() == Some(sid) && early(inst))
}

impl Core {
    pub(super) fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Sends one lifecycle method (anything but Invoke) and records the reply it owes.
    /// `session` is the session's id on the wire (0 for none).
    pub(super) fn send_method(&mut self, iid: InstId, kind: Kind, sid: Sid, session: u64, payload: Bytes) {
        self.send_flagged(iid, kind, sid, session, 0, payload);
    }

    /// [`send_method`](Self::send_method) with `flags` in the message's `attempt` field
    /// (`wire::ENTER_EARLY` on a SessionEnter), kept in its `Expect` for the reply.
    fn send_flagged(&mut self, iid: InstId, kind: Kind, sid: Sid, session: u64, flags: u32, payload: Bytes) {
        let seq = self.take_seq();
        let e = Expect {
            kind,
            sid,
            task: 0,
            attempt: flags,
            seq,
            sent: Instant::now(),
            alone: false,
            void: false,
        };
        self.push(
            iid,
            vec![e],
            vec![OutMsg {
                kind,
                session,
                task: 0,
                attempt: flags,
                payload,
            }],
        );
    }

    /// Queues messages on an instance, tracking what it owes.
    pub(super) fn push(&mut self, iid: InstId, mut expects: Vec<Expect>, msgs: Vec<OutMsg>) {
        let inst = self.instances.get_mut(&iid).unwrap();
        let was_idle = inst.expect.is_empty();
        if was_idle && let Some(first) = expects.first_mut() {
            first.alone = true;
        }
        inst.invokes += expects.iter().filter(|e| e.kind == Kind::Invoke).count();
        inst.expect.extend(expects);
        inst.tx.send_msgs(msgs);
        if was_idle {
            self.arm_head(iid);
        }
    }

    /// Starts the timeout of the method now at the head of the instance's queue.
    pub(super) fn arm_head(&mut self, iid: InstId) {
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        let Some(head) = inst.expect.front() else { return };
        if inst.head_timer.counts(head.seq) {
            return;
        }
        let secs = method_control(&inst.service.control, head.kind).timeout_s;
        let timeout = (secs > 0).then(|| Duration::from_secs(secs));
        if let Some(at) = inst.head_timer.arm(head.seq, timeout, Instant::now()) {
            self.at(at, Timer::MethodTimeout { inst: iid, at });
        }
    }

    /// Sends pending tasks to an entered instance, keeping a few queued on it.
    pub(super) fn dispatch(&mut self, iid: InstId) {
        let node = self.instances[&iid].worker.map_or(0, |w| self.worker_node(w));
        let inst = &self.instances[&iid];
        let Some(sid) = inst.bound() else { return };
        if !ready_for(inst, sid) || inst.releasing() || inst.killed().is_some() || inst.updating > 0 {
            return;
        }
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        if !s.runnable() || s.pending.is_empty() {
            return;
        }
        // Queue about PIPELINE_TARGET_NS of work (by the instance's own task time until
        // the session has one: the same service's last tasks, instead of one task and a
        // round trip to measure for every new session; one task if neither is known),
        // split evenly over the session's instances so none queues what another could
        // start now; plus what covers the round trip to the process. Without that, an
        // instance far away (a cluster worker) idles a round trip per batch, which
        // raises the measured task time, which shrinks the batch: down to one task.
        let depth = (PIPELINE_TARGET_NS + inst.round_trip_ns)
            .checked_div(if s.task_ns == 0 { inst.task_ns } else { s.task_ns })
            .map_or(1, |d| d.clamp(1, PIPELINE as u64) as usize);
        let per = s.pending.len().div_ceil(s.bound.max(1) as usize).clamp(1, depth);
        let room = depth.saturating_sub(inst.invokes);
        let n = per.min(room).min(s.pending.len());
        if n == 0 || (inst.invokes > 0 && per <= inst.invokes) {
            return;
        }
        let now = now_ms();
        let mut msgs = Vec::with_capacity(n);
        let mut expects = Vec::with_capacity(n);
        for _ in 0..n {
            let Some((idx, attempt)) = s.start_next(now, node) else { break };
            msgs.push(OutMsg {
                kind: Kind::Invoke,
                session: s.id,
                task: idx as u64 + 1,
                attempt,
                payload: s.tasks[idx].input().to_bytes(),
            });
            self.next_seq += 1;
            let seq = self.next_seq;
            expects.push(Expect {
                kind: Kind::Invoke,
                sid,
                task: idx as u64 + 1,
                attempt,
                seq,
                sent: Instant::now(),
                alone: false,
                void: false,
            });
        }
        if self.watching() {
            let started: Vec<(usize, u32)> = expects.iter().map(|e| (e.task as usize - 1, e.attempt)).collect();
            for (idx, attempt) in started {
                self.emit_task(sid, idx, "running", format!("attempt {attempt} on instance {iid}"));
            }
        }
        self.push(iid, expects, msgs);
    }

    pub(super) fn start_instance(&mut self, app: &str, service: Arc<Service>, run_uid: u32, owner: Owner) -> InstId {
        let iid = self.next_inst;
        self.next_inst += 1;
        // The instance keeps the service as the profile has it (updates compare it);
        // what it starts is that with its package's folder put in.
        let (tx, pid, why, deployed) = match self.with_package(&service) {
            Ok((ready, version)) => {
                let (tx, pid) = self.launcher.start_instance(iid, app, ready, owner);
                (tx, pid, None, version)
            }
            Err(why) => (Box::new(NeverStarted) as InstLink, None, Some(why), None),
        };
        tracing::debug!("instance {iid} of {app}/{} started as uid {run_uid} (pid {pid:?})", service.name);
        self.add_instance(iid, app, service, run_uid, tx, pid, None);
        if let Some(i) = self.instances.get_mut(&iid) {
            i.deployed = deployed;
        }
        if let Some(why) = why {
            // Ended as a message of the next turn, as a process that fails to start is:
            // whoever asked for this instance is about to use it.
            self.inbox.send(CoreMsg::Instance {
                inst: iid,
                ev: InstEvent::Exited { why },
            });
        }
        iid
    }

    /// Records a started instance and sends it CreateService.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_instance(
        &mut self,
        iid: InstId,
        app: &str,
        service: Arc<Service>,
        run_uid: u32,
        tx: InstLink,
        pid: Option<u32>,
        worker: Option<u64>,
    ) {
        if self.watching() {
            let host = self.host_of(worker);
            let shown = pid.map_or("-".to_string(), |p| p.to_string());
            let detail = format!("instance {iid} of service '{}', pid {shown} on {host}", service.name);
            self.emit(
                super::watchers::event("instance", app, None, None, "started", detail),
                super::watchers::Whose::User(run_uid),
            );
        }
        self.instances.insert(iid, Instance::new(app, service, run_uid, worker, tx, pid));
        self.send_method(iid, Kind::CreateService, 0, 0, Bytes::from(app.to_string()));
    }

    /// Whom a session owner's service processes run as: the owner in a shared agent,
    /// the agent's own user otherwise (a one-user agent is only reachable by that user
    /// and root, and runs everything as itself). `None` means no switch.
    pub(super) fn run_as(&mut self, owner_uid: u32) -> (u32, Owner) {
        if !self.cfg.shared || owner_uid == self.agent_uid {
            return (self.agent_uid, None);
        }
        // Normally filled off the reactor when the owner connected; a session recovered
        // from the store may be looked up here, once.
        let who = self
            .identities
            .entry(owner_uid)
            .or_insert_with(|| Arc::new(crate::identity::RunAs::of(owner_uid)))
            .clone();
        (owner_uid, Some(who))
    }

    pub(super) fn bind(&mut self, iid: InstId, sid: Sid) {
        let s = self.sessions.get_mut(&sid).unwrap();
        s.bound += 1;
        let (session, common) = (s.id, s.common_data.clone());
        let inst = self.instances.get_mut(&iid).unwrap();
        inst.bind(sid);
        let flags = if early(inst) { wire::ENTER_EARLY } else { 0 };
        self.send_flagged(iid, Kind::SessionEnter, sid, session, flags, common);
    }

    pub(super) fn destroy_instance(&mut self, iid: InstId) {
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        if inst.killed().is_some() {
            return;
        }
        inst.kill(KillReason::Retire);
        inst.retire();
        self.send_method(iid, Kind::DestroyService, 0, 0, Bytes::new());
    }
}
