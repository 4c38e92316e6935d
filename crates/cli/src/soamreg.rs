//! `soamreg FILE [-f]`: register an application profile, or update it in place.

use crate::common::{Conn, run};
use anyhow::Context;
use clap::Parser;
use soam_proto::msg::{Reply, Request};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "soamreg",
    version,
    about = "Register an application profile with the soam agent, or update it in place",
    after_help = crate::common::exit::after_help("Examples:\n  soamreg profiles/sample.yaml\n  soamreg -f profiles/sample.yaml   # update even if it ends open sessions' workload\n  soamreg -v profiles/symphony.xml  # list every part not used, one by one")
)]
pub struct Args {
    /// Profile file (YAML, or a Symphony XML application profile: docs/symphony-xml.md)
    pub file: PathBuf,
    /// Update even if the change ends the workload of open sessions whose type or service it changes
    #[arg(short, long)]
    pub force: bool,
    /// Also list each part of the profile that a warning stands for (the stock <Control> settings soam does not act on)
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the registered application as JSON, with "action" and "warnings"
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
    args.login.note("soamreg");
    run("soamreg", async move {
        let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
        let path = std::path::absolute(&args.file).with_context(|| format!("cannot resolve {}", args.file.display()))?;
        // Said here rather than after sending megabytes the agent would refuse.
        if text.len() > soam_profile::MAX_PROFILE_BYTES {
            anyhow::bail!(
                "{}: the profile is {} bytes; the limit is {} bytes",
                args.file.display(),
                text.len(),
                soam_profile::MAX_PROFILE_BYTES
            );
        }
        // The agent sends the warnings; what a folded one stands for is read here, from
        // the same text (printed only if the agent accepts it).
        let notes = match args.verbose {
            true => soam_profile::parse(&text, &path).map(|p| p.notes).unwrap_or_default(),
            false => Vec::new(),
        };
        let client = args.conn.connect("soamreg").await?;
        let reply = client
            .call(Request::RegisterApp {
                profile: text,
                path: path.display().to_string(),
                force: args.force,
            })
            .await?;
        if let Reply::Registered { app, created, warnings } = reply {
            for w in &warnings {
                eprintln!("soamreg: warning: {}", soam_proto::text::escape(w));
            }
            for n in &notes {
                eprintln!("soamreg: note: {}", soam_proto::text::escape(n));
            }
            let word = if created { "registered" } else { "updated" };
            if args.json {
                #[derive(serde::Serialize)]
                struct Registered {
                    #[serde(flatten)]
                    app: Option<crate::rows::AppRow>,
                    warnings: Vec<String>,
                }
                let app = crate::changed::app(&client, &app).await?;
                crate::changed::print(word, Registered { app, warnings })?;
            } else {
                crate::common::confirm(format_args!("{word} application '{app}'"));
            }
        }
        Ok(0)
    })
}
