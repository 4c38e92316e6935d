//! The offline journal through the real commands: submissions and releases made while
//! no agent answers are kept (0600, in order), carried out at the next contact exactly
//! once, refused ones stay until dropped, and two replays at once submit nothing twice.

mod common;
use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Journal entries as `sync --list` prints them: (number, what, state).
fn listed(env: &Env) -> Vec<(u64, String, String)> {
    env.ok("soamsession", &["sync", "--list"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// The sessions the sync report says submissions went to, in order.
fn sessions_in(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.split(": session ").nth(1))
        .filter_map(|r| r.split(',').next())
        .map(String::from)
        .collect()
}

#[test]
fn offline_submissions_and_releases_are_carried_out_once_in_order() {
    let mut env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Keep\n    recoverable: true\n    onClientDisconnect: continue\n"),
    );
    let open = env.ok("soamsession", &["create", "--app", "a", "--type", "Keep", "--name", "nightly"]);
    let open = format!("a:{}", open.trim());
    let doomed = env.ok("soamsession", &["create", "--app", "a", "--type", "Keep"]);
    let doomed = format!("a:{}", doomed.trim());
    env.stop_agent(libc::SIGTERM);

    // No agent: without --offline-ok a clear failure (agent unreachable), nothing kept.
    let e = env.fails_with(3, "soamsession", &["submit", "--app", "a", "--task", "x"]);
    assert!(e.contains("no agent answers"), "{e}");
    assert!(!env.path("data/journal.redb").exists());
    // With it: kept, and said so.
    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--task", "one", "--task", "two", "--offline-ok"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("kept in the offline journal as entry 1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("soamsession sync"), "{}", stderr(&o));
    let o = env.run_stdin("soamsession", &["submit", "--session", "a:nightly", "--offline-ok"], "three\n");
    assert!(o.status.success(), "{}", stderr(&o));
    // A release that finds no agent is kept too; then one more submit after it.
    let o = env.run("soamsession", &["close", &doomed]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is pending"), "{}", stderr(&o));
    let o = env.run("soamsession", &["submit", "--session", &open, "--task", "four", "--offline-ok"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(env.path("data/journal.redb")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the journal is the user's alone");
    let l = listed(&env);
    assert_eq!(l.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(l[0].1, "submit 2 tasks to a new session of a");
    assert_eq!(l[1].1, "submit 1 tasks to session a:nightly");
    assert_eq!(l[2].1, format!("close session {doomed}"));
    assert!(l.iter().all(|e| e.2 == "waiting"), "{l:?}");
    // The same for scripts.
    let j: serde_json::Value = serde_json::from_str(&env.ok("soamsession", &["sync", "--list", "--json"])).unwrap();
    let j = j.as_array().unwrap();
    assert_eq!(j.len(), 4);
    assert_eq!(j[0]["seq"], 1);
    assert_eq!(j[0]["action"], "submit");
    assert_eq!(j[0]["app"], "a");
    assert_eq!(j[0]["tasks"], 2);
    assert_eq!(j[1]["session"], "a:nightly");
    assert_eq!(j[2]["action"], "close");
    assert!(
        j.iter()
            .all(|e| e["state"] == "waiting" && e["refused"].is_null() && e["at_ms"].is_u64()),
        "{j:?}"
    );

    // The agent is back: sync carries everything out in order, once.
    env.start_agent();
    let o = env.run("soamsession", &["sync"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stderr(&o);
    let names = sessions_in(&report);
    assert_eq!(names.len(), 3, "{report}");
    assert!(report.contains("tasks 1 to 2"), "{report}");
    assert!(report.contains(&format!("done (close {doomed})")), "{report}");
    assert_eq!(env.ok("soamsession", &["sync", "--list"]), "");
    assert!(!env.path("data/journal.redb").exists(), "an empty journal is removed");
    // The new session holds the two tasks; the named one got "three" and then "four".
    let new = &names[0];
    let out = env.ok("soamsession", &["reopen", new, "--ordered"]);
    assert_eq!(out, "one\ntwo\n");
    assert_eq!(names[1..], [open.clone(), open.clone()], "{report}");
    let out = env.ok("soamsession", &["reopen", &open, "--ordered"]);
    assert_eq!(out, "three\nfour\n");
    assert!(env.history("a", doomed[2..].parse().unwrap()).is_some(), "closed at the sync");
    // Nothing more to do: a second sync submits nothing again.
    let o = env.run("soamsession", &["sync"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("nothing to sync"), "{}", stderr(&o));
}

#[test]
fn refused_entries_stay_until_dropped_and_any_command_replays() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.stop_agent(libc::SIGTERM);
    for args in [
        vec!["submit", "--app", "gone", "--task", "x", "--offline-ok"],
        vec!["submit", "--app", "a", "--task", "y", "--offline-ok"],
    ] {
        let o = env.run("soamsession", &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    env.start_agent();
    // Any command that reaches the agent replays first, and says what became of each.
    let o = env.run("soamview", &["session", "a", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stderr(&o);
    assert!(
        report.contains("#1 submit 1 tasks to a new session of gone: refused: unknown application 'gone'"),
        "{report}"
    );
    assert!(report.contains("#2 submit 1 tasks to a new session of a: session a:"), "{report}");
    let sessions: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1, "the replay came before the listing");
    // The refused one stays, with its reason; an explicit sync tries it again.
    let l = listed(&env);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0, 1);
    assert!(l[0].2.starts_with("refused: unknown application 'gone'"), "{}", l[0].2);
    let e = env.fails("soamsession", &["sync"]);
    assert!(e.contains("refused: unknown application 'gone'") && e.contains("--drop 1"), "{e}");
    // A later command does not try it again on its own.
    let o = env.run("soamview", &["app"]);
    assert!(o.status.success() && stderr(&o).is_empty(), "{}", stderr(&o));
    let e = env.fails("soamsession", &["sync", "--drop", "7"]);
    assert!(e.contains("no journal entry 7"), "{e}");
    env.ok("soamsession", &["sync", "--drop", "1"]);
    assert_eq!(listed(&env), vec![]);
}

#[test]
fn two_replays_at_once_submit_nothing_twice() {
    let mut env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Keep\n    onClientDisconnect: continue\n"),
    );
    env.stop_agent(libc::SIGTERM);
    let entries = 6;
    for _ in 0..entries {
        let o = env.run(
            "soamsession",
            &["submit", "--app", "a", "--type", "Keep", "--count", "500", "--offline-ok"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    env.start_agent();
    let spawn = || {
        env.cmd("soamsession")
            .arg("sync")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let created: usize = [&a, &b].iter().map(|o| sessions_in(&stderr(o)).len()).sum();
    assert_eq!(
        created,
        entries,
        "each entry carried out by one of them:\n{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    // Whichever found the journal taken said so, and nothing is left.
    for o in [&a, &b] {
        assert!(
            o.status.success() || stderr(o).contains("another soam command is replaying the journal"),
            "{}",
            stderr(o)
        );
    }
    assert_eq!(env.ok("soamsession", &["sync", "--list"]), "");
    let sessions = env.json("soamview", &["session", "a"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), entries);
    for s in sessions {
        let total = s["pending"].as_u64().unwrap() + s["running"].as_u64().unwrap() + s["done"].as_u64().unwrap();
        assert_eq!(total, 500, "{s}");
    }
}
