//! The agent's log and what services write on stderr: a service that fails at start says
//! why in the session's error and in soamview; its stderr lands in the log tagged with
//! application and instance; the log rotates by size; `soamcontrol agent log` reads it,
//! `-f` following it across rotations.

mod common;
use common::*;
use std::io::BufRead;
use std::process::Stdio;

#[test]
fn a_service_that_cannot_start_says_why_in_the_session_error_and_soamview() {
    let env = Env::new();
    env.register(
        "p.yaml",
        "application: broken\nservices:\n  - name: svc\n    command: [\"python3\", \"/nonexistent/soam-missing-service.py\"]\nsessionTypes:\n  - name: \"\"\n    sessionRetryLimit: 1\n",
    );
    let err = env.fails("soamsession", &["submit", "--app", "broken", "--task", "x"]);
    // Python's own words, from the service's stderr.
    assert!(err.contains("; stderr: ") && err.contains("python3: can't open file"), "{err}");
    assert!(err.contains("soam-missing-service.py"), "{err}");
    assert!(err.contains("failed twice: 1 retry, sessionRetryLimit 1"), "{err}");
    assert!(!err.contains("of 1 retries"), "{err}");

    let h = env.history("broken", 1).unwrap();
    let reason = h["reason"].as_str().unwrap();
    assert!(
        reason.contains("CreateService failed") || reason.contains("SessionEnter failed"),
        "{reason}"
    );
    assert!(
        reason.contains("can't open file '/nonexistent/soam-missing-service.py'"),
        "{reason}"
    );
    let table = env.ok("soamview", &["history", "broken", "-o", "id,reason"]);
    assert!(table.contains("can't open file"), "{table}");
    let all = env.json("soamview", &["session", "broken", "-a"]);
    assert!(all[0]["reason"].as_str().unwrap().contains("can't open file"), "{all}");

    // The log has each line once, tagged with the application and instance.
    let log = env.ok("soamcontrol", &["agent", "log", "-n", "500"]);
    let tagged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("service broken/") && l.contains("can't open file"))
        .collect();
    assert_eq!(tagged.len(), 2, "one line per failed start:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("retry 1 of 1")),
        "the retry is logged as such:\n{log}"
    );
}

/// An agent whose log rotates at 4 KiB keeping `keep` old files; `say:` tasks make its
/// service write a line on stderr each. One slot: each instance's stderr is read on its
/// own, so with two the lines of one could reach the log after the other's last, and the
/// last line said would not be the last logged (CI saw it pushed past two rotations).
fn rotating_env(keep: u32) -> Env {
    let mut env = Env::empty();
    env.slots = 1;
    std::fs::write(env.path("soamd.yaml"), format!("logMaxBytes: 4096\nlogKeep: {keep}\n")).unwrap();
    env.start_agent();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env
}

fn say_tasks(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("say:said-line-{i:04} {}\n", "x".repeat(60))).collect()
}

fn log_file(env: &Env, n: u32) -> std::path::PathBuf {
    let base = env.path("data/soamd.log");
    if n == 0 {
        base
    } else {
        std::path::PathBuf::from(format!("{}.{n}", base.display()))
    }
}

#[test]
fn the_log_rotates_by_size_and_agent_log_reads_across_the_rotation() {
    let env = rotating_env(2);
    let o = env.run_stdin("soamsession", &["submit", "--app", "a"], &say_tasks(0, 200));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (cur, one, two) = (log_file(&env, 0), log_file(&env, 1), log_file(&env, 2));
    // Stderr is read beside the replies: the last line may land after submit ends.
    let read = |p: &std::path::Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    wait_for_or(30, "the last line in the log", || {
        if [&cur, &one].iter().any(|p| read(p).contains("said-line-0199")) {
            return Ok(());
        }
        // The agent's stderr (agent-N.log) has every line unrotated: it tells a line the
        // agent never logged from one rotated further than expected.
        let stderr_copy = std::fs::read_dir(env.path(""))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("agent-"))
            .map(|e| read(&e.path()))
            .collect::<String>();
        let after = stderr_copy.lines().skip_while(|l| !l.contains("said-line-0199")).count();
        Err(format!(
            "the agent's stderr has it: {}, with {after} lines from it on; the log files end:{}",
            stderr_copy.contains("said-line-0199"),
            [&cur, &one, &two]
                .map(|p| {
                    let text = read(p);
                    let tail: Vec<&str> = text.lines().rev().take(3).collect();
                    format!("\n{}: {tail:?}", p.display())
                })
                .concat()
        ))
    });
    assert!(one.exists() && two.exists(), "rotated twice at least");
    assert!(!log_file(&env, 3).exists(), "logKeep: 2 keeps two old files");
    for p in [&cur, &one, &two] {
        // A rotation happens at a line's end, once past the limit.
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len < 4096 + 1024, "{} is {len} bytes", p.display());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
    }
    // More lines than the current file holds: the rest come from soamd.log.1, in order.
    // The agent may still be logging (the session's close, the service's last lines):
    // compared only when the files did not change while the command read them.
    let (out, want, cur_text, one_text) = wait_for(10, "the log files to hold still", || {
        let (cur_text, one_text) = (read(&cur), read(&one));
        // At least 5 lines of soamd.log.1, and as many as reach back to the 200th line
        // said: the agent may have logged more than 5 lines after it before rotating.
        let back = one_text.lines().rev().position(|l| l.contains("said-line-0199"));
        let want = cur_text.lines().count() + back.map_or(5, |i| (i + 1).max(5));
        let out = env.ok("soamcontrol", &["agent", "log", "-n", &want.to_string()]);
        (read(&cur) == cur_text && read(&one) == one_text).then_some((out, want, cur_text, one_text))
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), want, "{out}");
    let from_one = want - cur_text.lines().count();
    let one_lines: Vec<&str> = one_text.lines().collect();
    assert_eq!(&lines[..from_one], &one_lines[one_lines.len().saturating_sub(from_one)..]);
    assert_eq!(lines[from_one..].join("\n") + "\n", cur_text);
    // The 200th line said is the last of them in the log.
    let said: Vec<&str> = out.lines().filter(|l| l.contains("said-line-")).collect();
    assert!(said.iter().any(|l| l.contains("said-line-0199")), "{out}");
}

#[test]
fn agent_log_follow_goes_across_rotations_and_stops_quietly_when_its_reader_goes() {
    // Rotations come faster than -f looks (200 ms): it must go through each rotated
    // file in turn, not jump to the newest. Kept long enough that none is deleted.
    let env = rotating_env(20);
    let mut follow = env
        .cmd("soamcontrol")
        .args(["agent", "log", "-f", "-n", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    // Counts each said line until all 180 are in, then closes the pipe.
    let reader = std::thread::spawn(move || {
        let mut seen = std::collections::BTreeMap::<usize, usize>::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line
                .split("said-line-")
                .nth(1)
                .and_then(|r| r.get(..4))
                .and_then(|n| n.parse().ok())
            {
                *seen.entry(i).or_default() += 1;
            }
            if seen.len() == 180 {
                break;
            }
        }
        seen
    });
    // Three rounds, each past a rotation or two, while the follower reads.
    for round in 0..3 {
        let o = env.run_stdin("soamsession", &["submit", "--app", "a"], &say_tasks(round * 60, round * 60 + 60));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(log_file(&env, 2).exists(), "the log rotated while followed");
    wait_for(20, "every said line through -f", || reader.is_finished().then_some(()));
    let seen = reader.join().unwrap();
    assert_eq!(seen.len(), 180, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "each line once: {seen:?}");
    assert!(follow.try_wait().unwrap().is_none(), "-f goes on until stopped");
    // Its reader gone, it ends with 0 at its next write, not with a broken-pipe error.
    let o = env.run_stdin("soamsession", &["submit", "--app", "a"], &say_tasks(500, 520));
    assert!(o.status.success());
    let status = wait_for(20, "the follower to end", || follow.try_wait().unwrap());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut follow.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!((status.code(), err.as_str()), (Some(0), ""));
}

#[test]
fn agent_log_without_an_agent_ever_run_says_so_and_starts_none() {
    let env = Env::empty();
    let err = env.fails("soamcontrol", &["agent", "log"]);
    assert!(err.contains("no agent log at") && err.contains("soamd.log"), "{err}");
    assert!(!env.socket().exists(), "no agent was started");
}
