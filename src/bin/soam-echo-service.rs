//! An example persistent-mode service written with the Rust service library: it answers
//! each task with its input (`--noop`: with nothing), and uses common data as a prefix.
//! `--node`: the answer starts with the node it runs on (`$SLURMD_NODENAME`, else the
//! host name) and a space, to see where a cluster ran each task.
//! Used by the README's example profile, the tests and the benchmarks.

use soam_service::{Failure, Service, TaskContext};

struct Echo {
    noop: bool,
    /// `--node`: "NODE " before every answer.
    node: Vec<u8>,
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
        let mut out = self.node.clone();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(input);
        Ok(out)
    }
}

fn main() -> std::io::Result<()> {
    let noop = std::env::args().any(|a| a == "--noop");
    let mut node = Vec::new();
    if std::env::args().any(|a| a == "--node") {
        let name = std::env::var("SLURMD_NODENAME")
            .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()))
            .unwrap_or_default();
        node = format!("{name} ").into_bytes();
    }
    soam_service::run(Echo {
        noop,
        node,
        prefix: Vec::new(),
    })
}
