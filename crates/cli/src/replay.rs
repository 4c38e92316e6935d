//! The offline journal met on the way in: every command that reaches the agent first
//! carries out what the journal holds (`soamsession sync` does it on demand), and says
//! on stderr what became of each entry.

use soam_client::ConnectOptions;
use soam_client::journal::{self, Entry, Outcome};

/// One line for an entry carried out or refused.
pub fn report(seq: u64, entry: &Entry, outcome: &Outcome) -> String {
    let what = entry.describe();
    match outcome {
        Outcome::Submitted { session, tasks } if tasks.count == 0 => format!("#{seq} {what}: session {session}, no tasks"),
        Outcome::Submitted { session, tasks } => format!(
            "#{seq} {what}: session {session}, tasks {} to {}; collect them with: soamsession reopen {session}",
            tasks.first,
            tasks.first + tasks.count - 1
        ),
        Outcome::Released { session, how } => format!("#{seq} {what}: done ({} {session})", how.as_str()),
        Outcome::Refused(why) => format!(
            "#{seq} {what}: refused: {}; kept (see soamsession sync --list, drop it with --drop {seq})",
            soam_proto::text::escape(why)
        ),
    }
}

/// Replays the journal if there is one, telling the user on stderr what became of each
/// entry. Entries refused before wait for an explicit `sync`. Never fails the command
/// that called it: the journal stays for the next contact.
pub async fn replay_quietly(opts: &ConnectOptions) {
    if !journal::exists(opts) {
        return;
    }
    match journal::replay(opts, false).await {
        Ok(Some(r)) => {
            for (seq, entry, outcome) in &r.done {
                eprintln!("soam journal: {}", report(*seq, entry, outcome));
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("soam journal: {e}"),
    }
}
