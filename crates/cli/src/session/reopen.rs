//! `soamsession reopen` and `fetch`: take a session and collect its outputs.

use super::collect::{Collector, OutputArgs, ResilienceArgs, Stop, Until, finish, report_stop};
use crate::common::Conn;
use soam_client::session::Session;
use soam_proto::SessionRef;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ReopenArgs {
    /// APP:ID or APP:NAME
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
    pub session: SessionRef,
    /// Also outputs already delivered, where the session type keeps them (discardResultsOnDelivery: false)
    #[arg(long)]
    pub all: bool,
    /// Deliver what is ready now and detach, leaving the session running (as submit --detach)
    #[arg(long)]
    pub detach: bool,
    /// The old spelling of --detach (before 0.2), kept for a release
    #[arg(long, hide = true)]
    pub no_wait: bool,
    /// Wait for every task, then leave the session open instead of closing it
    #[arg(long, conflicts_with_all = ["detach", "no_wait"])]
    pub keep_open: bool,
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
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
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

pub async fn reopen(conn: &Conn, a: ReopenArgs) -> anyhow::Result<i32> {
    let cfg = a.resilience.config(conn.options("soamsession reopen"), a.direct);
    let (mut s, to_deliver) = Session::open(cfg, &a.session, a.all).await?;
    let outstanding = s.info().pending + s.info().running;
    let mut col = Collector::new(a.output.clone(), None, to_deliver + outstanding)?;
    if a.no_wait {
        eprintln!("soamsession: warning: reopen --no-wait is now spelt --detach (as in submit); --no-wait goes in the next release");
    }
    let detach = a.detach || a.no_wait;
    let mut until = if detach {
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
    let stop = col.collect(&mut s, &mut until).await?;
    // A closed output takes nothing more, not even what --ordered held back.
    if !matches!(stop, Stop::OutputClosed { .. }) {
        col.finish()?;
    }
    if let Stop::Interrupted | Stop::OutputClosed { .. } = stop {
        let _ = s.detach().await;
        return Ok(report_stop(&stop, &a.session).unwrap_or(0));
    }
    if let Some(code) = report_stop(&stop, &a.session) {
        return Ok(code);
    }
    // Drained means nothing is pending, running or left to deliver: safe to close.
    let close = matches!(stop, Stop::Drained) && !a.keep_open && !detach;
    if let Some(stop) = finish(s, close).await?
        && let Some(code) = report_stop(&stop, &a.session)
    {
        return Ok(code);
    }
    Ok(if col.failed > 0 { crate::common::exit::TASKS_FAILED } else { 0 })
}

pub async fn fetch(conn: &Conn, a: FetchArgs) -> anyhow::Result<i32> {
    // fetch is short-lived: it does not wait out an agent restart.
    let resilience = ResilienceArgs {
        ping_interval: 5.0,
        reconnect_timeout: 0.0,
    };
    let cfg = resilience.config(conn.options("soamsession fetch"), a.direct);
    let (mut s, to_deliver) = Session::open(cfg, &a.session, false).await?;
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
    let stop = col.collect(&mut s, &mut until).await?;
    if let Stop::OutputClosed { .. } = stop {
        let _ = s.detach().await;
        return Ok(report_stop(&stop, &a.session).unwrap_or(0));
    }
    col.finish()?;
    if let Some(code) = report_stop(&stop, &a.session) {
        return Ok(code);
    }
    s.detach().await?;
    Ok(if col.failed > 0 { crate::common::exit::TASKS_FAILED } else { 0 })
}
