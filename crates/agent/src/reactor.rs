//! The loop that runs the core: takes a message from the inbox, then every other
//! message already waiting, and only then ends the turn (schedule once, commit the
//! turn's task ends, flush outputs, send what was staged), so bursts are handled in
//! batches: many tasks per dispatch, many outputs per frame. Then a clean shutdown.

use crate::core::Core;
use crate::ports::{CoreMsg, Inbox, turn};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Most messages handled in one turn before its end: outputs must not wait for an
/// endless stream of submits.
const TURN_MESSAGES: usize = 4096;

/// Runs `core` until shutdown is requested; then stops every instance and worker,
/// gives back every allocation and closes the store.
pub async fn run(mut core: Core, inbox: Inbox, mut rx: mpsc::UnboundedReceiver<CoreMsg>, shutdown: watch::Receiver<bool>) {
    let ticker = tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_secs(1));
        loop {
            t.tick().await;
            inbox.send(CoreMsg::Tick);
        }
    });
    let mut shutdown = shutdown;
    // One wait for shutdown for the whole loop, polled only when the inbox is empty:
    // a fresh `changed()` every turn registered with the watch and deregistered again,
    // a cost paid on every round trip.
    let stop = shutdown.changed();
    tokio::pin!(stop);
    loop {
        let msg = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = &mut stop => None,
        };
        let Some(msg) = msg else { break };
        crate::trace::mark(crate::trace::Step::TurnStart);
        // The turn's budget is never left set for a thread this task moves away from:
        // `turn::end` clears it, and there is no await in between.
        turn::begin();
        core.handle(msg);
        let mut n = 0;
        while n < TURN_MESSAGES {
            match rx.try_recv() {
                Ok(m) => core.handle(m),
                Err(_) => break,
            }
            n += 1;
        }
        core.end_turn();
        turn::end();
        if core.stopping() {
            break;
        }
    }
    ticker.abort();
    let launcher = core.launcher();
    let jobs = core.stop();
    // Services get a moment to run DestroyService; what is left is then killed.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !core.stopped() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = core.close();
    if !jobs.is_empty() {
        launcher.cancel_jobs_now(jobs).await;
    }
    tokio::task::spawn_blocking(move || store.close()).await.ok();
}
