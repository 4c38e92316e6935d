//! `soamview events` (`Request::Watch`): connections that asked to be told of changes
//! as they happen, and the one way events reach them.
//!
//! Data flow: the places where a change is made (a session's lifecycle in `effects`,
//! tasks starting in `dispatch` and ending in `tasks`/`instances`, instances in
//! `dispatch`/`exits`, allocations in `cluster`) build a [`WatchEvent`] only when
//! someone watches ([`Core::watching`]), and [`Core::emit`] sends it to each watcher
//! it concerns. A watcher whose connection holds more than it may (`Client::full`) is
//! sent nothing: its events are counted as dropped, and once there is room again
//! (`CoreMsg::Writable`) it is told how many (`Event::Dropped`). The agent never waits
//! for a watcher, and with no watcher the task path pays one test of an empty map.

use super::failure::Failure;
use super::requests::R;
use super::{Core, now_ms};
use crate::ports::{ConnId, Sid};
use rustc_hash::FxHashMap as HashMap;
use soam_proto::msg::{AgentFrame, ErrorKind, Event, Reply, WatchEvent};

/// One watching connection and what it asked for.
pub(super) struct Watcher {
    app: Option<String>,
    session: Option<u64>,
    uid: u32,
    admin: bool,
    /// Events left out since it was last sent one.
    dropped: u64,
}

#[derive(Default)]
pub(super) struct Watchers(HashMap<ConnId, Watcher>);

/// Whose an event is: a user's (their session's, or an instance running as them), or
/// the agent's own (allocations), which only admins see.
#[derive(Clone, Copy)]
pub(super) enum Whose {
    User(u32),
    Agent,
}

impl Core {
    /// `Request::Watch`.
    pub(super) fn watch(&mut self, conn: ConnId, app: Option<String>, session: Option<u64>) -> R {
        if let Some(a) = &app
            && !self.apps.contains_key(a)
        {
            return Err(Failure::unknown_app(a, self.apps.keys()));
        }
        if session.is_some() && app.is_none() {
            return Err(Failure::new(
                ErrorKind::Invalid,
                "a session to watch needs its application (APP:ID)",
            ));
        }
        let Some(c) = self.conns.get(&conn) else { return Ok(Reply::Ok) };
        let w = Watcher {
            app,
            session,
            uid: c.uid,
            admin: c.admin,
            dropped: 0,
        };
        self.watchers.0.insert(conn, w);
        Ok(Reply::Ok)
    }

    /// Someone watches: worth building events.
    pub(super) fn watching(&self) -> bool {
        !self.watchers.0.is_empty()
    }

    /// The connection is gone (or has room again): forget it (or say what it missed).
    pub(super) fn unwatch(&mut self, conn: ConnId) {
        self.watchers.0.remove(&conn);
    }

    pub(super) fn watcher_writable(&mut self, conn: ConnId) {
        let (Some(w), Some(c)) = (self.watchers.0.get_mut(&conn), self.conns.get(&conn)) else {
            return;
        };
        if w.dropped > 0 && !c.out.full() {
            c.out.send(AgentFrame::Event(Event::Dropped { count: w.dropped }));
            w.dropped = 0;
        }
    }

    /// Sends `ev` to every watcher it concerns.
    pub(super) fn emit(&mut self, ev: WatchEvent, whose: Whose) {
        for (conn, w) in self.watchers.0.iter_mut() {
            if w.app.as_deref().is_some_and(|a| a != ev.app) || w.session.is_some_and(|s| Some(s) != ev.session) {
                continue;
            }
            let allowed = w.admin || matches!(whose, Whose::User(uid) if uid == w.uid);
            if !allowed {
                continue;
            }
            let Some(c) = self.conns.get(conn) else { continue };
            if c.out.full() {
                w.dropped += 1;
                // Told once there is room again (`watcher_writable`).
                c.out.room_or_notify();
                continue;
            }
            if w.dropped > 0 {
                c.out.send(AgentFrame::Event(Event::Dropped { count: w.dropped }));
                w.dropped = 0;
            }
            c.out.send(AgentFrame::Event(Event::Watched(ev.clone())));
        }
    }

    /// A session became `state` (`detail`: why, where there is a why).
    pub(super) fn emit_session(&mut self, sid: Sid, state: &str, detail: String) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let ev = event("session", &s.app, Some(s.id), None, state, detail);
        let whose = Whose::User(s.owner_uid);
        self.emit(ev, whose);
    }

    /// Task `idx` of the session became `state`.
    pub(super) fn emit_task(&mut self, sid: Sid, idx: usize, state: &str, detail: String) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let ev = event("task", &s.app, Some(s.id), Some(idx as u64 + 1), state, detail);
        let whose = Whose::User(s.owner_uid);
        self.emit(ev, whose);
    }
}

/// An event stamped now.
pub(super) fn event(kind: &str, app: &str, session: Option<u64>, task: Option<u64>, state: &str, detail: String) -> WatchEvent {
    WatchEvent {
        time_ms: now_ms(),
        kind: kind.to_string(),
        app: app.to_string(),
        session,
        task,
        state: state.to_string(),
        detail,
    }
}

/// A failure message as an event says it: its last line that says something (a
/// traceback's is the exception), at most 200 characters.
pub(super) fn brief(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(200).collect()
}
