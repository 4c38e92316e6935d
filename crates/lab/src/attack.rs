//! Hostile clients, for `soambench --attack` and the resource-limit tests: raw socket
//! peers that do what a well-behaved client never does (pipeline requests without
//! reading the replies, send maximal frames of empty tasks) and a way to read the
//! agent's memory while they do.
//!
//! Blocking std sockets on threads: an attacker needs no runtime, and a blocked write
//! is exactly the backpressure being measured.

use bytes::Bytes;
use soam_proto::frame::{self, MAX_FRAME};
use soam_proto::msg::{AgentFrame, ClientFrame, Hello, MAGIC, Reply, Request, Welcome};
use soam_proto::{SessionKey, SessionRef};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Connects and completes the handshake.
pub fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    connect_as(socket, "attack")
}

/// Connects and completes the handshake, named `client` (the holder the agent shows).
pub fn connect_as(socket: &Path, client: &str) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(socket)?;
    let mut buf = Vec::new();
    let hello = Hello {
        magic: MAGIC,
        version: soam_proto::PROTOCOL_VERSION,
        client: client.into(),
    };
    frame::encode_into(&hello, &mut buf).map_err(std::io::Error::other)?;
    s.write_all(&buf)?;
    match read_msg::<Welcome>(&mut s)? {
        Welcome::Ok { .. } => Ok(s),
        Welcome::Refused { reason } => Err(std::io::Error::other(reason)),
    }
}

/// Reads one frame and decodes it.
pub fn read_msg<T: serde::de::DeserializeOwned>(s: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    frame::decode(&body).map_err(std::io::Error::other)
}

/// One encoded request frame.
pub fn request(id: u64, req: Request) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::encode_into(&ClientFrame { id, req }, &mut buf).expect("a small request encodes");
    buf
}

/// `n` ListApps requests, written without reading a reply: the pipelining attack.
/// Returns once all are written, which a bounded agent only allows as the replies are
/// read from the other clone of the stream.
pub fn pipeline_list_apps(mut s: UnixStream, n: u64) -> std::io::Result<()> {
    for id in 1..=n {
        s.write_all(&request(id, Request::ListApps { app: None }))?;
    }
    Ok(())
}

/// Reads `n` replies; returns how many were `Ok`.
pub fn read_replies(s: &mut UnixStream, n: u64) -> std::io::Result<u64> {
    let mut ok = 0;
    let mut got = 0;
    while got < n {
        if let AgentFrame::Reply { result, .. } = read_msg::<AgentFrame>(s)? {
            got += 1;
            ok += u64::from(result.is_ok());
        }
    }
    Ok(ok)
}

/// A Submit frame of the maximal size made of empty tasks: a byte each on the wire,
/// millions of them.
pub fn maximal_empty_submit(id: u64) -> Vec<u8> {
    let req = Request::Submit {
        session: SessionRef {
            app: "a".into(),
            key: SessionKey::Id(1),
        },
        tasks: Vec::<Bytes>::new(),
    };
    let mut body = request(id, req).split_off(4);
    // The empty list's count is the last byte: replace it with the largest count that
    // keeps the frame under the cap, then the tasks (a zero length each).
    body.pop();
    let n = MAX_FRAME - body.len() - 8;
    let mut v = n as u64;
    while v >= 0x80 {
        body.push((v as u8) | 0x80);
        v >>= 7;
    }
    body.push(v as u8);
    body.resize(body.len() + n, 0);
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Sends one maximal frame of empty tasks (from [`maximal_empty_submit`]) and returns
/// the agent's answer to it, then checks the connection still answers a ping.
pub fn send_maximal_frame(socket: &Path, frame: &[u8]) -> std::io::Result<String> {
    let mut s = connect(socket)?;
    s.write_all(frame)?;
    let answer = match read_msg::<AgentFrame>(&mut s)? {
        AgentFrame::Reply { result: Err(e), .. } => e,
        other => format!("{other:?}"),
    };
    s.write_all(&request(2, Request::Ping))?;
    match read_msg::<AgentFrame>(&mut s)? {
        AgentFrame::Reply {
            id: 2,
            result: Ok(Reply::Ok),
        } => Ok(answer),
        other => Err(std::io::Error::other(format!("no answer to a ping after it: {other:?}"))),
    }
}

/// A memory figure of a process from /proc, in KiB (`VmRSS`, `VmHWM`).
pub fn mem_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resets the peak (`VmHWM`) to the current RSS, so a later peak is this phase's.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}
