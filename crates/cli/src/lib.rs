//! The soam commands. Each binary is a thin `main` over one module here, so the
//! definitions can also generate man pages and completions ([`docs`]) and be tested.
//!
//! Conventions shared by every command (see [`common`]): exit 0 on success, 1 on a
//! failed operation with a one-line reason on stderr, 2 on bad usage (clap's own);
//! `--socket`/`SOAM_SOCKET`; `--json` wherever state is printed.

/// `println!` that hands its error to the caller (a closed pipe then ends the command
/// quietly with 0, through `common::run`) instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

pub mod agentlog;
pub mod cells;
pub mod changed;
pub mod common;
pub mod complete;
pub mod docs;
pub mod events;
pub mod output;
pub mod replay;
pub mod rows;
pub mod session;
pub mod soamcontrol;
pub mod soamd;
pub mod soamdeploy;
pub mod soamreg;
pub mod soamunreg;
pub mod soamview;
pub mod soamworker;
pub mod top;
