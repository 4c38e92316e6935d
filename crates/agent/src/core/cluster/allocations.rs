//! When to ask Slurm for an allocation and when to give one back: the pools' demand
//! against what their workers hold (`cluster_demand`), idle release and job deadlines
//! (`cluster_tick`), workers that went and allocations that end early, and what
//! `soamview cluster` lists.

use super::{Alloc, AllocState, DRAIN_MARGIN_S, EARLY_END, EARLY_ENDS_LIMIT, RETRY_AFTER, Worker, job_name, pool_of};
use crate::core::Core;
use crate::core::cluster::Pool;
use crate::ports::{InstId, Sid};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use soam_profile::Launcher;
use soam_proto::msg::{AllocInfo, SessionState};
use soam_proto::worker::ToWorker;
use std::time::Instant;
impl Core {
    pub(in crate::core) fn worker_gone(&mut self, worker: u64, why: String, slurm_lost: bool) {
        let Some(w) = self.cluster.workers.remove(&worker) else { return };
        tracing::warn!("worker on {} gone: {why}", w.node);
        let lost: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.worker == Some(worker))
            .map(|(&id, _)| id)
            .collect();
        for iid in lost {
            self.exited(iid, format!("its node {} was lost ({why})", w.node), true);
        }
        let Some(a) = self.cluster.allocs.get_mut(&w.alloc) else { return };
        a.workers.retain(|&x| x != worker);
        let (pool, unasked) = (a.pool.clone(), a.state == AllocState::Running);
        if unasked {
            // A node of it is gone: give the rest back and ask again for what is needed.
            a.state = AllocState::Releasing;
            if let Some(job) = a.job {
                self.launcher.cancel_job(job);
            }
            for wid in a.workers.clone() {
                if let Some(w) = self.cluster.workers.get_mut(&wid) {
                    w.draining = true;
                }
            }
        }
        if a.workers.is_empty() && a.state == AllocState::Releasing {
            self.cluster.allocs.remove(&w.alloc);
        }
        // A node or job Slurm took away is a loss to recover from, not a sign that
        // workers cannot start: asking again goes elsewhere. (A worker that cannot
        // connect back exits without cancelling its job, so it counts here.)
        if unasked && !slurm_lost {
            self.early_end_check(&pool, w.started, &why);
        }
        self.needs_schedule = true;
    }

    /// A worker went without being asked. If it went at once, something about the
    /// workers is wrong (the program missing on the nodes, say), and asking again at
    /// once would spin through allocations: each such end in a row doubles the wait,
    /// and past a few the sessions are told.
    pub(in crate::core) fn early_end_check(&mut self, pool: &Pool, started: Instant, why: &str) {
        if started.elapsed() >= EARLY_END {
            self.cluster.early_ends.remove(pool);
            return;
        }
        let n = self.cluster.early_ends.entry(pool.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        self.cluster
            .retry_at
            .insert(pool.clone(), Instant::now() + RETRY_AFTER * 2u32.pow(n.min(5)));
        if n >= EARLY_ENDS_LIMIT {
            self.cluster.early_ends.remove(pool);
            let msg = format!("workers for service '{}' keep ending as they start: {why}", pool.1);
            self.refuse_pool(pool, msg);
        }
    }

    /// Records why a pool gets no capacity; sessions that can get none elsewhere are
    /// aborted with that reason (Slurm's own words, where it gave them).
    pub(in crate::core) fn refuse_pool(&mut self, pool: &Pool, msg: String) {
        self.cluster.refused.insert(pool.clone(), msg.clone());
        if self.pool_slots(pool) > 0 {
            return;
        }
        let stuck: Vec<Sid> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.runnable() && s.counts.pending > 0 && pool_of(&s.app, &s.service).as_ref() == Some(pool))
            .map(|(&sid, _)| sid)
            .collect();
        for sid in stuck {
            self.end_session(sid, SessionState::Aborted, &msg, true);
        }
    }

    /// Releases an allocation: its workers stop, running tasks are requeued.
    pub(in crate::core) fn release_alloc(&mut self, id: u64) {
        let Some(a) = self.cluster.allocs.get_mut(&id) else { return };
        tracing::info!("releasing allocation {:?} of {}/{}", a.job, a.pool.0, a.pool.1);
        a.state = AllocState::Releasing;
        if let Some(job) = a.job {
            self.launcher.cancel_job(job);
        }
        // One still being requested is cancelled when its grant arrives.
        for wid in a.workers.clone() {
            if let Some(w) = self.cluster.workers.get(&wid) {
                let _ = w.tx.send(ToWorker::Stop);
            }
        }
        if self.watching()
            && let Some(a) = self.cluster.allocs.get(&id)
        {
            let job = a.job.map_or("not yet granted".to_string(), |j| format!("job {j}"));
            let detail = format!("{job} for service '{}'", a.pool.1);
            let ev = crate::core::watchers::event("allocation", &a.pool.0, None, None, "releasing", detail);
            self.emit(ev, crate::core::watchers::Whose::Agent);
        }
    }

    /// Once a second: poll Slurm, drain jobs near their end, release idle allocations.
    pub(in crate::core) fn cluster_tick(&mut self) {
        // A pool waiting out a failed request asks again once its wait is over.
        let now = Instant::now();
        let before = self.cluster.retry_at.len();
        self.cluster.retry_at.retain(|_, t| *t > now);
        if self.cluster.retry_at.len() < before {
            self.needs_schedule = true;
        }
        if self.cluster.allocs.is_empty() && self.cluster.workers.is_empty() {
            return;
        }
        let jobs: Vec<u64> = self.cluster.allocs.values().filter_map(|a| a.job).collect();
        if !jobs.is_empty() && !self.cluster.polling {
            self.cluster.polling = true;
            self.launcher.poll_jobs(jobs);
        }
        let mut busy: HashSet<u64> = HashSet::default();
        for i in self.instances.values() {
            if let Some(w) = i.worker
                && (i.bound().is_some() || !i.expect.is_empty())
            {
                busy.insert(w);
            }
        }
        let mut wanted: HashSet<Pool> = HashSet::default();
        for s in self.sessions.values() {
            if s.runnable()
                && s.counts.pending > 0
                && let Some(p) = pool_of(&s.app, &s.service)
            {
                wanted.insert(p);
            }
        }
        let up: HashSet<u64> = self.cluster.workers.iter().filter(|(_, w)| w.up).map(|(&id, _)| id).collect();
        let mut release = Vec::new();
        let mut drain = Vec::new();
        for (&id, a) in self.cluster.allocs.iter_mut() {
            if a.state != AllocState::Running {
                continue;
            }
            let left = a.time_left_s.map(|l| l.saturating_sub(now.duration_since(a.left_at).as_secs()));
            if left.is_some_and(|l| l < DRAIN_MARGIN_S) {
                drain.extend(a.workers.iter().copied());
            }
            let busy_now = a.workers.iter().any(|w| busy.contains(w));
            // Every node of it is blocked for its application (`blockHost`): it can serve
            // nothing more, so it goes once idle, without waiting for idleRelease.
            let blocked_out = !a.nodes.is_empty() && a.nodes.iter().all(|n| self.blocked.contains(&a.pool.0, n));
            if blocked_out && !busy_now {
                release.push(id);
            } else if busy_now || wanted.contains(&a.pool) || a.workers.iter().any(|w| !up.contains(w)) {
                a.idle_since = None;
            } else if now.duration_since(*a.idle_since.get_or_insert(now)).as_secs() >= a.opts.idle_release_s {
                release.push(id);
            }
        }
        for w in drain {
            if let Some(w) = self.cluster.workers.get_mut(&w)
                && !w.draining
            {
                tracing::info!("worker on {} drains: its allocation is about to end", w.node);
                w.draining = true;
            }
        }
        let draining: HashSet<u64> = self.cluster.workers.iter().filter(|(_, w)| w.draining).map(|(&id, _)| id).collect();
        for i in self.instances.values_mut() {
            if i.worker.is_some_and(|w| draining.contains(&w)) {
                i.retire();
                i.release();
            }
        }
        for id in release {
            self.release_alloc(id);
        }
        self.needs_schedule = true;
    }

    /// Asks for an allocation for each pool whose backlog exceeds what it holds or
    /// has asked for.
    pub(in crate::core) fn cluster_demand(&mut self) {
        // Only the candidates for slots can have work (see `sched`): idle sessions cost nothing here.
        let demand = self.pool_demand();
        if demand.is_empty() {
            return;
        }
        if !self.cluster.ready {
            if !self.cluster.cleaning {
                self.cluster.cleaning = true;
                self.launcher.cancel_leftovers(job_name(&self.cfg.paths.data_dir));
            }
            return;
        }
        for (pool, want, service) in demand {
            if want == 0 {
                continue;
            }
            let Launcher::Slurm(opts) = &service.launcher else { continue };
            let cap = self
                .apps
                .get(&pool.0)
                .and_then(|a| a.profile.consumer.max_slots)
                .unwrap_or(u32::MAX) as u64;
            let want = want.min(cap);
            // What is held for the pool, but allocations whose every node is blocked for
            // the application: they will serve nothing more (and are being given back).
            let held: Vec<&Alloc> = self
                .cluster
                .allocs
                .values()
                .filter(|a| a.pool == pool && a.state != AllocState::Releasing)
                .filter(|a| a.nodes.is_empty() || !a.nodes.iter().all(|n| self.blocked.contains(&pool.0, n)))
                .collect();
            if held.iter().any(|a| matches!(a.state, AllocState::Requested | AllocState::Pending))
                || held.len() as u32 >= opts.max_allocations
            {
                continue;
            }
            if self.cluster.retry_at.get(&pool).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            if self.cluster.refused.contains_key(&pool) && self.pool_slots(&pool) == 0 && held.is_empty() {
                // Refused just now: the sessions that needed it were told; new ones ask again.
                self.cluster.refused.remove(&pool);
            }
            // What it holds or will hold once its workers are up.
            let coming: u64 = held
                .iter()
                .map(|a| {
                    let nodes = if a.nodes.is_empty() { a.opts.nodes as usize } else { a.nodes.len() };
                    nodes as u64 * a.cpus as u64
                })
                .sum();
            if want <= coming {
                continue;
            }
            let id = self.cluster.next_alloc;
            self.cluster.next_alloc += 1;
            tracing::info!("asking Slurm for an allocation for {}/{} ({want} tasks to run)", pool.0, pool.1);
            if self.watching() {
                let detail = format!("for service '{}' ({want} tasks to run)", pool.1);
                self.emit(
                    crate::core::watchers::event("allocation", &pool.0, None, None, "requested", detail),
                    crate::core::watchers::Whose::Agent,
                );
            }
            self.cluster.allocs.insert(
                id,
                Alloc {
                    pool: pool.clone(),
                    opts: opts.clone(),
                    job: None,
                    state: AllocState::Requested,
                    reason: "requested".into(),
                    nodes: Vec::new(),
                    cpus: opts.cpus_per_node.unwrap_or(1),
                    workers: Vec::new(),
                    time_left_s: None,
                    left_at: Instant::now(),
                    idle_since: None,
                },
            );
            // Nodes blocked for the application (`blockHost`) are left out of it.
            let mut asked = opts.clone();
            let blocked: Vec<&str> = self.blocked.hosts(&pool.0).map(String::as_str).collect();
            if !blocked.is_empty() {
                asked.extra_args.push(format!("--exclude={}", blocked.join(",")));
            }
            self.launcher.request_allocation(id, asked, job_name(&self.cfg.paths.data_dir));
        }
    }

    pub(in crate::core) fn list_cluster(&self) -> Vec<AllocInfo> {
        let mut busy: HashMap<u64, u32> = HashMap::default();
        for i in self.instances.values() {
            if let Some(w) = i.worker
                && i.invokes > 0
            {
                *busy.entry(w).or_default() += 1;
            }
        }
        let now = Instant::now();
        let mut out: Vec<AllocInfo> = self
            .cluster
            .allocs
            .values()
            .map(|a| {
                let workers: Vec<&Worker> = a.workers.iter().filter_map(|w| self.cluster.workers.get(w)).collect();
                AllocInfo {
                    job_id: a.job,
                    app: a.pool.0.clone(),
                    service: a.pool.1.clone(),
                    state: match a.state {
                        AllocState::Requested | AllocState::Pending => "pending",
                        AllocState::Running if workers.iter().any(|w| w.draining) => "draining",
                        AllocState::Running => "running",
                        AllocState::Releasing => "releasing",
                    }
                    .into(),
                    reason: a.reason.clone(),
                    nodes: a.nodes.clone(),
                    slots: workers.iter().filter(|w| w.up).map(|w| w.cpus).sum(),
                    busy: a.workers.iter().map(|w| busy.get(w).copied().unwrap_or(0)).sum(),
                    time_left_s: a.time_left_s.map(|l| l.saturating_sub(now.duration_since(a.left_at).as_secs())),
                }
            })
            .collect();
        for (app, host, why) in self.blocked.all() {
            out.push(AllocInfo {
                job_id: None,
                app: app.clone(),
                service: String::new(),
                state: "blocked".into(),
                reason: format!("{why}; soamcontrol app enable {app} lifts it"),
                nodes: vec![host.clone()],
                slots: 0,
                busy: 0,
                time_left_s: None,
            });
        }
        for (pool, why) in &self.cluster.refused {
            out.push(AllocInfo {
                job_id: None,
                app: pool.0.clone(),
                service: pool.1.clone(),
                state: "refused".into(),
                reason: why.clone(),
                nodes: Vec::new(),
                slots: 0,
                busy: 0,
                time_left_s: None,
            });
        }
        out
    }

    /// `soamcontrol cluster release JOB`.
    pub(in crate::core) fn release_job(&mut self, job: u64) -> Result<(), String> {
        let id = self
            .cluster
            .allocs
            .iter()
            .find(|(_, a)| a.job == Some(job))
            .map(|(&id, _)| id)
            .ok_or_else(|| format!("no allocation with job id {job} (see soamview cluster)"))?;
        self.release_alloc(id);
        Ok(())
    }

    /// At shutdown: stop every worker; the allocations' jobs, to give back.
    pub(in crate::core) fn cluster_shutdown(&mut self) -> Vec<u64> {
        for w in self.cluster.workers.values() {
            let _ = w.tx.send(ToWorker::Stop);
        }
        self.cluster.allocs.values().filter_map(|a| a.job).collect()
    }
}
