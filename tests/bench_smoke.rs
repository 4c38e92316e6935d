//! `soambench --quick --json` completes and prints one JSON object with every SPEC
//! section 12 key as a number. It checks the benchmark runs, never how fast.

#[test]
fn soambench_quick_prints_the_spec_keys() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_soambench"))
        .args(["--quick", "--json", "--slots", "2"])
        .env_remove("SOAM_SOCKET")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    for key in [
        "throughput_nonrecoverable_tasks_per_s",
        "throughput_recoverable_tasks_per_s",
        "exec_vs_xargs_ratio",
        "latency_p50_us",
        "latency_p99_us",
        "agent_rss_1m_tasks_mib",
        "restart_1m_tasks_s",
        "soamview_ms",
    ] {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key} missing or not a positive number in {v}"
        );
    }
}

/// `soambench --client --quick` runs the library and journal measurements, and the
/// journal's replay carried out every entry (it fails otherwise).
#[test]
fn soambench_client_quick_runs() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_soambench"))
        .args(["--quick", "--client", "--slots", "2"])
        .env_remove("SOAM_SOCKET")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    for key in [
        "throughput_raw_requests_tasks_per_s",
        "throughput_session_library_tasks_per_s",
        "throughput_session_library_atomic_submit_tasks_per_s",
        "journal_replay_tasks_per_s",
    ] {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key} missing or not a positive number in {v}"
        );
    }
}
