//! The writer thread: drains the queue of batches, applies them in one write
//! transaction and commits once (group commit), then runs their completions; while the
//! store fails, keeps the agent's own batches, fails clients' ones, and reopens the file
//! until a probe commits again.

use super::*;

/// How often a failing store is reopened and tried again.
pub(crate) const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread's state.
pub(crate) struct Writer {
    db: Slot,
    path: PathBuf,
    cache: usize,
    /// Why writes fail, while they do.
    fault: Option<String>,
    /// Batches of the agent's own record waiting for the store to work again, in order.
    kept: Vec<Batch>,
    listener: Option<HealthListener>,
    /// `stored_bytes` as last committed, shared with the [`Store`].
    stored: Arc<AtomicU64>,
    /// Commits done, shared with the [`Store`] (`Store::commits`).
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn new(db: Slot, path: PathBuf, cache: usize, stored: Arc<AtomicU64>, commits: Arc<AtomicU64>) -> Writer {
        Writer {
            db,
            path,
            cache,
            fault: None,
            kept: Vec::new(),
            listener: None,
            stored,
            commits,
        }
    }

    /// Applies and commits batches, and publishes the new `stored_bytes`.
    fn apply(&self, db: &Database, batches: &[Batch]) -> Result<(), StoreError> {
        let now = apply(db, batches, self.stored.load(Ordering::Acquire))?;
        self.stored.store(now, Ordering::Release);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Op>) {
        let mut closing: Option<mpsc::Sender<()>> = None;
        while closing.is_none() {
            let first = if self.fault.is_some() {
                match rx.recv_timeout(RETRY_EVERY) {
                    Ok(op) => Some(op),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(op) => Some(op),
                    Err(_) => break,
                }
            };
            let mut batches = Vec::new();
            let mut next = first;
            // Everything already queued joins this commit.
            while let Some(op) = next {
                match op {
                    Op::Batch(b) => batches.push(b),
                    Op::Listen(f) => self.listener = Some(f),
                    Op::Close(tx) => {
                        closing = Some(tx);
                        break;
                    }
                }
                next = rx.try_recv().ok();
            }
            if self.fault.is_some() {
                self.while_failing(batches);
            } else if !batches.is_empty() {
                self.commit(batches);
            }
        }
        if self.fault.is_some() {
            // A last try, so that a clean stop after space came back loses nothing.
            self.while_failing(Vec::new());
        }
        if let Some(tx) = closing {
            let _ = tx.send(());
        }
    }

    fn commit(&mut self, batches: Vec<Batch>) {
        let writes: usize = batches.iter().map(|b| b.writes.len()).sum();
        // Barriers alone commit nothing.
        let result = if writes == 0 {
            Ok(())
        } else {
            current(&self.db).and_then(|db| self.apply(&db, &batches))
        };
        let big = writes >= 1000
            || batches.iter().any(|b| {
                b.writes
                    .iter()
                    .any(|w| matches!(w, Write::PutHistory(h) if h.tasks.len() >= 10_000))
            });
        match result {
            Ok(()) => {
                for b in batches {
                    if let Some(done) = b.done {
                        done(Ok(()));
                    }
                }
            }
            Err(e) => {
                let e = e.to_string();
                tracing::error!("store commit failed: {e}; writes are refused until it works again (retried every second)");
                self.fault = Some(e.clone());
                if let Some(f) = &self.listener {
                    f(Some(e));
                }
                self.while_failing(batches);
            }
        }
        if big {
            release_freed_memory();
        }
    }

    /// While the store fails: clients' batches are failed at once, the agent's own
    /// are kept; then the store is reopened and what was kept is tried again.
    fn while_failing(&mut self, batches: Vec<Batch>) {
        let why = self.fault.clone().unwrap_or_default();
        for b in batches {
            if b.on_fault == OnFault::Fail || b.writes.is_empty() {
                if let Some(done) = b.done {
                    done(if b.writes.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("the store cannot be written: {why}"))
                    });
                }
            } else {
                self.kept.push(b);
            }
        }
        // redb refuses every write after an I/O error until the file is reopened. The
        // old handle must be gone first; a reader still holding it makes this wait for
        // the next try.
        let reopened = {
            let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
            match slot.take().map(Arc::try_unwrap) {
                Some(Err(shared)) => {
                    *slot = Some(shared);
                    false
                }
                old => {
                    drop(old);
                    match Database::builder().set_cache_size(self.cache).create(&self.path) {
                        Ok(db) => {
                            *slot = Some(Arc::new(db));
                            true
                        }
                        Err(e) => {
                            tracing::debug!("store reopen failed: {e}");
                            false
                        }
                    }
                }
            }
        };
        if !reopened {
            return;
        }
        let kept = std::mem::take(&mut self.kept);
        let tried = current(&self.db).and_then(|db| {
            probe(&db)?;
            if kept.is_empty() { Ok(()) } else { self.apply(&db, &kept) }
        });
        match tried {
            Ok(()) => {
                tracing::warn!("the store works again: {} kept batches committed; writes accepted", kept.len());
                self.fault = None;
                for b in kept {
                    if let Some(done) = b.done {
                        done(Ok(()));
                    }
                }
                if let Some(f) = &self.listener {
                    f(None);
                }
            }
            Err(e) => {
                tracing::debug!("store still failing: {e}");
                self.kept = kept;
            }
        }
    }
}

/// Hands memory freed by a large batch or a large session back to the OS: glibc keeps
/// freed heap in its arenas for reuse until `malloc_trim`.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A small write that proves the store takes commits again.
pub(crate) fn probe(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::db)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::db)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::db)?;
        stamp(&mut meta).map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)
}

/// Applies batches in one transaction and commits; returns the new `stored_bytes`
/// (written in the same transaction).
pub(crate) fn apply(db: &Database, batches: &[Batch], stored: u64) -> Result<u64, StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::db)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::db)?;
    // What the commit adds and removes, in `row_bytes`.
    let (mut added, mut removed) = (0u64, 0u64);
    let now = {
        let mut apps = txn.open_table(APPS).map_err(StoreError::db)?;
        let mut counters = txn.open_table(COUNTERS).map_err(StoreError::db)?;
        let mut sessions = txn.open_table(SESSIONS).map_err(StoreError::db)?;
        let mut tasks = txn.open_table(TASKS).map_err(StoreError::db)?;
        let mut history = txn.open_table(HISTORY).map_err(StoreError::db)?;
        let mut task_history = txn.open_table(TASK_HISTORY).map_err(StoreError::db)?;
        let mut requests = txn.open_table(REQUESTS).map_err(StoreError::db)?;
        let len = |g: Option<redb::AccessGuard<&[u8]>>| g.map(|g| g.value().len());
        for w in batches.iter().flat_map(|b| &b.writes) {
            let r: Result<(), redb::StorageError> = (|| {
                match w {
                    Write::PutApp(a) => {
                        let v = encode(a);
                        added += row_bytes(a.name.len(), 0, v.len());
                        if let Some(old) = len(apps.insert(a.name.as_str(), v.as_slice())?) {
                            removed += row_bytes(a.name.len(), 0, old);
                        }
                    }
                    Write::DeleteApp(name) => {
                        if let Some(old) = len(apps.remove(name.as_str())?) {
                            removed += row_bytes(name.len(), 0, old);
                        }
                    }
                    Write::SetCounter { app, next } => {
                        added += row_bytes(app.len(), 0, 8);
                        if counters.insert(app.as_str(), *next)?.is_some() {
                            removed += row_bytes(app.len(), 0, 8);
                        }
                    }
                    Write::PutSession(s) => {
                        let v = encode(s);
                        added += row_bytes(s.app.len(), 1, v.len());
                        if let Some(old) = len(sessions.insert((s.app.as_str(), s.id), v.as_slice())?) {
                            removed += row_bytes(s.app.len(), 1, old);
                        }
                    }
                    Write::DeleteSession { app, id } => {
                        if let Some(old) = len(sessions.remove((app.as_str(), *id))?) {
                            removed += row_bytes(app.len(), 1, old);
                        }
                        requests.retain_in((app.as_str(), *id, 0)..=(app.as_str(), *id, u128::MAX), |_, v| {
                            removed += row_bytes(app.len(), 3, v.len());
                            false
                        })?;
                    }
                    Write::PutRequest {
                        app,
                        session,
                        request,
                        rec,
                    } => {
                        let v = encode(rec);
                        added += row_bytes(app.len(), 3, v.len());
                        if let Some(old) = len(requests.insert((app.as_str(), *session, *request), v.as_slice())?) {
                            removed += row_bytes(app.len(), 3, old);
                        }
                    }
                    Write::DeleteRequest { app, session, request } => {
                        if let Some(old) = len(requests.remove((app.as_str(), *session, *request))?) {
                            removed += row_bytes(app.len(), 3, old);
                        }
                    }
                    Write::PutTasks { app, session, tasks: list } => {
                        for (tid, t) in list {
                            let v = encode(t);
                            added += row_bytes(app.len(), 2, v.len());
                            if let Some(old) = len(tasks.insert((app.as_str(), *session, *tid), v.as_slice())?) {
                                removed += row_bytes(app.len(), 2, old);
                            }
                        }
                    }
                    Write::DeleteTasks { app, session } => {
                        tasks.retain_in((app.as_str(), *session, 0)..=(app.as_str(), *session, u64::MAX), |_, v| {
                            removed += row_bytes(app.len(), 2, v.len());
                            false
                        })?;
                    }
                    Write::PutHistory(h) => {
                        let summary = HistoryRecord {
                            session: h.session.clone(),
                            tasks: Vec::new(),
                        };
                        let app = h.session.app.as_str();
                        let key = (h.session.ended_ms.unwrap_or(0), app, h.session.id);
                        let v = encode(&summary);
                        added += row_bytes(app.len(), 2, v.len());
                        if let Some(old) = len(history.insert(key, v.as_slice())?) {
                            removed += row_bytes(app.len(), 2, old);
                        }
                        for (i, chunk) in h.tasks.chunks(HISTORY_CHUNK).enumerate() {
                            let v = encode_as::<Vec<HistoryTask>, _>(chunk);
                            added += row_bytes(app.len(), 2, v.len());
                            if let Some(old) = len(task_history.insert((app, h.session.id, i as u64), v.as_slice())?) {
                                removed += row_bytes(app.len(), 2, old);
                            }
                        }
                    }
                }
                Ok(())
            })();
            r.map_err(StoreError::db)?;
        }
        let now = (stored + added).saturating_sub(removed);
        let mut meta = txn.open_table(META).map_err(StoreError::db)?;
        meta.insert("stored_bytes", now.to_le_bytes().as_slice()).map_err(StoreError::db)?;
        now
    };
    txn.commit().map_err(StoreError::db)?;
    Ok(now)
}
