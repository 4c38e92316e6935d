//! Idempotent requests (`Request::Once`): a client that lost its connection before a
//! reply sends the same request again under the same id, and gets the first result
//! instead of a second session or a second copy of its tasks.
//!
//! Data flow: `create` and `submit` note the id in the session ([`Remembered`], and for
//! a recoverable session a `requests` row written in the same commit as the session or
//! its tasks). A repeat is answered after a store barrier, so that the first request's
//! commit has been decided: a commit that failed has by then taken its id back out
//! (`not_accepted`, `Unsaved`), and the repeat is told it was not saved. Ids are kept
//! while the session is open, the latest [`REMEMBER`] submits per session.

use super::Core;
use super::failure::Failure;
use crate::ports::{ConnId, CoreMsg, Sid};
use rustc_hash::FxHashMap as HashMap;
use soam_proto::msg::{ErrorKind, Reply, RequestId};
use soam_store::Write;
use soam_store::records::RequestRecord;
use std::collections::VecDeque;

/// Submit ids a session remembers: far more than a client has in flight at once.
pub(super) const REMEMBER: usize = 4096;

/// The request ids a session was given tasks under, oldest first.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    /// Request id to the task ids it was given.
    submits: HashMap<u128, (u64, u64)>,
    order: VecDeque<u128>,
}

impl Remembered {
    pub fn get(&self, request: u128) -> Option<(u64, u64)> {
        self.submits.get(&request).copied()
    }

    /// Notes a submit; returns the id it forgot to make room, if any.
    pub fn insert(&mut self, request: u128, first: u64, count: u64) -> Option<u128> {
        self.submits.insert(request, (first, count));
        self.order.push_back(request);
        if self.order.len() > REMEMBER {
            let old = self.order.pop_front()?;
            self.submits.remove(&old);
            return Some(old);
        }
        None
    }

    /// Forgets the submit that was given `first..` (its commit failed).
    pub fn forget_first(&mut self, first: u64) {
        if let Some(&request) = self.submits.iter().find(|(_, (f, _))| *f == first).map(|(r, _)| r) {
            self.submits.remove(&request);
            self.order.retain(|r| *r != request);
        }
    }
}

pub(super) fn key(request: &RequestId) -> u128 {
    u128::from_le_bytes(*request)
}

impl Core {
    /// A `CreateSession` or `Submit` under an id already used: answered with what the
    /// first one did, once its commit is decided. True if `request` was a repeat.
    pub(super) fn repeated(&mut self, conn: ConnId, id: u64, request: u128, session: Option<Sid>, attach: bool) -> bool {
        let known = match session {
            None => self.created.contains_key(&request),
            Some(sid) => self.sessions.get(&sid).is_some_and(|s| s.remembered.get(request).is_some()),
        };
        if !known {
            return false;
        }
        let inbox = self.inbox.clone();
        self.store.barrier(Box::new(move |_| {
            inbox.send(CoreMsg::Repeat {
                conn,
                id,
                request,
                session,
                attach,
            })
        }));
        true
    }

    /// Answers a repeat once every commit before it is decided.
    pub(super) fn answer_repeat(&mut self, conn: ConnId, id: u64, request: u128, session: Option<Sid>, attach: bool) {
        let not_saved = || {
            Failure::new(
                ErrorKind::StoreFault,
                "not saved: the first request under this id could not be saved; send it again with a new id",
            )
        };
        let result = match session {
            None => match self.created.get(&request).copied() {
                Some(sid) if self.may_act(conn, self.sessions[&sid].owner_uid) => {
                    if attach {
                        self.attach(conn, sid);
                    }
                    Ok(Reply::Session(self.session_info(sid)))
                }
                Some(_) => Err(Failure::new(ErrorKind::Permission, "this request id was used by another user")),
                None => Err(not_saved()),
            },
            Some(sid) => match self.sessions.get(&sid).and_then(|s| s.remembered.get(request)) {
                Some((first, count)) => Ok(Reply::Submitted { first, count }),
                None if self.sessions.contains_key(&sid) => Err(not_saved()),
                None => Err(Failure::new(ErrorKind::Ended, "the session has ended")),
            },
        };
        self.answer(conn, id, result);
    }

    /// Notes that `sid` was created under `request`; the row to commit with it.
    pub(super) fn remember_created(&mut self, sid: Sid, request: u128) -> Option<Write> {
        self.created.insert(request, sid);
        let s = self.sessions.get_mut(&sid)?;
        s.created_by = Some(request);
        s.stype.recoverable.then(|| Write::PutRequest {
            app: s.app.clone(),
            session: s.id,
            request,
            rec: RequestRecord::Created,
        })
    }

    /// Notes that tasks `first..first+count` of `sid` came under `request`; the rows to
    /// commit with them.
    pub(super) fn remember_submit(&mut self, sid: Sid, request: u128, first: u64, count: u64) -> Vec<Write> {
        let Some(s) = self.sessions.get_mut(&sid) else { return Vec::new() };
        let forgot = s.remembered.insert(request, first, count);
        if !s.stype.recoverable {
            return Vec::new();
        }
        let mut writes = vec![Write::PutRequest {
            app: s.app.clone(),
            session: s.id,
            request,
            rec: RequestRecord::Submitted { first, count },
        }];
        if let Some(old) = forgot {
            writes.push(Write::DeleteRequest {
                app: s.app.clone(),
                session: s.id,
                request: old,
            });
        }
        writes
    }

    /// At start: the ids a recovered session remembers.
    pub(super) fn recover_requests(&mut self, sid: Sid, mut found: Vec<(u128, RequestRecord)>) {
        // Oldest first, by the tasks they were given.
        found.sort_by_key(|(_, r)| match r {
            RequestRecord::Created => 0,
            RequestRecord::Submitted { first, .. } => *first,
        });
        for (request, rec) in found {
            match rec {
                RequestRecord::Created => {
                    self.created.insert(request, sid);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.created_by = Some(request);
                    }
                }
                RequestRecord::Submitted { first, count } => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.remembered.insert(request, first, count);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_and_forgets_failed_commits() {
        let mut r = Remembered::default();
        for i in 0..REMEMBER as u128 {
            assert_eq!(r.insert(i, i as u64 * 10 + 1, 10), None);
        }
        assert_eq!(r.get(0), Some((1, 10)));
        // One more pushes out the oldest.
        assert_eq!(r.insert(u128::MAX, 99_999, 1), Some(0));
        assert_eq!(r.get(0), None);
        assert_eq!(r.get(1), Some((11, 10)));
        r.forget_first(11);
        assert_eq!(r.get(1), None);
        assert_eq!(r.order.len(), REMEMBER - 1);
        assert_eq!(r.get(u128::MAX), Some((99_999, 1)));
    }
}
