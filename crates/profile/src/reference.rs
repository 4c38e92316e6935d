//! Every attribute a profile may set, where it goes in YAML and in Symphony XML, what
//! values it takes and what it is when left out: the text of soam-profile(5).
//!
//! Kept beside the reader so the page cannot drift from it: a whole-number attribute's
//! range is [`crate::draft::int_range`]'s (the one the reader checks), and the tests
//! below hold each documented default to what the reader does when the attribute is
//! left out.

use crate::draft::{int_range, range_text};

/// Where an attribute is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The profile's top level (YAML) / `<Consumer>` (XML).
    Top,
    /// `consumer:` / `<Consumer>` attributes.
    Consumer,
    /// An entry of `services:` / `<Service>`.
    Service,
    /// A service's `slurm:` block / attributes of `<Service>`.
    Slurm,
    /// A service's `control: {METHOD: ...}` / `<Control><Method name=METHOD>`.
    Method,
    /// An entry of `sessionTypes:` / `<SessionTypes><Type>`.
    SessionType,
}

impl Place {
    /// Every place, in the order the page describes them.
    pub const ALL: [Place; 6] = [
        Place::Top,
        Place::Consumer,
        Place::Service,
        Place::Slurm,
        Place::Method,
        Place::SessionType,
    ];

    /// The page's heading for it.
    pub fn title(self) -> &'static str {
        match self {
            Place::Top => "APPLICATION",
            Place::Consumer => "CONSUMER",
            Place::Service => "SERVICES",
            Place::Slurm => "SLURM",
            Place::Method => "METHOD CONTROL",
            Place::SessionType => "SESSION TYPES",
        }
    }

    /// Where its attributes go, in YAML and in XML.
    pub fn where_written(self) -> &'static str {
        match self {
            Place::Top => "YAML: the top level. XML: <Consumer applicationName=...>.",
            Place::Consumer => "YAML: under consumer:. XML: attributes of <Consumer>.",
            Place::Service => {
                "YAML: each entry of services:. XML: each <Service name=...>; the program and folder come from its \
                 <osTypes><osType name=... startCmd=... workDir=...> for this system (a Linux name first, else all)."
            }
            Place::Slurm => "YAML: a service's slurm: block, with launcher: slurm. XML: the same names as attributes of <Service>.",
            Place::Method => {
                "YAML: a service's control: block, one entry per method (createService, sessionEnter, invoke, \
                 sessionUpdate, sessionLeave, destroyService). XML: <Control><Method name=\"Invoke\">, and the same \
                 for CreateService, SessionEnter, SessionUpdate, SessionLeave and DestroyService."
            }
            Place::SessionType => {
                "YAML: each entry of sessionTypes:. XML: each <SessionTypes><Type>, every attribute under its own \
                 name. A type named \"\" (the system default) exists whether or not it is written."
            }
        }
    }
}

/// One attribute.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub place: Place,
    /// Its YAML key (and XML attribute, unless `xml` says otherwise).
    pub key: &'static str,
    /// How XML spells it where that differs; empty when XML uses `key`.
    pub xml: &'static str,
    /// The values it takes; empty for a whole number, whose range is the reader's.
    pub valid: &'static str,
    /// What it is when left out.
    pub default: &'static str,
    /// The default written as a YAML value, where it can be: a profile that writes it
    /// reads the same as one that leaves the attribute out (tested below).
    pub default_yaml: Option<&'static str>,
    pub meaning: &'static str,
}

impl Attr {
    /// The values it takes, as errors say them (`1 to 10000`, `0 or more`).
    pub fn valid(&self) -> String {
        match int_range(self.key) {
            Some((lo, hi)) if self.valid.is_empty() => range_text(lo, hi),
            _ => self.valid.to_string(),
        }
    }
}

const fn a(
    place: Place,
    key: &'static str,
    xml: &'static str,
    valid: &'static str,
    default: &'static str,
    default_yaml: Option<&'static str>,
    meaning: &'static str,
) -> Attr {
    Attr {
        place,
        key,
        xml,
        valid,
        default,
        default_yaml,
        meaning,
    }
}

use Place::*;

/// Every attribute, by place.
pub const ATTRIBUTES: &[Attr] = &[
    a(
        Top,
        "application",
        "applicationName",
        "1-256 printable characters, not 'all'",
        "none: required",
        None,
        "The application's name: what sessions are created for (soamsession create --app NAME).",
    ),
    a(
        Consumer,
        "policy",
        "",
        "proportion | minimumServices | priority (XML also R_Proportion | R_MinimumServices | R_PriorityScheduling)",
        "proportion",
        Some("proportion"),
        "How the agent's slots are shared among this application's open sessions: in proportion to priority, \
         each session's minServices first, or the highest priority first.",
    ),
    a(
        Consumer,
        "maxSlots",
        "",
        "",
        "every slot of the agent",
        None,
        "Service instances this application may hold at once.",
    ),
    a(
        Consumer,
        "maxSessions",
        "",
        "",
        "0 (no limit)",
        Some("0"),
        "Open sessions allowed at once; a create beyond it is refused.",
    ),
    a(
        Consumer,
        "transientDisconnectionTimeout",
        "",
        "",
        "30",
        Some("30"),
        "Seconds a session whose client went away waits for it to come back (reconnecting) before \
         onClientDisconnect applies.",
    ),
    a(
        Consumer,
        "preStartApplication",
        "",
        "true | false",
        "false",
        Some("false"),
        "Whether instances of the application's default service are started when it is registered or enabled, \
         ahead of its first session, and kept ready (numOfSlotsForPreloadedServices of them). They run as the \
         agent's own user, so in a shared agent they serve its sessions only.",
    ),
    a(
        Consumer,
        "numOfSlotsForPreloadedServices",
        "",
        "",
        "1",
        Some("1"),
        "How many instances preStartApplication keeps ready.",
    ),
    a(
        Service,
        "name",
        "",
        "1-256 printable characters, unique",
        "none: required",
        None,
        "The service's name, which sessionTypes name in serviceName.",
    ),
    a(
        Service,
        "default",
        "",
        "true | false",
        "false (a profile's only service is its default anyway)",
        Some("false"),
        "The service a session type without serviceName uses; at most one. With several services, one must be.",
    ),
    a(
        Service,
        "mode",
        "",
        "persistent | exec",
        "persistent",
        Some("persistent"),
        "persistent: an instance is started once and serves many tasks. exec: a fresh process per task.",
    ),
    a(
        Service,
        "command",
        "startCmd",
        "a list, program first (XML: one string, split on white space)",
        "none: required",
        None,
        "The program and its arguments. A relative path with a / is the profile's own file (resolved against its \
         folder); a bare name is looked up on the agent's PATH. ${NAME} is expanded when an instance starts \
         (SOAM_DEPLOY_DIR, SOAM_HOME, EGO_SHARED_TOP, the service's env; docs/symphony-xml.md).",
    ),
    a(
        Service,
        "workDir",
        "",
        "a folder (relative to the profile's folder)",
        "the profile's folder",
        None,
        "The folder instances start in, made if it does not exist. ${NAME} is expanded as in command.",
    ),
    a(
        Service,
        "env",
        "<env name=K>value</env>",
        "a mapping NAME: value",
        "none",
        None,
        "Variables set for the service's processes, beside the agent's environment. ${NAME} in a value is \
         expanded as in command.",
    ),
    a(
        Service,
        "package",
        "packageName",
        "a package name (1-256 printable characters)",
        "none",
        None,
        "The service package its files come from (soamdeploy add NAME --package FILE): ${SOAM_DEPLOY_DIR} is \
         the folder its current version is unpacked in on the host where an instance starts.",
    ),
    a(
        Service,
        "launcher",
        "",
        "local | slurm",
        "local",
        Some("local"),
        "Where instances run: processes of the agent's host, or Slurm allocations (see SLURM).",
    ),
    a(
        Slurm,
        "partition",
        "",
        "a Slurm partition",
        "Slurm's default",
        None,
        "salloc --partition.",
    ),
    a(
        Slurm,
        "account",
        "",
        "a Slurm account",
        "Slurm's default",
        None,
        "salloc --account.",
    ),
    a(Slurm, "qos", "", "a Slurm QOS", "Slurm's default", None, "salloc --qos."),
    a(
        Slurm,
        "timeLimit",
        "",
        "Slurm's time format (MINUTES, H:MM:SS, D-HH, ...)",
        "the partition's",
        None,
        "salloc --time. An allocation is given back before it runs out, its tasks requeued.",
    ),
    a(Slurm, "nodes", "", "", "1", Some("1"), "Nodes per allocation."),
    a(
        Slurm,
        "cpusPerNode",
        "",
        "",
        "whole nodes (--exclusive)",
        None,
        "CPUs asked for on each node, one service instance each.",
    ),
    a(
        Slurm,
        "memory",
        "",
        "Slurm's --mem (4G, 500M, ...)",
        "Slurm's default",
        None,
        "Memory per node.",
    ),
    a(
        Slurm,
        "maxAllocations",
        "",
        "",
        "4",
        Some("4"),
        "Allocations this service holds at once.",
    ),
    a(
        Slurm,
        "idleRelease",
        "",
        "",
        "60",
        Some("60"),
        "Seconds an allocation may sit with nothing to run before it is given back.",
    ),
    a(
        Slurm,
        "extraArgs",
        "",
        "a list of salloc options",
        "none",
        None,
        "Further salloc options, as written.",
    ),
    a(
        Method,
        "timeout",
        "<Timeout duration=N>",
        "",
        "0 (no limit)",
        Some("0"),
        "Seconds the method may take. A method that runs longer is stopped: its instance goes and the \
         timeout's action (onFailure, or on: event timeout) decides what becomes of its work.",
    ),
    a(
        Method,
        "onFailure",
        "",
        "retry | fail | succeed",
        "retry",
        Some("retry"),
        "What a failure of the method, an exit of its process or its timeout does to its task (or session \
         binding): retried (up to taskRetryLimit), failed, or done with an empty output. A fatal failure \
         fails. XML: <Method onFailure=...>; Symphony's own elements are under on.",
    ),
    a(
        Method,
        "on",
        "<Return>, <Exception>, <Exit>, <Timeout>",
        "a list of {event, controlCode, actionOnWorkload, actionOnSI}",
        "Symphony's stock block",
        None,
        "What each way the method can end does, as Symphony's <Control> block says it. event: return | failure \
         | fatal (each with a controlCode, default 0, that the service answers with; a code given no entry acts \
         as 0) | exit | timeout. actionOnWorkload: succeed | retry | fail. actionOnSI: keepAlive (the instance \
         goes on), restartService (it goes once it has answered what it was sent) or blockHost (the same, and \
         the application starts no instance on that host until it is enabled again); an exit or a timeout \
         cannot keep its instance. Left out: a return succeeds, a failure is retried and a fatal failure fails \
         with the instance kept; an exit or a timeout is retried on a new instance. XML: <Return \
         controlCode=N actionOnWorkload=... actionOnSI=...>, <Exception type=failure|fatal controlCode=N ...>, \
         <Exit ...>, <Timeout duration=S ...> in the <Method>.",
    ),
    a(
        SessionType,
        "name",
        "",
        "0-256 printable characters, unique",
        "\"\" (the system default type)",
        None,
        "The type's name (soamsession create --type NAME).",
    ),
    a(
        SessionType,
        "serviceName",
        "",
        "a service of this profile",
        "the default service",
        None,
        "The service this type's sessions run on.",
    ),
    a(
        SessionType,
        "priority",
        "",
        "",
        "1",
        Some("1"),
        "A session's weight against the others (see policy).",
    ),
    a(
        SessionType,
        "minServices",
        "",
        "",
        "0",
        Some("0"),
        "With policy minimumServices: instances each session gets first, before the rest is shared in proportion.",
    ),
    a(
        SessionType,
        "recoverable",
        "",
        "true | false",
        "false",
        Some("false"),
        "Whether the session and its tasks survive the agent's restart (committed before they are acknowledged).",
    ),
    a(
        SessionType,
        "sessionRetryLimit",
        "",
        "",
        "3",
        Some("3"),
        "Failures of SessionEnter and SessionUpdate (counted together) a session outlives; past them it is aborted.",
    ),
    a(
        SessionType,
        "taskRetryLimit",
        "",
        "",
        "3",
        Some("3"),
        "Retries of a failed task; past them it ends in error.",
    ),
    a(
        SessionType,
        "taskGracePeriod",
        "",
        "",
        "100",
        Some("100"),
        "Milliseconds a running task is given to finish before it is stopped and requeued.",
    ),
    a(
        SessionType,
        "reclaimGracePeriod",
        "",
        "",
        "-1 (no limit)",
        Some("-1"),
        "Milliseconds an instance taken back for another session may finish its task first.",
    ),
    a(
        SessionType,
        "suspendGracePeriod",
        "",
        "",
        "the type's taskGracePeriod",
        Some("100"),
        "Milliseconds running tasks are given to finish when the session is suspended.",
    ),
    a(
        SessionType,
        "taskCleanupPeriod",
        "",
        "",
        "250",
        Some("250"),
        "Milliseconds a service is given to clean up after a task is canceled.",
    ),
    a(
        SessionType,
        "abortSessionIfClientDisconnect",
        "",
        "true | false",
        "true",
        Some("true"),
        "Symphony's spelling of onClientDisconnect: true is abort, false is continue.",
    ),
    a(
        SessionType,
        "onClientDisconnect",
        "",
        "abort | suspend | continue",
        "abort",
        Some("abort"),
        "What happens to an open session when its client goes away and does not come back within \
         transientDisconnectionTimeout.",
    ),
    a(
        SessionType,
        "abortSessionIfTaskFail",
        "",
        "true | false",
        "false",
        Some("false"),
        "Whether a task that ends in error aborts its session.",
    ),
    a(
        SessionType,
        "persistSessionHistory",
        "",
        "all | none",
        "all",
        Some("all"),
        "Whether the ended session is kept in history (soamview history).",
    ),
    a(
        SessionType,
        "persistTaskHistory",
        "",
        "all | error | none",
        "all",
        Some("all"),
        "Which of its tasks history keeps (soamview history APP:ID); needs persistSessionHistory: all.",
    ),
    a(
        SessionType,
        "discardResultsOnDelivery",
        "",
        "true | false",
        "true",
        Some("true"),
        "Whether a task's output is dropped from the store once its client has it.",
    ),
    a(
        SessionType,
        "idleTimeout",
        "",
        "",
        "0 (forever)",
        Some("0"),
        "Seconds a detached session with no pending or running task and nothing undelivered lives before it is \
         closed. One with undelivered output is never closed by time (soamview session --orphaned).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProfileError, parse};
    use std::path::Path;

    /// A profile with `key: value` written at `place`, or with nothing written there.
    fn profile(place: Place, set: Option<(&str, &str)>) -> Result<crate::Profile, ProfileError> {
        let at = |p: Place| match set {
            Some((k, v)) if p == place => format!("{k}: {v}"),
            _ => String::new(),
        };
        let text = format!(
            "application: a\nconsumer: {{{}}}\nservices:\n  - name: s\n    command: [\"/bin/true\"]\n    {}\n{}    control: {{invoke: {{{}}}}}\nsessionTypes:\n  - name: t\n    {}\n",
            at(Consumer),
            at(Service),
            if place == Slurm {
                format!("    launcher: slurm\n    slurm: {{{}}}\n", at(Slurm))
            } else {
                String::new()
            },
            at(Method),
            at(SessionType),
        );
        parse(&text, Path::new("/p.yaml"))
    }

    /// What the page says an attribute is when left out is what the reader makes of it.
    #[test]
    fn each_documented_default_is_what_leaving_it_out_gives() {
        let mut checked = 0;
        for attr in ATTRIBUTES {
            let Some(v) = attr.default_yaml else { continue };
            let left_out = profile(attr.place, None).unwrap();
            let written =
                profile(attr.place, Some((attr.key, v))).unwrap_or_else(|e| panic!("{} written as its default {v}: {e}", attr.key));
            assert_eq!(written, left_out, "{}: the default is not {v}", attr.key);
            checked += 1;
        }
        assert!(checked >= 25, "{checked}");
    }

    /// Every whole-number attribute the reader checks is on the page, with the range
    /// errors name, and every value the page gives as valid is accepted.
    #[test]
    fn every_ranged_attribute_is_documented() {
        for (key, lo, hi) in crate::draft::RANGES {
            let attr = ATTRIBUTES
                .iter()
                .find(|a| a.key == *key)
                .unwrap_or_else(|| panic!("{key} is not documented"));
            assert_eq!(attr.valid(), range_text(*lo, *hi), "{key}");
            assert!(attr.valid.is_empty(), "{key}: its range comes from the reader");
        }
        for attr in ATTRIBUTES {
            assert!(
                !attr.valid().is_empty() && !attr.default.is_empty() && !attr.meaning.is_empty(),
                "{}",
                attr.key
            );
        }
    }
}
