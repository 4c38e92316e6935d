//! Outputs to holders. Ended tasks wait in their session's `undelivered` set; at the end
//! of each loop turn `flush` sends what a holder has room for (at most
//! `DELIVERY_WINDOW` unacknowledged), in frames under the size cap, then `Drained` once
//! nothing is left; `ack` marks them delivered (and drops kept results per
//! discardResultsOnDelivery). Delivery is at least once: what a holder never
//! acknowledged goes to the next holder.

use super::blob::Blob;
use super::{Core, DELIVERY_WINDOW, lifecycle};
use crate::ports::ConnId;
use soam_proto::addr::SessionRef;
use soam_proto::msg::{AgentFrame, Event};

impl Core {
    /// Sends queued outputs to holders and tells them when their session is drained.
    pub(super) fn flush(&mut self) {
        // Taken out and put back emptied, so a turn allocates nothing for it.
        let mut dirty = std::mem::take(&mut self.dirty);
        for &sid in &dirty {
            let Some(s) = self.sessions.get_mut(&sid) else { continue };
            let Some(conn) = s.life.holder() else { continue };
            // A holder that does not read gets nothing more until it does: its outputs
            // wait here, where they are kept anyway.
            if let Some(c) = self.conns.get(&conn)
                && c.out.full()
                && !c.out.room_or_notify()
            {
                continue;
            }
            let room = DELIVERY_WINDOW.saturating_sub(s.unacked.len());
            let mut outputs = Vec::new();
            // Their size in a frame, about: frames are kept under the cap.
            let mut total = 0;
            while outputs.len() < room {
                let Some(tid) = s.undelivered.pop_first() else { break };
                let t = &s.tasks[(tid - 1) as usize];
                let data = t.result().map(Blob::to_bytes).unwrap_or_default();
                total += data.len() + 32;
                outputs.push(soam_proto::msg::TaskOutput {
                    task: tid,
                    state: t.state(),
                    attempts: t.attempts(),
                    data,
                });
                s.unacked.insert(tid);
            }
            let drained = s.counts.pending == 0 && s.counts.running == 0 && s.persisting == 0 && s.undelivered.is_empty();
            let send_drained = s
                .life
                .on(lifecycle::Event::Flushed { drained }, &s.stype)
                .is_ok_and(|fx| fx.contains(&lifecycle::Effect::SendDrained));
            if outputs.is_empty() && !send_drained {
                // An acknowledgement's turn, most often: nothing to say.
                continue;
            }
            let (app, id) = (s.app.clone(), s.id);
            let Some(c) = self.conns.get(&conn) else { continue };
            // Outputs can be large: what passes the cap goes in several frames, all but
            // the last sent here. Most turns' fit in one, sent as gathered.
            let last = if total <= soam_proto::frame::BATCH_BYTES {
                outputs
            } else {
                let (mut batch, mut bytes) = (Vec::new(), 0);
                for o in outputs {
                    bytes += o.data.len() + 32;
                    batch.push(o);
                    if bytes > soam_proto::frame::BATCH_BYTES {
                        let _ = c.out.send(AgentFrame::Event(Event::Outputs {
                            app: app.clone(),
                            session: id,
                            outputs: std::mem::take(&mut batch),
                        }));
                        bytes = 0;
                    }
                }
                batch
            };
            if !last.is_empty() {
                let _ = c.out.send(AgentFrame::Event(Event::Outputs {
                    app: app.clone(),
                    session: id,
                    outputs: last,
                }));
            }
            if send_drained {
                let _ = c.out.send(AgentFrame::Event(Event::Drained { app, session: id }));
            }
        }
        dirty.clear();
        // Nothing above marks a session dirty; were it to, the mark stays.
        dirty.extend(self.dirty.drain());
        self.dirty = dirty;
    }

    pub(super) fn ack(&mut self, conn: ConnId, r: &SessionRef, tasks: Vec<u64>) {
        let Ok(sid) = self.held_by(conn, r) else { return };
        let s = self.sessions.get_mut(&sid).unwrap();
        let discard = s.stype.discard_results_on_delivery;
        let mut acked = Vec::with_capacity(tasks.len());
        for tid in tasks {
            if s.unacked.remove(&tid) {
                s.delivered((tid - 1) as usize, discard);
                acked.push(tid);
            }
        }
        self.persist_tasks(sid, acked);
        self.dirty.insert(sid);
    }
}
