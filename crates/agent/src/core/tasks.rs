//! Requests about tasks, and how a task ends: stage and submit (a recoverable
//! session's tasks run once committed), acknowledge outputs, kill and requeue; `end_task`
//! is where every task end passes, whatever caused it.

use super::failure::Failure;
use super::requests::R;
use super::session::Staged;
use super::{Core, lifecycle, now_ms};
use crate::ports::{ConnId, CoreMsg, InstId, Sid, Timer};
use bytes::Bytes;
use soam_proto::addr::{SessionRef, TaskRef};
use soam_proto::msg::{ErrorKind, Reply, TaskAction, TaskState};
use soam_service::wire::Kind;
use soam_store::Write;

/// Input bytes one connection may hold staged (one submission accepted whole).
const STAGE_BYTES_PER_CONN: usize = 1 << 30;

/// Input bytes all connections together may hold staged.
const STAGE_BYTES_TOTAL: usize = 4 << 30;

impl Core {
    /// Takes what this connection staged for the session: a submit ends the staging,
    /// whether it is accepted or refused.
    pub(super) fn take_staged(&mut self, conn: ConnId, r: &SessionRef) -> Result<Vec<Bytes>, Failure> {
        // Most submits come with nothing staged: then the session is not looked up here
        // as well as in `submit`, a lookup paid on every round trip (docs/benchmarks.md).
        if self.conns.get(&conn).is_none_or(|c| c.staged.is_empty()) {
            return Ok(Vec::new());
        }
        let Ok(sid) = self.lookup(conn, r) else { return Ok(Vec::new()) };
        match self.conns.get_mut(&conn).and_then(|c| c.staged.remove(&sid)) {
            None => Ok(Vec::new()),
            Some(Staged { refused: Some(why), .. }) => Err(why),
            Some(s) => Ok(s.tasks),
        }
    }

    /// Holds tasks back for the connection's next `Submit` to the session. A refusal
    /// drops everything staged for it, so the submission fails whole.
    pub(super) fn stage(&mut self, conn: ConnId, r: &SessionRef, tasks: Vec<Bytes>) -> R {
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

    pub(super) fn submit(&mut self, conn: ConnId, id: u64, r: &SessionRef, staged: Vec<Bytes>, inputs: Vec<Bytes>, once: Option<u128>) {
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
        self.trim.taken((staged.len() + inputs.len()) as u64);
        let inputs = if staged.is_empty() {
            inputs
        } else {
            let mut all = staged;
            all.extend(inputs);
            all
        };
        if let Some(limit) = self.cfg.max_stored_tasks {
            let held = self.tasks_held;
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
            // A recoverable session's tasks run once committed (`accepted`): a submit
            // the store could not keep is refused and none of it runs.
            s.add_task(input, now, !recoverable);
        }
        self.tasks_held += count;
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
            if s.tasks.get(idx as usize).is_some_and(|t| t.state() == TaskState::Pending) {
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
            if s.tasks.get(idx).is_some_and(|t| t.state() == TaskState::Pending) {
                s.refuse(idx, why, now_ms());
            }
        }
        self.dirty.insert(sid);
    }

    pub(super) fn task_control(&mut self, conn: ConnId, r: &TaskRef, action: TaskAction) -> R {
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
        let state = s.tasks[idx].state();
        match (action, state) {
            (TaskAction::Kill, TaskState::Pending) => {
                self.end_task(sid, idx, TaskState::Canceled, Bytes::from_static(b"killed by an administrator"));
            }
            (TaskAction::Kill, TaskState::Running) => {
                self.end_task(sid, idx, TaskState::Canceled, Bytes::from_static(b"killed by an administrator"));
                self.cleanup_running(sid, r.task);
            }
            (TaskAction::Kill, s) => return Err(format!("task {}:{} has already ended ({s})", r.session, r.task).into()),
            (TaskAction::Requeue, TaskState::Pending) => return Err(format!("task {}:{} is already pending", r.session, r.task).into()),
            (TaskAction::Requeue, TaskState::Running) => {
                s.requeue(idx);
                self.cleanup_running(sid, r.task);
            }
            (TaskAction::Requeue, _) => {
                s.rerun(idx);
                self.persist_tasks(sid, [r.task]);
            }
        }
        let _ = self.drive(sid, lifecycle::Event::Work);
        self.needs_schedule = true;
        Ok(Reply::Ok)
    }

    /// The task no longer runs as far as the session is concerned; its instance gets
    /// taskCleanupPeriod to finish, then is stopped.
    pub(super) fn cleanup_running(&mut self, sid: Sid, task: u64) {
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
        if self.watching() {
            let detail = if state == TaskState::Error {
                super::watchers::brief(&result)
            } else {
                String::new()
            };
            self.emit_task(sid, idx, state.as_str(), detail);
        }
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.finish(idx, state, result, now_ms());
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
