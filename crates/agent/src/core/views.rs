//! What `soamview` and `soamcontrol agent status` show, built from live state (and the
//! in-memory history), never from the store: a view costs no disk access.

use super::*;
use soam_proto::addr::SessionRef;
use soam_proto::msg::{AgentStatus, AppInfo, Reply, SessionInfo, SessionQuery, TaskInfo};
use soam_store::records::HistoryTask;

impl Core {
    pub(super) fn session_info(&self, sid: Sid) -> SessionInfo {
        let s = &self.sessions[&sid];
        let undelivered = (s.undelivered.len() + s.unacked.len()) as u64;
        SessionInfo {
            app: s.app.clone(),
            id: s.id,
            name: s.name.clone(),
            tag: s.tag.clone(),
            session_type: s.stype.name.clone(),
            state: s.state,
            priority: s.stype.priority,
            recoverable: s.stype.recoverable,
            direct: s.direct,
            pending: s.counts.pending,
            running: s.counts.running,
            done: s.counts.done,
            error: s.counts.error,
            canceled: s.counts.canceled,
            undelivered,
            created_ms: s.created_ms,
            ended_ms: None,
            holder: s.holder.and_then(|c| self.conns.get(&c)).map(|c| c.label.clone()),
            orphaned: s.holder.is_none() && s.counts.pending == 0 && s.counts.running == 0 && undelivered > 0,
            owner_uid: s.owner_uid,
            reason: None,
        }
    }

    fn visible(&self, conn: ConnId, owner: u32) -> bool {
        self.may_act(conn, owner)
    }

    pub(super) fn list_sessions(&self, conn: ConnId, q: SessionQuery) -> Result<Reply, String> {
        if let Some(app) = &q.app
            && !self.apps.contains_key(app)
            && !self.sessions.values().any(|s| &s.app == app)
        {
            return Err(format!("unknown application '{app}'"));
        }
        let mut out: Vec<SessionInfo> = self
            .sessions
            .iter()
            // Filter on what is cheap before building rows.
            .filter(|(_, s)| {
                q.app.as_ref().is_none_or(|a| a == &s.app) && q.state.is_none_or(|st| st == s.state) && self.visible(conn, s.owner_uid)
            })
            .map(|(&sid, _)| self.session_info(sid))
            .collect();
        if q.all {
            out.extend(
                self.history
                    .iter()
                    .filter(|h| q.app.as_ref().is_none_or(|a| a == &h.session.app) && self.visible(conn, h.session.owner_uid))
                    .map(history_info),
            );
        }
        out.retain(|s| q.state.is_none_or(|st| st == s.state) && (!q.orphaned || s.orphaned));
        out.sort_by(|a, b| a.app.cmp(&b.app).then(a.id.cmp(&b.id)));
        Ok(Reply::Sessions(out))
    }

    pub(super) fn list_tasks(&self, conn: ConnId, r: &SessionRef, state: Option<TaskState>) -> Result<Reply, String> {
        let sid = self.lookup(conn, r)?;
        let s = &self.sessions[&sid];
        let tasks = s
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| state.is_none_or(|st| st == t.state))
            .map(|(i, t)| TaskInfo {
                task: i as u64 + 1,
                state: t.state,
                attempts: t.attempts,
                submitted_ms: t.submitted_ms,
                started_ms: (t.started_ms > 0).then_some(t.started_ms),
                ended_ms: (t.ended_ms > 0).then_some(t.ended_ms),
                input_bytes: t.input.len() as u64,
                output_bytes: (t.state == TaskState::Done)
                    .then(|| t.result.as_ref().map(|r| r.len() as u64))
                    .flatten(),
                error: (matches!(t.state, TaskState::Error | TaskState::Canceled))
                    .then(|| t.result.as_ref().map(|r| String::from_utf8_lossy(r).into_owned()))
                    .flatten(),
                delivered: t.delivered,
                node: self.node_name(t.node),
            })
            .collect();
        Ok(Reply::Tasks(tasks))
    }

    pub(super) fn list_history(&self, conn: ConnId, app: Option<String>) -> Result<Reply, String> {
        let out = self
            .history
            .iter()
            .filter(|h| app.as_ref().is_none_or(|a| a == &h.session.app) && self.visible(conn, h.session.owner_uid))
            .map(history_info)
            .collect();
        Ok(Reply::Sessions(out))
    }

    /// Task history is on disk only: read it on a blocking thread, reply from there.
    pub(super) fn task_history(&self, conn: ConnId, id: u64, r: &SessionRef) {
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
                let _ = out.send(AgentFrame::Reply {
                    id,
                    result: Err(format!("session {r} belongs to another user")),
                });
                return;
            }
            None => {
                let why = if self.lookup(conn, r).is_ok() {
                    "has not ended (see soamview task)"
                } else {
                    "is not in history"
                };
                let _ = out.send(AgentFrame::Reply {
                    id,
                    result: Err(format!("session {r} {why}")),
                });
                return;
            }
        };
        let (app, sess) = (h.session.app.clone(), h.session.id);
        let reader = self.store.reader();
        let rt = tokio::runtime::Handle::current();
        // Read after every write queued before this request is committed, so a client
        // told its session ended finds the session's tasks here (read-your-writes).
        let read = move || {
            let result = reader.task_history(&app, sess).map_err(|e| e.to_string()).map(|tasks| {
                Reply::Tasks(
                    tasks
                        .into_iter()
                        .map(|t| TaskInfo {
                            task: t.task,
                            state: t.state.parse().unwrap_or(TaskState::Error),
                            attempts: t.attempts,
                            submitted_ms: t.submitted_ms,
                            started_ms: t.started_ms,
                            ended_ms: t.ended_ms,
                            input_bytes: 0,
                            output_bytes: None,
                            error: t.error,
                            delivered: false,
                            node: None,
                        })
                        .collect(),
                )
            });
            let _ = out.send(AgentFrame::Reply { id, result });
        };
        self.store.barrier(Box::new(move |_| {
            rt.spawn_blocking(read);
        }));
    }

    pub(super) fn list_apps(&self, conn: ConnId, app: Option<String>) -> Result<Reply, String> {
        let admin = self.is_admin(conn);
        if let Some(a) = &app
            && !self.apps.contains_key(a)
        {
            return Err(format!("unknown application '{a}'"));
        }
        let mut out: Vec<AppInfo> = self
            .apps
            .values()
            .filter(|a| app.as_ref().is_none_or(|n| n == &a.record.name))
            .map(|a| AppInfo {
                name: a.record.name.clone(),
                enabled: a.record.enabled,
                policy: a.profile.consumer.policy.as_str().into(),
                services: a.profile.services.iter().map(|s| s.name.clone()).collect(),
                session_types: a.profile.session_types.iter().map(|t| t.name.clone()).collect(),
                open_sessions: self.sessions.values().filter(|s| s.app == a.record.name).count() as u64,
                max_sessions: a.profile.consumer.max_sessions,
                max_slots: a.profile.consumer.max_slots,
                registered_ms: a.record.registered_ms,
                source: a.record.source.clone(),
                // `env` values may be secrets: only admins see them.
                profile: if admin {
                    a.record.profile.clone()
                } else {
                    soam_profile::redact_env(&a.record.profile, &a.profile)
                },
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Reply::Apps(out))
    }

    pub(super) fn status(&self) -> AgentStatus {
        AgentStatus {
            version: soam_proto::SOAM_VERSION.into(),
            protocol: soam_proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs(),
            slots: self.cfg.slots,
            instances: self.instances.len() as u32,
            busy_instances: self.instances.values().filter(|i| i.invokes > 0).count() as u32,
            apps: self.apps.len() as u32,
            open_sessions: self.sessions.len() as u32,
            // The field is text, so a failing store is said here without a new field
            // (docs/compatibility.md).
            store: match &self.store_fault {
                None => self.store.path().display().to_string(),
                Some(e) => format!(
                    "{} (DEGRADED: cannot be written: {e}; writes refused, retried every second)",
                    self.store.path().display()
                ),
            },
            socket: self.cfg.paths.socket.display().to_string(),
        }
    }

    pub(super) fn history_record(&self, s: &Session, state: SessionState, reason: &str, ended: u64) -> HistoryRecord {
        use soam_profile::TaskHistory;
        let keep = |t: &Task| match s.stype.persist_task_history {
            TaskHistory::None => false,
            TaskHistory::All => true,
            TaskHistory::Error => t.state == TaskState::Error,
        };
        let tasks = s
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| keep(t))
            .map(|(i, t)| HistoryTask {
                task: i as u64 + 1,
                state: t.state.as_str().into(),
                attempts: t.attempts,
                submitted_ms: t.submitted_ms,
                started_ms: (t.started_ms > 0).then_some(t.started_ms),
                ended_ms: (t.ended_ms > 0).then_some(t.ended_ms),
                error: (t.state == TaskState::Error)
                    .then(|| t.result.as_ref().map(|r| String::from_utf8_lossy(r).into_owned()))
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

fn history_info(h: &HistoryRecord) -> SessionInfo {
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
