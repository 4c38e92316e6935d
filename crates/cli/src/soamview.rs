//! `soamview app|session|task|history`: tables for people, `--json` for scripts,
//! `--watch` to follow.

use crate::common::{Conn, opt_time, run, time};
use crate::output::{Grid, Paged};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use soam_client::Client;
use soam_proto::SessionRef;
use soam_proto::msg::{AppInfo, Reply, Request, SessionInfo, SessionQuery, SessionState, TaskInfo, TaskState};
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "soamview",
    version,
    about = "Show applications, sessions, tasks and history",
    after_help = crate::common::exit::after_help("Examples:\n  soamview app\n  soamview app sampleApp -p\n  soamview session sampleApp --state open\n  soamview session --orphaned\n  soamview task sampleApp:3 --state error --json\n  soamview history sampleApp\n  soamview cluster --json")
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Print JSON (an array of objects keyed by the table's columns)
    #[arg(long, global = true)]
    pub json: bool,
    /// Redraw every second until interrupted
    #[arg(long, global = true)]
    pub watch: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Registered applications
    App {
        /// Only this application
        app: Option<String>,
        /// Long listing: limits, source file, registration time
        #[arg(short, long)]
        long: bool,
        /// Print the registered profile text
        #[arg(short, long)]
        profile: bool,
    },
    /// Sessions (open ones; -a adds ended ones from history)
    Session {
        app: Option<String>,
        /// Include ended sessions
        #[arg(short, long)]
        all: bool,
        /// Only sessions in this state (open, suspended, reconnecting, closed, aborted)
        #[arg(long, value_name = "S")]
        state: Option<SessionState>,
        /// Only detached, idle sessions with output nobody collected
        #[arg(long)]
        orphaned: bool,
    },
    /// Tasks of one session
    Task {
        /// APP:ID or APP:NAME
        session: SessionRef,
        /// Only tasks in this state (pending, running, done, error, canceled)
        #[arg(long, value_name = "S")]
        state: Option<TaskState>,
    },
    /// Slurm allocations: pending (with Slurm's reason) or running, their nodes and slots
    Cluster,
    /// Ended sessions; with APP:ID, that session's kept task history
    History {
        /// An application, or APP:ID / APP:NAME for one session's tasks
        target: Option<String>,
    },
}

pub fn main() -> i32 {
    let args = Args::parse();
    run("soamview", async move {
        let client = args.conn.connect("soamview").await?;
        loop {
            // JSON stays plain JSON under --watch: one document a second, no escapes.
            if args.watch && !args.json {
                let mut o = std::io::stdout();
                o.write_all(b"\x1b[2J\x1b[H")?;
            }
            let mut out = Paged::new(args.json);
            view(&client, &args, &mut out).await?;
            if !args.watch {
                return Ok(0);
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(0),
            }
        }
    })
}

pub fn session_grid(list: &[SessionInfo]) -> Grid {
    let mut g = Grid::new(&[
        "app",
        "id",
        "name",
        "type",
        "state",
        "priority",
        "pending",
        "running",
        "done",
        "error",
        "canceled",
        "undelivered",
        "created",
        "ended",
        "holder",
    ]);
    for s in list {
        g.row(vec![
            json!(s.app),
            json!(s.id),
            json!(s.name),
            json!(s.session_type),
            json!(s.state.as_str()),
            json!(s.priority),
            json!(s.pending),
            json!(s.running),
            json!(s.done),
            json!(s.error),
            json!(s.canceled),
            json!(s.undelivered),
            json!(time(s.created_ms)),
            json!(s.ended_ms.map(time)),
            json!(s.holder),
        ]);
    }
    g
}

/// Prints the view asked for, page by page as the agent sends them.
async fn view(client: &Client, args: &Args, out: &mut Paged) -> anyhow::Result<()> {
    match &args.what {
        What::App { app, long, profile } => {
            soam_client::each_page(
                async |from| client.app_page(app.clone(), from).await,
                |apps, last| {
                    if *profile {
                        use soam_proto::text::{escape, escape_lines};
                        let text: String = apps
                            .iter()
                            .map(|a| {
                                format!(
                                    "# {} ({})\n{}\n",
                                    escape(&a.name),
                                    escape(&a.source),
                                    escape_lines(a.profile.trim_end())
                                )
                            })
                            .collect();
                        out.raw(&text, last)
                    } else {
                        out.page(&app_grid(&apps, *long), last)
                    }
                    .map_err(anyhow::Error::from)
                },
            )
            .await?;
        }
        What::Cluster => {
            let Reply::Cluster(list) = client.call(Request::ListCluster).await? else {
                anyhow::bail!("unexpected reply")
            };
            let mut g = Grid::new(&[
                "job_id",
                "app",
                "service",
                "state",
                "reason",
                "nodes",
                "slots",
                "busy",
                "time_left_s",
            ]);
            for a in &list {
                // JSON keeps nodes as an array; the table joins them.
                let nodes = if args.json { json!(a.nodes) } else { json!(a.nodes.join(",")) };
                g.row(vec![
                    json!(a.job_id),
                    json!(a.app),
                    json!(a.service),
                    json!(a.state),
                    json!(a.reason),
                    nodes,
                    json!(a.slots),
                    json!(a.busy),
                    json!(a.time_left_s),
                ]);
            }
            out.page(&g, true)?;
        }
        What::Session { app, all, state, orphaned } => {
            let q = SessionQuery {
                app: app.clone(),
                all: *all,
                state: *state,
                orphaned: *orphaned,
            };
            soam_client::each_page(
                async |from| client.session_page(&q, from).await,
                |list, last| out.page(&session_grid(&list), last).map_err(anyhow::Error::from),
            )
            .await?;
        }
        What::Task { session, state } => {
            soam_client::each_page(
                async |from| client.task_page(session, *state, false, from.unwrap_or(0)).await,
                |list, last| out.page(&task_grid(&list), last).map_err(anyhow::Error::from),
            )
            .await?;
        }
        What::History { target: Some(t) } if t.contains(':') => {
            let session: SessionRef = t.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            soam_client::each_page(
                async |from| client.task_page(&session, None, true, from.unwrap_or(0)).await,
                |list, last| out.page(&task_history_grid(&list), last).map_err(anyhow::Error::from),
            )
            .await?;
        }
        What::History { target } => {
            let Reply::Sessions(list) = client.call(Request::History { app: target.clone() }).await? else {
                anyhow::bail!("unexpected reply")
            };
            out.page(&history_grid(&list), true)?;
        }
    }
    Ok(())
}

fn task_grid(list: &[TaskInfo]) -> Grid {
    let mut g = Grid::new(&[
        "task",
        "state",
        "attempts",
        "submitted",
        "started",
        "ended",
        "input_bytes",
        "output_bytes",
        "delivered",
        "node",
        "error",
    ]);
    for t in list {
        g.row(vec![
            json!(t.task),
            json!(t.state.as_str()),
            json!(t.attempts),
            json!(time(t.submitted_ms)),
            json!(opt_time(t.started_ms)),
            json!(opt_time(t.ended_ms)),
            json!(t.input_bytes),
            json!(t.output_bytes),
            json!(t.delivered),
            json!(t.node),
            t.error
                .as_ref()
                .map(|e| Value::from(e.lines().next().unwrap_or("")))
                .unwrap_or(Value::Null),
        ]);
    }
    g
}

fn task_history_grid(list: &[TaskInfo]) -> Grid {
    let mut g = Grid::new(&["task", "state", "attempts", "submitted", "started", "ended", "run_ms", "error"]);
    for t in list {
        let run = t.started_ms.zip(t.ended_ms).map(|(s, e)| e.saturating_sub(s));
        g.row(vec![
            json!(t.task),
            json!(t.state.as_str()),
            json!(t.attempts),
            json!(time(t.submitted_ms)),
            json!(opt_time(t.started_ms)),
            json!(opt_time(t.ended_ms)),
            json!(run),
            t.error
                .as_ref()
                .map(|e| Value::from(e.lines().next().unwrap_or("")))
                .unwrap_or(Value::Null),
        ]);
    }
    g
}

fn history_grid(list: &[SessionInfo]) -> Grid {
    let mut g = Grid::new(&[
        "app", "id", "name", "type", "state", "done", "error", "canceled", "created", "ended", "reason",
    ]);
    for s in list {
        g.row(vec![
            json!(s.app),
            json!(s.id),
            json!(s.name),
            json!(s.session_type),
            json!(s.state.as_str()),
            json!(s.done),
            json!(s.error),
            json!(s.canceled),
            json!(time(s.created_ms)),
            json!(s.ended_ms.map(time)),
            json!(s.reason),
        ]);
    }
    g
}

fn app_grid(apps: &[AppInfo], long: bool) -> Grid {
    let mut cols = vec!["app", "state", "policy", "sessions", "services", "session_types"];
    if long {
        cols.extend(["max_sessions", "max_slots", "registered", "source"]);
    }
    let mut g = Grid::new(&cols);
    for a in apps {
        let types: Vec<String> = a
            .session_types
            .iter()
            .map(|t| if t.is_empty() { "\"\"".into() } else { t.clone() })
            .collect();
        let mut row = vec![
            json!(a.name),
            json!(if a.enabled { "enabled" } else { "disabled" }),
            json!(a.policy),
            json!(a.open_sessions),
            json!(a.services.join(",")),
            json!(types.join(",")),
        ];
        if long {
            row.extend([
                json!(a.max_sessions),
                json!(a.max_slots),
                json!(time(a.registered_ms)),
                json!(a.source),
            ]);
        }
        g.row(row);
    }
    g
}
