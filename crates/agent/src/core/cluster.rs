//! Cluster mode in the core: the allocations and workers behind `launcher: slurm`
//! services, and the decisions about them.
//!
//! A service with `launcher: slurm` is a *pool*: its instances run on workers (one per
//! node of the allocations the agent holds for it), and its sessions share the CPUs of
//! the live workers as local sessions share the agent's slots, under the same policies.
//! The agent asks for an allocation when the pool's backlog exceeds what it holds (one
//! request pending at a time, at most `maxAllocations`), and releases one idle for
//! `idleRelease`. All Slurm I/O is in [`crate::slurm`]; it reports back here as
//! [`ClusterEvent`]s.
//!
//! Failures: a worker that goes (node down, worker killed, job cancelled or out of
//! time) takes its instances with it; their tasks are requeued without counting a
//! retry, and the rest of its allocation is released, so capacity is asked for anew. A
//! worker whose job has less than [`DRAIN_MARGIN_S`] left takes no new sessions and
//! its instances retire once idle.

use super::Core;
use crate::ports::{ClusterEvent, CoreMsg, InstEvent, InstId, JobStatus, WorkerTx};
use rustc_hash::FxHashMap as HashMap;
use soam_profile::{Launcher, Service, SlurmOptions};
use soam_proto::worker::{FromWorker, ServiceSpec, ToWorker};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod allocations;

/// How long a pool waits after a failed allocation before asking again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A worker that ends sooner than this after it started (without being asked to)
/// counts as failing to start.
const EARLY_END: Duration = Duration::from_secs(10);
/// Early ends in a row after which sessions that can get no capacity are aborted.
const EARLY_ENDS_LIMIT: u32 = 3;

/// A job with less time left than this drains.
pub const DRAIN_MARGIN_S: u64 = 30;

/// A Slurm service's instances and allocations: (application, service).
pub type Pool = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AllocState {
    /// salloc runs; no job id yet.
    Requested,
    Pending,
    Running,
    /// Cancelled by us, or lost a worker: going.
    Releasing,
}

struct Alloc {
    pool: Pool,
    opts: SlurmOptions,
    job: Option<u64>,
    state: AllocState,
    /// Slurm's reason while it waits.
    reason: String,
    nodes: Vec<String>,
    /// CPUs per node: known once granted; until then what was asked (1 for whole nodes).
    cpus: u32,
    workers: Vec<u64>,
    time_left_s: Option<u64>,
    /// When the time left was read, to count it down between polls.
    left_at: Instant,
    idle_since: Option<Instant>,
}

struct Worker {
    alloc: u64,
    node: String,
    cpus: u32,
    tx: WorkerTx,
    /// Said hello: its instances may start.
    up: bool,
    /// Package versions sent to it (it unpacks each before its next message).
    packages: std::collections::HashSet<String>,
    /// A package version is being sent to it.
    sending: bool,
    draining: bool,
    started: Instant,
}

#[derive(Default)]
pub(super) struct Cluster {
    allocs: BTreeMap<u64, Alloc>,
    workers: HashMap<u64, Worker>,
    next_alloc: u64,
    next_worker: u64,
    polling: bool,
    /// Leftovers of an earlier life are gone (or there was no Slurm to ask).
    ready: bool,
    cleaning: bool,
    /// Slurm's last refusal per pool, shown until an allocation is granted.
    refused: HashMap<Pool, String>,
    /// A pool whose last request failed asks again no sooner than this.
    retry_at: HashMap<Pool, Instant>,
    /// Workers of a pool that ended soon after they started, in a row: each waits
    /// longer before the next allocation, and past a few the sessions are told.
    early_ends: HashMap<Pool, u32>,
    /// Names of the nodes tasks ran on; a task keeps the index (plus one) of its node.
    node_names: Vec<String>,
}

/// The job name of this agent's allocations: the same across restarts of one agent (so
/// leftovers can be found), different between agents (by data folder).
pub(super) fn job_name(data_dir: &std::path::Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data_dir.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("soam-{:08x}", h as u32)
}

pub(super) fn pool_of(app: &str, service: &Service) -> Option<Pool> {
    matches!(service.launcher, Launcher::Slurm(_)).then(|| (app.to_string(), service.name.clone()))
}

impl Core {
    /// A worker's node as a task records it (0: unknown, or the agent's host).
    pub(super) fn worker_node(&mut self, worker: u64) -> u16 {
        let Some(w) = self.cluster.workers.get(&worker) else { return 0 };
        let names = &mut self.cluster.node_names;
        let i = match names.iter().position(|n| n == &w.node) {
            Some(i) => i,
            None if names.len() < u16::MAX as usize - 1 => {
                names.push(w.node.clone());
                names.len() - 1
            }
            None => return 0,
        };
        i as u16 + 1
    }

    /// The node a worker runs on, once it said.
    pub(super) fn worker_host(&self, worker: u64) -> Option<String> {
        self.cluster.workers.get(&worker).map(|w| w.node.clone()).filter(|n| !n.is_empty())
    }

    pub(super) fn node_name(&self, node: u16) -> Option<String> {
        (node > 0)
            .then(|| self.cluster.node_names.get(node as usize - 1).cloned())
            .flatten()
    }

    /// CPUs of the live, non-draining workers of a pool.
    pub(super) fn pool_slots(&self, pool: &Pool) -> u32 {
        self.cluster
            .workers
            .values()
            .filter(|w| {
                w.up && !w.draining
                    && self
                        .cluster
                        .allocs
                        .get(&w.alloc)
                        .is_some_and(|a| &a.pool == pool && a.state == AllocState::Running)
            })
            .map(|w| w.cpus)
            .sum()
    }

    /// The least loaded live worker of the pool with a CPU to spare.
    /// A worker of `pool` with a CPU free for an instance of `service`, which has its
    /// package's current version; the pool's workers that lack it are sent it (they
    /// serve once it is there).
    pub(super) fn free_worker_for(&mut self, pool: &Pool, service: &Service) -> Option<u64> {
        let sha = service.package.as_ref().and_then(|p| self.packages.current_sha(p));
        if let Some(sha) = &sha {
            let lacking: Vec<u64> = self
                .cluster
                .workers
                .iter()
                .filter(|(_, w)| w.up && !w.draining && !w.sending && !w.packages.contains(sha))
                .filter(|(_, w)| self.cluster.allocs.get(&w.alloc).is_some_and(|a| &a.pool == pool))
                .map(|(&id, _)| id)
                .collect();
            for id in lacking {
                let w = self.cluster.workers.get_mut(&id).expect("listed");
                w.sending = true;
                let job = self.packages.send_to_worker(id, sha.clone(), w.tx.clone(), self.inbox.clone());
                self.launcher.run_blocking(job);
            }
        }
        self.free_worker(pool, sha.as_deref())
    }

    pub(super) fn free_worker(&self, pool: &Pool, needs: Option<&str>) -> Option<u64> {
        let mut load: HashMap<u64, u32> = HashMap::default();
        for i in self.instances.values() {
            if let Some(w) = i.worker {
                *load.entry(w).or_default() += 1;
            }
        }
        self.cluster
            .workers
            .iter()
            .filter(|(_, w)| {
                w.up && !w.draining
                    && needs.is_none_or(|sha| w.packages.contains(sha))
                    && !self.blocked.contains(&pool.0, &w.node)
                    && self
                        .cluster
                        .allocs
                        .get(&w.alloc)
                        .is_some_and(|a| &a.pool == pool && a.state == AllocState::Running)
            })
            .map(|(&id, w)| (load.get(&id).copied().unwrap_or(0), w.cpus, id))
            .filter(|(used, cpus, _)| used < cpus)
            .min_by_key(|&(used, _, id)| (used, id))
            .map(|(_, _, id)| id)
    }

    /// Starts an instance on a worker: the core sees it as any other instance.
    pub(super) fn start_remote(&mut self, app: &str, service: Arc<Service>, run_uid: u32, worker: u64) -> InstId {
        let iid = self.next_inst;
        self.next_inst += 1;
        let wtx = self.cluster.workers[&worker].tx.clone();
        // What only this host knows is put in here (the package's folder, and for the
        // agent's own user its environment); what the node knows (SOAM_HOME) is left for
        // the worker to fill in where the instance runs.
        let ready = self.with_package(&service).and_then(|(svc, sha)| {
            let known = soam_profile::vars::Known {
                // A package's folder is the node's own copy: the worker puts it in.
                deploy_dir: if sha.is_some() { None } else { Some(svc.deploy_dir.clone()) },
                soam_home: None,
                environment: run_uid == self.agent_uid,
                env: &svc.env,
            };
            Ok((svc.expanded(&known)?, sha))
        });
        if let Ok((svc, sha)) = &ready {
            let spec = ServiceSpec {
                name: svc.name.clone(),
                exec: svc.mode == soam_profile::Mode::Exec,
                command: svc.command.clone(),
                work_dir: svc.work_dir.display().to_string(),
                env: svc.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                package: sha.clone(),
            };
            let _ = wtx.send(ToWorker::Start {
                inst: iid,
                app: app.to_string(),
                service: spec,
            });
        }
        let tx = self.launcher.start_remote(iid, wtx);
        self.add_instance(iid, app, service, run_uid, tx, None, Some(worker));
        if let (Ok((_, sha)), Some(i)) = (&ready, self.instances.get_mut(&iid)) {
            i.deployed = sha.clone();
        }
        if let Err(why) = ready {
            // Never sent with a variable left as written: it ends as one that failed to
            // start, in the next turn (whoever asked for it is about to use it).
            self.inbox.send(CoreMsg::Instance {
                inst: iid,
                ev: InstEvent::Exited { why },
            });
        }
        iid
    }

    pub(super) fn cluster_event(&mut self, ev: ClusterEvent) {
        self.needs_schedule = true;
        match ev {
            ClusterEvent::Ready => self.cluster.ready = true,
            ClusterEvent::AllocQueued { alloc, job } => {
                if let Some(a) = self.cluster.allocs.get_mut(&alloc) {
                    a.job = Some(job);
                    if a.state == AllocState::Requested {
                        a.state = AllocState::Pending;
                    }
                }
            }
            ClusterEvent::AllocGranted { alloc, job, nodes, cpus } => {
                let Some(a) = self.cluster.allocs.get_mut(&alloc) else {
                    return self.launcher.cancel_job(job);
                };
                a.job = Some(job);
                if a.state == AllocState::Releasing {
                    return self.launcher.cancel_job(job);
                }
                tracing::info!("allocation {job} granted for {}/{}: {}", a.pool.0, a.pool.1, nodes.join(","));
                a.state = AllocState::Running;
                a.reason.clear();
                a.nodes = nodes.clone();
                a.cpus = cpus;
                a.idle_since = None;
                let pool = a.pool.clone();
                self.cluster.refused.remove(&pool);
                if self.watching() {
                    let detail = format!("job {job} for service '{}' on {}", pool.1, nodes.join(","));
                    self.emit(
                        super::watchers::event("allocation", &pool.0, None, None, "running", detail),
                        super::watchers::Whose::Agent,
                    );
                }
                for node in nodes {
                    let wid = self.cluster.next_worker;
                    let tx = match self.launcher.start_worker(wid, job, &node, cpus) {
                        Ok(tx) => tx,
                        Err(e) => {
                            // Workers cannot reach the agent: none of this allocation's
                            // can start.
                            tracing::warn!("{e}");
                            self.release_alloc(alloc);
                            self.cluster.allocs.remove(&alloc);
                            return self.refuse_pool(&pool, e);
                        }
                    };
                    self.cluster.next_worker += 1;
                    self.cluster.workers.insert(
                        wid,
                        Worker {
                            alloc,
                            node,
                            cpus,
                            tx,
                            up: false,
                            packages: Default::default(),
                            sending: false,
                            draining: false,
                            started: Instant::now(),
                        },
                    );
                    if let Some(a) = self.cluster.allocs.get_mut(&alloc) {
                        a.workers.push(wid);
                    }
                }
            }
            ClusterEvent::AllocFailed { alloc, why, queued } => {
                let Some(a) = self.cluster.allocs.remove(&alloc) else { return };
                if queued {
                    tracing::warn!("allocation {:?} for {}/{} failed: {why}; asking again", a.job, a.pool.0, a.pool.1);
                    self.cluster.retry_at.insert(a.pool, Instant::now() + RETRY_AFTER);
                    return;
                }
                tracing::warn!("Slurm refused an allocation for {}/{}: {why}", a.pool.0, a.pool.1);
                let msg = format!("Slurm refused an allocation for service '{}': {why}", a.pool.1);
                self.refuse_pool(&a.pool, msg);
            }
            ClusterEvent::WorkerMsg { worker, msg } => match msg {
                FromWorker::Hello { node, cpus, job, pid, .. } => {
                    tracing::info!("worker up on {node} (job {job}, pid {pid}, {cpus} CPUs)");
                    if let Some(w) = self.cluster.workers.get_mut(&worker) {
                        w.up = true;
                        w.cpus = cpus.max(1);
                        w.node = node;
                    }
                }
                FromWorker::Output { inst, bytes } => self.instance_event(inst, InstEvent::Output(bytes)),
                FromWorker::Exited { inst, why } => self.instance_event(inst, InstEvent::Exited { why }),
            },
            ClusterEvent::WorkerGone { worker, why, slurm_lost } => self.worker_gone(worker, why, slurm_lost),
            ClusterEvent::PackageSent { worker, sha256, error } => {
                if let Some(e) = error {
                    // Its instances then fail to start on that node, saying the folder
                    // is not there; not sent again and again.
                    tracing::error!(
                        "package version {} could not be sent to worker {worker}: {e}",
                        super::packages::short(&sha256)
                    );
                }
                if let Some(w) = self.cluster.workers.get_mut(&worker) {
                    w.sending = false;
                    w.packages.insert(sha256);
                }
                self.needs_schedule = true;
            }
            ClusterEvent::Polled(rows) => {
                self.cluster.polling = false;
                let Some(rows) = rows else { return };
                let by_job: HashMap<u64, &JobStatus> = rows.iter().map(|r| (r.job, r)).collect();
                let mut gone = Vec::new();
                for (&id, a) in self.cluster.allocs.iter_mut() {
                    let Some(job) = a.job else { continue };
                    match by_job.get(&job) {
                        Some(r) => {
                            if r.state == "PENDING" {
                                a.reason = r.reason.clone();
                            }
                            a.time_left_s = r.time_left_s;
                            a.left_at = Instant::now();
                        }
                        // Cancelled or ended while it waited: nothing to clean up.
                        None if a.state == AllocState::Pending => gone.push(id),
                        None => {
                            if a.state == AllocState::Running {
                                a.state = AllocState::Releasing;
                            }
                            if a.workers.is_empty() {
                                gone.push(id);
                            }
                        }
                    }
                }
                for id in gone {
                    self.cluster.allocs.remove(&id);
                }
            }
        }
    }
}
