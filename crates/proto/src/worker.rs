//! What the agent and a node-side worker (`soam-worker`, one per node of a Slurm
//! allocation) say to each other over the job step's stdio, which Slurm forwards and
//! authenticates (munge): no port is opened anywhere.
//!
//! Framing is [`crate::frame`]'s; both sides coalesce what is queued into one write, so
//! many messages (many tasks' service-protocol traffic) share a syscall and a Slurm I/O
//! message. The agent addresses instances by its own instance ids; the worker starts
//! them on its node and relays their service-protocol messages unchanged.

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
}

/// One service-protocol message for an instance (see `soam_service::wire`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceMsg {
    pub kind: u8,
    pub session: u64,
    pub task: u64,
    pub attempt: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    Start {
        inst: u64,
        app: String,
        service: ServiceSpec,
    },
    Send {
        inst: u64,
        msgs: Vec<ServiceMsg>,
    },
    Kill {
        inst: u64,
    },
    /// Stop taking work: stop every instance, end the job, exit.
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// First message: where the worker runs and what it may use there.
    Hello {
        node: String,
        cpus: u32,
        job: u64,
        pid: u32,
    },
    Reply {
        inst: u64,
        kind: u8,
        status: u8,
        task: u64,
        attempt: u32,
        payload: Bytes,
    },
    Exited {
        inst: u64,
        why: String,
    },
}
