//! `soamcontrol app|session|task|agent ...`: administration.

use crate::changed;
use crate::common::{Conn, run};
use crate::output::print_json;
use crate::rows::StatusRow;
use clap::{Parser, Subcommand};
use soam_client::Client;
use soam_proto::msg::{Reply, Request, SessionAction, TaskAction};
use soam_proto::{SessionRef, TaskRef};

#[derive(Debug, Parser)]
#[command(
    name = "soamcontrol",
    version,
    about = "Administer applications, sessions, tasks and the agent",
    after_help = crate::common::exit::after_help("Examples:\n  soamcontrol app disable sampleApp\n  soamcontrol app enable sampleApp\n  soamcontrol session suspend sampleApp:3\n  soamcontrol session resume sampleApp:3\n  soamcontrol session kill sampleApp:nightly\n  soamcontrol task kill sampleApp:3:17\n  soamcontrol task requeue sampleApp:3:17\n  soamcontrol agent status --json\n  soamcontrol agent log -n 100 -f\n  soamcontrol agent shutdown\n  soamcontrol cluster release 4242")
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Print the changed object (or the status) as JSON, with an "action" key for acts
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub login: crate::common::SymphonyLogin,
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
    /// Agent status, log or shutdown
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
    /// Let new sessions of the application be created again
    Enable {
        /// The application (as registered)
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
        app: String,
    },
    /// Refuse new sessions of the application; open ones go on
    Disable {
        /// The application (as registered)
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Stop dispatching; running tasks get suspendGracePeriod, then are requeued
    Suspend {
        /// The session: APP:ID or APP:NAME
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        session: SessionRef,
    },
    /// Dispatch again
    Resume {
        /// The session: APP:ID or APP:NAME
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        session: SessionRef,
    },
    /// Abort the session: pending tasks are canceled, running ones get taskCleanupPeriod
    Kill {
        /// The session: APP:ID or APP:NAME
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        session: SessionRef,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Cancel a pending or running task (running: after taskCleanupPeriod)
    Kill {
        /// The task: APP:ID:TASK or APP:NAME:TASK
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        task: TaskRef,
    },
    /// Run a task again: a running one is stopped and requeued, an ended one re-run
    Requeue {
        /// The task: APP:ID:TASK or APP:NAME:TASK
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        task: TaskRef,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Version, pid, uptime, slots, store path of the running agent; never starts one
    /// (none running: exit 3)
    Status,
    /// The agent's log (service stderr included, as "service APP/INSTANCE: ..."), read
    /// from its data folder: works when the agent is down
    Log {
        /// Lines to print from the end
        #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
        lines: usize,
        /// Go on printing what is written, across rotations, until interrupted
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop the running agent cleanly; waits until it has stopped. Never starts one
    /// (none running: exit 3)
    Shutdown {
        /// Return once the agent has accepted the request, without waiting for it to stop
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the agent to stop
        #[arg(long, value_name = "S", default_value_t = 120)]
        timeout: u64,
    },
}

pub fn main() -> i32 {
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args: Args = crate::common::parse();
    args.login.note("soamcontrol");
    run("soamcontrol", async move {
        let json = args.json;
        // Each act connects for itself: reading the log must work with no agent.
        let conn = args.conn;
        let connect = || conn.connect("soamcontrol");
        // Looking at the agent or stopping it never starts one.
        let running = || conn.connect_running("soamcontrol");
        match args.what {
            What::App { action } => {
                let client = connect().await?;
                let (app, enabled) = match action {
                    AppAction::Enable { app } => (app, true),
                    AppAction::Disable { app } => (app, false),
                };
                client.call(Request::SetAppEnabled { app: app.clone(), enabled }).await?;
                let word = if enabled { "enabled" } else { "disabled" };
                if json {
                    changed::print(word, changed::app(&client, &app).await?)?;
                } else {
                    crate::common::confirm(format_args!("application '{app}' {word}"));
                }
            }
            What::Session { action } => {
                let client = connect().await?;
                let (session, action, word) = match action {
                    SessionCmd::Suspend { session } => (session, SessionAction::Suspend, "suspended"),
                    SessionCmd::Resume { session } => (session, SessionAction::Resume, "resumed"),
                    SessionCmd::Kill { session } => (session, SessionAction::Kill, "killed"),
                };
                let (session, shown) = changed::by_id(&client, &session).await?;
                client
                    .call(Request::SessionControl {
                        session: session.clone(),
                        action,
                    })
                    .await?;
                if json {
                    changed::print_session(word, changed::session(&client, &session).await?.as_ref())?;
                } else {
                    crate::common::confirm(format_args!("session {shown} {word}"));
                }
            }
            What::Task { action } => {
                let client = connect().await?;
                let (task, action, word) = match action {
                    TaskCmd::Kill { task } => (task, TaskAction::Kill, "killed"),
                    TaskCmd::Requeue { task } => (task, TaskAction::Requeue, "requeued"),
                };
                client
                    .call(Request::TaskControl {
                        task: task.clone(),
                        action,
                    })
                    .await?;
                if json {
                    changed::print(word, changed::task(&client, &task).await?)?;
                } else {
                    crate::common::confirm(format_args!("task {}:{} {word}", task.session, task.task));
                }
            }
            What::Cluster {
                action: ClusterCmd::Release { job },
            } => {
                let client = connect().await?;
                client.call(Request::ReleaseAllocation { job }).await?;
                if json {
                    changed::print("released", serde_json::json!({ "job_id": job }))?;
                } else {
                    crate::common::confirm(format_args!("allocation {job} released"));
                }
            }
            What::Agent {
                action: AgentCmd::Log { lines, follow },
            } => {
                if json {
                    // Refused rather than ignored: a script asking for JSON must not get text.
                    return Err(crate::common::UsageError("agent log has no --json form: it prints the log's own lines".into()).into());
                }
                // Where this user's agent keeps it (SOAM_HOME or the XDG data folder).
                let path = soam_proto::paths::Paths::from_env().log();
                tokio::task::spawn_blocking(move || crate::agentlog::show(&path, lines, follow)).await??;
            }
            What::Agent { action: AgentCmd::Status } => {
                let client = running().await?;
                let s = status(&client).await?;
                if json {
                    print_json(&StatusRow(s))?;
                } else {
                    crate::outln!("version:        {} (protocol {})", s.version, s.protocol);
                    crate::outln!("pid:            {}", s.pid);
                    crate::outln!("uptime:         {} s", s.uptime_s);
                    crate::outln!("slots:          {}", s.slots);
                    crate::outln!("instances:      {} ({} busy)", s.instances, s.busy_instances);
                    crate::outln!("applications:   {}", s.apps);
                    crate::outln!("open sessions:  {}", s.open_sessions);
                    crate::outln!("store:          {}", s.store);
                    crate::outln!("socket:         {}", s.socket);
                }
            }
            What::Agent {
                action: AgentCmd::Shutdown { no_wait, timeout },
            } => {
                let client = running().await?;
                let pid = status(&client).await?.pid;
                client.call(Request::Shutdown).await?;
                drop(client);
                let stopped = !no_wait;
                if stopped {
                    wait_gone(pid, std::time::Duration::from_secs(timeout)).await?;
                }
                if json {
                    changed::print(if stopped { "stopped" } else { "stopping" }, serde_json::json!({ "pid": pid }))?;
                } else if stopped {
                    crate::common::confirm(format_args!("agent stopped (pid {pid})"));
                } else {
                    crate::common::confirm(format_args!("agent stopping (pid {pid})"));
                }
            }
        }
        Ok(0)
    })
}

async fn status(client: &Client) -> anyhow::Result<soam_proto::msg::AgentStatus> {
    match client.call(Request::Status).await? {
        Reply::Status(s) => Ok(s),
        _ => anyhow::bail!("unexpected reply"),
    }
}

/// Waits until process `pid` (the agent, as it said of itself) has ended: its store is
/// closed and its socket gone, so a new agent can start at once.
async fn wait_gone(pid: u32, timeout: std::time::Duration) -> anyhow::Result<()> {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Signal 0 tests for the process; EPERM means it lives under another uid. An
        // agent whose parent has not reaped it yet (a zombie) has stopped too.
        if kill(Pid::from_raw(pid as i32), None) == Err(Errno::ESRCH) || is_zombie(pid) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the agent (pid {pid}) accepted the shutdown but has not stopped after {} s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Whether `pid` has exited and waits only to be reaped (Linux's /proc; elsewhere no).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        // The state follows the command name, which is in parentheses and may hold any byte.
        st.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}
