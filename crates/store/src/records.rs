//! What one row of each table holds. Changing a field is a store format change: add new
//! fields at the end with defaults, never reorder (postcard is positional).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRecord {
    pub name: String,
    /// The profile text as registered, re-parsed at start (so defaults stay the code's).
    pub profile: String,
    /// Absolute path of the file it came from: relative paths in it resolve there.
    pub source: String,
    pub enabled: bool,
    pub registered_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredSessionState {
    Open,
    Suspended,
    Reconnecting,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub app: String,
    pub id: u64,
    pub name: Option<String>,
    pub tag: Option<String>,
    pub session_type: String,
    pub state: StoredSessionState,
    /// Whether a client held it when this was written (decides `reconnecting` at recovery).
    pub attached: bool,
    pub recoverable: bool,
    pub direct: bool,
    pub common_data: Bytes,
    pub created_ms: u64,
    pub owner_uid: u32,
    pub next_task: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredTaskState {
    Pending,
    Done,
    Error,
    Canceled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub state: StoredTaskState,
    pub attempts: u32,
    /// Failed attempts so far, against taskRetryLimit (kept across a restart).
    pub failures: u32,
    pub input: Bytes,
    /// Output (done) or failure message (error/canceled), while kept.
    pub result: Option<Bytes>,
    pub delivered: bool,
    pub submitted_ms: u64,
    pub started_ms: u64,
    pub ended_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistorySession {
    pub app: String,
    pub id: u64,
    pub name: Option<String>,
    pub tag: Option<String>,
    pub session_type: String,
    /// "closed" or "aborted".
    pub state: String,
    pub reason: Option<String>,
    pub created_ms: u64,
    pub ended_ms: Option<u64>,
    pub owner_uid: u32,
    pub priority: u32,
    pub done: u64,
    pub error: u64,
    pub canceled: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryTask {
    pub task: u64,
    /// "done", "error" or "canceled".
    pub state: String,
    pub attempts: u32,
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub session: HistorySession,
    /// Per persistTaskHistory: all tasks, only those in error, or none.
    pub tasks: Vec<HistoryTask>,
}
