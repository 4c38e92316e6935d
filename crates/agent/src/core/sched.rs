//! Sharing slots among sessions and feeding instances.
//!
//! `schedule` runs once per batch of inbox messages: it works out how many instances
//! each session with runnable work should hold (its share, see `shares` for the
//! policies), gives instances back from sessions above their share, binds idle or new
//! instances to sessions below it, and then sends pending tasks to every bound, entered
//! instance (several at a time, so a service never waits for the agent between tasks).
//!
//! Its cost must not grow with the sessions that merely wait: each pool keeps its
//! candidates (sessions that may have work) sorted in the order shares are offered, and
//! `shares::hand_out` reads only as far into that order as the slots go. A session
//! becomes a candidate when it may have gained work (`want`: a submit, a resume, a
//! reopen, recovery, its application enabled or updated) and stops being one lazily,
//! when the scheduler meets it without work.

use super::cluster::{self, Pool};
use super::inst::Instance;
use super::session::Session;
use super::shares::{self, AppUsed, Cand, Key};
use super::{App, Core};
use crate::ports::{InstId, Sid, Timer};
use bytes::Bytes;
use rustc_hash::FxHashMap as HashMap;
use soam_profile::{Policy, Service};
use soam_service::wire::Kind;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One pool's candidates.
#[derive(Default)]
pub(super) struct Candidates {
    /// In the order slots are offered.
    order: BTreeMap<Key, Sid>,
    /// Those under `minimumServices` with a minimum: where the first round may stop.
    mins: BTreeSet<Key>,
}

/// The candidates of every pool (None: the agent's own slots), in a fixed order of
/// pools, since an application's `maxSlots` spans pools.
pub(super) type Wants = BTreeMap<Option<Pool>, Candidates>;

/// Buffers of one `schedule`, emptied and refilled every turn (see `Core::scratch`).
#[derive(Default)]
pub(super) struct Scratch {
    /// Each session's share, this turn.
    shares: HashMap<Sid, u32>,
    /// Slots handed out per application, this turn.
    app_used: AppUsed,
    /// Each pool's slots, in `Wants` order.
    lefts: Vec<u32>,
    /// Candidates found without work, to drop from their pool.
    gone: Vec<(Key, Sid)>,
    /// Instances serving a session, by session, busiest first.
    held: Vec<(Sid, Reverse<usize>, InstId)>,
    /// Sessions with a share, in the order they are given instances.
    order: Vec<(Reverse<u32>, Sid, u32)>,
    /// Every instance, to feed.
    ids: Vec<InstId>,
}

/// Where the session stands in its pool's order (it never changes: a session keeps its
/// type, so its priority). `name` is its application's (`App::name`).
fn offer_key(s: &Session, name: Arc<str>) -> Key {
    (Reverse(s.stype.priority), name, s.id)
}

/// A session as a candidate for slots, if it is one now: it can run, its application
/// is enabled, and it has tasks pending or running.
fn candidate(sessions: &HashMap<Sid, Session>, apps: &HashMap<String, App>, sid: Sid) -> Option<Cand> {
    let s = sessions.get(&sid)?;
    let app = apps.get(&s.app)?;
    let demand = s.counts.pending + s.counts.running;
    if !s.runnable() || !app.record.enabled || demand == 0 {
        return None;
    }
    Some(Cand {
        key: offer_key(s, app.name.clone()),
        sid,
        min: s.stype.min_services,
        demand,
        policy: app.profile.consumer.policy,
        cap: app.profile.consumer.max_slots.unwrap_or(u32::MAX),
    })
}

impl Core {
    /// The session may have gained work, or become able to run it: make it a candidate
    /// for slots. Cheap when it already is one.
    pub(super) fn want(&mut self, sid: Sid) {
        if self.sessions.get(&sid).is_none_or(|s| s.candidate) {
            return;
        }
        let Some(c) = candidate(&self.sessions, &self.apps, sid) else {
            return;
        };
        let s = self.sessions.get_mut(&sid).unwrap();
        s.candidate = true;
        let pool = cluster::pool_of(&s.app, &s.service);
        let pool = self.wants.entry(pool).or_default();
        if c.policy == Policy::MinimumServices && c.min > 0 {
            pool.mins.insert(c.key.clone());
        }
        pool.order.insert(c.key, sid);
    }

    /// Every session of `app`, again: after its profile or its enabled flag changed,
    /// which may change whether and how its sessions compete.
    pub(super) fn want_app(&mut self, app: &str) {
        let sids: Vec<Sid> = self.sessions.iter().filter(|(_, s)| s.app == app).map(|(&sid, _)| sid).collect();
        for &sid in &sids {
            let s = self.sessions.get_mut(&sid).unwrap();
            if std::mem::take(&mut s.candidate) {
                let key = offer_key(s, app.into());
                if let Some(pool) = self.wants.get_mut(&cluster::pool_of(&s.app, &s.service)) {
                    pool.order.remove(&key);
                    pool.mins.remove(&key);
                }
            }
        }
        for sid in sids {
            self.want(sid);
        }
    }

    /// Each session's share of its pool's slots into `sc.shares` (sessions with none are
    /// left out).
    fn shares(&mut self, sc: &mut Scratch) {
        sc.shares.clear();
        // Zeroed rather than emptied, so that each application's key is made once; a
        // count of 0 is what an absent one means. Emptied now and then, for
        // applications gone.
        if sc.app_used.len() > self.apps.len() + 16 {
            sc.app_used.clear();
        }
        sc.app_used.values_mut().for_each(|n| *n = 0);
        sc.lefts.clear();
        sc.lefts.extend(self.wants.keys().map(|pool| match pool {
            None => self.cfg.slots,
            Some(p) => self.pool_slots(p),
        }));
        let (sessions, apps) = (&mut self.sessions, &self.apps);
        for (pool, &left) in self.wants.values_mut().zip(&sc.lefts) {
            let gone = &mut sc.gone;
            let mut it = pool.order.iter();
            let next = || {
                for (key, &sid) in it.by_ref() {
                    match candidate(sessions, apps, sid) {
                        Some(c) => return Some(c),
                        None => gone.push((key.clone(), sid)),
                    }
                }
                None
            };
            shares::hand_out(next, pool.mins.last(), left, &mut sc.app_used, &mut sc.shares);
            for (key, sid) in gone.drain(..) {
                pool.order.remove(&key);
                pool.mins.remove(&key);
                if let Some(s) = sessions.get_mut(&sid) {
                    s.candidate = false;
                }
            }
        }
        // Slurm pools without candidates go (they come and go with profiles); the
        // agent's own stays, so that a session gaining and losing its work every round
        // trip does not make and drop the pool each time.
        self.wants.retain(|pool, p| pool.is_none() || !p.order.is_empty());
        #[cfg(debug_assertions)]
        self.check_shares(&sc.shares);
    }

    /// Debug builds (every test) check the quick answer against the rules applied to
    /// every session, and that no session with work was left out of the candidates.
    #[cfg(debug_assertions)]
    fn check_shares(&self, got: &HashMap<Sid, u32>) {
        let mut by_pool: BTreeMap<Option<Pool>, Vec<Cand>> = BTreeMap::new();
        for (&sid, s) in &self.sessions {
            if let Some(c) = candidate(&self.sessions, &self.apps, sid) {
                assert!(s.candidate, "session {} has work but is not a candidate for slots", s.addr());
                by_pool.entry(cluster::pool_of(&s.app, &s.service)).or_default().push(c);
            }
        }
        let mut app_used = AppUsed::default();
        let mut want = HashMap::default();
        for (pool, cands) in by_pool {
            let left = match &pool {
                None => self.cfg.slots,
                Some(p) => self.pool_slots(p),
            };
            shares::reference(cands, left, &mut app_used, &mut want);
        }
        assert_eq!(got, &want, "shares differ from the plain rules");
    }

    /// Tasks pending or running per Slurm pool, over the candidates of those pools.
    pub(super) fn pool_demand(&self) -> Vec<(Pool, u64, Arc<Service>)> {
        let mut out = Vec::new();
        for (pool, cands) in &self.wants {
            let Some(pool) = pool else { continue };
            let mut total = 0;
            let mut service = None;
            for &sid in cands.order.values() {
                if let Some(s) = self.sessions.get(&sid)
                    && s.runnable()
                {
                    total += s.counts.pending + s.counts.running;
                    service.get_or_insert_with(|| s.service.clone());
                }
            }
            if let Some(service) = service {
                out.push((pool.clone(), total, service));
            }
        }
        out
    }

    pub(super) fn schedule(&mut self) {
        let mut sc = std::mem::take(&mut self.scratch);
        self.shares(&mut sc);
        // 1. Give back what sessions hold above their share, when another session wants
        //    it or the holder cannot run (suspended, ended). An idle session otherwise
        //    keeps its entered instances, so a client feeding batches does not pay
        //    SessionLeave/SessionEnter between them.
        sc.held.clear();
        for (&iid, i) in &self.instances {
            if let (Some(sid), false, None) = (i.bound(), i.releasing(), &i.killed()) {
                // By session; in each, the busiest first: those past the share go back.
                sc.held.push((sid, Reverse(i.invokes), iid));
            }
        }
        sc.held.sort_unstable();
        let held = |sid: Sid| sc.held.partition_point(|h| h.0 <= sid) - sc.held.partition_point(|h| h.0 < sid);
        let wanting = sc.shares.iter().any(|(&sid, &share)| held(sid) < share as usize);
        for insts in sc.held.chunk_by(|a, b| a.0 == b.0) {
            let sid = insts[0].0;
            let share = sc.shares.get(&sid).copied().unwrap_or(0) as usize;
            let runnable = self.sessions.get(&sid).is_some_and(|s| s.runnable());
            if insts.len() > share && (wanting || !runnable) {
                for &(_, _, iid) in &insts[share..] {
                    self.release(iid, sid);
                }
            }
        }
        // 2. Bind instances to sessions below their share.
        sc.order.clear();
        sc.order.extend(
            sc.shares
                .iter()
                .map(|(&sid, &share)| (Reverse(self.sessions[&sid].stype.priority), sid, share)),
        );
        sc.order.sort_unstable();
        for &(_, sid, share) in &sc.order {
            let have = self
                .instances
                .values()
                .filter(|i| i.bound() == Some(sid) && !i.releasing() && i.killed().is_none())
                .count() as u32;
            for _ in have..share {
                if !self.acquire(sid) {
                    break;
                }
            }
        }
        // 3. Feed bound instances.
        sc.ids.clear();
        sc.ids.extend(self.instances.keys().copied());
        for &iid in &sc.ids {
            self.dispatch(iid);
        }
        self.scratch = sc;
        // 4. Retired instances go once idle.
        let idle_retired: Vec<InstId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.retiring() && i.bound().is_none() && i.expect.is_empty() && i.killed().is_none())
            .map(|(&id, _)| id)
            .collect();
        for iid in idle_retired {
            self.destroy_instance(iid);
        }
    }

    /// The instance takes nothing new, and goes once it has answered what it was sent
    /// (`actionOnSI="restartService"`; a new one starts when one is wanted).
    pub(super) fn restart_instance(&mut self, iid: InstId) {
        let Some(inst) = self.instances.get_mut(&iid) else { return };
        if inst.killed().is_some() {
            return;
        }
        inst.retire();
        if let Some(sid) = inst.bound() {
            self.release(iid, sid);
        }
        self.needs_schedule = true;
    }

    /// The session gives the instance back: it finishes what it has queued, then leaves.
    fn release(&mut self, iid: InstId, sid: Sid) {
        let grace = self.sessions.get(&sid).and_then(|s| s.stype.reclaim_grace_period_ms);
        let inst = self.instances.get_mut(&iid).unwrap();
        if inst.invokes == 0 {
            self.unbind(iid);
            return;
        }
        inst.release();
        if let Some(ms) = grace {
            self.after(ms, Timer::ReclaimGrace { inst: iid, sid });
        }
    }

    /// Detaches an instance from its session (SessionLeave if it had entered).
    pub(super) fn unbind(&mut self, iid: InstId) {
        let inst = self.instances.get_mut(&iid).unwrap();
        let Some((sid, entered)) = inst.unbind() else { return };
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.bound = s.bound.saturating_sub(1);
        }
        if entered {
            let session = self.sessions.get(&sid).map(|s| s.id).unwrap_or(0);
            self.send_method(iid, Kind::SessionLeave, sid, session, Bytes::new());
        }
        if self.instances[&iid].retiring() {
            self.needs_schedule = true;
        }
    }

    /// Finds an instance for the session: an idle one of its service, a new one if a
    /// slot is free, or a new one in place of an idle instance of another service.
    fn acquire(&mut self, sid: Sid) -> bool {
        let (service, app) = {
            let s = &self.sessions[&sid];
            (s.service.clone(), s.app.clone())
        };
        let (run_uid, owner) = self.run_as(self.sessions[&sid].owner_uid);
        // An instance still owing its last session's SessionLeave is free: the next
        // SessionEnter queues behind the Leave on the same pipe, so the move between
        // sessions costs one wake-up of the service, not two round trips in turn.
        let idle = |i: &Instance| i.bound().is_none() && i.invokes == 0 && i.killed().is_none() && !i.retiring();
        // A package's new version reaches new sessions: an instance started from an older
        // one finishes what it serves and takes nothing new (read only for services that
        // have a package).
        let current = service.package.as_ref().and_then(|p| self.packages.current_sha(p));
        let current_version = |i: &Instance| i.deployed == current;
        // An instance runs as one user and serves only that user's sessions.
        let found = self
            .instances
            .iter()
            .filter(|(_, i)| idle(i) && i.app == app && i.run_uid == run_uid && Arc::ptr_eq(&i.service, &service) && current_version(i))
            .map(|(&id, _)| id)
            .min();
        let pool = cluster::pool_of(&app, &service);
        let iid = match found {
            Some(iid) => iid,
            None => {
                // A slot of the same pool: a local one, or a CPU of one of the service's
                // workers.
                let fresh = match &pool {
                    None => {
                        let local = self.instances.values().filter(|i| i.worker.is_none()).count() as u32;
                        (local < self.cfg.slots && !self.local_blocked(&app)).then_some(None)
                    }
                    Some(p) => self.free_worker_for(p, &service).map(Some),
                };
                match fresh {
                    Some(None) => self.start_instance(&app, service, run_uid, owner),
                    Some(Some(worker)) => self.start_remote(&app, service, run_uid, worker),
                    None => {
                        let same_pool = |i: &Instance| match &pool {
                            None => i.worker.is_none(),
                            Some(p) => cluster::pool_of(&i.app, &i.service).as_ref() == Some(p),
                        };
                        let other = self
                            .instances
                            .iter()
                            .filter(|(_, i)| idle(i) && same_pool(i))
                            .map(|(&id, _)| id)
                            .min();
                        if let Some(o) = other {
                            // It holds its slot until it has gone.
                            self.destroy_instance(o);
                        }
                        return false;
                    }
                }
            }
        };
        self.bind(iid, sid);
        true
    }
}
