//! `soam-worker`: started by the agent as a Slurm job step, one per node; not for
//! people to run (see `soam_agent::worker`).

pub fn main() -> i32 {
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
