//! Who may talk to the agent and what runs as whom: a one-user agent refuses other uids
//! (SO_PEERCRED); a `--shared` agent serves everyone, keeps sessions apart, reserves
//! admin acts for admins, shows `env` values to admins only and runs every process as
//! its session's owner. Needs root, and other uids able to run the test binaries
//! (`common::other_uids_can_run`); elsewhere each test says it skipped.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A uid with no entry in the user database: the agent must still run it as itself.
const GHOST: u32 = 4242;
/// A gid set as `adminGroup`, and a uid whose connections carry it.
const ADMIN_GID: u32 = 4300;
const ADMIN_UID: u32 = 4301;

fn as_user(env: &Env, uid: u32, gid: u32, name: &str, args: &[&str]) -> std::process::Output {
    let mut c: Command = env.cmd(name);
    c.args(args).uid(uid).gid(gid).stdin(Stdio::null());
    c.output().unwrap()
}

fn as_nobody(env: &Env, name: &str, args: &[&str]) -> std::process::Output {
    as_user(env, NOBODY, NOBODY, name, args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim_end().to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// A home other users can reach (the socket's folder is the agent's to open up).
fn open_home() -> Env {
    let env = Env::empty();
    std::fs::set_permissions(env.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env
}

fn start(env: &mut Env, shared: bool) {
    let log = std::fs::File::create(env.path("agent.log")).unwrap();
    let mut c = Command::new(bin("soamd"));
    c.args(["--slots", "2"])
        .env("SOAM_HOME", env.home.path())
        // Something of root's that no user's instance may read through a profile.
        .env("SOAM_TEST_AGENT_SECRET", "root-only")
        .stdout(Stdio::null())
        .stderr(log);
    if shared {
        c.arg("--shared");
    }
    env.agent = Some(c.spawn().unwrap());
    env.wait_serving();
}

#[test]
fn other_users_are_refused_or_kept_apart() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();

    start(&mut env, false);
    let o = as_nobody(&env, "soamview", &["app"]);
    let err = stderr(&o);
    // Refused by the agent, or by the socket's permissions before it.
    match o.status.code() {
        Some(1) => assert!(err.contains("serves uid 0 only"), "{err}"),
        Some(5) => assert!(err.contains("ermission denied"), "{err}"),
        other => panic!("{other:?}: {err}"),
    }
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
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "[]");
    for args in [vec!["reopen", "--no-wait"], vec!["abort"], vec!["close"]] {
        let mut a: Vec<&str> = args.clone();
        let addr = format!("a:{mine}");
        a.insert(1, &addr);
        let o = as_nobody(&env, "soamsession", &a);
        assert_eq!(o.status.code(), Some(5), "{args:?}");
        assert!(stderr(&o).contains("belongs to another user"), "{}", stderr(&o));
    }
    let o = as_nobody(&env, "soamcontrol", &["session", "kill", &format!("a:{mine}")]);
    assert_eq!(o.status.code(), Some(5));
    // It can run its own session; root sees both.
    let o = as_nobody(
        &env,
        "soamsession",
        &["submit", "--app", "a", "--type", "Keep", "--task", "hi", "--detach"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let theirs = stdout(&o);
    let all = env.json("soamview", &["session", "a"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let o = as_nobody(&env, "soamview", &["session", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"].to_string(), theirs);
    // Root may act on anyone's session.
    env.ok("soamsession", &["abort", &format!("a:{theirs}")]);
}

#[test]
fn admin_acts_are_for_admins_and_env_values_for_their_eyes() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();
    std::fs::write(env.path("soamd.yaml"), format!("adminGroup: {ADMIN_GID}\n")).unwrap();
    start(&mut env, true);
    let profile = "application: a\nservices:\n  - name: s\n    command: [\"true\"]\n    env: {TOKEN: s3cr3t-value}\n";
    let path = env.register("p.yaml", profile);
    let path = path.to_str().unwrap();
    std::fs::write(env.path("q.yaml"), Env::behave_profile("mine", "", "")).unwrap();
    let other = env.path("q.yaml");
    let other = other.to_str().unwrap();

    // A plain user: each admin act refused in one line naming the act and why.
    for (cmd, args, act) in [
        ("soamreg", vec![other], "registering an application refused"),
        ("soamreg", vec![path, "-f"], "registering an application refused"),
        ("soamunreg", vec!["a", "-f"], "unregistering an application refused"),
        ("soamcontrol", vec!["app", "disable", "a"], "disabling an application refused"),
        ("soamcontrol", vec!["app", "enable", "a"], "enabling an application refused"),
        ("soamcontrol", vec!["agent", "shutdown"], "shutting the agent down refused"),
        ("soamcontrol", vec!["cluster", "release", "1"], "releasing an allocation refused"),
    ] {
        let o = as_nobody(&env, cmd, &args);
        assert_eq!(o.status.code(), Some(5), "{cmd} {args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(act) && err.contains("uid 65534 is not one"), "{err}");
    }
    // Nothing changed: the application is there, enabled, and the agent serves.
    let apps = env.json("soamview", &["app"]);
    assert_eq!(apps.as_array().unwrap().len(), 1);
    assert_eq!(apps[0]["state"], "enabled");
    // The plain user sees the profile, never the env value.
    let o = as_nobody(&env, "soamview", &["app", "a", "-p"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("s3cr3t") && out.contains("TOKEN: <hidden>"), "{out}");
    assert!(env.ok("soamview", &["app", "a", "-p"]).contains("s3cr3t-value"));

    // A member of adminGroup (by the group its connection carries) is an admin.
    let o = as_user(&env, ADMIN_UID, ADMIN_GID, "soamcontrol", &["app", "disable", "a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(env.json("soamview", &["app"])[0]["state"], "disabled");
    let o = as_user(&env, ADMIN_UID, ADMIN_GID, "soamview", &["app", "a", "-p"]);
    assert!(stdout(&o).contains("s3cr3t-value"), "{}", stdout(&o));
    let o = as_user(&env, ADMIN_UID, ADMIN_GID, "soamcontrol", &["app", "enable", "a"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `uid gid groups home pid` as the test service reports it, for a session of `uid`.
fn whoami(env: &Env, uid: u32, gid: u32, ty: &str) -> Vec<String> {
    let o = as_user(
        env,
        uid,
        gid,
        "soamsession",
        &["submit", "--app", "w", "--type", ty, "--task", "whoami"],
    );
    assert!(o.status.success(), "uid {uid}: {}", stderr(&o));
    stdout(&o).split(' ').map(String::from).collect()
}

#[test]
fn every_process_runs_as_its_session_owner() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();
    start(&mut env, true);
    let exec = "  - name: ex\n    mode: exec\n    command: [\"sh\", \"-c\", \"echo $(id -u) $(id -g) $(id -G | tr ' ' ',') $HOME\"]\n";
    let profile = Env::behave_profile("w", "", "  - name: Exec\n    serviceName: ex\n")
        .replace("services:\n  - name: behave\n", "services:\n  - name: behave\n    default: true\n");
    let profile = profile.replace("sessionTypes:", &format!("{exec}sessionTypes:"));
    env.register("w.yaml", &profile);

    // A user in the user database: its uid, primary group, groups and home.
    let n = whoami(&env, NOBODY, NOBODY, "");
    assert_eq!(&n[..4], ["65534", "65534", "65534", "/nonexistent"], "{n:?}");
    // A uid the database does not know: itself, the nobody group only, home /.
    let g = whoami(&env, GHOST, GHOST, "");
    assert_eq!(&g[..4], ["4242", "65534", "65534", "/"], "{g:?}");
    assert_ne!(n[4], g[4], "an instance serves one owner only");
    // Instances are still reused across sessions of the same owner.
    let n2 = whoami(&env, NOBODY, NOBODY, "");
    assert_eq!(n2[4], n[4], "nobody's idle instance is reused");
    // Root's own sessions run as root.
    let r = whoami(&env, 0, 0, "");
    assert_eq!(&r[..2], ["0", "0"], "{r:?}");
    // Exec tasks too.
    assert_eq!(
        &whoami(&env, NOBODY, NOBODY, "Exec")[..4],
        ["65534", "65534", "65534", "/nonexistent"]
    );
    assert_eq!(&whoami(&env, GHOST, GHOST, "Exec")[..4], ["4242", "65534", "65534", "/"]);
}

#[test]
fn a_shared_agent_that_is_not_root_runs_nobody_else_s_work() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();
    // The agent runs as uid 4500 in a home that user owns.
    let home = env.path("h");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(4500), Some(4500)).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = std::fs::File::create(env.path("agent.log")).unwrap();
    let agent = Command::new(bin("soamd"))
        .args(["--slots", "1", "--shared"])
        .env("SOAM_HOME", &home)
        .uid(4500)
        .gid(4500)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    env.agent = Some(agent);
    let cmd = |uid: u32, name: &str, args: &[&str]| {
        let mut c = env.cmd(name);
        c.env("SOAM_HOME", &home)
            .env("SOAM_AGENT_UID", "4500")
            .args(args)
            .uid(uid)
            .gid(uid)
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    wait_for(15, "the agent to serve", || {
        cmd(4500, "soamcontrol", &["agent", "status"]).status.success().then_some(())
    });
    let p = home.join("p.yaml");
    std::fs::write(&p, Env::behave_profile("a", "", "")).unwrap();
    let o = cmd(4500, "soamreg", &[p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cmd(4501, "soamsession", &["create", "--app", "a"]);
    assert_eq!(o.status.code(), Some(5), "permission denied");
    assert!(stderr(&o).contains("cannot run tasks as uid 4501"), "{}", stderr(&o));
    // Its own user is served as usual.
    let o = cmd(4500, "soamsession", &["submit", "--app", "a", "--task", "x"]);
    assert_eq!(stdout(&o), "x", "{}", stderr(&o));
    // And a client that was not told to trust uid 4500 will not talk to it.
    let mut c = env.cmd("soamview");
    c.env("SOAM_HOME", &home).args(["app"]).uid(4501).gid(4501);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("served by uid 4500"), "{}", stderr(&o));
}

#[test]
fn folders_are_private_and_a_planted_one_is_refused() {
    if !other_uids_can_run() {
        return;
    }
    let env = Env::empty();
    let t = env.home.path();
    let xdg = |c: &mut Command| {
        c.env_remove("SOAM_HOME")
            .env_remove("SOAM_SOCKET")
            .env("XDG_RUNTIME_DIR", t.join("rt"))
            .env("XDG_DATA_HOME", t.join("data"))
            .env("XDG_CONFIG_HOME", t.join("cfg"))
            .env("HOME", t);
    };
    // Autostarted with the XDG defaults: everything private.
    std::fs::create_dir(t.join("rt")).unwrap();
    let mut c = Command::new(bin("soamview"));
    xdg(&mut c);
    let o = c.args(["app"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = |p: &str| std::fs::metadata(t.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("data/soam"), 0o700);
    assert_eq!(mode("data/soam/soam.redb"), 0o600);
    assert_eq!(mode("data/soam/soamd.log"), 0o600);
    assert_eq!(mode("data/soam/soamd.lock"), 0o600);
    assert_eq!(mode("rt/soam"), 0o700);
    assert_eq!(mode("rt/soam/soamd.sock"), 0o600);
    let mut c = Command::new(bin("soamcontrol"));
    xdg(&mut c);
    assert!(c.args(["agent", "shutdown"]).output().unwrap().status.success());
    // The autostarted agent wrote its pid into the lock file: wait for it to be gone.
    let pid: i32 = std::fs::read_to_string(t.join("data/soam/soamd.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for(15, "the agent to exit", || (unsafe { libc::kill(pid, 0) } != 0).then_some(()));

    // A runtime folder made beforehand by another user (world-writable, as in /tmp).
    std::fs::remove_dir_all(t.join("rt/soam")).unwrap();
    std::fs::create_dir(t.join("rt/soam")).unwrap();
    std::os::unix::fs::chown(t.join("rt/soam"), Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(t.join("rt/soam"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = Command::new(bin("soamd"));
    xdg(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("belongs to uid 65534"), "{}", stderr(&o));
    // Ours, but writable by others.
    std::os::unix::fs::chown(t.join("rt/soam"), Some(0), Some(0)).unwrap();
    let mut c = Command::new(bin("soamd"));
    xdg(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("writable by other users"), "{}", stderr(&o));
    // A config file others can write is refused too.
    std::fs::set_permissions(t.join("rt/soam"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(t.join("cfg/soam")).unwrap();
    std::fs::write(t.join("cfg/soam/soamd.yaml"), "slots: 1\n").unwrap();
    std::fs::set_permissions(t.join("cfg/soam/soamd.yaml"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut c = Command::new(bin("soamd"));
    xdg(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("soamd.yaml is writable by other users"), "{}", stderr(&o));
}

/// A shared agent's environment is root's: `${NAME}` in a profile never reads it for
/// another user's instance (the instance fails naming the variable), while the agent's
/// own user's instances may.
#[test]
fn a_profile_cannot_read_the_shared_agent_s_environment_for_a_user() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();
    start(&mut env, true);
    let p = env.path("p.yaml");
    std::fs::write(
        &p,
        format!(
            "application: a\nservices:\n  - name: s\n    command: [\"python3\", \"{}\"]\n    env: {{LEAK: \"${{SOAM_TEST_AGENT_SECRET}}\"}}\n",
            behave_py()
        ),
    )
    .unwrap();
    let o = env.run("soamreg", &[p.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("${SOAM_TEST_AGENT_SECRET} in its env is not defined (soam defines SOAM_DEPLOY_DIR, SOAM_HOME, EGO_SHARED_TOP; or set it in the service's env)"),
        "{}",
        stderr(&o)
    );
    let o = as_nobody(&env, "soamsession", &["submit", "--app", "a", "--task", "env:LEAK"]);
    assert!(!o.status.success());
    assert!(!stdout(&o).contains("root-only") && !stderr(&o).contains("root-only"), "{o:?}");
    assert!(
        stderr(&o).contains("${SOAM_TEST_AGENT_SECRET} in its env LEAK is not defined"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        env.ok("soamsession", &["submit", "--app", "a", "--task", "env:LEAK"]),
        "root-only\n"
    );
}

/// Deploying and removing service packages are admin acts in a shared agent; any user
/// may list them.
#[test]
fn service_packages_are_deployed_by_admins_only() {
    if !other_uids_can_run() {
        return;
    }
    let mut env = open_home();
    start(&mut env, true);
    let behave = behave_py();
    let services = std::path::Path::new(&behave).parent().unwrap();
    let archive = tar_gz(&env.path("p.tgz"), services, &["behave.py"]);
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = as_nobody(&env, "soamdeploy", &["add", "p", "--package", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("deploying a service package refused: in this shared agent that is for admins"),
        "{}",
        stderr(&o)
    );
    env.ok("soamdeploy", &["add", "p", "--package", archive.to_str().unwrap()]);
    let o = as_nobody(&env, "soamdeploy", &["remove", "p"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = as_nobody(&env, "soamdeploy", &["view", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"package\":\"p\""), "{}", stdout(&o));
}
