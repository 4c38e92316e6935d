//! Property tests of the agent's decoders against arbitrary and mutated input: a
//! frame stream, every `ClientFrame`/`Request` from bytes, the hello. Never a panic,
//! and never an allocation beyond the caps: a counting allocator records, for this
//! thread only, the largest single allocation and the peak of live bytes while one
//! input is decoded. Case counts are small for CI; `PROPTEST_CASES=N` runs more.

use bytes::Bytes;
use proptest::prelude::*;
use soam_proto::frame::{self, FrameError, MAX_FRAME, MAX_TASKS_PER_SUBMIT};
use soam_proto::msg::{ClientFrame, CreateSession, Hello, Request, SessionQuery};
use soam_proto::{SessionKey, SessionRef};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static BIGGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only const-
// initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + l.size();
            live.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
            let _ = BIGGEST.try_with(|b| b.set(b.get().max(l.size())));
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(l.size())));
        unsafe { System.dealloc(ptr, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f`, returning (largest single allocation, peak live bytes above the start).
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    BIGGEST.with(|b| b.set(0));
    let r = f();
    let peak = PEAK.with(Cell::get) - start;
    (r, BIGGEST.with(Cell::get), peak)
}

/// What decoding `n` bytes may cost at most: the decoded values hold about what the
/// input held, a bounded per-element overhead, and serde's capped preallocation.
fn budget(n: usize) -> usize {
    (1 << 20) + 48 * n
}

fn session_ref() -> impl Strategy<Value = SessionRef> {
    (
        "[a-z]{1,8}",
        prop_oneof![any::<u64>().prop_map(SessionKey::Id), "[a-z]{1,8}".prop_map(SessionKey::Name)],
    )
        .prop_map(|(app, key)| SessionRef { app, key })
}

fn request() -> impl Strategy<Value = Request> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    prop_oneof![
        (".{0,40}", ".{0,20}", any::<bool>()).prop_map(|(profile, path, force)| Request::RegisterApp { profile, path, force }),
        (session_ref(), proptest::collection::vec(bytes(), 0..50)).prop_map(|(session, tasks)| Request::Submit { session, tasks }),
        (session_ref(), proptest::collection::vec(any::<u64>(), 0..50)).prop_map(|(session, tasks)| Request::Ack { session, tasks }),
        (session_ref(), any::<bool>(), any::<bool>()).prop_map(|(session, direct, all)| Request::OpenSession { session, direct, all }),
        ("[a-z]{0,8}", proptest::option::of("[a-z]{0,8}"), bytes(), any::<bool>()).prop_map(|(app, name, common_data, attach)| {
            Request::CreateSession(CreateSession {
                app,
                session_type: None,
                name,
                tag: None,
                common_data,
                direct: false,
                attach,
            })
        }),
        (any::<[u8; 16]>(), session_ref(), proptest::collection::vec(bytes(), 0..20)).prop_map(|(request, session, tasks)| Request::Once {
            request,
            req: Box::new(Request::Submit { session, tasks }),
        }),
        Just(Request::ListSessions(SessionQuery::default())),
        (proptest::option::of(".{0,20}"), proptest::option::of(any::<u64>())).prop_map(|(app, session)| Request::Watch { app, session }),
        Just(Request::Ping),
        Just(Request::Status),
    ]
}

fn encoded(id: u64, req: Request) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::encode_into(&ClientFrame { id, req }, &mut buf).unwrap();
    buf.split_off(4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_nor_overallocate(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (_, biggest, peak) = measured(|| {
            let _ = frame::decode::<ClientFrame>(&body);
            let _ = frame::decode::<Hello>(&body);
            let _ = frame::leading_id(&body);
        });
        prop_assert!(biggest <= MAX_FRAME);
        prop_assert!(peak <= budget(body.len()), "peak {} for {} bytes", peak, body.len());
    }

    #[test]
    fn every_request_round_trips_and_its_mutations_are_safe(
        id in any::<u64>(),
        req in request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let body = encoded(id, req.clone());
        let back: ClientFrame = frame::decode(&body).unwrap();
        prop_assert_eq!(back.id, id);
        prop_assert_eq!(format!("{:?}", back.req), format!("{:?}", req));
        let mut bad = body.clone();
        for (i, b) in &flips {
            let i = i.index(bad.len());
            bad[i] = *b;
        }
        bad.truncate(cut.index(bad.len() + 1));
        let (_, biggest, peak) = measured(|| frame::decode::<ClientFrame>(&bad).map(|_| ()));
        prop_assert!(biggest <= MAX_FRAME);
        prop_assert!(peak <= budget(bad.len()), "peak {} for {} bytes", peak, bad.len());
    }

    #[test]
    fn a_frame_stream_is_read_or_refused(stream in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (_, biggest, _) = measured(|| rt.block_on(async {
            let mut r = &stream[..];
            for _ in 0..64 {
                match frame::read_frame(&mut r).await {
                    Ok(body) => { let _ = frame::decode::<ClientFrame>(&body); }
                    Err(FrameError::TooLarge(n)) => { assert!(n > MAX_FRAME); break; }
                    Err(_) => break,
                }
            }
        }));
        // A frame is allocated only once its announced length is known to be under
        // the cap, and then only as large as the input can fill... or the cap.
        prop_assert!(biggest <= MAX_FRAME);
    }

    #[test]
    #[allow(clippy::manual_range_contains)]
    fn counts_over_the_caps_are_refused_from_their_prefix(extra in 1usize..200_000, id in 1u64..1000) {
        // A Submit of more empty tasks than allowed (a zero length byte each).
        let mut body = encoded(id, Request::Submit { session: SessionRef { app: "a".into(), key: SessionKey::Id(1) }, tasks: vec![] });
        body.pop();
        let n = MAX_TASKS_PER_SUBMIT + extra;
        let mut v = n as u64;
        while v >= 0x80 { body.push((v as u8) | 0x80); v >>= 7; }
        body.push(v as u8);
        body.resize(body.len() + n, 0);
        let (r, _, peak) = measured(|| frame::decode::<ClientFrame>(&body));
        match r {
            Err(FrameError::OverLimit(m)) => prop_assert!(m.contains("the limit is 65536"), "{}", m),
            other => prop_assert!(false, "{:?}", other.map(|f| f.id)),
        }
        prop_assert!(peak < 1 << 16, "nothing allocated for the tasks: {}", peak);
        prop_assert_eq!(frame::leading_id(&body), Some(id));
    }

    #[test]
    fn nested_once_is_refused_without_recursing(depth in 2usize..200_000, id in 1u64..1000) {
        // ClientFrame { id, Once { request, Once { ... Ping } } }: each level is the
        // variant index and 16 id bytes.
        let mut body = encoded(id, Request::Ping);
        let ping = body.pop().unwrap();
        let once = encoded(0, Request::Once { request: [0; 16], req: Box::new(Request::Ping) })[1];
        for _ in 0..depth {
            body.push(once);
            body.extend_from_slice(&[7; 16]);
        }
        body.push(ping);
        let r = frame::decode::<ClientFrame>(&body);
        prop_assert!(r.is_err());
        // And the reader is left as it was: a single Once decodes again.
        let ok = encoded(id, Request::Once { request: [1; 16], req: Box::new(Request::Ping) });
        prop_assert!(frame::decode::<ClientFrame>(&ok).is_ok());
    }
}
