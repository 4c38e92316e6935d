//! Answers to client requests. Each handler checks everything first and changes state
//! only once nothing can fail, so a refused request leaves no trace.

use super::*;
use soam_proto::addr::{SessionKey, SessionRef, TaskRef, check_session_name};
use soam_proto::msg::{CreateSession, Reply, Request, SessionAction, TaskAction};

type R = Result<Reply, Failure>;

/// Input bytes one connection may hold staged (one submission accepted whole).
const STAGE_BYTES_PER_CONN: usize = 1 << 30;
/// Input bytes all connections together may hold staged.
const STAGE_BYTES_TOTAL: usize = 4 << 30;

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
            Request::ListSessionsPage { query, from, limit } => self.list_sessions_page(conn, query, from, limit),
            Request::ListAppsPage { app, from, limit } => self.list_apps_page(conn, app, from, limit),
            Request::Stage { session, tasks } => self.stage(conn, &session, tasks),
            Request::SessionControl { session, action } => self.session_control(conn, &session, action),
            Request::TaskControl { task, action } => self.task_control(conn, &task, action),
            Request::Status => Ok(Reply::Status(self.status())),
            Request::ListCluster => Ok(Reply::Cluster(self.list_cluster())),
            Request::ReleaseAllocation { job } => self.release_job(job).map(|_| Reply::Ok).map_err(Failure::from),
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
    fn writes_store(&self, conn: ConnId, req: &Request) -> bool {
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
    fn reply_after(&self, conn: ConnId, id: u64, writes: Vec<Write>, reply: Reply) {
        self.reply_after_then(conn, id, writes, reply, None, None);
    }

    /// As `reply_after`, posting `on_ok` to the core once committed and `on_err` if the
    /// commit failed (so what the client was told failed does not live on in memory).
    /// The client's batch is failed at once while the store is failing
    /// ([`OnFault::Fail`]): a client is never kept waiting on a fault.
    fn reply_after_then(&self, conn: ConnId, id: u64, writes: Vec<Write>, reply: Reply, on_ok: Option<CoreMsg>, on_err: Option<CoreMsg>) {
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

    fn fail(&self, conn: ConnId, id: u64, f: impl Into<Failure>) {
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
            let ended = self.history.iter().any(|h| {
                h.session.app == r.app
                    && match &r.key {
                        SessionKey::Id(id) => h.session.id == *id,
                        SessionKey::Name(n) => h.session.name.as_deref() == Some(n),
                    }
            });
            return Err(if ended {
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
    fn by_tag(&self, conn: ConnId, app: &str, tag: &str) -> Result<Option<Sid>, Failure> {
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

    fn require_admin(&self, conn: ConnId, act: &str) -> Result<(), Failure> {
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

    fn register(&mut self, conn: ConnId, id: u64, text: String, path: String, force: bool) {
        let profile = match soam_profile::parse(&text, std::path::Path::new(&path)) {
            Ok(p) => p,
            Err(e) => return self.fail(conn, id, Failure::new(ErrorKind::Invalid, e.to_string())),
        };
        let name = profile.application.clone();
        let mut warnings = profile.warnings.clone();
        let created = !self.apps.contains_key(&name);
        if self.apps.contains_key(&name) {
            // Sessions whose type or service the update removes or changes.
            let mut affected = Vec::new();
            for (&sid, s) in self.sessions.iter().filter(|(_, s)| s.app == name) {
                let why = match profile.session_type(&s.stype.name) {
                    None => Some(format!("type '{}' removed", s.stype.name)),
                    Some(t) if t != s.stype.as_ref() => Some(format!("type '{}' changed", s.stype.name)),
                    Some(t) => match profile.service(&t.service_name) {
                        Some(svc) if svc == s.service.as_ref() => None,
                        _ => Some(format!("service '{}' changed", t.service_name)),
                    },
                };
                if let Some(why) = why {
                    affected.push((sid, format!("{} ({why})", s.addr())));
                }
            }
            affected.sort();
            if !affected.is_empty() && !force {
                let names: Vec<&str> = affected.iter().map(|(_, n)| n.as_str()).collect();
                return self.fail(
                    conn,
                    id,
                    format!(
                        "updating '{name}' would end the workload of open sessions {}; use -f to update anyway",
                        names.join(", ")
                    ),
                );
            }
            for (sid, label) in affected {
                warnings.push(format!("session {label} was aborted by the profile update"));
                self.end_session(sid, SessionState::Aborted, "the application profile was updated (soamreg -f)", true);
            }
        }
        let record = AppRecord {
            name: name.clone(),
            profile: text,
            source: path,
            enabled: self.apps.get(&name).map(|a| a.record.enabled).unwrap_or(true),
            registered_ms: now_ms(),
        };
        let writes = vec![Write::PutApp(record.clone())];
        // Sessions left open keep their (unchanged) type and service objects; instances
        // of services whose config changed are retired once idle.
        let old_services = self.apps.get(&name).map(|a| a.services.clone()).unwrap_or_default();
        self.install_app(profile, record);
        let new_services = &self.apps[&name].services;
        let mut retire = Vec::new();
        for (iid, inst) in &self.instances {
            if inst.app == name {
                let same = new_services
                    .get(&inst.service.name)
                    .is_some_and(|s| s.as_ref() == inst.service.as_ref());
                if !same {
                    retire.push(*iid);
                }
            }
        }
        for (svc_name, old_svc) in &old_services {
            // Unchanged services keep the old Arc so open sessions and instances match it.
            if let Some(new) = self.apps.get_mut(&name).and_then(|a| a.services.get_mut(svc_name))
                && new.as_ref() == old_svc.as_ref()
            {
                *new = old_svc.clone();
            }
        }
        for iid in retire {
            if let Some(i) = self.instances.get_mut(&iid) {
                i.retire = true;
            }
        }
        // Its policy or maxSlots may have changed how its sessions compete.
        self.want_app(&name);
        self.needs_schedule = true;
        self.reply_after(
            conn,
            id,
            writes,
            Reply::Registered {
                app: name,
                created,
                warnings,
            },
        );
    }

    fn unregister(&mut self, conn: ConnId, id: u64, app: String, force: bool) {
        if !self.apps.contains_key(&app) {
            return self.fail(conn, id, Failure::unknown_app(&app, self.apps.keys()));
        }
        let mut open: Vec<(u64, Sid)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.app == app)
            .map(|(&sid, s)| (s.id, sid))
            .collect();
        open.sort();
        if !open.is_empty() && !force {
            let names: Vec<String> = open.iter().map(|(i, _)| format!("{app}:{i}")).collect();
            return self.fail(
                conn,
                id,
                format!(
                    "application '{app}' has open sessions {}; use -f to abort them and unregister",
                    names.join(", ")
                ),
            );
        }
        for (_, sid) in open {
            self.end_session(sid, SessionState::Aborted, "the application was unregistered", true);
        }
        self.apps.remove(&app);
        for i in self.instances.values_mut().filter(|i| i.app == app) {
            i.retire = true;
        }
        self.needs_schedule = true;
        self.reply_after(conn, id, vec![Write::DeleteApp(app)], Reply::Ok);
    }

    fn set_enabled(&mut self, app: String, enabled: bool) -> R {
        let Some(a) = self.apps.get_mut(&app) else {
            return Err(Failure::unknown_app(&app, self.apps.keys()));
        };
        a.record.enabled = enabled;
        self.store.submit(vec![Write::PutApp(a.record.clone())], None);
        self.want_app(&app);
        self.needs_schedule = true;
        Ok(Reply::Ok)
    }

    fn create(&mut self, conn: ConnId, id: u64, c: CreateSession, once: Option<u128>) {
        if let Some(request) = once
            && self.repeated(conn, id, request, None, c.attach)
        {
            return;
        }
        let result = (|| -> Result<Sid, Failure> {
            let app = self
                .apps
                .get(&c.app)
                .ok_or_else(|| Failure::unknown_app(&c.app, self.apps.keys()))?;
            if !app.record.enabled {
                return Err(format!("application '{}' is disabled (soamcontrol app enable {})", c.app, c.app).into());
            }
            let tname = c.session_type.clone().unwrap_or_default();
            let stype = app.types.get(&tname).cloned().ok_or_else(|| {
                let mut valid: Vec<String> = app.types.keys().map(|k| format!("'{k}'")).collect();
                valid.sort();
                let hint = super::did_you_mean(&tname, app.types.keys())
                    .map(|m| format!("; did you mean '{m}'?"))
                    .unwrap_or_default();
                Failure::new(
                    ErrorKind::UnknownType,
                    format!(
                        "application '{}' has no session type '{tname}'{hint} (valid: {})",
                        c.app,
                        valid.join(", ")
                    ),
                )
            })?;
            let service = app.services[&stype.service_name].clone();
            let owner = self.conns.get(&conn).map(|c| c.uid).unwrap_or(self.agent_uid);
            if self.cfg.shared && owner != self.agent_uid && super::cluster::pool_of(&c.app, &service).is_some() {
                // Workers run as the agent's user: they may not run another user's work.
                return Err(Failure::new(
                    ErrorKind::Permission,
                    format!(
                        "service '{}' runs on Slurm allocations of the agent's user (uid {}); in a shared agent only that user's sessions may use it",
                        service.name, self.agent_uid
                    ),
                ));
            }
            let max = app.profile.consumer.max_sessions;
            let open = self.open_per_app.get(&c.app).copied().unwrap_or(0);
            if max > 0 && open >= max {
                return Err(Failure::new(
                    ErrorKind::Limit,
                    format!("application '{}' has reached maxSessions ({max} open sessions)", c.app),
                ));
            }
            for (what, v) in [("session name", &c.name), ("session tag", &c.tag)] {
                if let Some(v) = v {
                    check_session_name(what, v).map_err(|e| Failure::new(ErrorKind::Invalid, e))?;
                }
            }
            if let Some(n) = &c.name
                && self.by_name.contains_key(&(c.app.clone(), n.clone()))
            {
                return Err(Failure::new(
                    ErrorKind::Invalid,
                    format!("application '{}' already has an open session named '{n}'", c.app),
                ));
            }
            // The session's record: its common data, names and a little more.
            let record = (c.common_data.len() + c.app.len() + c.name.as_ref().map_or(0, String::len) + 256) as u64;
            self.check_store_bytes(record)?;
            if let Some(limit) = self.cfg.max_stored_sessions
                && self.sessions.len() as u64 >= limit
            {
                return Err(Failure::new(
                    ErrorKind::Limit,
                    format!(
                        "the agent holds {} sessions, its maxStoredSessions limit ({limit})",
                        self.sessions.len()
                    ),
                ));
            }
            let counter = self.counters.entry(c.app.clone()).or_insert(1);
            let sess_id = *counter;
            *counter += 1;
            let sid = self.next_sid;
            self.next_sid += 1;
            let owner_uid = self.conns.get(&conn).map(|c| c.uid).unwrap_or(self.agent_uid);
            // A shared agent that is not root cannot switch users, and running the
            // session as the agent's user would lend its rights to the owner.
            if self.cfg.shared && owner_uid != self.agent_uid && self.agent_uid != 0 {
                return Err(Failure::new(
                    ErrorKind::Permission,
                    format!(
                        "this shared agent runs as uid {}, not root, so it cannot run tasks as uid {owner_uid}; \
                         an admin must run soamd --shared as root",
                        self.agent_uid
                    ),
                ));
            }
            let s = Session::new(
                &c.app,
                sess_id,
                c.name.clone(),
                c.tag.clone(),
                stype,
                service,
                c.direct,
                c.common_data.clone(),
                owner_uid,
            );
            self.by_id.insert((c.app.clone(), sess_id), sid);
            if let Some(n) = &c.name {
                self.by_name.insert((c.app.clone(), n.clone()), sid);
            }
            *self.open_per_app.entry(s.app.clone()).or_default() += 1;
            self.sessions.insert(sid, s);
            Ok(sid)
        })();
        match result {
            Err(e) => self.fail(conn, id, e),
            Ok(sid) => {
                if c.attach {
                    self.attach(conn, sid);
                }
                let remembered = once.and_then(|request| self.remember_created(sid, request));
                let s = &self.sessions[&sid];
                let mut writes = vec![
                    Write::SetCounter {
                        app: s.app.clone(),
                        next: s.id + 1,
                    },
                    Write::PutSession(self.session_record(sid)),
                ];
                writes.extend(remembered);
                let info = self.session_info(sid);
                self.reply_after_then(conn, id, writes, Reply::Session(info), None, Some(CoreMsg::Unsaved(sid)));
            }
        }
    }

    /// Refuses what would take the store past `maxStoreBytes`: the bytes of records it
    /// holds (counted by every commit), what accepted submits are still committing, and
    /// at most `incoming` more.
    fn check_store_bytes(&self, incoming: u64) -> Result<(), Failure> {
        let Some(limit) = self.cfg.max_store_bytes else { return Ok(()) };
        let held = self.store.stored_bytes() + self.store_reserved;
        if held + incoming > limit {
            return Err(Failure::new(
                ErrorKind::Limit,
                format!(
                    "the store holds {held} bytes of records; accepting {incoming} more would pass its maxStoreBytes limit ({limit} bytes)"
                ),
            ));
        }
        Ok(())
    }

    /// Makes `conn` the holder; the previous holder is told it lost the session.
    pub(super) fn attach(&mut self, conn: ConnId, sid: Sid) {
        let _ = self.drive(sid, lifecycle::Event::Attach(conn));
    }

    fn open(&mut self, conn: ConnId, r: &SessionRef, direct: bool, all: bool) -> R {
        let sid = self.lookup(conn, r)?;
        let s = &self.sessions[&sid];
        if s.direct != direct {
            return Err(Failure::new(
                ErrorKind::Invalid,
                if s.direct {
                    format!("session {r} was created with --direct (FetchResultsDirectly); reopen it with --direct")
                } else {
                    format!("session {r} was created without --direct (FetchResultsDirectly); reopen it without --direct")
                },
            ));
        }
        self.attach(conn, sid);
        let s = self.sessions.get_mut(&sid).unwrap();
        if all && !s.stype.discard_results_on_delivery {
            let kept: Vec<u64> = s
                .tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.delivered && t.result.is_some())
                .map(|(i, _)| i as u64 + 1)
                .collect();
            s.undelivered.extend(kept);
        }
        let to_deliver = s.undelivered.len() as u64;
        Ok(Reply::Opened {
            session: self.session_info(sid),
            to_deliver,
        })
    }

    fn held_by(&self, conn: ConnId, r: &SessionRef) -> Result<Sid, Failure> {
        let sid = self.lookup(conn, r)?;
        if self.sessions[&sid].life.holder() != Some(conn) {
            return Err(Failure::new(
                ErrorKind::TakenOver,
                format!("session {r} is not held by this client (reopen it first: soamsession reopen {r})"),
            ));
        }
        Ok(sid)
    }

    /// Takes what this connection staged for the session: a submit ends the staging,
    /// whether it is accepted or refused.
    fn take_staged(&mut self, conn: ConnId, r: &SessionRef) -> Result<Vec<Bytes>, Failure> {
        let Ok(sid) = self.lookup(conn, r) else { return Ok(Vec::new()) };
        match self.conns.get_mut(&conn).and_then(|c| c.staged.remove(&sid)) {
            None => Ok(Vec::new()),
            Some(Staged { refused: Some(why), .. }) => Err(why),
            Some(s) => Ok(s.tasks),
        }
    }

    /// Holds tasks back for the connection's next `Submit` to the session. A refusal
    /// drops everything staged for it, so the submission fails whole.
    fn stage(&mut self, conn: ConnId, r: &SessionRef, tasks: Vec<Bytes>) -> R {
        let sid = self.held_by(conn, r)?;
        if let Some(why) = self
            .conns
            .get(&conn)
            .and_then(|c| c.staged.get(&sid))
            .and_then(|s| s.refused.clone())
        {
            return Err(why);
        }
        let refuse = |core: &mut Core, why: Failure| {
            let why = Failure::new(why.kind, format!("{}; nothing of this submission was accepted", why.message));
            if let Some(c) = core.conns.get_mut(&conn) {
                c.staged.insert(
                    sid,
                    Staged {
                        refused: Some(why.clone()),
                        ..Default::default()
                    },
                );
            }
            Err(why)
        };
        if let Some((i, big)) = tasks.iter().enumerate().find(|(_, t)| t.len() > soam_proto::frame::MAX_PAYLOAD) {
            let why = format!(
                "a task input is {} bytes (#{} of a batch); the limit is {} bytes",
                big.len(),
                i + 1,
                soam_proto::frame::MAX_PAYLOAD
            );
            return refuse(self, Failure::new(ErrorKind::Limit, why));
        }
        let bytes: usize = tasks.iter().map(|t| t.len()).sum();
        let everywhere: usize = self.conns.values().flat_map(|c| c.staged.values()).map(|s| s.bytes).sum();
        let here: usize = self.conns.get(&conn).map_or(0, |c| c.staged.values().map(|s| s.bytes).sum());
        if here + bytes > STAGE_BYTES_PER_CONN || everywhere + bytes > STAGE_BYTES_TOTAL {
            let why = format!(
                "a submission over {STAGE_BYTES_PER_CONN} bytes of input (or {STAGE_BYTES_TOTAL} staged by all clients) is too large to accept whole; submit it in parts"
            );
            return refuse(self, Failure::new(ErrorKind::Limit, why));
        }
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(Reply::Ok) };
        let st = c.staged.entry(sid).or_default();
        st.bytes += bytes;
        st.tasks.extend(tasks);
        Ok(Reply::Staged {
            count: st.tasks.len() as u64,
        })
    }

    fn submit(&mut self, conn: ConnId, id: u64, r: &SessionRef, staged: Vec<Bytes>, inputs: Vec<Bytes>, once: Option<u128>) {
        let sid = match self.held_by(conn, r) {
            Ok(s) => s,
            Err(e) => return self.fail(conn, id, e),
        };
        if inputs.len() > soam_proto::frame::MAX_TASKS_PER_SUBMIT {
            let msg = format!(
                "{} tasks in one submit; the limit is {} (send several)",
                inputs.len(),
                soam_proto::frame::MAX_TASKS_PER_SUBMIT
            );
            return self.fail(conn, id, Failure::new(ErrorKind::Limit, msg));
        }
        if let Some((i, big)) = inputs.iter().enumerate().find(|(_, t)| t.len() > soam_proto::frame::MAX_PAYLOAD) {
            let msg = format!(
                "task {} input is {} bytes; the limit is {} bytes",
                i + 1,
                big.len(),
                soam_proto::frame::MAX_PAYLOAD
            );
            return self.fail(conn, id, Failure::new(ErrorKind::Limit, msg));
        }
        let inputs = if staged.is_empty() {
            inputs
        } else {
            let mut all = staged;
            all.extend(inputs);
            all
        };
        if let Some(limit) = self.cfg.max_stored_tasks {
            let held: u64 = self.sessions.values().map(|s| s.tasks.len() as u64).sum();
            if held + inputs.len() as u64 > limit {
                let msg = format!(
                    "accepting {} more tasks would pass the maxStoredTasks limit ({limit}; {held} held)",
                    inputs.len()
                );
                return self.fail(conn, id, Failure::new(ErrorKind::Limit, msg));
            }
        }
        // The most the commit can write: every task's row at its widest. Held against
        // the limit until the commit is done and counted by the store.
        let mut reserved = 0;
        if self.sessions[&sid].stype.recoverable {
            let app = &self.sessions[&sid].app;
            reserved = inputs.iter().map(|t| soam_store::new_task_bytes(app, t.len())).sum::<u64>()
                + once.map_or(0, |_| soam_store::REQUEST_ROW_BYTES + app.len() as u64);
            if let Err(e) = self.check_store_bytes(reserved) {
                return self.fail(conn, id, e);
            }
        }
        let now = now_ms();
        let s = self.sessions.get_mut(&sid).unwrap();
        let first = s.tasks.len() as u64 + 1;
        let count = inputs.len() as u64;
        let recoverable = s.stype.recoverable;
        for input in inputs {
            let idx = s.tasks.len() as u32;
            s.tasks.push(Task::new(input, now));
            // A recoverable session's tasks run once committed (`accepted`): a submit
            // the store could not keep is refused and none of it runs.
            if !recoverable {
                s.pending.push_back(idx);
            }
        }
        s.counts.pending += count;
        self.needs_schedule = !recoverable;
        let _ = self.drive(sid, lifecycle::Event::Work);
        let s = &self.sessions[&sid];
        let writes = if recoverable {
            let records = (first..first + count)
                .map(|tid| (tid, Self::task_record(s, (tid - 1) as usize)))
                .collect();
            let (app, sess) = (s.app.clone(), s.id);
            let mut writes = vec![
                Write::PutTasks {
                    app,
                    session: sess,
                    tasks: records,
                },
                Write::PutSession(self.session_record(sid)),
            ];
            if let Some(request) = once {
                writes.extend(self.remember_submit(sid, request, first, count));
            }
            writes
        } else {
            if let Some(request) = once {
                self.remember_submit(sid, request, first, count);
            }
            return self.reply_after(conn, id, Vec::new(), Reply::Submitted { first, count });
        };
        let why = String::from("the store could not save them");
        self.store_reserved += reserved;
        self.reply_after_then(
            conn,
            id,
            writes,
            Reply::Submitted { first, count },
            Some(CoreMsg::Accepted {
                sid,
                first,
                count,
                reserved,
            }),
            Some(CoreMsg::NotAccepted {
                sid,
                first,
                count,
                why,
                reserved,
            }),
        );
    }

    /// Committed tasks of a recoverable session join its queue.
    pub(super) fn accepted(&mut self, sid: Sid, first: u64, count: u64, reserved: u64) {
        self.store_reserved = self.store_reserved.saturating_sub(reserved);
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        for tid in first..first + count {
            let idx = (tid - 1) as u32;
            if s.tasks.get(idx as usize).is_some_and(|t| t.state == TaskState::Pending) {
                s.pending.push_back(idx);
            }
        }
        self.needs_schedule = true;
    }

    /// Tasks whose submit was refused for a failed commit: they end canceled and
    /// delivered (nobody waits for them) and never run; their ids stay used.
    pub(super) fn not_accepted(&mut self, sid: Sid, first: u64, count: u64, why: &str, reserved: u64) {
        self.store_reserved = self.store_reserved.saturating_sub(reserved);
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.remembered.forget_first(first);
        for tid in first..first + count {
            let idx = (tid - 1) as usize;
            if s.tasks.get(idx).is_some_and(|t| t.state == TaskState::Pending) {
                s.set_state(idx, TaskState::Canceled);
                let t = &mut s.tasks[idx];
                t.ended_ms = now_ms();
                t.delivered = true;
                t.result = Some(boxed(Bytes::from(format!("not accepted: {why}"))));
            }
        }
        self.dirty.insert(sid);
    }

    fn ack(&mut self, conn: ConnId, r: &SessionRef, tasks: Vec<u64>) {
        let Ok(sid) = self.held_by(conn, r) else { return };
        let s = self.sessions.get_mut(&sid).unwrap();
        let discard = s.stype.discard_results_on_delivery;
        let mut acked = Vec::with_capacity(tasks.len());
        for tid in tasks {
            if s.unacked.remove(&tid) {
                let t = &mut s.tasks[(tid - 1) as usize];
                t.delivered = true;
                // Failure messages are small and wanted by views and history.
                if discard && t.state == TaskState::Done {
                    t.result = None;
                }
                acked.push(tid);
            }
        }
        self.persist_tasks(sid, acked);
        self.dirty.insert(sid);
    }

    /// Leaves the session open and unheld. From a shell this acts on a session another
    /// client holds; that client is told it was taken over.
    fn detach(&mut self, conn: ConnId, r: &SessionRef) -> R {
        let sid = self.lookup(conn, r)?;
        let _ = self.drive(sid, lifecycle::Event::Detach { by: conn });
        Ok(Reply::Ok)
    }

    fn finish(&mut self, conn: ConnId, r: &SessionRef, state: SessionState) -> R {
        let sid = self.lookup(conn, r)?;
        let reason = if state == SessionState::Closed {
            "closed by a client"
        } else {
            "aborted by a client"
        };
        let holder = self.sessions[&sid].life.holder();
        // The caller hears it in the reply; another holder hears it as an event.
        self.end_session(sid, state, reason, holder != Some(conn));
        Ok(Reply::Ok)
    }

    fn update_common(&mut self, conn: ConnId, r: &SessionRef, data: Bytes) -> R {
        let sid = self.lookup(conn, r)?;
        let s = self.sessions.get_mut(&sid).unwrap();
        s.common_data = data.clone();
        let session = s.id;
        let entered: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.entered == Some(sid) && i.bound == Some(sid))
            .map(|(&id, _)| id)
            .collect();
        for iid in entered {
            self.instances.get_mut(&iid).unwrap().updating += 1;
            self.send_method(iid, Kind::SessionUpdate, sid, session, data.clone());
        }
        self.persist_session(sid);
        Ok(Reply::Ok)
    }

    fn session_control(&mut self, conn: ConnId, r: &SessionRef, action: SessionAction) -> R {
        let sid = self.lookup(conn, r)?;
        match action {
            SessionAction::Kill => self.end_session(sid, SessionState::Aborted, "killed by an administrator", true),
            SessionAction::Suspend => self
                .drive(sid, lifecycle::Event::Suspend)
                .map_err(|_| format!("session {r} is already suspended"))?,
            SessionAction::Resume => self
                .drive(sid, lifecycle::Event::Resume)
                .map_err(|_| format!("session {r} is not suspended (it is {})", self.sessions[&sid].life.state()))?,
        }
        Ok(Reply::Ok)
    }

    fn task_control(&mut self, conn: ConnId, r: &TaskRef, action: TaskAction) -> R {
        let sid = self.lookup(conn, &r.session)?;
        let s = self.sessions.get_mut(&sid).unwrap();
        if r.task == 0 || r.task > s.tasks.len() as u64 {
            let have = match s.tasks.len() {
                0 => "it has no tasks".to_string(),
                1 => "its only task is 1".to_string(),
                n => format!("its tasks are 1 to {n}"),
            };
            return Err(Failure::new(
                ErrorKind::UnknownSession,
                format!("session {} has no task {} ({have})", r.session, r.task),
            ));
        }
        let idx = (r.task - 1) as usize;
        let state = s.tasks[idx].state;
        match (action, state) {
            (TaskAction::Kill, TaskState::Pending) => {
                s.pending.retain(|&i| i as usize != idx);
                self.end_task(sid, idx, TaskState::Canceled, Bytes::from_static(b"killed by an administrator"));
            }
            (TaskAction::Kill, TaskState::Running) => {
                self.end_task(sid, idx, TaskState::Canceled, Bytes::from_static(b"killed by an administrator"));
                self.cleanup_running(sid, r.task);
            }
            (TaskAction::Kill, s) => return Err(format!("task {}:{} has already ended ({s})", r.session, r.task).into()),
            (TaskAction::Requeue, TaskState::Pending) => return Err(format!("task {}:{} is already pending", r.session, r.task).into()),
            (TaskAction::Requeue, TaskState::Running) => {
                s.set_state(idx, TaskState::Pending);
                s.tasks[idx].attempts = s.tasks[idx].attempts.saturating_sub(1);
                s.pending.push_front(idx as u32);
                self.cleanup_running(sid, r.task);
            }
            (TaskAction::Requeue, _) => {
                let tid = r.task;
                s.undelivered.remove(&tid);
                s.unacked.remove(&tid);
                let t = &mut s.tasks[idx];
                t.result = None;
                t.failures = 0;
                t.delivered = false;
                s.set_state(idx, TaskState::Pending);
                s.pending.push_back(idx as u32);
                self.persist_tasks(sid, [r.task]);
            }
        }
        let _ = self.drive(sid, lifecycle::Event::Work);
        self.needs_schedule = true;
        Ok(Reply::Ok)
    }

    /// The task no longer runs as far as the session is concerned; its instance gets
    /// taskCleanupPeriod to finish, then is stopped.
    fn cleanup_running(&mut self, sid: Sid, task: u64) {
        let period = self.sessions[&sid].stype.task_cleanup_period_ms;
        let insts: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.expect.iter().any(|e| e.kind == Kind::Invoke && e.sid == sid && e.task == task))
            .map(|(&id, _)| id)
            .collect();
        for inst in insts {
            self.after(period, Timer::Cleanup { inst, sid });
        }
    }

    /// Moves a task to an end state and queues its output for the holder.
    pub(super) fn end_task(&mut self, sid: Sid, idx: usize, state: TaskState, result: Bytes) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.set_state(idx, state);
        let t = &mut s.tasks[idx];
        t.ended_ms = now_ms();
        t.result = Some(boxed(result));
        if s.stype.recoverable {
            // Delivered once committed (see persist::commit_ends).
            s.persisting += 1;
            self.pending_ends.push((sid, idx as u64 + 1));
        } else {
            s.undelivered.insert(idx as u64 + 1);
        }
        self.dirty.insert(sid);
        if state == TaskState::Error {
            let _ = self.drive(sid, lifecycle::Event::TaskFailed { task: idx as u64 + 1 });
        }
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
        _ => return None,
    })
}
