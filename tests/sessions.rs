//! Sessions from a shell: submit in every input and output form, detach and reopen from
//! another client, exclusive access, delivery modes, fetch, and clear errors.

mod common;
use common::*;
use serde_json::Value;

fn jsonl(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const TYPES: &str = "  - name: Keep\n    discardResultsOnDelivery: false\n    onClientDisconnect: continue\n  - name: Direct\n    onClientDisconnect: continue\n";

#[test]
fn submit_inputs_and_output_forms() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    // stdin lines, in order with --ordered
    let o = env.run_stdin("soamsession", &["submit", "--app", "a", "--ordered"], "one\ntwo\nthree\n");
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\ntwo\nthree\n");
    // --task, --jsonl
    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--task", "x", "--task", "fatal", "--jsonl"],
    );
    assert_eq!(o.status.code(), Some(4), "a failed task makes the exit code 4");
    let mut rows = jsonl(&o.stdout);
    rows.sort_by_key(|r| r["task"].as_u64());
    assert_eq!(rows[0]["state"], "done");
    assert_eq!(rows[0]["output"], "x");
    assert_eq!(rows[1]["state"], "error");
    assert_eq!(rows[1]["error"], "fatal on attempt 1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 2 tasks did not succeed"));
    // --input-file and --output-dir
    let f = env.path("in.txt");
    std::fs::write(&f, "alpha\nbeta\n").unwrap();
    let dir = env.path("out");
    env.ok(
        "soamsession",
        &[
            "submit",
            "--app",
            "a",
            "--input-file",
            f.to_str().unwrap(),
            "--output-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(dir.join("1.out")).unwrap(), "alpha");
    assert_eq!(std::fs::read_to_string(dir.join("2.out")).unwrap(), "beta");
    // --input-dir: a task per file, in name order, bytes untouched
    let d = env.path("inputs");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("b"), b"\x00\xffbin").unwrap();
    std::fs::write(d.join("a"), b"text").unwrap();
    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--input-dir", d.to_str().unwrap(), "--jsonl", "--ordered"],
    );
    let rows = jsonl(&o.stdout);
    assert_eq!(rows[0]["output"], "text");
    assert_eq!(rows[1]["output_base64"], "AP9iaW4=");
    // --count
    let out = env.ok("soamsession", &["submit", "--app", "a", "--count", "500"]);
    assert_eq!(out.lines().count(), 500);
    // Every submit closed the session it created.
    assert_eq!(env.json("soamview", &["session", "a"]).as_array().unwrap().len(), 0);
    assert_eq!(env.json("soamview", &["history", "a"]).as_array().unwrap().len(), 5);
}

#[test]
fn detach_then_reopen_from_another_client_collects_everything() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep", "--name", "nightly"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(id, 1);
    let s = env.session("a", id).unwrap();
    assert_eq!(
        (s["state"].as_str(), s["holder"].is_null(), s["name"].as_str()),
        (Some("open"), true, Some("nightly"))
    );
    let o = env.run_stdin("soamsession", &["submit", "--session", "a:nightly", "--detach"], "1\n2\n3\n");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("soamsession reopen a:1"));
    wait_for(20, "tasks to finish", || (env.session("a", id).unwrap()["done"] == 3).then_some(()));
    // Another client collects, by name, and leaves it open with --keep-open.
    let out = env.ok("soamsession", &["reopen", "a:nightly", "--ordered", "--keep-open"]);
    assert_eq!(out, "1\n2\n3\n");
    // Delivered and acknowledged: a plain reopen has nothing more...
    // (--no-wait: the old spelling of --detach, still taken with a warning.)
    let o = env.run("soamsession", &["reopen", "a:1", "--no-wait"]);
    assert!(o.status.success() && o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-wait is now spelt --detach"));
    // ...but the type keeps outputs, so --all fetches them again; then it closes.
    let out = env.ok("soamsession", &["reopen", "a:1", "--all", "--ordered"]);
    assert_eq!(out, "1\n2\n3\n");
    assert!(env.session("a", id).is_none());
    assert_eq!(env.history("a", id).unwrap()["state"], "closed");
}

#[test]
fn discarded_outputs_are_not_fetched_again() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    let sess = format!("a:{id}");
    env.run_stdin("soamsession", &["submit", "--session", &sess], "x\ny\n");
    let out = env.ok("soamsession", &["reopen", &sess, "--all", "--detach"]);
    assert_eq!(out, "", "discardResultsOnDelivery: true drops acknowledged outputs");
}

#[test]
fn exclusive_access_new_opener_takes_over() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep"])
        .trim()
        .to_string();
    let sess = format!("a:{id}");
    // First holder waits on a slow task.
    let first = env
        .cmd("soamsession")
        .args(["submit", "--session", &sess, "--task", "sleep:30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(20, "first holder", || {
        env.session("a", id.parse().unwrap())
            .and_then(|s| s["holder"].as_str().map(|_| ()))
            .filter(|_| env.session("a", id.parse().unwrap()).unwrap()["running"] == 1)
    });
    // A second client takes it.
    let second = env.ok("soamsession", &["fetch", &sess]);
    assert_eq!(second, "");
    let o = first.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("session {sess} was taken over")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    env.ok("soamsession", &["abort", &sess]);
    assert_eq!(env.history("a", id.parse().unwrap()).unwrap()["state"], "aborted");
}

#[test]
fn fetch_takes_at_most_max_and_leaves_the_rest() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    let sess = format!("a:{id}");
    env.ok("soamsession", &["submit", "--session", &sess, "--count", "10", "--detach"]);
    wait_for(20, "tasks", || (env.session("a", id).unwrap()["done"] == 10).then_some(()));
    let a = env.ok("soamsession", &["fetch", &sess, "--max", "4"]);
    assert_eq!(a.lines().count(), 4);
    assert_eq!(env.session("a", id).unwrap()["undelivered"], 6);
    let b = env.ok("soamsession", &["fetch", &sess, "--timeout", "0.2"]);
    assert_eq!(b.lines().count(), 6);
    assert_eq!(env.session("a", id).unwrap()["undelivered"], 0);
    env.ok("soamsession", &["close", &sess]);
}

#[test]
fn direct_flag_must_match_at_reopen() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", TYPES));
    let id = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Direct", "--direct"])
        .trim()
        .to_string();
    let sess = format!("a:{id}");
    let err = env.fails("soamsession", &["reopen", &sess]);
    assert!(err.contains("created with --direct"), "{err}");
    let out = env.run("soamsession", &["submit", "--session", &sess, "--direct", "--task", "d"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "d\n");
    let id2 = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    let err = env.fails("soamsession", &["reopen", &format!("a:{id2}"), "--direct"]);
    assert!(err.contains("created without --direct"), "{err}");
}

#[test]
fn clear_errors_and_no_session_left_behind() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "  maxSessions: 1\n", TYPES));
    let e = env.fails("soamsession", &["create", "--app", "nope"]);
    assert_eq!(e, "soamsession: unknown application 'nope' (soamview app lists them)");
    let e = env.fails("soamsession", &["create", "--app", "a", "--type", "Nope"]);
    assert!(e.contains("has no session type 'Nope'") && e.contains("'Keep'"), "{e}");
    // Misspelt: the name meant is suggested.
    let e = env.fails("soamsession", &["create", "--app", "a", "--type", "keep"]);
    assert!(e.contains("has no session type 'keep'; did you mean 'Keep'?"), "{e}");
    let e = env.fails("soamsession", &["reopen", "a:42"]);
    assert_eq!(e, "soamsession: no session a:42");
    let e = env.fails("soamsession", &["close", "a:nosuch"]);
    assert_eq!(e, "soamsession: no session a:nosuch");
    let e = env.fails("soamsession", &["create", "--app", "a", "--name", "123"]);
    assert!(e.contains("may not be all digits"), "{e}");
    // Usage errors exit 2.
    assert_eq!(env.run("soamsession", &["reopen", "not-an-address"]).status.code(), Some(2));
    assert_eq!(env.run("soamsession", &["submit"]).status.code(), Some(2));
    // maxSessions
    env.ok("soamsession", &["create", "--app", "a"]);
    let e = env.fails_with(6, "soamsession", &["create", "--app", "a"]);
    assert!(e.contains("maxSessions (1"), "{e}");
    // A disabled application creates nothing.
    env.ok("soamcontrol", &["app", "disable", "a"]);
    let e = env.fails("soamsession", &["submit", "--app", "a", "--task", "x"]);
    assert!(e.contains("disabled"), "{e}");
    assert_eq!(env.json("soamview", &["session", "a"]).as_array().unwrap().len(), 1);
    let e = env.fails("soamview", &["task", "a:7"]);
    assert_eq!(e, "soamview: no session a:7");
    // The ended session is named as such.
    env.ok("soamsession", &["close", "a:1"]);
    let e = env.fails("soamsession", &["reopen", "a:1"]);
    assert!(e.contains("has ended"), "{e}");
    // Its end gave its place back under maxSessions.
    env.ok("soamcontrol", &["app", "enable", "a"]);
    env.ok("soamsession", &["create", "--app", "a"]);
}

#[test]
fn views_show_counts_and_tasks() {
    let env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Keep\n    priority: 5\n    discardResultsOnDelivery: false\n"),
    );
    let id: u64 = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep", "--tag", "t1"])
        .trim()
        .parse()
        .unwrap();
    let sess = format!("a:{id}");
    env.run(
        "soamsession",
        &[
            "submit",
            "--session",
            &sess,
            "--task",
            "ok",
            "--task",
            "fatal",
            "--task",
            "sleep:30",
            "--detach",
        ],
    );
    wait_for(20, "progress", || {
        let s = env.session("a", id).unwrap();
        (s["done"] == 1 && s["error"] == 1 && s["running"] == 1).then_some(())
    });
    let s = env.session("a", id).unwrap();
    assert_eq!(
        (s["type"].as_str(), s["priority"].as_u64(), s["state"].as_str()),
        (Some("Keep"), Some(5), Some("open"))
    );
    let tasks = env.json("soamview", &["task", &sess]);
    let states: Vec<&str> = tasks.as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["done", "error", "running"]);
    assert_eq!(tasks[1]["error"], "fatal on attempt 1");
    let errs = env.json("soamview", &["task", &sess, "--state", "error"]);
    assert_eq!(errs.as_array().unwrap().len(), 1);
    // The table: a default set of columns that fits 80 columns, others by -o.
    let table = env.ok("soamview", &["session", "a"]);
    let head: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["APP", "ID", "NAME", "TAG", "STATE", "PEND", "RUN", "DONE", "ERR", "CREATED"]);
    assert!(table.lines().all(|l| l.trim_end().len() <= 80), "{table}");
    // Created just now: local time with its age.
    assert!(table.lines().nth(1).unwrap().contains("s ago)"), "{table}");
    let picked = env.ok("soamview", &["session", "a", "-o", "id,priority,holder", "--no-header"]);
    assert_eq!(
        picked.split_whitespace().take(2).collect::<Vec<_>>(),
        [id.to_string().as_str(), "5"]
    );
    let bad = env.fails_with(2, "soamview", &["session", "-o", "id,bogus"]);
    assert!(bad.contains("unknown column 'bogus' (valid: app, id,"), "{bad}");
    // The headers a table shows name their columns too, in any case; a near miss is a
    // usage error that says what was meant.
    let picked = env.ok("soamview", &["session", "a", "-o", "ID,pend,Err", "--no-header"]);
    let (pend, err) = (s["pending"].to_string(), s["error"].to_string());
    assert_eq!(
        picked.split_whitespace().collect::<Vec<_>>(),
        [id.to_string().as_str(), &pend, &err]
    );
    let bad = env.fails_with(2, "soamview", &["session", "-o", "stat"]);
    assert!(bad.contains("did you mean 'state'?"), "{bad}");
    // JSON has every field the agent knows, the owner by name too.
    assert_eq!(s["owner_uid"], unsafe { libc::getuid() });
    assert!(s["owner"].as_str().is_some_and(|o| !o.is_empty()), "{s}");
    assert!(s.get("reason").is_some() && s.get("tag").is_some() && s["holder"].is_null(), "{s}");
    // Admin kill: running task canceled, session aborted with history.
    env.ok("soamcontrol", &["session", "kill", &sess]);
    let h = env.history("a", id).unwrap();
    assert_eq!((h["state"].as_str(), h["canceled"].as_u64()), (Some("aborted"), Some(1)));
    let all = env.json("soamview", &["session", "a", "-a"]);
    assert_eq!(all[0]["state"], "aborted");
}

#[test]
fn progress_bar_on_a_terminal_only_and_watch_redraws() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let submit = format!(
        "{} submit --app a --task sleep:0.3 --task sleep:0.3 --task sleep:0.3",
        bin("soamsession").display()
    );
    // `script` gives the command a terminal for stdout and stderr.
    let o = std::process::Command::new("script")
        .args(["-qfec", &submit, "/dev/null"])
        .env("SOAM_HOME", env.home.path())
        .env("SOAM_NO_AUTOSTART", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/3 tasks"),
        "a bar on a terminal: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Piped: outputs only, no bar anywhere.
    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--task", "sleep:0.3", "--task", "sleep:0.3"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "slept\nslept\n");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("tasks"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // --watch into a pipe: blocks, each after its time and a blank line, no escapes,
    // until interrupted.
    let seen = watched(&env, &["app", "--watch=0.2"], |seen| seen.matches("\n\n").count() >= 2);
    assert!(!seen.contains('\x1b'), "escape codes into a pipe: {seen:?}");
    let blocks: Vec<&str> = seen.split("\n\n").collect();
    for b in &blocks[..2] {
        let mut lines = b.lines();
        let stamp = lines.next().unwrap();
        assert!(stamp.starts_with("20") && stamp.len() >= 19, "a block starts with its time: {b:?}");
        assert!(lines.next().unwrap().starts_with("APP"), "{b:?}");
    }
    // With --json: one JSON document a line.
    let seen = watched(&env, &["app", "--watch=0.2", "--json"], |seen| seen.matches('\n').count() >= 2);
    for line in seen.lines().take(2) {
        let v: serde_json::Value = serde_json::from_str(line).expect("each round one JSON line");
        assert!(v.is_array(), "{line}");
    }
    // On a terminal: a redraw under a line with the interval and the time, without
    // flicker: the screen is cleared once, then each round goes to the top-left corner
    // and overwrites the last (each line's old tail erased, then what is below).
    let mut term = env
        .script("soamview app --watch=0.2")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = term.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen).matches("\x1b[J").count() < 3 {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "soamview --watch on a terminal stopped by itself");
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("\x1b[H\x1b[2J"), "the first round clears the screen: {seen:?}");
    assert_eq!(seen.matches("\x1b[2J").count(), 1, "later rounds are not blanked first: {seen:?}");
    let rounds: Vec<&str> = seen.split("\x1b[H").skip(1).collect();
    assert!(rounds.len() >= 3, "{seen:?}");
    for r in &rounds[..3] {
        assert!(r.trim_start_matches("\x1b[2J").starts_with("Every 0.2s: 20"), "{r:?}");
        assert!(r.contains("APP") && r.ends_with("\x1b[J"), "{r:?}");
        for line in r.trim_end_matches("\x1b[J").split('\n') {
            assert!(
                line.trim_end_matches('\r').ends_with("\x1b[K"),
                "each line erases its old tail: {line:?}"
            );
        }
    }
    // The terminal goes with `script`: soamview ends with it.
    term.kill().unwrap();
    term.wait().unwrap();
    // An interval out of range is bad usage.
    let o = env.run("soamview", &["app", "--watch=0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("valid: 0.1 to 86400 seconds"));
}

/// Runs `soamview ARGS` (a --watch) into a pipe until `enough` holds for what it wrote,
/// then interrupts it as Ctrl-C would, by its PID; what it wrote.
fn watched(env: &Env, args: &[&str], enough: impl Fn(&str) -> bool) -> String {
    let mut child = env.cmd("soamview").args(args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !enough(&String::from_utf8_lossy(&seen)) {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "soamview {args:?} stopped by itself");
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success(), "Ctrl-C ends --watch cleanly");
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn submit_says_which_task_ids_it_got_and_json_says_it_for_scripts() {
    let env = Env::new();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Keep\n    onClientDisconnect: continue\n"),
    );
    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--type", "Keep", "--task", "x", "--task", "y", "--detach"],
    );
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("submitted tasks 1-2 to session a:1; collect them with: soamsession reopen a:1"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n");
    // Into the same session: the next ids.
    let o = env.run("soamsession", &["submit", "--session", "a:1", "--task", "z", "--detach", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"app": "a", "id": 1, "session": "a:1", "first_task": 3, "last_task": 3, "count": 1})
    );
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("submitted task 3 to session a:1"));
    // Attached, with --jsonl: the submission's object first, then one object a task.
    let out = env.ok("soamsession", &["submit", "--session", "a:1", "--task", "w", "--json", "--jsonl"]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["first_task"], 4);
    assert!(lines[1..].iter().any(|l| l["task"] == 4 && l["state"] == "done"), "{out}");
}
