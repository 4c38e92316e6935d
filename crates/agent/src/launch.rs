//! The agent's [`Launcher`]: the effects the core asks for, carried out with processes
//! (`crate::instance`), Slurm commands and workers (`crate::slurm`) and tokio timers.
//! Everything it starts reports back through the core's inbox.

use crate::instance::{self, InstTx};
use crate::ports::{ClusterEvent, CoreMsg, Inbox, InstCmd, InstId, InstLink, Launcher, Owner, Timer, WorkerTx};
use crate::slurm;
use bytes::Bytes;
use soam_profile::{Service, SlurmOptions};
use soam_proto::worker::ToWorker;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

pub struct Real {
    inbox: Inbox,
    /// The agent's runtime: some calls come from the store's thread.
    rt: Handle,
    worker_host: Option<String>,
    worker_port: u16,
    /// Where workers connect back, opened at the first allocation granted.
    rendezvous: Mutex<Option<Arc<slurm::Rendezvous>>>,
}

impl Real {
    /// Must be called on the agent's runtime.
    pub fn new(inbox: Inbox, cfg: &crate::AgentConfig) -> Real {
        Real {
            inbox,
            rt: Handle::current(),
            worker_host: cfg.worker_host.clone(),
            worker_port: cfg.worker_port,
            rendezvous: Mutex::new(None),
        }
    }
}

impl Launcher for Real {
    fn start_instance(&self, id: InstId, app: &str, service: Arc<Service>, owner: Owner) -> (InstLink, Option<u32>) {
        let inbox = self.inbox.clone();
        let sink: crate::ports::EventSink = Arc::new(move |inst, ev| inbox.send(CoreMsg::Instance { inst, ev }));
        let _rt = self.rt.enter();
        let spawned = instance::spawn(id, app, service, owner, sink);
        (Box::new(spawned.tx), spawned.pid)
    }

    fn start_remote(&self, id: InstId, worker: WorkerTx) -> InstLink {
        let (tx, mut rx) = mpsc::unbounded_channel::<InstCmd>();
        self.rt.spawn(async move {
            // The instance's messages go to the worker encoded as its service reads
            // them, everything already queued in one piece.
            let mut buf = Vec::with_capacity(1 << 12);
            while let Some(cmd) = rx.recv().await {
                let kill = instance::coalesce(cmd, &mut rx, &mut buf, None);
                if !buf.is_empty() {
                    let bytes = Bytes::from(std::mem::take(&mut buf));
                    if worker.send(ToWorker::Input { inst: id, bytes }).is_err() {
                        return;
                    }
                }
                if kill && worker.send(ToWorker::Kill { inst: id }).is_err() {
                    return;
                }
            }
            // The core let go of it: make sure it is gone on the node too.
            let _ = worker.send(ToWorker::Kill { inst: id });
        });
        Box::new(InstTx::new(tx))
    }

    fn set_timer(&self, at: Instant, timer: Timer) {
        let inbox = self.inbox.clone();
        self.rt.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            inbox.send(CoreMsg::Timer(timer));
        });
    }

    fn trim_memory(&self) {
        // A trim walks every arena, which the core's loop should not wait for.
        self.rt.spawn_blocking(soam_store::release_freed_memory);
    }

    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) {
        self.rt.spawn_blocking(job);
    }

    fn cancel_leftovers(&self, job_name: String) {
        let inbox = self.inbox.clone();
        self.rt.spawn(async move {
            slurm::cancel_leftovers(&job_name).await;
            inbox.send(CoreMsg::Cluster(ClusterEvent::Ready));
        });
    }

    fn request_allocation(&self, alloc: u64, opts: SlurmOptions, job_name: String) {
        let _rt = self.rt.enter();
        slurm::request(alloc, opts, job_name, self.inbox.clone());
    }

    fn start_worker(&self, worker: u64, job: u64, node: &str, cpus: u32) -> Result<WorkerTx, String> {
        let _rt = self.rt.enter();
        let rdv = {
            let mut r = self.rendezvous.lock().unwrap_or_else(|e| e.into_inner());
            match &*r {
                Some(r) => r.clone(),
                None => r
                    .insert(slurm::Rendezvous::open(self.worker_host.as_deref(), self.worker_port)?)
                    .clone(),
            }
        };
        Ok(slurm::start_worker(worker, job, node, cpus, rdv, self.inbox.clone()))
    }

    fn poll_jobs(&self, jobs: Vec<u64>) {
        let _rt = self.rt.enter();
        slurm::poll(jobs, self.inbox.clone());
    }

    fn cancel_job(&self, job: u64) {
        let _rt = self.rt.enter();
        slurm::cancel(job);
    }

    fn cancel_jobs_now(&self, jobs: Vec<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { slurm::cancel_now(&jobs).await })
    }
}
