//! `soamview events`: changes as they happen, as a person and a script read them, and a
//! reader that falls behind never slowing the agent (its events are dropped, and the
//! drop is said).

mod common;
use common::*;
use soam_proto::msg::{AgentFrame, ClientFrame, Event, Hello, Request};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};

/// `soamview events ARGS --follow --json` running, its lines read on a thread.
struct Follower {
    child: Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Follower {
    fn start(env: &Env, args: &[&str]) -> Follower {
        Follower::start_as(env, None, args)
    }

    fn start_as(env: &Env, uid: Option<u32>, args: &[&str]) -> Follower {
        use std::os::unix::process::CommandExt;
        let mut c = env.cmd("soamview");
        if let Some(uid) = uid {
            c.uid(uid).gid(uid);
        }
        let mut child = c
            .arg("events")
            .args(args)
            .args(["--follow", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&l).unwrap()).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// Lines until one satisfies `done` (it included).
    fn until(&self, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(v) => {
                    let last = done(&v);
                    seen.push(v);
                    if last {
                        return seen;
                    }
                }
                Err(_) => panic!("no {what} within 30 s; saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

#[test]
fn sessions_tasks_and_instances_are_told_as_they_happen() {
    let env = Env::with_slots(1);
    env.register("p.yaml", &Env::behave_profile("a", "", "    taskRetryLimit: 1\n"));
    env.register("q.yaml", &Env::behave_profile("other", "", ""));
    // One session open before: the stream starts with the state now.
    let before = env
        .ok("soamsession", &["create", "--app", "a", "--name", "before"])
        .trim()
        .to_string();
    let f = Follower::start(&env, &["a"]);
    let first = f.until("the open session's state", |v| v["kind"] == "session");
    assert_eq!(first[0]["session"].as_u64().unwrap().to_string(), before);
    assert_eq!(first[0]["state"], "open");
    // Another application's work is not in a stream narrowed to `a`.
    env.ok("soamsession", &["submit", "--app", "other", "--task", "x"]);
    env.run("soamsession", &["submit", "--app", "a", "--task", "x", "--task", "fail"]);
    let seen = f.until("the session's close", |v| v["kind"] == "session" && v["state"] == "closed");
    assert!(seen.iter().all(|v| v["app"] == "a"), "{seen:#?}");
    let sid = seen
        .iter()
        .find(|v| v["kind"] == "session" && v["state"] == "open")
        .expect("opened")["session"]
        .clone();
    let states = |task: u64| -> Vec<String> {
        seen.iter()
            .filter(|v| v["kind"] == "task" && v["session"] == sid && v["task"] == task)
            .map(|v| v["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(states(1), ["running", "done"], "{seen:#?}");
    // A failed attempt goes back to pending (retried once), then fails for good.
    assert_eq!(states(2), ["running", "pending", "running", "error"], "{seen:#?}");
    let error = seen.iter().find(|v| v["state"] == "error").unwrap();
    assert_eq!(error["detail"], "failed on attempt 2");
    assert!(seen.iter().any(|v| v["kind"] == "instance" && v["state"] == "started"), "{seen:#?}");
    // Times are RFC 3339 and in order.
    let times: Vec<u64> = seen.iter().map(|v| v["time_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(seen[0]["time"].as_str().unwrap().ends_with('Z'));
    // One session by name: only its events.
    let g = Follower::start(&env, &["a:before"]);
    g.until("its state now", |v| v["kind"] == "session");
    env.ok("soamsession", &["submit", "--app", "a", "--task", "y"]);
    env.ok("soamsession", &["close", &format!("a:{before}")]);
    let only = g.until("its close", |v| v["state"] == "closed");
    assert!(
        only.iter().all(|v| v["session"].as_u64().unwrap().to_string() == before),
        "{only:#?}"
    );
    // Without --follow: the state now, and the command ends.
    let now = env.ok("soamview", &["events"]);
    assert_eq!(now, "", "no open session, nothing to say");
    let e = env.fails_with(2, "soamview", &["events", "a:1", "--watch"]);
    assert!(e.contains("--follow"), "{e}");
    // What cannot be watched is refused in one line, as any view refuses it.
    let e = env.fails("soamview", &["events", "b", "--follow"]);
    assert!(e.contains("unknown application 'b'"), "{e}");
    let e = env.fails("soamview", &["events", "a:nosuch", "--follow"]);
    assert!(e.contains("no open session of 'a' is named 'nosuch'"), "{e}");
}

/// A watcher that reads nothing: the agent runs a large batch at full speed, drops the
/// watcher's events once its connection holds all it may, and says how many when it
/// reads again.
#[test]
fn a_reader_that_falls_behind_is_dropped_from_not_waited_for() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let mut s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    let mut buf = Vec::new();
    let hello = Hello {
        magic: soam_proto::msg::MAGIC,
        version: soam_proto::PROTOCOL_VERSION,
        client: "slow".into(),
    };
    soam_proto::frame::encode_into(&hello, &mut buf).unwrap();
    let watch = ClientFrame {
        id: 1,
        req: Request::Watch { app: None, session: None },
    };
    soam_proto::frame::encode_into(&watch, &mut buf).unwrap();
    s.write_all(&buf).unwrap();
    // 200,000 tasks make some 400,000 events, far more than a connection may hold.
    let o = env.run("soamsession", &["submit", "--app", "a", "--count", "200000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Now read: the welcome, the watch's answer, events, and a drop said with its count.
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut frame = || -> Vec<u8> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        body
    };
    let _welcome = frame();
    let (mut watched, mut dropped) = (0u64, 0u64);
    // More work once reading: the watcher has room again, so the drop is said.
    env.ok("soamsession", &["submit", "--app", "a", "--task", "x"]);
    while dropped == 0 {
        match soam_proto::frame::decode::<AgentFrame>(&frame()).unwrap() {
            AgentFrame::Event(Event::Watched(_)) => watched += 1,
            AgentFrame::Event(Event::Dropped { count }) => dropped = count,
            _ => {}
        }
    }
    assert!(watched > 0 && dropped > 0, "{watched} {dropped}");
    assert!(watched + dropped <= 400_010, "{watched} + {dropped}");
}

/// In a shared agent a user is told of their own sessions, tasks and instances only.
#[test]
fn in_a_shared_agent_a_user_is_told_only_of_their_own_work() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !other_uids_can_run() {
        return;
    }
    let mut env = Env::empty();
    std::fs::set_permissions(env.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = std::fs::File::create(env.path("agent.log")).unwrap();
    let child = std::process::Command::new(bin("soamd"))
        .args(["--slots", "2", "--shared"])
        .env("SOAM_HOME", env.home.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    env.agent = Some(child);
    env.wait_serving();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let theirs = Follower::start_as(&env, Some(NOBODY), &[]);
    let mine = Follower::start(&env, &[]);
    env.ok("soamsession", &["submit", "--app", "a", "--task", "root's"]);
    let root_session = mine
        .until("root's session to close", |v| v["kind"] == "session" && v["state"] == "closed")
        .last()
        .unwrap()["session"]
        .clone();
    let o = env
        .cmd("soamsession")
        .args(["submit", "--app", "a", "--task", "x"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen = theirs.until("nobody's session to close", |v| v["kind"] == "session" && v["state"] == "closed");
    assert!(seen.iter().all(|v| v["session"] != root_session), "{seen:#?}");
    assert!(seen.iter().any(|v| v["kind"] == "task" && v["state"] == "done"), "{seen:#?}");
    // Root (an admin) is told of both.
    let all = mine.until("nobody's session, for root", |v| v["kind"] == "session" && v["state"] == "closed");
    assert!(all.iter().any(|v| v["session"] != root_session && v["kind"] == "task"), "{all:#?}");
}
