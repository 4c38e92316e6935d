//! Running under systemd: socket activation as systemd does it (a listening socket on
//! fd 3, LISTEN_FDS and LISTEN_PID naming the agent's own pid), and the unit files in
//! contrib/ checked by systemd's own verifier where it is installed.

mod common;
use common::*;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Starts soamd the way systemd's socket activation does: `listener` as fd 3, and
/// LISTEN_PID set to the agent's own pid (the shell execs it, keeping its pid).
fn activate(env: &Env, listener: &UnixListener, log: &str) -> Agent {
    let fd = listener.as_raw_fd();
    let log = std::fs::File::create(env.path(log)).unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --slots 2"])
        .arg(bin("soamd"))
        .env("SOAM_HOME", env.path(""))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: dup2 and fcntl are async-signal-safe. A copy made by dup2 is not
    // close-on-exec; if the listener is fd 3 already, its flag is cleared instead.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Agent(cmd.spawn().unwrap())
}

/// The agent's process, killed (by pid) if the test ends before it did.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn socket_activation_serves_on_the_passed_socket_and_leaves_it_for_the_next_start() {
    let env = Env::empty();
    std::fs::create_dir_all(env.socket().parent().unwrap()).unwrap();
    // What systemd holds: bound before any agent runs, and kept across agents.
    let listener = UnixListener::bind(env.socket()).unwrap();
    let agent = activate(&env, &listener, "agent-1.log");
    let pid = agent.0.id();
    // The agent answers on the socket it was passed (commands never autostart here).
    let status = wait_for(15, "the activated agent to answer", || {
        let o = env.run("soamcontrol", &["agent", "status", "--json"]);
        o.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap())
    });
    assert_eq!(status["pid"], pid, "the agent systemd started serves");
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let out = env.ok(
        "soamsession",
        &[
            "submit",
            "--app",
            "a",
            "--ordered",
            "--task",
            "env:LISTEN_FDS",
            "--task",
            "env:LISTEN_PID",
            "--task",
            "sockets",
        ],
    );
    // Services see neither the activation variables nor the listening socket.
    assert_eq!(out, "unset\nunset\n0\n");
    let log = std::fs::read_to_string(env.path("agent-1.log")).unwrap();
    assert!(log.contains("serving on the socket systemd passed"), "{log}");

    let o = env.run("soamcontrol", &["agent", "shutdown"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut agent = agent;
    let code = wait_for(15, "the agent to exit", || agent.0.try_wait().unwrap());
    assert_eq!(code.code(), Some(0));
    // systemd's socket stays, and still takes connections for the next agent.
    assert!(env.socket().exists(), "the agent removed the socket systemd owns");
    UnixStream::connect(env.socket()).expect("the socket still listens");

    // Activated again on the same socket: the registered application is still there.
    let again = activate(&env, &listener, "agent-2.log");
    let apps = wait_for(15, "the second agent to answer", || {
        let o = env.run("soamview", &["app", "--json"]);
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).to_string())
    });
    assert!(apps.contains("\"a\""), "{apps}");
    assert_eq!(env.ok("soamsession", &["submit", "--app", "a", "--task", "hi"]), "hi\n");
    drop(again);
}

#[test]
fn a_socket_passed_at_another_path_is_refused_naming_both() {
    let env = Env::empty();
    let elsewhere = env.path("elsewhere.sock");
    let listener = UnixListener::bind(&elsewhere).unwrap();
    let mut agent = activate(&env, &listener, "agent.log");
    let code = wait_for(15, "the agent to refuse", || agent.0.try_wait().unwrap());
    assert_eq!(code.code(), Some(1));
    let log = std::fs::read_to_string(env.path("agent.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("systemd passed a socket at"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(elsewhere.to_str().unwrap()) && line.contains(env.socket().to_str().unwrap()),
        "{line}"
    );
    assert!(!env.socket().exists(), "no socket of its own either");
}

#[test]
fn a_socket_that_takes_connections_but_no_agent_answers_is_an_error_not_a_hang() {
    let env = Env::empty();
    std::fs::create_dir_all(env.socket().parent().unwrap()).unwrap();
    // What systemd holds while its agent fails to start: connections wait in the backlog.
    let _listener = UnixListener::bind(env.socket()).unwrap();
    let o = env
        .cmd("soamview")
        .args(["app"])
        .env("SOAM_CONNECT_TIMEOUT", "0.5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no agent answered within 0.5 s") && err.contains("SOAM_CONNECT_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn the_contrib_units_pass_systemd_analyze_verify() {
    let Ok(tool) = which("systemd-analyze") else {
        println!("skipped: systemd-analyze is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    for name in ["soamd.service", "soamd.socket"] {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        // The unit names ~/.cargo/bin/soamd; the one built here stands in for it.
        let text = text.replace("%h/.cargo/bin/soamd", bin("soamd").to_str().unwrap());
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let o = Command::new(tool)
        .args(["verify", "--man=no", "--user"])
        .arg(dir.path().join("soamd.socket"))
        .arg(dir.path().join("soamd.service"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // It exits 0 on unknown keys too, warning about them: any word on our units fails.
    let about_ours: Vec<&str> = err.lines().filter(|l| l.contains("soamd.")).collect();
    assert!(o.status.success() && about_ours.is_empty(), "{err}");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
