//! The byte layout of one service-protocol message (both directions):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | `len`: u32 LE, number of bytes after this field (at least 22) |
//! | 1 | `kind`: 1 CreateService, 2 SessionEnter, 3 Invoke, 4 SessionUpdate, 5 SessionLeave, 6 DestroyService |
//! | 1 | `status`: 0 in requests; in replies 0 success, 1 failure (retryable), 2 fatal, plus [`CODED`] (128) when the payload starts with a control code |
//! | 8 | `session`: u64 LE (0 where none) |
//! | 8 | `task`: u64 LE (Invoke; else 0) |
//! | 4 | `attempt`: u32 LE (Invoke, from 1; SessionEnter [`ENTER_EARLY`] or 0; a CreateService reply [`features`]; else 0) |
//! | len-22 | `payload`: raw bytes |
//!
//! Request payloads: CreateService the application name (UTF-8), SessionEnter and
//! SessionUpdate the common data, Invoke the task input, others empty. Reply payloads:
//! Invoke success the output; any failure a message (UTF-8); otherwise empty.
//! Replies echo `kind`, `session`, `task` and `attempt` (but a CreateService reply's
//! `attempt` announces [`features`]), and come in request order.
//!
//! A reply may carry a **control code** (Symphony's: the profile's `<Return
//! controlCode=N>` and `<Exception controlCode=N>` say what it does): its status has
//! [`CODED`] set and its payload starts with the code, an i32 LE, before the reply's
//! own payload. A reply without it has code 0. [`parse`] takes the code off, so
//! [`Message::payload`] is always the reply's own.

use std::io::{self, Read, Write};

pub const HEADER: usize = 22;

/// What a service can do beyond the protocol's first version, announced as a bit set in
/// the `attempt` field of its successful CreateService reply. A service that only echoes
/// the field (as the first version asked) announces nothing, so it is never sent what it
/// may not expect.
pub mod features {
    /// Early invokes: the service takes a session's Invokes sent right behind a
    /// SessionEnter flagged [`ENTER_EARLY`](super::ENTER_EARLY), before that
    /// SessionEnter's reply. If that SessionEnter fails, it answers each Invoke of that
    /// session up to its next SessionEnter with status 1 and an empty payload, without
    /// running it (the agent requeues them uncounted). This saves an instance moving
    /// between sessions a round trip of idleness.
    pub const EARLY_INVOKES: u32 = 1;
}

/// In the `attempt` field of a SessionEnter request: the session's Invokes may follow
/// before the reply (sent only to a service that announced
/// [`features::EARLY_INVOKES`]).
pub const ENTER_EARLY: u32 = 1;
/// In a reply's `status`: a control code (i32 LE) comes first in the payload.
pub const CODED: u8 = 0x80;
/// A payload larger than this is refused: protects both sides from a garbled length,
/// and keeps every output small enough for one client frame (16 MiB).
pub const MAX_MESSAGE: usize = 15 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CreateService = 1,
    SessionEnter = 2,
    Invoke = 3,
    SessionUpdate = 4,
    SessionLeave = 5,
    DestroyService = 6,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::CreateService,
            2 => Kind::SessionEnter,
            3 => Kind::Invoke,
            4 => Kind::SessionUpdate,
            5 => Kind::SessionLeave,
            6 => Kind::DestroyService,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::CreateService => "CreateService",
            Kind::SessionEnter => "SessionEnter",
            Kind::Invoke => "Invoke",
            Kind::SessionUpdate => "SessionUpdate",
            Kind::SessionLeave => "SessionLeave",
            Kind::DestroyService => "DestroyService",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success = 0,
    Failure = 1,
    Fatal = 2,
}

#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub kind: Kind,
    pub status: Status,
    pub session: u64,
    pub task: u64,
    pub attempt: u32,
    /// The reply's control code; 0 in requests (and in replies that give none).
    pub code: i32,
    pub payload: &'a [u8],
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The length prefix and header of a message, with its control code if it has one:
/// everything before its payload.
fn header(m: &Message) -> ([u8; 4 + HEADER + 4], usize) {
    let coded = m.code != 0;
    let extra = if coded { 4 } else { 0 };
    let mut h = [0u8; 4 + HEADER + 4];
    h[..4].copy_from_slice(&((HEADER + extra + m.payload.len()) as u32).to_le_bytes());
    h[4] = m.kind as u8;
    h[5] = m.status as u8 | if coded { CODED } else { 0 };
    h[6..14].copy_from_slice(&m.session.to_le_bytes());
    h[14..22].copy_from_slice(&m.task.to_le_bytes());
    h[22..26].copy_from_slice(&m.attempt.to_le_bytes());
    h[26..30].copy_from_slice(&m.code.to_le_bytes());
    (h, 4 + HEADER + extra)
}

/// Appends the message's bytes.
pub fn encode(out: &mut Vec<u8>, m: &Message) {
    encode_header(out, m);
    out.extend_from_slice(m.payload);
}

/// Appends what comes before the payload (length, header, control code): the payload
/// is written after it from where it already is.
pub fn encode_header(out: &mut Vec<u8>, m: &Message) {
    let (h, n) = header(m);
    out.extend_from_slice(&h[..n]);
}

pub fn write<W: Write>(w: &mut W, m: &Message) -> io::Result<()> {
    let (h, n) = header(m);
    w.write_all(&h[..n])?;
    w.write_all(m.payload)
}

/// Parses the 22 header bytes after the length; `payload` is the rest.
pub fn parse<'a>(body: &'a [u8]) -> io::Result<Message<'a>> {
    if body.len() < HEADER {
        return Err(bad(format!(
            "service message of {} bytes is shorter than its {HEADER}-byte header",
            body.len()
        )));
    }
    let kind = Kind::from_u8(body[0]).ok_or_else(|| bad(format!("unknown service message kind {}", body[0])))?;
    let status = match body[1] & !CODED {
        0 => Status::Success,
        1 => Status::Failure,
        2 => Status::Fatal,
        _ => return Err(bad(format!("unknown service reply status {}", body[1]))),
    };
    let (code, payload) = if body[1] & CODED != 0 {
        let Some(code) = body.get(HEADER..HEADER + 4) else {
            return Err(bad("a reply flagged with a control code has none".into()));
        };
        (i32::from_le_bytes(code.try_into().unwrap()), &body[HEADER + 4..])
    } else {
        (0, &body[HEADER..])
    };
    let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap());
    Ok(Message {
        kind,
        status,
        session: u64_at(2),
        task: u64_at(10),
        attempt: u32::from_le_bytes(body[18..22].try_into().unwrap()),
        code,
        payload,
    })
}

/// Where the payload [`parse`] gives starts within the body it was given: after the
/// header, and the control code if there is one.
pub fn payload_at(body: &[u8]) -> usize {
    if body.get(1).is_some_and(|s| s & CODED != 0) {
        HEADER + 4
    } else {
        HEADER
    }
}

/// Checks a length prefix before anything is allocated for it.
pub fn check_len(len: u32) -> io::Result<usize> {
    let len = len as usize;
    if !(HEADER..=HEADER + MAX_MESSAGE).contains(&len) {
        return Err(bad(format!("service message length {len} is out of range")));
    }
    Ok(len)
}

/// How many leading bytes of `buf` are whole messages, and the total length of the
/// first incomplete one (0 if `buf` ends at a boundary or inside a length prefix): lets
/// a relay pass bytes on at message boundaries without decoding what it carries.
pub fn whole(buf: &[u8]) -> io::Result<(usize, usize)> {
    let mut at = 0;
    while buf.len() - at >= 4 {
        let len = check_len(u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()))?;
        if buf.len() - at - 4 < len {
            return Ok((at, 4 + len));
        }
        at += 4 + len;
    }
    Ok((at, 0))
}

/// Reads one message into `buf`; `None` at a clean end of input.
pub fn read<'b, R: Read>(r: &mut R, buf: &'b mut Vec<u8>) -> io::Result<Option<Message<'b>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(bad("end of input inside a message length".into())),
            n => got += n,
        }
    }
    let len = check_len(u32::from_le_bytes(len))?;
    buf.resize(len, 0);
    r.read_exact(buf)?;
    parse(buf).map(Some)
}
