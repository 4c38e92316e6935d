//! `soamd`: the agent in the foreground.

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "soamd",
    version,
    about = "The soam agent: keeps profiles, sessions and tasks and runs them on service instances",
    after_help = "Runs in the foreground until SIGTERM, SIGINT or `soamcontrol agent shutdown`.\n\
Settings: config file < environment (SOAM_SLOTS, SOAM_HOME, SOAM_SOCKET) < flags.\n\nExamples:\n  soamd --slots 4\n  SOAM_HOME=/tmp/soam soamd -v"
)]
pub struct Args {
    /// Service instances that may run at once (default: number of CPUs)
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
    /// Agent config file (default: $XDG_CONFIG_HOME/soam/soamd.yaml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve every user (socket 0666); sessions belong to the uid that created them
    #[arg(long)]
    pub shared: bool,
    /// More log output (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

pub fn main() -> i32 {
    let args = Args::parse();
    crate::common::init_logging(args.verbose.max(1));
    let overrides = soam_agent::Overrides {
        config: args.config,
        slots: args.slots,
        shared: args.shared,
    };
    let cfg = match soam_agent::AgentConfig::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soamd: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soamd: cannot start: {e}");
            return 1;
        }
    };
    match rt.block_on(soam_agent::run(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("soamd: {e}");
            1
        }
    }
}
