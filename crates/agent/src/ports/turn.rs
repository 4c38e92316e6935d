//! One turn of the core and what it may write itself: the only thread-local state of
//! the agent.
//!
//! A task's round trip is a reply and a message to the service, then an output; each
//! saves a writer task's wake-up (a thread hand-off) when the core writes it itself.
//! So during a turn (between [`begin`] and [`end`], on the core's thread only) the
//! first few writes may be direct ([`direct_write`]): an instance's pipe is written at
//! once, and a connection's frames are staged here and sent as one write per
//! connection at the end of the turn, after the turn's messages to services are on
//! their way. Under load the writer tasks do the rest, on the other thread, while the
//! core goes on. Outside a turn (another thread, a store callback) nothing is direct.

use soam_proto::frame::Parts;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Writes a turn of the core may make itself.
const DIRECT_WRITES: u32 = 4;

/// Most bytes staged for one connection in a turn; larger frames go to its writer task.
pub const STAGE_MAX: usize = 64 << 10;

/// A connection's socket, as a staged write sees it.
pub trait StagedWriter: Send + Sync {
    /// Writes `parts` (no large payloads) without blocking; what the socket does not
    /// take goes to the connection's writer task.
    fn write_now(&self, parts: &Parts);
}

#[derive(Default)]
struct Staged {
    /// Connections with frames waiting, in the order they were first written to, by
    /// the address of their writer; at most [`DIRECT_WRITES`] a turn, so a lookup is a
    /// short scan.
    conns: Vec<(Arc<dyn StagedWriter>, Parts)>,
    /// Buffers of earlier turns, kept for the next.
    spare: Vec<Parts>,
}

thread_local! {
    /// Direct writes left in the core's current turn; 0 on every other thread and
    /// between turns.
    static LEFT: Cell<u32> = const { Cell::new(0) };
    /// What the core wrote to connections in its current turn, sent at [`end`]. Empty
    /// on every other thread and between turns.
    static STAGED: RefCell<Staged> = RefCell::default();
}

/// Starts a turn of the core on this thread.
pub fn begin() {
    LEFT.set(DIRECT_WRITES);
}

/// Ends the turn: sends what was staged, one write per connection, and allows no more
/// direct writes on this thread.
pub fn end() {
    send_staged();
    LEFT.set(0);
}

/// Whether the caller, the core in a turn, may write a small message at once itself
/// rather than queue it for a writer task; counts the write if so.
pub fn direct_write() -> bool {
    LEFT.with(|d| {
        let left = d.get();
        d.set(left.saturating_sub(1));
        left > 0
    })
}

/// Lets this thread write directly `n` more times, as the core may in a turn.
#[cfg(test)]
pub fn allow_direct_writes(n: u32) {
    LEFT.set(n);
}

fn same(a: &Arc<dyn StagedWriter>, key: *const ()) -> bool {
    std::ptr::eq(Arc::as_ptr(a) as *const (), key)
}

/// Runs `fill` on the buffer staged for the connection whose writer is at `key`, if
/// `size` more bytes may be staged for it: not outside the core's turn, not past the
/// turn's direct writes, not over [`STAGE_MAX`]. `writer` gives the connection's writer
/// the first time it stages in a turn. None: nothing was staged.
pub fn stage<R>(
    key: *const (),
    size: usize,
    writer: impl FnOnce() -> Arc<dyn StagedWriter>,
    fill: impl FnOnce(&mut Parts) -> R,
) -> Option<R> {
    STAGED.with(|st| {
        let mut st = st.borrow_mut();
        let at = match st.conns.iter().position(|(w, _)| same(w, key)) {
            Some(at) if st.conns[at].1.buf.len() + size <= STAGE_MAX => at,
            Some(_) => return None,
            None if direct_write() => {
                let parts = st.spare.pop().unwrap_or_default();
                st.conns.push((writer(), parts));
                st.conns.len() - 1
            }
            None => return None,
        };
        Some(fill(&mut st.conns[at].1))
    })
}

/// Writes what is staged for the connection whose writer is at `key` now, ahead of a
/// frame that must go through its writer task.
pub fn unstage(key: *const ()) {
    STAGED.with(|st| {
        let Staged { conns, spare } = &mut *st.borrow_mut();
        if let Some(at) = conns.iter().position(|(w, _)| same(w, key)) {
            let (w, parts) = conns.remove(at);
            w.write_now(&parts);
            recycle(spare, parts);
        }
    });
}

/// Sends what the core staged in this turn, one write per connection.
pub fn send_staged() {
    STAGED.with(|st| {
        let Staged { conns, spare } = &mut *st.borrow_mut();
        for (w, parts) in conns.drain(..) {
            w.write_now(&parts);
            recycle(spare, parts);
        }
    });
}

/// Keeps a staging buffer for a later turn, unless a large listing made it large.
fn recycle(spare: &mut Vec<Parts>, mut parts: Parts) {
    parts.clear();
    if parts.buf.capacity() <= 2 * STAGE_MAX {
        spare.push(parts);
    }
}
