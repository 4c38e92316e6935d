//! `${NAME}` in a service's command, `workDir` and `env` values, as Symphony profiles
//! write them (`${SOAM_DEPLOY_DIR}/run.sh`, `${SOAM_HOME}/work`).
//!
//! A profile is read with its variables as they are written; they are expanded when an
//! instance starts, on the host where it runs ([`Service::expanded`]), from what that
//! host says they are ([`Known`]). What each variable means is in docs/symphony-xml.md.
//! A name nobody defines is never passed on literally: registration warns of it
//! ([`Service::undefined`]) and the instance fails saying which.

use crate::model::Service;
use std::path::PathBuf;

/// The folder the service's files are in.
pub const SOAM_DEPLOY_DIR: &str = "SOAM_DEPLOY_DIR";
/// Symphony's install folder; in soam, a folder of the instance's user on its host.
pub const SOAM_HOME: &str = "SOAM_HOME";
/// Symphony's shared top folder; in soam, the same as `SOAM_HOME`.
pub const EGO_SHARED_TOP: &str = "EGO_SHARED_TOP";

/// The variables soam defines, for messages.
pub const DEFINED: [&str; 3] = [SOAM_DEPLOY_DIR, SOAM_HOME, EGO_SHARED_TOP];

/// What a variable is where an instance starts.
pub enum Value {
    Is(String),
    /// Left as written, for the host the instance runs on (a Slurm node) to fill in.
    Later,
}

/// Each `${NAME}` in `text`, in order (a `${` with no closing `}` is not one).
pub fn refs(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("${")
        .filter_map(|(at, _)| text[at + 2..].find('}').map(|end| &text[at + 2..at + 2 + end]))
}

/// `text` with each `${NAME}` replaced by what `lookup` says it is; the first name
/// `lookup` does not know is the error.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let Some(end) = rest[at + 2..].find('}') else { break };
        let name = &rest[at + 2..at + 2 + end];
        out.push_str(&rest[..at]);
        match lookup(name) {
            Some(Value::Is(v)) => out.push_str(&v),
            Some(Value::Later) => out.push_str(&rest[at..at + 3 + end]),
            None => return Err(name.to_string()),
        }
        rest = &rest[at + 3 + end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What the variables are where an instance starts.
pub struct Known<'a> {
    /// `SOAM_DEPLOY_DIR`; `None`: left for the host it runs on.
    pub deploy_dir: Option<PathBuf>,
    /// `SOAM_HOME` (and `EGO_SHARED_TOP`); `None`: left for the host it runs on.
    pub soam_home: Option<PathBuf>,
    /// Whether a name may be read from this process's environment (only where that
    /// environment is the instance's user's own).
    pub environment: bool,
    /// The service's own `env` entries, which its other values may use.
    pub env: &'a std::collections::BTreeMap<String, String>,
}

impl Known<'_> {
    fn lookup(&self, name: &str, depth: u8) -> Option<Value> {
        let path = |p: &Option<PathBuf>| Some(p.as_ref().map_or(Value::Later, |p| Value::Is(p.display().to_string())));
        match name {
            SOAM_DEPLOY_DIR => path(&self.deploy_dir),
            SOAM_HOME | EGO_SHARED_TOP => path(&self.soam_home),
            _ => {
                if let Some(v) = self.env.get(name) {
                    // An entry naming itself (or a loop of them) ends as not defined.
                    return (depth < 8)
                        .then(|| expand(v, &|n| self.lookup(n, depth + 1)).ok())
                        .flatten()
                        .map(Value::Is);
                }
                if self.environment {
                    return std::env::var(name).ok().map(Value::Is);
                }
                None
            }
        }
    }
}

impl Service {
    /// The service with its variables expanded from `known`, its `workDir` absolute;
    /// or why it cannot start (a variable nobody defines, named with where it is).
    pub fn expanded(&self, known: &Known<'_>) -> Result<Service, String> {
        let lookup = |n: &str| known.lookup(n, 0);
        let what = |where_: &str, name: String| {
            format!(
                "service '{}': ${{{name}}} in its {where_} is not defined (soam defines {}; {})",
                self.name,
                DEFINED.join(", "),
                if known.environment {
                    "or set it in the service's env or the agent's environment"
                } else {
                    "or set it in the service's env"
                }
            )
        };
        let command = self
            .command
            .iter()
            .map(|a| expand(a, &lookup))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|n| what("command", n))?;
        let work_dir = expand(&self.work_dir.display().to_string(), &lookup).map_err(|n| what("workDir", n))?;
        let work_dir = PathBuf::from(work_dir);
        if !work_dir.is_absolute() && refs(&work_dir.display().to_string()).next().is_none() {
            return Err(format!(
                "service '{}': its workDir {} is not an absolute path once expanded",
                self.name,
                work_dir.display()
            ));
        }
        let mut env = std::collections::BTreeMap::new();
        for (k, v) in &self.env {
            env.insert(k.clone(), expand(v, &lookup).map_err(|n| what(&format!("env {k}"), n))?);
        }
        Ok(Service {
            command,
            work_dir,
            env,
            ..self.clone()
        })
    }

    /// The variables its command, `workDir` and `env` use that nothing defines where
    /// it is registered (`environment`: whether the agent's environment counts), each
    /// with where it is used: what registration warns of.
    pub fn undefined(&self, environment: bool) -> Vec<(String, &'static str)> {
        let known = Known {
            deploy_dir: None,
            soam_home: None,
            environment,
            env: &self.env,
        };
        let mut out: Vec<(String, &'static str)> = Vec::new();
        let work_dir = self.work_dir.display().to_string();
        let places = self
            .command
            .iter()
            .map(|c| (c.as_str(), "command"))
            .chain([(work_dir.as_str(), "workDir")])
            .chain(self.env.values().map(|v| (v.as_str(), "env")));
        for (text, place) in places {
            for name in refs(text) {
                if known.lookup(name, 0).is_none() && !out.iter().any(|(n, _)| n == name) {
                    out.push((name.to_string(), place));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_and_the_unknown_one_is_named() {
        let look = |n: &str| match n {
            "A" => Some(Value::Is("/a".into())),
            "L" => Some(Value::Later),
            _ => None,
        };
        assert_eq!(expand("${A}/run.sh x${A}y", &look).unwrap(), "/a/run.sh x/ay");
        assert_eq!(expand("${L}/work", &look).unwrap(), "${L}/work");
        assert_eq!(expand("no vars, $A, ${unclosed", &look).unwrap(), "no vars, $A, ${unclosed");
        assert_eq!(expand("${A}:${B}", &look).unwrap_err(), "B");
        assert_eq!(refs("${A}/${B}:${").collect::<Vec<_>>(), ["A", "B"]);
    }

    fn service(command: &str, work_dir: &str, env: &[(&str, &str)]) -> Service {
        let text = format!("application: a\nservices:\n  - name: s\n    command: [\"{command}\"]\n    workDir: \"{work_dir}\"\n");
        let mut s = crate::parse(&text, std::path::Path::new("/p/a.yaml")).unwrap().services.remove(0);
        s.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s
    }

    fn known<'a>(s: &'a Service, environment: bool) -> Known<'a> {
        Known {
            deploy_dir: Some("/deploy".into()),
            soam_home: Some("/home/u/soam".into()),
            environment,
            env: &s.env,
        }
    }

    #[test]
    fn a_service_expands_from_soam_s_names_and_its_own_env_only_where_allowed() {
        let s = service(
            "${SOAM_DEPLOY_DIR}/run",
            "${EGO_SHARED_TOP}/work",
            &[("A", "${SOAM_HOME}/a"), ("B", "${A}:x")],
        );
        let e = s.expanded(&known(&s, false)).unwrap();
        assert_eq!(e.command, ["/deploy/run"]);
        assert_eq!(e.work_dir, std::path::Path::new("/home/u/soam/work"));
        assert_eq!(e.env["B"], "/home/u/soam/a:x");
        // An entry naming itself ends as not defined, never as a loop.
        let s = service("/bin/x", "/", &[("L", "${L}")]);
        let err = s.expanded(&known(&s, false)).unwrap_err();
        assert!(err.starts_with("service 's': ${L} in its env L is not defined"), "{err}");
        assert_eq!(s.undefined(false), [("L".to_string(), "env")]);
        // The process's environment only where it is the instance's user's own.
        let s = service("/bin/x", "/", &[("P", "${PATH}")]);
        assert!(
            s.expanded(&known(&s, false))
                .unwrap_err()
                .contains("${PATH} in its env P is not defined")
        );
        assert_eq!(s.expanded(&known(&s, true)).unwrap().env["P"], std::env::var("PATH").unwrap());
        assert!(s.undefined(true).is_empty());
        // A workDir that names nothing absolute once expanded.
        let s = service("/bin/x", "${E}w", &[("E", "")]);
        let err = s.expanded(&known(&s, false)).unwrap_err();
        assert_eq!(err, "service 's': its workDir w is not an absolute path once expanded");
        // Left for the node: kept as written.
        let s = service("${SOAM_DEPLOY_DIR}/run", "${SOAM_HOME}/w", &[]);
        let later = Known {
            deploy_dir: None,
            soam_home: None,
            environment: false,
            env: &s.env,
        };
        let e = s.expanded(&later).unwrap();
        assert_eq!(
            (e.command[0].as_str(), e.work_dir.to_str().unwrap()),
            ("${SOAM_DEPLOY_DIR}/run", "${SOAM_HOME}/w")
        );
    }
}
