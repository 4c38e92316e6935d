//! `soamsession submit`: send tasks (many per frame, pipelined) and collect outputs.

use super::collect::{Collector, OutputArgs, ResilienceArgs, Stop, Until, finish, report_stop};
use super::inputs::InputArgs;
use crate::common::Conn;
use soam_client::ClientError;
use soam_client::journal;
use soam_client::session::{Session, new_request_id};
use soam_proto::SessionRef;
use soam_proto::msg::CreateSession;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Create a session of this application (closed when its tasks have ended)
    #[arg(long, required_unless_present = "session", conflicts_with = "session", add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: Option<String>,
    /// Session type, with --app
    #[arg(long = "type", value_name = "T", requires = "app")]
    pub session_type: Option<String>,
    /// Submit into this open session (APP:ID or APP:NAME); left open when done
    #[arg(long, value_name = "APP:ID", add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
    pub session: Option<SessionRef>,
    /// The session was created with --direct (FetchResultsDirectly)
    #[arg(long)]
    pub direct: bool,
    /// Submit, print the session, and leave without waiting for outputs
    #[arg(long)]
    pub detach: bool,
    /// If no agent can be reached, keep the submission in the offline journal (it is
    /// submitted at the next contact: soamsession sync) instead of failing
    #[arg(long)]
    pub offline_ok: bool,
    /// Once the tasks are accepted, print the submission as one JSON object on stdout
    /// (app, id, session, first_task, last_task, count), before any output; use with
    /// --detach or --jsonl so that stdout stays JSON
    #[arg(long)]
    pub json: bool,
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
    let opts = conn.options("soamsession submit");
    // What was journalled before goes first, in its order.
    crate::replay::replay_quietly(&opts).await;
    let cfg = a.resilience.config(opts.clone(), a.direct);
    let total = inputs.len() as u64;
    let target = match (&a.app, &a.session) {
        (Some(app), _) => journal::new_target(app, a.session_type.as_deref(), a.direct),
        (None, Some(r)) => journal::Target::Session(r.clone()),
        (None, None) => anyhow::bail!("give --app or --session"),
    };
    // The submission's id, chosen once: the agent, or a later replay of the journal,
    // takes it once however often it is sent.
    let request = new_request_id();
    let opened = match &target {
        journal::Target::New {
            app,
            session_type,
            direct,
            create,
        } => {
            let c = CreateSession {
                app: app.clone(),
                session_type: session_type.clone(),
                name: None,
                tag: None,
                common_data: Default::default(),
                direct: *direct,
                attach: true,
            };
            Session::create_as(cfg, *create, c).await.map(|s| (s, true))
        }
        journal::Target::Session(r) => Session::open(cfg, r, false).await.map(|(s, _)| (s, false)),
    };
    let (mut s, created) = match opened {
        Ok(s) => s,
        Err(e @ (ClientError::NoAgent(_) | ClientError::Lost(_))) if a.offline_ok => {
            return journalled(&opts, target, request, &inputs, &e);
        }
        Err(e) => return Err(e.into()),
    };
    let addr = s.addr().clone();
    let id = s.info().id;
    let sub = match s.submit_as(request, inputs.clone()).await {
        Ok(sub) => sub,
        Err(e @ ClientError::Lost(_)) if a.offline_ok => {
            // Maybe taken already: the journal's replay sends the same id, so it counts once.
            return journalled(&opts, journal::Target::Session(addr), request, &inputs, &e);
        }
        Err(e @ ClientError::Lost(_)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "nothing of the {total} tasks is known to have been accepted: check with soamview session {addr}"
            )));
        }
        Err(e) => {
            // A session this command created would otherwise wait for its disconnect
            // action; nothing of the submission was accepted.
            if created {
                let _ = s.close().await;
            }
            return Err(e.into());
        }
    };
    // The ids the tasks got, as a person and a script read them.
    let range = match sub.count {
        0 => "no tasks".to_string(),
        1 => format!("task {}", sub.first),
        n => format!("tasks {}-{}", sub.first, sub.first + n - 1),
    };
    if a.json {
        let o = serde_json::json!({
            "app": addr.app,
            "id": id,
            "session": addr.to_string(),
            "first_task": (sub.count > 0).then_some(sub.first),
            "last_task": (sub.count > 0).then_some(sub.first + sub.count.max(1) - 1),
            "count": sub.count,
        });
        crate::outln!("{o}");
    }
    if a.detach {
        s.detach().await?;
        if !a.json {
            crate::outln!("{id}");
        }
        eprintln!("submitted {range} to session {addr}; collect them with: soamsession reopen {addr}");
        return Ok(0);
    }
    let mut col = Collector::new(a.output.clone(), (total > 0).then_some(sub.first), total)?;
    let mut until = Until {
        mine: Some((sub.first, sub.first + sub.count.max(1) - 1, sub.count)),
        ..Default::default()
    };
    let stop = col.collect(&mut s, &mut until).await?;
    // A closed output takes nothing more, not even what --ordered held back.
    if !matches!(stop, Stop::OutputClosed { .. }) {
        col.finish()?;
    }
    if let Stop::Interrupted | Stop::OutputClosed { .. } = stop {
        let _ = s.detach().await;
        return Ok(report_stop(&stop, &addr).unwrap_or(0));
    }
    if let Some(code) = report_stop(&stop, &addr) {
        return Ok(code);
    }
    if let Some(stop) = finish(s, created).await?
        && let Some(code) = report_stop(&stop, &addr)
    {
        return Ok(code);
    }
    if col.failed > 0 {
        eprintln!("soamsession: {} of {total} tasks did not succeed (session {addr})", col.failed);
        return Ok(crate::common::exit::TASKS_FAILED);
    }
    Ok(0)
}

/// Keeps the submission in the offline journal and says so.
fn journalled(
    opts: &soam_client::ConnectOptions,
    target: journal::Target,
    request: soam_proto::msg::RequestId,
    inputs: &[bytes::Bytes],
    why: &ClientError,
) -> anyhow::Result<i32> {
    let what = match &target {
        journal::Target::Session(r) => format!("session {r}"),
        journal::Target::New { app, .. } => format!("a new session of {app}"),
    };
    let n = journal::add_submit(opts, target, request, inputs)?;
    eprintln!(
        "soamsession: the agent cannot be reached ({why}); {} tasks for {what} kept in the offline journal as entry {n} \
         ({}). They are submitted at the next contact: soamsession sync",
        inputs.len(),
        journal::path(opts).display()
    );
    Ok(crate::common::exit::OK)
}
