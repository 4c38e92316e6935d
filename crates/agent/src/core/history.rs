//! Ended sessions: the record written when one ends (`history_record`), and what
//! `soamview history` and `soamview task` of an ended session show. Summaries of the
//! latest ended sessions are kept in memory; task rows are read from the store, off the
//! core, only when asked for.

use super::Core;
use super::failure::Failure;
use super::session::Session;
use super::task::Task;
use crate::ports::ConnId;
use soam_proto::addr::{SessionKey, SessionRef};
use soam_proto::msg::{AgentFrame, ErrorKind, PAGE_ROWS, Reply, SessionInfo, SessionState, TaskInfo, TaskState, VIEW_ERROR_BYTES};
use soam_store::records::{HistoryRecord, HistoryTask};

impl Core {
    pub(super) fn list_history(&self, conn: ConnId, app: Option<String>) -> Result<Reply, Failure> {
        let out = self
            .history
            .iter()
            .filter(|h| app.as_ref().is_none_or(|a| a == &h.session.app) && self.visible(conn, h.session.owner_uid))
            .map(history_info)
            .collect();
        Ok(Reply::Sessions(out))
    }

    /// Task history is on disk only: read it on a blocking thread, reply from there.
    /// `page`: (from, limit) for a `TaskHistoryPage`; `None` for the whole history.
    pub(super) fn task_history(&self, conn: ConnId, id: u64, r: &SessionRef, page: Option<(u64, u32)>) {
        let Some(out) = self.conns.get(&conn).map(|c| c.out.clone()) else {
            return;
        };
        let h = match self.ended_one(conn, r) {
            Ok(h) => h,
            Err(f) => {
                let f = match f.kind {
                    ErrorKind::UnknownSession if self.lookup(conn, r).is_ok() => {
                        Failure::new(ErrorKind::Invalid, format!("session {r} has not ended (see soamview task)"))
                    }
                    _ => f,
                };
                let _ = out.send(AgentFrame::Failed {
                    id,
                    kind: f.kind,
                    message: f.message,
                });
                return;
            }
        };
        let (app, sess) = (h.session.app.clone(), h.session.id);
        let reader = self.store.reader();
        let launcher = self.launcher.clone();
        // Read after every write queued before this request is committed, so a client
        // told its session ended finds the session's tasks here (read-your-writes).
        let read = move || {
            let info = |t: HistoryTask| TaskInfo {
                task: t.task,
                state: t.state.parse().unwrap_or(TaskState::Error),
                attempts: t.attempts,
                submitted_ms: t.submitted_ms,
                started_ms: t.started_ms,
                ended_ms: t.ended_ms,
                input_bytes: 0,
                output_bytes: None,
                error: t.error.map(|e| view_error(e.as_bytes())),
                delivered: false,
                node: None,
            };
            let result = match page {
                None => reader
                    .task_history(&app, sess)
                    .map(|t| Reply::Tasks(t.into_iter().map(info).collect())),
                Some((from, limit)) => reader
                    .task_history_page(&app, sess, from, limit.clamp(1, PAGE_ROWS) as usize)
                    .map(|(t, next)| Reply::TaskPage {
                        tasks: t.into_iter().map(info).collect(),
                        next,
                    }),
            };
            let _ = out.send(AgentFrame::Reply {
                id,
                result: result.map_err(|e| e.to_string()),
            });
        };
        self.store.barrier(Box::new(move |_| {
            launcher.run_blocking(Box::new(read));
        }));
    }

    /// The kept ended sessions `r` names, newest first: by id, that one; by name, every
    /// one with that name; failing that, `NAME@N` names the Nth of NAME's (1 the oldest),
    /// so each of several ended sessions that shared a name can be reached by it.
    /// `N` counts the sessions kept in history, so it moves when the oldest are dropped;
    /// an id never does.
    pub(super) fn ended_named(&self, r: &SessionRef) -> Vec<&HistoryRecord> {
        let of_app = || self.history.iter().filter(|h| h.session.app == r.app);
        let named = |n: &str| -> Vec<&HistoryRecord> { of_app().filter(|h| h.session.name.as_deref() == Some(n)).collect() };
        match &r.key {
            SessionKey::Id(id) => of_app().filter(|h| h.session.id == *id).collect(),
            SessionKey::Name(n) => {
                let exact = named(n);
                if !exact.is_empty() {
                    return exact;
                }
                let Some((base, nth)) = n.rsplit_once('@').and_then(|(b, k)| Some((b, k.parse::<usize>().ok()?))) else {
                    return exact;
                };
                let all = named(base);
                // `all` is newest first; @1 is the oldest.
                nth.checked_sub(1)
                    .and_then(|i| all.len().checked_sub(i + 1))
                    .map(|i| vec![all[i]])
                    .unwrap_or_default()
            }
        }
    }

    /// The one ended session `r` names that this connection may see: refused when none
    /// is kept, when it is another user's, or when a name fits several (they are listed,
    /// with how to name each).
    pub(super) fn ended_one(&self, conn: ConnId, r: &SessionRef) -> Result<&HistoryRecord, Failure> {
        let all = self.ended_named(r);
        let mine: Vec<&HistoryRecord> = all.iter().copied().filter(|h| self.visible(conn, h.session.owner_uid)).collect();
        match (mine.as_slice(), all.is_empty()) {
            ([h], _) => Ok(h),
            ([], true) => Err(Failure::new(ErrorKind::UnknownSession, format!("session {r} is not in history"))),
            ([], false) => Err(Failure::new(ErrorKind::Permission, format!("session {r} belongs to another user"))),
            (many, _) => {
                const SHOWN: usize = 10;
                let n = many.len();
                let list: Vec<String> = many
                    .iter()
                    .enumerate()
                    .take(SHOWN)
                    .map(|(i, h)| format!("{}:{} (@{}, {})", h.session.app, h.session.id, n - i, h.session.state))
                    .collect();
                let more = if n > SHOWN {
                    format!(" and {} older", n - SHOWN)
                } else {
                    String::new()
                };
                Err(Failure::new(
                    ErrorKind::Invalid,
                    format!(
                        "{r} names {n} ended sessions, newest first: {}{more}; name one by its id, or as {r}@N (1 the oldest)",
                        list.join(", ")
                    ),
                ))
            }
        }
    }

    pub(super) fn history_record(&self, s: &Session, state: SessionState, reason: &str, ended: u64) -> HistoryRecord {
        use soam_profile::TaskHistory;
        let keep = |t: &Task| match s.stype.persist_task_history {
            TaskHistory::None => false,
            TaskHistory::All => true,
            TaskHistory::Error => t.state() == TaskState::Error,
        };
        let tasks = s
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| keep(t))
            .map(|(i, t)| HistoryTask {
                task: i as u64 + 1,
                state: t.state().as_str().into(),
                attempts: t.attempts(),
                submitted_ms: t.submitted_ms(),
                started_ms: (t.started_ms() > 0).then_some(t.started_ms()),
                ended_ms: (t.ended_ms() > 0).then_some(t.ended_ms()),
                error: (t.state() == TaskState::Error)
                    .then(|| t.result().map(|r| String::from_utf8_lossy(r).into_owned()))
                    .flatten(),
            })
            .collect();
        HistoryRecord {
            session: soam_store::records::HistorySession {
                app: s.app.clone(),
                id: s.id,
                name: s.name.clone(),
                tag: s.tag.clone(),
                session_type: s.stype.name.clone(),
                state: state.as_str().into(),
                reason: Some(reason.to_string()),
                created_ms: s.created_ms,
                ended_ms: Some(ended),
                owner_uid: s.owner_uid,
                priority: s.stype.priority,
                done: s.counts.done,
                error: s.counts.error,
                canceled: s.counts.canceled,
            },
            tasks,
        }
    }
}

pub(super) fn history_info(h: &HistoryRecord) -> SessionInfo {
    let s = &h.session;
    SessionInfo {
        app: s.app.clone(),
        id: s.id,
        name: s.name.clone(),
        tag: s.tag.clone(),
        session_type: s.session_type.clone(),
        state: s.state.parse().unwrap_or(SessionState::Aborted),
        priority: s.priority,
        recoverable: false,
        direct: false,
        pending: 0,
        running: 0,
        done: s.done,
        error: s.error,
        canceled: s.canceled,
        undelivered: 0,
        created_ms: s.created_ms,
        ended_ms: s.ended_ms,
        holder: None,
        orphaned: false,
        owner_uid: s.owner_uid,
        reason: s.reason.clone(),
    }
}

/// A task's failure text as views show it: cut at [`VIEW_ERROR_BYTES`] (on a character
/// boundary), so a task that failed with megabytes of output cannot swell a listing.
pub(super) fn view_error(r: &[u8]) -> String {
    let cut = &r[..r.len().min(VIEW_ERROR_BYTES)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < r.len() {
        // A character split by the cut shows as U+FFFD at the end: drop it.
        if text.ends_with('\u{FFFD}') {
            text.pop();
        }
        text.push_str(&format!(" ... ({} bytes in all)", r.len()));
    }
    text
}
