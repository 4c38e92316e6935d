//! The service side of soam: what a persistent-mode service process speaks on its
//! stdin/stdout, and a run loop so a Rust service is one trait impl.
//!
//! Data flow: the agent writes [`Message`]s to the process's stdin, one after another and
//! possibly many ahead (pipelining); the process answers each, in order, on stdout. The
//! framing ([`wire`]) is byte-exact and documented in `docs/service-protocol.md` so that
//! services can be written in any language. [`run`] reads requests through a buffer and
//! only flushes its replies when no further request is already buffered, so a pipelined
//! burst costs one write, not one per task.
//!
//! ```no_run
//! use soam_service::{Failure, Service, TaskContext};
//! struct Upper;
//! impl Service for Upper {
//!     fn invoke(&mut self, _t: &TaskContext, input: &[u8]) -> Result<Vec<u8>, Failure> {
//!         Ok(input.to_ascii_uppercase())
//!     }
//! }
//! fn main() -> std::io::Result<()> { soam_service::run(Upper) }
//! ```

pub mod wire;

use std::io::{self, BufReader, BufWriter, Read, Write};
pub use wire::{Kind, Message, Status};

/// Why a method did not succeed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The attempt failed; the agent may retry per the profile (`taskRetryLimit`,
    /// `sessionRetryLimit`, `control.*.onFailure`).
    Retry(String),
    /// Not retryable: the task (or session binding) fails at once.
    Fatal(String),
}

/// What a task invocation knows about itself.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub session: u64,
    pub task: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// A persistent-mode service. Every method but `invoke` defaults to success.
pub trait Service {
    fn create_service(&mut self, _app: &str) -> Result<(), Failure> {
        Ok(())
    }
    fn session_enter(&mut self, _session: u64, _common_data: &[u8]) -> Result<(), Failure> {
        Ok(())
    }
    fn invoke(&mut self, task: &TaskContext, input: &[u8]) -> Result<Vec<u8>, Failure>;
    fn session_update(&mut self, _session: u64, _common_data: &[u8]) -> Result<(), Failure> {
        Ok(())
    }
    fn session_leave(&mut self, _session: u64) -> Result<(), Failure> {
        Ok(())
    }
    /// The control code of the method that just ran, asked once after each method
    /// (success or failure): a service that sets one keeps it in a field while the
    /// method runs and hands it over here, leaving 0 for the next. The profile's
    /// `<Return controlCode=N>` and `<Exception controlCode=N>` say what it does
    /// (docs/service-protocol.md); 0, the default, is what no code means.
    fn control_code(&mut self) -> i32 {
        0
    }
    fn destroy_service(&mut self) -> Result<(), Failure> {
        Ok(())
    }
}

/// Serves the protocol on stdin/stdout until DestroyService or end of input.
pub fn run<S: Service>(svc: S) -> io::Result<()> {
    serve(svc, io::stdin().lock(), io::stdout().lock())
}

/// [`run`] over any reader and writer (tests, other transports).
pub fn serve<S: Service, R: Read, W: Write>(mut svc: S, input: R, output: W) -> io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut buf = Vec::new();
    // The session whose early SessionEnter failed: its Invokes already on their way are
    // answered unrun (see `wire::features::EARLY_INVOKES`).
    let mut refused: Option<u64> = None;
    while let Some(msg) = wire::read(&mut input, &mut buf)? {
        let mut attempt = msg.attempt;
        let (status, payload): (Status, Vec<u8>) = {
            let r = match msg.kind {
                Kind::CreateService => {
                    let r = svc.create_service(&String::from_utf8_lossy(msg.payload));
                    if r.is_ok() {
                        attempt = wire::features::EARLY_INVOKES;
                    }
                    r.map(|_| Vec::new())
                }
                Kind::SessionEnter => {
                    let r = svc.session_enter(msg.session, msg.payload);
                    refused = (r.is_err() && msg.attempt & wire::ENTER_EARLY != 0).then_some(msg.session);
                    r.map(|_| Vec::new())
                }
                Kind::Invoke if refused == Some(msg.session) => Err(Failure::Retry(String::new())),
                Kind::Invoke => {
                    let ctx = TaskContext {
                        session: msg.session,
                        task: msg.task,
                        attempt: msg.attempt,
                    };
                    svc.invoke(&ctx, msg.payload)
                }
                Kind::SessionUpdate => svc.session_update(msg.session, msg.payload).map(|_| Vec::new()),
                Kind::SessionLeave => svc.session_leave(msg.session).map(|_| Vec::new()),
                Kind::DestroyService => svc.destroy_service().map(|_| Vec::new()),
            };
            match r {
                Ok(p) => (Status::Success, p),
                Err(Failure::Retry(m)) => (Status::Failure, m.into_bytes()),
                Err(Failure::Fatal(m)) => (Status::Fatal, m.into_bytes()),
            }
        };
        let reply = Message {
            kind: msg.kind,
            status,
            session: msg.session,
            task: msg.task,
            attempt,
            code: svc.control_code(),
            payload: &payload,
        };
        wire::write(&mut out, &reply)?;
        let last = msg.kind == Kind::DestroyService;
        // Flush only when nothing more is already buffered (never read ahead to find
        // out: that would block with the reply unsent): replies to a pipelined burst
        // leave in one write.
        if last || input.buffer().is_empty() {
            out.flush()?;
        }
        if last {
            break;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rev;
    impl Service for Rev {
        fn invoke(&mut self, t: &TaskContext, input: &[u8]) -> Result<Vec<u8>, Failure> {
            if input == b"bad" {
                return Err(Failure::Retry(format!("attempt {}", t.attempt)));
            }
            Ok(input.iter().rev().copied().collect())
        }
    }

    /// Refuses to enter sessions under 10; records the tasks it ran.
    struct Picky(std::rc::Rc<std::cell::RefCell<Vec<u64>>>);
    impl Service for Picky {
        fn session_enter(&mut self, session: u64, _: &[u8]) -> Result<(), Failure> {
            if session < 10 { Err(Failure::Retry("no".into())) } else { Ok(()) }
        }
        fn invoke(&mut self, t: &TaskContext, _: &[u8]) -> Result<Vec<u8>, Failure> {
            self.0.borrow_mut().push(t.task);
            Ok(b"ran".to_vec())
        }
    }

    #[test]
    fn early_invokes_behind_a_failed_enter_are_refused_unrun() {
        let msg = |kind, session, task, attempt| Message {
            kind,
            status: Status::Success,
            session,
            task,
            attempt,
            code: 0,
            payload: b"",
        };
        let early = wire::ENTER_EARLY;
        let mut req = Vec::new();
        for m in [
            msg(Kind::CreateService, 0, 0, 0),
            // Early and failed: its task is refused unrun.
            msg(Kind::SessionEnter, 1, 0, early),
            msg(Kind::Invoke, 1, 1, 1),
            // Failed, not early (the agent counts it entered, `onFailure: succeed`): it runs.
            msg(Kind::SessionEnter, 2, 0, 0),
            msg(Kind::Invoke, 2, 2, 1),
            // Early and entered: it runs.
            msg(Kind::SessionEnter, 10, 0, early),
            msg(Kind::Invoke, 10, 3, 1),
        ] {
            wire::write(&mut req, &m).unwrap();
        }
        let ran = std::rc::Rc::default();
        let mut out = Vec::new();
        serve(Picky(std::rc::Rc::clone(&ran)), &req[..], &mut out).unwrap();
        let (mut r, mut buf) = (&out[..], Vec::new());
        let mut replies = Vec::new();
        while let Some(m) = wire::read(&mut r, &mut buf).unwrap() {
            replies.push((m.kind, m.status, m.task, m.attempt, m.payload.to_vec()));
        }
        let f = wire::features::EARLY_INVOKES;
        assert_eq!(
            replies[0],
            (Kind::CreateService, Status::Success, 0, f, vec![]),
            "it announces the feature"
        );
        assert_eq!(replies[2], (Kind::Invoke, Status::Failure, 1, 1, vec![]));
        assert_eq!(replies[4], (Kind::Invoke, Status::Success, 2, 1, b"ran".to_vec()));
        assert_eq!(replies[6], (Kind::Invoke, Status::Success, 3, 1, b"ran".to_vec()));
        assert_eq!(*ran.borrow(), [2, 3]);
    }

    #[test]
    fn serves_a_pipelined_burst() {
        let mut req = Vec::new();
        for (i, p) in [&b"abc"[..], b"bad", b"\x00\xff"].iter().enumerate() {
            wire::write(
                &mut req,
                &Message {
                    kind: Kind::Invoke,
                    status: Status::Success,
                    session: 1,
                    task: i as u64 + 1,
                    attempt: 2,
                    code: 0,
                    payload: p,
                },
            )
            .unwrap();
        }
        let mut out = Vec::new();
        serve(Rev, &req[..], &mut out).unwrap();
        let mut r = &out[..];
        let mut buf = Vec::new();
        let a = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!((a.task, a.status, a.payload), (1, Status::Success, &b"cba"[..]));
        let b = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!((b.task, b.status, b.payload), (2, Status::Failure, &b"attempt 2"[..]));
        let c = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!(c.payload, b"\xff\x00");
        assert!(wire::read(&mut r, &mut buf).unwrap().is_none());
    }

    /// Answers each input's first byte as its control code, success or failure.
    struct Coded(i32);
    impl Service for Coded {
        fn invoke(&mut self, _t: &TaskContext, input: &[u8]) -> Result<Vec<u8>, Failure> {
            self.0 = input[0] as i32 - 100;
            if input[1] == b'f' {
                return Err(Failure::Retry("failed".into()));
            }
            Ok(input[2..].to_vec())
        }
        fn control_code(&mut self) -> i32 {
            std::mem::take(&mut self.0)
        }
    }

    #[test]
    fn a_control_code_goes_with_its_one_reply_and_reads_back() {
        let mut req = Vec::new();
        for (i, p) in [&b"\x5fsout"[..], b"\x67f", b"\x64sx"].iter().enumerate() {
            let m = Message {
                kind: Kind::Invoke,
                status: Status::Success,
                session: 1,
                task: i as u64 + 1,
                attempt: 1,
                code: 0,
                payload: p,
            };
            wire::write(&mut req, &m).unwrap();
        }
        let mut out = Vec::new();
        serve(Coded(0), &req[..], &mut out).unwrap();
        // Flagged in the status byte, the code (i32 LE) before the payload.
        assert_eq!(out[5], wire::CODED);
        assert_eq!(&out[26..30], &(-5i32).to_le_bytes());
        let (mut r, mut buf) = (&out[..], Vec::new());
        let a = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!((a.status, a.code, a.payload), (Status::Success, -5, &b"out"[..]));
        let b = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!((b.status, b.code, b.payload), (Status::Failure, 3, &b"failed"[..]));
        // Code 0 is no code: the reply is as the protocol's first version had it.
        let c = wire::read(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!((c.status, c.code, c.payload), (Status::Success, 0, &b"x"[..]));
        assert!(wire::read(&mut r, &mut buf).unwrap().is_none());
        // A flagged reply too short to hold its code is refused, not read past.
        let mut short = vec![0u8; wire::HEADER + 2];
        short[0] = Kind::Invoke as u8;
        short[1] = wire::CODED;
        assert!(wire::parse(&short).is_err());
        assert_eq!(wire::payload_at(&out[4..]), wire::HEADER + 4);
    }
}
