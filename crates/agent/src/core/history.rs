//! Ended sessions: the record written when one ends (`history_record`), and what
//! `soamview history` and `soamview task` of an ended session show. Summaries of the
//! latest ended sessions are kept in memory; task rows are read from the store, off the
//! core, only when asked for.

use super::Core;
use super::failure::Failure;
use super::session::Session;
use super::task::Task;
use crate::ports::ConnId;
use soam_proto::addr::SessionRef;
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
        use soam_proto::addr::SessionKey;
        let found = self.history.iter().find(|h| {
            h.session.app == r.app
                && match &r.key {
                    SessionKey::Id(i) => h.session.id == *i,
                    SessionKey::Name(n) => h.session.name.as_deref() == Some(n.as_str()),
                }
        });
        let Some(out) = self.conns.get(&conn).map(|c| c.out.clone()) else {
            return;
        };
        let h = match found {
            Some(h) if self.visible(conn, h.session.owner_uid) => h,
            Some(_) => {
                let _ = out.send(AgentFrame::Failed {
                    id,
                    kind: ErrorKind::Permission,
                    message: format!("session {r} belongs to another user"),
                });
                return;
            }
            None => {
                let (kind, why) = if self.lookup(conn, r).is_ok() {
                    (ErrorKind::Invalid, "has not ended (see soamview task)")
                } else {
                    (ErrorKind::UnknownSession, "is not in history")
                };
                let _ = out.send(AgentFrame::Failed {
                    id,
                    kind,
                    message: format!("session {r} {why}"),
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
