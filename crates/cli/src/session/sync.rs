//! `soamsession sync`: carry out what the offline journal holds (`--list` shows it,
//! `--drop N` removes an entry). The quiet replay every command runs once it reaches
//! the agent is `crate::replay`.

use crate::common::{Conn, exit};
use crate::replay::report;
use soam_client::journal::{self, Journal, Outcome};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Show the journal's entries instead of carrying them out
    #[arg(long, conflicts_with = "drop")]
    pub list: bool,
    /// Remove entry N from the journal without carrying it out
    #[arg(long, value_name = "N")]
    pub drop: Option<u64>,
    /// With --list: one JSON array, an object an entry (seq, at, at_ms, action, session
    /// or app and type, tasks, state, refused, description)
    #[arg(long, requires = "list")]
    pub json: bool,
}

/// An entry as `sync --list --json` prints it.
fn entry_json(seq: u64, e: &journal::Entry) -> serde_json::Value {
    use journal::{Action, Target};
    let mut o = serde_json::json!({
        "seq": seq,
        "at": crate::output::rfc3339(e.at_ms),
        "at_ms": e.at_ms,
        "state": if e.refused.is_some() { "refused" } else { "waiting" },
        "refused": e.refused,
        "description": e.describe(),
    });
    let m = o.as_object_mut().expect("an object");
    match &e.action {
        Action::Submit { target, tasks, .. } => {
            m.insert("action".into(), "submit".into());
            m.insert("tasks".into(), (*tasks).into());
            match target {
                Target::Session(s) => {
                    m.insert("session".into(), s.to_string().into());
                }
                Target::New { app, session_type, .. } => {
                    m.insert("app".into(), app.clone().into());
                    m.insert("type".into(), session_type.clone().into());
                }
            }
        }
        Action::Release { session, how } => {
            m.insert("action".into(), how.as_str().into());
            m.insert("session".into(), session.to_string().into());
        }
    }
    o
}

pub async fn sync(conn: &Conn, a: SyncArgs) -> anyhow::Result<i32> {
    let opts = conn.options("soamsession sync");
    let path = journal::path(&opts);
    if a.list || a.drop.is_some() {
        if !path.exists() {
            if let Some(n) = a.drop {
                anyhow::bail!("no journal entry {n} (the journal is empty)");
            }
            if a.json {
                crate::outln!("[]");
            } else {
                eprintln!("the journal is empty");
            }
            return Ok(exit::OK);
        }
        let j = Journal::open(&path, Duration::from_secs(30))?;
        if let Some(n) = a.drop {
            j.drop_entry(n)?;
            eprintln!("journal entry {n} dropped");
            return Ok(exit::OK);
        }
        let entries = j.list()?;
        if a.json {
            let all: Vec<serde_json::Value> = entries.iter().map(|(seq, e)| entry_json(*seq, e)).collect();
            crate::outln!("{}", serde_json::Value::Array(all));
            return Ok(exit::OK);
        }
        if entries.is_empty() {
            eprintln!("the journal is empty");
        }
        for (seq, e) in entries {
            let state = match &e.refused {
                Some(why) => format!("refused: {}", soam_proto::text::escape(why)),
                None => "waiting".into(),
            };
            crate::outln!("{seq}\t{}\t{}\t{state}", crate::output::rfc3339(e.at_ms), e.describe());
        }
        return Ok(exit::OK);
    }
    if !path.exists() {
        eprintln!("the journal is empty: nothing to sync");
        return Ok(exit::OK);
    }
    let Some(r) = journal::replay(&opts, true).await? else {
        anyhow::bail!("another soam command is replaying the journal; see soamsession sync --list when it is done");
    };
    let mut refused = false;
    for (seq, entry, outcome) in &r.done {
        refused |= matches!(outcome, Outcome::Refused(_));
        eprintln!("{}", report(*seq, entry, outcome));
    }
    if let Some(why) = r.stopped {
        eprintln!("soamsession: the agent cannot be reached ({why}); the rest of the journal waits for the next contact");
        return Ok(exit::UNREACHABLE);
    }
    if r.done.is_empty() {
        eprintln!("the journal is empty: nothing to sync");
    }
    Ok(if refused { exit::FAILED } else { exit::OK })
}
