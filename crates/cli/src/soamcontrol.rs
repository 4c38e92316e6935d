//! `soamcontrol app|session|task|agent ...`: administration.

use crate::common::{Conn, run};
use clap::{Parser, Subcommand};
use serde_json::json;
use soam_proto::msg::{Reply, Request, SessionAction, TaskAction};
use soam_proto::{SessionRef, TaskRef};

#[derive(Debug, Parser)]
#[command(
    name = "soamcontrol",
    version,
    about = "Administer applications, sessions, tasks and the agent",
    after_help = crate::common::exit::after_help("Examples:\n  soamcontrol app disable sampleApp\n  soamcontrol session suspend sampleApp:3\n  soamcontrol task requeue sampleApp:3:17\n  soamcontrol agent status --json\n  soamcontrol agent shutdown")
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Print JSON where state is printed
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Enable or disable an application (a disabled one accepts no new sessions and runs nothing)
    App {
        #[command(subcommand)]
        action: AppAction,
    },
    /// Suspend, resume or kill (abort) a session
    Session {
        #[command(subcommand)]
        action: SessionCmd,
    },
    /// Kill or requeue a task
    Task {
        #[command(subcommand)]
        action: TaskCmd,
    },
    /// Agent status or shutdown
    Agent {
        #[command(subcommand)]
        action: AgentCmd,
    },
    /// Slurm allocations (see soamview cluster)
    Cluster {
        #[command(subcommand)]
        action: ClusterCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Give an allocation back: its workers stop, running tasks are requeued
    Release {
        /// Slurm job id of the allocation
        job: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    Enable { app: String },
    Disable { app: String },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Stop dispatching; running tasks get suspendGracePeriod, then are requeued
    Suspend { session: SessionRef },
    /// Dispatch again
    Resume { session: SessionRef },
    /// Abort the session: pending tasks are canceled, running ones get taskCleanupPeriod
    Kill { session: SessionRef },
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Cancel a pending or running task (running: after taskCleanupPeriod)
    Kill { task: TaskRef },
    /// Run a task again: a running one is stopped and requeued, an ended one re-run
    Requeue { task: TaskRef },
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Version, pid, uptime, slots, store path
    Status,
    /// Stop the agent cleanly
    Shutdown,
}

pub fn main() -> i32 {
    let args = Args::parse();
    run("soamcontrol", async move {
        let client = args.conn.connect("soamcontrol").await?;
        let (req, done) = match args.what {
            What::App {
                action: AppAction::Enable { app },
            } => (
                Request::SetAppEnabled {
                    app: app.clone(),
                    enabled: true,
                },
                format!("application '{app}' enabled"),
            ),
            What::App {
                action: AppAction::Disable { app },
            } => (
                Request::SetAppEnabled {
                    app: app.clone(),
                    enabled: false,
                },
                format!("application '{app}' disabled"),
            ),
            What::Session { action } => {
                let (session, action, word) = match action {
                    SessionCmd::Suspend { session } => (session, SessionAction::Suspend, "suspended"),
                    SessionCmd::Resume { session } => (session, SessionAction::Resume, "resumed"),
                    SessionCmd::Kill { session } => (session, SessionAction::Kill, "killed"),
                };
                let msg = format!("session {session} {word}");
                (Request::SessionControl { session, action }, msg)
            }
            What::Task { action } => {
                let (task, action, word) = match action {
                    TaskCmd::Kill { task } => (task, TaskAction::Kill, "killed"),
                    TaskCmd::Requeue { task } => (task, TaskAction::Requeue, "requeued"),
                };
                let msg = format!("task {}:{} {word}", task.session, task.task);
                (Request::TaskControl { task, action }, msg)
            }
            What::Agent {
                action: AgentCmd::Shutdown,
            } => (Request::Shutdown, "agent stopping".into()),
            What::Cluster {
                action: ClusterCmd::Release { job },
            } => (Request::ReleaseAllocation { job }, format!("allocation {job} released")),
            What::Agent { action: AgentCmd::Status } => {
                let Reply::Status(s) = client.call(Request::Status).await? else {
                    anyhow::bail!("unexpected reply")
                };
                if args.json {
                    println!(
                        "{}",
                        json!({
                            "version": s.version, "protocol": s.protocol, "pid": s.pid, "uptime_s": s.uptime_s, "slots": s.slots,
                            "instances": s.instances, "busy_instances": s.busy_instances, "apps": s.apps,
                            "open_sessions": s.open_sessions, "store": s.store, "socket": s.socket,
                        })
                    );
                } else {
                    println!("version:        {} (protocol {})", s.version, s.protocol);
                    println!("pid:            {}", s.pid);
                    println!("uptime:         {} s", s.uptime_s);
                    println!("slots:          {}", s.slots);
                    println!("instances:      {} ({} busy)", s.instances, s.busy_instances);
                    println!("applications:   {}", s.apps);
                    println!("open sessions:  {}", s.open_sessions);
                    println!("store:          {}", s.store);
                    println!("socket:         {}", s.socket);
                }
                return Ok(0);
            }
        };
        client.call(req).await?;
        println!("{done}");
        Ok(0)
    })
}
