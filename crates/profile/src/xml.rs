//! Symphony XML reader. Reads a Symphony application profile as Symphony users have
//! them, and soam's own sections written as XML (the YAML form's keys as attributes):
//!
//! ```xml
//! <Profile xmlns="http://www.platform.com/Symphony/Profile/Application">
//!   <Consumer applicationName="sampleApp" consumerId="/Apps" policy="R_Proportion"/>
//!   <SOAM version="7.3"> ... </SOAM>                       <!-- not used: warned -->
//!   <SessionTypes><Type name="" priority="1" recoverable="false"/></SessionTypes>
//!   <Service name="echo" description="Echoes" packageName="echoPkg">
//!     <osTypes>
//!       <osType name="all" startCmd="python3 services/echo.py" workDir=".">
//!         <env name="KEY">value</env>
//!       </osType>
//!     </osTypes>
//!     <Control>
//!       <Method name="Invoke">
//!         <Timeout duration="30" actionOnWorkload="retry"/>
//!         <Exception type="failure" actionOnWorkload="fail"/>
//!       </Method>
//!     </Control>
//!   </Service>
//! </Profile>
//! ```
//!
//! soam's own spelling is accepted too: `command=` (or `startCmd=`) and `workDir=` on
//! `<Service>`, `<Env name= value=/>`, `<Method name= timeout= onFailure=/>`.
//! `command` and `startCmd` are split on white space.
//!
//! What soam does not use (Symphony's middleware settings, package deployment, actions
//! on service instances, methods soam has no counterpart for) is skipped with a
//! warning naming it and its line; an element soam does not know at all is an error,
//! as a misspelt one would be.

use crate::ProfileError;
use crate::draft::*;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

struct Attr {
    key: String,
    value: String,
}

struct X<'a> {
    text: &'a str,
    file: &'a str,
}

impl X<'_> {
    fn line(&self, pos: u64) -> u64 {
        let pos = (pos as usize).min(self.text.len());
        self.text.as_bytes()[..pos].iter().filter(|&&b| b == b'\n').count() as u64 + 1
    }
    fn err(&self, line: u64, message: impl Into<String>) -> ProfileError {
        ProfileError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }
    fn attrs(&self, e: &BytesStart, line: u64) -> Result<Vec<Attr>, ProfileError> {
        let mut out = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.err(line, format!("malformed attribute: {err}")))?;
            let key = a.key.local_name().as_ref().to_string();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| self.err(line, format!("malformed attribute value: {err}")))?
                .to_string();
            out.push(Attr { key, value });
        }
        Ok(out)
    }
    fn int(&self, a: &Attr, line: u64) -> Result<Option<L<i64>>, ProfileError> {
        a.value
            .trim()
            .parse::<i64>()
            .map(|v| Some(l(v, line)))
            .map_err(|_| self.err(line, format!("{}: '{}' {}", a.key, a.value, not_a_number(&a.key))))
    }
    fn bool(&self, a: &Attr, line: u64) -> Result<Option<L<bool>>, ProfileError> {
        match a.value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(l(true, line))),
            "false" => Ok(Some(l(false, line))),
            _ => Err(self.err(line, format!("{}: '{}' is not valid (valid: true | false)", a.key, a.value))),
        }
    }
    fn unknown(&self, what: &str, a: &Attr, line: u64) -> ProfileError {
        self.err(line, format!("unknown attribute '{}' on {what}", a.key))
    }
}

fn s(a: &Attr, line: u64) -> Option<L<String>> {
    Some(l(a.value.clone(), line))
}

/// Elements of a Symphony profile that soam has no use for: skipped whole, warned.
const UNUSED_ELEMENTS: &[(&str, &str)] = &[
    ("SOAM", "Symphony's middleware settings"),
    ("SIM", "Symphony's middleware settings"),
    ("SSM", "Symphony's middleware settings"),
    ("DataHistory", "Symphony's history files"),
    ("PagingTasksInput", "Symphony's paging"),
    ("PagingTasksOutput", "Symphony's paging"),
    ("PagingCommonData", "Symphony's paging"),
    ("ResourceGroupFilter", "EGO resource groups"),
    ("Exit", "what Symphony does when a service exits"),
    ("Return", "actions on a method's return code"),
];

/// Symphony's methods with no soam counterpart.
const UNUSED_METHODS: &[&str] = &["Register"];

/// How well an `<osType name=...>` fits this host: Symphony's Linux names (LINUX64,
/// LINUX86, ...) best, then `all`; others (NTX64, SOL64, ...) not at all.
fn os_fit(name: &str) -> u8 {
    let n = name.to_ascii_lowercase();
    if n == "all" {
        2
    } else if n.starts_with("linux") || n.contains("x86_64") || n.contains("amd64") {
        3
    } else {
        0
    }
}

/// Where the reader stands in an `<osType>`: its fit, and whether its settings were
/// taken (the best fitting one is).
#[derive(Default)]
struct OsChoice {
    taken: u8,
    current: bool,
}

pub fn read(text: &str, file: &str) -> Result<Draft, ProfileError> {
    let x = X { text, file };
    let mut r = Reader::from_str(text);
    let mut d = Draft::default();
    // Element path, to know what an element means where it stands.
    let mut stack: Vec<String> = Vec::new();
    // Inside an element skipped whole: the stack depth at which it opened.
    let mut skipping: Option<usize> = None;
    let mut os = OsChoice::default();
    // An `<env name=...>` whose value is its text.
    let mut env_text: Option<(String, String)> = None;
    // The `<Control>` blocks' first and last lines: what is not used in them is folded
    // into one warning (see `fold_control`).
    let mut controls: Vec<(u64, u64)> = Vec::new();
    loop {
        let pos = r.buffer_position();
        let ev = r
            .read_event()
            .map_err(|e| x.err(x.line(r.error_position()), format!("invalid XML: {e}")))?;
        let line = x.line(pos)
            + text[pos as usize..]
                .chars()
                .take_while(|c| c.is_whitespace())
                .filter(|&c| c == '\n')
                .count() as u64;
        let (e, empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(_) => {
                if stack.pop().as_deref() == Some("Control")
                    && let Some(c) = controls.last_mut()
                {
                    c.1 = line;
                }
                if skipping.is_some_and(|depth| stack.len() <= depth) {
                    skipping = None;
                }
                if let Some((k, v)) = env_text.take()
                    && os.current
                    && let Some(sv) = d.services.last_mut()
                {
                    sv.env.push((k, v.trim().to_string()));
                }
                if stack.last().map(String::as_str) == Some("osTypes") {
                    os.current = false;
                }
                continue;
            }
            Event::Eof => break,
            Event::Text(t) if skipping.is_none() && !t.chars().all(char::is_whitespace) => match env_text.as_mut() {
                Some((_, v)) => {
                    v.push_str(&t.xml10_content());
                    continue;
                }
                None => return Err(x.err(line, "unexpected text in profile")),
            },
            Event::GeneralRef(r) if skipping.is_none() => match env_text.as_mut() {
                Some((_, v)) => {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        _ => match &**r {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => return Err(x.err(line, format!("unknown entity &{other};"))),
                        },
                    };
                    v.push(c);
                    continue;
                }
                None => return Err(x.err(line, "unexpected text in profile")),
            },
            _ => continue,
        };
        let name = e.local_name().as_ref().to_string();
        if skipping.is_some() {
            if !empty {
                stack.push(name);
            }
            continue;
        }
        let parent = stack.last().map(String::as_str).unwrap_or("");
        let attrs = x.attrs(&e, line)?;
        // Attributes soam has no use for, by element: one warning per element.
        let mut not_used: Vec<(String, String)> = Vec::new();
        let mut unused = |what: &str, a: &Attr| not_used.push((what.to_string(), a.key.clone()));
        let mut skip_this = false;
        match (parent, name.as_str()) {
            ("", "Profile") => {
                for a in &attrs {
                    match a.key.as_str() {
                        "application" | "name" => d.application = s(a, line),
                        "xmlns" | "xsi" | "schemaLocation" | "version" => {}
                        _ => unused("<Profile>", a),
                    }
                }
            }
            ("Profile", "Consumer") => {
                for a in &attrs {
                    match a.key.as_str() {
                        "applicationName" => d.application = s(a, line),
                        "policy" => d.policy = s(a, line),
                        "maxSlots" => d.max_slots = x.int(a, line)?,
                        "maxSessions" => d.max_sessions = x.int(a, line)?,
                        "transientDisconnectionTimeout" => d.transient_disconnection_timeout = x.int(a, line)?,
                        "preStartApplication" => d.pre_start = x.bool(a, line)?,
                        "numOfSlotsForPreloadedServices" => d.preloaded = x.int(a, line)?,
                        "description" => {}
                        _ => unused("<Consumer>", a),
                    }
                }
            }
            ("Service", "Control") => controls.push((line, line)),
            ("Profile", "SessionTypes") | ("Service", "osTypes") => {}
            ("Profile", "Service") => {
                let mut sv = DraftService {
                    line,
                    ..Default::default()
                };
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => sv.name = s(a, line),
                        "default" => sv.default = x.bool(a, line)?,
                        "mode" => sv.mode = s(a, line),
                        "command" | "startCmd" => sv.command = Some(l(a.value.split_whitespace().map(String::from).collect(), line)),
                        "workDir" => sv.work_dir = s(a, line),
                        "packageName" | "package" => sv.package = s(a, line),
                        "launcher" => sv.launcher = s(a, line),
                        "partition" => sv.partition = s(a, line),
                        "account" => sv.account = s(a, line),
                        "qos" => sv.qos = s(a, line),
                        "timeLimit" => sv.time_limit = s(a, line),
                        "memory" => sv.memory = s(a, line),
                        "nodes" => sv.nodes = x.int(a, line)?,
                        "cpusPerNode" => sv.cpus_per_node = x.int(a, line)?,
                        "maxAllocations" => sv.max_allocations = x.int(a, line)?,
                        "idleRelease" => sv.idle_release = x.int(a, line)?,
                        "extraArgs" => sv.extra_args = Some(l(a.value.split_whitespace().map(String::from).collect(), line)),
                        "description" => {}
                        _ => unused("<Service>", a),
                    }
                }
                d.services.push(sv);
                os = OsChoice::default();
            }
            ("osTypes", "osType") => {
                let fit = attrs.iter().find(|a| a.key == "name").map_or(2, |a| os_fit(&a.value));
                os.current = fit > os.taken;
                if os.current {
                    os.taken = fit;
                    if let Some(sv) = d.services.last_mut() {
                        sv.env.clear();
                        for a in &attrs {
                            match a.key.as_str() {
                                "name" => {}
                                "startCmd" => sv.command = Some(l(a.value.split_whitespace().map(String::from).collect(), line)),
                                "workDir" => sv.work_dir = s(a, line),
                                _ => unused("<osType>", a),
                            }
                        }
                    }
                } else {
                    let n = attrs.iter().find(|a| a.key == "name").map_or("", |a| a.value.as_str());
                    d.warnings
                        .push((line, format!("<osType name=\"{n}\"> is for another system than this one (ignored)")));
                    skip_this = true;
                }
            }
            ("osType", "env") | ("osType", "Env") | ("Service", "Env") => {
                let (mut k, mut v) = (None, None);
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => k = Some(a.value.clone()),
                        "value" => v = Some(a.value.clone()),
                        _ => return Err(x.unknown("env", a, line)),
                    }
                }
                let k = k.ok_or_else(|| x.err(line, "env: name missing"))?;
                match v {
                    Some(v) => {
                        if let Some(sv) = d.services.last_mut() {
                            sv.env.push((k, v));
                        }
                    }
                    None if !empty => env_text = Some((k, String::new())),
                    None => {
                        if let Some(sv) = d.services.last_mut() {
                            sv.env.push((k, String::new()));
                        }
                    }
                }
                if parent == "Service" {
                    // soam's own spelling: always this host's.
                    os.current = true;
                }
            }
            ("Control", "Method") => {
                let (mut m, mut t, mut f) = (None, None, None);
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => m = s(a, line),
                        "timeout" => t = x.int(a, line)?,
                        "onFailure" | "actionOnWorkload" => f = s(a, line),
                        _ => unused("<Method>", a),
                    }
                }
                let m = m.ok_or_else(|| x.err(line, "Method: name missing"))?;
                if UNUSED_METHODS.contains(&m.v.as_str()) {
                    d.warnings
                        .push((line, format!("method '{}' has no counterpart in soam (ignored)", m.v)));
                    skip_this = true;
                } else if let Some(sv) = d.services.last_mut() {
                    let mut dm = DraftMethod::new(m);
                    dm.timeout = t;
                    dm.on_failure = f;
                    sv.control.push(dm);
                }
            }
            ("Method", event @ ("Timeout" | "Exit" | "Return" | "Exception")) => {
                let method = d
                    .services
                    .last()
                    .and_then(|sv| sv.control.last())
                    .map(|m| m.name.v.clone())
                    .unwrap_or_default();
                // SessionLeave and DestroyService serve no task or session: Symphony's
                // stock block gives them none, and one given is not used.
                let no_workload = matches!(method.as_str(), "SessionLeave" | "DestroyService");
                let mut rule = DraftRule {
                    line,
                    event: l(event.to_ascii_lowercase(), line),
                    code: None,
                    workload: None,
                    instance: None,
                };
                let mut duration = None;
                let what = format!("<{event}> of {method}");
                for a in &attrs {
                    match (event, a.key.as_str()) {
                        ("Timeout", "duration") => duration = Some(x.int(a, line)?),
                        ("Exception", "type") => {
                            rule.event = match a.value.as_str() {
                                "failure" | "fatal" => l(a.value.clone(), line),
                                v => return Err(x.err(line, format!("<Exception type>: '{v}' is not valid (valid: failure | fatal)"))),
                            }
                        }
                        ("Return" | "Exception", "controlCode") => rule.code = x.int(a, line)?,
                        (_, "actionOnWorkload") if !no_workload => rule.workload = s(a, line),
                        (_, "actionOnSI") => rule.instance = s(a, line),
                        _ => unused(&what, a),
                    }
                }
                if event == "Exception" && rule.event.v == "exception" {
                    return Err(x.err(line, "<Exception>: type missing (valid: failure | fatal)"));
                }
                if let Some(m) = d.services.last_mut().and_then(|sv| sv.control.last_mut()) {
                    if let Some(t) = duration {
                        m.timeout = t;
                    }
                    m.rules.push(rule);
                }
            }
            ("SessionTypes", "Type") => {
                let mut t = DraftType {
                    line,
                    ..Default::default()
                };
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => t.name = s(a, line),
                        "serviceName" => t.service_name = s(a, line),
                        "priority" => t.priority = x.int(a, line)?,
                        "minServices" => t.min_services = x.int(a, line)?,
                        "recoverable" => t.recoverable = x.bool(a, line)?,
                        "sessionRetryLimit" => t.session_retry_limit = x.int(a, line)?,
                        "taskRetryLimit" => t.task_retry_limit = x.int(a, line)?,
                        "taskGracePeriod" => t.task_grace_period = x.int(a, line)?,
                        "reclaimGracePeriod" => t.reclaim_grace_period = x.int(a, line)?,
                        "suspendGracePeriod" => t.suspend_grace_period = x.int(a, line)?,
                        "taskCleanupPeriod" => t.task_cleanup_period = x.int(a, line)?,
                        "abortSessionIfClientDisconnect" => t.abort_session_if_client_disconnect = x.bool(a, line)?,
                        "onClientDisconnect" => t.on_client_disconnect = s(a, line),
                        "abortSessionIfTaskFail" => t.abort_session_if_task_fail = x.bool(a, line)?,
                        "persistSessionHistory" => t.persist_session_history = s(a, line),
                        "persistTaskHistory" => t.persist_task_history = s(a, line),
                        "discardResultsOnDelivery" => t.discard_results_on_delivery = x.bool(a, line)?,
                        "idleTimeout" => t.idle_timeout = x.int(a, line)?,
                        "description" => {}
                        _ => unused("<Type>", a),
                    }
                }
                d.session_types.push(t);
            }
            (_, other) if let Some((_, why)) = UNUSED_ELEMENTS.iter().find(|(n, _)| *n == other) => {
                d.warnings.push((line, format!("<{other}> ({why}) is not used by soam (ignored)")));
                skip_this = true;
            }
            _ => {
                let where_ = if parent.is_empty() {
                    "the top".to_string()
                } else {
                    format!("<{parent}>")
                };
                return Err(x.err(line, format!("unknown element <{name}> in {where_}")));
            }
        }
        if let Some((what, _)) = not_used.first() {
            let keys: Vec<String> = not_used.iter().map(|(_, k)| format!("'{k}'")).collect();
            let (noun, verb) = if keys.len() == 1 {
                ("attribute", "is")
            } else {
                ("attributes", "are")
            };
            d.warnings
                .push((line, format!("{what} {noun} {} {verb} not used by soam (ignored)", keys.join(", "))));
        }
        if !empty {
            if skip_this {
                skipping = Some(stack.len());
            }
            stack.push(name);
        }
    }
    fold_control(&mut d, &controls);
    Ok(d)
}

/// Every real Symphony profile carries IBM's stock `<Control>` block, parts of which
/// soam has no counterpart for (the `Register` method, a workload action for a method
/// that serves no work): warnings that, where there are several, would bury the one
/// that matters. They become one warning, and each is
/// kept as a note that `soamreg -v` lists.
fn fold_control(d: &mut Draft, controls: &[(u64, u64)]) {
    let inside = |line: u64| controls.iter().any(|&(a, b)| (a..=b).contains(&line));
    if d.warnings.iter().filter(|(l, _)| inside(*l)).count() < 2 {
        return;
    }
    let (folded, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut d.warnings).into_iter().partition(|(l, _)| inside(*l));
    d.warnings = kept;
    if let Some(&(first, _)) = folded.first() {
        let last = controls.iter().map(|c| c.1).max().unwrap_or(first);
        let n = folded.len();
        let blocks = controls.len();
        let (s, them) = if n == 1 { ("", "it") } else { ("s", "them") };
        let (bs, b_lines) = if blocks == 1 {
            ("", format!("lines {first}-{last}"))
        } else {
            ("s", format!("{blocks} blocks, lines {first}-{last}"))
        };
        d.warnings.push((
            first,
            format!("<Control>{bs} ({b_lines}): {n} setting{s} soam has no counterpart for ignored; soamreg -v lists {them}"),
        ));
        d.notes = folded;
        d.warnings.sort_by_key(|w| w.0);
    }
}
