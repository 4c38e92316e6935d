//! Who may talk to the agent: a one-user agent refuses other uids (SO_PEERCRED); a
//! `--shared` agent serves everyone, but a session belongs to the uid that created it.
//! Needs root to run commands as another user; elsewhere it says so and passes.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const NOBODY: u32 = 65534;

fn as_nobody(env: &Env, name: &str, args: &[&str]) -> std::process::Output {
    let mut c: Command = env.cmd(name);
    c.args(args).uid(NOBODY).gid(NOBODY).stdin(Stdio::null());
    c.output().unwrap()
}

fn start(env: &mut Env, shared: bool) {
    let mut c = Command::new(bin("soamd"));
    c.args(["--slots", "2"])
        .env("SOAM_HOME", env.home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if shared {
        c.arg("--shared");
    }
    env.agent = Some(c.spawn().unwrap());
    env.wait_serving();
}

#[test]
fn other_users_are_refused_or_kept_apart() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run commands as another user");
        return;
    }
    let mut env = Env::empty();
    // Let the other user reach the socket folder at all.
    std::fs::set_permissions(env.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    start(&mut env, false);
    let o = as_nobody(&env, "soamview", &["app"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("serves uid 0 only") || err.contains("ermission denied"), "{err}");
    env.stop_agent(libc::SIGTERM);

    start(&mut env, true);
    let mode = std::fs::metadata(env.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Keep\n    onClientDisconnect: continue\n"),
    );
    let mine = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep"])
        .trim()
        .to_string();
    // Another user sees the application but not root's session, and cannot act on it.
    let o = as_nobody(&env, "soamview", &["session", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    for args in [vec!["reopen", "--no-wait"], vec!["abort"], vec!["close"]] {
        let mut a: Vec<&str> = args.clone();
        let addr = format!("a:{mine}");
        a.insert(1, &addr);
        let o = as_nobody(&env, "soamsession", &a);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("belongs to another user"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = as_nobody(&env, "soamcontrol", &["session", "kill", &format!("a:{mine}")]);
    assert_eq!(o.status.code(), Some(1));
    // It can run its own session; root sees both.
    let o = as_nobody(
        &env,
        "soamsession",
        &["submit", "--app", "a", "--type", "Keep", "--task", "hi", "--detach"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let all = env.json("soamview", &["session", "a"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let o = as_nobody(&env, "soamview", &["session", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"].to_string(), theirs);
    // Root may act on anyone's session.
    env.ok("soamsession", &["abort", &format!("a:{theirs}")]);
}
