//! The rows views print: every field the agent sends, typed, with the agent's
//! millisecond times turned into [`Time`]s (kept beside as `*_ms` for scripts that want
//! numbers) and user ids into names. `--json` serialises these; tables pick columns.

use crate::cells::Cell;
use crate::output::{Col, Row, Time, col, list_col, text_col, time_col};
use serde::Serialize;
use soam_proto::msg::{AgentStatus, AllocInfo, AppInfo, SessionInfoRef, TaskInfo};

/// Its text borrowed from the agent's [`SessionInfoRef`] (in listings, from the very
/// frame the page came in: 10,000 rows were 50,000 strings copied, and freed again, for
/// nothing).
#[derive(Debug, Serialize)]
pub struct SessionRow<'a> {
    pub app: &'a str,
    pub id: u64,
    pub name: Option<&'a str>,
    pub tag: Option<&'a str>,
    #[serde(rename = "type")]
    pub session_type: &'a str,
    pub state: &'static str,
    pub priority: u32,
    pub recoverable: bool,
    pub direct: bool,
    pub pending: u64,
    pub running: u64,
    pub done: u64,
    pub error: u64,
    pub canceled: u64,
    pub undelivered: u64,
    pub created: Time,
    pub created_ms: u64,
    pub ended: Option<Time>,
    pub ended_ms: Option<u64>,
    pub holder: Option<&'a str>,
    pub orphaned: bool,
    pub owner: Option<&'a str>,
    pub owner_uid: u32,
    pub reason: Option<&'a str>,
}

impl Row for SessionRow<'_> {
    const COLUMNS: &'static [Col] = &[
        text_col("app"),
        col("id"),
        text_col("name"),
        text_col("tag"),
        text_col("type"),
        col("state"),
        col("priority").titled("PRIO"),
        col("recoverable").titled("RECOV"),
        col("direct"),
        col("pending").titled("PEND"),
        col("running").titled("RUN"),
        col("done"),
        col("error").titled("ERR"),
        col("canceled").titled("CANC"),
        col("undelivered").titled("UNDELIV"),
        time_col("created"),
        time_col("ended"),
        text_col("holder"),
        col("orphaned"),
        text_col("owner"),
        col("owner_uid"),
        text_col("reason"),
    ];
    const FIELDS: &'static [&'static str] = &[
        "app",
        "id",
        "name",
        "tag",
        "type",
        "state",
        "priority",
        "recoverable",
        "direct",
        "pending",
        "running",
        "done",
        "error",
        "canceled",
        "undelivered",
        "created",
        "created_ms",
        "ended",
        "ended_ms",
        "holder",
        "orphaned",
        "owner",
        "owner_uid",
        "reason",
    ];
    fn field(&self, i: usize, c: Cell<'_>) {
        match i {
            0 => c.put(&self.app),
            1 => c.put(&self.id),
            2 => c.put(&self.name),
            3 => c.put(&self.tag),
            4 => c.put(&self.session_type),
            5 => c.put(self.state),
            6 => c.put(&self.priority),
            7 => c.put(&self.recoverable),
            8 => c.put(&self.direct),
            9 => c.put(&self.pending),
            10 => c.put(&self.running),
            11 => c.put(&self.done),
            12 => c.put(&self.error),
            13 => c.put(&self.canceled),
            14 => c.put(&self.undelivered),
            15 => c.put(&self.created),
            16 => c.put(&self.created_ms),
            17 => c.put(&self.ended),
            18 => c.put(&self.ended_ms),
            19 => c.put(&self.holder),
            20 => c.put(&self.orphaned),
            21 => c.put(&self.owner),
            22 => c.put(&self.owner_uid),
            23 => c.put(&self.reason),
            _ => {}
        }
    }
}

/// `soamview session`'s columns unless `-o` says otherwise: fits 80 columns for
/// usual names.
pub const SESSION_DEFAULT: &[&str] = &[
    "app", "id", "name", "tag", "state", "pending", "running", "done", "error", "created",
];
/// `soamview history`'s.
pub const HISTORY_DEFAULT: &[&str] = &["app", "id", "name", "tag", "state", "done", "error", "ended", "reason"];

/// User names by uid, looked up once each.
#[derive(Default)]
pub struct Users(rustc_hash::FxHashMap<u32, Option<String>>);

impl Users {
    /// Looks up the names of these uids not looked up yet.
    pub fn load(&mut self, uids: impl IntoIterator<Item = u32>) {
        for uid in uids {
            self.0.entry(uid).or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            });
        }
    }

    /// The name of `uid`, if [`Users::load`] found one.
    pub fn name(&self, uid: u32) -> Option<&str> {
        self.0.get(&uid).and_then(|n| n.as_deref())
    }
}

impl<'a> SessionRow<'a> {
    /// `users` has loaded `s.owner_uid`.
    pub fn new(s: SessionInfoRef<'a>, users: &'a Users) -> SessionRow<'a> {
        SessionRow {
            app: s.app,
            id: s.id,
            name: s.name,
            tag: s.tag,
            session_type: s.session_type,
            state: s.state.as_str(),
            priority: s.priority,
            recoverable: s.recoverable,
            direct: s.direct,
            pending: s.pending,
            running: s.running,
            done: s.done,
            error: s.error,
            canceled: s.canceled,
            undelivered: s.undelivered,
            created: Time(s.created_ms),
            created_ms: s.created_ms,
            ended: s.ended_ms.map(Time),
            ended_ms: s.ended_ms,
            holder: s.holder,
            orphaned: s.orphaned,
            owner: users.name(s.owner_uid),
            owner_uid: s.owner_uid,
            reason: s.reason,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TaskRow {
    pub task: u64,
    pub state: &'static str,
    pub attempts: u32,
    pub submitted: Time,
    pub submitted_ms: u64,
    pub started: Option<Time>,
    pub started_ms: Option<u64>,
    pub ended: Option<Time>,
    pub ended_ms: Option<u64>,
    /// Seconds from its (last) start to its end.
    pub run_s: Option<f64>,
    pub input_bytes: u64,
    pub output_bytes: Option<u64>,
    pub delivered: bool,
    pub node: Option<String>,
    /// The whole error text in JSON; its first line in tables.
    pub error: Option<String>,
}

impl Row for TaskRow {
    const COLUMNS: &'static [Col] = &[
        col("task"),
        col("state"),
        col("attempts"),
        time_col("submitted"),
        time_col("started"),
        time_col("ended"),
        col("run_s"),
        col("input_bytes"),
        col("output_bytes"),
        col("delivered"),
        text_col("node"),
        text_col("error"),
    ];
    const FIELDS: &'static [&'static str] = &[
        "task",
        "state",
        "attempts",
        "submitted",
        "submitted_ms",
        "started",
        "started_ms",
        "ended",
        "ended_ms",
        "run_s",
        "input_bytes",
        "output_bytes",
        "delivered",
        "node",
        "error",
    ];
    fn field(&self, i: usize, c: Cell<'_>) {
        match i {
            0 => c.put(&self.task),
            1 => c.put(self.state),
            2 => c.put(&self.attempts),
            3 => c.put(&self.submitted),
            4 => c.put(&self.submitted_ms),
            5 => c.put(&self.started),
            6 => c.put(&self.started_ms),
            7 => c.put(&self.ended),
            8 => c.put(&self.ended_ms),
            9 => c.put(&self.run_s),
            10 => c.put(&self.input_bytes),
            11 => c.put(&self.output_bytes),
            12 => c.put(&self.delivered),
            13 => c.put(&self.node),
            14 => c.put(&self.error),
            _ => {}
        }
    }
}

pub const TASK_DEFAULT: &[&str] = &["task", "state", "attempts", "started", "run_s", "node", "error"];

impl TaskRow {
    /// `first_line`: the table shows one line of the error; JSON all of it.
    pub fn new(t: &TaskInfo, first_line: bool) -> TaskRow {
        let run_s = t.started_ms.zip(t.ended_ms).map(|(s, e)| e.saturating_sub(s) as f64 / 1000.0);
        let error = t.error.as_ref().map(|e| {
            if first_line {
                e.lines().next().unwrap_or("").to_string()
            } else {
                e.clone()
            }
        });
        TaskRow {
            task: t.task,
            state: t.state.as_str(),
            attempts: t.attempts,
            submitted: Time(t.submitted_ms),
            submitted_ms: t.submitted_ms,
            started: t.started_ms.map(Time),
            started_ms: t.started_ms,
            ended: t.ended_ms.map(Time),
            ended_ms: t.ended_ms,
            run_s,
            input_bytes: t.input_bytes,
            output_bytes: t.output_bytes,
            delivered: t.delivered,
            node: t.node.clone(),
            error,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppRow {
    pub app: String,
    pub state: &'static str,
    pub policy: String,
    /// Open sessions.
    pub sessions: u64,
    pub services: Vec<String>,
    pub session_types: Vec<String>,
    pub max_sessions: u32,
    pub max_slots: Option<u32>,
    pub registered: Time,
    pub registered_ms: u64,
    pub source: String,
}

impl Row for AppRow {
    const COLUMNS: &'static [Col] = &[
        text_col("app"),
        col("state"),
        text_col("policy"),
        col("sessions"),
        list_col("services"),
        list_col("session_types"),
        col("max_sessions"),
        col("max_slots"),
        time_col("registered"),
        text_col("source"),
    ];
}

pub const APP_DEFAULT: &[&str] = &["app", "state", "policy", "sessions", "services", "session_types"];
/// `soamview app -l`.
pub const APP_LONG: &[&str] = &[
    "app",
    "state",
    "policy",
    "sessions",
    "services",
    "session_types",
    "max_sessions",
    "max_slots",
    "registered",
    "source",
];

impl From<&AppInfo> for AppRow {
    fn from(a: &AppInfo) -> AppRow {
        AppRow {
            app: a.name.clone(),
            state: if a.enabled { "enabled" } else { "disabled" },
            policy: a.policy.clone(),
            sessions: a.open_sessions,
            services: a.services.clone(),
            session_types: a.session_types.clone(),
            max_sessions: a.max_sessions,
            max_slots: a.max_slots,
            registered: Time(a.registered_ms),
            registered_ms: a.registered_ms,
            source: a.source.clone(),
        }
    }
}

/// A Slurm allocation (`soamview cluster`): the agent's record as it is.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct AllocRow(pub AllocInfo);

impl Row for AllocRow {
    const COLUMNS: &'static [Col] = &[
        col("job_id"),
        text_col("app"),
        text_col("service"),
        col("state"),
        text_col("reason"),
        list_col("nodes"),
        col("slots"),
        col("busy"),
        col("time_left_s"),
    ];
}

pub const ALLOC_DEFAULT: &[&str] = &[
    "job_id",
    "app",
    "service",
    "state",
    "reason",
    "nodes",
    "slots",
    "busy",
    "time_left_s",
];

/// `soamcontrol agent status`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct StatusRow(pub AgentStatus);

/// A deployed service package (`soamdeploy view`): its current version.
#[derive(Debug, Serialize)]
pub struct PackageRow {
    pub package: String,
    /// The current version: the first characters of its SHA-256.
    pub version: String,
    pub sha256: String,
    pub files: u64,
    pub bytes: u64,
    pub archive_bytes: u64,
    pub versions: u32,
    pub added: Time,
    pub added_ms: u64,
}

impl Row for PackageRow {
    const COLUMNS: &'static [Col] = &[
        text_col("package"),
        col("version"),
        col("sha256"),
        col("files"),
        col("bytes"),
        col("archive_bytes"),
        col("versions"),
        time_col("added"),
    ];
}

pub const PACKAGE_DEFAULT: &[&str] = &["package", "version", "files", "bytes", "versions", "added"];

impl From<&soam_proto::msg::PackageInfo> for PackageRow {
    fn from(p: &soam_proto::msg::PackageInfo) -> PackageRow {
        PackageRow {
            package: p.name.clone(),
            version: p.sha256.chars().take(12).collect(),
            sha256: p.sha256.clone(),
            files: p.files,
            bytes: p.bytes,
            archive_bytes: p.archive_bytes,
            versions: p.versions,
            added: Time(p.added_ms),
            added_ms: p.added_ms,
        }
    }
}
