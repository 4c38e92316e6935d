//! `soamsession reopen` and `fetch`: take a session and collect its outputs.

use super::collect::{Collector, OutputArgs, Reconnect, ResilienceArgs, Stop, Until, report_stop};
use crate::common::Conn;
use soam_proto::SessionRef;
use soam_proto::msg::{Reply, Request, SessionInfo};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ReopenArgs {
    /// APP:ID or APP:NAME
    pub session: SessionRef,
    /// Also outputs already delivered, where the session type keeps them (discardResultsOnDelivery: false)
    #[arg(long)]
    pub all: bool,
    /// Deliver what is ready now and detach
    #[arg(long)]
    pub no_wait: bool,
    /// Leave the session open when every task has ended (default: close it)
    #[arg(long)]
    pub detach: bool,
    /// The session was created with --direct (FetchResultsDirectly)
    #[arg(long)]
    pub direct: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub resilience: ResilienceArgs,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// APP:ID or APP:NAME
    pub session: SessionRef,
    /// Take at most N outputs (the rest stay for later)
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Wait up to S seconds for outputs not ready yet (default: take what is ready)
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// The session was created with --direct (FetchResultsDirectly)
    #[arg(long)]
    pub direct: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

async fn open(client: &soam_client::Client, r: &SessionRef, direct: bool, all: bool) -> anyhow::Result<(SessionInfo, u64)> {
    match client
        .call(Request::OpenSession {
            session: r.clone(),
            direct,
            all,
        })
        .await?
    {
        Reply::Opened { session, to_deliver } => Ok((session, to_deliver)),
        _ => anyhow::bail!("unexpected reply"),
    }
}

pub async fn reopen(conn: &Conn, a: ReopenArgs) -> anyhow::Result<i32> {
    let mut client = conn.connect("soamsession reopen").await?;
    let (s, to_deliver) = open(&client, &a.session, a.direct, a.all).await?;
    let outstanding = s.pending + s.running;
    let mut col = Collector::new(a.output.clone(), None, to_deliver + outstanding)?;
    let mut until = if a.no_wait {
        Until {
            messages: Some(to_deliver),
            ..Default::default()
        }
    } else {
        Until {
            drained: true,
            ..Default::default()
        }
    };
    let rc = Reconnect::new(&a.resilience, conn.options("soamsession reopen"), a.direct);
    let stop = col.collect(&mut client, &a.session, s.id, &mut until, &rc).await?;
    col.finish()?;
    if let Some(code) = report_stop(&stop, &a.session) {
        if let Stop::Interrupted = stop {
            let _ = client
                .call(Request::Detach {
                    session: a.session.clone(),
                })
                .await;
        }
        return Ok(code);
    }
    // Drained means nothing is pending, running or left to deliver: safe to close.
    let last = if matches!(stop, Stop::Drained) && !a.detach && !a.no_wait {
        Request::Close {
            session: a.session.clone(),
        }
    } else {
        Request::Detach {
            session: a.session.clone(),
        }
    };
    if let Some(stop) = rc.finish(&mut client, last, &a.session).await?
        && let Some(code) = report_stop(&stop, &a.session)
    {
        return Ok(code);
    }
    Ok(if col.failed > 0 { crate::common::exit::TASKS_FAILED } else { 0 })
}

pub async fn fetch(conn: &Conn, a: FetchArgs) -> anyhow::Result<i32> {
    let mut client = conn.connect("soamsession fetch").await?;
    let (s, to_deliver) = open(&client, &a.session, a.direct, false).await?;
    let mut col = Collector::new(a.output.clone(), None, 0)?;
    let mut until = match a.timeout {
        Some(t) if t > 0.0 => Until {
            max: a.max,
            drained: true,
            deadline: Some(Instant::now() + Duration::from_secs_f64(t)),
            ..Default::default()
        },
        _ => Until {
            max: a.max,
            messages: Some(to_deliver),
            ..Default::default()
        },
    };
    // fetch is short-lived: it does not wait out an agent restart.
    let rc = Reconnect::new(
        &ResilienceArgs {
            ping_interval: 5.0,
            reconnect_timeout: 0.0,
        },
        conn.options("soamsession fetch"),
        a.direct,
    );
    let stop = col.collect(&mut client, &a.session, s.id, &mut until, &rc).await?;
    col.finish()?;
    if let Some(code) = report_stop(&stop, &a.session) {
        return Ok(code);
    }
    client
        .call(Request::Detach {
            session: a.session.clone(),
        })
        .await?;
    Ok(if col.failed > 0 { crate::common::exit::TASKS_FAILED } else { 0 })
}
