//! `soambench --quick` modes complete and print one JSON object with their keys as
//! positive numbers. It checks the benchmark runs, never how fast.

/// Runs soambench with `args` and checks `keys` in its JSON.
fn keys_are_numbers(args: &[&str], keys: &[&str]) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_soambench"))
        .args(args)
        .env_remove("SOAM_SOCKET")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    for key in keys {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key} missing or not a positive number in {v}"
        );
    }
}

/// Every SPEC section 12 key.
#[test]
fn soambench_quick_prints_the_spec_keys() {
    keys_are_numbers(
        &["--quick", "--json", "--slots", "2"],
        &[
            "throughput_nonrecoverable_tasks_per_s",
            "throughput_recoverable_tasks_per_s",
            "exec_vs_xargs_ratio",
            "latency_p50_us",
            "latency_p99_us",
            "agent_rss_1m_tasks_mib",
            "agent_rss_1m_tasks_at_submit_mib",
            "restart_1m_tasks_s",
            "soamview_ms",
            "latency_floor_p50_us",
            "latency_floor_p99_us",
            "latency_floor_duplex_p50_us",
            "latency_floor_duplex_p99_us",
            "latency_bare_client_p50_us",
            "latency_bare_client_p99_us",
            "latency_bare_client_p50_vs_floor",
            "latency_bare_client_cpu_us_per_task",
            "latency_p999_us",
            "latency_floor_p999_us",
            "latency_after_idle_p50_us",
            "latency_floor_after_idle_p50_us",
            "latency_p50_vs_floor",
            "latency_p99_vs_floor",
            "payload_1mib_mb_per_s",
            "payload_floor_mb_per_s",
            "payload_vs_floor",
        ],
    );
}

/// The library and journal measurements; the journal's replay carried out every entry
/// (soambench fails otherwise).
#[test]
fn soambench_client_quick_runs() {
    keys_are_numbers(
        &["--quick", "--client", "--slots", "2"],
        &[
            "throughput_raw_requests_tasks_per_s",
            "throughput_session_library_tasks_per_s",
            "throughput_session_library_atomic_submit_tasks_per_s",
            "journal_replay_tasks_per_s",
        ],
    );
}

/// The scale measurements: busy sessions at once, and listings over many sessions.
#[test]
fn soambench_scale_quick_prints_its_keys() {
    keys_are_numbers(
        &["--quick", "--scale", "--json", "--slots", "2"],
        &[
            "throughput_one_session_tasks_per_s",
            "throughput_10_sessions_tasks_per_s",
            "throughput_1k_sessions_tasks_per_s",
            "throughput_10k_sessions_tasks_per_s",
            "throughput_10k_sessions_vs_one",
            "soamview_10k_sessions_ms",
            "soamview_1m_tasks_ms",
        ],
    );
}

/// One very large session and a restart with as many recoverable tasks pending.
#[test]
fn soambench_big_quick_prints_its_keys() {
    keys_are_numbers(
        &["--quick", "--big", "--json", "--slots", "2"],
        &[
            "throughput_big_session_tasks_per_s",
            "agent_rss_10m_tasks_mib",
            "agent_rss_10m_pending_mib",
            "restart_10m_tasks_s",
        ],
    );
}
