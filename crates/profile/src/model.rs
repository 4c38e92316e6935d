//! The validated profile the agent works with. Every field is already defaulted and in
//! range; names follow Symphony's attributes in snake_case.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub application: String,
    pub consumer: Consumer,
    pub services: Vec<Service>,
    /// Always holds the system default type `""` (defined or implied).
    pub session_types: Vec<SessionType>,
    /// `FILE:LINE: what` for each part of the text read but not used, and each
    /// service whose program cannot be found now: shown by `soamreg`, never fatal.
    pub warnings: Vec<String>,
    /// `FILE:LINE: what` for each part not used that a warning stands for, folded (the
    /// stock `<Control>` settings): listed by `soamreg -v`.
    pub notes: Vec<String>,
}

impl Profile {
    pub fn session_type(&self, name: &str) -> Option<&SessionType> {
        self.session_types.iter().find(|t| t.name == name)
    }
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Proportion,
    MinimumServices,
    Priority,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Proportion => "proportion",
            Policy::MinimumServices => "minimumServices",
            Policy::Priority => "priority",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub policy: Policy,
    /// Instances this application may hold at once; `None` = all slots.
    pub max_slots: Option<u32>,
    /// Open sessions allowed at once; 0 = no limit.
    pub max_sessions: u32,
    pub transient_disconnection_timeout_s: u64,
    /// Instances of its default service kept started ahead of any session
    /// (`preStartApplication` with `numOfSlotsForPreloadedServices`); 0: none.
    pub preload: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Persistent,
    Exec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    Local,
    Slurm(SlurmOptions),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// As written (Slurm's own format), passed to `--time`.
    pub time_limit: Option<String>,
    /// The same in minutes; `None` when unset or unlimited.
    pub time_limit_min: Option<u64>,
    /// Nodes per allocation.
    pub nodes: u32,
    /// CPUs asked for on each node; `None`: whole nodes (`--exclusive`).
    pub cpus_per_node: Option<u32>,
    /// Memory per node, as Slurm's `--mem` takes it.
    pub memory: Option<String>,
    /// Allocations held at once for this service.
    pub max_allocations: u32,
    /// Seconds an allocation may sit with nothing to run before it is released.
    pub idle_release_s: u64,
    /// Further `salloc` options.
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    Retry,
    Fail,
    Succeed,
}

/// What happens to a service instance after an event of a method (Symphony's
/// `actionOnSI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAction {
    /// It goes on serving.
    KeepAlive,
    /// It is stopped; a new one starts when one is wanted.
    RestartService,
    /// It is stopped, and no instance of its application starts on its host again until
    /// the application is enabled again (`soamcontrol app enable`) or re-registered.
    BlockHost,
}

/// How a method can end, as `<Control>` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodEvent {
    /// It answered success (`<Return>`).
    Return = 0,
    /// It answered a retryable failure (`<Exception type="failure">`).
    Failure = 1,
    /// It answered a fatal failure (`<Exception type="fatal">`).
    Fatal = 2,
    /// Its process ended while it ran (`<Exit>`).
    Exit = 3,
    /// It ran over its timeout (`<Timeout>`).
    Timeout = 4,
}

impl MethodEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodEvent::Return => "return",
            MethodEvent::Failure => "failure",
            MethodEvent::Fatal => "fatal",
            MethodEvent::Exit => "exit",
            MethodEvent::Timeout => "timeout",
        }
    }
}

/// What an event does to the work in hand and to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub workload: FailureAction,
    pub instance: InstanceAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodControl {
    /// Seconds the method may take; 0 = no limit.
    pub timeout_s: u64,
    /// Each event's action with control code 0 (or none), by [`MethodEvent`] as index.
    pub on: [Action; 5],
    /// Actions for other control codes a service answers with: (event, code, action);
    /// only `Return`, `Failure` and `Fatal` carry codes.
    pub codes: Vec<(MethodEvent, i32, Action)>,
}

impl MethodControl {
    /// What `event` with control `code` does. A code the profile gives no action for
    /// acts as code 0 of the same event.
    pub fn action(&self, event: MethodEvent, code: i32) -> Action {
        if code != 0
            && let Some((_, _, a)) = self.codes.iter().find(|(e, c, _)| *e == event && *c == code)
        {
            return *a;
        }
        self.on[event as usize]
    }

    /// Whether a method succeeds exactly when its service answers success, whatever
    /// code it gives: no code makes a success fail, and no failure counts as success.
    pub fn success_is_the_reply(&self) -> bool {
        let all = |ev: MethodEvent| std::iter::once(self.on[ev as usize]).chain(self.codes.iter().filter(move |c| c.0 == ev).map(|c| c.2));
        all(MethodEvent::Return).all(|a| a.workload == FailureAction::Succeed)
            && all(MethodEvent::Failure)
                .chain(all(MethodEvent::Fatal))
                .all(|a| a.workload != FailureAction::Succeed)
    }
}

impl Default for MethodControl {
    /// Symphony's stock `<Control>` block, which real profiles carry: a return
    /// succeeds, a failure is retried and a fatal failure fails, with the instance kept;
    /// an exit or a timeout is retried on a new instance.
    fn default() -> Self {
        let a = |workload, instance| Action { workload, instance };
        MethodControl {
            timeout_s: 0,
            on: [
                a(FailureAction::Succeed, InstanceAction::KeepAlive),
                a(FailureAction::Retry, InstanceAction::KeepAlive),
                a(FailureAction::Fail, InstanceAction::KeepAlive),
                a(FailureAction::Retry, InstanceAction::RestartService),
                a(FailureAction::Retry, InstanceAction::RestartService),
            ],
            codes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    pub create_service: MethodControl,
    pub session_enter: MethodControl,
    pub invoke: MethodControl,
    pub session_update: MethodControl,
    pub session_leave: MethodControl,
    pub destroy_service: MethodControl,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub default: bool,
    pub mode: Mode,
    /// Program and arguments; a relative program path containing `/` is resolved
    /// against the profile's folder.
    pub command: Vec<String>,
    /// Absolute, or starting with a `${NAME}` that says where (see `vars`).
    pub work_dir: PathBuf,
    /// What `${SOAM_DEPLOY_DIR}` is for a service without a package: the profile's
    /// folder (the agent puts in the package's folder for one with a package).
    pub deploy_dir: PathBuf,
    /// The service package its files come from (`packageName`, deployed with
    /// `soamdeploy add`).
    pub package: Option<String>,
    pub env: BTreeMap<String, String>,
    pub launcher: Launcher,
    pub control: Control,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectAction {
    Abort,
    Suspend,
    Continue,
}

impl DisconnectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectAction::Abort => "abort",
            DisconnectAction::Suspend => "suspend",
            DisconnectAction::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskHistory {
    None,
    All,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionType {
    pub name: String,
    /// Resolved: the named service, or the default one.
    pub service_name: String,
    pub priority: u32,
    pub min_services: u32,
    pub recoverable: bool,
    pub session_retry_limit: u32,
    pub task_retry_limit: u32,
    pub task_grace_period_ms: u64,
    /// `None` = unlimited (-1).
    pub reclaim_grace_period_ms: Option<u64>,
    pub suspend_grace_period_ms: u64,
    pub task_cleanup_period_ms: u64,
    pub on_client_disconnect: DisconnectAction,
    pub abort_session_if_task_fail: bool,
    pub persist_session_history: bool,
    pub persist_task_history: TaskHistory,
    pub discard_results_on_delivery: bool,
    /// 0 = forever.
    pub idle_timeout_s: u64,
}

impl SessionType {
    /// The seed-001 defaults for a type named `name` bound to `service`.
    pub fn defaults(name: &str, service: &str) -> SessionType {
        SessionType {
            name: name.to_string(),
            service_name: service.to_string(),
            priority: 1,
            min_services: 0,
            recoverable: false,
            session_retry_limit: 3,
            task_retry_limit: 3,
            task_grace_period_ms: 100,
            reclaim_grace_period_ms: None,
            suspend_grace_period_ms: 100,
            task_cleanup_period_ms: 250,
            on_client_disconnect: DisconnectAction::Abort,
            abort_session_if_task_fail: false,
            persist_session_history: true,
            persist_task_history: TaskHistory::All,
            discard_results_on_delivery: true,
            idle_timeout_s: 0,
        }
    }
}
