//! Length-prefixed frames with a hard size cap.
//!
//! A frame is `u32` little-endian body length, then the body. A peer that announces more
//! than [`MAX_FRAME`] bytes is cut off before anything is allocated for it, so one bad
//! client can cost the agent at most one connection.

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest body accepted in either direction. Senders split task batches below it.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Most tasks one `Submit` may carry. A frame of empty tasks could otherwise hold
/// millions (a byte each on the wire, tens of bytes each in the agent).
pub const MAX_TASKS_PER_SUBMIT: usize = 65_536;

/// Largest task input or output: one always fits a frame with its envelope.
pub const MAX_PAYLOAD: usize = 15 * 1024 * 1024;

/// Budget a sender aims for when packing many tasks into one frame, leaving headroom
/// under [`MAX_FRAME`] for the envelope.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Well formed, but a count in it is over a limit: found before anything was
    /// allocated for it. The request can be refused and the connection kept.
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame body into a fresh buffer. `Closed` means a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let len = read_len(r, MAX_FRAME).await?;
    read_body(r, len).await
}

/// Reads a frame's length prefix and refuses one over `cap` before anything is
/// allocated for it. `Closed` means a clean EOF between frames.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R, cap: usize) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > cap {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Reads a frame body of `len` bytes (from [`read_len`]).
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Malformed("connection closed inside a frame".into())
        } else {
            e.into()
        }
    })?;
    Ok(body)
}

/// Appends one encoded frame to `out` (so a writer can coalesce many frames into one
/// syscall).
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    let mut out2 = std::mem::take(out);
    out2 = postcard::to_extend(msg, out2).map_err(|e| FrameError::Malformed(e.to_string()))?;
    *out = out2;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    bounded::clear();
    postcard::from_bytes(body).map_err(|e| match bounded::take() {
        Some(limit) => FrameError::OverLimit(limit),
        None => FrameError::Malformed(e.to_string()),
    })
}

/// The leading request id of a frame whose body did not decode, so an over-limit
/// request can be answered rather than dropped.
pub fn leading_id(body: &[u8]) -> Option<u64> {
    postcard::take_from_bytes::<u64>(body).ok().map(|(id, _)| id)
}

/// Sequences in messages whose element count is checked against a cap before any
/// element is decoded: a frame of a million empty tasks costs a byte each on the wire
/// but tens of bytes each once decoded, so the count is refused from its prefix.
///
/// postcard drops the text of a custom error, so the refusal is handed to [`decode`]
/// through a thread-local: decoding is synchronous, on one thread.
pub mod bounded {
    use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
    use std::cell::RefCell;
    use std::marker::PhantomData;

    thread_local! {
        static OVER: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    pub(super) fn clear() {
        OVER.with(|o| *o.borrow_mut() = None);
    }

    pub(super) fn take() -> Option<String> {
        OVER.with(|o| o.borrow_mut().take())
    }

    struct Capped<T> {
        cap: usize,
        what: &'static str,
        _t: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Capped<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "at most {} {}", self.cap, self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let over = |n: &dyn std::fmt::Display| {
                let msg = format!("{n} {} in one message; the limit is {} (send several)", self.what, self.cap);
                OVER.with(|o| *o.borrow_mut() = Some(msg.clone()));
                A::Error::custom(msg)
            };
            // postcard's hint is the announced count, capped by the bytes left (an
            // element takes at least one): a frame that could hold more is refused here.
            let n = seq.size_hint().unwrap_or(0);
            if n > self.cap {
                return Err(over(&n));
            }
            let mut v = Vec::with_capacity(n.min(4096));
            while let Some(x) = seq.next_element()? {
                if v.len() == self.cap {
                    return Err(over(&format!("more than {}", self.cap)));
                }
                v.push(x);
            }
            Ok(v)
        }
    }

    fn capped<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D, cap: usize, what: &'static str) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(Capped {
            cap,
            what,
            _t: PhantomData,
        })
    }

    /// Task payloads of one `Submit`.
    pub fn tasks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bytes::Bytes>, D::Error> {
        capped(d, super::MAX_TASKS_PER_SUBMIT, "tasks")
    }

    /// Task ids of one `Ack` or similar list.
    pub fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        capped(d, super::MAX_IDS_PER_MESSAGE, "task ids")
    }

    thread_local! {
        static IN_ONCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// The request inside a `Once`, which must not be another `Once`: refused as soon
    /// as one is met, so a frame of nested wrappers cannot recurse the reader's stack.
    pub fn once<'de, D: Deserializer<'de>>(d: D) -> Result<Box<crate::msg::Request>, D::Error> {
        if IN_ONCE.with(|f| f.replace(true)) {
            return Err(D::Error::custom("a Once request inside another"));
        }
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                IN_ONCE.with(|f| f.set(false));
            }
        }
        let _reset = Reset;
        crate::msg::Request::deserialize(d).map(Box::new)
    }
}

/// Most task ids one message may list (acknowledgements).
pub const MAX_IDS_PER_MESSAGE: usize = 1 << 20;

/// Writes one message as a frame and flushes.
pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    encode_into(msg, &mut buf)?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Writes every message sent on `rx` until it closes, coalescing whatever is already
/// queued (up to 1 MiB) into one write. Returns early if the peer stops reading.
pub async fn write_queued<W: AsyncWrite + Unpin, T: Serialize>(w: W, rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) {
    write_queued_reporting(w, rx, |_, _| {}).await
}

/// As [`write_queued`]; a message that cannot be sent (over [`MAX_FRAME`]) is handed to
/// `unsendable` with the reason, so whoever waits for its answer can be told.
pub async fn write_queued_reporting<W: AsyncWrite + Unpin, T: Serialize>(
    mut w: W,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    mut unsendable: impl FnMut(T, FrameError),
) {
    let mut buf = Vec::with_capacity(1 << 16);
    while let Some(m) = rx.recv().await {
        buf.clear();
        let mut next = Some(m);
        while let Some(m) = next {
            if let Err(e) = encode_into(&m, &mut buf) {
                unsendable(m, e);
            }
            next = if buf.len() < 1 << 20 { rx.try_recv().ok() } else { None };
        }
        // Flushed every time: a socket ignores it, but a pipe writer (a worker's
        // stdout) would otherwise hold the bytes back.
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.flush().await;
}

/// Reads and decodes one message.
pub async fn read_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let body = read_frame(r).await?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roundtrip_and_cap() {
        let mut buf = Vec::new();
        encode_into(&("hello".to_string(), 7u32), &mut buf).unwrap();
        encode_into(&("again".to_string(), 8u32), &mut buf).unwrap();
        let mut r = &buf[..];
        let a: (String, u32) = read_msg(&mut r).await.unwrap();
        let b: (String, u32) = read_msg(&mut r).await.unwrap();
        assert_eq!(a, ("hello".into(), 7));
        assert_eq!(b, ("again".into(), 8));
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Closed)));

        let huge = ((MAX_FRAME as u32) + 1).to_le_bytes();
        let mut r = &huge[..];
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::TooLarge(_))));

        let truncated = [10u8, 0, 0, 0, 1, 2];
        let mut r = &truncated[..];
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn bytes_are_raw_on_the_wire() {
        let payload = bytes::Bytes::from_static(b"\x00\x01\xffABC");
        let mut buf = Vec::new();
        encode_into(&payload, &mut buf).unwrap();
        // length prefix, varint length 6, then the six bytes themselves.
        assert_eq!(&buf[4..], b"\x06\x00\x01\xffABC");
    }
}
