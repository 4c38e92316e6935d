//! The commands' finish as a user meets it: JSON of every state-changing command, tags
//! as handles and filters, tables fitted to a real terminal, shutdown that waits, and
//! readers that go away early.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

#[test]
fn state_changing_commands_print_the_changed_object_as_json() {
    let env = Env::new();
    let p = env.home.path().join("p.yaml");
    let types = "  - name: Keep\n    onClientDisconnect: continue\n";
    std::fs::write(&p, Env::behave_profile("a", "", types)).unwrap();
    let reg = json_of(&env.ok("soamreg", &[p.to_str().unwrap(), "--json"]));
    assert_eq!((reg["action"].as_str(), reg["app"].as_str()), (Some("registered"), Some("a")));
    assert_eq!(reg["session_types"], serde_json::json!(["", "Keep"]));
    assert!(reg["warnings"].as_array().unwrap().is_empty(), "{reg}");

    let off = json_of(&env.ok("soamcontrol", &["app", "disable", "a", "--json"]));
    assert_eq!(
        (off["action"].as_str(), off["state"].as_str()),
        (Some("disabled"), Some("disabled"))
    );
    env.ok("soamcontrol", &["app", "enable", "a"]);

    let created = json_of(&env.ok(
        "soamsession",
        &["create", "--app", "a", "--type", "Keep", "--tag", "nightly", "--json"],
    ));
    assert_eq!(created["action"], "created");
    assert_eq!(created["tag"], "nightly");
    let id = created["id"].as_u64().unwrap();
    let sess = format!("a:{id}");
    let sus = json_of(&env.ok("soamcontrol", &["session", "suspend", &sess, "--json"]));
    assert_eq!(
        (sus["action"].as_str(), sus["state"].as_str()),
        (Some("suspended"), Some("suspended"))
    );
    env.ok("soamsession", &["submit", "--session", &sess, "--task", "ok", "--detach"]);
    let killed = json_of(&env.ok("soamcontrol", &["task", "kill", &format!("{sess}:1"), "--json"]));
    assert_eq!(
        (killed["action"].as_str(), killed["task"].as_u64(), killed["state"].as_str()),
        (Some("killed"), Some(1), Some("canceled"))
    );
    let closed = json_of(&env.ok("soamsession", &["close", &sess, "--json"]));
    assert_eq!(
        (closed["action"].as_str(), closed["state"].as_str()),
        (Some("closed"), Some("closed"))
    );
    assert!(closed["ended_ms"].as_u64().is_some(), "{closed}");

    let gone = json_of(&env.ok("soamunreg", &["a", "--json"]));
    assert_eq!(gone, serde_json::json!({"action": "unregistered", "app": "a"}));
}

#[test]
fn a_tag_addresses_a_session_where_it_is_unambiguous_and_filters_listings() {
    let env = Env::new();
    let types = "  - name: Keep\n    onClientDisconnect: continue\n";
    env.register("p.yaml", &Env::behave_profile("a", "", types));
    let create = |tag: &str| {
        env.ok("soamsession", &["create", "--app", "a", "--type", "Keep", "--tag", tag])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let (one, two, three) = (create("solo"), create("pair"), create("pair"));
    // The tag stands in for the id.
    let out = env.ok("soamsession", &["submit", "--session", "a:solo", "--task", "by-tag"]);
    assert_eq!(out, "by-tag\n");
    let listed = env.json("soamview", &["session", "a", "--tag", "pair"]);
    let ids: Vec<u64> = listed.as_array().unwrap().iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [two, three]);
    // Two sessions with the tag: refused, naming both, and nothing changes.
    let e = env.fails("soamcontrol", &["session", "kill", "a:pair"]);
    assert!(
        e.contains(&format!("tag 'pair' is on 2 open sessions of a ({two}, {three})")),
        "{e}"
    );
    assert_eq!(
        env.json("soamview", &["session", "a", "--tag", "pair"]).as_array().unwrap().len(),
        2
    );
    env.ok("soamsession", &["close", "a:solo"]);
    assert!(env.session("a", one).is_none());
    // Ended sessions keep their tag in history.
    let h = env.json("soamview", &["history", "a", "--tag", "solo"]);
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["id"], one);
}

#[test]
fn tables_fit_the_terminal_and_show_local_times_with_ages() {
    let env = Env::new();
    let types = "  - name: Keep\n    onClientDisconnect: continue\n";
    env.register("p.yaml", &Env::behave_profile("sampleApplication", "", types));
    for i in 0..3 {
        env.ok(
            "soamsession",
            &[
                "create",
                "--app",
                "sampleApplication",
                "--type",
                "Keep",
                "--name",
                &format!("nightly-batch-{i}"),
                "--tag",
                "team-a",
            ],
        );
    }
    // The default set fits 80 and 60 columns: only names wrap, never ids, counts,
    // states or times.
    for cols in [80, 60] {
        let (code, out) = env.in_terminal(cols, "soamview session");
        assert_eq!(code, Some(0), "{out}");
        for line in out.lines() {
            let line = line.trim_end_matches('\r');
            assert!(line.chars().count() <= cols as usize, "wider than {cols}: {line:?}\n{out}");
        }
        let head = out.lines().next().unwrap();
        for word in ["STATE", "PEND", "DONE", "CREATED"] {
            assert!(head.split_whitespace().any(|w| w == word), "{head}");
        }
        assert!(out.contains(" open "), "{out}");
        assert!(out.contains("s ago)"), "{out}");
    }
    // Wide enough, every value on one line.
    let (_, out) = env.in_terminal(120, "soamview session");
    assert!(out.contains("nightly-batch-2"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
}

#[test]
fn shutdown_returns_once_the_agent_has_stopped() {
    let mut env = Env::new();
    let pid = env.agent_pid();
    let o = env.run("soamcontrol", &["agent", "shutdown"]);
    assert!(o.status.success());
    // A confirmation, on stderr as every command's (stdout stays for data).
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), format!("agent stopped (pid {pid})"));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    // It has exited already (waiting only to be reaped by us, its parent).
    let mut child = env.agent.take().unwrap();
    assert!(child.try_wait().unwrap().is_some(), "the agent still runs after shutdown returned");
    assert!(!env.socket().exists());
    // --no-wait returns at once and says so.
    env.start_agent();
    let out = json_of(&env.ok("soamcontrol", &["agent", "shutdown", "--no-wait", "--json"]));
    assert_eq!(out["action"], "stopping");
    let mut child = env.agent.take().unwrap();
    wait_for(20, "agent exit", || child.try_wait().unwrap());
}

/// `| head -1` on every output form: the reader goes, the command ends quietly with 0.
#[test]
fn readers_that_stop_early_end_every_output_form_quietly() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let inputs: String = (0..5_000).map(|i| format!("{i}\n")).collect();
    let o = env.run_stdin("soamsession", &["submit", "--app", "a", "--detach"], &inputs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sess = format!("a:{}", String::from_utf8_lossy(&o.stdout).trim());
    for args in [
        vec!["task", sess.as_str()],
        vec!["task", sess.as_str(), "--json"],
        vec!["session", "--watch"],
        vec!["session", "--watch", "--json"],
    ] {
        let (first, o) = env.first_line_then_close("soamview", &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(!first.is_empty(), "{args:?}");
        if args.contains(&"--json") {
            assert!(first.starts_with('['), "JSON only, no screen escapes: {first:?}");
        } else if args.contains(&"--watch") {
            assert!(first.starts_with("20"), "a pipe gets the time first, no escapes: {first:?}");
        }
    }
}

/// Every command's plain text, written to a pipe whose reader has gone: exit 0 and
/// nothing on stderr (a `println!` would panic with exit 101).
#[test]
fn text_written_to_a_closed_pipe_ends_every_command_quietly() {
    let env = Env::new();
    let profile = env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let profile = profile.to_str().unwrap();
    let o = env.run("soamsession", &["submit", "--app", "a", "--task", "x"]);
    assert!(o.status.success());
    let open = env.ok("soamsession", &["create", "--app", "a"]);
    let open = format!("a:{}", open.trim());
    // Commands that only confirm write nothing to stdout: their one line is on stderr.
    for (args, said) in [
        (vec!["soamcontrol", "agent", "status"], ""),
        (vec!["soamcontrol", "agent", "log"], ""),
        (vec!["soamcontrol", "app", "disable", "a"], "application 'a' disabled\n"),
        (vec!["soamcontrol", "app", "enable", "a"], "application 'a' enabled\n"),
        (vec!["soamreg", profile], "updated application 'a'\n"),
        (vec!["soamview", "app"], ""),
        (vec!["soamview", "session", "-a"], ""),
        (vec!["soamview", "history", "a"], ""),
        (vec!["soamview", "task", open.as_str()], ""),
        (vec!["soamsession", "create", "--app", "a"], ""),
    ] {
        let o = env.to_closed_pipe(args[0], &args[1..]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!((o.status.code(), err.as_ref()), (Some(0), said), "{args:?}");
    }
    // Outputs that could not be written stay in the session, and the one line says so.
    let o = env.to_closed_pipe("soamsession", &["submit", "--app", "a", "--task", "y"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("stays open, detached, with the rest undelivered"), "{err}");
}

/// The bar on a real terminal: the scrollback ends up holding the outputs and nothing
/// else (no stale copies of the bar before them); its rate is whole tasks a second.
/// `--progress` without a terminal gives summary lines on stderr instead.
#[test]
fn the_progress_bar_leaves_only_outputs_in_the_scrollback() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let n = 40;
    let inputs: String = (0..n).map(|i| format!("nap:0.04:line-{i}\n")).collect();
    let file = env.path("inputs.txt");
    std::fs::write(&file, &inputs).unwrap();
    let (code, raw) = env.in_terminal(100, &format!("soamsession submit --app a --input-file {}", file.display()));
    assert_eq!(code, Some(0), "{raw}");
    assert!(raw.contains(&format!("/{n} tasks")), "the bar was drawn: {raw:?}");
    let rates: Vec<&str> = raw.split(" tasks ").skip(1).filter_map(|r| r.split("/s").next()).collect();
    assert!(
        !rates.is_empty() && rates.iter().all(|r| r.chars().all(|c| c.is_ascii_digit())),
        "{rates:?}"
    );
    let shown: Vec<String> = screen(&raw).into_iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(shown.len(), n, "{shown:#?}");
    assert!(shown.iter().all(|l| l.starts_with("line-") && !l.contains("tasks")), "{shown:#?}");

    let o = env.run(
        "soamsession",
        &["submit", "--app", "a", "--input-file", file.to_str().unwrap(), "--progress"],
    );
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), n);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().last().unwrap().starts_with(&format!("soamsession: {n}/{n} tasks in ")),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with("soamsession: ")), "{err}");
}

/// Tab in a real bash on a real terminal, with the script `COMPLETE=bash soamview`
/// prints: the registered application's name comes from the running agent.
#[test]
fn tab_completes_a_registered_app_in_bash_on_a_terminal() {
    use std::io::Write;
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("sampleApp", "", ""));
    let input = "stty cols 120; source <(COMPLETE=bash soamview)\nsoamview app sam\t\nexit\n";
    let mut child = env
        .script("bash --norc --noprofile -i")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until bash exits: script ends the session at its input's end.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        (child.wait().unwrap(), out)
    });
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !reader.is_finished() {
        if std::time::Instant::now() > end {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("bash did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(stdin);
    let (_, out) = reader.join().unwrap();
    let shown = screen(&out).join("\n");
    assert!(shown.contains("soamview app sampleApp"), "Tab completed the name: {shown}");
    assert!(shown.contains("sampleApp  enabled"), "and the completed command ran: {shown}");
}

/// The other shells' protocol (fish's: one candidate a line, help after a tab) for
/// session addresses and states; no agent, no candidates and no error.
#[test]
fn completion_offers_sessions_and_states_from_the_agent() {
    let mut env = Env::new();
    let types = "  - name: Keep\n    onClientDisconnect: continue\n";
    env.register("p.yaml", &Env::behave_profile("sampleApp", "", types));
    env.ok(
        "soamsession",
        &["create", "--app", "sampleApp", "--type", "Keep", "--name", "nightly"],
    );
    let complete = |env: &Env, cmd: &str, words: &[&str]| {
        let o = env.cmd(cmd).env("COMPLETE", "fish").arg("--").args(words).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        complete(&env, "soamsession", &["soamsession", "reopen", "sampleApp:"]),
        "sampleApp:1\topen 0/0 done\nsampleApp:nightly\topen 0/0 done\n"
    );
    assert_eq!(complete(&env, "soamsession", &["soamsession", "close", "sam"]), "sampleApp:\n");
    assert_eq!(
        complete(&env, "soamview", &["soamview", "task", "x:1", "--state", ""]),
        "pending\nrunning\ndone\nerror\ncanceled\n"
    );
    env.stop_agent(libc::SIGTERM);
    let offered = complete(&env, "soamcontrol", &["soamcontrol", "app", "enable", ""]);
    assert!(offered.lines().all(|l| l.starts_with("--")), "only flags: {offered}");
}

/// Errors that say what to do: a misspelt application gets the name meant; submit
/// with nothing to read but the terminal says it is reading tasks from it.
#[test]
fn errors_suggest_the_name_meant_and_submit_says_it_reads_the_terminal() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("sampleApp", "", ""));
    let e = env.fails("soamsession", &["submit", "--app", "sampelApp", "--task", "x"]);
    assert_eq!(
        e,
        "soamsession: unknown application 'sampelApp'; did you mean 'sampleApp'? (soamview app lists them)"
    );
    let e = env.fails("soamview", &["session", "sampleap"]);
    assert!(e.contains("did you mean 'sampleApp'?"), "{e}");
    // Nothing close: no suggestion.
    let e = env.fails("soamcontrol", &["app", "disable", "zzz"]);
    assert!(!e.contains("did you mean"), "{e}");
    // On a terminal, stdin read for tasks is said (here ended by the pty's end of input;
    // no task, nothing to do).
    let (code, out) = env.in_terminal(100, "soamsession submit --app sampleApp");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("reading tasks from the terminal, one per line; end with Ctrl-D"),
        "{out}"
    );
    // Piped input: not a word of it.
    let o = env.run_stdin("soamsession", &["submit", "--app", "sampleApp"], "x\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "x\n");
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn soam_worker_answers_help_and_says_it_is_not_run_by_hand() {
    let worker = env!("CARGO_BIN_EXE_soam-worker");
    let o = Command::new(worker).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("soamd starts it as a job step"));
    let o = Command::new(worker).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(worker).env_remove("SOAM_WORKER_CONNECT").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not by hand"));
}

/// A reader that stops early (`| head`) leaves the session open with what it did not
/// take, and the command says so and how to collect the rest.
#[test]
fn a_reader_that_goes_away_leaves_the_rest_undelivered_and_says_how_to_collect_it() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    // More than a pipe holds: the command meets the closed pipe while writing.
    let line = "x".repeat(200);
    let inputs: String = (0..20_000).map(|i| format!("{i}{line}\n")).collect();
    std::fs::write(env.path("in.txt"), inputs).unwrap();
    let input = env.path("in.txt");
    let (first, o) = env.first_line_then_close("soamsession", &["submit", "--app", "a", "--input-file", input.to_str().unwrap()]);
    assert!(first.ends_with(&format!("{line}\n")), "{first}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("of 20000 outputs; session a:1 stays open, detached, with the rest undelivered"),
        "{err}"
    );
    assert!(err.contains("soamsession reopen a:1"), "{err}");
    // The rest is there for a later reopen, which closes the session once it has it all.
    let rest = env.ok("soamsession", &["reopen", "a:1"]);
    let written: u64 = err.split("after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(written < 20_000, "{err}");
    assert!(
        rest.lines().count() as u64 >= 20_000 - written,
        "{} lines after {written}",
        rest.lines().count()
    );
    assert!(env.session("a", 1).is_none(), "closed by the reopen that took the rest");
}

/// With --json, an error is one JSON object on stderr (kind, message, exit) beside the
/// exit code, a usage error too; without it, one line of text.
#[test]
fn errors_are_json_when_json_was_asked_for() {
    let env = Env::new();
    let o = env.run("soamview", &["task", "nosuch:1", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).expect("one JSON object on stderr");
    assert_eq!(err["error"]["kind"], "unknown-app", "{err}");
    assert_eq!(err["error"]["exit"], 1);
    assert!(err["error"]["message"].as_str().unwrap().contains("nosuch"), "{err}");
    let o = env.run("soamview", &["session", "--state", "bogus", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).expect("one JSON object on stderr");
    assert_eq!(
        (err["error"]["kind"].as_str(), err["error"]["exit"].as_i64()),
        (Some("usage"), Some(2)),
        "{err}"
    );
    assert!(err["error"]["message"].as_str().unwrap().contains("bogus"), "{err}");
    // No agent: its own kind.
    let o = env
        .cmd("soamcontrol")
        .args(["agent", "status", "--json"])
        .env("SOAM_SOCKET", env.path("nobody.sock"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).expect("one JSON object on stderr");
    assert_eq!(err["error"]["kind"], "no-agent", "{err}");
    // Without --json: the plain line.
    let e = env.fails("soamview", &["task", "nosuch:1"]);
    assert!(e.starts_with("soamview: unknown application 'nosuch'"), "{e}");
}

/// `--state` takes a state in any case, and the count columns' headers (`PEND`, `ERR`)
/// for the task states they count.
#[test]
fn state_filters_take_any_case_and_the_headers_a_table_shows() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let id = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    let s = format!("a:{id}");
    env.ok("soamcontrol", &["session", "suspend", &s]);
    let o = env.run(
        "soamsession",
        &["submit", "--session", &s, "--task", "x", "--task", "y", "--detach"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for state in ["pending", "PEND", "Pending", "pend"] {
        let v = env.json("soamview", &["task", &s, "--state", state]);
        assert_eq!(v.as_array().unwrap().len(), 2, "--state {state}");
    }
    for state in ["ERR", "error", "canc", "Run"] {
        let v = env.json("soamview", &["task", &s, "--state", state]);
        assert_eq!(v.as_array().unwrap().len(), 0, "--state {state}");
    }
    let v = env.json("soamview", &["session", "--state", "SUSPENDED"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    // A misspelling is clap's usage error, which names the value meant.
    let o = env.run("soamview", &["task", &s, "--state", "pendng"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("a similar value exists: 'pending'"), "{e}");
}
