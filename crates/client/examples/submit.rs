//! A session from Rust with `soam_client::session`: one task per line of stdin, each
//! output printed as it comes back (in task order), the session closed at the end.
//!
//! ```sh
//! cargo build --release                      # soamd, soamreg and the example service
//! target/release/soamreg profiles/sample.yaml
//! seq 1 5 | cargo run -p soam-client --example submit -- sampleApp
//! ```
//!
//! The agent is started on demand (unless `SOAM_NO_AUTOSTART=1`). If it is lost while
//! the example waits, the session is reopened on the agent's return and nothing is
//! submitted twice or printed twice.

use bytes::Bytes;
use soam_client::ConnectOptions;
use soam_client::session::{Next, Reorder, Session, SessionConfig};
use std::io::BufRead;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = std::env::args().nth(1).ok_or("usage: submit APP < inputs")?;
    let inputs: Vec<Bytes> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| l.map(Bytes::from))
        .collect::<Result<_, _>>()?;

    let cfg = SessionConfig::new(ConnectOptions::from_env("submit example", None));
    let mut session = Session::create(cfg, &app, None).await?;
    let sub = session.submit(inputs).await?;
    eprintln!(
        "session {}: tasks {} to {}",
        session.addr(),
        sub.first,
        sub.first + sub.count.saturating_sub(1)
    );

    // Outputs arrive as tasks end; print them in task order.
    let (mut order, mut left) = (Reorder::new(Some(sub.first)), sub.count);
    while left > 0 {
        match session.next().await? {
            Next::Outputs(outputs) => {
                left -= outputs.len() as u64;
                session.ack(&outputs);
                for o in outputs.into_iter().flat_map(|o| order.push(o)) {
                    println!("{} {}: {}", o.task, o.state, String::from_utf8_lossy(&o.data).trim_end());
                }
            }
            Next::Drained => {}
            Next::TakenOver => return Err("another client took the session".into()),
            Next::Ended { state, reason } => return Err(format!("the session ended ({state}): {reason}").into()),
        }
    }
    session.close().await?;
    Ok(())
}
