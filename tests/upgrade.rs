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

fn checks_v0_content(env: &Env) {
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
fn a_store_from_the_previous_release_opens_with_everything_in_it() {
    let mut env = home_with("store-v0.redb");
    env.start_agent();
    checks_v0_content(&env);
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
