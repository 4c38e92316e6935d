//! Reading everything recovery needs at open into a [`Loaded`]: applications,
//! counters, sessions, history and request ids, then the tasks of every session, those
//! of a large store read in parallel ranges and handed over in [`Chunks`].

use super::*;

pub(crate) fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    records::decode(bytes).map_err(StoreError::db)
}

pub(crate) fn load<T: Send>(db: &Database, convert: &(dyn Fn(TaskRecord) -> T + Sync)) -> Result<Loaded<T>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::db)?;
    let mut out = Loaded {
        apps: Vec::new(),
        counters: Vec::new(),
        sessions: Vec::new(),
        tasks: Vec::new(),
        history: Vec::new(),
        requests: Vec::new(),
    };
    let apps = txn.open_table(APPS).map_err(StoreError::db)?;
    for row in apps.iter().map_err(StoreError::db)? {
        let (_, v) = row.map_err(StoreError::db)?;
        out.apps.push(decode(v.value())?);
    }
    let counters = txn.open_table(COUNTERS).map_err(StoreError::db)?;
    for row in counters.iter().map_err(StoreError::db)? {
        let (k, v) = row.map_err(StoreError::db)?;
        out.counters.push((k.value().to_string(), v.value()));
    }
    let sessions = txn.open_table(SESSIONS).map_err(StoreError::db)?;
    for row in sessions.iter().map_err(StoreError::db)? {
        let (_, v) = row.map_err(StoreError::db)?;
        out.sessions.push(decode(v.value())?);
    }
    out.tasks = load_tasks(db, &out.sessions, convert)?;
    let history = txn.open_table(HISTORY).map_err(StoreError::db)?;
    for row in history.iter().map_err(StoreError::db)?.rev().take(HISTORY_LOADED) {
        let (_, v) = row.map_err(StoreError::db)?;
        out.history.push(decode(v.value())?);
    }
    let requests = txn.open_table(REQUESTS).map_err(StoreError::db)?;
    for row in requests.iter().map_err(StoreError::db)? {
        let (k, v) = row.map_err(StoreError::db)?;
        let (app, sid, req) = k.value();
        let rec: RequestRecord = decode(v.value())?;
        match out.requests.last_mut() {
            Some(((a, s), list)) if a == app && *s == sid => list.push((req, rec)),
            _ => out.requests.push(((app.to_string(), sid), vec![(req, rec)])),
        }
    }
    Ok(out)
}

/// Each stored session's tasks, by id, sessions in key order.
pub type LoadedTasks<T = TaskRecord> = Vec<(SessionKey, Chunks<T>)>;

/// One session's stored tasks with their ids, in id order, in pieces of at most
/// `CHUNK`: whoever takes them one by one frees each piece once past it, so a
/// session's tasks are never held twice over (as they were in one list of 10,000,000,
/// and again in what the agent built of them), and the parts read at once are joined
/// without copying.
#[derive(Debug)]
pub struct Chunks<T>(Vec<Vec<(u64, T)>>);

/// Tasks in one piece of [`Chunks`].
pub(crate) const CHUNK: usize = 1 << 16;

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks(Vec::new())
    }
}

impl<T> Chunks<T> {
    pub fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(u64, T)> {
        self.0.iter().flatten()
    }

    /// Appends task `id`; `ahead` is at most how many more may follow it, so that a
    /// small session's piece is not sized for [`CHUNK`] tasks.
    fn push(&mut self, id: u64, t: T, ahead: u64) {
        match self.0.last_mut() {
            Some(c) if c.len() < CHUNK => c.push((id, t)),
            _ => {
                let mut c = Vec::with_capacity((ahead as usize).saturating_add(1).min(CHUNK));
                c.push((id, t));
                self.0.push(c);
            }
        }
    }
}

impl<T> IntoIterator for Chunks<T> {
    type Item = (u64, T);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<(u64, T)>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// Below this many tasks one thread reads them all.
pub(crate) const PARALLEL_LOAD_MIN: u64 = 100_000;

/// Every task of the stored sessions, in key order. A restart with 10,000,000 pending
/// tasks spends most of its time here, so large stores are read in two halves at once
/// (each its own read transaction over its own key ranges: redb readers do not block
/// each other). Rows past a session's `next_task`, or of no stored session, are never
/// used and not read.
pub(crate) fn load_tasks<T: Send>(
    db: &Database,
    sessions: &[SessionRecord],
    convert: &(dyn Fn(TaskRecord) -> T + Sync),
) -> Result<LoadedTasks<T>, StoreError> {
    // Each session's ids, as (app, session, first id, end id) ranges.
    let ranges: Vec<(&str, u64, u64, u64)> = sessions
        .iter()
        .filter(|s| s.next_task > 1)
        .map(|s| (s.app.as_str(), s.id, 1, s.next_task))
        .collect();
    let total: u64 = ranges.iter().map(|r| r.3 - r.2).sum();
    let parts = if total >= PARALLEL_LOAD_MIN {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
    } else {
        1
    };
    // Cut the ranges into `parts` runs of about equal task counts.
    let mut runs: Vec<Vec<(&str, u64, u64, u64)>> = vec![Vec::new(); parts];
    let per = total.div_ceil(parts as u64).max(1);
    let (mut part, mut filled) = (0, 0u64);
    for (app, id, mut lo, hi) in ranges {
        while lo < hi {
            let take = (hi - lo).min(per - filled);
            runs[part].push((app, id, lo, lo + take));
            lo += take;
            filled += take;
            if filled == per && part + 1 < parts {
                part += 1;
                filled = 0;
            }
        }
    }
    let read = |run: &[(&str, u64, u64, u64)]| -> Result<LoadedTasks<T>, StoreError> {
        let txn = db.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(TASKS).map_err(StoreError::db)?;
        let mut out: LoadedTasks<T> = Vec::new();
        for &(app, id, lo, hi) in run {
            let mut list = Chunks::default();
            for row in table.range((app, id, lo)..(app, id, hi)).map_err(StoreError::db)? {
                let (k, v) = row.map_err(StoreError::db)?;
                let tid = k.value().2;
                list.push(tid, convert(decode(v.value())?), hi.saturating_sub(tid + 1));
            }
            if !list.is_empty() {
                out.push(((app.to_string(), id), list));
            }
        }
        Ok(out)
    };
    let results: Vec<Result<_, StoreError>> = if parts == 1 {
        vec![read(&runs[0])]
    } else {
        std::thread::scope(|sc| {
            let handles: Vec<_> = runs.iter().map(|run| sc.spawn(|| read(run))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(StoreError::Db("a reader of the tasks failed".into())))
                })
                .collect()
        })
    };
    // Back in key order; a session cut between two parts is joined again.
    let mut out: LoadedTasks<T> = Vec::new();
    for part in results {
        for (key, list) in part? {
            match out.last_mut() {
                Some((k, l)) if *k == key => l.0.extend(list.0),
                _ => out.push((key, list)),
            }
        }
    }
    Ok(out)
}
