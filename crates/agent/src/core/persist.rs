//! Keeping recoverable sessions on disk, and bringing them back after a restart.
//!
//! What a recoverable session promises, and how:
//! - an accepted task is committed before the submit is acknowledged (`tasks::submit`);
//! - a task's end, with its kept output, is committed before the output is sent to a
//!   client: ends are gathered during a loop turn and committed together
//!   ([`Core::commit_ends`]); the commit's completion posts [`CoreMsg::Persisted`], and
//!   only then do the outputs join the undelivered set;
//! - retries, acknowledgements and session state changes are written without waiting: if
//!   they are lost (a kill before the commit), the worst case is an output delivered
//!   again or a state to redo;
//! - when the store cannot be written (a full disk), the agent's own writes are kept in
//!   order and committed once it can ([`soam_store::OnFault::Keep`]), so outputs wait
//!   for their commit, while requests that would write are refused (`requests::request`)
//!   and a submit whose commit failed never runs (`tasks::not_accepted`).
//!
//! Non-recoverable sessions write only their session record (so a restart can end them
//! with history) and never pay for the rest.

use super::blob::Blob;
use super::session::Session;
use super::task::Task;
use super::{Core, lifecycle, now_ms};
use crate::ports::{CoreMsg, Sid};
use rustc_hash::FxHashMap as HashMap;
use soam_proto::msg::{SessionState, TaskState};
use soam_store::Write;
use soam_store::records::{HistoryRecord, SessionRecord, StoredSessionState, StoredTaskState, TaskRecord};

impl Core {
    pub(super) fn task_record(s: &Session, idx: usize) -> TaskRecord {
        let t = &s.tasks[idx];
        TaskRecord {
            state: match t.state() {
                // A running attempt is not a state to recover: it runs again.
                TaskState::Pending | TaskState::Running => StoredTaskState::Pending,
                TaskState::Done => StoredTaskState::Done,
                TaskState::Error => StoredTaskState::Error,
                TaskState::Canceled => StoredTaskState::Canceled,
            },
            attempts: if t.state() == TaskState::Running {
                t.attempts().saturating_sub(1)
            } else {
                t.attempts()
            },
            failures: t.failures(),
            input: t.input().to_bytes(),
            result: t.result().map(Blob::to_bytes),
            delivered: t.delivered(),
            submitted_ms: t.submitted_ms(),
            started_ms: t.started_ms(),
            ended_ms: t.ended_ms(),
        }
    }

    /// Writes the tasks' current records, without waiting (recoverable sessions only).
    pub(super) fn persist_tasks(&self, sid: Sid, ids: impl IntoIterator<Item = u64>) {
        let Some(s) = self.sessions.get(&sid).filter(|s| s.stype.recoverable) else {
            return;
        };
        let tasks: Vec<(u64, TaskRecord)> = ids.into_iter().map(|tid| (tid, Self::task_record(s, (tid - 1) as usize))).collect();
        if !tasks.is_empty() {
            self.store.submit(
                vec![Write::PutTasks {
                    app: s.app.clone(),
                    session: s.id,
                    tasks,
                }],
                None,
            );
        }
    }

    /// Writes the session's record (state, holder) for a recoverable session.
    pub(super) fn persist_session(&self, sid: Sid) {
        if self.sessions.get(&sid).is_some_and(|s| s.stype.recoverable) {
            self.store.submit(vec![Write::PutSession(self.session_record(sid))], None);
        }
    }

    /// Commits the task ends gathered this turn; their outputs are released on commit.
    pub(super) fn commit_ends(&mut self) {
        if self.pending_ends.is_empty() {
            return;
        }
        let ends = std::mem::take(&mut self.pending_ends);
        let mut writes: Vec<Write> = Vec::new();
        let mut by_session: HashMap<Sid, Vec<(u64, TaskRecord)>> = HashMap::default();
        for &(sid, tid) in &ends {
            if let Some(s) = self.sessions.get(&sid) {
                by_session
                    .entry(sid)
                    .or_default()
                    .push((tid, Self::task_record(s, (tid - 1) as usize)));
            }
        }
        for (sid, tasks) in by_session {
            let s = &self.sessions[&sid];
            writes.push(Write::PutTasks {
                app: s.app.clone(),
                session: s.id,
                tasks,
            });
        }
        let inbox = self.inbox.clone();
        self.store.submit(
            writes,
            Some(Box::new(move |r| {
                // Kept batches complete only once committed; an error here means the
                // agent is stopping, and the ends run again after its restart.
                if let Err(e) = &r {
                    tracing::error!("task results not saved ({e}); they run again after a restart");
                }
                inbox.send(CoreMsg::Persisted(ends));
            })),
        );
    }

    /// Ends now on disk: their outputs may go to clients.
    pub(super) fn persisted(&mut self, ends: Vec<(Sid, u64)>) {
        for (sid, tid) in ends {
            let Some(s) = self.sessions.get_mut(&sid) else { continue };
            s.persisting = s.persisting.saturating_sub(1);
            if s.tasks[(tid - 1) as usize].state().is_ended() {
                s.undelivered.insert(tid);
            }
            self.dirty.insert(sid);
        }
    }

    pub(super) fn session_record(&self, sid: Sid) -> SessionRecord {
        let s = &self.sessions[&sid];
        SessionRecord {
            app: s.app.clone(),
            id: s.id,
            name: s.name.clone(),
            tag: s.tag.clone(),
            session_type: s.stype.name.clone(),
            state: match s.life.state() {
                SessionState::Suspended => StoredSessionState::Suspended,
                SessionState::Reconnecting => StoredSessionState::Reconnecting,
                _ => StoredSessionState::Open,
            },
            // A reconnecting session still waits for the client it had.
            attached: s.life.attached(),
            recoverable: s.stype.recoverable,
            direct: s.direct,
            common_data: s.common_data.clone(),
            created_ms: s.created_ms,
            owner_uid: s.owner_uid,
            next_task: s.tasks.len() as u64 + 1,
        }
    }

    /// Sessions found in the store were open when the last agent stopped. Recoverable
    /// ones come back with their tasks and kept outputs (`reconnecting` if a client held
    /// them); the others end `aborted`, with history.
    pub(super) fn recover_sessions(
        &mut self,
        found: Vec<SessionRecord>,
        tasks: soam_store::LoadedTasks<Task>,
        requests: Vec<(soam_store::SessionKey, Vec<(u128, soam_store::records::RequestRecord)>)>,
    ) {
        let mut tasks: HashMap<soam_store::SessionKey, soam_store::Chunks<Task>> = tasks.into_iter().collect();
        let mut requests: HashMap<soam_store::SessionKey, _> = requests.into_iter().collect();
        let mut writes = Vec::new();
        for rec in found {
            let stored = tasks.remove(&(rec.app.clone(), rec.id)).unwrap_or_default();
            let next = self.counters.entry(rec.app.clone()).or_insert(1);
            *next = (*next).max(rec.id + 1);
            let stype = self.apps.get(&rec.app).and_then(|a| a.types.get(&rec.session_type)).cloned();
            let why = match (&stype, rec.recoverable) {
                (_, false) => "the agent stopped while the session was open (it is not recoverable)",
                (None, true) => "its application or session type is no longer registered",
                (Some(t), true) if !t.recoverable => "its session type is no longer recoverable",
                _ => "",
            };
            if !why.is_empty() {
                self.abort_found(&rec, &stored, why, &mut writes);
                continue;
            }
            let stype = stype.unwrap();
            let service = self.apps[&rec.app].services[&stype.service_name].clone();
            let sid = self.next_sid;
            self.next_sid += 1;
            let mut s = Session::new(
                &rec.app,
                rec.id,
                rec.name.clone(),
                rec.tag.clone(),
                stype,
                service,
                rec.direct,
                rec.common_data.clone(),
                rec.owner_uid,
            );
            s.created_ms = rec.created_ms;
            // Ids are dense from 1; a task lost from the store (it cannot be, but the file
            // is outside our control) comes back canceled rather than shifting the rest.
            // Stored tasks come in id order: each is pushed in its place, a placeholder
            // only where one is missing (10,000,000 placeholders written over would be
            // most of a restart).
            let n = (rec.next_task.max(1) - 1) as usize;
            s.tasks = Vec::with_capacity(n);
            for (tid, t) in stored {
                let idx = (tid - 1) as usize;
                if idx >= n || idx < s.tasks.len() {
                    continue;
                }
                s.fill_lost(idx);
                s.add_recovered(t);
            }
            s.fill_lost(n);
            // RECONNECTION_IN_PROGRESS if a client held it: that client has
            // transientDisconnectionTimeout to come back, then the disconnect action applies.
            let (life, effects) = lifecycle::Life::recovered(rec.state == StoredSessionState::Suspended, rec.attached);
            s.life = life;
            tracing::info!(
                "recovered session {} ({}): {} pending, {} ended",
                s.addr(),
                s.life.state(),
                s.counts.pending,
                s.counts.done + s.counts.error + s.counts.canceled
            );
            self.add_session(sid, s);
            if let Some(found) = requests.remove(&(rec.app.clone(), rec.id)) {
                self.recover_requests(sid, found);
            }
            for e in effects {
                self.carry_out(sid, e);
            }
        }
        self.store.submit(writes, None);
    }

    fn abort_found(&mut self, rec: &SessionRecord, stored: &soam_store::Chunks<Task>, why: &str, writes: &mut Vec<Write>) {
        let count = |st: TaskState| stored.iter().filter(|(_, t)| t.state() == st).count() as u64;
        let priority = self
            .apps
            .get(&rec.app)
            .and_then(|a| a.types.get(&rec.session_type))
            .map(|t| t.priority)
            .unwrap_or(1);
        let h = HistoryRecord {
            session: soam_store::records::HistorySession {
                app: rec.app.clone(),
                id: rec.id,
                name: rec.name.clone(),
                tag: rec.tag.clone(),
                session_type: rec.session_type.clone(),
                state: "aborted".into(),
                reason: Some(why.into()),
                created_ms: rec.created_ms,
                ended_ms: Some(now_ms()),
                owner_uid: rec.owner_uid,
                priority,
                done: count(TaskState::Done),
                error: count(TaskState::Error),
                canceled: count(TaskState::Canceled) + count(TaskState::Pending),
            },
            tasks: vec![],
        };
        tracing::info!("session {}:{} aborted at start: {why}", rec.app, rec.id);
        self.history.push_front(h.clone());
        writes.push(Write::PutHistory(h));
        writes.push(Write::DeleteTasks {
            app: rec.app.clone(),
            session: rec.id,
        });
        writes.push(Write::DeleteSession {
            app: rec.app.clone(),
            id: rec.id,
        });
    }
}

/// A stored task as the agent holds it, made as the store reads it (see
/// [`soam_store::Store::open_with`]).
pub(crate) fn recovered_task(t: TaskRecord) -> Task {
    Task::recovered(t)
}
