//! Crash recovery: recoverable sessions come back after kill -9 with every accepted task
//! and kept output; sessions a client held are `reconnecting` until it returns or the
//! disconnect action applies; non-recoverable ones end `aborted`.

mod common;
use common::*;

const TYPES: &str = "  - name: Rec\n    recoverable: true\n    onClientDisconnect: continue\n  - name: RecAbort\n    recoverable: true\n  - name: RecSuspend\n    recoverable: true\n    onClientDisconnect: suspend\n";

#[test]
fn recoverable_session_survives_kill_9_with_its_tasks_and_outputs() {
    let mut env = Env::with_slots(1);
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Rec"])
        .trim()
        .parse()
        .unwrap();
    let plain: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    let s = format!("a:{id}");
    env.ok(
        "soamsession",
        &["submit", "--session", &s, "--task", "one", "--task", "two", "--detach"],
    );
    // Done, and committed (a recoverable task's output is deliverable once its end is).
    wait_for(20, "two done", || {
        let v = env.session("a", id).unwrap();
        (v["done"] == 2 && v["undelivered"] == 2).then_some(())
    });
    // Collect (and acknowledge) one of them; then a long task runs and one waits.
    assert_eq!(env.ok("soamsession", &["fetch", &s, "--max", "1"]).lines().count(), 1);
    env.ok(
        "soamsession",
        &["submit", "--session", &s, "--task", "sleep:30", "--task", "three", "--detach"],
    );
    // (`three` may be queued on the instance behind it, which also counts as running.)
    wait_for(20, "long task running", || {
        (env.session("a", id).unwrap()["running"].as_u64() >= Some(1)).then_some(())
    });

    env.stop_agent(libc::SIGKILL);
    env.start_agent();

    let v = env.session("a", id).expect("the recoverable session is back");
    assert_eq!(v["state"], "open", "it was detached, so it is not waiting for a client");
    assert_eq!(v["done"], 2);
    assert_eq!(v["undelivered"], 1, "the output nobody acknowledged is kept");
    // The running attempt went back to pending without counting.
    let tasks = env.json("soamview", &["task", &s]);
    assert!(
        tasks[2]["attempts"].as_u64().unwrap() <= 1,
        "the attempt cut short does not count: {}",
        tasks[2]
    );
    assert!(env.session("a", plain).is_none());
    let h = env.history("a", plain).unwrap();
    assert_eq!(h["state"], "aborted");
    assert!(h["reason"].as_str().unwrap().contains("not recoverable"));
    // Ids continue after the recovered ones.
    let next: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    assert!(next > plain);
    // Everything arrives: the unacknowledged output and the two remaining tasks.
    env.ok("soamcontrol", &["task", "kill", &format!("{s}:3")]);
    let o = env.run("soamsession", &["reopen", &s, "--ordered"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), 2, "{out}");
    assert!(got.contains(&"three"), "{out}");
    assert!(got.contains(&"one") ^ got.contains(&"two"), "exactly the unacknowledged one: {out}");
}

#[test]
fn held_sessions_come_back_reconnecting_and_follow_their_disconnect_action() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "  transientDisconnectionTimeout: 3\n", TYPES));
    let keep: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Rec"])
        .trim()
        .parse()
        .unwrap();
    let gone: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "RecAbort"])
        .trim()
        .parse()
        .unwrap();
    let held: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "RecSuspend"])
        .trim()
        .parse()
        .unwrap();
    let mut clients = Vec::new();
    for id in [keep, gone, held] {
        let c = env
            .cmd("soamsession")
            .args([
                "submit",
                "--session",
                &format!("a:{id}"),
                // Long enough that no client is done before the agent is killed
                // (a finished one detaches, and its session would not be held).
                "--task",
                "sleep:3",
                "--task",
                "x",
                "--reconnect-timeout",
                "0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        clients.push(c);
        // Held, and both tasks in (the client takes the session before it submits).
        wait_for(20, "held with its tasks", || {
            env.session("a", id)
                .filter(|s| {
                    s["holder"].is_string()
                        && s["pending"].as_u64().unwrap() + s["running"].as_u64().unwrap() + s["done"].as_u64().unwrap() == 2
                })
                .map(|_| ())
        });
    }
    // Who holds a session is written without waiting; a create is committed before it
    // is answered, and commits keep their order, so after this one the holds are on disk.
    env.ok("soamsession", &["create", "--app", "a", "--type", "Rec"]);
    env.stop_agent(libc::SIGKILL);
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    env.start_agent();
    for id in [keep, gone, held] {
        assert_eq!(env.session("a", id).unwrap()["state"], "reconnecting", "session {id}");
    }
    // The workload runs meanwhile; an admin may suspend one.
    wait_for(20, "workload runs while reconnecting", || {
        (env.session("a", keep).unwrap()["done"] == 2).then_some(())
    });
    env.ok("soamcontrol", &["session", "suspend", &format!("a:{keep}")]);
    assert_eq!(env.session("a", keep).unwrap()["state"], "suspended");
    env.ok("soamcontrol", &["session", "resume", &format!("a:{keep}")]);
    // A reopen makes one open again.
    let out = env.ok("soamsession", &["reopen", &format!("a:{keep}"), "--keep-open"]);
    assert_eq!(out.lines().count(), 2);
    assert_eq!(env.session("a", keep).unwrap()["state"], "open");
    // At the timeout: abort for one, suspend for the other.
    let h = wait_for(20, "disconnect action abort", || env.history("a", gone));
    assert_eq!(h["state"], "aborted");
    wait_for(20, "disconnect action suspend", || {
        (env.session("a", held).unwrap()["state"] == "suspended").then_some(())
    });
    // A reopen resumes a session its disconnect action suspended.
    env.ok("soamsession", &["reopen", &format!("a:{held}"), "--detach"]);
    assert_eq!(env.session("a", held).unwrap()["state"], "open");
}

#[test]
fn a_waiting_submit_rides_out_an_agent_restart_or_says_how_to_reopen() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "  transientDisconnectionTimeout: 30\n", TYPES));
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "RecAbort"])
        .trim()
        .parse()
        .unwrap();
    let s = format!("a:{id}");
    let tasks: Vec<String> = (1..=20).map(|i| format!("nap:0.05:r{i}")).collect();
    let mut args = vec!["submit", "--session", &s, "--reconnect-timeout", "30", "--ping-interval", "0.5"];
    for t in &tasks {
        args.extend(["--task", t]);
    }
    let mut client = env
        .cmd("soamsession")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // An output is only sent after the submit was committed and acknowledged, so once
    // one is printed every task is the agent's to keep.
    use std::io::BufRead;
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    env.stop_agent(libc::SIGKILL);
    env.start_agent();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let o = client.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got: Vec<String> = first.lines().chain(rest.lines()).map(String::from).collect();
    got.sort();
    let mut want: Vec<String> = (1..=20).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every output exactly once across the restart");
    assert!(String::from_utf8_lossy(&o.stderr).contains("reconnected"));

    // No agent comes back within --reconnect-timeout: a clear message and the command to use.
    let mut client = env
        .cmd("soamsession")
        .args([
            "submit",
            "--session",
            &s,
            "--task",
            "nap:0.01:first",
            "--task",
            "sleep:30",
            "--reconnect-timeout",
            "0.5",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "first\n");
    env.stop_agent(libc::SIGKILL);
    let o = client.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "agent unreachable");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("permanently lost") && err.contains(&format!("soamsession reopen {s}")),
        "{err}"
    );
}
