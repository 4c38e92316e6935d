//! YAML reader: serde-saphyr into `Raw*` structs whose values are `Spanned`, then copied
//! into the located draft. Unknown keys are refused by serde (`deny_unknown_fields`) and
//! the error's location gives the line.

use crate::ProfileError;
use crate::draft::*;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

type S<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfile {
    application: S<String>,
    consumer: Option<RawConsumer>,
    #[serde(default)]
    services: Vec<Spanned<RawService>>,
    #[serde(default)]
    session_types: Vec<Spanned<RawType>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConsumer {
    policy: S<String>,
    max_slots: S<i64>,
    max_sessions: S<i64>,
    transient_disconnection_timeout: S<i64>,
    pre_start_application: S<bool>,
    num_of_slots_for_preloaded_services: S<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawService {
    name: S<String>,
    default: S<bool>,
    mode: S<String>,
    command: S<Vec<String>>,
    work_dir: S<String>,
    package: S<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    launcher: S<String>,
    slurm: S<RawSlurm>,
    control: Option<RawControl>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSlurm {
    partition: S<String>,
    account: S<String>,
    qos: S<String>,
    time_limit: S<String>,
    nodes: S<i64>,
    cpus_per_node: S<i64>,
    memory: S<String>,
    max_allocations: S<i64>,
    idle_release: S<i64>,
    extra_args: S<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawControl {
    create_service: S<RawMethod>,
    session_enter: S<RawMethod>,
    invoke: S<RawMethod>,
    session_update: S<RawMethod>,
    session_leave: S<RawMethod>,
    destroy_service: S<RawMethod>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMethod {
    timeout: S<i64>,
    on_failure: S<String>,
    on: Option<Vec<Spanned<RawRule>>>,
}

/// One entry of a method's `on:` list: Symphony's `<Return>`, `<Exception>`, `<Exit>`
/// and `<Timeout>` in one shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    event: Spanned<String>,
    control_code: S<i64>,
    action_on_workload: S<String>,
    #[serde(rename = "actionOnSI")]
    action_on_si: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawType {
    name: S<String>,
    service_name: S<String>,
    priority: S<i64>,
    min_services: S<i64>,
    recoverable: S<bool>,
    session_retry_limit: S<i64>,
    task_retry_limit: S<i64>,
    task_grace_period: S<i64>,
    reclaim_grace_period: S<i64>,
    suspend_grace_period: S<i64>,
    task_cleanup_period: S<i64>,
    abort_session_if_client_disconnect: S<bool>,
    on_client_disconnect: S<String>,
    abort_session_if_task_fail: S<bool>,
    persist_session_history: S<String>,
    persist_task_history: S<String>,
    discard_results_on_delivery: S<bool>,
    idle_timeout: S<i64>,
}

/// A value of the wrong type, said as `key: 'value' is not ... (valid: ...)` rather than
/// in the YAML library's terms ("invalid i64"): the key and value are read from the
/// error's line. `None` when the error is of another kind or the line is no `key: value`.
fn type_error(text: &str, line: u64, msg: &str) -> Option<String> {
    let number = msg.starts_with("invalid i64") || msg.starts_with("invalid u64") || msg.contains("integer");
    let expected = if number {
        ""
    } else if msg.contains("bool") {
        "is not valid (valid: true | false)"
    } else if msg.contains("sequence") {
        "is not a list (valid: a list, e.g. [\"python3\", \"echo.py\"])"
    } else if msg.contains("string scalar") {
        "is not a single value (valid: one value, not a list or map)"
    } else {
        return None;
    };
    let l = text.lines().nth(line.checked_sub(1)? as usize)?;
    let (key, value) = l.trim_start().trim_start_matches("- ").split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    let value = value.split(" #").next().unwrap_or("").trim();
    if key.is_empty() || key.contains(' ') {
        return None;
    }
    if number {
        // The attribute's range, as its check would say it.
        return Some(format!("{key}: '{value}' {}", not_a_number(key)));
    }
    Some(format!("{key}: '{value}' {expected}"))
}

fn c<T>(s: S<T>) -> Option<L<T>> {
    s.map(|s| l(s.value, s.referenced.line()))
}

pub fn read(text: &str, file: &str) -> Result<Draft, ProfileError> {
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    let raw: RawProfile = serde_saphyr::from_str_with_options(text, opts).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        // The library's text may carry its own location suffix and several lines; keep one.
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or("invalid YAML").trim();
        let msg = msg.split(" at line ").next().unwrap_or(msg);
        ProfileError {
            file: file.to_string(),
            line,
            message: type_error(text, line, msg).unwrap_or_else(|| msg.to_string()),
        }
    })?;
    let consumer = raw.consumer.unwrap_or(RawConsumer {
        policy: None,
        max_slots: None,
        max_sessions: None,
        transient_disconnection_timeout: None,
        pre_start_application: None,
        num_of_slots_for_preloaded_services: None,
    });
    Ok(Draft {
        warnings: Vec::new(),
        notes: Vec::new(),
        application: c(raw.application),
        policy: c(consumer.policy),
        max_slots: c(consumer.max_slots),
        max_sessions: c(consumer.max_sessions),
        transient_disconnection_timeout: c(consumer.transient_disconnection_timeout),
        pre_start: c(consumer.pre_start_application),
        preloaded: c(consumer.num_of_slots_for_preloaded_services),
        services: raw
            .services
            .into_iter()
            .map(|s| {
                let line = s.referenced.line();
                let s = s.value;
                let slurm_line = s.slurm.as_ref().map(|b| b.referenced.line().max(1)).unwrap_or(0);
                let slurm = s.slurm.map(|b| b.value).unwrap_or_default();
                let mut control = Vec::new();
                if let Some(ctl) = s.control {
                    for (name, m) in [
                        ("createService", ctl.create_service),
                        ("sessionEnter", ctl.session_enter),
                        ("invoke", ctl.invoke),
                        ("sessionUpdate", ctl.session_update),
                        ("sessionLeave", ctl.session_leave),
                        ("destroyService", ctl.destroy_service),
                    ] {
                        if let Some(m) = m {
                            let mline = m.referenced.line();
                            let m = m.value;
                            control.push(DraftMethod {
                                name: l(name.to_string(), mline),
                                timeout: c(m.timeout),
                                on_failure: c(m.on_failure),
                                rules: m
                                    .on
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|r| {
                                        let line = r.referenced.line();
                                        let r = r.value;
                                        DraftRule {
                                            line,
                                            event: l(r.event.value, r.event.referenced.line()),
                                            code: c(r.control_code),
                                            workload: c(r.action_on_workload),
                                            instance: c(r.action_on_si),
                                        }
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
                DraftService {
                    line,
                    name: c(s.name),
                    default: c(s.default),
                    mode: c(s.mode),
                    command: c(s.command),
                    work_dir: c(s.work_dir),
                    package: c(s.package),
                    env: s.env.into_iter().collect(),
                    launcher: c(s.launcher),
                    slurm_line,
                    partition: c(slurm.partition),
                    account: c(slurm.account),
                    qos: c(slurm.qos),
                    time_limit: c(slurm.time_limit),
                    nodes: c(slurm.nodes),
                    cpus_per_node: c(slurm.cpus_per_node),
                    memory: c(slurm.memory),
                    max_allocations: c(slurm.max_allocations),
                    idle_release: c(slurm.idle_release),
                    extra_args: c(slurm.extra_args),
                    control,
                }
            })
            .collect(),
        session_types: raw
            .session_types
            .into_iter()
            .map(|t| {
                let line = t.referenced.line();
                let t = t.value;
                DraftType {
                    line,
                    name: c(t.name),
                    service_name: c(t.service_name),
                    priority: c(t.priority),
                    min_services: c(t.min_services),
                    recoverable: c(t.recoverable),
                    session_retry_limit: c(t.session_retry_limit),
                    task_retry_limit: c(t.task_retry_limit),
                    task_grace_period: c(t.task_grace_period),
                    reclaim_grace_period: c(t.reclaim_grace_period),
                    suspend_grace_period: c(t.suspend_grace_period),
                    task_cleanup_period: c(t.task_cleanup_period),
                    abort_session_if_client_disconnect: c(t.abort_session_if_client_disconnect),
                    on_client_disconnect: c(t.on_client_disconnect),
                    abort_session_if_task_fail: c(t.abort_session_if_task_fail),
                    persist_session_history: c(t.persist_session_history),
                    persist_task_history: c(t.persist_task_history),
                    discard_results_on_delivery: c(t.discard_results_on_delivery),
                    idle_timeout: c(t.idle_timeout),
                }
            })
            .collect(),
    })
}
