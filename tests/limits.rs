//! What one client can make the agent hold is bounded: replies it does not read,
//! maximal frames, connections, silent peers, and the agent out of descriptors.
//! Memory bounds are checked on the agent's peak RSS (`VmHWM`), which says what
//! happened, not how fast.

mod common;
use common::*;
use soam_lab::attack;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const MIB: u64 = 1024;

/// A profile of about 1 MiB (comments), so every ListApps reply is that large.
fn big_profile() -> String {
    let mut p = Env::behave_profile("a", "", "");
    let line = format!("# {}\n", "x".repeat(1000));
    for _ in 0..1000 {
        p.push_str(&line);
    }
    p
}

#[test]
fn unread_replies_and_maximal_frames_keep_the_agent_small() {
    let env = Env::new();
    env.register("big.yaml", &big_profile());
    let pid = env.agent_pid();
    let socket = env.socket();
    // Warm up what a normal client uses, then take the baseline.
    let o = env.run_stdin("soamsession", &["submit", "--app", "a"], "warm\n");
    assert!(o.status.success());
    env.ok("soamview", &["app"]);
    let can_reset = attack::reset_peak(pid);
    let base = attack::mem_kib(pid, "VmRSS").unwrap();

    // 300 ListApps of 1 MiB each, pipelined, nobody reading: 300 MiB if unbounded.
    let s = attack::connect(&socket).unwrap();
    let w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || attack::pipeline_list_apps(w, 300));
    // Everyone else is served meanwhile.
    let o = env.run_stdin("soamsession", &["submit", "--app", "a"], "1\n2\n3\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        3,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Then the attacker reads: every reply arrives, none was dropped.
    let mut r = s;
    assert_eq!(attack::read_replies(&mut r, 300).unwrap(), 300);
    writer.join().unwrap().unwrap();
    let peak = attack::mem_kib(pid, "VmHWM").unwrap();
    eprintln!("pipelining: baseline {base} KiB, peak {peak} KiB");
    if can_reset {
        assert!(peak < base + 64 * MIB, "pipelining: peak {peak} KiB, baseline {base} KiB");
    }

    // Eight maximal frames of empty tasks at once: each refused from its count, each
    // connection kept.
    let can_reset = attack::reset_peak(pid);
    let base = attack::mem_kib(pid, "VmRSS").unwrap();
    let frame = std::sync::Arc::new(attack::maximal_empty_submit(1));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (socket, frame) = (socket.clone(), frame.clone());
            std::thread::spawn(move || attack::send_maximal_frame(&socket, &frame))
        })
        .collect();
    for t in threads {
        let answer = t.join().unwrap().unwrap();
        assert!(answer.contains("tasks in one message; the limit is 65536"), "{answer}");
    }
    let peak = attack::mem_kib(pid, "VmHWM").unwrap();
    eprintln!("maximal frames: baseline {base} KiB, peak {peak} KiB");
    if can_reset {
        assert!(peak < base + 64 * MIB, "maximal frames: peak {peak} KiB, baseline {base} KiB");
    } else {
        eprintln!("peak RSS not checked: /proc/PID/clear_refs is not writable here");
    }
    // Nothing was accepted from them.
    assert!(env.json("soamview", &["session", "a"]).as_array().unwrap().is_empty());
}

#[test]
fn connections_are_capped_and_a_silent_peer_is_closed() {
    let mut env = Env::empty();
    std::fs::write(env.path("soamd.yaml"), "maxConnections: 3\nhandshakeTimeoutMs: 300\n").unwrap();
    env.start_agent();
    // The start-up check's connection may still be counted for a moment.
    let held: Vec<_> = (0..3)
        .map(|_| wait_for(10, "a connection", || attack::connect(&env.socket()).ok()))
        .collect();
    let err = env.fails("soamview", &["app"]);
    assert!(err.contains("maxConnections limit"), "{err}");
    drop(held);
    wait_for(10, "a free connection", || {
        env.run("soamview", &["app"]).status.success().then_some(())
    });

    // A peer that never says hello is closed (EOF, not a timeout on our side).
    let mut s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(8))).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(s.read(&mut b).unwrap(), 0, "closed by the agent");
}

#[test]
fn connections_per_user_are_capped_in_a_shared_agent() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = Env::empty();
    std::fs::set_permissions(env.home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(env.path("soamd.yaml"), "shared: true\nmaxConnectionsPerUser: 2\n").unwrap();
    env.start_agent();
    // Another user holds two connections (a helper that waits on its stdin).
    let script = "import socket,sys\nss=[socket.socket(socket.AF_UNIX) for _ in range(2)]\n[s.connect(sys.argv[1]) for s in ss]\nprint('held', flush=True)\nsys.stdin.read()\n";
    let mut holder = Command::new("python3")
        .args(["-c", script, env.socket().to_str().unwrap()])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 5];
    holder.stdout.take().unwrap().read_exact(&mut line).unwrap();
    assert_eq!(&line, b"held\n");
    // The agent counts a connection once it has accepted it, a moment after the
    // helper's connect returned: wait for the refusal rather than race it.
    // The last answer goes into a timeout's message (it timed out once under a full
    // test run, cause not known yet).
    let err = wait_for_or(30, "the per-user cap to refuse", || {
        let o = env.cmd("soamview").args(["app"]).uid(65534).gid(65534).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        match o.status.code() {
            Some(1) => Ok(stderr),
            code => Err(format!("exit {code:?}: {stderr}")),
        }
    });
    assert!(err.contains("uid 65534 already has 2 connections open"), "{err}");
    // Root (an admin) is not capped by that user's use.
    env.ok("soamview", &["app"]);
    drop(holder.stdin.take());
    holder.wait().unwrap();
    wait_for(10, "the user's connections to be released", || {
        let o = env.cmd("soamview").args(["app"]).uid(65534).gid(65534).output().unwrap();
        o.status.success().then_some(())
    });
}

#[test]
fn out_of_descriptors_the_agent_backs_off_and_then_serves_again() {
    let mut env = Env::empty();
    let log = env.path("agent.log");
    let child = unsafe {
        Command::new(bin("soamd"))
            .args(["--slots", "1"])
            .env("SOAM_HOME", env.home.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 40,
                    rlim_max: 40,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
            .spawn()
            .unwrap()
    };
    env.agent = Some(child);
    env.wait_serving();
    // Connections that say nothing use up the agent's descriptors (the kernel queues
    // those it cannot accept).
    let held: Vec<_> = (0..60)
        .map(|_| std::os::unix::net::UnixStream::connect(env.socket()).unwrap())
        .collect();
    // The retries slow down to one a second instead of spinning.
    wait_for(20, "the accept back-off to reach its ceiling", || {
        std::fs::read_to_string(&log).unwrap().contains("retrying in 1000 ms").then_some(())
    });
    let failures = std::fs::read_to_string(&log).unwrap().matches("accept failed").count();
    assert!(failures < 30, "{failures} accept failures logged before the back-off ceiling");
    drop(held);
    wait_for(20, "the agent to serve again", || {
        env.run("soamcontrol", &["agent", "status"]).status.success().then_some(())
    });
}

#[test]
fn listings_larger_than_a_message_arrive_in_pages() {
    let env = Env::new();
    // 20 profiles of about 1 MB: 20 MB of profile text, more than one 16 MiB message.
    let line = format!("# {}\n", "x".repeat(1000));
    for i in 0..20 {
        let mut p = Env::behave_profile(&format!("app{i:02}"), "", "");
        p.push_str(&line.repeat(1000));
        env.register(&format!("app{i:02}.yaml"), &p);
    }
    let o = env.run("soamview", &["app", "-p"]);
    assert!(o.status.success());
    let (text, said) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(text.len() > 20_000_000, "{} bytes", text.len());
    for i in 0..20 {
        assert!(text.contains(&format!("application: app{i:02}\n")), "app{i:02} missing");
        assert!(said.contains(&format!("# app{i:02} (")), "app{i:02}'s header missing");
    }
    let apps = env.json("soamview", &["app"]);
    assert_eq!(apps.as_array().unwrap().len(), 20);
    // The one-reply listing older clients ask for cannot fit: it is answered with an
    // error naming the limit, not dropped, and the connection goes on.
    let mut s = attack::connect(&env.socket()).unwrap();
    use std::io::Write;
    s.write_all(&attack::request(7, soam_proto::msg::Request::ListApps { app: None }))
        .unwrap();
    s.write_all(&attack::request(8, soam_proto::msg::Request::Ping)).unwrap();
    let reply = |s: &mut std::os::unix::net::UnixStream| match attack::read_msg::<soam_proto::msg::AgentFrame>(s).unwrap() {
        soam_proto::msg::AgentFrame::Reply { id, result } => (id, result),
        other => panic!("unexpected {other:?}"),
    };
    let (id, result) = reply(&mut s);
    let err = result.unwrap_err();
    assert_eq!(id, 7);
    assert!(err.contains("the reply could not be sent") && err.contains("exceeds"), "{err}");
    assert!(matches!(reply(&mut s), (8, Ok(_))));
    // A profile over the limit is refused before it is sent, with the limit named.
    let mut p = Env::behave_profile("huge", "", "");
    p.push_str(&line.repeat(1100));
    let path = env.path("huge.yaml");
    std::fs::write(&path, p).unwrap();
    let e = env.fails("soamreg", &[path.to_str().unwrap()]);
    assert!(e.contains("the limit is 1048576 bytes"), "{e}");
}

/// Requests over the message size limit are refused at the client with the limit named,
/// at once (they used to be dropped by the writer, and the command waited forever).
#[test]
fn requests_over_the_message_limit_are_refused_at_the_client() {
    let env = Env::new();
    let big = env.path("big.yaml");
    let mut text = String::from("application: big\nservices:\n  - name: s\n    command: [\"true\"]\n");
    text.push_str(&format!("# {}\n", "x".repeat(17 << 20)));
    std::fs::write(&big, text).unwrap();
    let e = env.fails("soamreg", &[big.to_str().unwrap()]);
    assert!(e.contains("the limit is 1048576 bytes"), "{e}");
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let data = env.path("common.bin");
    std::fs::write(&data, vec![7u8; 20_000_000]).unwrap();
    let e = env.fails_with(6, "soamsession", &["create", "--app", "a", "--common-data", data.to_str().unwrap()]);
    assert!(e.contains("over the 16 MiB message limit"), "{e}");
    // Nothing was created, and the connection's agent is fine.
    assert_eq!(env.json("soamview", &["session", "a"]).as_array().unwrap().len(), 0);
}
