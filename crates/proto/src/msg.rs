//! Every message that crosses the agent's socket.
//!
//! Requests carry a client-chosen id and get exactly one [`AgentFrame::Reply`] with it,
//! except [`Request::Ack`], which is fire-and-forget so that acknowledging outputs never
//! costs a round trip. Events arrive unasked, interleaved with replies.

use crate::addr::{SessionRef, TaskRef};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// First frame on every connection, from the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// Always `*b"SOAM"`: lets the agent tell a soam client from a stray writer at once.
    pub magic: [u8; 4],
    pub version: u32,
    /// Free text ("soamsession submit"), shown as the holder of a session.
    pub client: String,
}

pub const MAGIC: [u8; 4] = *b"SOAM";

/// The agent's answer to [`Hello`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Welcome {
    Ok { version: u32, agent_version: String },
    Refused { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: u64,
    pub req: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// `profile` is the file's text; `path` its absolute location, so relative paths in
    /// it resolve and errors can name the file.
    RegisterApp {
        profile: String,
        path: String,
        force: bool,
    },
    UnregisterApp {
        app: String,
        force: bool,
    },
    ListApps {
        app: Option<String>,
    },
    SetAppEnabled {
        app: String,
        enabled: bool,
    },
    CreateSession(CreateSession),
    /// Takes the session for this connection; queued outputs follow as events.
    OpenSession {
        session: SessionRef,
        direct: bool,
        all: bool,
    },
    Submit {
        session: SessionRef,
        #[serde(
            serialize_with = "crate::frame::shared::serialize_all",
            deserialize_with = "crate::frame::bounded::tasks"
        )]
        tasks: Vec<Bytes>,
    },
    /// No reply: outputs acknowledged are delivered for good.
    Ack {
        session: SessionRef,
        #[serde(deserialize_with = "crate::frame::bounded::ids")]
        tasks: Vec<u64>,
    },
    Detach {
        session: SessionRef,
    },
    Close {
        session: SessionRef,
    },
    Abort {
        session: SessionRef,
    },
    UpdateCommonData {
        session: SessionRef,
        data: Bytes,
    },
    ListSessions(SessionQuery),
    ListTasks {
        session: SessionRef,
        state: Option<TaskState>,
    },
    History {
        app: Option<String>,
    },
    /// The kept task history of an ended session.
    TaskHistory {
        session: SessionRef,
    },
    SessionControl {
        session: SessionRef,
        action: SessionAction,
    },
    TaskControl {
        task: TaskRef,
        action: TaskAction,
    },
    Status,
    /// Liveness check for long-running clients; answered `Ok`.
    Ping,
    Shutdown,
    /// The Slurm allocations held or asked for (`soamview cluster`).
    ListCluster,
    /// Give an allocation back (`soamcontrol cluster release JOB`); an admin act.
    ReleaseAllocation {
        job: u64,
    },
    // Protocol 3: listings in pages, so a view of any size fits the frame cap and costs
    // the agent a bounded amount of work per request.
    /// Up to `limit` tasks from `from` (0 first, then the previous page's `next`).
    ListTasksPage {
        session: SessionRef,
        state: Option<TaskState>,
        from: u64,
        limit: u32,
    },
    /// A page of an ended session's kept task history.
    TaskHistoryPage {
        session: SessionRef,
        from: u64,
        limit: u32,
    },
    /// A page of sessions, in (app, id) order, after `from`.
    ListSessionsPage {
        query: SessionQuery,
        from: Option<(String, u64)>,
        limit: u32,
    },
    /// A page of applications, in name order, after `from`; pages also end at about
    /// 4 MiB of profile text.
    ListAppsPage {
        app: Option<String>,
        from: Option<String>,
        limit: u32,
    },
    /// Tasks held back on this connection until its next `Submit` to the session, which
    /// then accepts them together with its own tasks, all or none: one submission too
    /// large for a frame is still refused whole. Dropped if the connection ends first.
    Stage {
        session: SessionRef,
        #[serde(
            serialize_with = "crate::frame::shared::serialize_all",
            deserialize_with = "crate::frame::bounded::tasks"
        )]
        tasks: Vec<Bytes>,
    },
    // Protocol 4.
    /// `req` made idempotent by a client-chosen id: a `Submit` or `CreateSession` the
    /// agent has already carried out under this id (in that session, or in that
    /// application) is answered with its first result and not done again, so a client
    /// that lost the connection before the reply can simply send it again. Other
    /// requests are carried out as if unwrapped. Never nested.
    Once {
        request: RequestId,
        #[serde(deserialize_with = "crate::frame::bounded::once")]
        req: Box<Request>,
    },
    // Protocol 5.
    /// [`Request::ListSessionsPage`], answered with [`Reply::SessionsAhead`]: where the
    /// next page starts comes before the rows, so a client can ask for that page
    /// before it reads this one (a listing then costs the agent's pages or the
    /// client's reading of them, whichever is longer, not both one after the other).
    ListSessionsAhead {
        query: SessionQuery,
        from: Option<(String, u64)>,
        limit: u32,
    },
    // Protocol 6.
    /// Bytes of a service package, appended to this connection's upload (begun by the
    /// first); gone with the connection unless a `DeployPackage` takes them.
    PackageChunk {
        data: Bytes,
    },
    /// Deploys this connection's upload as the current version of package `name`
    /// (`soamdeploy add`), answered with [`Reply::Packages`] holding it.
    DeployPackage {
        name: String,
    },
    /// Removes package `name` and its versions (`soamdeploy remove`).
    RemovePackage {
        name: String,
    },
    /// Deployed packages (`soamdeploy view`), or one: [`Reply::Packages`].
    ListPackages {
        name: Option<String>,
    },
    // Protocol 7.
    /// Events as they happen, for as long as the connection lasts (`soamview events`):
    /// [`Event::Watched`] for each change of a session's or a task's state, an instance
    /// started or ended and an allocation's change, narrowed to `app` (and its session
    /// `session`) when given; [`Event::Dropped`] where the connection fell behind.
    /// Answered [`Reply::Ok`]. A shared agent sends a user only their own sessions' and
    /// instances' events (admins get all).
    Watch {
        app: Option<String>,
        session: Option<u64>,
    },
    /// The agent's figures now (`soamview top`): [`Reply::Figures`].
    Figures,
}

/// A client-chosen request id (random, 128 bits): see [`Request::Once`].
pub type RequestId = [u8; 16];

/// `RequestId` as text: 32 hexadecimal digits.
pub fn request_id_text(id: &RequestId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The most rows a page carries, whatever `limit` a client asks for.
pub const PAGE_ROWS: u32 = 50_000;

/// About how many bytes a page fills before it ends early (rows with long error text,
/// profiles): with the frame's envelope it stays far under [`crate::frame::MAX_FRAME`].
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Error text in task listings is cut at this many bytes: a view is for finding a
/// failure, the whole output is delivered with the task.
pub const VIEW_ERROR_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSession {
    pub app: String,
    pub session_type: Option<String>,
    pub name: Option<String>,
    pub tag: Option<String>,
    pub common_data: Bytes,
    pub direct: bool,
    /// Keep the session held by this connection (submit) rather than detached (create).
    pub attach: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionQuery {
    pub app: Option<String>,
    /// Include ended sessions (from history).
    pub all: bool,
    pub state: Option<SessionState>,
    pub orphaned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionAction {
    Suspend,
    Resume,
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskAction {
    Kill,
    Requeue,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AgentFrame {
    /// A failure here carries only its text: protocol 3 and older.
    Reply {
        id: u64,
        result: Result<Reply, String>,
    },
    Event(Event),
    /// Protocol 4: a refused request, with what kind of failure it was, so a program
    /// can act on it without reading the text. The agent sends it to clients of
    /// protocol 4 and later, and the plain [`AgentFrame::Reply`] error to older ones.
    Failed {
        id: u64,
        kind: ErrorKind,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Registered {
        app: String,
        created: bool,
        warnings: Vec<String>,
    },
    Apps(Vec<AppInfo>),
    Session(SessionInfo),
    /// `to_deliver`: outputs queued for this holder at the moment it opened.
    Opened {
        session: SessionInfo,
        to_deliver: u64,
    },
    /// Ids `first..first+count` were given to the tasks, in submission order.
    Submitted {
        first: u64,
        count: u64,
    },
    Sessions(Vec<SessionInfo>),
    Tasks(Vec<TaskInfo>),
    Status(AgentStatus),
    Cluster(Vec<AllocInfo>),
    // Protocol 3.
    /// `next`: where the following page starts; `None` at the end.
    TaskPage {
        tasks: Vec<TaskInfo>,
        next: Option<u64>,
    },
    SessionPage {
        sessions: Vec<SessionInfo>,
        next: Option<(String, u64)>,
    },
    AppPage {
        apps: Vec<AppInfo>,
        next: Option<String>,
    },
    /// How many tasks this connection now holds staged for the session.
    Staged {
        count: u64,
    },
    // Protocol 5.
    /// A page of sessions answering [`Request::ListSessionsAhead`]: `SessionPage`'s
    /// fields with `next` first.
    SessionsAhead {
        next: Option<(String, u64)>,
        sessions: Vec<SessionInfo>,
    },
    // Protocol 6.
    Packages(Vec<PackageInfo>),
    // Protocol 7.
    Figures(AgentFigures),
}

/// A deployed service package's current version, as `soamdeploy view` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageInfo {
    pub name: String,
    /// The current version's SHA-256, in hex.
    pub sha256: String,
    /// The archive's size.
    pub archive_bytes: u64,
    /// Files (and folders and links) and bytes once unpacked.
    pub files: u64,
    pub bytes: u64,
    pub added_ms: u64,
    /// Versions kept, the current one included.
    pub versions: u32,
}

/// One Slurm allocation of the agent's (or a refusal of one), as `soamview cluster`
/// shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllocInfo {
    /// Slurm's job id, once it gave one.
    pub job_id: Option<u64>,
    pub app: String,
    pub service: String,
    /// pending, running, draining, releasing, refused.
    pub state: String,
    /// Slurm's reason while pending, or its refusal.
    pub reason: String,
    pub nodes: Vec<String>,
    /// CPUs of its live workers.
    pub slots: u32,
    /// Instances on it with tasks.
    pub busy: u32,
    pub time_left_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    Outputs {
        app: String,
        session: u64,
        outputs: Vec<TaskOutput>,
    },
    /// The held session has no pending or running task and everything ended was sent.
    Drained { app: String, session: u64 },
    /// Another client opened the session; this connection may no longer act on it.
    TakenOver { app: String, session: u64 },
    /// The session ended while held (admin kill, task failure, profile update).
    Ended {
        app: String,
        session: u64,
        state: SessionState,
        reason: String,
    },
    // Protocol 7.
    /// Something a [`Request::Watch`] asked for happened.
    Watched(WatchEvent),
    /// `count` events were left out here: the connection was too far behind to take
    /// them (the agent never waits for a watcher).
    Dropped { count: u64 },
}

/// What `soamview top` shows of the agent: counts since it started (rates are their
/// differences between two asks) and figures now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFigures {
    pub uptime_s: u64,
    /// The agent's resident memory.
    pub rss_bytes: u64,
    pub connections: u64,
    /// Store commits since the agent started.
    pub commits: u64,
    pub store_bytes: u64,
    /// Why the store cannot be written, while it cannot.
    pub store_fault: Option<String>,
    pub apps: Vec<AppFigures>,
}

/// One application's part of [`AgentFigures`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFigures {
    pub app: String,
    /// Tasks accepted, and ended done or in error, since the agent started.
    pub submitted: u64,
    pub done: u64,
    pub failed: u64,
    pub pending: u64,
    pub running: u64,
    pub busy_instances: u64,
    pub idle_instances: u64,
    pub open_sessions: u64,
}

/// One change, as `soamview events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// When, in ms since the epoch.
    pub time_ms: u64,
    /// `session`, `task`, `instance` or `allocation`.
    pub kind: String,
    /// The application (empty for an allocation of no application).
    pub app: String,
    pub session: Option<u64>,
    pub task: Option<u64>,
    /// What it became: a session's or task's state; `started` or `ended` for an
    /// instance; an allocation's state.
    pub state: String,
    /// What else is known: why a session ended, a task's attempt, an instance's
    /// process and host, an allocation's job and nodes.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskOutput {
    pub task: u64,
    pub state: TaskState,
    pub attempts: u32,
    /// The output for `Done`; the failure message for `Error` and `Canceled`.
    #[serde(
        serialize_with = "crate::frame::shared::serialize",
        deserialize_with = "crate::frame::shared::payload"
    )]
    pub data: Bytes,
}

macro_rules! lower_enum {
    ($name:ident { $($(#[$doc:meta])* $variant:ident => $text:literal $(| $alias:literal)*),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$doc])* $variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let v = clap::builder::PossibleValue::new(self.as_str());
                Some(match self { $($name::$variant => v.aliases([$($alias),*] as [&str; _]),)* })
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($text $(| $alias)* => Ok($name::$variant),)*
                    _ => Err(format!("unknown {} '{}'; valid: {}", stringify!($name), s,
                        [$($text),*].join(", "))),
                }
            }
        }
    };
}

lower_enum!(ErrorKind {
    Other => "other",
    UnknownApp => "unknown-app",
    UnknownSession => "unknown-session",
    UnknownType => "unknown-type",
    /// Malformed or out-of-range input: a profile, a name, a task too large.
    Invalid => "invalid",
    /// A configured limit (maxStoredTasks, maxRecordBytes, maxSessions, staging).
    Limit => "limit",
    Permission => "permission",
    /// The store cannot be written; nothing was changed.
    StoreFault => "store-fault",
    /// Another client holds the session.
    TakenOver => "taken-over",
    /// The session has ended.
    Ended => "ended",
    /// A message this agent does not take in this form.
    Protocol => "protocol",
});

lower_enum!(SessionState {
    Open => "open",
    Suspended => "suspended",
    Reconnecting => "reconnecting",
    Closed => "closed",
    Aborted => "aborted",
});

impl SessionState {
    pub fn is_ended(self) -> bool {
        matches!(self, SessionState::Closed | SessionState::Aborted)
    }
}

// The short forms are the count columns' headers (PEND, RUN, ERR, CANC), so that what
// a table shows can be typed back (`--state err`).
lower_enum!(TaskState {
    Pending => "pending" | "pend",
    Running => "running" | "run",
    Done => "done",
    Error => "error" | "err",
    Canceled => "canceled" | "canc" | "cancelled",
});

impl TaskState {
    pub fn is_ended(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Error | TaskState::Canceled)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub app: String,
    pub id: u64,
    pub name: Option<String>,
    pub tag: Option<String>,
    pub session_type: String,
    pub state: SessionState,
    pub priority: u32,
    pub recoverable: bool,
    pub direct: bool,
    pub pending: u64,
    pub running: u64,
    pub done: u64,
    pub error: u64,
    pub canceled: u64,
    /// Ended tasks whose output no holder has acknowledged yet.
    pub undelivered: u64,
    pub created_ms: u64,
    pub ended_ms: Option<u64>,
    /// Who holds the session now, if anyone ("pid 1234 soamsession submit").
    pub holder: Option<String>,
    /// Detached, idle, with output nobody collected: an admin should look at it.
    pub orphaned: bool,
    pub owner_uid: u32,
    /// Why it ended, where it did.
    pub reason: Option<String>,
}

/// A [`SessionInfo`] borrowing its text: it serializes to the very same bytes (field
/// for field, `&str` as `String`), so the agent encodes a page of a listing straight
/// from its sessions, and a client reads one straight from the frame, without a copy of
/// every name made and freed for each row.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SessionInfoRef<'a> {
    pub app: &'a str,
    pub id: u64,
    #[serde(borrow)]
    pub name: Option<&'a str>,
    #[serde(borrow)]
    pub tag: Option<&'a str>,
    pub session_type: &'a str,
    pub state: SessionState,
    pub priority: u32,
    pub recoverable: bool,
    pub direct: bool,
    pub pending: u64,
    pub running: u64,
    pub done: u64,
    pub error: u64,
    pub canceled: u64,
    pub undelivered: u64,
    pub created_ms: u64,
    pub ended_ms: Option<u64>,
    #[serde(borrow)]
    pub holder: Option<&'a str>,
    pub orphaned: bool,
    pub owner_uid: u32,
    #[serde(borrow)]
    pub reason: Option<&'a str>,
}

impl SessionInfo {
    /// Borrowed, as a page's rows are read.
    pub fn view(&self) -> SessionInfoRef<'_> {
        SessionInfoRef {
            app: &self.app,
            id: self.id,
            name: self.name.as_deref(),
            tag: self.tag.as_deref(),
            session_type: &self.session_type,
            state: self.state,
            priority: self.priority,
            recoverable: self.recoverable,
            direct: self.direct,
            pending: self.pending,
            running: self.running,
            done: self.done,
            error: self.error,
            canceled: self.canceled,
            undelivered: self.undelivered,
            created_ms: self.created_ms,
            ended_ms: self.ended_ms,
            holder: self.holder.as_deref(),
            orphaned: self.orphaned,
            owner_uid: self.owner_uid,
            reason: self.reason.as_deref(),
        }
    }
}

impl SessionInfoRef<'_> {
    pub fn to_owned(&self) -> SessionInfo {
        SessionInfo {
            app: self.app.to_string(),
            id: self.id,
            name: self.name.map(str::to_string),
            tag: self.tag.map(str::to_string),
            session_type: self.session_type.to_string(),
            state: self.state,
            priority: self.priority,
            recoverable: self.recoverable,
            direct: self.direct,
            pending: self.pending,
            running: self.running,
            done: self.done,
            error: self.error,
            canceled: self.canceled,
            undelivered: self.undelivered,
            created_ms: self.created_ms,
            ended_ms: self.ended_ms,
            holder: self.holder.map(str::to_string),
            orphaned: self.orphaned,
            owner_uid: self.owner_uid,
            reason: self.reason.map(str::to_string),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskInfo {
    pub task: u64,
    pub state: TaskState,
    pub attempts: u32,
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub input_bytes: u64,
    pub output_bytes: Option<u64>,
    pub error: Option<String>,
    pub delivered: bool,
    /// The cluster node its latest attempt ran on; `None` when it ran on the agent's
    /// host (or has not run).
    pub node: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: String,
    pub enabled: bool,
    pub policy: String,
    pub services: Vec<String>,
    pub session_types: Vec<String>,
    pub open_sessions: u64,
    pub max_sessions: u32,
    pub max_slots: Option<u32>,
    pub registered_ms: u64,
    pub source: String,
    pub profile: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentStatus {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub uptime_s: u64,
    pub slots: u32,
    pub instances: u32,
    pub busy_instances: u32,
    pub apps: u32,
    pub open_sessions: u32,
    pub store: String,
    pub socket: String,
}

impl AgentFrame {
    /// About how many bytes this frame takes queued and on the wire: enough to bound
    /// what a connection that does not read its replies can make the agent hold,
    /// without encoding it twice. Lists count their rows at a generous fixed size plus
    /// their variable text.
    pub fn approx_size(&self) -> usize {
        const ROW: usize = 128;
        match self {
            AgentFrame::Reply { result: Err(e), .. } | AgentFrame::Failed { message: e, .. } => 16 + e.len(),
            AgentFrame::Reply { result: Ok(r), .. } => match r {
                Reply::Apps(apps) => apps
                    .iter()
                    .map(|a| ROW + a.profile.len() + a.source.len() + a.name.len() + 32 * (a.services.len() + a.session_types.len()))
                    .sum(),
                Reply::Cluster(a) => a.len() * 2 * ROW,
                Reply::Sessions(s) | Reply::SessionPage { sessions: s, .. } | Reply::SessionsAhead { sessions: s, .. } => s.len() * 2 * ROW,
                Reply::AppPage { apps, .. } => apps
                    .iter()
                    .map(|a| ROW + a.profile.len() + a.source.len() + a.name.len() + 32 * (a.services.len() + a.session_types.len()))
                    .sum(),
                Reply::Tasks(t) | Reply::TaskPage { tasks: t, .. } => {
                    t.len() * ROW + t.iter().map(|t| t.error.as_ref().map_or(0, String::len)).sum::<usize>()
                }
                Reply::Registered { warnings, .. } => ROW + warnings.iter().map(String::len).sum::<usize>(),
                _ => 2 * ROW,
            },
            AgentFrame::Event(Event::Outputs { outputs, .. }) => 32 + outputs.iter().map(|o| 16 + o.data.len()).sum::<usize>(),
            AgentFrame::Event(Event::Ended { reason, .. }) => 32 + reason.len(),
            AgentFrame::Event(_) => 32,
        }
    }
}
