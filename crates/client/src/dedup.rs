//! Duplicates of at-least-once delivery, and submits cut to the frame's size.

use bytes::Bytes;
use soam_proto::frame;

/// Remembers which task ids were seen, so duplicates of at-least-once delivery are
/// dropped. A bitmap: one bit per task id.
#[derive(Debug, Default)]
pub struct Dedup {
    bits: Vec<u64>,
}

impl Dedup {
    /// True the first time `task` is seen.
    pub fn first(&mut self, task: u64) -> bool {
        let (w, b) = ((task / 64) as usize, task % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let new = self.bits[w] & (1 << b) == 0;
        self.bits[w] |= 1 << b;
        new
    }
}

/// Splits inputs into `Submit`-sized batches (count and bytes), keeping order.
pub fn batches(inputs: Vec<Bytes>, max_tasks: usize) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for i in inputs {
        if !cur.is_empty() && (cur.len() >= max_tasks || bytes + i.len() + 16 > frame::BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += i.len() + 16;
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
