//! The agent process: socket security, single owner of a store, clean stops, stale
//! sockets, autostart, and bad frames from a client.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

#[test]
fn socket_is_private_and_status_describes_the_agent() {
    let env = Env::new();
    let sock = env.socket();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let dir_mode = std::fs::metadata(sock.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "socket folder mode");
    let st = env.json("soamcontrol", &["agent", "status"]);
    assert_eq!(st["pid"], env.agent_pid());
    assert_eq!(st["slots"], 2);
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert!(st["store"].as_str().unwrap().starts_with(env.home.path().to_str().unwrap()));
    assert!(st["uptime_s"].is_u64());
}

#[test]
fn second_agent_on_the_same_store_refuses_and_names_the_holder() {
    let env = Env::new();
    let o = env.cmd("soamd").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("pid {}", env.agent_pid())), "{err}");
    // The first agent is unharmed.
    env.ok("soamcontrol", &["agent", "status"]);
}

#[test]
fn shutdown_command_sigterm_and_sigint_stop_cleanly() {
    let mut env = Env::new();
    env.ok("soamcontrol", &["agent", "shutdown"]);
    let mut child = env.agent.take().unwrap();
    let status = wait_for(10, "agent exit", || child.try_wait().unwrap());
    assert!(status.success());
    assert!(!env.socket().exists(), "socket removed");

    for sig in [libc::SIGTERM, libc::SIGINT] {
        env.start_agent();
        assert_eq!(env.stop_agent(sig), Some(0));
        assert!(!env.socket().exists(), "socket removed after signal {sig}");
    }
    // The store was closed properly: a new agent opens it at once.
    env.start_agent();
}

#[test]
fn stale_socket_from_a_killed_agent_is_replaced() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.stop_agent(libc::SIGKILL);
    assert!(env.socket().exists(), "a killed agent leaves its socket behind");
    env.start_agent();
    // Profiles survive the restart.
    let apps = env.json("soamview", &["app"]);
    assert_eq!(apps[0]["app"], "a");
}

#[test]
fn commands_start_the_agent_on_demand() {
    let env = Env::empty();
    let mut c = env.cmd("soamview");
    c.env_remove("SOAM_NO_AUTOSTART").args(["app", "--json"]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = env.json("soamcontrol", &["agent", "status"]);
    let pid = st["pid"].as_u64().unwrap() as i32;
    env.ok("soamcontrol", &["agent", "shutdown"]);
    wait_for(10, "autostarted agent to exit", || {
        (unsafe { libc::kill(pid, 0) } != 0).then_some(())
    });
    // Without autostart, no agent is a clear error.
    let err = env.fails_with(3, "soamview", &["app"]);
    assert!(err.starts_with("soamview: no agent answers on"), "{err}");
}

fn raw(env: &Env) -> UnixStream {
    let s = UnixStream::connect(env.socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s
}

fn read_all(mut s: UnixStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

#[test]
fn bad_frames_get_an_error_and_only_their_connection_closes() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    // Not a soam client at all.
    let mut s = raw(&env);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let reply = read_all(s);
    assert!(
        String::from_utf8_lossy(&reply).contains("exceeds"),
        "oversized length is refused: {reply:?}"
    );

    // A good handshake, then a frame announcing 1 GiB.
    let mut s = raw(&env);
    let hello = soam_proto::msg::Hello {
        magic: soam_proto::msg::MAGIC,
        version: soam_proto::PROTOCOL_VERSION,
        client: "raw".into(),
    };
    let mut buf = Vec::new();
    soam_proto::frame::encode_into(&hello, &mut buf).unwrap();
    s.write_all(&buf).unwrap();
    s.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
    let reply = read_all(s);
    assert!(String::from_utf8_lossy(&reply).contains("exceeds the"), "{reply:?}");

    // A good handshake, then garbage of a valid length.
    let mut s = raw(&env);
    s.write_all(&buf).unwrap();
    s.write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    let reply = read_all(s);
    assert!(String::from_utf8_lossy(&reply).contains("malformed frame"), "{reply:?}");

    // A client of another protocol version is told both versions.
    let mut s = raw(&env);
    let old = soam_proto::msg::Hello { version: 999, ..hello };
    let mut b2 = Vec::new();
    soam_proto::frame::encode_into(&old, &mut b2).unwrap();
    s.write_all(&b2).unwrap();
    let reply = String::from_utf8_lossy(&read_all(s)).to_string();
    assert!(reply.contains("version 999") && reply.contains("protocol mismatch"), "{reply}");

    // Everyone else is still served, and nothing changed.
    let apps = env.json("soamview", &["app"]);
    assert_eq!(apps.as_array().unwrap().len(), 1);
    let out = env.run_stdin("soamsession", &["submit", "--app", "a"], "x\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n");
}

#[test]
fn config_file_idle_instances_stop_and_limits_refuse_clearly() {
    let mut env = Env::empty();
    std::fs::write(
        env.path("soamd.yaml"),
        "instanceIdleTimeout: 1\nmaxStoredSessions: 2\nmaxStoredTasks: 5\n",
    )
    .unwrap();
    env.start_agent();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let id = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    let sess = format!("a:{id}");
    env.ok("soamsession", &["submit", "--session", &sess, "--count", "3"]);
    // Nothing to run for a while: instances leave their session and stop.
    wait_for(20, "idle instances to stop", || {
        (env.json("soamcontrol", &["agent", "status"])["instances"] == 0).then_some(())
    });
    // maxStoredTasks: 3 held, 3 more would pass 5; refused, nothing accepted.
    let e = env.fails_with(6, "soamsession", &["submit", "--session", &sess, "--count", "3"]);
    assert!(e.contains("maxStoredTasks limit (5"), "{e}");
    assert_eq!(env.json("soamview", &["task", &sess]).as_array().unwrap().len(), 3);
    // Up to the limit exactly is accepted.
    env.ok("soamsession", &["submit", "--session", &sess, "--count", "2"]);
    // maxStoredSessions: the second fits, the third does not.
    let sess2 = format!("a:{}", env.ok("soamsession", &["create", "--app", "a"]).trim());
    let e = env.fails_with(6, "soamsession", &["create", "--app", "a"]);
    assert!(e.contains("maxStoredSessions limit (2)"), "{e}");
    // maxStoredTasks counts the tasks of open sessions: the first one's 5 stop counting
    // when it is closed.
    let e = env.fails_with(6, "soamsession", &["submit", "--session", &sess2, "--count", "1"]);
    assert!(e.contains("maxStoredTasks limit (5; 5 held)"), "{e}");
    env.ok("soamsession", &["close", &sess]);
    env.ok("soamsession", &["submit", "--session", &sess2, "--count", "5"]);
    // A bad config is refused at start with its file and line.
    std::fs::write(env.path("soamd.yaml"), "slots: 2\nslotz: 3\n").unwrap();
    let o = env.cmd("soamd").env("SOAM_HOME", env.home.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("soamd.yaml:2") && err.contains("slotz"), "{err}");
    // A bad value: the profiles' form, with the key's range, and the agent not started.
    for (yaml, said) in [
        (
            "slots: 2\nlogKeep: 101\n",
            "soamd.yaml:2: logKeep: '101' is not valid (valid: 0 to 100)",
        ),
        ("slots: many\n", "soamd.yaml:1: slots: 'many' is not valid (valid: 1 to 100000)"),
        ("shared: yes\n", "soamd.yaml:1: shared: 'yes' is not valid (valid: true | false)"),
        (
            "maxConnections: 0\n",
            "soamd.yaml:1: maxConnections: '0' is not valid (valid: 1 or more)",
        ),
        (
            "workerPort: 70000\n",
            "soamd.yaml:1: workerPort: '70000' is not valid (valid: 0 to 65535)",
        ),
        (
            "maxRecordBytes: 1\nmaxStoreBytes: 1\n",
            "soamd.yaml:2: maxStoreBytes: the old name of maxRecordBytes, which is given too (valid: only maxRecordBytes)",
        ),
    ] {
        std::fs::write(env.path("soamd.yaml"), yaml).unwrap();
        let o = env.cmd("soamd").env("SOAM_HOME", env.home.path()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{yaml}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.trim().ends_with(said), "{yaml}: {err}");
    }
}

#[test]
fn max_record_bytes_refuses_clearly_and_keeps_what_was_accepted() {
    let mut env = Env::empty();
    std::fs::write(env.path("soamd.yaml"), "maxRecordBytes: 3000000\n").unwrap();
    env.start_agent();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Rec\n    recoverable: true\n    onClientDisconnect: continue\n"),
    );
    let id = env.ok("soamsession", &["create", "--app", "a", "--type", "Rec"]).trim().to_string();
    let sess = format!("a:{id}");
    env.ok("soamcontrol", &["session", "suspend", &sess]);
    // Five 1 MB tasks go in two messages (4 + 1); the whole is over the limit, so none
    // of it is accepted, though the last message alone would fit.
    let mb = env.path("mb.txt");
    std::fs::write(&mb, format!("{}\n", "y".repeat(1_000_000)).repeat(5)).unwrap();
    let e = env.fails_with(
        6,
        "soamsession",
        &["submit", "--session", &sess, "--input-file", mb.to_str().unwrap(), "--detach"],
    );
    assert!(e.contains("maxRecordBytes limit (3000000 bytes)"), "{e}");
    assert_eq!(env.json("soamview", &["task", &sess]).as_array().unwrap().len(), 0);
    // 100 KiB tasks until the store is full.
    let big = "x".repeat(100 * 1024);
    let f = env.path("big.txt");
    std::fs::write(&f, format!("{big}\n").repeat(5)).unwrap();
    let mut accepted = 0;
    let err = loop {
        let o = env.run(
            "soamsession",
            &["submit", "--session", &sess, "--input-file", f.to_str().unwrap(), "--detach"],
        );
        if !o.status.success() {
            break String::from_utf8_lossy(&o.stderr).trim().to_string();
        }
        accepted += 5;
        assert!(accepted < 1000, "the limit never applied");
    };
    assert!(err.contains("maxRecordBytes limit (3000000 bytes)"), "{err}");
    assert!(accepted > 0);
    // Nothing accepted is lost, and the store stays usable.
    let tasks = env.json("soamview", &["task", &sess]);
    assert_eq!(tasks.as_array().unwrap().len(), accepted);
    env.stop_agent(libc::SIGKILL);
    // What the store holds stays under the limit (its own count of its records).
    let (store, _) = soam_store::Store::open(&env.path("data/soam.redb"), 1 << 20).unwrap();
    let held = store.stored_bytes();
    drop(store);
    assert!(held <= 3_000_000 && held > (accepted * 100 * 1024) as u64, "{held}");
    // The key's first name still works, read as maxRecordBytes, and the log says so.
    std::fs::write(env.path("soamd.yaml"), "slots: 2\nmaxStoreBytes: 3000000\n").unwrap();
    env.start_agent();
    assert_eq!(env.session("a", id.parse().unwrap()).unwrap()["pending"], accepted as u64);
    let err = env.fails_with(
        6,
        "soamsession",
        &["submit", "--session", &sess, "--input-file", f.to_str().unwrap(), "--detach"],
    );
    assert!(err.contains("maxRecordBytes limit (3000000 bytes)"), "{err}");
    let log = env.ok("soamcontrol", &["agent", "log"]);
    assert!(
        log.contains("soamd.yaml:2: maxStoreBytes is the old name of maxRecordBytes, read as it"),
        "{log}"
    );
    env.ok("soamsession", &["abort", &sess]);
    env.ok("soamview", &["history", "a"]);
}

/// A task row missing from the store (the file is outside our control) comes back
/// canceled in its place; the tasks around it keep their ids and states.
#[test]
fn a_task_lost_from_the_store_comes_back_canceled_in_its_place() {
    let mut env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Rec\n    recoverable: true\n    onClientDisconnect: continue\n"),
    );
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Rec"])
        .trim()
        .parse()
        .unwrap();
    let sess = format!("a:{id}");
    env.ok("soamcontrol", &["session", "suspend", &sess]);
    for t in ["one", "two", "three", "four"] {
        env.ok("soamsession", &["submit", "--session", &sess, "--task", t, "--detach"]);
    }
    env.stop_agent(libc::SIGTERM);
    // Rewrite the session's task rows without tasks 2 and 4.
    let (store, loaded) = soam_store::Store::open(&env.path("data/soam.redb"), 1 << 20).unwrap();
    let (_, rows) = loaded.tasks.into_iter().find(|(k, _)| k == &("a".to_string(), id)).unwrap();
    assert_eq!(rows.len(), 4);
    let kept: Vec<_> = rows.into_iter().filter(|(tid, _)| tid % 2 == 1).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    store.submit(
        vec![
            soam_store::Write::DeleteTasks {
                app: "a".into(),
                session: id,
            },
            soam_store::Write::PutTasks {
                app: "a".into(),
                session: id,
                tasks: kept,
            },
        ],
        Some(Box::new(move |r| tx.send(r).unwrap())),
    );
    rx.recv().unwrap().unwrap();
    store.close();
    env.start_agent();
    let tasks = env.json("soamview", &["task", &sess]);
    let states: Vec<&str> = tasks.as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending", "canceled", "pending", "canceled"]);
    let s = env.session("a", id).unwrap();
    assert_eq!((s["pending"].as_u64(), s["canceled"].as_u64()), (Some(2), Some(2)), "{s}");
    env.ok("soamcontrol", &["session", "resume", &sess]);
    let out = env.ok("soamsession", &["reopen", &sess]);
    assert!(out.contains("one") && out.contains("three") && !out.contains("two"), "{out}");
}

#[test]
fn looking_at_the_agent_or_stopping_it_never_starts_one() {
    let env = Env::empty();
    for args in [&["agent", "status"][..], &["agent", "status", "--json"], &["agent", "shutdown"]] {
        let o = env.cmd("soamcontrol").env_remove("SOAM_NO_AUTOSTART").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("no agent answers"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // The log is read from the data folder: no agent needed, none started.
    let o = env
        .cmd("soamcontrol")
        .env_remove("SOAM_NO_AUTOSTART")
        .args(["agent", "log"])
        .output()
        .unwrap();
    assert!(o.status.code().is_some());
    assert!(!env.socket().exists(), "an agent was started");
}

#[test]
fn a_json_that_cannot_be_honoured_is_refused() {
    let env = Env::empty();
    let err = env.fails_with(2, "soamcontrol", &["agent", "log", "--json"]);
    assert!(err.contains("agent log has no --json form"), "{err}");
}

/// The agent's child processes: its service instances.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let text = std::fs::read_to_string(t.unwrap().path().join("children")).unwrap_or_default();
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out.sort_unstable();
    out
}

/// `preStartApplication` with `numOfSlotsForPreloadedServices`: instances are started
/// when the application is registered, before any session, the first task is served
/// by one of them, and the idle reaper leaves them.
#[test]
fn pre_started_services_are_ready_before_the_first_session_and_kept() {
    let mut env = Env::empty();
    std::fs::write(env.path("soamd.yaml"), "slots: 4\ninstanceIdleTimeout: 1\n").unwrap();
    env.start_agent();
    let p = env.path("pre.xml");
    std::fs::write(
        &p,
        format!(
            "<Profile>\n  <Consumer applicationName=\"pre\" preStartApplication=\"true\" numOfSlotsForPreloadedServices=\"2\"/>\n  <Service name=\"s\">\n    <osTypes><osType name=\"all\" startCmd=\"python3 {}\"><env name=\"BEHAVE_CREATE_SLEEP\">0.5</env></osType></osTypes>\n  </Service>\n</Profile>\n",
            behave_py()
        ),
    )
    .unwrap();
    let o = env.run("soamreg", &[p.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("preStartApplication"),
        "read, not warned of: {o:?}"
    );
    let agent = env.agent_pid();
    let before = wait_for(15, "two pre-started instances", || {
        let c = children(agent);
        (c.len() == 2).then_some(c)
    });
    assert_eq!(env.json("soamview", &["session"]), serde_json::json!([]));
    let pid: u32 = env
        .ok("soamsession", &["submit", "--app", "pre", "--task", "pid"])
        .trim()
        .parse()
        .unwrap();
    assert!(before.contains(&pid), "{pid} not one of {before:?}");
    // Past the idle timeout (1 s) the same two are there: kept, not reaped and restarted.
    let t0 = env.json("soamcontrol", &["agent", "status"])["uptime_s"].as_u64().unwrap();
    wait_for(15, "three seconds of the agent's clock", || {
        (env.json("soamcontrol", &["agent", "status"])["uptime_s"].as_u64().unwrap() >= t0 + 3).then_some(())
    });
    assert_eq!(children(agent), before);
    // A profile without it pre-starts nothing.
    env.register("q.yaml", &Env::behave_profile("q", "", ""));
    assert_eq!(children(agent), before);
}
