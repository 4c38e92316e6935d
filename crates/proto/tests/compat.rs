//! The wire layout, pinned. Messages are positional postcard: an enum value travels as
//! its index, a struct as its fields in order. So a peer of an older release keeps
//! understanding this one only while (1) enums grow at their end and nothing in them
//! moves, and (2) structs in messages do not change at all unless the protocol version
//! is bumped (and [`MIN_PROTOCOL_VERSION`] with it when old clients can no longer be
//! served). This test reads the layout from the types themselves and fails on any other
//! change; docs/compatibility.md says how to make one.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use soam_proto::msg::*;
use soam_proto::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use std::cell::RefCell;

thread_local! {
    static SEEN: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// A deserializer that only records the names serde asks for (an enum's variants, a
/// struct's fields) and then stops.
struct Probe;

#[derive(Debug)]
struct Stop;
impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("probe")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Stop;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }
    fn deserialize_enum<V: Visitor<'de>>(self, _: &'static str, variants: &'static [&'static str], _: V) -> Result<V::Value, Stop> {
        SEEN.with(|s| *s.borrow_mut() = variants.to_vec());
        Err(Stop)
    }
    fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Stop> {
        SEEN.with(|s| *s.borrow_mut() = fields.to_vec());
        Err(Stop)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// The variant names of an enum, or the field names of a struct, in declaration order.
fn layout<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
    SEEN.with(|s| s.borrow_mut().clear());
    let _ = T::deserialize(Probe);
    SEEN.with(|s| s.borrow().clone())
}

/// Enums may grow at the end only.
fn grows_at_end<T: for<'de> Deserialize<'de>>(name: &str, pinned: &[&str]) {
    let now = layout::<T>();
    assert!(
        now.len() >= pinned.len() && now[..pinned.len()] == *pinned,
        "{name}: variants were {pinned:?}, now {now:?}: a variant was moved, renamed or removed, which changes the meaning of what older peers send; add new variants at the end"
    );
}

/// Structs in messages are fixed for a protocol version.
fn fixed<T: for<'de> Deserialize<'de>>(name: &str, pinned: &[&str]) {
    let now = layout::<T>();
    assert_eq!(
        now, pinned,
        "{name} changed: older peers read its fields by position. Bump PROTOCOL_VERSION (and see docs/compatibility.md), then pin the new layout here"
    );
}

#[test]
fn the_wire_layout_is_pinned() {
    assert_eq!(
        (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
        (2, 7),
        "a new protocol version: re-pin this test's layouts"
    );
    grows_at_end::<Request>(
        "Request",
        &[
            "RegisterApp",
            "UnregisterApp",
            "ListApps",
            "SetAppEnabled",
            "CreateSession",
            "OpenSession",
            "Submit",
            "Ack",
            "Detach",
            "Close",
            "Abort",
            "UpdateCommonData",
            "ListSessions",
            "ListTasks",
            "History",
            "TaskHistory",
            "SessionControl",
            "TaskControl",
            "Status",
            "Ping",
            "Shutdown",
            "ListCluster",
            "ReleaseAllocation",
            // 3
            "ListTasksPage",
            "TaskHistoryPage",
            "ListSessionsPage",
            "ListAppsPage",
            "Stage",
            // 4
            "Once",
            // 5
            "ListSessionsAhead",
            // 6
            "PackageChunk",
            "DeployPackage",
            "RemovePackage",
            "ListPackages",
            // 7
            "Watch",
            "Figures",
        ],
    );
    grows_at_end::<Reply>(
        "Reply",
        &[
            "Ok",
            "Registered",
            "Apps",
            "Session",
            "Opened",
            "Submitted",
            "Sessions",
            "Tasks",
            "Status",
            "Cluster",
            // 3
            "TaskPage",
            "SessionPage",
            "AppPage",
            "Staged",
            // 5
            "SessionsAhead",
            // 6
            "Packages",
            // 7
            "Figures",
        ],
    );
    grows_at_end::<Event>("Event", &["Outputs", "Drained", "TakenOver", "Ended", "Watched", "Dropped"]);
    grows_at_end::<AgentFrame>("AgentFrame", &["Reply", "Event", "Failed"]);
    grows_at_end::<ErrorKind>(
        "ErrorKind",
        &[
            "Other",
            "UnknownApp",
            "UnknownSession",
            "UnknownType",
            "Invalid",
            "Limit",
            "Permission",
            "StoreFault",
            "TakenOver",
            "Ended",
            "Protocol",
        ],
    );
    grows_at_end::<Welcome>("Welcome", &["Ok", "Refused"]);
    grows_at_end::<SessionAction>("SessionAction", &["Suspend", "Resume", "Kill"]);
    grows_at_end::<TaskAction>("TaskAction", &["Kill", "Requeue"]);
    grows_at_end::<SessionState>("SessionState", &["Open", "Suspended", "Reconnecting", "Closed", "Aborted"]);
    grows_at_end::<TaskState>("TaskState", &["Pending", "Running", "Done", "Error", "Canceled"]);
    fixed::<SessionInfo>(
        "SessionInfo",
        &[
            "app",
            "id",
            "name",
            "tag",
            "session_type",
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
            "created_ms",
            "ended_ms",
            "holder",
            "orphaned",
            "owner_uid",
            "reason",
        ],
    );
    fixed::<TaskInfo>(
        "TaskInfo",
        &[
            "task",
            "state",
            "attempts",
            "submitted_ms",
            "started_ms",
            "ended_ms",
            "input_bytes",
            "output_bytes",
            "error",
            "delivered",
            "node",
        ],
    );
    fixed::<AppInfo>(
        "AppInfo",
        &[
            "name",
            "enabled",
            "policy",
            "services",
            "session_types",
            "open_sessions",
            "max_sessions",
            "max_slots",
            "registered_ms",
            "source",
            "profile",
        ],
    );
    fixed::<AgentStatus>(
        "AgentStatus",
        &[
            "version",
            "protocol",
            "pid",
            "uptime_s",
            "slots",
            "instances",
            "busy_instances",
            "apps",
            "open_sessions",
            "store",
            "socket",
        ],
    );
    fixed::<Hello>("Hello", &["magic", "version", "client"]);
    fixed::<ClientFrame>("ClientFrame", &["id", "req"]);
    fixed::<CreateSession>(
        "CreateSession",
        &["app", "session_type", "name", "tag", "common_data", "direct", "attach"],
    );
    fixed::<SessionQuery>("SessionQuery", &["app", "all", "state", "orphaned"]);
    fixed::<TaskOutput>("TaskOutput", &["task", "state", "attempts", "data"]);
    fixed::<AllocInfo>(
        "AllocInfo",
        &[
            "job_id",
            "app",
            "service",
            "state",
            "reason",
            "nodes",
            "slots",
            "busy",
            "time_left_s",
        ],
    );
    fixed::<PackageInfo>(
        "PackageInfo",
        &["name", "sha256", "archive_bytes", "files", "bytes", "added_ms", "versions"],
    );
    fixed::<AgentFigures>(
        "AgentFigures",
        &[
            "uptime_s",
            "rss_bytes",
            "connections",
            "commits",
            "store_bytes",
            "store_fault",
            "apps",
        ],
    );
    fixed::<AppFigures>(
        "AppFigures",
        &[
            "app",
            "submitted",
            "done",
            "failed",
            "pending",
            "running",
            "busy_instances",
            "idle_instances",
            "open_sessions",
        ],
    );
    fixed::<WatchEvent>("WatchEvent", &["time_ms", "kind", "app", "session", "task", "state", "detail"]);
}
