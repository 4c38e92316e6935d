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

/// Payloads from this size on are passed along in the buffer they arrived in rather
/// than copied (see [`decode_shared`]); the agent keeps and sends them the same way.
/// Below it a copy costs less, and keeps no larger buffer alive.
pub const SHARE_MIN: usize = 64 * 1024;

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
    if let Err(e) = append(msg, out) {
        out.truncate(start);
        return Err(e);
    }
    finish_frame(out, start, 0)
}

/// Appends `v` as postcard encodes it.
fn append<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    postcard::serialize_with_flavor(v, Append(out)).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// postcard's output appended to a `Vec`, as [`put`] writes it.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();
    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        put(self.0, data);
        Ok(())
    }
    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `data`: a short piece (a varint, a name) byte by byte, a long one copied.
/// postcard writes each field as such a piece, and its own `Vec` output copies every one
/// with a call to `memcpy` of a length known only then: fifteen calls for a session's
/// row, which were a sixth of the agent's time encoding a page of sessions.
#[inline]
fn put(out: &mut Vec<u8>, data: &[u8]) {
    if data.len() <= 16 {
        out.reserve(data.len());
        for &b in data {
            out.push(b);
        }
    } else {
        out.extend_from_slice(data);
    }
}

/// `v` as postcard's varint: seven bits a byte, low first, the high bit set on all but
/// the last.
#[inline]
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Text as postcard writes a `str`: its length, then its bytes.
#[inline]
fn text(out: &mut Vec<u8>, t: &str) {
    varint(out, t.len() as u64);
    put(out, t.as_bytes());
}

/// An `Option<&str>` as postcard writes it: 0, or 1 and the text.
#[inline]
fn opt_text(out: &mut Vec<u8>, t: Option<&str>) {
    match t {
        Some(t) => {
            out.push(1);
            text(out, t);
        }
        None => out.push(0),
    }
}

/// Session rows encoded one after another, for a page's frame made without the rows
/// as values ([`encode_session_page`]).
#[derive(Debug, Default)]
pub struct Rows {
    buf: Vec<u8>,
    count: usize,
}

impl Rows {
    /// Appends a session's row: the very bytes postcard gives for it as an item of a
    /// list (test `session_pages_encode_alike`), written field by field. The agent encodes every
    /// row of a listing, and through serde each integer was a call that made its varint
    /// in a buffer of its own and then appended it, a large share of the agent's time on
    /// a page of sessions (docs/benchmarks.md).
    pub fn push_session(&mut self, r: &crate::msg::SessionInfoRef<'_>) {
        let o = &mut self.buf;
        let text_len = |t: Option<&str>| t.map_or(0, str::len);
        // Room for every field: the text, and at most 10 bytes for each of the 17 others.
        o.reserve(170 + r.app.len() + r.session_type.len() + text_len(r.name) + text_len(r.tag) + text_len(r.holder) + text_len(r.reason));
        text(o, r.app);
        varint(o, r.id);
        opt_text(o, r.name);
        opt_text(o, r.tag);
        text(o, r.session_type);
        // A unit variant is its index, which is its discriminant: `SessionState` has
        // no explicit ones.
        varint(o, r.state as u64);
        varint(o, u64::from(r.priority));
        o.push(u8::from(r.recoverable));
        o.push(u8::from(r.direct));
        for n in [r.pending, r.running, r.done, r.error, r.canceled, r.undelivered, r.created_ms] {
            varint(o, n);
        }
        match r.ended_ms {
            Some(t) => {
                o.push(1);
                varint(o, t);
            }
            None => o.push(0),
        }
        opt_text(o, r.holder);
        o.push(u8::from(r.orphaned));
        varint(o, u64::from(r.owner_uid));
        opt_text(o, r.reason);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Which of the two replies carrying a page of sessions a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// [`crate::msg::Reply::SessionPage`] (protocol 3): the rows, then `next`.
    RowsFirst,
    /// [`crate::msg::Reply::SessionsAhead`] (protocol 5): `next`, then the rows.
    NextFirst,
}

impl PageKind {
    /// The reply of this kind with no rows and no next page: its encoding less its last
    /// two bytes (an empty list's length and an absent `next`, a zero byte each) is the
    /// envelope before the page's own fields, whatever the enums' variant numbers are.
    fn empty(self, id: u64) -> crate::msg::AgentFrame {
        use crate::msg::{AgentFrame, Reply};
        let result = Ok(match self {
            PageKind::RowsFirst => Reply::SessionPage {
                sessions: Vec::new(),
                next: None,
            },
            PageKind::NextFirst => Reply::SessionsAhead {
                next: None,
                sessions: Vec::new(),
            },
        });
        AgentFrame::Reply { id, result }
    }
}

/// Appends the frame answering request `id` with a page of sessions of `kind` made of
/// `rows` (each a [`crate::msg::SessionInfoRef`] or `SessionInfo`): the bytes
/// [`encode_into`] gives for that reply, without the rows made into values first.
pub fn encode_session_page(
    id: u64,
    kind: PageKind,
    rows: &Rows,
    next: &Option<(String, u64)>,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    encode_into(&kind.empty(id), out)?;
    out.truncate(out.len() - 2);
    // A list's length is a varint usize, as `count` is.
    let appended = match kind {
        PageKind::RowsFirst => append(&rows.count, out).and_then(|()| {
            out.extend_from_slice(&rows.buf);
            append(next, out)
        }),
        PageKind::NextFirst => append(next, out).and_then(|()| {
            append(&rows.count, out)?;
            out.extend_from_slice(&rows.buf);
            Ok(())
        }),
    };
    if let Err(e) = appended {
        out.truncate(start);
        return Err(e);
    }
    finish_frame(out, start, 0)
}

/// The id of a reply frame ([`crate::msg::AgentFrame::Reply`]) from the first bytes of
/// its body, the rest not decoded; `None` for any other frame. A client routes a reply
/// by it before deciding who decodes the rest (see [`session_page_rows`]).
pub fn reply_id(body: &[u8]) -> Option<u64> {
    // `Reply` is `AgentFrame`'s first variant, and `id` its first field: the start of
    // any reply reads as this, and any other frame does not (its variant is out of range).
    #[derive(serde::Deserialize)]
    enum Head {
        Reply { id: u64 },
    }
    match postcard::take_from_bytes::<Head>(body) {
        Ok((Head::Reply { id }, _)) => Some(id),
        Err(_) => None,
    }
}

/// Where the page's own fields begin, and which kind of page it is, when `body` is a
/// frame answering with a page of sessions; read them with [`decode_session_rows`].
/// `None`: another frame (a refusal, say), to decode as a whole.
pub fn session_page_rows(body: &[u8]) -> Option<(usize, PageKind)> {
    let id = reply_id(body)?;
    [PageKind::RowsFirst, PageKind::NextFirst].into_iter().find_map(|kind| {
        // As `encode_session_page` writes it.
        let head = postcard::to_stdvec(&kind.empty(id)).ok()?;
        let head = &head[..head.len() - 2];
        body.starts_with(head).then_some((head.len(), kind))
    })
}

/// Where the page after this one starts, read without the rows when the page says it
/// first ([`PageKind::NextFirst`]); `None` when the rows must be read first.
pub fn session_page_next(fields: &[u8], kind: PageKind) -> Option<Result<Option<(String, u64)>, FrameError>> {
    (kind == PageKind::NextFirst).then(|| {
        postcard::take_from_bytes(fields)
            .map(|(next, _)| next)
            .map_err(|e| FrameError::Malformed(e.to_string()))
    })
}

/// The rows of a session page (from [`session_page_rows`]'s offset on) and where the
/// next page starts, their text borrowed from the frame: a listing of 10,000 sessions
/// decoded into owned rows was 20,000 strings made, copied and freed again.
pub fn decode_session_rows(fields: &[u8], kind: PageKind) -> Result<SessionRows<'_>, FrameError> {
    let malformed = |e: postcard::Error| FrameError::Malformed(e.to_string());
    match kind {
        PageKind::RowsFirst => postcard::from_bytes(fields).map_err(malformed),
        PageKind::NextFirst => postcard::from_bytes(fields).map(|(next, rows)| (rows, next)).map_err(malformed),
    }
}

/// A page's rows and where the next page starts (`None` at the end).
pub type SessionRows<'a> = (Vec<crate::msg::SessionInfoRef<'a>>, Option<(String, u64)>);

/// Writes the length of the frame begun at `start` (whose body is what follows in
/// `out`, plus `elsewhere` bytes written from other buffers), or takes it back out if it
/// is over [`MAX_FRAME`].
fn finish_frame(out: &mut Vec<u8>, start: usize, elsewhere: usize) -> Result<(), FrameError> {
    let len = out.len() - start - 4 + elsewhere;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Encoded frames with their large payloads left where they are: `buf` holds
/// everything else, and each `(at, payload)` of `big` goes at offset `at` of `buf`.
/// A writer sends it with [`write_parts`]; the payloads are never copied on the way out.
#[derive(Debug, Default)]
pub struct Parts {
    pub buf: Vec<u8>,
    pub big: Vec<(usize, bytes::Bytes)>,
}

impl Parts {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.big.clear();
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.buf.len() + self.big.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.big.is_empty()
    }

    /// Appends one encoded frame, as [`encode_into`] does; payloads serialized through
    /// [`shared::serialize`] of at least [`SHARE_MIN`] bytes go to `big`.
    pub fn encode<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        let start = self.buf.len();
        let first_big = self.big.len();
        self.buf.extend_from_slice(&[0u8; 4]);
        shared::SPLIT.with(|s| *s.borrow_mut() = Some(Vec::new()));
        let r = postcard::serialize_with_flavor(msg, shared::Split { parts: self });
        shared::SPLIT.with(|s| *s.borrow_mut() = None);
        if let Err(e) = r {
            self.buf.truncate(start);
            self.big.truncate(first_big);
            return Err(FrameError::Malformed(e.to_string()));
        }
        let elsewhere = self.big[first_big..].iter().map(|(_, b)| b.len()).sum();
        let r = finish_frame(&mut self.buf, start, elsewhere);
        if r.is_err() {
            self.big.truncate(first_big);
        }
        r
    }
}

/// Writes `parts` in as few `writev` calls as the peer takes.
pub async fn write_parts<W: AsyncWrite + Unpin>(w: &mut W, parts: &Parts) -> std::io::Result<()> {
    let (buf, big) = (&parts.buf, &parts.big);
    if big.is_empty() {
        return w.write_all(buf).await;
    }
    let mut slices = Vec::with_capacity(2 * big.len() + 1);
    let mut at = 0;
    for (to, payload) in big {
        slices.push(std::io::IoSlice::new(&buf[at..*to]));
        slices.push(std::io::IoSlice::new(payload));
        at = *to;
    }
    slices.push(std::io::IoSlice::new(&buf[at..]));
    slices.retain(|p| !p.is_empty());
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    bounded::clear();
    postcard::from_bytes(body).map_err(|e| match bounded::take() {
        Some(limit) => FrameError::OverLimit(limit),
        None => FrameError::Malformed(e.to_string()),
    })
}

/// As [`decode`], but large task payloads in the message (at least [`SHARE_MIN`] bytes,
/// and at least an eighth of the frame) are slices of `body` rather than copies: a
/// 1 MiB copy is a megabyte of fresh pages to fault in. The eighth bounds what a small
/// slice can keep alive: a frame is held by what was shared from it, at most eight
/// times their size.
pub fn decode_shared<T: DeserializeOwned>(body: &bytes::Bytes) -> Result<T, FrameError> {
    shared::FRAME.with(|f| *f.borrow_mut() = Some(body.clone()));
    let r = decode(body);
    shared::FRAME.with(|f| *f.borrow_mut() = None);
    r
}

/// Task payloads decoded as slices of the frame they came in (see [`decode_shared`]).
///
/// serde hands a visitor only `&[u8]`, so the frame's `Bytes` is lent through a
/// thread-local: decoding is synchronous, on one thread.
pub mod shared {
    use bytes::Bytes;
    use serde::de::{Deserialize, Deserializer, Visitor};
    use serde::{Serialize, Serializer};
    use std::cell::RefCell;

    thread_local! {
        pub(super) static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
    }

    /// One payload: a slice of the frame being decoded when large, else a copy.
    #[repr(transparent)]
    pub struct Payload(pub Bytes);

    impl<'de> Deserialize<'de> for Payload {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
            d.deserialize_bytes(PayloadVisitor)
        }
    }

    struct PayloadVisitor;

    impl<'de> Visitor<'de> for PayloadVisitor {
        type Value = Payload;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Payload, E> {
            if v.len() >= super::SHARE_MIN {
                let sliced = FRAME.with(|f| {
                    let f = f.borrow();
                    let frame = f.as_ref()?;
                    let (r, vr) = (frame.as_ptr_range(), v.as_ptr_range());
                    let inside = r.start <= vr.start && vr.end <= r.end;
                    (inside && v.len() >= frame.len() / 8).then(|| frame.slice_ref(v))
                });
                if let Some(b) = sliced {
                    return Ok(Payload(b));
                }
            }
            Ok(Payload(Bytes::copy_from_slice(v)))
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Payload, E> {
            Ok(Payload(Bytes::from(v)))
        }
    }

    /// A payload field (a task's output).
    pub fn payload<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        Payload::deserialize(d).map(|p| p.0)
    }

    thread_local! {
        /// Large payloads being serialized by [`super::Parts::encode`] (`Some` only while
        /// it runs): the flavor recognises each by its address when postcard hands over
        /// its bytes.
        pub(super) static SPLIT: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    }

    /// Serializes a payload field; under [`super::Parts::encode`] a large one is left in
    /// its buffer instead of copied. The bytes on the wire are the same.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        if b.len() >= super::SHARE_MIN {
            SPLIT.with(|v| {
                if let Some(v) = v.borrow_mut().as_mut() {
                    v.push(b.clone());
                }
            });
        }
        s.serialize_bytes(b)
    }

    /// Serializes a list of payloads (a submission's tasks), each as [`serialize`].
    pub fn serialize_all<S: Serializer>(v: &[Bytes], s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a Bytes);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize(self.0, s)
            }
        }
        s.collect_seq(v.iter().map(One))
    }

    /// The postcard flavor of [`super::Parts::encode`].
    pub(super) struct Split<'a> {
        pub(super) parts: &'a mut super::Parts,
    }

    impl postcard::ser_flavors::Flavor for Split<'_> {
        type Output = ();
        fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
            if data.len() >= super::SHARE_MIN {
                let found = SPLIT.with(|v| {
                    let mut v = v.borrow_mut();
                    let v = v.as_mut()?;
                    let i = v.iter().position(|b| b.as_ptr() == data.as_ptr() && b.len() == data.len())?;
                    Some(v.swap_remove(i))
                });
                if let Some(b) = found {
                    self.parts.big.push((self.parts.buf.len(), b));
                    return Ok(());
                }
            }
            super::put(&mut self.parts.buf, data);
            Ok(())
        }
        fn try_push(&mut self, data: u8) -> postcard::Result<()> {
            self.parts.buf.push(data);
            Ok(())
        }
        fn finalize(self) -> postcard::Result<()> {
            Ok(())
        }
    }
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
        let v: Vec<super::shared::Payload> = capped(d, super::MAX_TASKS_PER_SUBMIT, "tasks")?;
        // Same layout (`repr(transparent)`): collected in place, no second vector.
        Ok(v.into_iter().map(|p| p.0).collect())
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
    let mut parts = Parts::default();
    while let Some(m) = rx.recv().await {
        parts.clear();
        let mut next = Some(m);
        while let Some(m) = next {
            if let Err(e) = parts.encode(&m) {
                unsendable(m, e);
            }
            next = if parts.len() < 1 << 20 { rx.try_recv().ok() } else { None };
        }
        // Flushed every time: a socket ignores it, but a pipe writer (a worker's
        // stdout) would otherwise hold the bytes back.
        if write_parts(&mut w, &parts).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.flush().await;
}

/// Reads and decodes one message.
pub async fn read_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let body = bytes::Bytes::from(read_frame(r).await?);
    decode_shared(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session row `i` of a test page, its fields varied with `i`.
    fn row(i: u64) -> crate::msg::SessionInfoRef<'static> {
        use crate::msg::SessionState;
        crate::msg::SessionInfoRef {
            app: "app",
            id: i,
            name: i.is_multiple_of(2).then_some("n\u{e9}"),
            tag: i.is_multiple_of(3).then_some("t"),
            session_type: "default",
            state: SessionState::ALL[i as usize % SessionState::ALL.len()],
            priority: if i.is_multiple_of(11) { u32::MAX } else { 7 },
            recoverable: i % 2 == 1,
            direct: i.is_multiple_of(5),
            pending: 1 << (i % 40),
            running: i,
            done: 3 * i,
            error: if i.is_multiple_of(13) { u64::MAX } else { 2 },
            canceled: 1,
            undelivered: 300,
            created_ms: 1_795_379_471_000 + i,
            ended_ms: i.is_multiple_of(4).then_some(1_795_379_472_000),
            holder: (i % 2 == 1).then_some("pid 7 soamsession"),
            orphaned: i.is_multiple_of(7),
            owner_uid: if i.is_multiple_of(17) { u32::MAX } else { 1000 + i as u32 },
            reason: i.is_multiple_of(4).then_some("why"),
        }
    }

    /// The page reply of `kind` with these owned rows, as any reply is encoded.
    fn owned_page(id: u64, kind: PageKind, sessions: Vec<crate::msg::SessionInfo>, next: Option<(String, u64)>) -> crate::msg::AgentFrame {
        use crate::msg::{AgentFrame, Reply};
        let result = Ok(match kind {
            PageKind::RowsFirst => Reply::SessionPage { sessions, next },
            PageKind::NextFirst => Reply::SessionsAhead { next, sessions },
        });
        AgentFrame::Reply { id, result }
    }

    const KINDS: [PageKind; 2] = [PageKind::RowsFirst, PageKind::NextFirst];

    /// A page encoded from borrowed rows is byte for byte the page encoded as a reply
    /// of owned ones: the agent sends the one, clients decode the other.
    #[test]
    fn session_pages_encode_alike() {
        use crate::msg::SessionInfoRef;
        for kind in KINDS {
            for (n, next) in [
                (0, None),
                (1, Some(("app".to_string(), 1))),
                (300, Some(("x".repeat(200), u64::MAX))),
            ] {
                let refs: Vec<SessionInfoRef> = (0..n).map(row).collect();
                let mut rows = Rows::default();
                refs.iter().for_each(|r| rows.push_session(r));
                let mut fast = vec![9u8];
                encode_session_page(41, kind, &rows, &next, &mut fast).unwrap();
                let reply = owned_page(41, kind, refs.iter().map(SessionInfoRef::to_owned).collect(), next);
                let mut want = vec![9u8];
                encode_into(&reply, &mut want).unwrap();
                assert_eq!(fast, want, "{kind:?}, {n} rows");
            }
        }
    }

    /// A client reads a page's rows borrowed from the very frame the agent encodes, and
    /// tells a page from every other frame by its start alone.
    #[test]
    fn session_pages_decode_borrowed() {
        use crate::msg::{AgentFrame, ErrorKind, Event, Reply, SessionInfoRef};
        for (kind, id) in KINDS.into_iter().flat_map(|k| [1, 300, u64::MAX].map(|id| (k, id))) {
            let refs: Vec<SessionInfoRef> = (0..5).map(row).collect();
            let mut rows = Rows::default();
            refs.iter().for_each(|r| rows.push_session(r));
            let next = Some(("app".to_string(), 4));
            let mut out = Vec::new();
            encode_session_page(id, kind, &rows, &next, &mut out).unwrap();
            let body = &out[4..];
            assert_eq!(reply_id(body), Some(id));
            let (at, got_kind) = session_page_rows(body).unwrap();
            assert_eq!(got_kind, kind);
            // Only a page that says it first gives `next` without its rows.
            let early = session_page_next(&body[at..], kind).map(Result::unwrap);
            assert_eq!(early, (kind == PageKind::NextFirst).then(|| next.clone()));
            let (got, got_next) = decode_session_rows(&body[at..], kind).unwrap();
            assert_eq!(got_next, next);
            assert_eq!(format!("{got:?}"), format!("{refs:?}"));
            // A page of the owned form is the same bytes.
            let owned = owned_page(id, kind, refs.iter().map(SessionInfoRef::to_owned).collect(), None);
            let body = postcard::to_stdvec(&owned).unwrap();
            let (at, got_kind) = session_page_rows(&body).unwrap();
            assert_eq!(got_kind, kind);
            assert_eq!(decode_session_rows(&body[at..], kind).unwrap().0.len(), 5);
            // Other frames are not pages: a refusal, another reply, an event.
            for other in [
                AgentFrame::Reply {
                    id,
                    result: Err("no".into()),
                },
                AgentFrame::Reply { id, result: Ok(Reply::Ok) },
                AgentFrame::Reply {
                    id,
                    result: Ok(Reply::Sessions(Vec::new())),
                },
                AgentFrame::Failed {
                    id,
                    kind: ErrorKind::Other,
                    message: "no".into(),
                },
                AgentFrame::Event(Event::Drained {
                    app: "app".into(),
                    session: id,
                }),
            ] {
                let body = postcard::to_stdvec(&other).unwrap();
                let is_reply = matches!(other, AgentFrame::Reply { .. });
                assert_eq!(reply_id(&body), is_reply.then_some(id), "{other:?}");
                assert_eq!(session_page_rows(&body), None, "{other:?}");
            }
        }
    }

    /// A message that fails to encode leaves the frames already in the buffer as they
    /// were (a writer coalesces many frames into one buffer).
    #[test]
    fn a_message_that_fails_to_encode_takes_back_only_itself() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut st = s.serialize_struct("Refuses", 2)?;
                st.serialize_field("a", &7u64)?;
                st.serialize_field("b", "some text")?;
                Err(serde::ser::Error::custom("refused"))
            }
        }
        let mut out = Vec::new();
        encode_into(&("first".to_string(), 1u32), &mut out).unwrap();
        let before = out.clone();
        assert!(matches!(encode_into(&Refuses, &mut out), Err(FrameError::Malformed(_))));
        assert_eq!(out, before);
    }

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

    fn submit(tasks: Vec<bytes::Bytes>) -> crate::msg::ClientFrame {
        crate::msg::ClientFrame {
            id: 9,
            req: crate::msg::Request::Submit {
                session: crate::SessionRef {
                    app: "a".into(),
                    key: crate::SessionKey::Id(1),
                },
                tasks,
            },
        }
    }

    fn tasks_of(f: crate::msg::ClientFrame) -> Vec<bytes::Bytes> {
        match f.req {
            crate::msg::Request::Submit { tasks, .. } => tasks,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn parts_write_the_same_bytes_without_copying_large_payloads() {
        let big = bytes::Bytes::from(vec![5u8; SHARE_MIN]);
        let bigger = bytes::Bytes::from(vec![6u8; 1 << 20]);
        let small = bytes::Bytes::from(vec![7u8; SHARE_MIN - 1]);
        let msgs = [
            submit(vec![small.clone(), big.clone(), bytes::Bytes::new(), bigger.clone()]),
            submit(vec![]),
            submit(vec![bigger.clone(), small.clone()]),
        ];
        let mut plain = Vec::new();
        let mut parts = Parts::default();
        for m in &msgs {
            encode_into(m, &mut plain).unwrap();
            parts.encode(m).unwrap();
        }
        // The large ones were left in their buffers, in order; the small one copied.
        let kept: Vec<_> = parts.big.iter().map(|(_, b)| b.as_ptr()).collect();
        assert_eq!(kept, [big.as_ptr(), bigger.as_ptr(), bigger.as_ptr()]);
        assert_eq!(parts.len(), plain.len());
        let mut wire = Vec::new();
        write_parts(&mut wire, &parts).await.unwrap();
        assert!(wire == plain, "the same bytes on the wire");
        // A plain encode keeps nothing aside for later.
        encode_into(&msgs[0], &mut plain).unwrap();
        assert!(shared::SPLIT.with(|s| s.borrow().is_none()));
        // Over the frame cap: refused, and nothing of it left behind.
        let before = (parts.buf.len(), parts.big.len());
        let huge = submit(vec![bigger.clone(); MAX_FRAME / (1 << 20) + 1]);
        assert!(matches!(parts.encode(&huge), Err(FrameError::TooLarge(_))));
        assert_eq!((parts.buf.len(), parts.big.len()), before);
    }

    #[test]
    fn decode_shared_slices_large_payloads_and_copies_the_rest() {
        let big = bytes::Bytes::from(vec![1u8; 1 << 20]);
        let small = bytes::Bytes::from(vec![2u8; 100]);
        let mut body = Vec::new();
        encode_into(&submit(vec![small.clone(), big.clone(), small.clone()]), &mut body).unwrap();
        let body = bytes::Bytes::from(body.split_off(4));
        let tasks = tasks_of(decode_shared(&body).unwrap());
        assert_eq!(tasks, [small.clone(), big.clone(), small.clone()]);
        let inside = |b: &bytes::Bytes| body.as_ptr_range().contains(&b.as_ptr());
        assert!(inside(&tasks[1]), "the large payload is a slice of the frame");
        assert!(!inside(&tasks[0]) && !inside(&tasks[2]), "small ones are copies");
        // Plain decode copies everything.
        assert!(!inside(&tasks_of(decode(&body).unwrap())[1]));
        // A large payload under an eighth of its frame is copied: it would keep
        // the whole frame alive.
        let filler = vec![bytes::Bytes::from(vec![3u8; 100_000]); 9];
        let mut tasks = vec![bytes::Bytes::from(vec![4u8; SHARE_MIN])];
        tasks.extend(filler);
        let mut body = Vec::new();
        encode_into(&submit(tasks.clone()), &mut body).unwrap();
        let body = bytes::Bytes::from(body.split_off(4));
        let got = tasks_of(decode_shared(&body).unwrap());
        assert_eq!(got, tasks);
        assert!(!body.as_ptr_range().contains(&got[0].as_ptr()));
    }
}
