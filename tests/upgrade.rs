//! Upgrades: a store written by an earlier release (tests/fixtures, see
//! make-store-v0.sh) opens in this one with its sessions, tasks, outputs and history;
//! a store from a newer release is refused and left as it was.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A home whose store is a copy of the fixture, no agent yet.
fn home_with(store: &str) -> Env {
    let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/services/echo.py");
    // SAFETY: nextest runs each test in its own process, before any thread of its own.
    unsafe { std::env::set_var("SOAM_TEST_ECHO", echo) };
    let env = Env::empty();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(fixture(store), data.join("soam.redb")).unwrap();
    std::fs::set_permissions(data.join("soam.redb"), std::fs::Permissions::from_mode(0o600)).unwrap();
    env
}

fn lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(String::from).collect();
    v.sort();
    v
}

/// What both fixtures hold (made by the same steps, by the release of their format).
fn checks_fixture_content(env: &Env) {
    // Sessions as they were left.
    let keep = env.session("upg", 1).expect("session upg:1");
    assert_eq!((keep["name"].as_str(), keep["done"].as_u64()), (Some("keep"), Some(3)), "{keep}");
    let held = env.session("upg", 2).expect("session upg:2");
    assert_eq!(held["state"], "suspended", "{held}");
    let tasks = env.json("soamview", &["task", "upg:2"]);
    assert_eq!(tasks.as_array().unwrap().len(), 2, "{tasks}");
    assert!(tasks.as_array().unwrap().iter().all(|t| t["state"] == "pending"), "{tasks}");
    // History, with its tasks.
    let h = env.history("upg", 3).expect("history upg:3");
    assert_eq!((h["state"].as_str(), h["done"].as_u64()), (Some("closed"), Some(4)), "{h}");
    assert_eq!(env.json("soamview", &["history", "upg:3"]).as_array().unwrap().len(), 4);
}

#[test]
fn a_store_from_the_release_before_formats_opens_with_everything_in_it() {
    opens_with_everything_in_it("store-v0.redb");
}

#[test]
fn a_store_of_format_1_opens_with_everything_in_it() {
    opens_with_everything_in_it("store-v1.redb");
}

#[test]
fn a_store_of_format_2_opens_with_everything_in_it() {
    opens_with_everything_in_it("store-v2.redb");
}

fn opens_with_everything_in_it(fixture: &str) {
    let mut env = home_with(fixture);
    env.start_agent();
    checks_fixture_content(&env);
    // The outputs kept for upg:keep are there, with the common data its tasks saw.
    let out = env.ok("soamsession", &["reopen", "upg:keep", "--all"]);
    assert_eq!(lines(&out), ["shared bytesa", "shared bytesb", "shared bytesc"]);
    // Ids go on from where they were: no id is given twice.
    let id = env.ok("soamsession", &["create", "--app", "upg", "--type", "Keep"]);
    assert_eq!(id.trim(), "4");
    // Migrated once: a restart opens the upgraded store the same way.
    env.stop_agent(libc::SIGTERM);
    env.start_agent();
    assert_eq!(env.history("upg", 1).expect("upg:1 ended by its reopen")["done"], 3);
    assert_eq!(env.session("upg", 2).expect("upg:2")["state"], "suspended");
    assert_eq!(env.history("upg", 3).expect("upg:3")["done"], 4);
    assert!(env.session("upg", 4).is_some());
    // The pending tasks run.
    env.ok("soamcontrol", &["session", "resume", "upg:held"]);
    let out = env.ok("soamsession", &["reopen", "upg:held"]);
    assert_eq!(lines(&out), ["x", "y"]);
}

/// The file's bytes: it is small enough to compare whole.
fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_store_from_a_newer_release_is_refused_and_left_as_it_was() {
    let mut env = home_with("store-v0.redb");
    env.start_agent();
    env.stop_agent(libc::SIGTERM);
    let store = env.path("data/soam.redb");
    soam_store::stamp_format(&store, soam_store::FORMAT + 1, "9.9.9").unwrap();
    let before = bytes_of(&store);
    let o = std::process::Command::new(bin("soamd"))
        .env("SOAM_HOME", env.path(""))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let want = format!("has format {} (written by soam 9.9.9)", soam_store::FORMAT + 1);
    assert!(err.contains(&want) && err.contains("it was not changed"), "{err}");
    assert!(bytes_of(&store) == before, "the newer store was written to");
}

/// A large old store, and the agent killed at moments spread over its migration: every
/// start after a kill finds either the old store whole or the migrated one, and the
/// last one serves every task.
#[test]
fn kill_9_during_a_migration_loses_nothing() {
    const TASKS: usize = 30_000;
    let mut env = Env::new();
    env.register("p.yaml", "application: big\nservices:\n  - name: s\n    command: [\"true\"]\nsessionTypes:\n  - name: \"\"\n    recoverable: true\n    onClientDisconnect: continue\n");
    env.ok("soamsession", &["create", "--app", "big"]);
    env.ok("soamcontrol", &["session", "suspend", "big:1"]);
    let input: String = (0..TASKS).map(|i| format!("{i}\n")).collect();
    let o = env.run_stdin("soamsession", &["submit", "--session", "big:1", "--detach"], &input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    env.stop_agent(libc::SIGTERM);
    let store = env.path("data/soam.redb");
    soam_store::downgrade_to_format0(&store).unwrap();

    // How long one migration takes here, to spread the kills over it.
    let t0 = std::time::Instant::now();
    let backup = env.path("data/v0.redb");
    std::fs::copy(&store, &backup).unwrap();
    env.start_agent();
    let full = t0.elapsed();
    env.stop_agent(libc::SIGTERM);
    std::fs::copy(&backup, &store).unwrap();

    eprintln!("one start with its migration: {full:?}");
    let mut mid = 0;
    for i in 1..=5u32 {
        let log = env.path(&format!("killed-{i}.log"));
        let mut child = std::process::Command::new(bin("soamd"))
            .env("SOAM_HOME", env.path(""))
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(full * i / 6);
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let said = std::fs::read_to_string(&log).unwrap();
        if said.contains("migrating the store") && !said.contains("store migrated") {
            mid += 1;
        }
    }
    eprintln!("{mid} of 5 kills fell inside the migration");
    assert!(mid > 0, "no kill fell inside the migration");
    env.start_agent();
    let s = env.session("big", 1).expect("big:1 after the migration");
    assert_eq!(s["pending"].as_u64(), Some(TASKS as u64), "{s}");
}
