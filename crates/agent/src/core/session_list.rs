//! Listing sessions in pages (`soamview session`): open sessions walked in (app, id)
//! order from where the last page ended, encoded here row by row (borrowed from the
//! sessions) into the reply frame; listings with history go as ordinary replies.

use super::Core;
use super::failure::Failure;
use super::history::history_info;
use super::session::Session;
use crate::ports::{ConnId, Sid};
use soam_proto::frame::{self, FrameError, PageKind};
use soam_proto::msg::{ErrorKind, PAGE_BYTES, PAGE_ROWS, Reply, SessionInfo, SessionInfoRef, SessionQuery};

use super::views::Page;

impl Core {
    /// A session's row, its text borrowed.
    pub(super) fn info_ref<'a>(&'a self, s: &'a Session) -> SessionInfoRef<'a> {
        let undelivered = (s.undelivered.len() + s.unacked.len()) as u64;
        SessionInfoRef {
            app: &s.app,
            id: s.id,
            name: s.name.as_deref(),
            tag: s.tag.as_deref(),
            session_type: &s.stype.name,
            state: s.life.state(),
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
            holder: s.life.holder().and_then(|c| self.conns.get(&c)).map(|c| c.label.as_str()),
            orphaned: s.life.holder().is_none() && s.counts.pending == 0 && s.counts.running == 0 && undelivered > 0,
            owner_uid: s.owner_uid,
            reason: s.life.last_failure(),
        }
    }

    /// A query for an app neither registered nor with sessions is refused.
    fn known_app(&self, q: &SessionQuery) -> Result<(), Failure> {
        match &q.app {
            Some(app) if !self.apps.contains_key(app) && !self.sessions.values().any(|s| &s.app == app) => {
                Err(Failure::unknown_app(app, self.apps.keys()))
            }
            _ => Ok(()),
        }
    }

    /// Sessions matching `q`, in (app, id) order, after `from`: at most `limit` rows
    /// and about [`PAGE_BYTES`]. `next` is where the following page starts.
    fn sessions_page(
        &self,
        conn: ConnId,
        q: &SessionQuery,
        from: Option<&(String, u64)>,
        (limit, max_bytes): (usize, usize),
    ) -> Page<SessionInfo, (String, u64)> {
        self.known_app(q)?;
        let after = |app: &str, id: u64| from.is_none_or(|(a, i)| (app, id) > (a.as_str(), *i));
        // Where a row comes from: an open session, or an entry of the in-memory history.
        enum Src {
            Live(Sid),
            Ended(usize),
        }
        if !q.all {
            return Ok(self.live_page(conn, q, from, (limit, max_bytes)));
        }
        // Keys first (cheap), rows only for the page.
        let mut keys: Vec<(&str, u64, Src)> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                q.app.as_ref().is_none_or(|a| a == &s.app)
                    && q.state.is_none_or(|st| st == s.life.state())
                    && after(&s.app, s.id)
                    && self.visible(conn, s.owner_uid)
            })
            .map(|(&sid, s)| (s.app.as_str(), s.id, Src::Live(sid)))
            .collect();
        if q.all {
            keys.extend(
                self.history
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| {
                        q.app.as_ref().is_none_or(|a| a == &h.session.app)
                            && after(&h.session.app, h.session.id)
                            && self.visible(conn, h.session.owner_uid)
                    })
                    .map(|(i, h)| (h.session.app.as_str(), h.session.id, Src::Ended(i))),
            );
        }
        keys.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let (mut out, mut bytes, mut next) = (Vec::new(), 0, None);
        for (_, _, src) in keys {
            if out.len() >= limit || bytes >= max_bytes {
                next = out.last().map(|s: &SessionInfo| (s.app.clone(), s.id));
                break;
            }
            let info = match src {
                Src::Live(sid) => self.session_info(sid),
                Src::Ended(i) => history_info(&self.history[i]),
            };
            // History rows are filtered on state here: their state is text in the record.
            if q.state.is_some_and(|st| st != info.state) || (q.orphaned && !info.orphaned) {
                continue;
            }
            bytes += info_bytes(&info);
            out.push(info);
        }
        Ok((out, next))
    }

    /// Open sessions only: walked in (app, id) order from `from`, so a page costs its
    /// rows (and the sessions filtered out on the way), not a sort of every session.
    fn live_page(
        &self,
        conn: ConnId,
        q: &SessionQuery,
        from: Option<&(String, u64)>,
        (limit, max_bytes): (usize, usize),
    ) -> (Vec<SessionInfo>, Option<(String, u64)>) {
        // Sized up front: grown by doubling, a page of 1,000 rows was moved eight times.
        let mut out = Vec::with_capacity(limit.min(self.by_id.len()));
        let next = self.live_walk(conn, q, from, (limit, max_bytes), |info| out.push(info.to_owned()));
        (out, next)
    }

    /// The rows of [`Self::live_page`], each handed to `row` as it is made; returns
    /// where the next page starts.
    fn live_walk<'a>(
        &'a self,
        conn: ConnId,
        q: &SessionQuery,
        from: Option<&(String, u64)>,
        (limit, max_bytes): (usize, usize),
        mut row: impl FnMut(&SessionInfoRef<'a>),
    ) -> Option<(String, u64)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let start = match (from, &q.app) {
            (Some(f), _) => Excluded(f.clone()),
            (None, Some(app)) => Included((app.clone(), 0)),
            (None, None) => Unbounded,
        };
        let (mut rows, mut bytes, mut last) = (0, 0, None);
        let mut keys = self
            .by_id
            .range((start, Unbounded))
            .take_while(|((app, _), _)| q.app.as_ref().is_none_or(|a| a == app));
        // Sessions are looked up LOOKUP_BATCH at a time before any is read: each lookup
        // is a cache miss (the sessions lie all over a large table), and with nothing
        // waiting on one the processor has many of them under way at once. Looked up
        // and read one by one, the misses came one after another: most of a page's time.
        let mut batch: Vec<&Session> = Vec::with_capacity(LOOKUP_BATCH);
        loop {
            batch.clear();
            batch.extend(keys.by_ref().take(LOOKUP_BATCH).map(|(_, sid)| {
                let s = &self.sessions[sid];
                prefetch(s);
                s
            }));
            if batch.is_empty() {
                return None;
            }
            // Then the text a row copies, which lies elsewhere again: by now the first
            // sessions have arrived, so their pointers can be read.
            for s in &batch {
                prefetch_bytes(s.app.as_bytes());
                for t in [&s.name, &s.tag].into_iter().flatten() {
                    prefetch_bytes(t.as_bytes());
                }
            }
            for s in &batch {
                if q.state.is_some_and(|st| st != s.life.state()) || !self.visible(conn, s.owner_uid) {
                    continue;
                }
                if rows >= limit || bytes >= max_bytes {
                    return last.map(|(app, id): (&str, u64)| (app.to_string(), id));
                }
                let info = self.info_ref(s);
                if q.orphaned && !info.orphaned {
                    continue;
                }
                bytes += row_bytes(info.app, info.reason, info.holder);
                rows += 1;
                last = Some((info.app, info.id));
                row(&info);
            }
        }
    }

    /// A page of open sessions as the frame answering request `id`: encoded here, row
    /// by row from the sessions, instead of made into values for the connection's
    /// writer to encode (and free) on another thread. Other pages (with history) go
    /// the usual way.
    pub(super) fn session_page_frame(
        &self,
        conn: ConnId,
        id: u64,
        kind: PageKind,
        q: &SessionQuery,
        from: Option<&(String, u64)>,
        limit: u32,
    ) -> Result<Vec<u8>, FrameError> {
        let limit = limit.clamp(1, PAGE_ROWS) as usize;
        let mut rows = frame::Rows::default();
        let next = self.live_walk(conn, q, from, (limit, PAGE_BYTES), |info| rows.push_session(info));
        let mut out = Vec::new();
        frame::encode_session_page(id, kind, &rows, &next, &mut out)?;
        Ok(out)
    }

    pub(super) fn list_sessions(&self, conn: ConnId, q: SessionQuery) -> Result<Reply, Failure> {
        self.sessions_page(conn, &q, None, (usize::MAX, usize::MAX))
            .map(|(s, _)| Reply::Sessions(s))
    }

    /// Answers a page of sessions, as the request's `kind` of page: one of open
    /// sessions only encoded here ([`Self::session_page_frame`]), one with history as a
    /// reply.
    pub(super) fn answer_session_page(
        &self,
        conn: ConnId,
        id: u64,
        kind: PageKind,
        q: SessionQuery,
        (from, limit): (Option<(String, u64)>, u32),
    ) {
        if q.all {
            let limit = limit.clamp(1, PAGE_ROWS) as usize;
            let page = self
                .sessions_page(conn, &q, from.as_ref(), (limit, PAGE_BYTES))
                .map(|(sessions, next)| match kind {
                    PageKind::RowsFirst => Reply::SessionPage { sessions, next },
                    PageKind::NextFirst => Reply::SessionsAhead { next, sessions },
                });
            return self.answer(conn, id, page);
        }
        if let Err(f) = self.known_app(&q) {
            return self.fail(conn, id, f);
        }
        match self.session_page_frame(conn, id, kind, &q, from.as_ref(), limit) {
            Ok(frame) => {
                if let Some(c) = self.conns.get(&conn) {
                    c.out.send_encoded(id, frame);
                }
            }
            Err(e) => self.fail(
                conn,
                id,
                Failure::new(ErrorKind::Limit, format!("the reply could not be sent: {e}")),
            ),
        }
    }
}

/// Asks for every cache line of `v` to be loaded, without waiting for any: a hint, so
/// that the loads of several values overlap (see `live_page`).
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = (v as *const T).cast::<i8>();
        for off in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch is a hint: it reads nothing and cannot fault, whatever
            // the address; SSE is part of every x86_64 processor.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Asks for the first cache line of `b` (short text: all of it).
fn prefetch_bytes(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: as in `prefetch`; an empty slice's dangling pointer is only a hint too.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// Sessions of a listing looked up together (see `live_page`).
const LOOKUP_BATCH: usize = 64;

/// About how many bytes a session row takes in a reply: pages stop near the frame cap.
fn info_bytes(info: &SessionInfo) -> usize {
    row_bytes(&info.app, info.reason.as_deref(), info.holder.as_deref())
}

fn row_bytes(app: &str, reason: Option<&str>, holder: Option<&str>) -> usize {
    256 + reason.map_or(0, str::len) + app.len() + holder.map_or(0, str::len)
}
