//! `soamsession submit`: send tasks (many per frame, pipelined) and collect outputs.

use super::collect::{Collector, OutputArgs, ResilienceArgs, Stop, Until, finish, report_stop};
use super::inputs::InputArgs;
use crate::common::Conn;
use soam_client::ClientError;
use soam_client::session::Session;
use soam_proto::SessionRef;

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
    let cfg = a.resilience.config(conn.options("soamsession submit"), a.direct);
    let (mut s, created) = match (&a.app, &a.session) {
        (Some(app), _) => (Session::create(cfg, app, a.session_type.as_deref()).await?, true),
        (None, Some(r)) => (Session::open(cfg, r, false).await?.0, false),
        (None, None) => anyhow::bail!("give --app or --session"),
    };
    let total = inputs.len() as u64;
    let addr = s.addr().clone();
    let id = s.info().id;
    let sub = match s.submit(inputs).await {
        Ok(sub) => sub,
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
    if a.detach {
        s.detach().await?;
        println!("{id}");
        eprintln!("submitted {total} tasks to session {addr}; collect them with: soamsession reopen {addr}");
        return Ok(0);
    }
    let mut col = Collector::new(a.output.clone(), (total > 0).then_some(sub.first), total)?;
    let mut until = Until {
        mine: Some((sub.first, sub.first + sub.count.max(1) - 1, sub.count)),
        ..Default::default()
    };
    let stop = col.collect(&mut s, &mut until).await?;
    col.finish()?;
    if let Stop::Interrupted = stop {
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
