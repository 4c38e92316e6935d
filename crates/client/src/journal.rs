//! The client's offline journal: submissions and session releases that could not reach
//! the agent, kept on this machine and carried out, in their original order, at the
//! next contact.
//!
//! Data flow: `soamsession submit --offline-ok` (or close/abort/detach) that finds no
//! agent calls [`Journal::add`], which writes the entry (with its request ids, chosen
//! when it was made) and its inputs in one redb transaction, in `journal.redb` under the
//! user's data folder (0600). [`replay`] (run by `soamsession sync` and by any command
//! that reaches the agent) takes the journal, which redb locks for one process at a
//! time, and carries the entries out oldest first: a submission creates its session
//! (under its create id) or opens the one it names, is submitted under its own id, and
//! is left detached; an entry is deleted only once the agent has answered. Request ids
//! make a replay cut short and run again, or a submission the agent took just before
//! the connection failed, count once. An entry the agent refuses stays, with the
//! reason, until `soamsession sync --drop N`.

use crate::session::{Session, SessionConfig, Submitted, new_request_id};
use crate::{Client, ClientError, ConnectOptions};
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use soam_proto::SessionRef;
use soam_proto::msg::{CreateSession, ErrorKind, Request, RequestId};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Entry number to its description.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// (entry, batch number) to a batch of inputs.
const INPUTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("inputs");

/// Inputs per stored batch: reads and writes stay a few MiB at a time.
const BATCH_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal {path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("the journal {0} is in use by another soam command; try again when it is done")]
    Busy(PathBuf),
    #[error("no journal entry {0} (see soamsession sync --list)")]
    NoEntry(u64),
}

/// Where a journalled submission goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Target {
    /// An open session, `APP:ID` or `APP:NAME`.
    Session(SessionRef),
    /// A new session of this application, created under `create` (a request id).
    New {
        app: String,
        session_type: Option<String>,
        direct: bool,
        create: RequestId,
    },
}

/// A session release that could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Release {
    Detach,
    Close,
    Abort,
}

impl Release {
    pub fn as_str(self) -> &'static str {
        match self {
            Release::Detach => "detach",
            Release::Close => "close",
            Release::Abort => "abort",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Action {
    /// `tasks` inputs (in `INPUTS`) submitted under `request`.
    Submit {
        target: Target,
        request: RequestId,
        tasks: u64,
    },
    Release {
        session: SessionRef,
        how: Release,
    },
}

/// One journal entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub action: Action,
    /// When it was journalled (Unix milliseconds).
    pub at_ms: u64,
    /// Why its last replay was refused; it waits for `sync --drop`.
    pub refused: Option<String>,
}

impl Entry {
    /// One line saying what it is.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Submit { target, tasks, .. } => match target {
                Target::Session(s) => format!("submit {tasks} tasks to session {s}"),
                Target::New { app, session_type, .. } => match session_type {
                    Some(t) => format!("submit {tasks} tasks to a new session of {app} (type {t})"),
                    None => format!("submit {tasks} tasks to a new session of {app}"),
                },
            },
            Action::Release { session, how } => format!("{} session {session}", how.as_str()),
        }
    }
}

/// The journal, open and locked by this process.
pub struct Journal {
    db: Database,
    path: PathBuf,
}

/// The journal's file under the user's data folder.
pub fn path(opts: &ConnectOptions) -> PathBuf {
    opts.paths.data_dir.join("journal.redb")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Journal {
    /// Opens (creating it 0600 if need be) and locks the journal, waiting up to `wait`
    /// for another soam command that holds it.
    pub fn open(path: &Path, wait: Duration) -> Result<Journal, JournalError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |e: &dyn std::fmt::Display| JournalError::Io {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io(&e))?;
        }
        let deadline = Instant::now() + wait;
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| io(&e))?;
            // redb locks the file for this process (flock), refusing a second opener.
            let opened = redb::backends::FileBackend::new(file).and_then(|b| Database::builder().create_with_backend(b));
            match opened {
                Ok(db) => {
                    let j = Journal {
                        db,
                        path: path.to_path_buf(),
                    };
                    j.init()?;
                    return Ok(j);
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(JournalError::Busy(path.to_path_buf())),
                Err(e) => return Err(io(&e)),
            }
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    fn init(&self) -> Result<(), JournalError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
        txn.open_table(INPUTS).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// Adds an entry (and a submission's inputs) at the end; returns its number.
    pub fn add(&self, action: Action, inputs: &[Bytes]) -> Result<u64, JournalError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let seq = {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
            let seq = entries.last().map_err(|e| self.err(e))?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            let entry = Entry {
                action,
                at_ms: now_ms(),
                refused: None,
            };
            let v = postcard::to_stdvec(&entry).map_err(|e| self.err(e))?;
            entries.insert(seq, v.as_slice()).map_err(|e| self.err(e))?;
            let mut table = txn.open_table(INPUTS).map_err(|e| self.err(e))?;
            let (mut batch, mut bytes, mut n) = (Vec::new(), 0usize, 0u32);
            for (i, input) in inputs.iter().enumerate() {
                batch.push(input.clone());
                bytes += input.len() + 8;
                if bytes >= BATCH_BYTES || i + 1 == inputs.len() {
                    let v = postcard::to_stdvec(&batch).map_err(|e| self.err(e))?;
                    table.insert((seq, n), v.as_slice()).map_err(|e| self.err(e))?;
                    (batch, bytes, n) = (Vec::new(), 0, n + 1);
                }
            }
            seq
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(seq)
    }

    /// Every entry, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, Entry)>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let entries = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in entries.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), postcard::from_bytes(v.value()).map_err(|e| self.err(e))?));
        }
        Ok(out)
    }

    /// A submission's inputs, in order.
    fn inputs(&self, seq: u64) -> Result<Vec<Bytes>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(INPUTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.range((seq, 0)..=(seq, u32::MAX)).map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            let batch: Vec<Bytes> = postcard::from_bytes(v.value()).map_err(|e| self.err(e))?;
            out.extend(batch);
        }
        Ok(out)
    }

    /// Removes an entry and its inputs.
    pub fn drop_entry(&self, seq: u64) -> Result<(), JournalError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
            if entries.remove(seq).map_err(|e| self.err(e))?.is_none() {
                return Err(JournalError::NoEntry(seq));
            }
            let mut inputs = txn.open_table(INPUTS).map_err(|e| self.err(e))?;
            inputs
                .retain_in((seq, 0)..=(seq, u32::MAX), |_, _| false)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn set_refused(&self, seq: u64, why: &str) -> Result<(), JournalError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
            let Some(mut entry) = entries
                .get(seq)
                .map_err(|e| self.err(e))?
                .map(|v| postcard::from_bytes::<Entry>(v.value()))
                .transpose()
                .map_err(|e| self.err(e))?
            else {
                return Ok(());
            };
            entry.refused = Some(why.to_string());
            let v = postcard::to_stdvec(&entry).map_err(|e| self.err(e))?;
            entries.insert(seq, v.as_slice()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

/// A new submission entry for `inputs`, to the target; returns the entry's number.
pub fn add_submit(opts: &ConnectOptions, target: Target, request: RequestId, inputs: &[Bytes]) -> Result<u64, JournalError> {
    let j = Journal::open(&path(opts), Duration::from_secs(30))?;
    let action = Action::Submit {
        target,
        request,
        tasks: inputs.len() as u64,
    };
    j.add(action, inputs)
}

/// A new release entry; returns its number.
pub fn add_release(opts: &ConnectOptions, session: SessionRef, how: Release) -> Result<u64, JournalError> {
    let j = Journal::open(&path(opts), Duration::from_secs(30))?;
    j.add(Action::Release { session, how }, &[])
}

/// A target for a new session made now: its create id is chosen here, once.
pub fn new_target(app: &str, session_type: Option<&str>, direct: bool) -> Target {
    Target::New {
        app: app.into(),
        session_type: session_type.map(String::from),
        direct,
        create: new_request_id(),
    }
}

/// What became of one entry in a replay.
#[derive(Debug)]
pub enum Outcome {
    /// Submitted to the session as these task ids (and left detached).
    Submitted { session: SessionRef, tasks: Submitted },
    /// The release was carried out (or found done: the session had ended).
    Released { session: SessionRef, how: Release },
    /// The agent refused it; it stays in the journal with this reason.
    Refused(String),
}

/// A replay's report: each entry carried out or refused, in order.
#[derive(Debug, Default)]
pub struct Replayed {
    pub done: Vec<(u64, Entry, Outcome)>,
    /// Why it stopped before the end (the agent was lost), if it did.
    pub stopped: Option<String>,
}

/// Whether the journal has anything to replay; cheap when there is no journal.
pub fn exists(opts: &ConnectOptions) -> bool {
    path(opts).exists()
}

/// Carries out the journal's entries against the agent, oldest first. Entries refused
/// before are tried again only with `retry_refused`. `None`: another command holds the
/// journal (it is replaying it).
pub async fn replay(opts: &ConnectOptions, retry_refused: bool) -> Result<Option<Replayed>, JournalError> {
    let journal = match Journal::open(&path(opts), Duration::ZERO) {
        Ok(j) => j,
        Err(JournalError::Busy(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Replayed::default();
    for (seq, entry) in journal.list()? {
        if entry.refused.is_some() && !retry_refused {
            continue;
        }
        let outcome = match carry_out(opts, &journal, seq, &entry).await {
            Ok(o) => o,
            Err(e @ (ClientError::NoAgent(_) | ClientError::Lost(_))) => {
                out.stopped = Some(e.to_string());
                break;
            }
            Err(e) => Outcome::Refused(e.to_string()),
        };
        match &outcome {
            Outcome::Refused(why) => journal.set_refused(seq, why)?,
            _ => journal.drop_entry(seq)?,
        }
        out.done.push((seq, entry, outcome));
    }
    if journal.list()?.is_empty() {
        // Nothing left: no file, so later commands need not open it. Removed while
        // still locked: a command waiting for it makes a new one.
        let _ = std::fs::remove_file(&journal.path);
    }
    Ok(Some(out))
}

async fn carry_out(opts: &ConnectOptions, journal: &Journal, seq: u64, entry: &Entry) -> Result<Outcome, ClientError> {
    let mut cfg = SessionConfig::new(opts.clone());
    match &entry.action {
        Action::Submit { target, request, .. } => {
            let mut s = match target {
                Target::Session(r) => Session::open(cfg, r, false).await?.0,
                Target::New {
                    app,
                    session_type,
                    direct,
                    create,
                } => {
                    cfg.direct = *direct;
                    let c = CreateSession {
                        app: app.clone(),
                        session_type: session_type.clone(),
                        name: None,
                        tag: None,
                        common_data: Bytes::new(),
                        direct: *direct,
                        attach: true,
                    };
                    Session::create_as(cfg, *create, c).await?
                }
            };
            let inputs = journal
                .inputs(seq)
                .map_err(|e| ClientError::refused(ErrorKind::Other, e.to_string()))?;
            let tasks = s.submit_as(*request, inputs).await?;
            let session = s.addr().clone();
            s.detach().await?;
            Ok(Outcome::Submitted { session, tasks })
        }
        Action::Release { session, how } => {
            let client = Client::connect(opts).await?;
            let req = match how {
                Release::Detach => Request::Detach { session: session.clone() },
                Release::Close => Request::Close { session: session.clone() },
                Release::Abort => Request::Abort { session: session.clone() },
            };
            match client.call(req).await {
                // Ended meanwhile (its idle timeout, an admin): nothing left to release.
                Ok(_)
                | Err(ClientError::Refused {
                    kind: ErrorKind::Ended, ..
                }) => Ok(Outcome::Released {
                    session: session.clone(),
                    how: *how,
                }),
                Err(e) => Err(e),
            }
        }
    }
}
