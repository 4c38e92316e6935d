//! `soamd`: the agent in the foreground.

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "soamd",
    version,
    about = "The soam agent: keeps profiles, sessions and tasks and runs them on service instances",
    after_help = crate::common::exit::after_help("Runs in the foreground until SIGTERM, SIGINT or `soamcontrol agent shutdown`.\n\
Settings: config file < environment (SOAM_SLOTS, SOAM_HOME, SOAM_SOCKET) < flags.\n\nExamples:\n  soamd --slots 4\n  SOAM_HOME=/tmp/soam soamd -v")
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

/// Process-wide settings the agent wants before it starts threads: buffers of 1 MiB
/// and more (large frames being read, big payloads) get their own mappings, returned
/// to the system when freed. glibc's default raises that threshold as such buffers are
/// freed, after which they come from per-thread arenas that keep the memory: eight
/// peers sending maximal frames then left the agent 60+ MiB larger for good. And the
/// soft limit on open files is raised to the hard one, so `maxConnections` and not the
/// descriptor limit is what refuses clients.
fn process_setup() {
    // SAFETY: mallopt and the rlimit calls take plain values; this runs before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The log goes to the rotated file in the data folder, which `soamcontrol agent log`
/// reads, and to stderr as well unless stderr is that file (an agent a command started):
/// in a terminal, or under systemd's journal, it shows there too.
fn init_logging(verbose: u8, log: soam_agent::logfile::RotatingLog) {
    use tracing_subscriber::fmt;
    use tracing_subscriber::prelude::*;
    let filter = crate::common::log_filter(verbose, "info");
    let to_stderr = !log.is_stderr();
    let file = fmt::layer()
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .with_target(false);
    let stderr = to_stderr.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(crate::common::stderr_colour())
            .with_target(false)
    });
    let _ = tracing_subscriber::registry().with(filter).with(file).with(stderr).try_init();
}

pub fn main() -> i32 {
    process_setup();
    // Before any thread: listenfd clears LISTEN_PID/LISTEN_FDS from the environment, so
    // services do not see them, and marks the socket close-on-exec.
    let activated = match listenfd::ListenFd::from_env().take_unix_listener(0) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("soamd: the socket systemd passed cannot be used: {e}");
            return 1;
        }
    };
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args = Args::parse();
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
    match soam_agent::open_log(&cfg) {
        Ok(log) => init_logging(args.verbose, log),
        Err(e) => {
            eprintln!("soamd: {e}");
            return 1;
        }
    }
    for note in &cfg.notes {
        tracing::warn!("{note}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soamd: cannot start: {e}");
            return 1;
        }
    };
    match rt.block_on(soam_agent::run(cfg, activated)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("soamd: {e}");
            1
        }
    }
}
