//! A client that vanishes while holding a session: the disconnect action runs after
//! transientDisconnectionTimeout unless someone reopens it first.

mod common;
use common::*;
use std::process::{Child, Stdio};

fn holder(env: &Env, session: &str) -> Child {
    env.cmd("soamsession")
        .args(["submit", "--session", session, "--task", "sleep:1", "--task", "sleep:1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the client holds the session and its two tasks are in (taking the
/// session comes before submitting; a client killed in between submitted nothing).
fn held(env: &Env, id: u64) {
    wait_for(20, "a holder with its tasks", || {
        env.session("a", id)
            .filter(|s| {
                s["holder"].is_string()
                    && s["pending"].as_u64().unwrap() + s["running"].as_u64().unwrap() + s["done"].as_u64().unwrap() == 2
            })
            .map(|_| ())
    });
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn vanished_client_abort_after_timeout() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "  transientDisconnectionTimeout: 1\n", ""));
    let id: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    let c = holder(&env, &format!("a:{id}"));
    held(&env, id);
    kill(c);
    let h = wait_for(20, "abort", || env.history("a", id));
    assert_eq!(h["state"], "aborted");
    assert!(h["reason"].as_str().unwrap().contains("client disconnected"));
}

#[test]
fn reopen_within_the_timeout_keeps_the_session() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "  transientDisconnectionTimeout: 2\n", ""));
    let id: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    let c = holder(&env, &format!("a:{id}"));
    held(&env, id);
    kill(c);
    let out = env.ok("soamsession", &["reopen", &format!("a:{id}"), "--keep-open"]);
    assert_eq!(out, "slept\nslept\n");
    // Well past the timeout it is still open (detached by the reopen, nothing to abort).
    // A sleep, not a wait: what is checked is that nothing happens when the timer fires.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let s = env.session("a", id).expect("still open");
    assert_eq!(s["state"], "open");
}

#[test]
fn continue_keeps_the_workload_running_detached() {
    let env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile(
            "a",
            "  transientDisconnectionTimeout: 0\n",
            "  - name: Keep\n    abortSessionIfClientDisconnect: false\n",
        ),
    );
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep"])
        .trim()
        .parse()
        .unwrap();
    let c = holder(&env, &format!("a:{id}"));
    held(&env, id);
    kill(c);
    wait_for(20, "tasks done while detached", || {
        env.session("a", id).filter(|s| s["done"] == 2 && s["holder"].is_null()).map(|_| ())
    });
    let out = env.ok("soamsession", &["reopen", &format!("a:{id}")]);
    assert_eq!(out, "slept\nslept\n");
    assert_eq!(env.history("a", id).unwrap()["state"], "closed");
}

/// A session its disconnect action suspended is resumed by the reopen, and the store
/// says so: an agent killed while the reopening client holds it brings it back
/// reconnecting (waiting for that client), not suspended as the store said before.
#[test]
fn a_reopen_that_resumed_a_suspended_session_is_what_a_restart_finds() {
    let mut env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile(
            "a",
            "  transientDisconnectionTimeout: 0\n",
            "  - name: Rec\n    recoverable: true\n    onClientDisconnect: suspend\n",
        ),
    );
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Rec"])
        .trim()
        .parse()
        .unwrap();
    let sess = format!("a:{id}");
    let c = holder(&env, &sess);
    held(&env, id);
    kill(c);
    wait_for(20, "suspended by the disconnect", || {
        env.session("a", id).filter(|s| s["state"] == "suspended").map(|_| ())
    });
    let reopen = env
        .cmd("soamsession")
        .args(["reopen", &sess])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(20, "reopened and resumed", || {
        env.session("a", id)
            .filter(|s| s["state"] == "open" && s["holder"].is_string())
            .map(|_| ())
    });
    // State changes are written without waiting; a create waits for its commit, which
    // comes after theirs.
    env.ok("soamsession", &["create", "--app", "a"]);
    env.stop_agent(libc::SIGKILL);
    kill(reopen);
    env.start_agent();
    // With a timeout of 0 its disconnect action suspends it again at once; what it
    // came back as is in the log.
    let log = env.ok("soamcontrol", &["agent", "log", "-n", "500"]);
    assert!(log.contains(&format!("recovered session {sess} (reconnecting)")), "{log}");
    env.ok("soamsession", &["abort", &sess]);
}
