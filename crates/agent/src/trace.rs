//! Timestamps of each step of a task's round through the agent, for measuring what
//! every hand-off between its tasks costs (docs/benchmarks.md, "What each step of a
//! round costs"). Built only with the `round-trace` feature: otherwise [`mark`] is
//! nothing. With it, every mark goes into a fixed buffer, and each tick of the core
//! appends the marks made since the last one to the file named by `SOAM_TRACE` (one
//! `STEP NANOS` line a mark), which `contrib/bench/round_trace.py` reads.

/// A step of a round, in the order a round takes them.
#[derive(Clone, Copy)]
pub enum Step {
    /// A connection's reader has decoded a `Submit`, and hands it to the core.
    SubmitRead = 0,
    /// The core takes the `Submit` from its inbox.
    SubmitHandled = 1,
    /// The `Invoke` is written to the service's pipe by the core itself.
    InvokeWritten = 2,
    /// An instance's reader has the service's reply, and hands it to the core.
    ReplyRead = 3,
    /// The core takes the reply from its inbox.
    ReplyHandled = 4,
    /// What the turn staged for a client (outputs) went into its socket.
    StagedSent = 5,
    /// The core's task woke with something in its inbox.
    TurnStart = 6,
}

#[cfg(feature = "round-trace")]
mod on {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Instant;

    /// Marks kept: about 20 a round, so some 100,000 rounds.
    const N: usize = 1 << 21;
    static BUF: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
    static AT: AtomicUsize = AtomicUsize::new(0);
    /// Marks already written out: a tick writes only the newer ones, so the core's
    /// turn that ticks stays short while rounds are being timed.
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    static T0: OnceLock<Instant> = OnceLock::new();

    pub fn mark(step: super::Step) {
        let t = T0.get_or_init(Instant::now).elapsed().as_nanos() as u64;
        let i = AT.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = BUF.get(i) {
            b.store(((step as u64) << 56) | t, Ordering::Relaxed);
        }
    }

    pub fn dump() {
        use std::io::Write;
        let Ok(path) = std::env::var("SOAM_TRACE") else { return };
        let (from, to) = (WRITTEN.load(Ordering::Relaxed), AT.load(Ordering::Relaxed).min(N));
        if from == to {
            return;
        }
        let mut s = String::new();
        for b in &BUF[from..to] {
            let v = b.load(Ordering::Relaxed);
            s += &format!("{} {}\n", v >> 56, v & ((1 << 56) - 1));
        }
        // The first write starts the file afresh; later ones add to it.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(from > 0)
            .truncate(from == 0)
            .open(&path);
        match file.and_then(|mut f| f.write_all(s.as_bytes())) {
            Ok(()) => WRITTEN.store(to, Ordering::Relaxed),
            Err(e) => tracing::warn!("round trace: {path}: {e}"),
        }
    }
}

#[cfg(feature = "round-trace")]
pub use on::{dump, mark};

#[cfg(not(feature = "round-trace"))]
#[inline(always)]
pub fn mark(_: Step) {}

#[cfg(not(feature = "round-trace"))]
#[inline(always)]
pub fn dump() {}
