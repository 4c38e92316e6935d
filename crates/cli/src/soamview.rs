//! `soamview app|session|task|history`: tables for people, `--json` for scripts,
//! `--watch` to follow.

use crate::common::{Conn, run};
use crate::output::{Layout, Paged, TableArgs};
use crate::rows::{self, AllocRow, AppRow, SessionRow, TaskRow, Users};
use clap::{Parser, Subcommand};
use soam_client::Client;
use soam_proto::SessionRef;
use soam_proto::msg::{Reply, Request, SessionInfo, SessionInfoRef, SessionQuery, SessionState, TaskState};
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "soamview",
    version,
    about = "Show applications, sessions, tasks and history",
    after_help = crate::common::exit::after_help("Examples:\n  soamview app\n  soamview app sampleApp -p\n  soamview session sampleApp --state open\n  soamview session -a -o id,state,err --no-header\n  soamview session --orphaned\n  soamview session --watch\n  soamview task sampleApp:3 --state error --json\n  soamview history sampleApp\n  soamview history sampleApp:3\n  soamview cluster --json\n  soamview top\n  soamview events sampleApp --follow\n  soamview events sampleApp:3 --follow --json")
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub table: TableArgs,
    /// Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw
    /// under a line with the time; into a pipe or file blocks separated by a blank line,
    /// each after its time, and with --json one JSON document a line (JSON Lines)
    #[arg(long, global = true, value_name = "SECONDS", num_args = 0..=1, require_equals = true, default_missing_value = "1", value_parser = watch_interval)]
    pub watch: Option<f64>,
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub login: crate::common::SymphonyLogin,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Registered applications
    App {
        /// Only this application
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
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
        /// Only this application's sessions (default: every application's)
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
        app: Option<String>,
        /// Include ended sessions
        #[arg(short, long)]
        all: bool,
        /// Only sessions in this state (any case)
        #[arg(long, value_name = "S", value_enum, ignore_case = true)]
        state: Option<SessionState>,
        /// Only detached, idle sessions with output nobody collected
        #[arg(long)]
        orphaned: bool,
        /// Only sessions with this tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// Tasks of one session
    Task {
        /// APP:ID or APP:NAME
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        session: SessionRef,
        /// Only tasks in this state (any case; the count columns' headers too: pend, run, err, canc)
        #[arg(long, value_name = "S", value_enum, ignore_case = true)]
        state: Option<TaskState>,
    },
    /// Slurm allocations: pending (with Slurm's reason) or running, their nodes and slots
    Cluster,
    /// A full-screen live view: sessions with progress and rates, applications'
    /// instances, Slurm allocations and the agent's own figures; keys to open a
    /// session's tasks, suspend, resume and kill (q quits, ? lists the keys)
    Top,
    /// Changes as they happen: sessions and tasks changing state, instances starting and
    /// ending, Slurm allocations; a line each, or JSON Lines with --json. Without
    /// --follow, the open sessions' states now
    Events {
        /// An application, or APP:ID / APP:NAME for one session (default: all you may see)
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        target: Option<String>,
        /// The open sessions' states now, then every change as it happens, until
        /// interrupted (a reader too slow for them is told how many it missed)
        #[arg(short, long)]
        follow: bool,
    },
    /// Ended sessions; with APP:ID, that session's kept task history
    History {
        /// An application, or APP:ID / APP:NAME for one session's tasks
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
        target: Option<String>,
        /// Only sessions with this tag
        #[arg(long)]
        tag: Option<String>,
    },
}

pub fn main() -> i32 {
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args: Args = crate::common::parse();
    args.login.note("soamview");
    run("soamview", async move {
        let mut client = args.conn.connect("soamview").await?;
        if let What::Top = &args.what {
            if args.watch.is_some() || args.json {
                return Err(crate::common::UsageError("soamview top is live already: --watch and --json do not go with it".into()).into());
            }
            return crate::top::run(&client).await;
        }
        if let What::Events { target, follow } = &args.what {
            if args.watch.is_some() {
                return Err(
                    crate::common::UsageError("--watch does not go with events: --follow shows each change as it happens".into()).into(),
                );
            }
            return crate::events::run(&mut client, target.as_deref(), *follow, args.json).await;
        }
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        // One listener for the whole run: a Ctrl-C that comes while a round is being
        // shown is kept for the wait after it, not lost between two waits.
        let mut interrupt = match args.watch {
            Some(_) => Some(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?),
            None => None,
        };
        for round in 0u64.. {
            match args.watch {
                // A terminal's round is drawn whole over the last one (see `redraw`).
                Some(every) if terminal && !args.json => {
                    let mut frame = Vec::new();
                    view(&client, &args, &mut frame).await?;
                    redraw(every, round, &frame)?;
                }
                Some(_) => {
                    watch_header(round, args.json)?;
                    view(&client, &args, &mut std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())).await?;
                }
                None => view(&client, &args, &mut std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())).await?,
            }
            let Some(every) = args.watch else { return Ok(0) };
            std::io::stdout().flush()?;
            let Some(interrupt) = interrupt.as_mut() else { return Ok(0) };
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs_f64(every)) => {}
                _ = interrupt.recv() => return Ok(0),
            }
        }
        Ok(0)
    })
}

/// `--watch`'s interval: a tenth of a second to a day.
fn watch_interval(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| (0.1..=86_400.0).contains(v))
        .ok_or_else(|| format!("'{s}' is not valid (valid: 0.1 to 86400 seconds)"))
}

/// What goes before each round of `--watch` into a pipe or file: no escape codes, each
/// block after a blank line and its time. JSON gets nothing, so that each round is one
/// JSON line.
fn watch_header(round: u64, json: bool) -> std::io::Result<()> {
    if json {
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    if round > 0 {
        writeln!(o)?;
    }
    writeln!(o, "{}", jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %Z"))
}

/// Draws one round of `--watch` on a terminal without flicker: the screen is cleared
/// only before the first; later rounds go to the top-left corner and overwrite the last
/// one line by line, each line's old tail erased after it and the old lines below the
/// new ones erased at the end, all in one write, so the screen is never blank between
/// rounds. A view taller than the terminal is cut to its height (its last line not
/// ended, so the screen does not scroll), as `watch(1)` does.
fn redraw(every: f64, round: u64, view: &[u8]) -> std::io::Result<()> {
    let now = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %Z");
    let head = format!("Every {every}s: {now}\n");
    let height = crate::output::terminal_rows().map_or(usize::MAX, usize::from);
    let mut frame = Vec::with_capacity(view.len() + 1024);
    frame.extend_from_slice(if round == 0 { b"\x1b[H\x1b[2J" } else { b"\x1b[H" });
    let text = String::from_utf8_lossy(view);
    let lines = head.lines().chain(std::iter::once("")).chain(text.lines());
    for (i, line) in lines.take(height).enumerate() {
        if i > 0 {
            frame.extend_from_slice(b"\n");
        }
        frame.extend_from_slice(line.as_bytes());
        frame.extend_from_slice(b"\x1b[K");
    }
    frame.extend_from_slice(b"\x1b[J");
    let mut o = std::io::stdout().lock();
    o.write_all(&frame)?;
    o.flush()
}

/// Sessions with `tag`, when one was asked for (a filter of the client's: the
/// agent's query has none).
fn tagged<'a>(list: impl IntoIterator<Item = SessionInfoRef<'a>>, tag: &'a Option<String>) -> impl Iterator<Item = SessionInfoRef<'a>> {
    list.into_iter().filter(move |s| tag.is_none() || s.tag == tag.as_deref())
}

/// Prints the view asked for, page by page as the agent sends them.
async fn view(client: &Client, args: &Args, sink: &mut dyn Write) -> anyhow::Result<()> {
    let json = args.json;
    // Tables show one line of a task's error; JSON all of it.
    let one_line = !json;
    match &args.what {
        What::App { app, long, profile } => {
            let default = if *long { rows::APP_LONG } else { rows::APP_DEFAULT };
            let mut out = Paged::to(&mut *sink, Layout::new::<AppRow>(&args.table, default)?, json);
            soam_client::each_page(
                async |from| client.app_page(app.clone(), from).await,
                |apps, last| {
                    if *profile {
                        // The text exactly as registered, so that it round-trips through
                        // `soamreg -f`; which application it is goes to stderr. On a
                        // terminal control characters are escaped (a profile is another
                        // user's text in a shared agent).
                        use soam_proto::text::{escape, escape_lines};
                        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
                        let mut text = String::new();
                        for a in apps.iter() {
                            eprintln!("# {} ({})", escape(&a.name), escape(&a.source));
                            if terminal {
                                text.push_str(&escape_lines(a.profile.trim_end()));
                                text.push('\n');
                            } else {
                                text.push_str(&a.profile);
                            }
                        }
                        Ok(out.raw(&text, last)?)
                    } else {
                        out.page(apps.iter().map(AppRow::from), last)
                    }
                },
            )
            .await?;
        }
        // Streamed by `events::run` (see `main`), never a view.
        What::Events { .. } | What::Top => anyhow::bail!("soamview events and top are not listings"),
        What::Cluster => {
            let mut out = Paged::to(&mut *sink, Layout::new::<AllocRow>(&args.table, rows::ALLOC_DEFAULT)?, json);
            let Reply::Cluster(list) = client.call(Request::ListCluster).await? else {
                anyhow::bail!("unexpected reply")
            };
            out.page(list.into_iter().map(AllocRow), true)?;
        }
        What::Session {
            app,
            all,
            state,
            orphaned,
            tag,
        } => {
            let empty = match (*all, state) {
                (false, None) => "(no open sessions; -a also lists ended ones)".to_string(),
                (false, Some(s)) => format!("(no open session is {s}; -a also lists ended ones)"),
                (true, None) => "(none)".to_string(),
                (true, Some(s)) => format!("(none is {s})"),
            };
            let mut out = Paged::to(&mut *sink, Layout::new::<SessionRow>(&args.table, rows::SESSION_DEFAULT)?, json).when_empty(empty);
            let q = SessionQuery {
                app: app.clone(),
                all: *all,
                state: *state,
                orphaned: *orphaned,
            };
            let mut users = Users::default();
            soam_client::each_session_page(client, &q, |list, last| {
                users.load(list.iter().map(|s| s.owner_uid));
                out.page(tagged(list.iter().copied(), tag).map(|s| SessionRow::new(s, &users)), last)
            })
            .await?;
        }
        What::Task { session, state } => {
            let mut out = Paged::to(&mut *sink, Layout::new::<TaskRow>(&args.table, rows::TASK_DEFAULT)?, json);
            let open = soam_client::each_page(
                async |from| client.task_page(session, *state, false, from.unwrap_or(0)).await,
                |list, last| out.page(list.iter().map(|t| TaskRow::new(t, one_line)), last),
            )
            .await;
            // An ended session (refused before any row was printed): the task history kept
            // for it, as `soamview history APP:ID` shows it, the state filtered here (the
            // agent's history pages take none).
            let ended = |e: &anyhow::Error| {
                e.downcast_ref::<soam_client::ClientError>().and_then(|c| c.kind()) == Some(soam_proto::msg::ErrorKind::Ended)
            };
            match open {
                Err(e) if ended(&e) => {
                    let keep = |t: &&soam_proto::msg::TaskInfo| state.is_none_or(|s| t.state == s);
                    soam_client::each_page(
                        async |from| client.task_page(session, None, true, from.unwrap_or(0)).await,
                        |list, last| out.page(list.iter().filter(keep).map(|t| TaskRow::new(t, one_line)), last),
                    )
                    .await?;
                }
                r => r?,
            }
        }
        What::History { target: Some(t), .. } if t.contains(':') => {
            let mut out = Paged::to(&mut *sink, Layout::new::<TaskRow>(&args.table, rows::TASK_DEFAULT)?, json);
            let session: SessionRef = t.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            soam_client::each_page(
                async |from| client.task_page(&session, None, true, from.unwrap_or(0)).await,
                |list, last| out.page(list.iter().map(|t| TaskRow::new(t, one_line)), last),
            )
            .await?;
        }
        What::History { target, tag } => {
            let mut out = Paged::to(&mut *sink, Layout::new::<SessionRow>(&args.table, rows::HISTORY_DEFAULT)?, json);
            let Reply::Sessions(list) = client.call(Request::History { app: target.clone() }).await? else {
                anyhow::bail!("unexpected reply")
            };
            let mut users = Users::default();
            users.load(list.iter().map(|s| s.owner_uid));
            out.page(
                tagged(list.iter().map(SessionInfo::view), tag).map(|s| SessionRow::new(s, &users)),
                true,
            )?;
        }
    }
    Ok(())
}
