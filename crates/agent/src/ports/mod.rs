//! The ports: everything the core and the agent's I/O exchange, and nothing else.
//!
//! The core (`crate::core`) holds state and decides; the I/O modules (`server` for
//! client sockets, `instance` for service processes, `slurm` and `worker` for the
//! cluster, `launch` for the effects) move bytes and processes. Neither imports the
//! other: both import this module.
//!
//! Data flow, one turn of the core (`crate::reactor`):
//! - in: connections, instance tasks, timers, the store's commit callbacks and Slurm
//!   post a [`CoreMsg`] to the [`Inbox`];
//! - the core handles the turn's messages; what it sends a client goes through that
//!   connection's [`Outbox`], what it sends a service through the instance's
//!   [`InstLink`]; the turn's small writes are staged and sent at its end ([`turn`]);
//! - every effect beyond those (start an instance, a worker or an allocation, cancel a
//!   job, set a timer, trim memory, run a blocking read) is asked of the [`Launcher`],
//!   which the agent implements with processes and tokio (`crate::launch`) and the
//!   core's tests with a recording fake.

mod inst;
mod launcher;
mod msg;
pub mod turn;

pub use inst::{EventSink, InstCmd, InstEvent, InstLink, InstanceIn, NeverStarted, OutMsg, Owner, each_message};
pub use launcher::{Launcher, WorkerTx};
pub use msg::{ClusterEvent, CoreMsg, Inbox, JobStatus, Timer, inbox};

use soam_proto::msg::AgentFrame;
use std::sync::Arc;

/// A client connection, as the agent numbers them.
pub type ConnId = u64;
/// A service instance, as the agent numbers them (local or on a worker).
pub type InstId = u64;
/// The agent's own handle for a session, unique across applications (cheap to copy into
/// every in-flight task entry, unlike `APP:ID`).
pub type Sid = u64;

/// What the core may do with one client connection: the server's socket writer in the
/// agent, a recording buffer in the core's tests.
pub trait Client: Send + Sync {
    /// Sends `f` (staged for the end of the turn when it may be, see [`turn`]); false
    /// if the connection is gone.
    fn send(&self, f: AgentFrame) -> bool;
    /// Sends the frame answering request `id`, encoded by the caller (a page of a
    /// listing), as [`Client::send`] sends a reply.
    fn send_encoded(&self, id: u64, frame: Vec<u8>) -> bool;
    /// More is queued than the connection may hold: send it nothing optional.
    fn full(&self) -> bool;
    /// True if there is room now; if not, the core gets [`CoreMsg::Writable`] once
    /// there is.
    fn room_or_notify(&self) -> bool;
}

/// The core's handle on one connection; cloned into store callbacks that reply after a
/// commit.
pub type Outbox = Arc<dyn Client>;
