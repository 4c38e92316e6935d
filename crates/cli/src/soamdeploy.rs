//! `soamdeploy add|view|remove`: service packages, as Symphony's `soamdeploy` deploys
//! them. `add` sends the archive in chunks over the connection (so the agent reads no
//! path a user names, and a package may be larger than a message); the agent checks and
//! unpacks it, and answers with the version it deployed.

use crate::common::{Conn, run};
use crate::output::{Layout, Paged, TableArgs};
use crate::rows::{self, PackageRow};
use anyhow::Context;
use clap::{Parser, Subcommand};
use soam_proto::msg::{Reply, Request};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "soamdeploy",
    version,
    about = "Deploy, list and remove service packages (the files a profile's packageName names)",
    after_help = crate::common::exit::after_help("Examples:\n  soamdeploy add myService --package myService.tar.gz\n  soamdeploy add myService -p myService.zip\n  soamdeploy view\n  soamdeploy view myService --json\n  soamdeploy remove myService")
)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Print JSON: the package's row (add), an array of rows (view), {"action": "removed", ...} (remove)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub conn: Conn,
    #[command(flatten)]
    pub login: crate::common::SymphonyLogin,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Deploy an archive (tar.gz or zip) as the current version of package NAME; new instances of services naming it start from it
    #[command(
        after_help = "Examples:\n  soamdeploy add myService --package myService.tar.gz\n  soamdeploy add myService -p myService.zip -u Admin -x Admin"
    )]
    Add {
        /// The package's name, as profiles give it in packageName
        name: String,
        /// The archive: tar.gz (or .tgz) or zip
        #[arg(short = 'p', long = "package", value_name = "FILE")]
        package: PathBuf,
        /// Symphony's consumer: accepted for Symphony's scripts and not used (a package is the agent's)
        #[arg(short = 'c', long = "consumer", value_name = "CONSUMER")]
        consumer: Option<String>,
    },
    /// Deployed packages: each one's current version, its size and when it was added
    #[command(after_help = "Examples:\n  soamdeploy view\n  soamdeploy view myService --json")]
    View {
        /// Only this package
        name: Option<String>,
    },
    /// Remove a package and its versions; instances running from it finish there
    #[command(after_help = "Examples:\n  soamdeploy remove myService")]
    Remove {
        /// The package's name
        name: String,
    },
}

/// Bytes sent in one request: well under a message's limit.
const CHUNK: usize = 4 << 20;

pub fn main() -> i32 {
    crate::complete::from_env(<Args as clap::CommandFactory>::command);
    let args: Args = crate::common::parse();
    args.login.note("soamdeploy");
    run("soamdeploy", async move {
        match &args.what {
            What::Add { name, package, consumer } => {
                if consumer.is_some() {
                    eprintln!("soamdeploy: note: -c (Symphony's consumer) is not used: a package is the agent's, for every application");
                }
                let mut file = std::fs::File::open(package).with_context(|| format!("cannot read {}", package.display()))?;
                let client = args.conn.connect("soamdeploy").await?;
                let mut buf = vec![0u8; CHUNK];
                let mut first = true;
                loop {
                    let n = file.read(&mut buf).with_context(|| format!("cannot read {}", package.display()))?;
                    // An empty file is still sent (as one empty piece): the agent then
                    // says what it is not, rather than that nothing came.
                    if n == 0 && !first {
                        break;
                    }
                    first = false;
                    client
                        .call(Request::PackageChunk {
                            data: bytes::Bytes::copy_from_slice(&buf[..n]),
                        })
                        .await?;
                    if n == 0 {
                        break;
                    }
                }
                let Reply::Packages(list) = client.call(Request::DeployPackage { name: name.clone() }).await? else {
                    anyhow::bail!("unexpected reply")
                };
                let Some(p) = list.first() else { anyhow::bail!("unexpected reply") };
                let row = PackageRow::from(p);
                if args.json {
                    crate::changed::print("deployed", &row)?;
                } else {
                    crate::common::confirm(format_args!(
                        "deployed package '{}' version {} ({} files, {} bytes)",
                        soam_proto::text::escape(name),
                        row.version,
                        row.files,
                        row.bytes
                    ));
                }
            }
            What::View { name } => {
                let client = args.conn.connect("soamdeploy").await?;
                let Reply::Packages(list) = client.call(Request::ListPackages { name: name.clone() }).await? else {
                    anyhow::bail!("unexpected reply")
                };
                let out = std::io::BufWriter::new(std::io::stdout());
                let mut out = Paged::to(out, Layout::new::<PackageRow>(&args.table, rows::PACKAGE_DEFAULT)?, args.json)
                    .when_empty("(no package is deployed; soamdeploy add NAME --package FILE deploys one)");
                out.page(list.iter().map(PackageRow::from), true)?;
            }
            What::Remove { name } => {
                let client = args.conn.connect("soamdeploy").await?;
                client.call(Request::RemovePackage { name: name.clone() }).await?;
                if args.json {
                    crate::changed::print("removed", serde_json::json!({ "package": name }))?;
                } else {
                    crate::common::confirm(format_args!("removed package '{}'", soam_proto::text::escape(name)));
                }
            }
        }
        Ok(0)
    })
}
