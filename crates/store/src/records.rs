//! What one row of each table holds, and how a row is encoded.
//!
//! A row is one version byte followed by the record in postcard (positional, compact:
//! tasks are the hot path). Changing a record means a new version of its kind: bump
//! [`Record::VERSION`], keep the old layout as its own struct, and teach
//! [`Record::upgrade`] to read it; rows are then upgraded as they are read, and the
//! store's format number (see the crate docs) says which kinds a release may meet.
//! Never reorder or remove a field in place.

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

/// What the agent did under a client's request id (`Request::Once`), kept while the
/// session is open so a repeated request gets the first result instead of a second go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestRecord {
    /// The session was created by it.
    Created,
    /// Tasks `first..first+count` were accepted by it.
    Submitted { first: u64, count: u64 },
}

/// A kind of row: its current version and how older versions are read.
pub trait Record: Serialize + serde::de::DeserializeOwned {
    /// Named in errors.
    const KIND: &'static str;
    /// The version this release writes.
    const VERSION: u8;
    /// Reads an older version's bytes (`None`: not a version this release knows).
    fn upgrade(_version: u8, _bytes: &[u8]) -> Option<Result<Self, postcard::Error>> {
        None
    }
}

macro_rules! record {
    ($t:ty, $kind:literal) => {
        impl Record for $t {
            const KIND: &'static str = $kind;
            const VERSION: u8 = 1;
        }
    };
}
record!(AppRecord, "app");
record!(SessionRecord, "session");
record!(TaskRecord, "task");
record!(HistoryRecord, "history");
record!(Vec<HistoryTask>, "task history");
record!(RequestRecord, "request");

/// Why a row could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("corrupt {kind} record: {err}")]
    Corrupt { kind: &'static str, err: String },
    #[error("{kind} record of version {version}, newer than this release reads ({known})")]
    Newer { kind: &'static str, version: u8, known: u8 },
}

/// The bytes of one row.
pub fn encode<T: Record>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, vec![T::VERSION]).expect("records always encode")
}

/// The bytes of a row of kind `T` from a value that serialises like it (a slice for a
/// `Vec`).
pub fn encode_as<T: Record, U: Serialize + ?Sized>(v: &U) -> Vec<u8> {
    postcard::to_extend(v, vec![T::VERSION]).expect("records always encode")
}

/// One row back, from any version this release knows.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, DecodeError> {
    let corrupt = |e: postcard::Error| DecodeError::Corrupt {
        kind: T::KIND,
        err: e.to_string(),
    };
    let Some((&version, body)) = bytes.split_first() else {
        return Err(DecodeError::Corrupt {
            kind: T::KIND,
            err: "empty row".into(),
        });
    };
    if version == T::VERSION {
        return postcard::from_bytes(body).map_err(corrupt);
    }
    if version > T::VERSION {
        return Err(DecodeError::Newer {
            kind: T::KIND,
            version,
            known: T::VERSION,
        });
    }
    match T::upgrade(version, body) {
        Some(r) => r.map_err(corrupt),
        None => Err(DecodeError::Corrupt {
            kind: T::KIND,
            err: format!("unknown version {version}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskRecord {
        TaskRecord {
            state: StoredTaskState::Pending,
            attempts: 0,
            failures: 0,
            input: Bytes::from_static(b"in"),
            result: None,
            delivered: false,
            submitted_ms: 1,
            started_ms: 0,
            ended_ms: 0,
        }
    }

    #[test]
    fn rows_carry_their_version_and_unknown_ones_are_refused() {
        let row = encode(&task());
        assert_eq!(row[0], TaskRecord::VERSION);
        assert_eq!(decode::<TaskRecord>(&row).unwrap().input, task().input);
        // A row from a later release: said so, not misread.
        let mut newer = row.clone();
        newer[0] = TaskRecord::VERSION + 1;
        let e = decode::<TaskRecord>(&newer).unwrap_err().to_string();
        assert!(e.contains("newer than this release reads"), "{e}");
        // A version this release never wrote, an empty row, a cut one.
        let mut unknown = row.clone();
        unknown[0] = 0;
        assert!(
            decode::<TaskRecord>(&unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown version 0")
        );
        assert!(decode::<TaskRecord>(&[]).unwrap_err().to_string().contains("empty row"));
        assert!(
            decode::<TaskRecord>(&row[..3])
                .unwrap_err()
                .to_string()
                .contains("corrupt task record")
        );
    }
}
