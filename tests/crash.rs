//! Crash tests: SIGKILL the agent (then, separately, the client) at random moments
//! during a recoverable workload of thousands of tasks, and check with a client that
//! every acknowledged task's output arrives. Bounded: a few kills, seconds each.
//! The seed is printed; set SOAM_CRASH_SEED to replay a run.

mod common;
use common::*;
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

const TASKS: usize = 3000;
const KILLS: usize = 4;

struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("SOAM_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("SOAM_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    /// xorshift64*
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A new recoverable session of application `a` (its `APP:ID`).
fn recoverable_session(env: &Env) -> String {
    env.register(
        "p.yaml",
        &Env::behave_profile(
            "a",
            "  transientDisconnectionTimeout: 60\n",
            "  - name: Rec\n    recoverable: true\n    onClientDisconnect: continue\n",
        ),
    );
    let id = env.ok("soamsession", &["create", "--app", "a", "--type", "Rec"]).trim().to_string();
    format!("a:{id}")
}

fn setup(env: &Env) -> String {
    let session = recoverable_session(env);
    let inputs: String = (1..=TASKS).map(|i| format!("nap:0.0005:out-{i}\n")).collect();
    let f = env.path("inputs.txt");
    std::fs::write(&f, inputs).unwrap();
    // Every task is acknowledged (durable) once this returns.
    env.ok(
        "soamsession",
        &["submit", "--session", &session, "--input-file", f.to_str().unwrap(), "--detach"],
    );
    session
}

/// A client collecting everything; with `detach` it leaves the session open at the end
/// (so a client that finishes before its kill does not end the test's session).
fn collector(env: &Env, session: &str, out: &std::path::Path, detach: bool) -> Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
    let mut args = vec!["reopen", session, "--jsonl", "--reconnect-timeout", "60", "--ping-interval", "1"];
    if detach {
        args.push("--detach");
    }
    env.cmd("soamsession")
        .args(args)
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Task id -> how many times it was written; checks every output is the right one.
fn outputs(path: &std::path::Path) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        // A killed client may leave a half-written last line.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let task = v["task"].as_u64().unwrap();
        assert_eq!(v["state"], "done", "{line}");
        assert_eq!(v["output"], format!("out-{task}"), "{line}");
        *seen.entry(task).or_default() += 1;
    }
    seen
}

#[test]
fn agent_killed_at_random_moments_loses_no_acknowledged_task() {
    let mut rng = Rng::new();
    let mut env = Env::new();
    let session = setup(&env);
    let out = env.path("out.jsonl");
    let mut client = collector(&env, &session, &out, false);
    let mut at_kill = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        at_kill.push(outputs(&out).len());
        env.stop_agent(libc::SIGKILL);
        env.start_agent();
    }
    println!("outputs collected at each kill: {at_kill:?}");
    assert!(at_kill[0] < TASKS, "the first kill came during the workload");
    let status = wait_for(120, "the collecting client to finish", || client.try_wait().unwrap());
    assert!(status.success(), "the client rode out every restart");
    let seen = outputs(&out);
    assert_eq!(seen.len(), TASKS, "every task's output arrived");
    let dup = seen.values().filter(|&&n| n > 1).count();
    assert_eq!(dup, 0, "one client shows each output once");
    assert_eq!(env.history("a", session[2..].parse().unwrap()).unwrap()["done"], TASKS as u64);
}

#[test]
fn client_killed_at_random_moments_loses_nothing() {
    let mut rng = Rng::new();
    let env = Env::new();
    let session = setup(&env);
    let out = env.path("out.jsonl");
    let mut at_kill = Vec::new();
    for _ in 0..KILLS {
        let mut client = collector(&env, &session, &out, true);
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        let _ = client.kill();
        let _ = client.wait();
        at_kill.push(outputs(&out).len());
    }
    println!("outputs collected at each kill: {at_kill:?}");
    assert!(at_kill[0] < TASKS, "the first kill came during the workload");
    let mut last = collector(&env, &session, &out, false);
    let status = wait_for(120, "the last client to finish", || last.try_wait().unwrap());
    assert!(status.success());
    let seen = outputs(&out);
    assert_eq!(
        seen.len(),
        TASKS,
        "every task's output arrived (some possibly twice: at least once)"
    );
}

/// Submissions cut by a kill -9 of the agent at a random moment: each `submit`
/// reconnects and sends its submission again under the same request id, so every one
/// ends up accepted exactly once (never twice, never half).
#[test]
fn submissions_cut_by_agent_kills_are_accepted_once() {
    let mut env = Env::new();
    let mut rng = Rng::new();
    let session = recoverable_session(&env);
    env.ok("soamcontrol", &["session", "suspend", &session]);
    // Several messages' worth each (staged, then submitted).
    let n = 60_000;
    let f = env.path("inputs.txt");
    std::fs::write(&f, (0..n).map(|i| format!("in-{i:0>60}\n")).collect::<String>()).unwrap();
    let mut expected = 0;
    for round in 0..4 {
        let submit = env
            .cmd("soamsession")
            .args(["submit", "--session", &session, "--input-file", f.to_str().unwrap(), "--detach"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        env.stop_agent(libc::SIGKILL);
        env.start_agent();
        let o = submit.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => expected += n,
            // Killed before it connected: nothing was sent.
            Some(3) if err.contains("no agent answers") => {}
            other => panic!("round {round}: {other:?} {err}"),
        }
        let s = env.json("soamview", &["session", "a"]);
        let held = s[0]["pending"].as_u64().unwrap();
        assert_eq!(held, expected, "round {round}: every submission once");
    }
}
