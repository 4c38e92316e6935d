//! `soamunreg APP [-f]`: remove an application.

use crate::common::{Conn, run};
use clap::Parser;
use soam_proto::msg::Request;

#[derive(Debug, Parser)]
#[command(
    name = "soamunreg",
    version,
    about = "Remove a registered application",
    after_help = crate::common::exit::after_help("Examples:\n  soamunreg sampleApp\n  soamunreg -f sampleApp   # abort its open sessions first")
)]
pub struct Args {
    /// Application name
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: String,
    /// Abort the application's open sessions and remove it anyway
    #[arg(short, long)]
    pub force: bool,
    /// Print {"action": "unregistered", "app": APP} as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub login: crate::common::SymphonyLogin,
}

pub fn main() -> i32 {
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args: Args = crate::common::parse();
    args.login.note("soamunreg");
    run("soamunreg", async move {
        let client = args.conn.connect("soamunreg").await?;
        client
            .call(Request::UnregisterApp {
                app: args.app.clone(),
                force: args.force,
            })
            .await?;
        if args.json {
            crate::changed::print("unregistered", serde_json::json!({ "app": args.app }))?;
        } else {
            crate::common::confirm(format_args!("unregistered application '{}'", args.app));
        }
        Ok(0)
    })
}
