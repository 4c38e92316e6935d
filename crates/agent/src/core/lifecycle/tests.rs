//! The lifecycle, transition by transition, without an agent.

use super::*;
use Effect as E;

fn rules() -> SessionType {
    SessionType::defaults("", "svc")
}

fn with(f: impl FnOnce(&mut SessionType)) -> SessionType {
    let mut r = rules();
    f(&mut r);
    r
}

fn on(life: &mut Life, ev: Event) -> Vec<Effect> {
    life.on(ev, &rules()).expect("accepted")
}

fn held_by(conn: ConnId) -> Life {
    let mut life = Life::new();
    on(&mut life, Event::Attach(conn));
    life
}

fn finish_of(fx: &[Effect]) -> Option<(SessionState, &str, Option<ConnId>)> {
    fx.iter().find_map(|e| match e {
        E::Finish { state, reason, notify } => Some((*state, reason.as_str(), *notify)),
        _ => None,
    })
}

#[test]
fn attach_takes_the_session_from_its_holder_and_persists() {
    let mut life = held_by(1);
    let fx = on(&mut life, Event::Attach(2));
    assert_eq!(
        fx,
        vec![
            E::Holder {
                from: Some(1),
                to: Some(2)
            },
            E::TakenOver(1),
            E::Persist
        ]
    );
    assert_eq!(life.holder(), Some(2));
    // The same client attaching again is not taken over from itself.
    let fx = on(&mut life, Event::Attach(2));
    assert!(!fx.iter().any(|e| matches!(e, E::TakenOver(_))), "{fx:?}");
}

#[test]
fn detach_from_a_shell_tells_the_holder_and_from_the_holder_does_not() {
    let mut life = held_by(1);
    let fx = on(&mut life, Event::Detach { by: 9 });
    assert_eq!(fx, vec![E::Holder { from: Some(1), to: None }, E::TakenOver(1), E::Persist]);
    let mut life = held_by(1);
    let fx = on(&mut life, Event::Detach { by: 1 });
    assert_eq!(fx, vec![E::Holder { from: Some(1), to: None }, E::Persist]);
    assert_eq!(life.state(), SessionState::Open);
}

#[test]
fn a_lost_holder_arms_the_disconnect_timer_and_another_connection_does_nothing() {
    let mut life = held_by(1);
    assert!(on(&mut life, Event::HolderLost(7)).is_empty());
    let fx = on(&mut life, Event::HolderLost(1));
    let generation = life.disconnect_gen;
    assert_eq!(
        fx,
        vec![E::Holder { from: Some(1), to: None }, E::ArmDisconnect { generation }, E::Persist]
    );
    assert_eq!(life.holder(), None);
}

#[test]
fn each_disconnect_action_runs_when_the_timer_is_over() {
    let lost = |rules: &SessionType| {
        let mut life = held_by(1);
        life.on(Event::HolderLost(1), rules).unwrap();
        let generation = life.disconnect_gen;
        let fx = life.on(Event::DisconnectTimeout { generation }, rules).unwrap();
        (life, fx)
    };
    let (life, fx) = lost(&with(|r| r.on_client_disconnect = DisconnectAction::Abort));
    assert_eq!(life.state(), SessionState::Aborted);
    let (state, reason, notify) = finish_of(&fx).expect("finished");
    assert_eq!((state, notify), (SessionState::Aborted, None));
    assert!(reason.contains("did not come back"), "{reason}");

    let (life, fx) = lost(&with(|r| r.on_client_disconnect = DisconnectAction::Suspend));
    assert_eq!(life.phase(), Phase::Suspended(Suspender::Disconnect));
    assert!(fx.contains(&E::ArmSuspendGrace { generation: 1 }) && fx.contains(&E::Persist) && fx.contains(&E::Schedule));

    // Continue: an open session just goes on, without a holder.
    let (life, fx) = lost(&with(|r| r.on_client_disconnect = DisconnectAction::Continue));
    assert_eq!(life.phase(), Phase::Open);
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn a_reopen_in_time_makes_the_disconnect_timer_stale() {
    let rules = with(|r| r.on_client_disconnect = DisconnectAction::Abort);
    let mut life = held_by(1);
    life.on(Event::HolderLost(1), &rules).unwrap();
    let generation = life.disconnect_gen;
    life.on(Event::Attach(2), &rules).unwrap();
    assert!(life.on(Event::DisconnectTimeout { generation }, &rules).unwrap().is_empty());
    // Detached again: the old timer is still stale, a new one is not armed by a detach.
    life.on(Event::Detach { by: 2 }, &rules).unwrap();
    assert!(life.on(Event::DisconnectTimeout { generation }, &rules).unwrap().is_empty());
    assert_eq!(life.state(), SessionState::Open);
}

#[test]
fn a_reopen_resumes_a_session_its_disconnect_suspended_but_not_one_an_admin_did() {
    let rules = with(|r| r.on_client_disconnect = DisconnectAction::Suspend);
    let mut life = held_by(1);
    life.on(Event::HolderLost(1), &rules).unwrap();
    let generation = life.disconnect_gen;
    life.on(Event::DisconnectTimeout { generation }, &rules).unwrap();
    let fx = life.on(Event::Attach(2), &rules).unwrap();
    assert_eq!(life.state(), SessionState::Open);
    assert!(fx.contains(&E::Want) && fx.contains(&E::Schedule), "{fx:?}");
    assert_eq!(fx.last(), Some(&E::Persist), "the record says open: {fx:?}");

    let mut life = held_by(1);
    on(&mut life, Event::Suspend);
    let fx = on(&mut life, Event::Attach(2));
    assert_eq!(life.state(), SessionState::Suspended);
    assert!(!fx.contains(&E::Want), "{fx:?}");
}

#[test]
fn suspend_and_resume_refuse_what_is_already_so() {
    let mut life = Life::new();
    assert_eq!(life.on(Event::Resume, &rules()), Err(Refused::NotSuspended(SessionState::Open)));
    let fx = on(&mut life, Event::Suspend);
    assert_eq!(fx, vec![E::ArmSuspendGrace { generation: 1 }, E::Persist, E::Schedule]);
    assert!(!life.runnable());
    assert_eq!(life.on(Event::Suspend, &rules()), Err(Refused::AlreadySuspended));
    assert_eq!(life.suspend_gen, 1, "a refused event changes nothing");
    let fx = on(&mut life, Event::Resume);
    assert_eq!(fx, vec![E::Persist, E::Want, E::Schedule]);
    assert!(life.runnable());
}

#[test]
fn only_the_grace_timer_of_the_current_suspension_stops_running_work() {
    let mut life = Life::new();
    on(&mut life, Event::Suspend);
    on(&mut life, Event::Resume);
    on(&mut life, Event::Suspend);
    assert!(on(&mut life, Event::SuspendGraceOver { generation: 1 }).is_empty());
    assert_eq!(on(&mut life, Event::SuspendGraceOver { generation: 2 }), vec![E::StopRunning]);
    on(&mut life, Event::Resume);
    assert!(on(&mut life, Event::SuspendGraceOver { generation: 2 }).is_empty());
}

#[test]
fn drained_is_sent_once_per_holder_and_again_after_more_work() {
    let mut life = Life::new();
    assert!(on(&mut life, Event::Flushed { drained: true }).is_empty(), "nobody to tell");
    on(&mut life, Event::Attach(1));
    assert_eq!(on(&mut life, Event::Flushed { drained: true }), vec![E::SendDrained]);
    assert!(on(&mut life, Event::Flushed { drained: true }).is_empty());
    assert_eq!(on(&mut life, Event::Work), vec![E::Want]);
    assert!(on(&mut life, Event::Flushed { drained: false }).is_empty());
    assert_eq!(on(&mut life, Event::Flushed { drained: true }), vec![E::SendDrained]);
    on(&mut life, Event::Attach(2));
    assert_eq!(on(&mut life, Event::Flushed { drained: true }), vec![E::SendDrained]);
}

#[test]
fn idle_timeout_closes_only_a_detached_quiet_open_session_once_it_has_been_so_long() {
    let rules = with(|r| r.idle_timeout_s = 10);
    let t0 = Instant::now();
    let tick = |life: &mut Life, quiet, secs| {
        life.on(
            Event::Tick {
                quiet,
                now: t0 + Duration::from_secs(secs),
            },
            &rules,
        )
        .unwrap()
    };
    let mut life = Life::new();
    assert!(tick(&mut life, true, 0).is_empty());
    assert!(tick(&mut life, true, 9).is_empty());
    // Busy again: the clock starts over.
    assert!(tick(&mut life, false, 10).is_empty());
    assert!(tick(&mut life, true, 11).is_empty());
    assert!(tick(&mut life, true, 20).is_empty());
    let fx = tick(&mut life, true, 21);
    assert_eq!(finish_of(&fx), Some((SessionState::Closed, "idle timeout", None)));
    assert_eq!(life.state(), SessionState::Closed);

    let mut held = Life::new();
    held.on(Event::Attach(1), &rules).unwrap();
    assert!(tick(&mut held, true, 0).is_empty());
    assert!(tick(&mut held, true, 100).is_empty(), "a held session is never idle");
    let mut suspended = Life::new();
    suspended.on(Event::Suspend, &rules).unwrap();
    assert!(tick(&mut suspended, true, 0).is_empty());
    assert!(tick(&mut suspended, true, 100).is_empty(), "nor a suspended one");
    let forever = super::tests::rules();
    let mut life = Life::new();
    life.on(Event::Tick { quiet: true, now: t0 }, &forever).unwrap();
    let fx = life
        .on(
            Event::Tick {
                quiet: true,
                now: t0 + Duration::from_secs(1 << 30),
            },
            &forever,
        )
        .unwrap();
    assert!(fx.is_empty(), "idleTimeout 0 is forever");
}

#[test]
fn bind_failures_are_retried_up_to_the_limit_then_abort() {
    let rules = with(|r| r.session_retry_limit = 2);
    let fail = |life: &mut Life| {
        let ev = Event::BindFailed {
            msg: "SessionEnter failed: no".into(),
            action: FailureAction::Retry,
        };
        life.on(ev, &rules).unwrap()
    };
    let mut life = held_by(1);
    assert_eq!(fail(&mut life), vec![E::Log("retry 1 of 2 after: SessionEnter failed: no".into())]);
    assert_eq!(life.last_failure(), Some("retry 1 of 2 after: SessionEnter failed: no"));
    life.on(Event::Bound, &rules).unwrap();
    assert_eq!(life.last_failure(), None, "it runs now: the failure is no longer why it waits");
    fail(&mut life);
    let fx = fail(&mut life);
    let (state, reason, notify) = finish_of(&fx).expect("aborted");
    assert_eq!((state, notify), (SessionState::Aborted, Some(1)));
    assert_eq!(reason, "SessionEnter failed: no (failed 3 times: 2 retries, sessionRetryLimit 2)");
    assert!(fail(&mut life).is_empty(), "an ended session takes no more events");
}

#[test]
fn a_failing_bind_aborts_at_once_and_succeed_ignores_it() {
    for (action, ends) in [(FailureAction::Fail, true), (FailureAction::Succeed, false)] {
        let mut life = Life::new();
        let fx = on(&mut life, Event::BindFailed { msg: "x".into(), action });
        assert_eq!(finish_of(&fx).is_some(), ends, "{action:?}");
        assert_eq!(life.state().is_ended(), ends);
    }
}

#[test]
fn a_failed_task_aborts_only_with_abort_session_if_task_fail() {
    let mut life = held_by(1);
    assert!(on(&mut life, Event::TaskFailed { task: 3 }).is_empty());
    let rules = with(|r| r.abort_session_if_task_fail = true);
    let fx = life.on(Event::TaskFailed { task: 3 }, &rules).unwrap();
    let (state, reason, notify) = finish_of(&fx).unwrap();
    assert_eq!((state, notify), (SessionState::Aborted, Some(1)));
    assert!(reason.starts_with("task 3 failed"), "{reason}");
}

#[test]
fn end_tells_the_holder_unless_it_asked_and_then_nothing_moves_it() {
    let mut life = held_by(4);
    let end = |tell_holder| Event::End {
        state: SessionState::Closed,
        reason: "closed by a client".into(),
        tell_holder,
    };
    let fx = on(&mut life, end(false));
    assert_eq!(finish_of(&fx), Some((SessionState::Closed, "closed by a client", None)));
    for ev in [Event::Attach(5), Event::Resume, Event::Suspend, Event::Work, end(true)] {
        assert_eq!(life.on(ev, &rules()), Ok(Vec::new()));
    }
    assert_eq!(life.state(), SessionState::Closed);
    let mut life = held_by(4);
    assert_eq!(finish_of(&on(&mut life, end(true))).unwrap().2, Some(4));
}

#[test]
fn recovery_restores_suspended_reconnecting_and_open_sessions() {
    let (life, fx) = Life::recovered(true, true);
    assert_eq!(life.state(), SessionState::Suspended);
    assert_eq!(fx, vec![E::Want, E::Schedule]);
    let (mut life, fx) = Life::recovered(false, true);
    assert_eq!(life.state(), SessionState::Reconnecting);
    assert!(life.runnable() && life.attached());
    assert_eq!(fx, vec![E::ArmDisconnect { generation: 0 }, E::Want, E::Schedule]);
    // Its timer runs the action; with the default (abort) it ends.
    let fx = on(&mut life, Event::DisconnectTimeout { generation: 0 });
    assert!(finish_of(&fx).is_some());
    let (mut life, _) = Life::recovered(false, true);
    let rules = with(|r| r.on_client_disconnect = DisconnectAction::Continue);
    let fx = life.on(Event::DisconnectTimeout { generation: 0 }, &rules).unwrap();
    assert_eq!(life.state(), SessionState::Open);
    assert!(fx.contains(&E::Want) && fx.contains(&E::Persist));
    assert!(!life.attached());
    let (life, _) = Life::recovered(false, false);
    assert_eq!(life.state(), SessionState::Open);
}
