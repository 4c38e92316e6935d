//! Symphony-style XML reader. Accepts the sections of the YAML form as elements, with
//! attributes spelled as in Symphony:
//!
//! ```xml
//! <Profile>
//!   <Consumer applicationName="sampleApp" policy="proportion" maxSessions="0"/>
//!   <Service name="echo" default="true" mode="persistent" command="python3 services/echo.py">
//!     <Env name="KEY" value="v"/>
//!     <Control><Method name="invoke" timeout="0" onFailure="retry"/></Control>
//!   </Service>
//!   <SessionTypes><Type name="" priority="1" recoverable="false"/></SessionTypes>
//! </Profile>
//! ```
//!
//! `command` (or Symphony's `startCmd`) is split on white space.

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
            .map_err(|_| self.err(line, format!("{}: '{}' is not a whole number", a.key, a.value)))
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

pub fn read(text: &str, file: &str) -> Result<Draft, ProfileError> {
    let x = X { text, file };
    let mut r = Reader::from_str(text);
    let mut d = Draft::default();
    // Element path, to know what an element means where it stands.
    let mut stack: Vec<String> = Vec::new();
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
                stack.pop();
                continue;
            }
            Event::Eof => break,
            Event::Text(t) if !t.chars().all(char::is_whitespace) => {
                return Err(x.err(line, "unexpected text in profile"));
            }
            _ => continue,
        };
        let name = e.local_name().as_ref().to_string();
        let parent = stack.last().map(String::as_str).unwrap_or("");
        let attrs = x.attrs(&e, line)?;
        match (parent, name.as_str()) {
            ("", "Profile") => {
                for a in &attrs {
                    match a.key.as_str() {
                        "application" | "name" => d.application = s(a, line),
                        "xmlns" | "xsi" | "schemaLocation" | "version" => {}
                        _ => return Err(x.unknown("Profile", a, line)),
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
                        // Symphony bookkeeping with no meaning on one machine.
                        "consumerId" | "numOfSlotsForPreloadedServices" | "taskHighWaterMark" | "taskLowWaterMark" => {}
                        _ => return Err(x.unknown("Consumer", a, line)),
                    }
                }
            }
            ("Profile", "SessionTypes") | ("Service", "Control") => {}
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
                        _ => return Err(x.unknown("Service", a, line)),
                    }
                }
                d.services.push(sv);
            }
            ("Service", "Env") => {
                let (mut k, mut v) = (None, String::new());
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => k = Some(a.value.clone()),
                        "value" => v = a.value.clone(),
                        _ => return Err(x.unknown("Env", a, line)),
                    }
                }
                let k = k.ok_or_else(|| x.err(line, "Env: name missing"))?;
                if let Some(sv) = d.services.last_mut() {
                    sv.env.push((k, v));
                }
            }
            ("Control", "Method") => {
                let (mut m, mut t, mut f) = (None, None, None);
                for a in &attrs {
                    match a.key.as_str() {
                        "name" => m = s(a, line),
                        "timeout" => t = x.int(a, line)?,
                        "onFailure" | "actionOnWorkload" => f = s(a, line),
                        _ => return Err(x.unknown("Method", a, line)),
                    }
                }
                let m = m.ok_or_else(|| x.err(line, "Method: name missing"))?;
                if let Some(sv) = d.services.last_mut() {
                    sv.control.push((m, t, f));
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
                        _ => return Err(x.unknown("Type", a, line)),
                    }
                }
                d.session_types.push(t);
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
        if !empty {
            stack.push(name);
        }
    }
    Ok(d)
}
