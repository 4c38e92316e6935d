//! What `soamview` and `soamcontrol agent status` show, built from live state (and the
//! in-memory history), never from the store: a view costs no disk access.

use super::Core;
use super::failure::Failure;
use super::history::view_error;
use super::session::Session;
use crate::ports::{ConnId, Sid};
use soam_proto::addr::SessionRef;
use soam_proto::msg::{AgentStatus, AppInfo, PAGE_BYTES, PAGE_ROWS, Reply, SessionInfo, TaskInfo, TaskState};

/// A page of rows and where the next one starts (`None`: this was the last).
pub(super) type Page<T, C> = Result<(Vec<T>, Option<C>), Failure>;

impl Core {
    pub(super) fn session_info(&self, sid: Sid) -> SessionInfo {
        self.info_of(&self.sessions[&sid])
    }

    fn info_of(&self, s: &Session) -> SessionInfo {
        self.info_ref(s).to_owned()
    }

    pub(super) fn visible(&self, conn: ConnId, owner: u32) -> bool {
        self.may_act(conn, owner)
    }

    /// Tasks of a live session from task id `from + 1` on: at most `limit` rows and
    /// about [`PAGE_BYTES`], and a bounded scan when a state filter matches little, so
    /// one request costs the core a bounded amount of work.
    fn tasks_page(
        &self,
        conn: ConnId,
        r: &SessionRef,
        state: Option<TaskState>,
        from: u64,
        (limit, max_bytes): (usize, usize),
    ) -> Page<TaskInfo, u64> {
        let sid = self.lookup(conn, r)?;
        let s = &self.sessions[&sid];
        let scan_cap = limit.saturating_mul(64);
        let (mut out, mut bytes, mut scanned) = (Vec::new(), 0, 0usize);
        let start = from.min(s.tasks.len() as u64) as usize;
        for (i, t) in s.tasks.iter().enumerate().skip(start) {
            if out.len() >= limit || bytes >= max_bytes || scanned >= scan_cap {
                return Ok((out, Some(i as u64)));
            }
            scanned += 1;
            if state.is_some_and(|st| st != t.state()) {
                continue;
            }
            let error = (matches!(t.state(), TaskState::Error | TaskState::Canceled))
                .then(|| t.result().map(|r| view_error(r)))
                .flatten();
            bytes += 128 + error.as_ref().map_or(0, String::len);
            out.push(TaskInfo {
                task: i as u64 + 1,
                state: t.state(),
                attempts: t.attempts(),
                submitted_ms: t.submitted_ms(),
                started_ms: (t.started_ms() > 0).then_some(t.started_ms()),
                ended_ms: (t.ended_ms() > 0).then_some(t.ended_ms()),
                input_bytes: t.input().len() as u64,
                output_bytes: (t.state() == TaskState::Done).then(|| t.result().map(|r| r.len() as u64)).flatten(),
                error,
                delivered: t.delivered(),
                node: self.node_name(t.node()),
            });
        }
        Ok((out, None))
    }

    pub(super) fn list_tasks(&self, conn: ConnId, r: &SessionRef, state: Option<TaskState>) -> Result<Reply, Failure> {
        self.tasks_page(conn, r, state, 0, (usize::MAX, usize::MAX))
            .map(|(t, _)| Reply::Tasks(t))
    }

    pub(super) fn list_tasks_page(
        &self,
        conn: ConnId,
        r: &SessionRef,
        state: Option<TaskState>,
        from: u64,
        limit: u32,
    ) -> Result<Reply, Failure> {
        let limit = limit.clamp(1, PAGE_ROWS) as usize;
        self.tasks_page(conn, r, state, from, (limit, PAGE_BYTES))
            .map(|(tasks, next)| Reply::TaskPage { tasks, next })
    }

    /// Applications in name order after `from`: at most `limit` and, past the first,
    /// about `max_bytes` of profile text.
    fn apps_page(
        &self,
        conn: ConnId,
        app: Option<&String>,
        from: Option<&String>,
        (limit, max_bytes): (usize, usize),
    ) -> Page<AppInfo, String> {
        let admin = self.is_admin(conn);
        if let Some(a) = app
            && !self.apps.contains_key(a)
        {
            return Err(Failure::unknown_app(a, self.apps.keys()));
        }
        let mut names: Vec<&String> = self
            .apps
            .keys()
            .filter(|n| app.is_none_or(|a| a == *n) && from.is_none_or(|f| *n > f))
            .collect();
        names.sort_unstable();
        let (mut out, mut bytes, mut next) = (Vec::new(), 0, None);
        for name in names {
            if out.len() >= limit || bytes >= max_bytes {
                next = out.last().map(|a: &AppInfo| a.name.clone());
                break;
            }
            let a = &self.apps[name];
            let info = AppInfo {
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
            };
            bytes += 256 + info.profile.len() + info.source.len();
            out.push(info);
        }
        Ok((out, next))
    }

    pub(super) fn list_apps(&self, conn: ConnId, app: Option<String>) -> Result<Reply, Failure> {
        self.apps_page(conn, app.as_ref(), None, (usize::MAX, usize::MAX))
            .map(|(a, _)| Reply::Apps(a))
    }

    pub(super) fn list_apps_page(&self, conn: ConnId, app: Option<String>, from: Option<String>, limit: u32) -> Result<Reply, Failure> {
        let limit = limit.clamp(1, PAGE_ROWS) as usize;
        self.apps_page(conn, app.as_ref(), from.as_ref(), (limit, PAGE_BYTES))
            .map(|(apps, next)| Reply::AppPage { apps, next })
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
}
