//! How many slots of one pool each session with work gets: the policies, as pure
//! functions, so they can be checked without an agent.
//!
//! The rules (see `sched`): slots go one at a time to the session furthest below its
//! priority-weighted share (`proportion`), after first covering `minServices` for
//! applications with `minimumServices`; with `priority`, an application's lower-priority
//! sessions only get slots its higher-priority ones cannot use. A session never gets
//! more than it has tasks to run, an application never more than its `maxSlots`. Among
//! equals the older session goes first.
//!
//! [`reference`] is those rules written plainly: it looks at every session for every
//! slot. [`hand_out`] gives the same answer while looking only at a prefix of the
//! sessions in [`Key`] order: a session not yet looked at holds nothing, so it is
//! furthest below its share, and the first such in order is exactly whom `reference`
//! picks. It stops when the slots run out, which is what keeps a schedule's cost
//! independent of how many sessions are waiting (10,000 busy sessions and 2 slots look at
//! about 2). `sched` keeps every pool's candidates sorted by `Key` as sessions gain and
//! lose work; the two are compared on every schedule in debug builds and on random
//! inputs in the tests below.

use super::Sid;
use rustc_hash::FxHashMap as HashMap;
use soam_profile::Policy;
use std::cmp::Reverse;
use std::sync::Arc;

/// The order slots are offered in: higher priority first, then by application name,
/// then older sessions (ids grow with creation time). The name is the application's
/// shared one, so that making a key (every candidate, every schedule) copies no text.
pub(super) type Key = (Reverse<u32>, Arc<str>, u64);

/// A session that wants slots.
#[derive(Debug, Clone)]
pub(super) struct Cand {
    pub key: Key,
    pub sid: Sid,
    /// Its session type's `minServices` (only counted under `minimumServices`).
    pub min: u32,
    /// Tasks pending or running: it never gets more slots than that.
    pub demand: u64,
    pub policy: Policy,
    /// Its application's `maxSlots` (u32::MAX: none).
    pub cap: u32,
}

impl Cand {
    fn prio(&self) -> u32 {
        self.key.0.0
    }
    fn app(&self) -> &str {
        &self.key.1
    }
}

/// A candidate and what it got so far.
struct W {
    c: Cand,
    got: u32,
}

/// Slots used per application across pools (`maxSlots` is per application). An
/// application without an entry, or with 0, has used none.
pub(super) type AppUsed = HashMap<Arc<str>, u32>;

/// The rules, looking at every candidate for every slot.
#[cfg(any(test, debug_assertions))]
pub(super) fn reference(cands: Vec<Cand>, mut left: u32, app_used: &mut AppUsed, out: &mut HashMap<Sid, u32>) {
    let mut ws: Vec<W> = cands.into_iter().map(|c| W { c, got: 0 }).collect();
    ws.sort_by(|a, b| a.c.key.cmp(&b.c.key));
    for w in ws.iter_mut().filter(|w| w.c.policy == Policy::MinimumServices) {
        left -= give_min(w, left, app_used);
    }
    while left > 0 {
        let mut best: Option<usize> = None;
        for (i, w) in ws.iter().enumerate() {
            if !eligible(w, &ws, app_used) {
                continue;
            }
            if best.is_none_or(|b| further_below(w, &ws[b])) {
                best = Some(i);
            }
        }
        let Some(b) = best else { break };
        take_one(&mut ws[b], app_used);
        left -= 1;
    }
    out.extend(ws.into_iter().filter(|w| w.got > 0).map(|w| (w.c.sid, w.got)));
}

/// The same answer as [`reference`] from candidates in `Key` order, pulled only as far
/// as needed. `next` yields them in order; `last_min` is the largest key that may be a
/// `minimumServices` candidate with a minimum (None: there is none), so the first round
/// knows where it may stop.
pub(super) fn hand_out(
    mut next: impl FnMut() -> Option<Cand>,
    last_min: Option<&Key>,
    mut left: u32,
    app_used: &mut AppUsed,
    out: &mut HashMap<Sid, u32>,
) {
    // The candidates looked at so far: always a prefix of the order.
    let mut ws: Vec<W> = Vec::new();
    let mut peeked: Option<Cand> = None;
    let mut pull = |peeked: &mut Option<Cand>| peeked.take().or_else(&mut next);
    if let Some(last) = last_min {
        while left > 0 {
            let Some(c) = pull(&mut peeked) else { break };
            if c.key > *last {
                peeked = Some(c);
                break;
            }
            let mut w = W { c, got: 0 };
            if w.c.policy == Policy::MinimumServices {
                left -= give_min(&mut w, left, app_used);
            }
            ws.push(w);
        }
    }
    let mut exhausted = false;
    while left > 0 {
        // Anyone holding nothing is furthest below its share; among those, the first in
        // order. Those looked at come before those not yet looked at.
        let mut pick = ws.iter().position(|w| w.got == 0 && eligible(w, &ws, app_used));
        while pick.is_none() && !exhausted {
            match pull(&mut peeked) {
                Some(c) => {
                    ws.push(W { c, got: 0 });
                    if eligible(&ws[ws.len() - 1], &ws, app_used) {
                        pick = Some(ws.len() - 1);
                    }
                }
                None => exhausted = true,
            }
        }
        if pick.is_none() {
            // Everyone has been looked at and holds something: the plain rule.
            for (i, w) in ws.iter().enumerate() {
                if eligible(w, &ws, app_used) && pick.is_none_or(|b| further_below(w, &ws[b])) {
                    pick = Some(i);
                }
            }
        }
        let Some(b) = pick else { break };
        take_one(&mut ws[b], app_used);
        left -= 1;
    }
    out.extend(ws.into_iter().filter(|w| w.got > 0).map(|w| (w.c.sid, w.got)));
}

/// The first round of `minimumServices`: up to the session's minimum. Returns what it gave.
fn give_min(w: &mut W, left: u32, app_used: &mut AppUsed) -> u32 {
    let used = app_used.get(w.c.app()).copied().unwrap_or(0);
    let give = (w.c.min as u64)
        .min(w.c.demand)
        .min(left as u64)
        .min(w.c.cap.saturating_sub(used) as u64) as u32;
    if give > 0 {
        w.got += give;
        *app_used.entry(w.c.key.1.clone()).or_default() += give;
    }
    give
}

fn take_one(w: &mut W, app_used: &mut AppUsed) {
    w.got += 1;
    *app_used.entry(w.c.key.1.clone()).or_default() += 1;
}

/// May it take one more slot? Under `priority`, not while a higher-priority session of
/// its application could use one; only sessions in `ws` can (see `hand_out`).
fn eligible(w: &W, ws: &[W], app_used: &AppUsed) -> bool {
    if w.got as u64 >= w.c.demand || app_used.get(w.c.app()).copied().unwrap_or(0) >= w.c.cap {
        return false;
    }
    !(w.c.policy == Policy::Priority
        && ws
            .iter()
            .any(|o| o.c.app() == w.c.app() && o.c.prio() > w.c.prio() && (o.got as u64) < o.c.demand))
}

/// Is `w` further below its share than `b` (smaller got/priority, without division)?
fn further_below(w: &W, b: &W) -> bool {
    (w.got as u64) * (b.c.prio() as u64) < (b.got as u64) * (w.c.prio() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: the tests need variety, not quality.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_cands(r: &mut Rng) -> Vec<Cand> {
        let apps = 1 + r.below(4);
        let policies: Vec<Policy> = (0..apps)
            .map(|_| [Policy::Proportion, Policy::MinimumServices, Policy::Priority][r.below(3) as usize])
            .collect();
        let caps: Vec<u32> = (0..apps)
            .map(|_| if r.below(3) == 0 { 1 + r.below(6) as u32 } else { u32::MAX })
            .collect();
        let n = r.below(40);
        (0..n)
            .map(|i| {
                let a = r.below(apps) as usize;
                Cand {
                    key: (Reverse(1 + r.below(4) as u32), format!("app{a}").into(), i),
                    sid: 1000 + i,
                    min: r.below(4) as u32,
                    demand: 1 + r.below(6),
                    policy: policies[a],
                    cap: caps[a],
                }
            })
            .collect()
    }

    fn lazy(cands: &[Cand], left: u32, used: &mut AppUsed) -> (HashMap<Sid, u32>, usize) {
        let mut sorted = cands.to_vec();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let last_min = sorted
            .iter()
            .filter(|c| c.policy == Policy::MinimumServices && c.min > 0)
            .map(|c| c.key.clone())
            .next_back();
        let mut it = sorted.into_iter();
        let mut pulled = 0;
        let mut out = HashMap::default();
        hand_out(
            || {
                let c = it.next();
                pulled += c.is_some() as usize;
                c
            },
            last_min.as_ref(),
            left,
            used,
            &mut out,
        );
        (out, pulled)
    }

    /// The quick answer is the plain one, over thousands of mixes of policies,
    /// priorities, minimums, caps, demands and slot counts, including slots already used
    /// by the application in another pool.
    #[test]
    fn hand_out_gives_what_the_plain_rules_give() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..20_000 {
            let cands = random_cands(&mut r);
            let left = r.below(12) as u32;
            let mut used_a = AppUsed::default();
            if r.below(4) == 0 {
                used_a.insert("app0".into(), r.below(3) as u32);
            }
            let mut used_b = used_a.clone();
            let mut want = HashMap::default();
            reference(cands.clone(), left, &mut used_a, &mut want);
            let (got, _) = lazy(&cands, left, &mut used_b);
            assert_eq!(got, want, "round {round}: {cands:?} with {left} slots");
            assert_eq!(used_a, used_b, "round {round}");
        }
    }

    /// 10,000 equal sessions and 2 slots: the two oldest get one each, and only they
    /// are looked at.
    #[test]
    fn many_waiting_sessions_are_not_looked_at() {
        let cands: Vec<Cand> = (0..10_000)
            .map(|i| Cand {
                key: (Reverse(1), "a".into(), i),
                sid: i,
                min: 0,
                demand: 100,
                policy: Policy::Proportion,
                cap: u32::MAX,
            })
            .collect();
        let (got, pulled) = lazy(&cands, 2, &mut AppUsed::default());
        assert_eq!(got, HashMap::from_iter([(0, 1), (1, 1)]));
        assert_eq!(pulled, 2);
    }

    /// Priorities weigh shares; `priority` keeps the lower one waiting; `maxSlots` caps.
    #[test]
    fn the_policies_by_example() {
        let c = |sid: u64, app: &str, prio: u32, policy: Policy, demand: u64| Cand {
            key: (Reverse(prio), app.into(), sid),
            sid,
            min: 2,
            demand,
            policy,
            cap: if app == "capped" { 1 } else { u32::MAX },
        };
        let run = |cands: Vec<Cand>, left: u32| lazy(&cands, left, &mut AppUsed::default()).0;
        // Proportion: 3 to 1 by priority.
        let got = run(vec![c(1, "p", 3, Policy::Proportion, 99), c(2, "p", 1, Policy::Proportion, 99)], 8);
        assert_eq!(got, HashMap::from_iter([(1, 6), (2, 2)]));
        // Priority: the lower one gets only what the higher cannot use.
        let got = run(vec![c(1, "q", 3, Policy::Priority, 5), c(2, "q", 1, Policy::Priority, 99)], 8);
        assert_eq!(got, HashMap::from_iter([(1, 5), (2, 3)]));
        // minimumServices: both get their minimum of 2 before shares by priority.
        let got = run(
            vec![
                c(1, "m", 10, Policy::MinimumServices, 99),
                c(2, "m", 1, Policy::MinimumServices, 99),
            ],
            5,
        );
        assert_eq!(got, HashMap::from_iter([(1, 3), (2, 2)]));
        // maxSlots 1 for the application, however many slots are free.
        let got = run(
            vec![c(1, "capped", 1, Policy::Proportion, 9), c(2, "capped", 1, Policy::Proportion, 9)],
            4,
        );
        assert_eq!(got, HashMap::from_iter([(1, 1)]));
    }
}
