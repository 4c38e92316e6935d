//! What a persistent service writes on stderr. Each line goes to the agent's log tagged
//! `service APP/INSTANCE`, and the last few are kept: a service that fails at start (a
//! script that does not exist, an import that fails) then says why in the session's
//! error and in `soamview`, not only in the log.

use soam_proto::text::escape;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::ChildStderr;
use tokio::task::JoinHandle;

/// Lines kept for the error message.
const KEEP_LINES: usize = 4;
/// A longer line is cut there (in the log and in the tail): a service writing without
/// newlines must not make the agent hold its output.
const MAX_LINE: u64 = 4096;
/// Bytes of one line in the tail: the error is one line on a terminal.
const TAIL_LINE: usize = 300;

/// Reads a service's stderr until it ends.
pub struct Watch {
    tail: Arc<Mutex<VecDeque<String>>>,
    reader: JoinHandle<()>,
}

/// Starts reading `stderr` of instance `id` of `app`.
pub fn watch(stderr: ChildStderr, app: &str, id: u64) -> Watch {
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(KEEP_LINES)));
    let label = format!("service {app}/{id}");
    let reader = tokio::spawn({
        let tail = tail.clone();
        async move {
            let mut r = BufReader::new(stderr);
            let mut buf = Vec::with_capacity(256);
            loop {
                buf.clear();
                match (&mut r).take(MAX_LINE).read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = escape(text.trim_end());
                if line.is_empty() {
                    continue;
                }
                tracing::info!("{label}: {line}");
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == KEEP_LINES {
                    t.pop_front();
                }
                t.push_back(line.into_owned());
            }
        }
    });
    Watch { tail, reader }
}

impl Watch {
    /// The last lines, once the pipe has ended or `wait` has passed (a child of the
    /// service may hold the pipe open after the service itself has gone), joined with
    /// " | " and prefixed "stderr: "; empty if it wrote nothing.
    pub async fn finish(mut self, wait: Duration) -> String {
        if tokio::time::timeout(wait, &mut self.reader).await.is_err() {
            self.reader.abort();
        }
        let t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = t.iter().map(|l| cut(l, TAIL_LINE)).collect();
        format!("stderr: {}", lines.join(" | "))
    }
}

/// `s` up to `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
