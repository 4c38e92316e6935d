//! The client side of soam, used by every command and usable by any Rust program.
//!
//! Data flow: [`Client::connect`] finds the agent's socket (starting `soamd` when none
//! answers, unless `SOAM_NO_AUTOSTART=1`), runs the handshake, and splits into a writer
//! task (requests out, coalesced) and a reader task (replies matched to their request by
//! id, events into a channel; a page of sessions goes to its caller as the frame it came
//! in, read there with its text borrowed: [`each_session_page`]). Requests can be
//! pipelined: [`Client::send`] returns a future for the reply without waiting for it.
//! [`Dedup`] drops outputs already seen, as at-least-once delivery means a reopened
//! session may resend some.
//!
//! Modules by role: `conn` (the connection and its tasks), `error`, `options` (where the
//! agent is), `autostart` (starting `soamd`), `trust` (whose agent is talked to),
//! `paging` and `walk` (listings in pages), `dedup` (duplicates and batches), and the
//! workflows above a connection: `session` (a session that survives reconnects) and
//! `journal` (submits kept until acknowledged).

mod autostart;
mod conn;
mod dedup;
mod error;
pub mod journal;
mod options;
mod paging;
pub mod session;
mod trust;
mod walk;

pub use conn::Client;
pub(crate) use conn::unexpected;
pub use dedup::{Dedup, batches};
pub use error::ClientError;
pub use options::ConnectOptions;
pub use paging::SessionPage;
pub use walk::{each_page, each_session_page};

#[cfg(test)]
mod tests;
