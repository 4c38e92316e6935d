//! How sessions and tasks are addressed on the command line and on the wire.
//!
//! `APP:ID` or `APP:NAME` names a session, `APP:ID:TASK` a task. Application names may
//! themselves contain `:`, so parsing splits at the last colon(s). Session names may not
//! contain `:` and may not be all digits, so a name never reads as an id.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionKey {
    Id(u64),
    Name(String),
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKey::Id(id) => write!(f, "{id}"),
            SessionKey::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionRef {
    pub app: String,
    pub key: SessionKey,
}

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.app, self.key)
    }
}

impl std::str::FromStr for SessionRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (app, key) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("'{s}' is not a session address; expected APP:ID or APP:NAME"))?;
        if app.is_empty() || key.is_empty() {
            return Err(format!("'{s}' is not a session address; expected APP:ID or APP:NAME"));
        }
        let key = match key.parse::<u64>() {
            Ok(id) => SessionKey::Id(id),
            Err(_) => SessionKey::Name(key.to_string()),
        };
        Ok(SessionRef { app: app.to_string(), key })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub session: SessionRef,
    pub task: u64,
}

impl std::str::FromStr for TaskRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a task address; expected APP:ID:TASK");
        let (rest, task) = s.rsplit_once(':').ok_or_else(bad)?;
        let task = task.parse::<u64>().map_err(|_| bad())?;
        let session = rest.parse::<SessionRef>().map_err(|_| bad())?;
        Ok(TaskRef { session, task })
    }
}

/// Checks a client-chosen session name or tag; the agent applies the same rule.
pub fn check_session_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err(format!("{what} must be 1-256 characters"));
    }
    if name.contains(':') || name.chars().any(|c| c.is_control()) {
        return Err(format!("{what} '{name}' may not contain ':' or control characters"));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} '{name}' may not be all digits (it would read as an id)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let r: SessionRef = "app:12".parse().unwrap();
        assert_eq!(r.key, SessionKey::Id(12));
        let r: SessionRef = "my:app:nightly".parse().unwrap();
        assert_eq!(r.app, "my:app");
        assert_eq!(r.key, SessionKey::Name("nightly".into()));
        assert!("noport".parse::<SessionRef>().is_err());
        assert!(":1".parse::<SessionRef>().is_err());
        let t: TaskRef = "app:3:9".parse().unwrap();
        assert_eq!((t.session.app.as_str(), t.task), ("app", 9));
        assert!("app:3:x".parse::<TaskRef>().is_err());
        assert!(check_session_name("name", "123").is_err());
        assert!(check_session_name("name", "a:b").is_err());
        assert!(check_session_name("name", "nightly-1").is_ok());
    }
}
