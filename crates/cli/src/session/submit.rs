//! `soamsession submit`: send tasks (many per frame, pipelined) and collect outputs.

use super::collect::{Collector, OutputArgs, Reconnect, ResilienceArgs, Stop, Until, report_stop};
use super::inputs::InputArgs;
use crate::common::Conn;
use soam_proto::msg::{CreateSession, Reply, Request};
use soam_proto::{SessionKey, SessionRef};

/// Most tasks in one Submit frame (bytes are capped separately).
const BATCH_TASKS: usize = 16_384;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Create a session of this application (closed when its tasks have ended)
    #[arg(long, required_unless_present = "session", conflicts_with = "session")]
    pub app: Option<String>,
    /// Session type, with --app
    #[arg(long = "type", value_name = "T", requires = "app")]
    pub session_type: Option<String>,
    /// Submit into this open session (APP:ID or APP:NAME); left open when done
    #[arg(long, value_name = "APP:ID")]
    pub session: Option<SessionRef>,
    /// The session was created with --direct (FetchResultsDirectly)
    #[arg(long)]
    pub direct: bool,
    /// Submit, print the session, and leave without waiting for outputs
    #[arg(long)]
    pub detach: bool,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub resilience: ResilienceArgs,
}

pub async fn submit(conn: &Conn, a: SubmitArgs) -> anyhow::Result<i32> {
    let inputs = a.inputs.read()?;
    if let Some((i, big)) = inputs.iter().enumerate().find(|(_, t)| t.len() > soam_proto::frame::MAX_PAYLOAD) {
        anyhow::bail!(
            "task {} input is {} bytes; the limit is {} bytes",
            i + 1,
            big.len(),
            soam_proto::frame::MAX_PAYLOAD
        );
    }
    let mut client = conn.connect("soamsession submit").await?;
    let (sref, id, created) = match (&a.app, &a.session) {
        (Some(app), _) => {
            let req = Request::CreateSession(CreateSession {
                app: app.clone(),
                session_type: a.session_type.clone(),
                name: None,
                tag: None,
                common_data: Default::default(),
                direct: a.direct,
                attach: true,
            });
            let Reply::Session(s) = client.call(req).await? else {
                anyhow::bail!("unexpected reply")
            };
            (
                SessionRef {
                    app: s.app,
                    key: SessionKey::Id(s.id),
                },
                s.id,
                true,
            )
        }
        (None, Some(r)) => {
            let Reply::Opened { session: s, .. } = client
                .call(Request::OpenSession {
                    session: r.clone(),
                    direct: a.direct,
                    all: false,
                })
                .await?
            else {
                anyhow::bail!("unexpected reply")
            };
            (r.clone(), s.id, false)
        }
        (None, None) => anyhow::bail!("give --app or --session"),
    };
    let total = inputs.len() as u64;
    // All batches go out before the first reply is awaited. Every batch but the last is
    // staged, and the last submits them all: the agent accepts the whole submission or
    // none of it (an agent older than staging takes each batch on its own).
    let batches = soam_client::batches(inputs, BATCH_TASKS.min(soam_proto::frame::MAX_TASKS_PER_SUBMIT));
    let staging = client.agent_protocol >= 3;
    let n = batches.len();
    let replies: Vec<_> = batches
        .into_iter()
        .enumerate()
        .map(|(i, tasks)| {
            let session = sref.clone();
            if staging && i + 1 < n {
                client.send(Request::Stage { session, tasks })
            } else {
                client.send(Request::Submit { session, tasks })
            }
        })
        .collect();
    let (mut first, mut last) = (u64::MAX, 0);
    for r in replies {
        let reply = match r.await {
            Ok(r) => r,
            Err(soam_client::ClientError::Lost(why)) => {
                // Without an answer nobody knows whether this batch was taken.
                anyhow::bail!(
                    "connection to the agent lost while submitting ({why}); some of the {total} tasks may not have been accepted: \
                     check with soamview session {}",
                    sref.app
                );
            }
            Err(e) => {
                // A session this command created would otherwise wait for its
                // disconnect action; tasks already accepted in it end with it.
                if created {
                    let _ = client.call(Request::Close { session: sref.clone() }).await;
                }
                return Err(e.into());
            }
        };
        let (f, count) = match reply {
            Reply::Submitted { first, count } => (first, count),
            Reply::Staged { .. } => continue,
            _ => anyhow::bail!("unexpected reply"),
        };
        if count > 0 {
            first = first.min(f);
            last = last.max(f + count - 1);
        }
    }
    let addr = format!("{}:{id}", sref.app);
    if a.detach {
        client.call(Request::Detach { session: sref.clone() }).await?;
        println!("{id}");
        eprintln!("submitted {total} tasks to session {addr}; collect them with: soamsession reopen {addr}");
        return Ok(0);
    }
    let mut col = Collector::new(a.output.clone(), (total > 0).then_some(first), total)?;
    let mut until = Until {
        mine: Some((first, last, total)),
        ..Default::default()
    };
    let rc = Reconnect::new(&a.resilience, conn.options("soamsession submit"), a.direct);
    let stop = col.collect(&mut client, &sref, id, &mut until, &rc).await?;
    col.finish()?;
    if let Stop::Interrupted = stop {
        let _ = client.call(Request::Detach { session: sref.clone() }).await;
    }
    let here = SessionRef {
        app: sref.app.clone(),
        key: SessionKey::Id(id),
    };
    if let Some(code) = report_stop(&stop, &here) {
        return Ok(code);
    }
    let last = if created {
        Request::Close { session: sref.clone() }
    } else {
        Request::Detach { session: sref.clone() }
    };
    if let Some(stop) = rc.finish(&mut client, last, &sref).await?
        && let Some(code) = report_stop(&stop, &here)
    {
        return Ok(code);
    }
    if col.failed > 0 {
        eprintln!("soamsession: {} of {total} tasks did not succeed (session {addr})", col.failed);
        return Ok(crate::common::exit::TASKS_FAILED);
    }
    Ok(0)
}
