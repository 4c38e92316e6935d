//! Answers to client requests. Each handler checks everything first and changes state
//! only once nothing can fail, so a refused request leaves no trace.

use super::Core;
use super::failure::Failure;
use crate::ports::{ConnId, CoreMsg, Sid};
use soam_proto::addr::{SessionKey, SessionRef};
use soam_proto::frame::PageKind;
use soam_proto::msg::{AgentFrame, ErrorKind, Reply, Request, SessionState};
use soam_store::Write;

pub(super) type R = Result<Reply, Failure>;

impl Core {
    pub(super) fn request(&mut self, conn: ConnId, id: u64, req: Request) {
        // An id makes a create or submit idempotent; other requests are carried out as
        // they are.
        let (once, req) = match req {
            Request::Once { request, req } => (Some(super::once::key(&request)), *req),
            req => (None, req),
        };
        if let Some(act) = admin_act(&req)
            && let Err(e) = self.require_admin(conn, act)
        {
            return self.fail(conn, id, e);
        }
        if let Some(why) = &self.store_fault
            && self.writes_store(conn, &req)
        {
            let msg = format!(
                "refused: the store cannot be written ({why}); nothing was changed. soamd retries every second: see soamcontrol agent status"
            );
            return self.fail(conn, id, Failure::new(ErrorKind::StoreFault, msg));
        }
        let result = match req {
            Request::RegisterApp { profile, path, force } => return self.register(conn, id, profile, path, force),
            Request::UnregisterApp { app, force } => return self.unregister(conn, id, app, force),
            Request::ListApps { app } => self.list_apps(conn, app),
            Request::SetAppEnabled { app, enabled } => self.set_enabled(app, enabled),
            Request::CreateSession(c) => return self.create(conn, id, c, once),
            Request::OpenSession { session, direct, all } => self.open(conn, &session, direct, all),
            Request::Submit { session, tasks } => {
                // A repeat's staged tasks are a copy of what was accepted: dropped.
                let staged = self.take_staged(conn, &session);
                if let Some(request) = once
                    && let Ok(sid) = self.held_by(conn, &session)
                    && self.repeated(conn, id, request, Some(sid), false)
                {
                    return;
                }
                return match staged {
                    Ok(staged) => self.submit(conn, id, &session, staged, tasks, once),
                    Err(why) => self.fail(conn, id, why),
                };
            }
            Request::Once { .. } => Err(Failure::new(ErrorKind::Protocol, "a Once request inside another")),
            Request::Ack { session, tasks } => return self.ack(conn, &session, tasks),
            Request::Detach { session } => self.detach(conn, &session),
            Request::Close { session } => self.finish(conn, &session, SessionState::Closed),
            Request::Abort { session } => self.finish(conn, &session, SessionState::Aborted),
            Request::UpdateCommonData { session, data } => self.update_common(conn, &session, data),
            Request::ListSessions(q) => self.list_sessions(conn, q),
            Request::ListTasks { session, state } => self.list_tasks(conn, &session, state),
            Request::History { app } => self.list_history(conn, app),
            Request::TaskHistory { session } => return self.task_history(conn, id, &session, None),
            Request::ListTasksPage {
                session,
                state,
                from,
                limit,
            } => self.list_tasks_page(conn, &session, state, from, limit),
            Request::TaskHistoryPage { session, from, limit } => {
                return self.task_history(conn, id, &session, Some((from, limit)));
            }
            Request::ListSessionsPage { query, from, limit } => {
                return self.answer_session_page(conn, id, PageKind::RowsFirst, query, (from, limit));
            }
            Request::ListSessionsAhead { query, from, limit } => {
                return self.answer_session_page(conn, id, PageKind::NextFirst, query, (from, limit));
            }
            Request::ListAppsPage { app, from, limit } => self.list_apps_page(conn, app, from, limit),
            Request::Stage { session, tasks } => self.stage(conn, &session, tasks),
            Request::SessionControl { session, action } => self.session_control(conn, &session, action),
            Request::TaskControl { task, action } => self.task_control(conn, &task, action),
            Request::Status => Ok(Reply::Status(self.status())),
            Request::ListCluster => Ok(Reply::Cluster(self.list_cluster())),
            Request::ReleaseAllocation { job } => self.release_job(job).map(|_| Reply::Ok).map_err(Failure::from),
            Request::PackageChunk { data } => self.package_chunk(conn, data),
            Request::DeployPackage { name } => match self.deploy_package(conn, id, name) {
                // The upload's job answers once the package is checked and unpacked.
                Ok(()) => return,
                Err(f) => Err(f),
            },
            Request::RemovePackage { name } => self.remove_package(&name),
            Request::ListPackages { name } => self.list_packages(name),
            Request::Watch { app, session } => self.watch(conn, app, session),
            Request::Figures => Ok(Reply::Figures(self.figures())),
            Request::Ping => Ok(Reply::Ok),
            Request::Shutdown => {
                self.send(conn, AgentFrame::Reply { id, result: Ok(Reply::Ok) });
                tracing::info!("shutdown requested by a client");
                let _ = self.shutdown.send(true);
                return;
            }
        };
        self.answer(conn, id, result);
    }

    /// Whether a request would change the store: refused while it cannot be written, so
    /// that nothing is acknowledged that a restart would forget. Opening, detaching and
    /// acknowledging are kept records of the agent's own (committed once the store
    /// works), and a non-recoverable session's tasks never touch the store.
    pub(super) fn writes_store(&self, conn: ConnId, req: &Request) -> bool {
        match req {
            Request::RegisterApp { .. }
            | Request::UnregisterApp { .. }
            | Request::SetAppEnabled { .. }
            | Request::CreateSession(_)
            | Request::Close { .. }
            | Request::Abort { .. }
            | Request::UpdateCommonData { .. }
            | Request::SessionControl { .. }
            | Request::TaskControl { .. } => true,
            // An unknown session is left to the handler, which says so.
            Request::Submit { session, .. } => self
                .lookup(conn, session)
                .ok()
                .and_then(|sid| self.sessions.get(&sid))
                .is_some_and(|s| s.stype.recoverable),
            _ => false,
        }
    }

    /// Replies once `writes` are committed (or at once if there are none).
    pub(super) fn reply_after(&self, conn: ConnId, id: u64, writes: Vec<Write>, reply: Reply) {
        self.reply_after_then(conn, id, writes, reply, None, None);
    }

    /// As `reply_after`, posting `on_ok` to the core once committed and `on_err` if the
    /// commit failed (so what the client was told failed does not live on in memory).
    /// The client's batch is failed at once while the store is failing
    /// ([`OnFault::Fail`]): a client is never kept waiting on a fault.
    pub(super) fn reply_after_then(
        &self,
        conn: ConnId,
        id: u64,
        writes: Vec<Write>,
        reply: Reply,
        on_ok: Option<CoreMsg>,
        on_err: Option<CoreMsg>,
    ) {
        if writes.is_empty() {
            // Nothing to commit (a submit to a session that is not recoverable, on every
            // round trip): answered now, as the store would answer at once, without a
            // callback boxed and two handles cloned for it.
            if let Some(m) = on_ok {
                self.inbox.send(m);
            }
            return self.answer(conn, id, Ok(reply));
        }
        let inbox = self.inbox.clone();
        let out = self.conns.get(&conn).map(|c| c.out.clone());
        self.store.submit_as(
            writes,
            Some(Box::new(move |r| {
                if let Some(m) = if r.is_ok() { on_ok } else { on_err } {
                    inbox.send(m);
                }
                let frame = match r {
                    Ok(_) => AgentFrame::Reply { id, result: Ok(reply) },
                    Err(e) => AgentFrame::Failed {
                        id,
                        kind: ErrorKind::StoreFault,
                        message: format!("not saved: {e}"),
                    },
                };
                if let Some(out) = out {
                    let _ = out.send(frame);
                }
            })),
            soam_store::OnFault::Fail,
        );
    }

    pub(super) fn fail(&self, conn: ConnId, id: u64, f: impl Into<Failure>) {
        let Failure { kind, message } = f.into();
        self.send(conn, AgentFrame::Failed { id, kind, message });
    }

    /// Sends a handler's answer.
    pub(super) fn answer(&self, conn: ConnId, id: u64, result: R) {
        match result {
            Ok(reply) => self.send(conn, AgentFrame::Reply { id, result: Ok(reply) }),
            Err(f) => self.fail(conn, id, f),
        }
    }

    /// Resolves an address to a session this connection may act on.
    pub(super) fn lookup(&self, conn: ConnId, r: &SessionRef) -> Result<Sid, Failure> {
        if !self.apps.contains_key(&r.app) && !self.sessions.values().any(|s| s.app == r.app) {
            return Err(Failure::unknown_app(&r.app, self.apps.keys()));
        }
        let sid = match &r.key {
            SessionKey::Id(id) => self.by_id.get(&(r.app.clone(), *id)).copied(),
            SessionKey::Name(n) => match self.by_name.get(&(r.app.clone(), n.clone())) {
                Some(&sid) => Some(sid),
                None => self.by_tag(conn, &r.app, n)?,
            },
        };
        let Some(sid) = sid else {
            return Err(if !self.ended_named(r).is_empty() {
                Failure::new(ErrorKind::Ended, format!("session {r} has ended (see soamview history {})", r.app))
            } else {
                Failure::new(ErrorKind::UnknownSession, format!("no session {r}"))
            });
        };
        let s = &self.sessions[&sid];
        if !self.may_act(conn, s.owner_uid) {
            return Err(Failure::new(ErrorKind::Permission, format!("session {r} belongs to another user")));
        }
        Ok(sid)
    }

    /// The one open session of `app` tagged `tag` that this connection can see: a tag
    /// stands in for a name where it is unambiguous. Names are looked up first, so a
    /// tag never hides a session's name. Scans the open sessions, only on a miss.
    pub(super) fn by_tag(&self, conn: ConnId, app: &str, tag: &str) -> Result<Option<Sid>, Failure> {
        let mut found = self
            .sessions
            .iter()
            .filter(|(_, s)| s.app == app && s.tag.as_deref() == Some(tag) && self.visible(conn, s.owner_uid));
        let Some((&sid, _)) = found.next() else {
            return Ok(None);
        };
        let rest: Vec<u64> = found.map(|(_, s)| s.id).collect();
        if rest.is_empty() {
            return Ok(Some(sid));
        }
        let mut ids: Vec<u64> = rest;
        ids.push(self.sessions[&sid].id);
        ids.sort_unstable();
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        Err(Failure::new(
            ErrorKind::Invalid,
            format!(
                "tag '{tag}' is on {} open sessions of {app} ({}); address one by APP:ID",
                ids.len(),
                ids.join(", ")
            ),
        ))
    }

    pub(super) fn may_act(&self, conn: ConnId, owner: u32) -> bool {
        !self.cfg.shared || self.conns.get(&conn).is_some_and(|c| c.admin || c.uid == owner)
    }

    pub(super) fn is_admin(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.admin)
    }

    pub(super) fn require_admin(&self, conn: ConnId, act: &str) -> Result<(), Failure> {
        if self.is_admin(conn) {
            return Ok(());
        }
        let uid = self.conns.get(&conn).map(|c| c.uid).unwrap_or(u32::MAX);
        let group = match self.cfg.admin_gid {
            Some(g) => format!("members of its adminGroup (gid {g})"),
            None => "members of its adminGroup (none is set)".to_string(),
        };
        Err(Failure::new(
            ErrorKind::Permission,
            format!(
                "{act} refused: in this shared agent that is for admins (root, uid {}, {group}); uid {uid} is not one",
                self.agent_uid
            ),
        ))
    }
}

/// The requests only an admin may make in a shared agent, named for the refusal.
fn admin_act(req: &Request) -> Option<&'static str> {
    Some(match req {
        Request::RegisterApp { .. } => "registering an application",
        Request::UnregisterApp { .. } => "unregistering an application",
        Request::SetAppEnabled { enabled: true, .. } => "enabling an application",
        Request::SetAppEnabled { enabled: false, .. } => "disabling an application",
        Request::Shutdown => "shutting the agent down",
        Request::ReleaseAllocation { .. } => "releasing an allocation",
        Request::PackageChunk { .. } | Request::DeployPackage { .. } => "deploying a service package",
        Request::RemovePackage { .. } => "removing a service package",
        _ => return None,
    })
}
