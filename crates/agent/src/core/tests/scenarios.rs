//! The core's rules, one scenario each, driven message by message (see the harness).

use super::*;
use soam_proto::msg::{SessionAction, SessionState, TaskState};

fn echo(_: &OutMsg) -> Answer {
    Answer::Echo
}

/// Answers everything but Invokes, which stay running.
fn hold_invokes(m: &OutMsg) -> Answer {
    if m.kind == Kind::Invoke { Answer::Hold } else { Answer::Echo }
}

fn done(outputs: &[TaskOutput]) -> Vec<(u64, TaskState, u32, String)> {
    outputs
        .iter()
        .map(|o| (o.task, o.state, o.attempts, String::from_utf8_lossy(&o.data).into_owned()))
        .collect()
}

#[test]
fn submit_invoke_reply_then_outputs_and_drained() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &profile(""));
    let s = h.create(1, "app", "").unwrap();
    h.submit(1, &s, &["a", "b", "c"]);
    assert_eq!(h.started().len(), 1, "one instance (one slot)");
    let invoked = h.serve(echo);
    assert_eq!(
        invoked,
        vec![(1, 1), (2, 1), (3, 1)],
        "each task invoked once, in order, first attempt"
    );
    let events = h.events(1);
    let outputs: Vec<TaskOutput> = events
        .iter()
        .flat_map(|e| match e {
            Event::Outputs { outputs, .. } => outputs.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        done(&outputs),
        vec![
            (1, TaskState::Done, 1, "a".into()),
            (2, TaskState::Done, 1, "b".into()),
            (3, TaskState::Done, 1, "c".into())
        ]
    );
    assert!(
        matches!(events.last(), Some(Event::Drained { session: 1, .. })),
        "Drained follows the last output: {events:?}"
    );
    let info = h.session(1, &s);
    assert_eq!((info.done, info.pending, info.running, info.state), (3, 0, 0, SessionState::Open));
}

#[test]
fn a_failing_task_is_retried_to_its_limit_then_in_error() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &profile("  - name: Two\n    taskRetryLimit: 2\n"));
    let s = h.create(1, "app", "Two").unwrap();
    h.submit(1, &s, &["x"]);
    let invoked = h.serve(|m| if m.kind == Kind::Invoke { Answer::Fail("no") } else { Answer::Echo });
    assert_eq!(invoked, vec![(1, 1), (1, 2), (1, 3)], "limit 2: three attempts, then no more");
    let out = h.outputs(1, &s);
    assert_eq!(done(&out), vec![(1, TaskState::Error, 3, "no".into())]);
}

#[test]
fn suspend_stops_running_work_after_its_grace_and_resume_runs_it_again() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &profile("  - name: Graced\n    suspendGracePeriod: 500\n"));
    let s = h.create(1, "app", "Graced").unwrap();
    h.submit(1, &s, &["a"]);
    h.serve(hold_invokes);
    let [(inst, 1, 1)] = h.running()[..] else {
        panic!("{:?}", h.running())
    };
    let r = h.ask(
        1,
        Request::SessionControl {
            session: sref(&s),
            action: SessionAction::Suspend,
        },
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(h.session(1, &s).state, SessionState::Suspended);
    assert!(!h.killed(inst), "within its grace the running task may still finish");
    assert!(
        h.timers().iter().any(|t| matches!(t, Timer::SuspendGrace { .. })),
        "a grace timer was set: {:?}",
        h.timers()
    );
    h.fire(|t| matches!(t, Timer::SuspendGrace { .. }));
    assert!(h.killed(inst), "after its grace the running task is stopped");
    h.exit(inst, "killed by the agent");
    let info = h.session(1, &s);
    assert_eq!((info.pending, info.running, info.error), (1, 0, 0), "requeued, not failed");
    assert_eq!(h.started().len(), 1, "nothing starts for a suspended session");
    let r = h.ask(
        1,
        Request::SessionControl {
            session: sref(&s),
            action: SessionAction::Resume,
        },
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(h.started().len(), 2, "resumed: an instance starts for its work");
    let invoked = h.serve(echo);
    assert_eq!(invoked, vec![(1, 1)], "the suspended attempt is not counted as a retry");
    assert_eq!(done(&h.outputs(1, &s)), vec![(1, TaskState::Done, 1, "a".into())]);
}

/// A held session whose client vanishes, with running work: the disconnect action of
/// its type runs when the transientDisconnectionTimeout timer fires.
fn vanish(action: &str) -> (H, String, InstId) {
    let mut h = H::new();
    h.connect(1);
    h.connect(2);
    h.register(1, &profile(&format!("  - name: T\n    onClientDisconnect: {action}\n")));
    let s = h.create(1, "app", "T").unwrap();
    h.submit(1, &s, &["a"]);
    h.serve(hold_invokes);
    let [(inst, 1, 1)] = h.running()[..] else {
        panic!("{:?}", h.running())
    };
    h.disconnect(1);
    assert_eq!(h.session(2, &s).state, SessionState::Open, "nothing happens before the timeout");
    h.fire(|t| matches!(t, Timer::Disconnect { .. }));
    (h, s, inst)
}

#[test]
fn disconnect_abort_ends_the_session_and_stops_its_work() {
    let (mut h, s, inst) = vanish("abort");
    let info = h.session(2, &s);
    assert_eq!(info.state, SessionState::Aborted, "{info:?}");
    // The running task is cancelled: its instance is stopped once taskCleanupPeriod
    // (a timer) runs out with the task still on it.
    h.fire(|t| matches!(t, Timer::Cleanup { .. }));
    assert!(h.killed(inst), "the aborted session's running task was not stopped");
}

#[test]
fn disconnect_suspend_suspends_until_a_client_opens_it_again() {
    let (mut h, s, inst) = vanish("suspend");
    assert_eq!(h.session(2, &s).state, SessionState::Suspended);
    // Suspended with the type's grace (none given: taskGracePeriod), then stopped.
    h.fire(|t| matches!(t, Timer::SuspendGrace { .. }));
    assert!(h.killed(inst));
    h.exit(inst, "killed by the agent");
    h.reopen(2, &s);
    assert_eq!(h.session(2, &s).state, SessionState::Open, "a reopen resumes it");
    let invoked = h.serve(echo);
    assert_eq!(invoked, vec![(1, 1)], "the stopped attempt is not counted");
    assert_eq!(done(&h.outputs(2, &s)), vec![(1, TaskState::Done, 1, "a".into())]);
}

#[test]
fn disconnect_continue_keeps_the_work_running_for_a_later_holder() {
    let (mut h, s, inst) = vanish("continue");
    assert_eq!(h.session(2, &s).state, SessionState::Open);
    assert!(!h.killed(inst));
    h.serve(echo);
    let info = h.session(2, &s);
    assert_eq!((info.done, info.undelivered), (1, 1), "done, kept for whoever opens it");
    assert_eq!(h.reopen(2, &s), 1, "its output is waiting for the new holder");
    h.until("the kept output", |h| !h.conns[&2].frames.lock().unwrap().is_empty());
    assert_eq!(done(&h.outputs(2, &s)), vec![(1, TaskState::Done, 1, "a".into())]);
}

#[test]
fn a_create_over_max_sessions_is_refused_and_changes_nothing() {
    let mut h = H::new();
    h.connect(1);
    let p = profile("").replace("  transientDisconnectionTimeout: 5\n", "  maxSessions: 1\n");
    h.register(1, &p);
    let first = h.create(1, "app", "").unwrap();
    let before = h.sessions(1);
    let calls = h.calls();
    let e = h.create(1, "app", "").unwrap_err();
    assert!(e.contains("maxSessions"), "{e}");
    assert_eq!(format!("{:?}", h.sessions(1)), format!("{before:?}"), "the sessions changed");
    assert_eq!(h.calls(), calls, "the refused create asked for something");
    // The refused create used no session id either.
    assert!(h.ask(1, Request::Close { session: sref(&first) }).is_ok());
    assert_eq!(h.create(1, "app", "").unwrap(), "app:2");
}

#[test]
fn a_submit_over_max_stored_tasks_is_refused_whole_and_changes_nothing() {
    let mut h = H::with(|cfg| cfg.max_stored_tasks = Some(3));
    h.connect(1);
    h.register(1, &profile(""));
    let s = h.create(1, "app", "").unwrap();
    h.submit(1, &s, &["a", "b"]);
    let calls = h.calls();
    let r = h.ask(
        1,
        Request::Submit {
            session: sref(&s),
            tasks: vec![Bytes::from("c"), Bytes::from("d")],
        },
    );
    let e = r.unwrap_err();
    assert!(e.contains("maxStoredTasks"), "{e}");
    let info = h.session(1, &s);
    assert_eq!(
        (info.pending + info.running, info.done),
        (2, 0),
        "none of the refused submit was added"
    );
    assert_eq!(h.calls(), calls, "the refused submit asked for something");
    // What still fits is accepted, under the next ids.
    let r = h.ask(
        1,
        Request::Submit {
            session: sref(&s),
            tasks: vec![Bytes::from("c")],
        },
    );
    assert!(matches!(r, Ok(Reply::Submitted { first: 3, count: 1 })), "{r:?}");
    h.serve(echo);
    assert_eq!(h.outputs(1, &s).len(), 3);
}

#[test]
fn an_instance_that_exits_fails_its_running_task_and_requeues_the_rest() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &profile(""));
    let s = h.create(1, "app", "").unwrap();
    // A first task measures the service: it is fast, so later ones are queued on the
    // instance several at a time.
    h.submit(1, &s, &["warm"]);
    h.serve(echo);
    h.submit(1, &s, &["a", "b"]);
    h.serve(hold_invokes);
    let running = h.running();
    assert_eq!(
        running.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
        vec![(2, 1), (3, 1)],
        "both sent to it"
    );
    let inst = running[0].0;
    h.exit(inst, "service process ended (signal 9)");
    let info = h.session(1, &s);
    assert_eq!((info.pending, info.running, info.error), (2, 0, 0), "both back in the queue");
    assert_eq!(h.started().len(), 2, "a new instance started for them");
    let mut invoked = h.serve(echo);
    invoked.sort();
    assert_eq!(
        invoked,
        vec![(2, 2), (3, 1)],
        "the task it was running counts an attempt, the one queued behind it does not"
    );
    let out = h.outputs(1, &s);
    assert_eq!(
        done(&out[1..]),
        vec![(2, TaskState::Done, 2, "a".into()), (3, TaskState::Done, 1, "b".into())]
    );
}

#[test]
fn a_recoverable_session_comes_back_after_a_restart_and_its_tasks_run() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &profile("  - name: Rec\n    recoverable: true\n"));
    let s = h.create(1, "app", "Rec").unwrap();
    h.submit(1, &s, &["a", "b"]);
    // The agent dies before any task ran.
    let mut h = h.restart();
    h.connect(1);
    let info = h.session(1, &s);
    assert_eq!((info.state, info.pending), (SessionState::Reconnecting, 2), "{info:?}");
    h.reopen(1, &s);
    assert_eq!(h.session(1, &s).state, SessionState::Open);
    h.serve(echo);
    h.until("both outputs", |h| {
        let frames = h.conns[&1].frames.lock().unwrap();
        frames.iter().any(|f| matches!(f, AgentFrame::Event(Event::Drained { .. })))
    });
    assert_eq!(
        done(&h.outputs(1, &s)),
        vec![(1, TaskState::Done, 1, "a".into()), (2, TaskState::Done, 1, "b".into())]
    );
}

#[test]
fn a_slurm_allocation_lost_mid_task_requeues_it_uncounted_and_asks_again() {
    let mut h = H::new();
    h.connect(1);
    h.register(1, &slurm_profile());
    let s = h.create(1, "app", "").unwrap();
    h.submit(1, &s, &["a"]);
    assert_eq!(
        h.calls(),
        vec![Call::CancelLeftovers],
        "first, an earlier life's jobs are cancelled"
    );
    h.cluster(ClusterEvent::Ready);
    assert_eq!(h.calls().last(), Some(&Call::RequestAlloc(0)));
    h.cluster(ClusterEvent::AllocGranted {
        alloc: 0,
        job: 77,
        nodes: vec!["n1".into()],
        cpus: 2,
    });
    assert!(h.calls().contains(&Call::StartWorker {
        worker: 0,
        job: 77,
        node: "n1".into()
    }));
    h.worker_up(0, "n1", 77);
    assert_eq!(h.started().len(), 1, "an instance starts on the worker");
    assert!(h.calls().contains(&Call::StartRemote(h.started()[0])));
    h.serve(hold_invokes);
    assert_eq!(h.session(1, &s).running, 1);
    h.cluster(ClusterEvent::WorkerGone {
        worker: 0,
        why: "node n1 lost".into(),
        slurm_lost: true,
    });
    let info = h.session(1, &s);
    assert_eq!((info.pending, info.running, info.error), (1, 0, 0), "requeued");
    assert!(h.calls().contains(&Call::Cancel(77)), "the rest of the allocation is given back");
    assert_eq!(h.calls().last(), Some(&Call::RequestAlloc(1)), "and capacity asked for anew");
    h.cluster(ClusterEvent::AllocGranted {
        alloc: 1,
        job: 78,
        nodes: vec!["n2".into()],
        cpus: 2,
    });
    h.worker_up(1, "n2", 78);
    let invoked = h.serve(echo);
    assert_eq!(invoked, vec![(1, 1)], "the lost attempt is not counted");
    assert_eq!(done(&h.outputs(1, &s)), vec![(1, TaskState::Done, 1, "a".into())]);
}

/// The test profile with its service on Slurm: one node of 2 CPUs an allocation.
fn slurm_profile() -> String {
    profile("").replace(
        "    command: [\"/bin/true\"]\n",
        "    command: [\"/bin/true\"]\n    launcher: slurm\n    slurm:\n      nodes: 1\n      cpusPerNode: 2\n",
    )
}

#[test]
fn workers_that_cannot_be_started_give_the_allocation_back_and_say_why() {
    let mut h = H::new();
    *h.fake.no_workers.lock().unwrap() = Some("cannot listen for cluster workers on port 1: denied".into());
    h.connect(1);
    h.register(1, &slurm_profile());
    let s = h.create(1, "app", "").unwrap();
    h.submit(1, &s, &["a"]);
    h.cluster(ClusterEvent::Ready);
    h.cluster(ClusterEvent::AllocGranted {
        alloc: 0,
        job: 77,
        nodes: vec!["n1".into()],
        cpus: 2,
    });
    assert!(
        h.calls().contains(&Call::Cancel(77)),
        "the allocation is given back: {:?}",
        h.calls()
    );
    assert!(h.started().is_empty());
    // The session can get no capacity: it ends, saying why.
    let info = h.session(1, &s);
    assert_eq!(info.state, SessionState::Aborted, "{info:?}");
    assert!(info.reason.as_deref().unwrap_or("").contains("cannot listen"), "{info:?}");
}
