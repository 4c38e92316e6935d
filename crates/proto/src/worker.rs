//! What the agent and a node-side worker (`soam-worker`, one per node of a Slurm
//! allocation) say to each other over the TCP connection the worker opens back to the
//! agent (why not the step's stdio: see `soam_agent::slurm`).
//!
//! Framing is [`crate::frame`]'s; both sides coalesce what is queued into one write, so
//! many messages (many tasks' service-protocol traffic) share a syscall and a Slurm I/O
//! message. The agent addresses instances by its own instance ids; the worker starts
//! them on its node and relays their service-protocol traffic as it is: the agent
//! encodes what a service reads, the worker writes those bytes to the service's stdin
//! and sends back what the service wrote, cut at message boundaries, so a worker never
//! decodes or re-encodes a task's messages one by one (exec tasks, which the worker
//! runs itself, are the exception).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// What a worker needs to start an instance of a service on its node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    /// One process per task (`mode: exec`) rather than a persistent service.
    pub exec: bool,
    pub command: Vec<String>,
    pub work_dir: String,
    pub env: Vec<(String, String)>,
    /// The SHA-256 of the service package version its files come from: the worker
    /// starts it from its own unpacked copy (sent before with `PackageChunk`s), which
    /// is `${SOAM_DEPLOY_DIR}` there.
    pub package: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    Start {
        inst: u64,
        app: String,
        service: ServiceSpec,
    },
    /// Whole service-protocol messages (`soam_service::wire`) for an instance, in
    /// order, as its service reads them.
    Input {
        inst: u64,
        bytes: Bytes,
    },
    Kill {
        inst: u64,
    },
    /// Stop taking work: stop every instance, end the job, exit.
    Stop,
    /// A piece of a service package version, in order; with `last` the worker checks
    /// it is whole (its SHA-256) and unpacks it into its node's cache, before it reads
    /// the next message (so a `Start` sent after it finds it there).
    PackageChunk {
        sha256: String,
        data: Bytes,
        last: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// First message: the token the agent gave this worker (its proof of who it
    /// is), where it runs and what it may use there.
    Hello {
        token: String,
        node: String,
        cpus: u32,
        job: u64,
        pid: u32,
    },
    /// Whole service-protocol replies of an instance, in order, as its service wrote
    /// them (for exec tasks, as the worker encoded their results).
    Output {
        inst: u64,
        bytes: Bytes,
    },
    Exited {
        inst: u64,
        why: String,
    },
}
