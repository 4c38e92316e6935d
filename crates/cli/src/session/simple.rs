//! The one-request subcommands: create, detach, close, abort, update.

use super::{CreateArgs, SessionArg, UpdateArgs};
use crate::common::Conn;
use anyhow::Context;
use soam_client::ClientError;
use soam_client::journal::{self, Release};
use soam_proto::msg::{CreateSession, Reply, Request};

pub fn read_common(path: Option<&std::path::Path>) -> anyhow::Result<bytes::Bytes> {
    match path {
        None => Ok(bytes::Bytes::new()),
        Some(p) => Ok(std::fs::read(p)
            .with_context(|| format!("cannot read common data {}", p.display()))?
            .into()),
    }
}

pub async fn create(conn: &Conn, a: CreateArgs) -> anyhow::Result<i32> {
    let common_data = read_common(a.common_data.as_deref())?;
    let client = conn.connect("soamsession create").await?;
    let req = Request::CreateSession(CreateSession {
        app: a.app,
        session_type: a.session_type,
        name: a.name,
        tag: a.tag,
        common_data,
        direct: a.direct,
        attach: false,
    });
    let Reply::Session(s) = client.call(req).await? else {
        anyhow::bail!("unexpected reply")
    };
    if a.json {
        crate::changed::print_session("created", Some(&s))?;
    } else {
        crate::outln!("{}", s.id);
    }
    Ok(0)
}

pub async fn detach(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    release(conn, a, Release::Detach, "detached", "; its workload keeps running").await
}

pub async fn close(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    release(conn, a, Release::Close, "closed", "").await
}

pub async fn abort(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    release(conn, a, Release::Abort, "aborted", "").await
}

/// Detaches, closes or aborts; one that cannot reach the agent is kept in the offline
/// journal and carried out at the next contact.
async fn release(conn: &Conn, a: SessionArg, how: Release, done: &str, more: &str) -> anyhow::Result<i32> {
    let session = a.session;
    let name = format!("soamsession {}", how.as_str());
    let opts = conn.options(&name);
    let sent = async {
        crate::replay::replay_quietly(&opts).await;
        let client = soam_client::Client::connect(&opts).await?;
        let (target, shown) = crate::changed::by_id(&client, &session).await?;
        let req = match how {
            Release::Detach => Request::Detach { session: target.clone() },
            Release::Close => Request::Close { session: target.clone() },
            Release::Abort => Request::Abort { session: target.clone() },
        };
        client.call(req).await?;
        Ok::<_, ClientError>((client, target, shown))
    };
    match sent.await {
        Ok((client, target, shown)) => {
            if a.json {
                crate::changed::print_session(done, crate::changed::session(&client, &target).await?.as_ref())?;
            } else {
                crate::common::confirm(format_args!("session {shown} {done}{more}"));
            }
            Ok(0)
        }
        Err(e @ (ClientError::NoAgent(_) | ClientError::Lost(_))) => {
            let n = journal::add_release(&opts, session.clone(), how)?;
            if a.json {
                let pending = serde_json::json!({ "session": session.to_string(), "journal_entry": n });
                crate::changed::print(&format!("{}-pending", how.as_str()), pending)?;
            }
            eprintln!(
                "soamsession: the agent cannot be reached ({e}); the {} of session {session} is pending \
                 (journal entry {n}): it is carried out at the next contact (soamsession sync)",
                how.as_str()
            );
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn update(conn: &Conn, a: UpdateArgs) -> anyhow::Result<i32> {
    let data = read_common(Some(&a.common_data))?;
    let client = conn.connect("soamsession update").await?;
    let (session, shown) = crate::changed::by_id(&client, &a.session).await?;
    client.call(Request::UpdateCommonData { session, data }).await?;
    crate::common::confirm(format_args!("session {shown} common data updated"));
    Ok(0)
}
