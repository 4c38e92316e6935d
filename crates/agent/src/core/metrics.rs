//! What the agent counts for monitoring (`metricsAddress`, docs/usage.md "Metrics"):
//! tasks submitted, done, failed and retried, how long tasks waited and ran, sessions
//! created and ended. Counting costs the hot path a few integer additions on state the
//! core already holds: each session keeps its own [`Tally`] (its tasks' transitions
//! write it, `session.rs`), and a session's tally joins its application's when it ends.
//! A scrape asks the core for a [`Snapshot`] (open sessions' tallies added to the
//! applications'), which the HTTP side (`crate::metrics`, where the types are) writes
//! as Prometheus text.

use super::Core;
use super::session::Session;
use crate::metrics::{AppCounters, Snapshot};
use soam_proto::msg::SessionState;
use std::collections::BTreeMap;

/// Per application: what ended sessions' tasks did, and sessions created and ended.
#[derive(Debug, Default)]
pub(super) struct Counters {
    apps: BTreeMap<String, AppCounters>,
}

impl Counters {
    fn app(&mut self, app: &str) -> &mut AppCounters {
        if !self.apps.contains_key(app) {
            self.apps.insert(app.to_string(), AppCounters::default());
        }
        self.apps.get_mut(app).expect("inserted")
    }
}

impl Core {
    /// A session was created (not a recovered one).
    pub(super) fn count_created(&mut self, app: &str) {
        self.tallies.app(app).sessions_created += 1;
    }

    /// A session ended in `state`: its tasks' tally, with their times, joins its
    /// application's.
    pub(super) fn count_ended(&mut self, s: &Session, state: SessionState) {
        let since = self.started_ms();
        let a = self.tallies.app(&s.app);
        a.tasks.add(&s.tally);
        time_tasks(s, since, &mut a.run, &mut a.wait);
        *a.sessions_ended.entry(state.as_str()).or_default() += 1;
    }

    /// When the agent started, in ms since the epoch.
    fn started_ms(&self) -> u64 {
        super::now_ms().saturating_sub(self.started.elapsed().as_millis() as u64)
    }

    /// `soamview top`'s figures now (`Request::Figures`).
    pub(super) fn figures(&self) -> soam_proto::msg::AgentFigures {
        let snap = self.snapshot(false);
        soam_proto::msg::AgentFigures {
            uptime_s: snap.uptime_s,
            rss_bytes: rss_bytes(),
            connections: snap.connections,
            commits: snap.store_commits,
            store_bytes: snap.store_bytes,
            store_fault: self.store_fault.clone(),
            apps: snap
                .apps
                .into_iter()
                .map(|(app, a)| soam_proto::msg::AppFigures {
                    app,
                    submitted: a.counters.tasks.submitted,
                    done: a.counters.tasks.done,
                    failed: a.counters.tasks.failed,
                    pending: a.pending,
                    running: a.running,
                    busy_instances: a.busy_instances,
                    idle_instances: a.idle_instances,
                    open_sessions: a.sessions.values().sum(),
                })
                .collect(),
        }
    }

    /// What `/metrics` shows now.
    pub(super) fn metrics(&self) -> Snapshot {
        self.snapshot(true)
    }

    /// The figures now; `times`: with the open sessions' task times (a pass over their
    /// tasks, which `soamview top` does not need every second).
    fn snapshot(&self, times: bool) -> Snapshot {
        let since = self.started_ms();
        let mut out = Snapshot {
            store_bytes: self.store.stored_bytes(),
            store_commits: self.store.commits(),
            store_degraded: self.store_fault.is_some(),
            connections: self.conns.len() as u64,
            uptime_s: self.started.elapsed().as_secs(),
            version: soam_proto::SOAM_VERSION,
            ..Snapshot::default()
        };
        for name in self.apps.keys() {
            out.apps.entry(name.clone()).or_default();
        }
        for (name, c) in &self.tallies.apps {
            out.apps.entry(name.clone()).or_default().counters = c.clone();
        }
        for s in self.sessions.values() {
            let a = out.apps.entry(s.app.clone()).or_default();
            a.counters.tasks.add(&s.tally);
            if times {
                time_tasks(s, since, &mut a.counters.run, &mut a.counters.wait);
            }
            *a.sessions.entry(s.life.state().as_str()).or_default() += 1;
            a.pending += s.counts.pending;
            a.running += s.counts.running;
        }
        for i in self.instances.values() {
            let a = out.apps.entry(i.app.clone()).or_default();
            if i.bound().is_some() || i.invokes > 0 {
                a.busy_instances += 1;
            } else {
                a.idle_instances += 1;
            }
        }
        for a in self.list_cluster() {
            match a.state.as_str() {
                // Not allocations: a host blocked for an application, Slurm's refusal.
                "blocked" => out.apps.entry(a.app).or_default().blocked_hosts += 1,
                "refused" => {}
                _ => *out.allocations.entry(a.state).or_default() += 1,
            }
        }
        out
    }
}

/// This process's resident memory (`/proc/self/statm`'s second field, in pages); 0
/// where it cannot be read.
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Adds the times of `s`'s tasks that ended (done or in error) after `since` (ms): from
/// the start of the attempt that ended each to its end, and from its submission to that
/// start. Tasks that ended in an earlier life of the agent were counted then.
fn time_tasks(s: &Session, since: u64, run: &mut crate::metrics::Hist, wait: &mut crate::metrics::Hist) {
    use soam_proto::msg::TaskState;
    for t in &s.tasks {
        if matches!(t.state(), TaskState::Done | TaskState::Error) && t.started_ms() > 0 && t.ended_ms() >= since {
            run.observe(t.ended_ms().saturating_sub(t.started_ms()));
            wait.observe(t.started_ms().saturating_sub(t.submitted_ms()));
        }
    }
}
