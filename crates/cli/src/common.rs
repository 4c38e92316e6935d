//! What every command shares: connection flags, the runtime, error reporting and
//! formatting of times.

use clap::Args;
use soam_client::{Client, ConnectOptions};
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)
    #[arg(long, env = "SOAM_SOCKET", global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Symphony's `-u USER -x PASSWORD`, which scripts written for Symphony pass to its
/// commands: accepted so that such a script runs, and not used (the agent knows a user by
/// the uid of the connecting process).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SymphonyLogin {
    /// Symphony's user name: accepted for Symphony's scripts and not used (the agent knows you by your uid)
    #[arg(short = 'u', long = "user", value_name = "USER", global = true)]
    pub user: Option<String>,
    /// Symphony's password: accepted for Symphony's scripts and not used
    #[arg(short = 'x', long = "password", value_name = "PASSWORD", global = true)]
    pub password: Option<String>,
}

impl SymphonyLogin {
    /// Says, once, that a user name or password given is not used.
    pub fn note(&self, cmd: &str) {
        if self.user.is_some() || self.password.is_some() {
            eprintln!("{cmd}: note: -u/-x (Symphony's user and password) are not used: the agent knows you by your uid");
        }
    }
}

impl Conn {
    pub fn options(&self, client_name: &str) -> ConnectOptions {
        ConnectOptions::from_env(client_name, self.socket.clone())
    }

    /// Connects; what the offline journal holds is carried out first (its order is
    /// older than this command's).
    pub async fn connect(&self, client_name: &str) -> anyhow::Result<Client> {
        let opts = self.options(client_name);
        crate::replay::replay_quietly(&opts).await;
        Ok(Client::connect(&opts).await?)
    }

    /// As [`Conn::connect`], to an agent already running: never starts one. For the
    /// commands that only look at the agent or stop it (`soamcontrol agent status`,
    /// `agent shutdown`), which must tell a user whether one was running.
    pub async fn connect_running(&self, client_name: &str) -> anyhow::Result<Client> {
        let mut opts = self.options(client_name);
        opts.autostart = false;
        crate::replay::replay_quietly(&opts).await;
        Ok(Client::connect(&opts).await?)
    }
}

/// Gives every subcommand the examples of its command that are about it: the lines of
/// the top command's `Examples:` block that start with the subcommand's full name
/// (`soamcontrol session kill ...`), so each `--help` and man page has its own, kept in
/// one list per command.
pub fn with_examples(cmd: clap::Command) -> clap::Command {
    let after = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    let examples: Vec<String> = after
        .split("\n\n")
        .find_map(|b| b.strip_prefix("Examples:\n"))
        .map(|b| b.lines().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default();
    let name = cmd.get_name().to_string();
    give(cmd, &name, &examples)
}

fn give(mut cmd: clap::Command, path: &str, examples: &[String]) -> clap::Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for sub in subs {
        let full = format!("{path} {sub}");
        // The subcommand's name as whole words: `soamview app` is not `soamview apps`.
        let mine: Vec<&str> = examples
            .iter()
            .filter(|l| l.contains(&format!("{full} ")) || l.ends_with(&full))
            .map(String::as_str)
            .collect();
        cmd = cmd.mut_subcommand(&sub, |s| {
            let s = give(s, &full, examples);
            if mine.is_empty() || s.get_after_help().is_some() {
                s
            } else {
                s.after_help(exit::after_help(&format!("Examples:\n  {}", mine.join("\n  "))))
            }
        });
    }
    cmd
}

/// Parses the command line of `A`, with [`with_examples`] applied to its `--help`.
/// With `--json` on the command line, a usage error is one JSON object on stderr (as
/// every other error then is, see [`run`]), still with exit 2.
pub fn parse<A: clap::Parser>() -> A {
    let matches = with_examples(A::command()).try_get_matches().unwrap_or_else(|e| usage_exit(e));
    A::from_arg_matches(&matches).unwrap_or_else(|e| usage_exit(e))
}

fn usage_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let asked_for = matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if asked_for || !json_asked(std::env::args()) {
        e.exit()
    }
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("bad usage");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let o = serde_json::json!({ "error": { "kind": "usage", "message": line, "exit": exit::USAGE } });
    eprintln!("{o}");
    std::process::exit(exit::USAGE)
}

/// Bad usage found after parsing (an unknown column name, say): exit 2, as clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The candidate closest to `typed`, if one is close enough to be what was meant (the
/// distance clap uses for subcommands).
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro(&typed, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Exit codes every command shares (listed in each `--help` and man page).
pub mod exit {
    pub const OK: i32 = 0;
    /// The operation failed (a refusal of no kind below, a session that ended early).
    pub const FAILED: i32 = 1;
    /// Bad arguments (clap's own code).
    pub const USAGE: i32 = 2;
    /// No agent answers, or the connection to it was lost for good.
    pub const UNREACHABLE: i32 = 3;
    /// Every output was collected, but some tasks ended in error or were canceled.
    pub const TASKS_FAILED: i32 = 4;
    /// The agent refused: the session, application or act belongs to someone else.
    pub const PERMISSION: i32 = 5;
    /// The agent refused: a limit (maxSessions, maxStoredTasks, maxRecordBytes, sizes).
    pub const LIMIT: i32 = 6;
    /// Ctrl-C: the session was left running, detached.
    pub const INTERRUPTED: i32 = 130;

    /// The text for `--help` and the man pages' EXIT STATUS.
    pub const HELP: &str = "Exit status:\n  \
        0    success\n  \
        1    the operation failed\n  \
        2    bad arguments\n  \
        3    no agent answers, or the connection to it was lost for good\n  \
        4    some tasks ended in error or were canceled (soamsession)\n  \
        5    permission denied by the agent\n  \
        6    refused by a limit\n  \
        130  interrupted (the session keeps running, detached)";

    /// A command's after-help: its examples, then the exit codes.
    pub fn after_help(examples: &str) -> String {
        format!("{examples}\n\n{HELP}")
    }

    /// The code for an error that ended a command.
    pub fn code(e: &anyhow::Error) -> i32 {
        use soam_client::ClientError;
        use soam_proto::msg::ErrorKind;
        if e.chain().any(|c| c.is::<super::UsageError>()) {
            return USAGE;
        }
        match e.chain().find_map(|c| c.downcast_ref::<ClientError>()) {
            Some(ClientError::NoAgent(_) | ClientError::Lost(_)) => UNREACHABLE,
            Some(ClientError::Refused {
                kind: ErrorKind::Permission,
                ..
            }) => PERMISSION,
            Some(ClientError::Refused {
                kind: ErrorKind::Limit, ..
            }) => LIMIT,
            _ => FAILED,
        }
    }
}

/// Runs a command's async body on a small runtime and turns its result into an exit
/// code: errors print as `NAME: reason` on one line.
pub fn run<F>(name: &str, body: F) -> i32
where
    F: std::future::Future<Output = anyhow::Result<i32>>,
{
    init_logging(0);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start: {e}");
            return exit::FAILED;
        }
    };
    match rt.block_on(body) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let msg = format!("{e:#}");
            let line = msg.lines().next().unwrap_or("failed");
            let code = exit::code(&e);
            if json_asked(std::env::args()) {
                // A program asked for JSON: the error is JSON too, one object on stderr.
                let o = serde_json::json!({ "error": { "kind": error_kind(&e), "message": line, "exit": code } });
                eprintln!("{o}");
            } else {
                // The reason may quote a profile or another user's names: escaped.
                eprintln!("{name}: {}", soam_proto::text::escape(line));
            }
            code
        }
    }
}

/// Whether the command line asked for JSON (`--json` or `--jsonl`; clap has accepted it
/// by the time an error is printed), before any `--` that ends the options.
fn json_asked(args: impl Iterator<Item = String>) -> bool {
    args.skip(1).take_while(|a| a != "--").any(|a| a == "--json" || a == "--jsonl")
}

/// What kind of failure ended a command, as its JSON error says: the agent's refusal
/// kind (`unknown-app`, `limit`, ... see docs/usage.md), `usage`, `no-agent` (none
/// answers), `lost` (the connection broke), or `failed` (anything else).
fn error_kind(e: &anyhow::Error) -> &'static str {
    use soam_client::ClientError;
    if e.chain().any(|c| c.is::<UsageError>()) {
        return "usage";
    }
    match e.chain().find_map(|c| c.downcast_ref::<ClientError>()) {
        Some(ClientError::Refused { kind, .. }) => kind.as_str(),
        Some(ClientError::NoAgent(_)) => "no-agent",
        Some(ClientError::Lost(_)) => "lost",
        None => "failed",
    }
}

/// The log filter: `RUST_LOG`, else `default` raised by `-v` (info) / `-vv` (debug).
pub fn log_filter(verbose: u8, default: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level))
}

/// Colour in logs on stderr: a terminal, and NO_COLOR not set.
pub fn stderr_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logs to stderr per `RUST_LOG`, or `-v` (info) / `-vv` (debug); warnings otherwise.
pub fn init_logging(verbose: u8) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter(verbose, "warn"))
        .with_writer(std::io::stderr)
        .with_ansi(stderr_colour())
        .with_target(false)
        .try_init();
}

/// Whether an error is stdout's reader having gone (`soamview task X | head -1`): the
/// command then ends quietly, as Unix tools do.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// Says on stderr what a command did ("session A:1 suspended"): every command confirms
/// there, so stdout carries only what a script reads (ids, tables, `--json` objects).
pub fn confirm(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
