//! `soamview events [APP|APP:ID] [--follow] [--json]`: what changes in the agent, a
//! line each (JSON Lines with `--json`), for people watching and for scripts.
//!
//! Data flow: with `--follow`, a `Request::Watch` first (so nothing that happens while
//! the sessions are listed is missed), then the open sessions' states now (as
//! `session` events), then each `Event::Watched` the agent pushes, until interrupted or
//! the agent goes. `Event::Dropped` (the agent left events out because this reader fell
//! behind) is printed where it came, so a reader knows its stream has a gap.

use soam_client::{Client, ClientError};
use soam_proto::msg::{Event, Reply, Request, SessionInfo, SessionQuery, WatchEvent};
use soam_proto::text::escape;
use soam_proto::{SessionKey, SessionRef};
use std::io::Write;

/// What the target names: an application and maybe one of its sessions.
async fn target(client: &Client, target: Option<&str>) -> anyhow::Result<(Option<String>, Option<u64>)> {
    let Some(t) = target else { return Ok((None, None)) };
    if !t.contains(':') {
        return Ok((Some(t.to_string()), None));
    }
    let r: SessionRef = t.parse().map_err(crate::common::UsageError)?;
    let id = match r.key {
        SessionKey::Id(id) => id,
        // A name is looked up among the open sessions: events are about those.
        SessionKey::Name(name) => {
            let open = sessions(client, &r.app).await?;
            let mut found = open.iter().filter(|s| s.name.as_deref() == Some(name.as_str()));
            match (found.next(), found.next()) {
                (Some(s), None) => s.id,
                (None, _) => anyhow::bail!(
                    "no open session of '{}' is named '{}' (soamview session {} lists them)",
                    r.app,
                    escape(&name),
                    r.app
                ),
                (Some(_), Some(_)) => anyhow::bail!(
                    "several open sessions of '{}' are named '{}': give its id (soamview session {})",
                    r.app,
                    escape(&name),
                    r.app
                ),
            }
        }
    };
    Ok((Some(r.app), Some(id)))
}

/// The open sessions of `app` (all applications when empty).
async fn sessions(client: &Client, app: &str) -> anyhow::Result<Vec<SessionInfo>> {
    let query = SessionQuery {
        app: (!app.is_empty()).then(|| app.to_string()),
        all: false,
        state: None,
        orphaned: false,
    };
    let mut out = Vec::new();
    soam_client::each_page(
        async |from| client.session_page(&query, from).await,
        |rows, _| -> Result<(), ClientError> {
            out.extend(rows);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

pub async fn run(client: &mut Client, target_arg: Option<&str>, follow: bool, json: bool) -> anyhow::Result<i32> {
    let (app, session) = target(client, target_arg).await?;
    if follow {
        match client.call(Request::Watch { app: app.clone(), session }).await? {
            Reply::Ok => {}
            other => anyhow::bail!("unexpected reply {other:?}"),
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for s in sessions(client, app.as_deref().unwrap_or("")).await? {
        if session.is_some_and(|id| id != s.id) {
            continue;
        }
        let ev = WatchEvent {
            time_ms: now,
            kind: "session".into(),
            app: s.app.clone(),
            session: Some(s.id),
            task: None,
            state: s.state.as_str().into(),
            detail: format!("{} pending, {} running, {} done, {} error", s.pending, s.running, s.done, s.error),
        };
        line(&mut out, &ev, json)?;
    }
    out.flush()?;
    if !follow {
        return Ok(0);
    }
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let ev = tokio::select! {
            ev = client.next_event() => ev,
            _ = interrupt.recv() => return Ok(0),
        };
        match ev {
            Some(Event::Watched(ev)) => line(&mut out, &ev, json)?,
            Some(Event::Dropped { count }) => dropped(&mut out, count, json)?,
            Some(_) => continue,
            None => {
                out.flush()?;
                let why = client.lost().unwrap_or_else(|| "the agent closed the connection".into());
                eprintln!("soamview: events ended: {why}");
                return Ok(3);
            }
        }
        // A line goes out as soon as nothing more is waiting: a reader sees each change
        // when it happens, and a burst costs one write.
        if client.events_waiting() == 0 {
            out.flush()?;
        }
    }
}

/// One event: `TIME KIND WHAT STATE DETAIL`, or a JSON object.
fn line(out: &mut dyn Write, ev: &WatchEvent, json: bool) -> std::io::Result<()> {
    let time = crate::output::rfc3339(ev.time_ms);
    if json {
        let v = serde_json::json!({
            "time": time,
            "time_ms": ev.time_ms,
            "kind": ev.kind,
            "app": ev.app,
            "session": ev.session,
            "task": ev.task,
            "state": ev.state,
            "detail": ev.detail,
        });
        return writeln!(out, "{v}");
    }
    let what = match (ev.session, ev.task) {
        (Some(s), Some(t)) => format!("{}:{s}:{t}", escape(&ev.app)),
        (Some(s), None) => format!("{}:{s}", escape(&ev.app)),
        _ => escape(&ev.app).into_owned(),
    };
    let detail = if ev.detail.is_empty() {
        String::new()
    } else {
        format!("  {}", escape(&ev.detail))
    };
    writeln!(out, "{time}  {:<10} {what}  {}{detail}", ev.kind, escape(&ev.state))
}

fn dropped(out: &mut dyn Write, count: u64, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "kind": "dropped", "count": count }))
    } else {
        writeln!(out, "({count} events left out here: this reader fell behind the agent)")
    }
}
