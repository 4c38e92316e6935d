//! History: persistSessionHistory / persistTaskHistory honoured, kept across restarts,
//! task history with attempts and run time.

mod common;
use common::*;

const TYPES: &str = "  - name: All\n    taskRetryLimit: 1\n  - name: Errors\n    persistTaskHistory: error\n    taskRetryLimit: 0\n  - name: NoTasks\n    persistTaskHistory: none\n  - name: Nothing\n    persistSessionHistory: none\n    persistTaskHistory: none\n";

#[test]
fn history_follows_the_session_type_and_survives_a_restart() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    for t in ["All", "Errors", "NoTasks", "Nothing"] {
        env.run(
            "soamsession",
            &["submit", "--app", "a", "--type", t, "--task", "sleep:0.05", "--task", "fail"],
        );
    }
    env.stop_agent(libc::SIGTERM);
    env.start_agent();
    let h = env.json("soamview", &["history", "a"]);
    let ids: Vec<u64> = h.as_array().unwrap().iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "persistSessionHistory: none leaves no trace: {h}");
    assert!(!ids.contains(&4));
    let s1 = env.history("a", 1).unwrap();
    assert_eq!(
        (s1["state"].as_str(), s1["done"].as_u64(), s1["error"].as_u64()),
        (Some("closed"), Some(1), Some(1))
    );
    // Times as RFC 3339 with milliseconds beside their epoch milliseconds.
    let created = s1["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == "2026-11-22T20:31:11.042Z".len(),
        "{created}"
    );
    assert!(s1["ended_ms"].as_u64().unwrap() >= s1["created_ms"].as_u64().unwrap());

    let all = env.json("soamview", &["history", "a:1"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!((all[0]["state"].as_str(), all[0]["attempts"].as_u64()), (Some("done"), Some(1)));
    assert!(all[0]["run_s"].as_f64().unwrap() >= 0.05, "{}", all[0]);
    assert_eq!((all[1]["state"].as_str(), all[1]["attempts"].as_u64()), (Some("error"), Some(2)));
    assert_eq!(all[1]["error"], "failed on attempt 2");
    let errors = env.json("soamview", &["history", "a:2"]);
    assert_eq!(errors.as_array().unwrap().len(), 1);
    assert_eq!(errors[0]["state"], "error");
    assert_eq!(env.json("soamview", &["history", "a:3"]).as_array().unwrap().len(), 0);
    let e = env.fails("soamview", &["history", "a:4"]);
    assert_eq!(e, "soamview: session a:4 is not in history");
}

/// A client told its session ended sees that session's tasks in the next view, every
/// time (the task history is read after the writes queued before it are committed).
#[test]
fn history_is_there_as_soon_as_the_session_ended() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let input: String = (0..5000).map(|i| format!("{i}\n")).collect();
    for id in 1..=10 {
        let addr = format!("a:{id}");
        env.ok("soamsession", &["create", "--app", "a", "--type", "All"]);
        let o = env.run_stdin("soamsession", &["submit", "--session", &addr], &input);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        env.ok("soamsession", &["close", &addr]);
        let h = env.json("soamview", &["history", &addr]);
        assert_eq!(h.as_array().map(Vec::len), Some(5000), "try {id}");
    }
}

/// Names of ended sessions: one that fits several is refused with the list, each of
/// them reachable as NAME@N or by id; `soamview task` of an ended session shows the
/// task history kept for it; a command given a name says which id it meant.
#[test]
fn each_ended_session_of_a_shared_name_is_reachable_and_names_show_their_id() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    for (id, task) in [(1, "one"), (2, "two")] {
        env.ok("soamsession", &["create", "--app", "a", "--type", "All", "--name", "n"]);
        let addr = format!("a:{id}");
        env.ok("soamsession", &["submit", "--session", &addr, "--task", task]);
        env.ok("soamsession", &["close", &addr]);
    }
    let e = env.fails("soamview", &["history", "a:n"]);
    assert_eq!(
        e,
        "soamview: a:n names 2 ended sessions, newest first: a:2 (@2, closed), a:1 (@1, closed); \
         name one by its id, or as a:n@N (1 the oldest)"
    );
    let first = env.json("soamview", &["history", "a:n@1"]);
    assert_eq!(first.as_array().unwrap().len(), 1);
    let second = env.json("soamview", &["task", "a:n@2"]);
    assert_eq!((second[0]["task"].as_u64(), second[0]["state"].as_str()), (Some(1), Some("done")));
    assert_ne!(first[0]["submitted_ms"], serde_json::Value::Null);
    // `soamview task` of an ended session by id: its kept history, --state applied.
    assert_eq!(env.json("soamview", &["task", "a:1"]), first);
    assert_eq!(env.json("soamview", &["task", "a:1", "--state", "error"]), serde_json::json!([]));
    let e = env.fails("soamview", &["history", "a:n@3"]);
    assert_eq!(e, "soamview: session a:n@3 is not in history");
    // An open session of that name: acts name it with its id.
    env.ok("soamsession", &["create", "--app", "a", "--name", "n"]);
    let o = env.run("soamcontrol", &["session", "suspend", "a:n"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "session a:3 (n) suspended\n");
    let o = env.run("soamsession", &["close", "a:n"]);
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("session a:3 (n) closed"), "{o:?}");
    // Now three ended ones share it.
    assert!(env.fails("soamview", &["history", "a:n"]).contains("names 3 ended sessions"));
    assert_eq!(env.json("soamview", &["history", "a:n@3"]).as_array().unwrap().len(), 0);
}
