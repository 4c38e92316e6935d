//! The agent's persistent state: one redb file, one writer thread.
//!
//! Data flow: at start [`Store::open`] takes the file (redb's own lock refuses a second
//! agent), reads everything recovery needs into a [`Loaded`], and starts the writer
//! thread. From then on the agent hands batches of [`Write`]s to [`Store::submit`], which
//! never blocks the caller. The thread drains every batch waiting in its queue, applies
//! them in one write transaction and commits once (group commit), then runs each batch's
//! completion callback, which is how the agent delays an acknowledgement until what it
//! promises is on disk. Records are versioned postcard rows defined in [`records`].
//!
//! Where each part lives: `format` (the format at open: refuse, migrate or create),
//! `load` (what recovery reads at open), `writer` (the writer thread, group commit,
//! and the store's faults), this file (the tables, the [`Store`] handle the agent
//! holds, and the [`Reader`] of task history).
//!
//! Upgrades: the `meta` table holds the store's format number ([`FORMAT`]) and the
//! release that last wrote it. At open, before anything is served, a store of an older
//! format is migrated in one write transaction (a kill during it leaves the old store
//! as it was, and the next start migrates again); a store of a newer format is refused,
//! and nothing is written to it. Formats:
//!
//! - 0: releases up to 0.1.0 before 2026-11-22: no `meta` table, rows without a
//!   version byte (`tests/fixtures/store-v0.redb`).
//! - 1: `meta` table; every row starts with its record's version byte.
//! - 2: `meta` also holds `stored_bytes`, the bytes of every row's key and value as
//!   [`row_bytes`] counts them, kept by every commit in the same transaction. It is what
//!   `maxRecordBytes` (first named `maxStoreBytes`) limits. A new format because a format-1 release would write rows
//!   without counting them; it now refuses the file instead. Migrating from 1 counts
//!   every row once.
//! - 3: a `requests` table: the request ids (`Request::Once`) each open session was
//!   created or given tasks under, deleted with the session. A new format because an
//!   older release would leave them behind, counted, when their session ends.

mod format;
mod load;
pub mod records;
mod writer;

use format::*;
pub use format::{downgrade_to_format0, stamp_format};
pub use load::{Chunks, LoadedTasks};
use load::{decode, *};
pub use writer::release_freed_memory;
use writer::*;

use records::*;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
/// Next session id per application, so ids are never reused even after unregistering.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const SESSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("sessions");
const TASKS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("tasks");
/// Keyed by end time first so the newest history is a reverse range scan.
const HISTORY: TableDefinition<(u64, &str, u64), &[u8]> = TableDefinition::new("history");
/// Task history apart from the session summaries: a million-task session's history is
/// read when asked for, never loaded at start. Keyed (app, session, chunk): each row
/// holds `HISTORY_CHUNK` tasks, so ending a big session costs a few inserts, not one
/// per task.
const TASK_HISTORY: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("task_history");
const HISTORY_CHUNK: usize = 1024;
/// The store's own facts: "format" (u64, little-endian), "written_by" (text) and
/// "stored_bytes" (u64, little-endian).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Keyed (app, session, request id): what the agent did under a client's request id.
const REQUESTS: TableDefinition<(&str, u64, u128), &[u8]> = TableDefinition::new("requests");

/// The store format this release writes; see the crate docs for the list.
pub const FORMAT: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is in use by another process")]
    Locked { path: PathBuf },
    #[error("store: {0}")]
    Db(String),
    #[error("store: the writer thread has stopped")]
    Stopped,
    #[error(
        "the store {path} has format {format} (written by soam {by}); this release ({ours}) reads formats up to {FORMAT}: run the newer soamd, or move the store aside; it was not changed"
    )]
    Newer {
        path: PathBuf,
        format: u64,
        by: String,
        ours: &'static str,
    },
}

impl StoreError {
    fn db(e: impl std::fmt::Display) -> StoreError {
        StoreError::Db(e.to_string())
    }
}

/// One change to the store.
#[derive(Debug, Clone)]
pub enum Write {
    PutApp(AppRecord),
    DeleteApp(String),
    SetCounter {
        app: String,
        next: u64,
    },
    PutSession(SessionRecord),
    /// The session's row and its request ids.
    DeleteSession {
        app: String,
        id: u64,
    },
    PutRequest {
        app: String,
        session: u64,
        request: u128,
        rec: RequestRecord,
    },
    /// One request id forgotten (the session remembers only its latest ones).
    DeleteRequest {
        app: String,
        session: u64,
        request: u128,
    },
    PutTasks {
        app: String,
        session: u64,
        tasks: Vec<(u64, TaskRecord)>,
    },
    DeleteTasks {
        app: String,
        session: u64,
    },
    PutHistory(HistoryRecord),
}

pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Told when the store starts failing (with the reason) and when it recovers (`None`).
pub type HealthListener = Box<dyn Fn(Option<String>) + Send>;

/// Whether a batch is answered at once when the store cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFault {
    /// A client waits for it: it is failed (and nothing of it is kept), so the client is
    /// told at once and what it asked for can be undone.
    Fail,
    /// The agent's own record of what happened (task ends, deliveries, session ends):
    /// kept in order and committed once the store can be written again; its completion
    /// runs then.
    Keep,
}

struct Batch {
    writes: Vec<Write>,
    done: Option<Done>,
    on_fault: OnFault,
}

/// The open database, replaced when the store is reopened after a fault (`None` while
/// it is being reopened, or could not be).
type Slot = Arc<std::sync::RwLock<Option<Arc<Database>>>>;

fn current(slot: &Slot) -> Result<Arc<Database>, StoreError> {
    slot.read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| StoreError::Db("the store is being reopened after a fault".into()))
}

enum Op {
    Batch(Batch),
    Listen(HealthListener),
    /// Commit whatever is queued, then stop.
    Close(mpsc::Sender<()>),
}

/// (application, session id)
pub type SessionKey = (String, u64);

/// Everything the agent needs from disk at start. Tasks come as `T`: what the caller
/// turned each stored record into as it was read ([`Store::open_with`]).
#[derive(Debug)]
pub struct Loaded<T = TaskRecord> {
    pub apps: Vec<AppRecord>,
    pub counters: Vec<(String, u64)>,
    pub sessions: Vec<SessionRecord>,
    /// Per session (app, id): its stored tasks in id order.
    pub tasks: LoadedTasks<T>,
    /// Newest first, at most `HISTORY_LOADED`.
    pub history: Vec<HistoryRecord>,
    /// Per session (app, id): the request ids it remembers, in no particular order.
    pub requests: Vec<(SessionKey, Vec<(u128, RequestRecord)>)>,
}

/// How much history the agent keeps in memory for `soamview history`.
pub const HISTORY_LOADED: usize = 10_000;

pub struct Store {
    /// Shared with the writer thread: redb serves reads beside a write.
    db: Slot,
    tx: mpsc::Sender<Op>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    /// The committed `stored_bytes`, set by the writer after each commit.
    stored: Arc<AtomicU64>,
    /// Commits the writer has done since the store was opened.
    commits: Arc<AtomicU64>,
}

/// The bytes a row counts for in `stored_bytes`: the text in its key, 8 for each integer
/// in its key, and its value.
pub fn row_bytes(key_text: usize, key_ints: usize, value: usize) -> u64 {
    (key_text + 8 * key_ints + value) as u64
}

/// The most a new pending task's row can add to `stored_bytes`, for limits checked
/// before its record exists (`tests` below checks the bound against real records).
pub fn new_task_bytes(app: &str, input: usize) -> u64 {
    row_bytes(app.len(), 2, input + TASK_RECORD_OVERHEAD)
}

/// The most a `requests` row adds to `stored_bytes`, besides its application's name:
/// three integers in its key, and a version byte, a variant and two varints at their
/// widest.
pub const REQUEST_ROW_BYTES: u64 = 8 * 3 + 1 + 1 + 2 * 10;

/// A pending task record's bytes beyond its input: version, state, flags, varint
/// counters and lengths at their widest, three times.
const TASK_RECORD_OVERHEAD: usize = 49;

impl Store {
    /// Opens (or creates) the store. `cache_bytes` bounds redb's page cache (its own
    /// default, 1 GiB, would be most of a small agent's memory).
    pub fn open(path: &Path, cache_bytes: usize) -> Result<(Store, Loaded), StoreError> {
        Store::open_with(path, cache_bytes, |t| t)
    }

    /// As [`Store::open`], each stored task handed to `convert` as it is read, so that
    /// only what the caller keeps of it is ever held: every record decoded first and
    /// converted after held a store's tasks twice over at the peak (docs/benchmarks.md).
    pub fn open_with<T: Send>(
        path: &Path,
        cache_bytes: usize,
        convert: impl Fn(TaskRecord) -> T + Sync,
    ) -> Result<(Store, Loaded<T>), StoreError> {
        let locked = |e: redb::DatabaseError| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_path_buf() },
            e => StoreError::db(e),
        };
        // The format is read without opening for writing: redb writes to a file it opens
        // for writing, and a newer release's store must be left exactly as it was. A file
        // that needs redb's crash repair cannot be opened read-only; it is repaired
        // first (redb's own journal, none of our rows) and read after.
        let before = if path.exists() {
            match Database::builder().open_read_only(path) {
                Ok(ro) => Some(read_format(&ro)?),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked { path: path.to_path_buf() }),
                Err(_) => None,
            }
        } else {
            None
        };
        if let Some(Stored::Format(f, by)) = &before {
            newer(path, *f, by)?;
        }
        let db = Database::builder().set_cache_size(cache_bytes).create(path).map_err(locked)?;
        match read_format(&db)? {
            Stored::Format(f, by) if f != FORMAT => {
                // Reached for a newer store only when it needed repair first.
                newer(path, f, &by)?;
                migrate(&db, f)?
            }
            _ => init_tables(&db)?,
        }
        let loaded = load(&db, &convert)?;
        let stored = Arc::new(AtomicU64::new(read_stored(&db)?));
        let db: Slot = Arc::new(std::sync::RwLock::new(Some(Arc::new(db))));
        let (tx, rx) = mpsc::channel();
        let wdb = db.clone();
        let (wpath, cache) = (path.to_path_buf(), cache_bytes);
        let wstored = stored.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let wcommits = commits.clone();
        let thread = std::thread::Builder::new()
            .name("soam-store".into())
            .spawn(move || Writer::new(wdb, wpath, cache, wstored, wcommits).run(rx))
            .map_err(StoreError::db)?;
        Ok((
            Store {
                db,
                tx,
                thread: Some(thread),
                path: path.to_path_buf(),
                stored,
                commits,
            },
            loaded,
        ))
    }

    /// The bytes of records the store holds, as of the last commit (`row_bytes`).
    pub fn stored_bytes(&self) -> u64 {
        self.stored.load(Ordering::Acquire)
    }

    /// Commits done since the store was opened (group commits: one per batch of writes).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// A handle for reads from another thread (they block: not on the async reactor).
    pub fn reader(&self) -> Reader {
        Reader { db: self.db.clone() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a batch of the agent's own record ([`OnFault::Keep`]); `done` runs on the
    /// writer thread once it is committed.
    pub fn submit(&self, writes: Vec<Write>, done: Option<Done>) {
        self.submit_as(writes, done, OnFault::Keep)
    }

    /// Queues a batch; `done` runs on the writer thread once it is committed, or failed
    /// (per `on_fault`).
    pub fn submit_as(&self, writes: Vec<Write>, done: Option<Done>, on_fault: OnFault) {
        if writes.is_empty() {
            if let Some(d) = done {
                d(Ok(()));
            }
            return;
        }
        if let Err(mpsc::SendError(Op::Batch(Batch { done: Some(d), .. }))) = self.tx.send(Op::Batch(Batch { writes, done, on_fault })) {
            d(Err(StoreError::Stopped.to_string()));
        }
    }

    /// Registers who is told when writes start failing and when they work again.
    pub fn on_health(&self, f: HealthListener) {
        let _ = self.tx.send(Op::Listen(f));
    }

    /// Runs `done` (on the writer thread) once every batch queued before it is committed
    /// or failed: reads that must see earlier writes wait for it.
    pub fn barrier(&self, done: Done) {
        if let Err(mpsc::SendError(Op::Batch(Batch { done: Some(d), .. }))) = self.tx.send(Op::Batch(Batch {
            writes: Vec::new(),
            done: Some(done),
            on_fault: OnFault::Fail,
        })) {
            d(Err(StoreError::Stopped.to_string()));
        }
    }

    /// Commits what is queued and closes the file.
    pub fn close(mut self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Op::Close(tx)).is_ok() {
            let _ = rx.recv();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (tx, _rx) = mpsc::channel();
            let _ = self.tx.send(Op::Close(tx));
            let _ = t.join();
        }
    }
}

/// Reads what the agent does not keep in memory.
#[derive(Clone)]
pub struct Reader {
    db: Slot,
}

impl Reader {
    /// The kept task history of an ended session, in task order.
    pub fn task_history(&self, app: &str, session: u64) -> Result<Vec<HistoryTask>, StoreError> {
        let txn = current(&self.db)?.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(TASK_HISTORY).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in t.range((app, session, 0)..=(app, session, u64::MAX)).map_err(StoreError::db)? {
            let (_, v) = row.map_err(StoreError::db)?;
            out.extend(decode::<Vec<HistoryTask>>(v.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` rows of an ended session's kept task history from row `from` (0 is
    /// the first), and where the next page starts. Reads only the chunks it returns.
    pub fn task_history_page(
        &self,
        app: &str,
        session: u64,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<HistoryTask>, Option<u64>), StoreError> {
        let txn = current(&self.db)?.begin_read().map_err(StoreError::db)?;
        let t = txn.open_table(TASK_HISTORY).map_err(StoreError::db)?;
        let chunk = HISTORY_CHUNK as u64;
        let mut skip = (from % chunk) as usize;
        let mut out = Vec::new();
        let mut rows = t
            .range((app, session, from / chunk)..=(app, session, u64::MAX))
            .map_err(StoreError::db)?;
        while let Some(row) = rows.next() {
            let (_, v) = row.map_err(StoreError::db)?;
            let list = decode::<Vec<HistoryTask>>(v.value())?;
            out.extend(list.into_iter().skip(std::mem::take(&mut skip)));
            if out.len() >= limit {
                let more = out.len() > limit || rows.next().is_some();
                out.truncate(limit);
                return Ok((out, more.then_some(from + limit as u64)));
            }
        }
        Ok((out, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn app(name: &str) -> AppRecord {
        AppRecord {
            name: name.into(),
            profile: "p".into(),
            source: "/x".into(),
            enabled: true,
            registered_ms: 1,
        }
    }

    #[test]
    fn writes_survive_reopen_and_second_open_is_refused() {
        let dir = tempfile_dir();
        let path = dir.join("s.redb");
        let (store, loaded) = Store::open(&path, 1 << 20).unwrap();
        assert!(loaded.apps.is_empty());
        assert!(matches!(Store::open(&path, 1 << 20), Err(StoreError::Locked { .. })));
        let (tx, rx) = mpsc::channel();
        store.submit(
            vec![Write::PutApp(app("a")), Write::SetCounter { app: "a".into(), next: 5 }],
            Some(Box::new(move |r| tx.send(r).unwrap())),
        );
        rx.recv().unwrap().unwrap();
        store.submit(vec![Write::PutApp(app("b")), Write::DeleteApp("a".into())], None);
        store.close();
        let (_store, loaded) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(loaded.apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(loaded.counters, vec![("a".to_string(), 5)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn task(input: &[u8], result: Option<&[u8]>) -> TaskRecord {
        TaskRecord {
            state: StoredTaskState::Pending,
            attempts: u32::MAX,
            failures: u32::MAX,
            input: Bytes::copy_from_slice(input),
            result: result.map(Bytes::copy_from_slice),
            delivered: true,
            submitted_ms: u64::MAX,
            started_ms: u64::MAX,
            ended_ms: u64::MAX,
        }
    }

    /// A large store is read in parts at once (a session cut between them): every task
    /// comes back once, in order, under its session; rows past `next_task` and rows of
    /// no stored session are left out.
    #[test]
    fn a_large_store_is_read_whole_and_in_order() {
        let dir = tempfile_dir();
        let path = dir.join("s.redb");
        let (store, _) = Store::open(&path, 1 << 20).unwrap();
        let session = |app: &str, id, next_task| SessionRecord {
            app: app.into(),
            id,
            name: None,
            tag: None,
            session_type: "t".into(),
            state: StoredSessionState::Open,
            attached: false,
            recoverable: true,
            direct: false,
            common_data: Bytes::new(),
            created_ms: 1,
            owner_uid: 0,
            next_task,
        };
        let tasks = |app: &str, id, n: u64| Write::PutTasks {
            app: app.into(),
            session: id,
            tasks: (1..=n).map(|i| (i, task(&i.to_le_bytes(), None))).collect(),
        };
        let sizes = [("a", 1, 30_000), ("a", 2, 150_000), ("b", 7, 20_000)];
        let mut writes = Vec::new();
        for (app, id, n) in sizes {
            // Session a:2 says it has one task fewer than its rows.
            let next = if id == 2 { n } else { n + 1 };
            writes.push(Write::PutSession(session(app, id, next)));
            writes.push(tasks(app, id, n));
        }
        writes.push(tasks("orphan", 1, 10));
        let (tx, rx) = mpsc::channel();
        store.submit(writes, Some(Box::new(move |r| tx.send(r).unwrap())));
        rx.recv().unwrap().unwrap();
        store.close();
        let (store, loaded) = Store::open(&path, 1 << 20).unwrap();
        let got: Vec<(SessionKey, usize)> = loaded.tasks.iter().map(|(k, l)| (k.clone(), l.len())).collect();
        assert_eq!(
            got,
            vec![(("a".into(), 1), 30_000), (("a".into(), 2), 149_999), (("b".into(), 7), 20_000)]
        );
        for (_, list) in &loaded.tasks {
            for (i, (tid, rec)) in list.iter().enumerate() {
                assert_eq!(*tid, i as u64 + 1);
                assert_eq!(rec.input[..], tid.to_le_bytes());
            }
        }
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn request_ids_are_loaded_per_session() {
        let dir = tempfile_dir();
        let path = dir.join("s.redb");
        let (store, _) = Store::open(&path, 1 << 20).unwrap();
        let put = |app: &str, session, request, rec| Write::PutRequest {
            app: app.into(),
            session,
            request,
            rec,
        };
        let (tx, rx) = mpsc::channel();
        store.submit(
            vec![
                put("b", 1, 5, RequestRecord::Created),
                put("a", 2, 3, RequestRecord::Submitted { first: 1, count: 2 }),
                put("a", 2, 1, RequestRecord::Created),
                put("a", 1, 9, RequestRecord::Created),
            ],
            Some(Box::new(move |r| tx.send(r).unwrap())),
        );
        rx.recv().unwrap().unwrap();
        store.close();
        let (store, loaded) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(
            loaded.requests,
            vec![
                (("a".to_string(), 1), vec![(9, RequestRecord::Created)]),
                (
                    ("a".to_string(), 2),
                    vec![(1, RequestRecord::Created), (3, RequestRecord::Submitted { first: 1, count: 2 })]
                ),
                (("b".to_string(), 1), vec![(5, RequestRecord::Created)]),
            ]
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The count kept by commits equals a full recount, through inserts, overwrites and
    /// deletes of every kind, and survives a reopen.
    #[test]
    fn stored_bytes_follow_every_write() {
        let dir = tempfile_dir();
        let path = dir.join("s.redb");
        let (store, _) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(store.stored_bytes(), 0);
        let session = |id| SessionRecord {
            app: "a".into(),
            id,
            name: None,
            tag: None,
            session_type: String::new(),
            state: StoredSessionState::Open,
            attached: false,
            recoverable: true,
            direct: false,
            common_data: Bytes::from_static(b"common"),
            created_ms: 1,
            owner_uid: 0,
            next_task: 4,
        };
        let batches = [
            vec![Write::PutApp(app("a")), Write::SetCounter { app: "a".into(), next: 2 }],
            vec![
                Write::PutSession(session(1)),
                Write::PutTasks {
                    app: "a".into(),
                    session: 1,
                    tasks: (1..=3).map(|i| (i, task(&vec![7; 1000 * i as usize], None))).collect(),
                },
                Write::PutRequest {
                    app: "a".into(),
                    session: 1,
                    request: 7,
                    rec: RequestRecord::Created,
                },
                Write::PutRequest {
                    app: "a".into(),
                    session: 1,
                    request: u128::MAX,
                    rec: RequestRecord::Submitted { first: 1, count: 3 },
                },
                Write::PutRequest {
                    app: "a".into(),
                    session: 2,
                    request: 9,
                    rec: RequestRecord::Created,
                },
            ],
            // One forgotten, one overwritten.
            vec![
                Write::DeleteRequest {
                    app: "a".into(),
                    session: 2,
                    request: 9,
                },
                Write::PutRequest {
                    app: "a".into(),
                    session: 1,
                    request: 7,
                    rec: RequestRecord::Submitted {
                        first: 4,
                        count: 1_000_000,
                    },
                },
            ],
            // Overwrites: a longer record replaces a shorter one.
            vec![
                Write::SetCounter { app: "a".into(), next: 3 },
                Write::PutTasks {
                    app: "a".into(),
                    session: 1,
                    tasks: vec![(2, task(b"x", Some(&[1; 5000])))],
                },
            ],
            vec![Write::PutHistory(HistoryRecord {
                session: HistorySession {
                    app: "a".into(),
                    id: 1,
                    name: None,
                    tag: None,
                    session_type: String::new(),
                    state: "closed".into(),
                    reason: None,
                    created_ms: 1,
                    ended_ms: Some(9),
                    owner_uid: 0,
                    priority: 1,
                    done: 2000,
                    error: 0,
                    canceled: 0,
                },
                tasks: (1..=2000)
                    .map(|t| HistoryTask {
                        task: t,
                        state: "done".into(),
                        attempts: 1,
                        submitted_ms: 1,
                        started_ms: Some(2),
                        ended_ms: Some(3),
                        error: None,
                    })
                    .collect(),
            })],
            vec![
                Write::DeleteTasks {
                    app: "a".into(),
                    session: 1,
                },
                Write::DeleteSession { app: "a".into(), id: 1 },
                Write::PutApp(app("b")),
            ],
            vec![Write::DeleteApp("a".into())],
        ];
        for writes in batches {
            let (tx, rx) = mpsc::channel();
            store.submit(writes, Some(Box::new(move |r| tx.send(r).unwrap())));
            rx.recv().unwrap().unwrap();
            let counted = {
                let db = current(&store.db).unwrap();
                let txn = db.begin_write().unwrap();
                let n = count_bytes(&txn).unwrap();
                txn.abort().unwrap();
                n
            };
            assert_eq!(store.stored_bytes(), counted);
            assert!(counted > 0);
        }
        let before = store.stored_bytes();
        store.close();
        let (store, loaded) = Store::open(&path, 1 << 20).unwrap();
        assert_eq!(store.stored_bytes(), before);
        // The session's request ids went with it.
        assert!(loaded.requests.is_empty(), "{:?}", loaded.requests);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// `new_task_bytes` is an upper bound of a new task's row, whatever its fields hold.
    #[test]
    fn new_task_bytes_bound_real_rows() {
        for input in [0usize, 1, 127, 128, 20_000, 3 << 20] {
            let mut rec = task(&vec![1; input], None);
            let widest = encode(&rec).len();
            assert!(row_bytes(3, 2, widest) <= new_task_bytes("app", input), "input {input}");
            rec.attempts = 0;
            assert!(row_bytes(3, 2, encode(&rec).len()) <= new_task_bytes("app", input));
        }
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("soam-store-test-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
