//! `soam-worker`: started by the agent as a Slurm job step, one per node; not for
//! people to run (see `soam_agent::worker`).

use clap::Parser;

/// The soam worker: runs one Slurm node's service instances and exec tasks for soamd.
#[derive(Debug, Parser)]
#[command(
    name = "soam-worker",
    version,
    long_about = "The soam worker: runs one Slurm node's service instances and exec tasks for soamd, \
                  relaying their traffic over its connection to the agent. soamd starts it as a job \
                  step (one per node of an allocation, docs/cluster.md) with SOAM_WORKER_CONNECT \
                  set; it is not run by hand."
)]
struct Args {}

pub fn main() -> i32 {
    // --help and --version answer (exit 0); any argument is a usage error (exit 2).
    Args::parse();
    crate::common::init_logging(0);
    // One thread: the relay loop and the instances' I/O tasks wake each other without
    // crossing threads (measured: most of a multi-threaded worker's time went to that).
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soam-worker: cannot start: {e}");
            return 1;
        }
    };
    match rt.block_on(soam_agent::worker::run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("soam-worker: {e}");
            1
        }
    }
}
