//! The lab: what measures and attacks soam, kept apart from the commands people run
//! (no product crate depends on this one).
//!
//! - [`soambench`]: the documented benchmark command (SPEC section 12), with
//!   [`floor`] (what the same round trip costs with no agent: the floor latency is
//!   measured against), [`bare`] (a minimal blocking client, to tell the client
//!   library's share from the agent's) and [`bench_python`] (the Python package's
//!   figures, SPEC section 13);
//! - `rounds`: what those measurements are made of (sessions, submits, collects, one-task
//!   round trips, a reported figure);
//! - [`attack`]: hostile clients speaking raw frames, for the benchmark's checks and
//!   the integration tests of limits and views.
//!
//! Binaries: `soambench`, and `soam-docgen` (the man pages and completions of every
//! command, soambench's included).

pub mod attack;
pub mod bare;
pub mod bench_python;
pub mod floor;
mod rounds;
pub mod soambench;

/// Every documented command: the product's ([`soam_cli::docs::commands`]) and soambench.
pub fn commands() -> Vec<clap::Command> {
    let mut all = soam_cli::docs::commands();
    all.push(soam_cli::common::with_examples(<soambench::Args as clap::CommandFactory>::command()));
    all
}
