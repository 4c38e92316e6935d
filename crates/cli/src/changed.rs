//! What a state-changing command prints under `--json`: the object it changed, as it
//! is afterwards (the same row `soamview` prints), with the act that was done.
//!
//! The agent's replies to acts carry no object, so it is read back with one listing
//! request; a script gets one JSON object on stdout either way.

use crate::output::print_json;
use crate::rows::{AppRow, SessionRow, TaskRow, Users};
use serde::Serialize;
use soam_client::Client;
use soam_proto::addr::SessionKey;
use soam_proto::msg::{SessionInfo, SessionInfoRef, SessionQuery};
use soam_proto::{SessionRef, TaskRef};

/// `{"action": "suspended", ...the object's fields}`.
#[derive(Serialize)]
pub struct Changed<'a, T: Serialize> {
    pub action: &'a str,
    #[serde(flatten)]
    pub object: T,
}

/// Prints `object` with `action` for a script.
pub fn print<T: Serialize>(action: &str, object: T) -> anyhow::Result<()> {
    print_json(&Changed { action, object })
}

/// An application as it is now.
pub async fn app(client: &Client, name: &str) -> anyhow::Result<Option<AppRow>> {
    let (apps, _) = client.app_page(Some(name.to_string()), None).await?;
    Ok(apps.iter().find(|a| a.name == name).map(AppRow::from))
}

/// Whether `s` is the session `r` addresses: by id, by name, or by tag.
pub fn addresses(r: &SessionRef, s: &SessionInfoRef<'_>) -> bool {
    s.app == r.app
        && match &r.key {
            SessionKey::Id(id) => s.id == *id,
            SessionKey::Name(n) => s.name == Some(n) || s.tag == Some(n),
        }
}

/// `r` as the id of the open session it names now, with how to show it
/// (`a:7 (nightly)`): a command given a name (or a tag) acts on that id and says which
/// session the name meant. An id, or a name no open session answers to, stays as it is
/// (the agent then says why it cannot act).
pub async fn by_id(client: &Client, r: &SessionRef) -> Result<(SessionRef, String), soam_client::ClientError> {
    let SessionKey::Name(n) = &r.key else {
        return Ok((r.clone(), r.to_string()));
    };
    let q = SessionQuery {
        app: Some(r.app.clone()),
        all: false,
        state: None,
        orphaned: false,
    };
    // Open names are unique; a tag stands for a session only when one has it.
    let (mut named, mut tagged) = (None, Vec::new());
    soam_client::each_session_page(client, &q, |list, _| {
        for s in list.iter().filter(|s| addresses(r, s)) {
            if s.name == Some(n.as_str()) {
                named = Some(s.id);
            } else {
                tagged.push(s.id);
            }
        }
        Ok::<_, soam_client::ClientError>(())
    })
    .await?;
    Ok(match (named, tagged.as_slice()) {
        (Some(id), _) | (None, &[id]) => (
            SessionRef {
                app: r.app.clone(),
                key: SessionKey::Id(id),
            },
            format!("{}:{id} ({n})", r.app),
        ),
        _ => (r.clone(), r.to_string()),
    })
}

/// A session as it is now, open or ended: the agent's record, which [`print_session`]
/// prints as the row `soamview session --json` shows (not as it is).
pub async fn session(client: &Client, r: &SessionRef) -> anyhow::Result<Option<SessionInfo>> {
    let q = SessionQuery {
        app: Some(r.app.clone()),
        all: true,
        state: None,
        orphaned: false,
    };
    let mut found: Option<SessionInfo> = None;
    soam_client::each_session_page(client, &q, |list, _| {
        // A name beats a tag; an id is unique.
        for s in list.iter().filter(|s| addresses(r, s)) {
            let by_name = matches!(&r.key, SessionKey::Name(n) if s.name == Some(n));
            if found.is_none() || by_name {
                found = Some(s.to_owned());
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await?;
    Ok(found)
}

/// Prints a session's row (`null` for none), as [`print()`] does.
pub fn print_session(action: &str, s: Option<&SessionInfo>) -> anyhow::Result<()> {
    let mut users = Users::default();
    users.load(s.map(|s| s.owner_uid));
    print(action, s.map(|s| SessionRow::new(s.view(), &users)))
}

/// A task as it is now (from the session's kept history once it has ended).
pub async fn task(client: &Client, t: &TaskRef) -> anyhow::Result<Option<TaskRow>> {
    let from = t.task.saturating_sub(1);
    let list = match client.task_page(&t.session, None, false, from).await {
        Ok((list, _)) => list,
        Err(_) => client.task_page(&t.session, None, true, from).await?.0,
    };
    Ok(list.iter().find(|i| i.task == t.task).map(|i| TaskRow::new(i, false)))
}
