//! `soamsession`: drive a session's workflow from a shell. One file per subcommand;
//! `collect` is the output loop that `submit`, `reopen` and `fetch` share.

mod collect;
mod inputs;
mod reopen;
mod simple;
mod submit;
pub mod sync;

pub use collect::OutputArgs;

use crate::common::{Conn, run};
use clap::{Parser, Subcommand};
use soam_proto::SessionRef;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "soamsession",
    version,
    about = "Create, feed, detach from, reopen and end sessions",
    after_help = crate::common::exit::after_help("Examples:\n  seq 1 100 | soamsession submit --app sampleApp\n  soamsession submit --app sampleApp --task hello --task world --jsonl\n  id=$(soamsession create --app sampleApp --name nightly)\n  soamsession submit --session sampleApp:nightly --input-file jobs.txt --detach\n  soamsession reopen sampleApp:nightly --jsonl > results.jsonl\n  soamsession fetch sampleApp:$id --max 10\n  soamsession update sampleApp:$id --common-data settings.bin\n  soamsession detach sampleApp:$id\n  soamsession close sampleApp:$id\n  soamsession abort sampleApp:$id\n  seq 1 100 | soamsession submit --app sampleApp --offline-ok   # kept if no agent answers\n  soamsession sync --list")
)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a session and leave it detached; prints its id
    Create(CreateArgs),
    /// Submit tasks and (unless --detach) collect their outputs
    Submit(submit::SubmitArgs),
    /// Re-attach to a session and collect its outputs
    Reopen(reopen::ReopenArgs),
    /// Collect the outputs that are ready (up to --max, waiting up to --timeout)
    Fetch(reopen::FetchArgs),
    /// Leave a session open and unheld: its workload keeps running
    Detach(SessionArg),
    /// End a session (closed); undelivered outputs are discarded
    Close(SessionArg),
    /// Abort a session: pending tasks are canceled, running ones stopped
    Abort(SessionArg),
    /// Replace a session's common data (services get SessionUpdate)
    Update(UpdateArgs),
    /// Carry out what the offline journal holds (submit --offline-ok, releases that found no agent)
    Sync(sync::SyncArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The application to create a session of (as registered)
    #[arg(long, add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: String,
    /// Session type (default: the application's "" type)
    #[arg(long = "type", value_name = "T")]
    pub session_type: Option<String>,
    /// A name that can stand in for the id (APP:NAME)
    #[arg(long)]
    pub name: Option<String>,
    /// A label, shown in views and listed by soamview session --tag (several sessions
    /// may share it)
    #[arg(long)]
    pub tag: Option<String>,
    /// File whose bytes every service instance gets in SessionEnter
    #[arg(long, value_name = "FILE")]
    pub common_data: Option<PathBuf>,
    /// FetchResultsDirectly: outputs go to the holding client only, never to the store
    #[arg(long)]
    pub direct: bool,
    /// Print the session as a JSON object (as soamview session --json has it, with "action")
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SessionArg {
    /// APP:ID, APP:NAME, or APP:TAG where one open session has that tag
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
    pub session: SessionRef,
    /// Print the session as it is afterwards as JSON, with an "action" key
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The session: APP:ID or APP:NAME
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::sessions))]
    pub session: SessionRef,
    /// File whose bytes replace the common data (instances serving the session get
    /// SessionUpdate)
    #[arg(long, value_name = "FILE", required = true)]
    pub common_data: PathBuf,
}

pub fn main() -> i32 {
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args: Args = crate::common::parse();
    run("soamsession", async move {
        match args.cmd {
            Cmd::Create(a) => simple::create(&args.conn, a).await,
            Cmd::Submit(a) => submit::submit(&args.conn, a).await,
            Cmd::Reopen(a) => reopen::reopen(&args.conn, a).await,
            Cmd::Fetch(a) => reopen::fetch(&args.conn, a).await,
            Cmd::Detach(a) => simple::detach(&args.conn, a).await,
            Cmd::Close(a) => simple::close(&args.conn, a).await,
            Cmd::Abort(a) => simple::abort(&args.conn, a).await,
            Cmd::Update(a) => simple::update(&args.conn, a).await,
            Cmd::Sync(a) => sync::sync(&args.conn, a).await,
        }
    })
}
