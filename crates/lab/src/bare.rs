//! A bare client for `soambench`'s latency: one task at a time through the agent with
//! blocking reads and writes on the socket and no runtime, as the floor's client does
//! it (`floor.rs`). Measured beside the client library's rounds, it splits soam's
//! distance from the floor into the client library's share (library against bare) and
//! the agent's (bare against floor).
//!
//! It speaks the same protocol as the library, frame for frame: a `Submit` of one
//! empty task, the previous round's `Ack` written with it in one write, and the round
//! ends when both the submit's reply and the output have come. Frames are read through
//! a buffer, so one read takes whatever has arrived, as the library's reader does.

use crate::attack;
use anyhow::bail;
use bytes::Bytes;
use soam_proto::frame;
use soam_proto::msg::{AgentFrame, ClientFrame, Event, Reply, Request};
use soam_proto::{SessionKey, SessionRef};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

pub struct Bare {
    /// Requests go out here, in one write a round.
    w: UnixStream,
    /// The same socket, read through a buffer.
    r: BufReader<UnixStream>,
    /// The session every round submits to, created by this connection and held by it
    /// so that its outputs come here.
    session: SessionRef,
    next_id: u64,
    /// Tasks whose outputs came in the last round: acknowledged with the next submit.
    ack: Vec<u64>,
    /// The frames of a round, reused.
    out: Vec<u8>,
}

impl Bare {
    /// Connects and creates an attached session of `app`.
    pub fn open(socket: &Path, app: &str) -> anyhow::Result<Bare> {
        let w = attack::connect_as(socket, "soambench bare")?;
        let r = BufReader::with_capacity(64 << 10, w.try_clone()?);
        let mut bare = Bare {
            w,
            r,
            session: SessionRef {
                app: app.into(),
                key: SessionKey::Id(0),
            },
            next_id: 1,
            ack: Vec::new(),
            out: Vec::new(),
        };
        let id = bare.send(crate::rounds::create_request(app, None, true))?;
        loop {
            if let AgentFrame::Reply { id: got, result } = bare.frame()?
                && got == id
            {
                match result {
                    Ok(Reply::Session(s)) => bare.session.key = SessionKey::Id(s.id),
                    other => bail!("creating a session of {app}: {other:?}"),
                }
                return Ok(bare);
            }
        }
    }

    /// Writes `req` (after the acknowledgement owed, if any) in one write; its id.
    fn send(&mut self, req: Request) -> anyhow::Result<u64> {
        self.out.clear();
        if !self.ack.is_empty() {
            let ack = Request::Ack {
                session: self.session.clone(),
                tasks: std::mem::take(&mut self.ack),
            };
            frame::encode_into(&ClientFrame { id: 0, req: ack }, &mut self.out)?;
        }
        let id = self.next_id;
        self.next_id += 1;
        frame::encode_into(&ClientFrame { id, req }, &mut self.out)?;
        self.w.write_all(&self.out)?;
        Ok(id)
    }

    /// The next frame from the agent, decoded.
    fn frame(&mut self) -> anyhow::Result<AgentFrame> {
        Ok(attack::read_msg(&mut self.r)?)
    }

    /// `n` round trips (submit, output, acknowledge), each one's time in µs.
    pub fn rounds(&mut self, n: usize, samples: &mut Vec<f64>) -> anyhow::Result<()> {
        for _ in 0..n {
            let t0 = Instant::now();
            let id = self.send(Request::Submit {
                session: self.session.clone(),
                tasks: vec![Bytes::new()],
            })?;
            let (mut replied, mut output) = (false, false);
            while !(replied && output) {
                match self.frame()? {
                    AgentFrame::Reply { id: got, result } if got == id => match result {
                        Ok(_) => replied = true,
                        Err(e) => bail!("submit refused: {e}"),
                    },
                    AgentFrame::Failed { id: got, message, .. } if got == id || got == 0 => bail!("submit refused: {message}"),
                    AgentFrame::Event(Event::Outputs { outputs, .. }) => {
                        self.ack.extend(outputs.iter().map(|o| o.task));
                        output = true;
                    }
                    AgentFrame::Event(Event::Ended { reason, .. }) => bail!("session ended: {reason}"),
                    _ => {}
                }
            }
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    }

    /// Closes the session.
    pub fn close(mut self) -> anyhow::Result<()> {
        let id = self.send(Request::Close {
            session: self.session.clone(),
        })?;
        loop {
            match self.frame()? {
                AgentFrame::Reply { id: got, result } if got == id => {
                    return result.map(|_| ()).map_err(|e| anyhow::anyhow!("close: {e}"));
                }
                AgentFrame::Failed { id: got, message, .. } if got == id => bail!("close: {message}"),
                _ => {}
            }
        }
    }
}
