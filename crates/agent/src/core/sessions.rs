//! Requests about sessions: create, reopen, detach, close, abort, update common data,
//! suspend and resume. What they do to a session's state goes through the lifecycle
//! (`Core::drive`); what they check comes first, so a refused request leaves no trace.

use super::failure::Failure;
use super::requests::R;
use super::session::Session;
use super::{Core, lifecycle};
use crate::ports::{ConnId, CoreMsg, InstId, Sid};
use bytes::Bytes;
use soam_proto::addr::{SessionRef, check_session_name};
use soam_proto::msg::{CreateSession, ErrorKind, Reply, SessionAction, SessionState};
use soam_service::wire::Kind;
use soam_store::Write;

impl Core {
    /// Puts a new or recovered session in the table and every index that finds it (by
    /// id, by name, the per-application open count, the tasks held); `finish_session`
    /// takes it out.
    pub(super) fn add_session(&mut self, sid: Sid, s: Session) {
        self.by_id.insert((s.app.clone(), s.id), sid);
        if let Some(n) = &s.name {
            self.by_name.insert((s.app.clone(), n.clone()), sid);
        }
        *self.open_per_app.entry(s.app.clone()).or_default() += 1;
        self.tasks_held += s.tasks.len() as u64;
        self.sessions.insert(sid, s);
    }

    pub(super) fn create(&mut self, conn: ConnId, id: u64, c: CreateSession, once: Option<u128>) {
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
            self.add_session(sid, s);
            self.count_created(&c.app);
            if self.watching() {
                self.emit_session(sid, "open", String::new());
            }
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

    /// Refuses what would take the store past `maxRecordBytes`: the bytes of records it
    /// holds (counted by every commit), what accepted submits are still committing, and
    /// at most `incoming` more.
    pub(super) fn check_store_bytes(&self, incoming: u64) -> Result<(), Failure> {
        let Some(limit) = self.cfg.max_record_bytes else { return Ok(()) };
        let held = self.store.stored_bytes() + self.store_reserved;
        if held + incoming > limit {
            return Err(Failure::new(
                ErrorKind::Limit,
                format!(
                    "the store holds {held} bytes of records; accepting {incoming} more would pass its maxRecordBytes limit ({limit} bytes)"
                ),
            ));
        }
        Ok(())
    }

    /// Makes `conn` the holder; the previous holder is told it lost the session.
    pub(super) fn attach(&mut self, conn: ConnId, sid: Sid) {
        let _ = self.drive(sid, lifecycle::Event::Attach(conn));
    }

    pub(super) fn open(&mut self, conn: ConnId, r: &SessionRef, direct: bool, all: bool) -> R {
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
                .filter(|(_, t)| t.delivered() && t.result().is_some())
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

    pub(super) fn held_by(&self, conn: ConnId, r: &SessionRef) -> Result<Sid, Failure> {
        let sid = self.lookup(conn, r)?;
        if self.sessions[&sid].life.holder() != Some(conn) {
            return Err(Failure::new(
                ErrorKind::TakenOver,
                format!("session {r} is not held by this client (reopen it first: soamsession reopen {r})"),
            ));
        }
        Ok(sid)
    }

    /// Leaves the session open and unheld. From a shell this acts on a session another
    /// client holds; that client is told it was taken over.
    pub(super) fn detach(&mut self, conn: ConnId, r: &SessionRef) -> R {
        let sid = self.lookup(conn, r)?;
        let _ = self.drive(sid, lifecycle::Event::Detach { by: conn });
        Ok(Reply::Ok)
    }

    pub(super) fn finish(&mut self, conn: ConnId, r: &SessionRef, state: SessionState) -> R {
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

    pub(super) fn update_common(&mut self, conn: ConnId, r: &SessionRef, data: Bytes) -> R {
        let sid = self.lookup(conn, r)?;
        let s = self.sessions.get_mut(&sid).unwrap();
        s.common_data = data.clone();
        let session = s.id;
        // Entered or entering: a SessionEnter under way took the old data, so the
        // update queues behind it.
        let bound: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.bound() == Some(sid) && i.killed().is_none())
            .map(|(&id, _)| id)
            .collect();
        for iid in bound {
            self.instances.get_mut(&iid).unwrap().updating += 1;
            self.send_method(iid, Kind::SessionUpdate, sid, session, data.clone());
        }
        self.persist_session(sid);
        Ok(Reply::Ok)
    }

    pub(super) fn session_control(&mut self, conn: ConnId, r: &SessionRef, action: SessionAction) -> R {
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
}
