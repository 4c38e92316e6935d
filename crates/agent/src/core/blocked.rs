//! Hosts an application's services may no longer start on (Symphony's
//! `actionOnSI="blockHost"`): what an instance's answer, exit or timeout blocked, how
//! the scheduler and the Slurm requests avoid it, and how it is lifted.
//!
//! A host is this machine for local instances, and a node for instances on Slurm
//! workers. A block lasts until the application is enabled again (`soamcontrol app
//! enable`, as Symphony unblocks), registered again, or the agent restarts; while it
//! lasts `soamview cluster` lists it with its reason, and the application's sessions
//! wait for a host that is not blocked.

use super::Core;
use std::collections::BTreeMap;

/// Per application, its blocked hosts and why each was blocked.
#[derive(Default)]
pub(super) struct Blocked(BTreeMap<String, BTreeMap<String, String>>);

impl Blocked {
    pub(super) fn contains(&self, app: &str, host: &str) -> bool {
        self.0.get(app).is_some_and(|h| h.contains_key(host))
    }

    /// The hosts blocked for `app`.
    pub(super) fn hosts(&self, app: &str) -> impl Iterator<Item = &String> {
        self.0.get(app).into_iter().flat_map(|h| h.keys())
    }

    /// Every block: (application, host, why).
    pub(super) fn all(&self) -> impl Iterator<Item = (&String, &String, &String)> {
        self.0.iter().flat_map(|(app, h)| h.iter().map(move |(host, why)| (app, host, why)))
    }
}

impl Core {
    /// The host an instance runs on: its worker's node, or this machine.
    pub(super) fn host_of(&self, worker: Option<u64>) -> String {
        worker.and_then(|w| self.worker_host(w)).unwrap_or_else(|| self.local_host.clone())
    }

    /// No instance of `app` starts on `host` any more (until [`Core::unblock`]).
    pub(super) fn block_host(&mut self, app: &str, host: String, why: String) {
        let hosts = self.blocked.0.entry(app.to_string()).or_default();
        if hosts.contains_key(&host) {
            return;
        }
        tracing::warn!("host {host} blocked for application {app} (actionOnSI=blockHost): {why}; soamcontrol app enable {app} lifts it");
        hosts.insert(host, why);
        self.needs_schedule = true;
    }

    /// Lifts every block of `app`; the hosts lifted.
    pub(super) fn unblock(&mut self, app: &str) -> Vec<String> {
        let hosts: Vec<String> = self.blocked.0.remove(app).map(|h| h.into_keys().collect()).unwrap_or_default();
        if !hosts.is_empty() {
            tracing::info!("hosts unblocked for application {app}: {}", hosts.join(", "));
            self.needs_schedule = true;
        }
        hosts
    }

    /// Whether a new local instance of `app` may start.
    pub(super) fn local_blocked(&self, app: &str) -> bool {
        self.blocked.contains(app, &self.local_host)
    }
}
