//! Views of any size: a million-task session listed as a table and as JSON (in pages,
//! each under the message cap), listings that stop early (`| head`), and the agent
//! killed while a large listing is on its way.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

const MILLION: usize = 1_000_000;

/// A suspended session of `types`' type "Keep" holding `n` pending tasks.
fn session_with_tasks(env: &Env, n: usize, recoverable: bool) -> String {
    let types = format!("  - name: Keep\n    recoverable: {recoverable}\n    onClientDisconnect: continue\n");
    env.register("p.yaml", &Env::behave_profile("a", "", &types));
    let id = env
        .ok("soamsession", &["create", "--app", "a", "--type", "Keep"])
        .trim()
        .to_string();
    let sess = format!("a:{id}");
    env.ok("soamcontrol", &["session", "suspend", &sess]);
    let inputs = env.path("inputs.txt");
    let mut text = String::with_capacity(n * 8);
    for i in 0..n {
        text.push_str(&format!("{i}\n"));
    }
    std::fs::write(&inputs, text).unwrap();
    env.ok(
        "soamsession",
        &["submit", "--session", &sess, "--input-file", inputs.to_str().unwrap(), "--detach"],
    );
    sess
}

#[test]
fn a_million_task_session_lists_as_a_table_and_as_json() {
    let env = Env::new();
    let sess = session_with_tasks(&env, MILLION, false);
    // The table: a header and one line per task, in task order.
    let mut table = env.cmd("soamview").args(["task", &sess]).stdout(Stdio::piped()).spawn().unwrap();
    let (mut lines, mut last) = (0usize, 0u64);
    for line in BufReader::new(table.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        lines += 1;
        if lines == 1 {
            assert!(line.trim_start().starts_with("TASK"), "{line}");
            continue;
        }
        let id: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(id, last + 1, "tasks out of order at line {lines}");
        last = id;
        assert!(line.contains("pending"), "{line}");
    }
    assert!(table.wait().unwrap().success());
    assert_eq!(lines, MILLION + 1);
    // JSON: one array of a million objects.
    let v = env.json("soamview", &["task", &sess]);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), MILLION);
    assert_eq!(list[0]["task"], 1);
    assert_eq!(list[MILLION - 1]["task"], MILLION as u64);
    // A filter that matches nothing gives an empty listing (empty pages are covered by
    // the output unit test: a million tasks fit in one bounded scan).
    assert_eq!(
        env.json("soamview", &["task", &sess, "--state", "done"]).as_array().unwrap().len(),
        0
    );
    // A reader that stops early ends the listing quietly.
    let (first, o) = env.first_line_then_close("soamview", &["task", &sess]);
    let (status, err) = (o.status, String::from_utf8_lossy(&o.stderr));
    assert!(first.contains("TASK"), "{first}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    env.ok("soamsession", &["abort", &sess]);
}

#[test]
fn the_agent_killed_while_a_large_listing_is_sent_loses_nothing() {
    let mut env = Env::new();
    let n = 300_000;
    let sess = session_with_tasks(&env, n, true);
    for _ in 0..3 {
        let mut view = env
            .cmd("soamview")
            .args(["task", &sess, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Once the listing is flowing, kill the agent.
        let mut out = view.stdout.take().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        out.read_exact(&mut buf).unwrap();
        env.stop_agent(libc::SIGKILL);
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        let status = view.wait().unwrap();
        let mut err = String::new();
        view.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        // The listing either completed before the kill or ends with a one-line error
        // (JSON, as --json was asked for); it never hangs.
        if !status.success() {
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            let e: serde_json::Value = serde_json::from_str(err.trim()).expect("a JSON error");
            assert_eq!(e["error"]["exit"], status.code().unwrap(), "{err}");
        }
        env.start_agent();
        let s = env.session("a", sess[2..].parse().unwrap()).unwrap();
        assert_eq!(s["pending"], n as u64, "{s}");
    }
    assert_eq!(env.json("soamview", &["task", &sess]).as_array().unwrap().len(), n);
    env.ok("soamsession", &["abort", &sess]);
}

/// Sessions listed a page at a time come in (app, id) order, each once, whatever the
/// page size, the application filter or where a page starts; alike whether the page
/// says where the next starts after its rows (`ListSessionsPage`, protocol 3) or before
/// them (`ListSessionsAhead`, protocol 5).
#[test]
fn session_pages_walk_every_open_session_once_in_order() {
    use soam_lab::attack;
    use soam_proto::msg::{AgentFrame, Reply, Request, SessionQuery};
    let env = Env::new();
    for app in ["b", "a"] {
        env.register(&format!("{app}.yaml"), &Env::behave_profile(app, "", ""));
        for _ in 0..9 {
            env.ok("soamsession", &["create", "--app", app]);
        }
    }
    // One ended: not listed.
    env.ok("soamsession", &["close", "a:4"]);
    let mut s = attack::connect(&env.socket()).unwrap();
    let mut id = 0;
    let mut page = |ahead: bool, query: &SessionQuery, from: Option<(String, u64)>, limit: u32| {
        use std::io::Write;
        id += 1;
        let query = query.clone();
        let req = if ahead {
            Request::ListSessionsAhead { query, from, limit }
        } else {
            Request::ListSessionsPage { query, from, limit }
        };
        s.write_all(&attack::request(id, req)).unwrap();
        let (sessions, next) = match attack::read_msg::<AgentFrame>(&mut s).unwrap() {
            AgentFrame::Reply {
                result: Ok(Reply::SessionPage { sessions, next }),
                ..
            } if !ahead => (sessions, next),
            AgentFrame::Reply {
                result: Ok(Reply::SessionsAhead { next, sessions }),
                ..
            } if ahead => (sessions, next),
            other => panic!("unexpected {other:?}"),
        };
        (sessions.into_iter().map(|i| (i.app, i.id)).collect::<Vec<_>>(), next)
    };
    let key = |app: &str, id: u64| (app.to_string(), id);
    for ahead in [false, true] {
        let mut walk = |query: SessionQuery, limit: u32| {
            let (mut all, mut from) = (Vec::new(), None);
            loop {
                let (rows, next) = page(ahead, &query, from, limit);
                assert!(rows.len() <= limit as usize);
                all.extend(rows);
                match next {
                    Some(n) => from = Some(n),
                    None => return all,
                }
            }
        };
        let mut want: Vec<(String, u64)> = (1..=9).filter(|&i| i != 4).map(|i| ("a".to_string(), i)).collect();
        want.extend((1..=9).map(|i| ("b".to_string(), i)));
        for limit in [1, 3, 8, 17, 100] {
            assert_eq!(walk(SessionQuery::default(), limit), want, "limit {limit}, ahead {ahead}");
            let only_b = SessionQuery {
                app: Some("b".into()),
                ..Default::default()
            };
            assert_eq!(walk(only_b, limit), want[8..].to_vec(), "app b, limit {limit}, ahead {ahead}");
        }
        // With history (answered as a reply of values, not encoded row by row): the
        // ended session too.
        let with_ended = SessionQuery {
            all: true,
            ..Default::default()
        };
        want.insert(3, key("a", 4));
        assert_eq!(walk(with_ended, 5), want, "with history, ahead {ahead}");
        // Pages asked for out of turn (another start, size or filter than the last
        // page's next) are the ones asked for.
        let all = SessionQuery::default();
        let (first, next) = page(ahead, &all, None, 3);
        assert_eq!(
            (first, next.clone()),
            (vec![key("a", 1), key("a", 2), key("a", 3)], Some(key("a", 3)))
        );
        assert_eq!(
            page(ahead, &all, Some(key("a", 5)), 3).0,
            vec![key("a", 6), key("a", 7), key("a", 8)]
        );
        assert_eq!(page(ahead, &all, Some(key("a", 8)), 2).0, vec![key("a", 9), key("b", 1)]);
        assert_eq!(page(ahead, &all, Some(key("b", 1)), 1).0, vec![key("b", 2)]);
        let suspended = SessionQuery {
            state: Some(soam_proto::msg::SessionState::Suspended),
            ..Default::default()
        };
        assert_eq!(page(ahead, &suspended, Some(key("b", 2)), 1), (vec![], None));
        assert_eq!(page(ahead, &all, next, 3).0, vec![key("a", 5), key("a", 6), key("a", 7)]);
    }
}

/// A listing longer than a page (soamview asks for 1,000 sessions at a time and reads
/// each page's rows borrowed from its frame): every session once, in order, as a table
/// and as JSON, with the tag filter applied on every page.
#[test]
fn a_listing_of_many_pages_shows_every_session_once_in_order() {
    use soam_lab::attack;
    use soam_proto::msg::{AgentFrame, CreateSession, Reply, Request};
    use std::io::Write;
    let env = Env::new();
    env.register("a.yaml", &Env::behave_profile("a", "", ""));
    let n: u64 = 2_500;
    let tag = |i: u64| (i % 1000 == 7).then(|| "seven".to_string());
    let s = attack::connect(&env.socket()).unwrap();
    let mut w = s.try_clone().unwrap();
    // Written from another thread: the agent reads requests only as fast as its
    // replies are read.
    let writer = std::thread::spawn(move || {
        for i in 1..=n {
            let req = Request::CreateSession(CreateSession {
                app: "a".into(),
                session_type: None,
                name: None,
                tag: tag(i),
                common_data: Default::default(),
                direct: false,
                attach: false,
            });
            w.write_all(&attack::request(i, req)).unwrap();
        }
    });
    let mut r = s;
    for _ in 1..=n {
        match attack::read_msg::<AgentFrame>(&mut r).unwrap() {
            AgentFrame::Reply {
                result: Ok(Reply::Session(_)),
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.join().unwrap();
    let v = env.json("soamview", &["session"]);
    let ids: Vec<u64> = v.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>());
    let table = env.ok("soamview", &["session"]);
    let ids: Vec<u64> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "{}", table.lines().next().unwrap());
    let v = env.json("soamview", &["session", "--tag", "seven"]);
    let ids: Vec<u64> = v.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [7, 1007, 2007]);
}

#[test]
fn an_empty_listing_says_where_else_to_look_and_without_a_header_prints_nothing() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    assert_eq!(env.ok("soamview", &["session"]), "(no open sessions; -a also lists ended ones)\n");
    assert_eq!(
        env.ok("soamview", &["session", "--state", "suspended"]),
        "(no open session is suspended; -a also lists ended ones)\n"
    );
    assert_eq!(env.ok("soamview", &["session", "-a"]), "(none)\n");
    // Only rows: `| wc -l` counts sessions.
    assert_eq!(env.ok("soamview", &["session", "--no-header"]), "");
    assert_eq!(env.ok("soamview", &["session", "-a", "--no-header"]), "");
    let id = env.ok("soamsession", &["create", "--app", "a"]);
    let rows = env.ok("soamview", &["session", "--no-header"]);
    assert_eq!(rows.lines().count(), 1, "{rows}");
    assert!(rows.contains(id.trim()), "{rows}");
}

/// A terminal that reports 0x0 (a pty nobody sized, as `script` makes one) has no known
/// width: tables print whole, not squeezed into one-character columns.
#[test]
fn a_terminal_of_no_size_gets_whole_columns() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        skip("script (util-linux) is not installed");
        return;
    }
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.ok("soamsession", &["create", "--app", "a", "--name", "a-rather-long-session-name"]);
    let cmd = format!("stty size; {} session", bin("soamview").display());
    let o = std::process::Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .env("SOAM_HOME", env.home.path())
        .env("SOAM_NO_AUTOSTART", "1")
        .env("NO_COLOR", "1")
        .env_remove("SOAM_SOCKET")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("0 0"), "the pty is not 0x0: {text}");
    assert!(text.contains("a-rather-long-session-name"), "{text}");
    assert!(text.lines().any(|l| l.contains("NAME") && l.contains("STATE")), "{text}");
}

/// `--sort` by any name a column goes by, each one either way, in tables and JSON
/// alike; a name no column has is a usage error with the nearest.
#[test]
fn listings_sort_by_any_column_name_either_way() {
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    for name in ["b", "c", "a"] {
        env.ok("soamsession", &["create", "--app", "a", "--name", name]);
    }
    env.ok("soamcontrol", &["session", "suspend", "a:1"]);
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["session"];
        all.extend_from_slice(args);
        let v = env.json("soamview", &all);
        v.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids(&[]), [1, 2, 3], "the agent's order without --sort");
    assert_eq!(ids(&["--sort", "name"]), [3, 1, 2]);
    assert_eq!(ids(&["--sort", "-id"]), [3, 2, 1]);
    assert_eq!(ids(&["--sort=STATE,-ID"]), [3, 2, 1]);
    assert_eq!(ids(&["--sort", "state,id"]), [2, 3, 1]);
    // A time by its `_ms` key: newest first (two made in one millisecond keep id order).
    let v = env.json("soamview", &["session", "--sort", "-created_ms"]);
    let made: Vec<u64> = v.as_array().unwrap().iter().map(|r| r["created_ms"].as_u64().unwrap()).collect();
    assert!(made.windows(2).all(|w| w[0] >= w[1]), "{made:?}");
    // The table, by its header's name in another case: rows in that order.
    let table = env.ok("soamview", &["session", "--sort", "Name", "-o", "id,name", "--no-header"]);
    let firsts: Vec<&str> = table.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(firsts, ["3", "1", "2"], "{table}");
    let o = env.run("soamview", &["session", "--sort", "nmae"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown column 'nmae'; did you mean 'name'?"), "{err}");
}
