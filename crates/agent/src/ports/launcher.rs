//! Every effect the core asks of the outside world, beyond writing to a connection or an
//! instance: one trait, so the core never spawns, sleeps or runs a command itself.

use super::{InstId, InstLink, Owner, Timer};
use soam_profile::{Service, SlurmOptions};
use soam_proto::worker::ToWorker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What the core sends one cluster worker.
pub type WorkerTx = mpsc::UnboundedSender<ToWorker>;

/// What the core asks of the outside. Each call returns at once; what it leads to comes
/// back to the inbox as a [`super::CoreMsg`] (an instance's events, a timer, a Slurm
/// answer). `crate::launch::Real` is the agent's; the core's tests record the calls.
pub trait Launcher: Send + Sync {
    /// Starts a local instance of `service` running as `owner`; its events go to the
    /// inbox. Also returns its pid, when a process started.
    fn start_instance(&self, id: InstId, app: &str, service: Arc<Service>, owner: Owner) -> (InstLink, Option<u32>);
    /// Starts an instance on a worker (`ToWorker::Start` already sent): the way to it
    /// relays commands to `worker`, and kills it there when dropped.
    fn start_remote(&self, id: InstId, worker: WorkerTx) -> InstLink;
    /// Posts [`super::CoreMsg::Timer`]`(timer)` at `at`.
    fn set_timer(&self, at: Instant, timer: Timer);
    /// Hands freed memory back to the OS, off the core's thread.
    fn trim_memory(&self);
    /// Runs `job` (a store read) on a blocking thread.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>);
    /// Cancels the jobs an earlier life of the agent left (named `job_name`), then
    /// posts `ClusterEvent::Ready`.
    fn cancel_leftovers(&self, job_name: String);
    /// Asks Slurm for allocation `alloc`; answers come as `ClusterEvent`s.
    fn request_allocation(&self, alloc: u64, opts: SlurmOptions, job_name: String);
    /// Starts worker `worker` on `node` of `job`; its messages come as
    /// `ClusterEvent::WorkerMsg`. Err: workers cannot be reached (the rendezvous).
    fn start_worker(&self, worker: u64, job: u64, node: &str, cpus: u32) -> Result<WorkerTx, String>;
    /// Asks squeue about `jobs`; the answer comes as `ClusterEvent::Polled`.
    fn poll_jobs(&self, jobs: Vec<u64>);
    /// Cancels `job`, in the background.
    fn cancel_job(&self, job: u64);
    /// Cancels `jobs` and waits until scancel is done (shutdown).
    fn cancel_jobs_now(&self, jobs: Vec<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}
