//! What the core and a service instance exchange: messages for the service
//! ([`InstCmd`]), what comes back ([`InstEvent`]), and the way in ([`InstanceIn`]).

use super::InstId;
use bytes::Bytes;
use soam_service::wire::{self, Kind, Message, Status};
use std::sync::Arc;

/// One message for the service.
#[derive(Debug, Clone)]
pub struct OutMsg {
    pub kind: Kind,
    pub session: u64,
    pub task: u64,
    pub attempt: u32,
    pub payload: Bytes,
}

#[derive(Debug)]
pub enum InstCmd {
    Send(Vec<OutMsg>),
    /// Whole service-protocol messages, already encoded (what a worker relays).
    Raw(Bytes),
    Kill,
}

#[derive(Debug)]
pub enum InstEvent {
    Reply {
        kind: Kind,
        status: Status,
        task: u64,
        attempt: u32,
        /// Its control code (`wire::CODED`), 0 if it gives none.
        code: i32,
        payload: Bytes,
    },
    /// Whole service-protocol replies, as the service wrote them (a worker's relay).
    Output(Bytes),
    /// The process is gone (or never started); `why` says how.
    Exited { why: String },
}

/// Where an instance's events go: the core's inbox, as [`super::CoreMsg::Instance`].
pub type EventSink = Arc<dyn Fn(InstId, InstEvent) + Send + Sync>;

/// Whose process a child is. `None`: the agent's own user (a one-user agent, or a
/// session of the agent's user).
pub type Owner = Option<Arc<crate::identity::RunAs>>;

/// The way to one instance: its process's pipe (`instance::InstTx`), a relay to its
/// worker, or a recording queue in the core's tests.
pub trait InstanceIn: Send + Sync {
    /// Queues `cmd` for the instance; false if it is gone.
    fn send(&self, cmd: InstCmd) -> bool;
    /// Sends `msgs` to the service, written at once when the turn's budget and the
    /// pipe allow (see [`super::turn`]).
    fn send_msgs(&self, msgs: Vec<OutMsg>) {
        let _ = self.send(InstCmd::Send(msgs));
    }
    /// The instance no longer takes commands (its task ended).
    fn is_closed(&self) -> bool;
}

pub type InstLink = Box<dyn InstanceIn>;

/// The link of an instance that never started (its package is not deployed, say): it
/// takes nothing. The core records the instance and ends it at once with the reason,
/// as it ends any instance that could not start.
pub struct NeverStarted;

impl InstanceIn for NeverStarted {
    fn send(&self, _: InstCmd) -> bool {
        false
    }
    fn is_closed(&self) -> bool {
        true
    }
}

/// Calls `f` with each whole service-protocol message in `bytes` and its payload.
pub fn each_message(bytes: &Bytes, mut f: impl FnMut(&Message, Bytes)) -> std::io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 4) else {
            return Err(std::io::Error::other("service messages cut inside a length"));
        };
        let len = wire::check_len(u32::from_le_bytes([len[0], len[1], len[2], len[3]]))?;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            return Err(std::io::Error::other("service messages cut inside a message"));
        };
        let m = wire::parse(body)?;
        f(&m, bytes.slice(at + 4 + wire::payload_at(body)..at + 4 + len));
        at += 4 + len;
    }
    Ok(())
}
