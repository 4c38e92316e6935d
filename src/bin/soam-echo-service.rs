//! An example persistent-mode service written with the Rust service library: it answers
//! each task with its input (`--noop`: with nothing), and uses common data as a prefix.
//! Used by the README's example profile, the tests and the benchmarks.

use soam_service::{Failure, Service, TaskContext};

struct Echo {
    noop: bool,
    prefix: Vec<u8>,
}

impl Service for Echo {
    fn session_enter(&mut self, _session: u64, common_data: &[u8]) -> Result<(), Failure> {
        self.prefix = common_data.to_vec();
        Ok(())
    }
    fn session_update(&mut self, _session: u64, common_data: &[u8]) -> Result<(), Failure> {
        self.prefix = common_data.to_vec();
        Ok(())
    }
    fn invoke(&mut self, _task: &TaskContext, input: &[u8]) -> Result<Vec<u8>, Failure> {
        if self.noop {
            return Ok(Vec::new());
        }
        let mut out = self.prefix.clone();
        out.extend_from_slice(input);
        Ok(out)
    }
}

fn main() -> std::io::Result<()> {
    let noop = std::env::args().any(|a| a == "--noop");
    soam_service::run(Echo { noop, prefix: Vec::new() })
}
