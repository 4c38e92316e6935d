//! The located intermediate form both readers produce, and the one validator.
//!
//! Readers only copy what the file says, each value with its line; they decide nothing.
//! [`validate`] applies ranges, enumerations, cross-references and defaults.

use crate::ProfileError;
use crate::model::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every whole-number attribute and its valid range, as the seed gives them: what
/// `validate` checks, and what a reader names when a value is not a number at all.
pub(crate) const RANGES: &[(&str, i64, i64)] = &[
    ("maxSlots", 1, 100_000),
    ("maxSessions", 0, 1_000_000),
    ("transientDisconnectionTimeout", 0, 31_536_000),
    ("numOfSlotsForPreloadedServices", 1, 10_000),
    ("timeout", 0, 31_536_000),
    ("priority", 1, 10_000),
    ("minServices", 0, 10_000),
    ("sessionRetryLimit", 0, u32::MAX as i64),
    ("taskRetryLimit", 0, u32::MAX as i64),
    ("taskGracePeriod", 0, i64::MAX),
    ("reclaimGracePeriod", -1, i64::MAX),
    ("suspendGracePeriod", 0, i64::MAX),
    ("taskCleanupPeriod", 0, i64::MAX),
    ("idleTimeout", 0, i64::MAX),
    ("nodes", 1, 10_000),
    ("cpusPerNode", 1, 100_000),
    ("maxAllocations", 1, 10_000),
    ("idleRelease", 0, 31_536_000),
];

/// The valid range of whole-number attribute `key`.
pub fn int_range(key: &str) -> Option<(i64, i64)> {
    RANGES
        .iter()
        .find(|(k, ..)| k.eq_ignore_ascii_case(key))
        .map(|&(_, lo, hi)| (lo, hi))
}

/// A range as errors say it: `1 to 10000`, `0 or more`.
pub fn range_text(lo: i64, hi: i64) -> String {
    if hi >= u32::MAX as i64 {
        format!("{lo} or more")
    } else {
        format!("{lo} to {hi}")
    }
}

/// `(valid: ...)` for a value of `key` that is not a whole number.
pub fn not_a_number(key: &str) -> String {
    match int_range(key) {
        Some((lo, hi)) => format!("is not valid (valid: {})", range_text(lo, hi)),
        None => "is not a whole number (valid: a whole number)".to_string(),
    }
}

/// A value and the line it came from (1-based; 0 when unknown).
#[derive(Debug, Clone)]
pub struct L<T> {
    pub v: T,
    pub line: u64,
}

pub fn l<T>(v: T, line: u64) -> L<T> {
    L { v, line }
}

#[derive(Debug, Default)]
pub struct Draft {
    pub application: Option<L<String>>,
    pub policy: Option<L<String>>,
    pub max_slots: Option<L<i64>>,
    pub max_sessions: Option<L<i64>>,
    pub transient_disconnection_timeout: Option<L<i64>>,
    pub pre_start: Option<L<bool>>,
    pub preloaded: Option<L<i64>>,
    pub services: Vec<DraftService>,
    pub session_types: Vec<DraftType>,
    /// (line, what): parts of the text that were read but are not used, for the
    /// person registering the profile.
    pub warnings: Vec<(u64, String)>,
    /// (line, what): parts read but not used that one warning stands for (see
    /// `Profile::notes`).
    pub notes: Vec<(u64, String)>,
}

#[derive(Debug, Default)]
pub struct DraftService {
    pub line: u64,
    pub name: Option<L<String>>,
    pub default: Option<L<bool>>,
    pub mode: Option<L<String>>,
    pub command: Option<L<Vec<String>>>,
    pub work_dir: Option<L<String>>,
    pub package: Option<L<String>>,
    pub env: Vec<(String, String)>,
    pub launcher: Option<L<String>>,
    /// Where a `slurm:` block was given (0: none), so one under a local launcher can be
    /// refused at its line.
    pub slurm_line: u64,
    pub partition: Option<L<String>>,
    pub account: Option<L<String>>,
    pub qos: Option<L<String>>,
    pub time_limit: Option<L<String>>,
    pub nodes: Option<L<i64>>,
    pub cpus_per_node: Option<L<i64>>,
    pub memory: Option<L<String>>,
    pub max_allocations: Option<L<i64>>,
    pub idle_release: Option<L<i64>>,
    pub extra_args: Option<L<Vec<String>>>,
    pub control: Vec<DraftMethod>,
}

/// One `control` entry (YAML) or `<Method>` (XML).
#[derive(Debug)]
pub struct DraftMethod {
    pub name: L<String>,
    pub timeout: Option<L<i64>>,
    /// YAML's `onFailure` (and `<Method onFailure>`): the workload action of a failure,
    /// an exit and a timeout alike.
    pub on_failure: Option<L<String>>,
    /// `<Timeout>`'s own actions: XML keeps its duration in `timeout`.
    pub rules: Vec<DraftRule>,
}

impl DraftMethod {
    pub fn new(name: L<String>) -> DraftMethod {
        DraftMethod {
            name,
            timeout: None,
            on_failure: None,
            rules: Vec::new(),
        }
    }
}

/// One `<Return>`, `<Exception>`, `<Exit>` or `<Timeout>` (XML), or an entry of a
/// method's `on:` list (YAML).
#[derive(Debug)]
pub struct DraftRule {
    pub line: u64,
    pub event: L<String>,
    pub code: Option<L<i64>>,
    pub workload: Option<L<String>>,
    pub instance: Option<L<String>>,
}

#[derive(Debug, Default)]
pub struct DraftType {
    pub line: u64,
    pub name: Option<L<String>>,
    pub service_name: Option<L<String>>,
    pub priority: Option<L<i64>>,
    pub min_services: Option<L<i64>>,
    pub recoverable: Option<L<bool>>,
    pub session_retry_limit: Option<L<i64>>,
    pub task_retry_limit: Option<L<i64>>,
    pub task_grace_period: Option<L<i64>>,
    pub reclaim_grace_period: Option<L<i64>>,
    pub suspend_grace_period: Option<L<i64>>,
    pub task_cleanup_period: Option<L<i64>>,
    pub abort_session_if_client_disconnect: Option<L<bool>>,
    pub on_client_disconnect: Option<L<String>>,
    pub abort_session_if_task_fail: Option<L<bool>>,
    pub persist_session_history: Option<L<String>>,
    pub persist_task_history: Option<L<String>>,
    pub discard_results_on_delivery: Option<L<bool>>,
    pub idle_timeout: Option<L<i64>>,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: u64, message: impl Into<String>) -> ProfileError {
        ProfileError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn int(&self, v: &Option<L<i64>>, name: &str, lo: i64, hi: i64, default: i64) -> Result<i64, ProfileError> {
        // The readers name this range when a value is not a number at all.
        debug_assert_eq!(int_range(name), Some((lo, hi)), "RANGES disagrees with the check of {name}");
        match v {
            None => Ok(default),
            Some(L { v, line }) if *v < lo || *v > hi => {
                let range = range_text(lo, hi);
                Err(self.err(*line, format!("{name}: {v} is out of range (valid: {range})")))
            }
            Some(L { v, .. }) => Ok(*v),
        }
    }

    fn choice<T: Copy>(&self, v: &Option<L<String>>, name: &str, options: &[(&str, T)], default: T) -> Result<T, ProfileError> {
        let Some(L { v, line }) = v else { return Ok(default) };
        options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(v))
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let valid: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                self.err(*line, format!("{name}: '{v}' is not valid (valid: {})", valid.join(" | ")))
            })
    }

    fn name(&self, v: &L<String>, what: &str, allow_empty: bool) -> Result<(), ProfileError> {
        let n = v.v.chars().count();
        let printable = v.v.chars().all(|c| !c.is_control());
        if (!allow_empty && n == 0) || n > 256 || !printable {
            let lo = if allow_empty { 0 } else { 1 };
            return Err(self.err(
                v.line,
                format!("{what}: '{}' is not valid (valid: {lo}-256 printable characters)", v.v),
            ));
        }
        Ok(())
    }
}

const FAILURE_ACTIONS: &[(&str, FailureAction)] = &[
    ("retry", FailureAction::Retry),
    ("fail", FailureAction::Fail),
    ("succeed", FailureAction::Succeed),
];

const INSTANCE_ACTIONS: &[(&str, InstanceAction)] = &[
    ("keepAlive", InstanceAction::KeepAlive),
    ("restartService", InstanceAction::RestartService),
    ("blockHost", InstanceAction::BlockHost),
];

const EVENTS: &[(&str, MethodEvent)] = &[
    ("return", MethodEvent::Return),
    ("failure", MethodEvent::Failure),
    ("fatal", MethodEvent::Fatal),
    ("exit", MethodEvent::Exit),
    ("timeout", MethodEvent::Timeout),
];

/// A method's control from its entry: the stock actions, then `onFailure` for a
/// failure, an exit and a timeout alike, then each rule, whose parts left out are what
/// the event does with code 0 so far.
fn method_control(c: &Ctx, m: &DraftMethod) -> Result<MethodControl, ProfileError> {
    let mut out = MethodControl {
        timeout_s: c.int(&m.timeout, "timeout", 0, 31_536_000, 0)? as u64,
        ..MethodControl::default()
    };
    let method = m.name.v.to_ascii_lowercase();
    let no_workload = matches!(method.as_str(), "sessionleave" | "destroyservice");
    if let Some(f) = &m.on_failure {
        if no_workload {
            return Err(c.err(
                f.line,
                format!("onFailure: {} has no task or session to act on (valid: only timeout)", m.name.v),
            ));
        }
        let w = c.choice(&m.on_failure, "onFailure", FAILURE_ACTIONS, FailureAction::Retry)?;
        for ev in [MethodEvent::Failure, MethodEvent::Exit, MethodEvent::Timeout] {
            out.on[ev as usize].workload = w;
        }
    }
    let base = out.on;
    let mut seen: Vec<(MethodEvent, i64)> = Vec::new();
    for r in &m.rules {
        let event = c.choice(&Some(r.event.clone()), "event", EVENTS, MethodEvent::Return)?;
        let carries_code = matches!(event, MethodEvent::Return | MethodEvent::Failure | MethodEvent::Fatal);
        let code = match &r.code {
            Some(L { line, .. }) if !carries_code => {
                return Err(c.err(
                    *line,
                    format!(
                        "controlCode: {} carries no control code (valid: only return, failure and fatal)",
                        event.as_str()
                    ),
                ));
            }
            Some(L { v, line }) if *v < i32::MIN as i64 || *v > i32::MAX as i64 => {
                return Err(c.err(
                    *line,
                    format!("controlCode: {v} is out of range (valid: {} to {})", i32::MIN, i32::MAX),
                ));
            }
            Some(L { v, .. }) => *v,
            None => 0,
        };
        if seen.contains(&(event, code)) {
            return Err(c.err(
                r.line,
                format!(
                    "{} with control code {code} is given twice for {} (valid: once)",
                    event.as_str(),
                    m.name.v
                ),
            ));
        }
        seen.push((event, code));
        if no_workload && let Some(w) = &r.workload {
            return Err(c.err(w.line, format!("actionOnWorkload: {} has no task or session to act on", m.name.v)));
        }
        let mut a = base[event as usize];
        a.workload = c.choice(&r.workload, "actionOnWorkload", FAILURE_ACTIONS, a.workload)?;
        a.instance = c.choice(&r.instance, "actionOnSI", INSTANCE_ACTIONS, a.instance)?;
        if matches!(event, MethodEvent::Exit | MethodEvent::Timeout) && a.instance == InstanceAction::KeepAlive {
            let line = r.instance.as_ref().map_or(r.line, |i| i.line);
            return Err(c.err(
                line,
                format!(
                    "actionOnSI: an instance cannot be kept after {} (valid: restartService | blockHost)",
                    if event == MethodEvent::Exit {
                        "its process exited"
                    } else {
                        "a timeout: it is stopped"
                    }
                ),
            ));
        }
        if code == 0 {
            out.on[event as usize] = a;
        } else {
            out.codes.push((event, code as i32, a));
        }
    }
    Ok(out)
}

pub fn validate(d: Draft, file: &str, base: &Path) -> Result<Profile, ProfileError> {
    let c = Ctx { file };
    let app = d
        .application
        .ok_or_else(|| c.err(1, "application: missing (valid: 1-256 printable characters)"))?;
    c.name(&app, "application", false)?;
    if app.v.eq_ignore_ascii_case("all") {
        return Err(c.err(
            app.line,
            "application: 'all' is reserved (valid: any other 1-256 printable characters)",
        ));
    }
    let policy = c.choice(
        &d.policy,
        "policy",
        &[
            ("proportion", Policy::Proportion),
            ("minimumServices", Policy::MinimumServices),
            ("priority", Policy::Priority),
            // Symphony spells them R_Proportion etc.
            ("R_Proportion", Policy::Proportion),
            ("R_MinimumServices", Policy::MinimumServices),
            ("R_PriorityScheduling", Policy::Priority),
        ],
        Policy::Proportion,
    )?;
    let max_slots = match &d.max_slots {
        None => None,
        Some(_) => Some(c.int(&d.max_slots, "maxSlots", 1, 100_000, 0)? as u32),
    };
    let consumer = Consumer {
        policy,
        max_slots,
        max_sessions: c.int(&d.max_sessions, "maxSessions", 0, 1_000_000, 0)? as u32,
        transient_disconnection_timeout_s: c.int(
            &d.transient_disconnection_timeout,
            "transientDisconnectionTimeout",
            0,
            31_536_000,
            30,
        )? as u64,
        preload: match d.pre_start.as_ref().map(|b| b.v) {
            Some(true) => c.int(&d.preloaded, "numOfSlotsForPreloadedServices", 1, 10_000, 1)? as u32,
            // Symphony reads the count only with preStartApplication="true"; checked all the same.
            _ => {
                c.int(&d.preloaded, "numOfSlotsForPreloadedServices", 1, 10_000, 1)?;
                0
            }
        },
    };

    if d.services.is_empty() {
        return Err(c.err(1, "services: at least one service is required"));
    }
    let mut services = Vec::new();
    for s in &d.services {
        services.push(service(&c, s, base)?);
    }
    for (i, s) in services.iter().enumerate() {
        if services[..i].iter().any(|o| o.name == s.name) {
            return Err(c.err(
                d.services[i].line,
                format!("service '{}' is defined twice (valid: unique names)", s.name),
            ));
        }
    }
    let defaults: Vec<usize> = (0..services.len()).filter(|&i| services[i].default).collect();
    if defaults.len() > 1 {
        return Err(c.err(
            d.services[defaults[1]].line,
            format!(
                "default: services '{}' and '{}' are both default (valid: at most one default service)",
                services[defaults[0]].name, services[defaults[1]].name
            ),
        ));
    }
    let default_service = match (defaults.first(), services.len()) {
        (Some(&i), _) => services[i].name.clone(),
        (None, 1) => services[0].name.clone(),
        (None, _) => {
            return Err(c.err(
                d.services[1].line,
                "default: several services and none is default (valid: mark one with default: true)",
            ));
        }
    };

    let mut session_types: Vec<SessionType> = Vec::new();
    for t in &d.session_types {
        let st = session_type(&c, t, &services, &default_service)?;
        if session_types.iter().any(|o| o.name == st.name) {
            return Err(c.err(t.line, format!("session type '{}' is defined twice (valid: unique names)", st.name)));
        }
        session_types.push(st);
    }
    if !session_types.iter().any(|t| t.name.is_empty()) {
        session_types.insert(0, SessionType::defaults("", &default_service));
    }
    let mut warnings: Vec<String> = d.warnings.iter().map(|(line, w)| format!("{file}:{line}: {w}")).collect();
    for (s, d) in services.iter().zip(&d.services) {
        if let Some(w) = missing_program(s) {
            let line = d.command.as_ref().map_or(d.line, |c| c.line);
            warnings.push(format!("{file}:{line}: {w}"));
        }
    }
    Ok(Profile {
        application: app.v,
        consumer,
        services,
        session_types,
        warnings,
        notes: d.notes.iter().map(|(line, w)| format!("{file}:{line}: {w}")).collect(),
    })
}

/// Why a local service's program will not start, if it can be told now: a path that
/// is not an executable file, or a name found on no folder of `PATH`. A warning, not
/// an error: the program may be installed after the profile is registered.
fn missing_program(s: &Service) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if matches!(s.launcher, Launcher::Slurm(_)) {
        // Its program is looked for on the compute nodes.
        return None;
    }
    let prog = &s.command[0];
    if prog.contains("${") {
        // Known only where the instance starts; a name nothing defines is warned of
        // on its own (`Service::undefined`).
        return None;
    }
    let runnable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if prog.contains('/') {
        let p = if Path::new(prog).is_absolute() {
            PathBuf::from(prog)
        } else {
            s.work_dir.join(prog)
        };
        return (!runnable(&p)).then(|| {
            let why = if p.exists() {
                "is not an executable file"
            } else {
                "does not exist"
            };
            format!(
                "service '{}': its program {} {why}; its instances will fail to start",
                s.name,
                p.display()
            )
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| runnable(&d.join(prog)));
    (!found).then(|| {
        format!(
            "service '{}': its program '{prog}' is on no folder of the agent's PATH; its instances will fail to start",
            s.name
        )
    })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn service(c: &Ctx, s: &DraftService, base: &Path) -> Result<Service, ProfileError> {
    let name = s
        .name
        .as_ref()
        .ok_or_else(|| c.err(s.line, "service name: missing (valid: 1-256 printable characters)"))?;
    c.name(name, "service name", false)?;
    let mode = c.choice(
        &s.mode,
        "mode",
        &[("persistent", Mode::Persistent), ("exec", Mode::Exec)],
        Mode::Persistent,
    )?;
    let command = s.command.as_ref().ok_or_else(|| {
        c.err(
            s.line,
            format!("service '{}': command missing (valid: a list, program first)", name.v),
        )
    })?;
    if command.v.is_empty() || command.v[0].is_empty() {
        return Err(c.err(command.line, "command: empty (valid: a list, program first)"));
    }
    let mut cmd = command.v.clone();
    // "./svc" and "services/echo.py" are the profile's own files; "python3" is looked up
    // on PATH; "${SOAM_DEPLOY_DIR}/svc" is where the variable says when the instance starts.
    if cmd[0].contains('/') && !cmd[0].starts_with("${") {
        cmd[0] = resolve(base, &cmd[0]).display().to_string();
    }
    let work_dir = match s.work_dir.as_ref().map(|w| w.v.as_str()).unwrap_or(".") {
        w if w.starts_with("${") => PathBuf::from(w),
        w => resolve(base, w),
    };
    let launcher = match c.choice(&s.launcher, "launcher", &[("local", false), ("slurm", true)], false)? {
        false if slurm_given(s) > 0 => {
            return Err(c.err(
                slurm_given(s),
                "slurm: only for a service with launcher: slurm (this one runs locally)",
            ));
        }
        false => Launcher::Local,
        true => Launcher::Slurm(slurm_options(c, s)?),
    };
    let mut control = Control::default();
    for m in &s.control {
        let slot = match m.name.v.to_ascii_lowercase().as_str() {
            "createservice" => &mut control.create_service,
            "sessionenter" => &mut control.session_enter,
            "invoke" => &mut control.invoke,
            "sessionupdate" => &mut control.session_update,
            "sessionleave" => &mut control.session_leave,
            "destroyservice" => &mut control.destroy_service,
            _ => {
                return Err(c.err(m.name.line, format!(
                    "control: unknown method '{}' (valid: createService | sessionEnter | invoke | sessionUpdate | sessionLeave | destroyService)",
                    m.name.v)));
            }
        };
        *slot = method_control(c, m)?;
    }
    Ok(Service {
        name: name.v.clone(),
        default: s.default.as_ref().map(|d| d.v).unwrap_or(false),
        mode,
        command: cmd,
        work_dir,
        deploy_dir: base.to_path_buf(),
        package: match &s.package {
            Some(p) => {
                c.name(p, "packageName", false)?;
                Some(p.v.clone())
            }
            None => None,
        },
        env: s.env.iter().cloned().collect::<BTreeMap<_, _>>(),
        launcher,
        control,
    })
}

fn session_type(c: &Ctx, t: &DraftType, services: &[Service], default_service: &str) -> Result<SessionType, ProfileError> {
    let name = t.name.clone().unwrap_or(l(String::new(), t.line));
    c.name(&name, "session type name", true)?;
    let service_name = match &t.service_name {
        None => default_service.to_string(),
        Some(s) => {
            if !services.iter().any(|x| x.name == s.v) {
                let valid: Vec<&str> = services.iter().map(|x| x.name.as_str()).collect();
                return Err(c.err(
                    s.line,
                    format!("serviceName: '{}' names no service (valid: {})", s.v, valid.join(" | ")),
                ));
            }
            s.v.clone()
        }
    };
    let d = SessionType::defaults(&name.v, &service_name);
    let max = i64::MAX;
    let bool_action = t
        .abort_session_if_client_disconnect
        .as_ref()
        .map(|b| if b.v { DisconnectAction::Abort } else { DisconnectAction::Continue });
    let named_action = match &t.on_client_disconnect {
        None => None,
        Some(_) => Some(c.choice(
            &t.on_client_disconnect,
            "onClientDisconnect",
            &[
                ("abort", DisconnectAction::Abort),
                ("suspend", DisconnectAction::Suspend),
                ("continue", DisconnectAction::Continue),
            ],
            DisconnectAction::Abort,
        )?),
    };
    let on_client_disconnect = match (bool_action, named_action) {
        (Some(b), Some(n)) if b != n => {
            let line = t.on_client_disconnect.as_ref().map(|x| x.line).unwrap_or(t.line);
            return Err(c.err(line, format!(
                "onClientDisconnect: '{}' disagrees with abortSessionIfClientDisconnect: {} (valid: abort with true, continue with false, or give only one)",
                n.as_str(), b == DisconnectAction::Abort)));
        }
        (_, Some(n)) => n,
        (Some(b), None) => b,
        (None, None) => d.on_client_disconnect,
    };
    let persist_session_history = c.choice(
        &t.persist_session_history,
        "persistSessionHistory",
        &[("all", true), ("none", false)],
        true,
    )?;
    let persist_task_history = c.choice(
        &t.persist_task_history,
        "persistTaskHistory",
        &[
            ("none", TaskHistory::None),
            ("all", TaskHistory::All),
            ("error", TaskHistory::Error),
        ],
        TaskHistory::All,
    )?;
    if !persist_session_history && persist_task_history != TaskHistory::None {
        let line = t
            .persist_task_history
            .as_ref()
            .or(t.persist_session_history.as_ref())
            .map(|x| x.line)
            .unwrap_or(t.line);
        return Err(c.err(line, "persistTaskHistory: task history needs persistSessionHistory: all (valid: persistTaskHistory: none, or persistSessionHistory: all)"));
    }
    let task_grace = c.int(&t.task_grace_period, "taskGracePeriod", 0, max, 100)? as u64;
    let reclaim = c.int(&t.reclaim_grace_period, "reclaimGracePeriod", -1, max, -1)?;
    Ok(SessionType {
        priority: c.int(&t.priority, "priority", 1, 10_000, 1)? as u32,
        min_services: c.int(&t.min_services, "minServices", 0, 10_000, 0)? as u32,
        recoverable: t.recoverable.as_ref().map(|b| b.v).unwrap_or(false),
        session_retry_limit: c.int(&t.session_retry_limit, "sessionRetryLimit", 0, u32::MAX as i64, 3)? as u32,
        task_retry_limit: c.int(&t.task_retry_limit, "taskRetryLimit", 0, u32::MAX as i64, 3)? as u32,
        task_grace_period_ms: task_grace,
        reclaim_grace_period_ms: if reclaim < 0 { None } else { Some(reclaim as u64) },
        // Seed 001: suspendGracePeriod, when given, overrides taskGracePeriod for suspends.
        suspend_grace_period_ms: c.int(&t.suspend_grace_period, "suspendGracePeriod", 0, max, task_grace as i64)? as u64,
        task_cleanup_period_ms: c.int(&t.task_cleanup_period, "taskCleanupPeriod", 0, max, 250)? as u64,
        on_client_disconnect,
        abort_session_if_task_fail: t.abort_session_if_task_fail.as_ref().map(|b| b.v).unwrap_or(false),
        persist_session_history,
        persist_task_history,
        discard_results_on_delivery: t.discard_results_on_delivery.as_ref().map(|b| b.v).unwrap_or(true),
        idle_timeout_s: c.int(&t.idle_timeout, "idleTimeout", 0, max, 0)? as u64,
        ..d
    })
}

/// The line of the `slurm:` block, or of the first Slurm setting (XML has them as
/// attributes); 0 if there is none.
fn slurm_given(s: &DraftService) -> u64 {
    let strings = [&s.partition, &s.account, &s.qos, &s.time_limit, &s.memory];
    let ints = [&s.nodes, &s.cpus_per_node, &s.max_allocations, &s.idle_release];
    let lines = strings
        .iter()
        .filter_map(|v| v.as_ref().map(|v| v.line))
        .chain(ints.iter().filter_map(|v| v.as_ref().map(|v| v.line)))
        .chain(s.extra_args.as_ref().map(|v| v.line));
    if s.slurm_line > 0 {
        s.slurm_line
    } else {
        lines.min().map(|l| l.max(1)).unwrap_or(0)
    }
}

/// The `slurm:` keys of a service with `launcher: slurm`, checked the way Slurm would
/// take them, so a mistake shows at `soamreg` with its line and not as a refused
/// allocation later.
fn slurm_options(c: &Ctx, s: &DraftService) -> Result<SlurmOptions, ProfileError> {
    let word = |v: &Option<L<String>>, name: &str| -> Result<Option<String>, ProfileError> {
        let Some(L { v, line }) = v else { return Ok(None) };
        if v.is_empty() || v.len() > 256 || v.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(c.err(*line, format!("{name}: '{v}' is not valid (valid: 1 to 256 characters, no spaces)")));
        }
        Ok(Some(v.clone()))
    };
    let time_limit = match &s.time_limit {
        None => None,
        Some(L { v, line }) => match slurm_minutes(v) {
            Some(m) => Some((v.clone(), m)),
            None => {
                return Err(c.err(
                    *line,
                    format!(
                        "timeLimit: '{v}' is not a Slurm time (valid: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS, DAYS-HOURS:MINUTES, DAYS-HOURS:MINUTES:SECONDS, UNLIMITED)"
                    ),
                ));
            }
        },
    };
    let memory = match &s.memory {
        None => None,
        Some(L { v, line }) => {
            let digits = v.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || v.len() - digits.len() > 1 {
                return Err(c.err(
                    *line,
                    format!("memory: '{v}' is not valid (valid: megabytes per node, or a number with K, M, G or T)"),
                ));
            }
            Some(v.clone())
        }
    };
    let extra_args = match &s.extra_args {
        None => Vec::new(),
        Some(L { v, line }) => {
            if let Some(bad) = v.iter().find(|a| !a.starts_with('-')) {
                return Err(c.err(
                    *line,
                    format!("extraArgs: '{bad}' is not an option (valid: salloc options, each starting with -)"),
                ));
            }
            v.clone()
        }
    };
    Ok(SlurmOptions {
        partition: word(&s.partition, "partition")?,
        account: word(&s.account, "account")?,
        qos: word(&s.qos, "qos")?,
        time_limit_min: time_limit.as_ref().and_then(|t| t.1),
        time_limit: time_limit.map(|t| t.0),
        nodes: c.int(&s.nodes, "nodes", 1, 10_000, 1)? as u32,
        cpus_per_node: s
            .cpus_per_node
            .as_ref()
            .map(|_| c.int(&s.cpus_per_node, "cpusPerNode", 1, 100_000, 1))
            .transpose()?
            .map(|n| n as u32),
        memory,
        max_allocations: c.int(&s.max_allocations, "maxAllocations", 1, 10_000, 4)? as u32,
        idle_release_s: c.int(&s.idle_release, "idleRelease", 0, 31_536_000, 60)? as u64,
        extra_args,
    })
}

/// Minutes in a Slurm time limit (`None` inside: unlimited); `None` if Slurm would not
/// parse it. Formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
pub fn slurm_minutes(t: &str) -> Option<Option<u64>> {
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return Some(None);
    }
    let num = |x: &str| -> Option<u64> {
        (!x.is_empty() && x.len() <= 9 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
    };
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, t),
    };
    let parts: Vec<u64> = rest.split(':').map(num).collect::<Option<_>>()?;
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86_400 + h * 3600,
        (Some(d), [h, m]) => d * 86_400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86_400 + h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(Some(secs.div_ceil(60)))
}
