//! The contract between soam's commands and its agent.
//!
//! Data flow: a client opens the agent's Unix socket, sends a [`msg::Hello`] frame and
//! gets a [`msg::Welcome`] (or a refusal naming both versions). After that it sends
//! [`msg::ClientFrame`]s, each a request with a client-chosen id, and reads
//! [`msg::AgentFrame`]s: replies carrying that id, plus unsolicited events (task outputs,
//! "your session was taken over"). Every frame is a little-endian `u32` length followed by
//! a postcard body ([`frame`]); task payloads are `Bytes`, which postcard writes as raw
//! bytes, and one frame carries many tasks.
//!
//! The crate also holds what both sides must agree on without talking: where the socket
//! and store live ([`paths`]) and how `APP:ID[:TASK]` addresses are written ([`addr`]).

pub mod addr;
pub mod frame;
pub mod msg;
pub mod paths;
pub mod sock;
pub mod text;
pub mod worker;

pub use addr::{SessionKey, SessionRef, TaskRef};

/// The protocol this release speaks. Bumped when [`msg`] gains something (a request, a
/// reply, an event, an enum value: always appended) and when a struct in it changes
/// (which breaks peers: see docs/compatibility.md). `tests/compat.rs` pins the layout.
pub const PROTOCOL_VERSION: u32 = 7;

/// The oldest client protocol the agent still serves: every message such a client can
/// send means the same to this release.
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// The agent's and commands' release, shown by `soamcontrol agent status`.
pub const SOAM_VERSION: &str = env!("CARGO_PKG_VERSION");
