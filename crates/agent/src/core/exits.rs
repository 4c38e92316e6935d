//! What happens when an instance is stopped, dies or overruns, and the timers that
//! watch instances and sessions (with the ticker's rounds: idle instances, sessions'
//! timeouts, handing freed memory back).
//!
//! When the process ends, the head of its `expect` queue is what it was running: that
//! method failed (unless the agent stopped it on purpose, or its node was lost);
//! everything queued behind it goes back to pending without counting a retry.

use super::head_timer::Fired;
use super::inst::{Instance, KillReason};
use super::{Core, lifecycle, method_control};
use crate::ports::{InstCmd, InstId, Timer};
use bytes::Bytes;
use rustc_hash::FxHashMap as HashMap;
use soam_profile::{InstanceAction, MethodEvent};
use soam_service::wire::Kind;
use std::time::{Duration, Instant};

impl Core {
    pub(super) fn kill(&mut self, iid: InstId, reason: KillReason) {
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        inst.kill(reason);
        let _ = inst.tx.send(InstCmd::Kill);
    }

    /// The instance is gone. `lost`: its node or worker went, through no fault of the
    /// service, so what it was running is requeued without counting a retry.
    pub(super) fn exited(&mut self, iid: InstId, why: String, lost: bool) {
        let Some(inst) = self.instances.remove(&iid) else { return };
        if self.watching() {
            let detail = format!("instance {iid} of service '{}': {why}", inst.service.name);
            let ev = super::watchers::event("instance", &inst.app, None, None, "ended", detail);
            self.emit(ev, super::watchers::Whose::User(inst.run_uid));
        }
        let reason = inst.killed().cloned();
        tracing::debug!(
            "instance {iid} (pid {:?}) of {}/{} gone: {why}",
            inst.pid,
            inst.app,
            inst.service.name
        );
        // What the method it was running met: its process ended (`<Exit>`; a broken
        // protocol counts so) or its timeout (`<Timeout>`).
        let head_failed = match &reason {
            _ if lost => None,
            None => Some((MethodEvent::Exit, why.clone())),
            Some(KillReason::Failed(m)) => Some((MethodEvent::Exit, m.clone())),
            Some(KillReason::TimedOut(m)) => Some((MethodEvent::Timeout, m.clone())),
            Some(_) => None,
        };
        if let Some(sid) = inst.bound()
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            s.bound = s.bound.saturating_sub(1);
        }
        let control = &inst.service.control;
        for (k, e) in inst.expect.iter().enumerate() {
            let failed = if k == 0 { head_failed.clone() } else { None };
            let Some((event, m)) = failed else {
                if e.kind == Kind::Invoke
                    && !e.void
                    && let Some(idx) = self.live_task(e)
                {
                    self.requeue(e.sid, idx);
                }
                continue;
            };
            let action = method_control(control, e.kind).action(event, 0);
            if action.instance == InstanceAction::BlockHost {
                let host = self.host_of(inst.worker);
                self.block_host(
                    &inst.app,
                    host,
                    format!("{} of service '{}': {m}", e.kind.name(), inst.service.name),
                );
            }
            match e.kind {
                Kind::Invoke if e.void => {}
                Kind::Invoke => {
                    let Some(idx) = self.live_task(e) else { continue };
                    self.task_failed(e.sid, idx, Bytes::from(m), action.workload);
                }
                Kind::SessionEnter | Kind::SessionUpdate | Kind::CreateService => {
                    let sid = if e.kind == Kind::CreateService {
                        inst.bound().unwrap_or(0)
                    } else {
                        e.sid
                    };
                    self.bind_failure(sid, &format!("{} failed: {m}", e.kind.name()), action.workload);
                }
                Kind::SessionLeave | Kind::DestroyService => {}
            }
        }
        self.needs_schedule = true;
    }

    pub(super) fn after(&self, ms: u64, t: Timer) {
        self.at(Instant::now() + Duration::from_millis(ms), t);
    }

    /// Posts `t` to the inbox at `when`.
    pub(super) fn at(&self, when: Instant, t: Timer) {
        self.launcher.set_timer(when, t);
    }

    pub(super) fn tick(&mut self) {
        crate::trace::dump();
        self.cluster_tick();
        let now = Instant::now();
        self.tick_sessions(now);
        self.retire_idle_instances(now);
        self.preload_apps();
        if self.trim.tick() {
            self.launcher.trim_memory();
        }
    }

    /// Asks every instance to stop; remote ones go with their workers.
    pub(super) fn stop_instances(&mut self) {
        let ids: Vec<InstId> = self.instances.keys().copied().collect();
        for id in ids {
            // A busy instance would only answer DestroyService after its tasks.
            if self.instances[&id].invokes > 0 {
                self.kill(id, KillReason::Retire);
            } else {
                self.destroy_instance(id);
            }
        }
        // Services get a moment to run DestroyService (`Core::stopped`), then what is
        // left is killed (`Core::close`).
        self.instances.retain(|_, i| i.worker.is_none());
    }

    pub(super) fn timer(&mut self, t: Timer) {
        match t {
            Timer::Disconnect { sid, generation } => {
                let _ = self.drive(sid, lifecycle::Event::DisconnectTimeout { generation });
            }
            Timer::MethodTimeout { inst, at } => {
                let Some(i) = self.instances.get_mut(&inst) else { return };
                let head = i.expect.front().map(|h| (h.seq, h.kind));
                match (i.head_timer.fired(at, head.map(|h| h.0), Instant::now()), head) {
                    (Fired::Expired, Some((_, kind))) => {
                        let secs = method_control(&i.service.control, kind).timeout_s;
                        let msg = format!("{} timed out after {secs} s", kind.name());
                        self.kill(inst, KillReason::TimedOut(msg));
                    }
                    (Fired::Again(at), _) => self.at(at, Timer::MethodTimeout { inst, at }),
                    _ => {}
                }
            }
            Timer::Cleanup { inst, sid } => {
                let stale = self
                    .instances
                    .get(&inst)
                    .is_some_and(|i| i.expect.iter().any(|e| e.runs_task_of(sid) && self.live_task(e).is_none()));
                if stale {
                    self.kill(inst, KillReason::Cleanup);
                }
            }
            Timer::SuspendGrace { sid, generation } => {
                let _ = self.drive(sid, lifecycle::Event::SuspendGraceOver { generation });
            }
            Timer::ReclaimGrace { inst, sid } => {
                let overdue = self
                    .instances
                    .get(&inst)
                    .is_some_and(|i| i.bound() == Some(sid) && i.releasing() && i.invokes > 0);
                if overdue {
                    self.kill(inst, KillReason::Requeue);
                }
            }
        }
        self.needs_schedule = true;
    }

    /// Idle instances are stopped after a while: reuse is for bursts, not forever. One
    /// bound to a session with nothing to run first leaves it.
    pub(super) fn retire_idle_instances(&mut self, now: Instant) {
        let idle_for = Duration::from_secs(self.cfg.instance_idle_timeout_s);
        // Two passes: a bound instance idle too long is unbound first (which restarts its
        // idle clock), and only instances already unbound and idle too long are destroyed.
        for id in idle_instances(&self.instances, true, now, idle_for) {
            self.unbind(id);
        }
        let stale = idle_instances(&self.instances, false, now, idle_for);
        if stale.is_empty() {
            return;
        }
        // Pre-started instances are kept: as many of an application's as it pre-starts
        // (counted only when an instance is due to go).
        let mut live: HashMap<String, u32> = HashMap::default();
        for i in self.instances.values().filter(|i| i.killed().is_none()) {
            *live.entry(i.app.clone()).or_default() += 1;
        }
        for id in stale {
            let app = self.instances[&id].app.clone();
            let n = live.entry(app.clone()).or_default();
            if *n <= self.keep_for(&app) {
                continue;
            }
            *n -= 1;
            self.destroy_instance(id);
        }
    }
}

/// Tasks submitted after which a pause in submits hands freed memory back (`tick`): a
/// large submit otherwise leaves its freed frames held by the allocator
/// (docs/benchmarks.md, "Memory a large submit leaves").
const TRIM_AFTER_TASKS: u64 = 65_536;

/// Decides, tick by tick, when memory freed by submits is handed back: once submits
/// pause (none over a whole tick) after many tasks came in. A trim walks every arena,
/// and what it frees would be faulted in again by a stream of submits still going.
#[derive(Default)]
pub(super) struct TrimGate {
    /// Tasks taken in since the last trim.
    since_trim: u64,
    /// `since_trim` at the last tick: unchanged over a tick means submits paused.
    at_tick: u64,
}

impl TrimGate {
    /// `n` tasks were taken in.
    pub(super) fn taken(&mut self, n: u64) {
        self.since_trim += n;
    }

    /// A tick went by: whether to trim now.
    pub(super) fn tick(&mut self) -> bool {
        let trim = self.since_trim >= TRIM_AFTER_TASKS && self.since_trim == self.at_tick;
        if trim {
            self.since_trim = 0;
        }
        self.at_tick = self.since_trim;
        trim
    }
}

/// Instances (bound or not) with nothing outstanding that have been idle for `idle_for`.
fn idle_instances(instances: &HashMap<InstId, Instance>, bound: bool, now: Instant, idle_for: Duration) -> Vec<InstId> {
    instances
        .iter()
        .filter(|(_, i)| {
            i.bound().is_some() == bound && i.expect.is_empty() && i.killed().is_none() && now.duration_since(i.idle_since) >= idle_for
        })
        .map(|(&id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{TRIM_AFTER_TASKS, TrimGate};

    /// Ticks until the gate opens (at most `max`), counting them.
    fn ticks_to_trim(g: &mut TrimGate, max: u32) -> Option<u32> {
        (1..=max).find(|_| g.tick())
    }

    #[test]
    fn a_large_submit_is_trimmed_once_after_a_tick_without_submits() {
        let mut g = TrimGate::default();
        g.taken(TRIM_AFTER_TASKS);
        // The tick that saw the submit come in is not a pause yet.
        assert!(!g.tick());
        assert!(g.tick(), "a whole tick without submits after {TRIM_AFTER_TASKS} tasks");
        assert_eq!(ticks_to_trim(&mut g, 10), None, "nothing new came in since the trim");
    }

    #[test]
    fn a_stream_of_submits_is_not_trimmed_while_it_goes_on() {
        let mut g = TrimGate::default();
        for _ in 0..20 {
            g.taken(TRIM_AFTER_TASKS);
            assert!(!g.tick(), "submits came in during this tick");
        }
        assert_eq!(ticks_to_trim(&mut g, 3), Some(1), "the first tick of the pause trims");
    }

    #[test]
    fn small_submits_add_up_and_few_tasks_are_never_trimmed() {
        let mut g = TrimGate::default();
        g.taken(TRIM_AFTER_TASKS - 1);
        assert_eq!(ticks_to_trim(&mut g, 10), None, "under the threshold");
        g.taken(1);
        assert_eq!(ticks_to_trim(&mut g, 10), Some(2), "the threshold reached by a later submit");
    }
}
