//! Metrics as a monitoring system uses them: `metricsAddress` in soamd.yaml, the agent
//! serving Prometheus text at `/metrics`, checked by `promtool check metrics` and scraped
//! by a real Prometheus server (Debian's `prometheus` package; .ci/run installs it).

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The address the agent says it serves metrics at, from its log.
fn metrics_addr(env: &Env) -> String {
    wait_for(15, "the agent to say where metrics are", || {
        let log = std::fs::read_to_string(env.path("agent-0.log")).ok()?;
        let at = log.find("metrics served at http://")? + "metrics served at http://".len();
        Some(log[at..].split('/').next()?.to_string())
    })
}

/// `GET path` over plain HTTP/1.1: (status, body).
fn get(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A sample's value: `name{labels}` exactly as the text has it.
fn value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{sample} not in:\n{text}"))
        .parse()
        .unwrap()
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        skip(&format!(
            "{tool} is not installed (Debian's prometheus package has it; .ci/run installs it)"
        ));
    }
    ok
}

fn env_with_metrics() -> Env {
    let mut env = Env::empty();
    std::fs::write(env.path("soamd.yaml"), "metricsAddress: 0\n").unwrap();
    env.start_agent();
    env
}

#[test]
fn metrics_count_what_happened_and_promtool_accepts_them() {
    let env = env_with_metrics();
    let addr = metrics_addr(&env);
    assert!(addr.starts_with("127.0.0.1:"), "a port alone is loopback's: {addr}");
    env.register("p.yaml", &Env::behave_profile("a", "", "    taskRetryLimit: 1\n"));
    // Three done, one failed after one retry, one still open with a task pending.
    env.run(
        "soamsession",
        &[
            "submit", "--app", "a", "--task", "x", "--task", "y", "--task", "z", "--task", "fail",
        ],
    );
    let sid = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    env.ok("soamcontrol", &["session", "suspend", &format!("a:{sid}")]);
    env.ok(
        "soamsession",
        &["submit", "--session", &format!("a:{sid}"), "--task", "later", "--detach"],
    );

    let (status, text) = get(&addr, "GET", "/metrics");
    assert_eq!(status, 200, "{text}");
    assert_eq!(value(&text, "soam_tasks_submitted_total{app=\"a\"}"), 5.0);
    assert_eq!(value(&text, "soam_tasks_done_total{app=\"a\"}"), 3.0);
    assert_eq!(value(&text, "soam_tasks_failed_total{app=\"a\"}"), 1.0);
    assert_eq!(value(&text, "soam_tasks_retried_total{app=\"a\"}"), 1.0);
    assert_eq!(value(&text, "soam_sessions_created_total{app=\"a\"}"), 2.0);
    assert_eq!(value(&text, "soam_sessions_ended_total{app=\"a\",state=\"closed\"}"), 1.0);
    assert_eq!(value(&text, "soam_sessions{app=\"a\",state=\"suspended\"}"), 1.0);
    assert_eq!(value(&text, "soam_tasks{app=\"a\",state=\"pending\"}"), 1.0);
    // Every ended task that ran is timed, in seconds.
    assert_eq!(value(&text, "soam_task_run_seconds_count{app=\"a\"}"), 4.0);
    assert_eq!(value(&text, "soam_task_queue_wait_seconds_bucket{app=\"a\",le=\"+Inf\"}"), 4.0);
    assert_eq!(value(&text, "soam_store_degraded"), 0.0);
    assert!(value(&text, "soam_store_bytes") > 0.0);
    assert!(value(&text, "soam_uptime_seconds") >= 0.0);
    assert!(
        text.contains(&format!("soam_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // Counters only go up: a second scrape after more work shows more.
    env.ok("soamsession", &["submit", "--app", "a", "--task", "w"]);
    let (_, again) = get(&addr, "GET", "/metrics");
    assert_eq!(value(&again, "soam_tasks_done_total{app=\"a\"}"), 4.0);
    // Only GET /metrics.
    assert_eq!(get(&addr, "GET", "/").0, 404);
    assert_eq!(get(&addr, "POST", "/metrics").0, 405);

    if !have("promtool") {
        return;
    }
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    env.ok("soamsession", &["close", &format!("a:{sid}")]);
}

/// A free TCP port on loopback (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_real_prometheus_server_scrapes_the_agent() {
    if !have("prometheus") {
        return;
    }
    let env = env_with_metrics();
    let addr = metrics_addr(&env);
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.ok("soamsession", &["submit", "--app", "a", "--task", "x", "--task", "y"]);
    let web = format!("127.0.0.1:{}", free_port());
    let config = env.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: soam\n    static_configs:\n      - targets: [\"{addr}\"]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(env.path("prometheus.log")).unwrap();
    let mut server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", env.path("tsdb").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // What the server scraped, asked through its own query API.
    let got = std::panic::catch_unwind(|| {
        wait_for(60, "Prometheus to have scraped soam_tasks_done_total", || {
            let (status, body) = std::net::TcpStream::connect(&web)
                .ok()
                .map(|_| get(&web, "GET", "/api/v1/query?query=soam_tasks_done_total"))?;
            (status == 200 && body.contains("\"app\":\"a\"") && body.contains("\"2\"")).then_some(body)
        })
    });
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    let body = got.unwrap_or_else(|_| panic!("{}", std::fs::read_to_string(env.path("prometheus.log")).unwrap_or_default()));
    assert!(body.contains("\"job\":\"soam\""), "{body}");
}

#[test]
fn a_bad_or_taken_metrics_address_stops_the_start_with_one_line() {
    let env = Env::empty();
    let run = |yaml: &str| {
        std::fs::write(env.path("soamd.yaml"), yaml).unwrap();
        let o = Command::new(bin("soamd")).env("SOAM_HOME", env.path("")).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).trim().to_string())
    };
    let (code, err) = run("metricsAddress: here\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.ends_with("soamd.yaml:1: metricsAddress: 'here' is not valid (valid: PORT or ADDRESS:PORT)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, err) = run(&format!("metricsAddress: {port}\n"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("metricsAddress 127.0.0.1:{port}: cannot listen")), "{err}");
    assert!(!env.path("run/soamd.sock").exists(), "nothing served");
}

/// The starter Grafana dashboard (contrib/grafana) asks only for metrics the agent
/// serves: a renamed metric would leave a panel empty.
#[test]
fn the_grafana_dashboard_asks_for_metrics_the_agent_serves() {
    let env = env_with_metrics();
    let addr = metrics_addr(&env);
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    let (_, text) = get(&addr, "GET", "/metrics");
    let served: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana/soam-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("soam_"))
            {
                let family = name.trim_end_matches("_bucket");
                assert!(
                    served.contains(family),
                    "{name} (panel {}) is not served: {served:?}",
                    panel["title"]
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 12, "{asked}");
}
