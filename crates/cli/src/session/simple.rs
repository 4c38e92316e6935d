//! The one-request subcommands: create, detach, close, abort, update.

use super::{CreateArgs, SessionArg, UpdateArgs};
use crate::common::Conn;
use anyhow::Context;
use serde_json::json;
use soam_proto::msg::{CreateSession, Reply, Request, SessionInfo};

pub fn session_json(s: &SessionInfo) -> serde_json::Value {
    json!({
        "app": s.app, "id": s.id, "name": s.name, "tag": s.tag, "type": s.session_type,
        "state": s.state.as_str(), "priority": s.priority, "recoverable": s.recoverable, "direct": s.direct,
    })
}

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
        println!("{}", session_json(&s));
    } else {
        println!("{}", s.id);
    }
    Ok(0)
}

pub async fn detach(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    let client = conn.connect("soamsession detach").await?;
    client
        .call(Request::Detach {
            session: a.session.clone(),
        })
        .await?;
    eprintln!("session {} detached; its workload keeps running", a.session);
    Ok(0)
}

pub async fn close(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    let client = conn.connect("soamsession close").await?;
    client
        .call(Request::Close {
            session: a.session.clone(),
        })
        .await?;
    eprintln!("session {} closed", a.session);
    Ok(0)
}

pub async fn abort(conn: &Conn, a: SessionArg) -> anyhow::Result<i32> {
    let client = conn.connect("soamsession abort").await?;
    client
        .call(Request::Abort {
            session: a.session.clone(),
        })
        .await?;
    eprintln!("session {} aborted", a.session);
    Ok(0)
}

pub async fn update(conn: &Conn, a: UpdateArgs) -> anyhow::Result<i32> {
    let data = read_common(Some(&a.common_data))?;
    let client = conn.connect("soamsession update").await?;
    client
        .call(Request::UpdateCommonData {
            session: a.session.clone(),
            data,
        })
        .await?;
    eprintln!("session {} common data updated", a.session);
    Ok(0)
}
