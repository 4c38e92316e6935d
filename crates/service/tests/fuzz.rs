//! Property tests of the service protocol decoder against arbitrary and mutated
//! input: what a service (any program) sends the agent. Never a panic; a length over
//! the cap is refused before anything is allocated for it.

use proptest::prelude::*;
use soam_service::wire::{self, HEADER, Kind, MAX_MESSAGE, Message, Status};

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_parse_or_fail(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(m) = wire::parse(&body) {
            // The payload is what follows the header and, when flagged, the control code.
            let coded = body[1] & wire::CODED != 0;
            let before = HEADER + if coded { 4 } else { 0 };
            prop_assert!(body.len() >= before);
            prop_assert_eq!(m.payload.len(), body.len() - wire::payload_at(&body));
            prop_assert_eq!(wire::payload_at(&body), before);
            if !coded {
                prop_assert_eq!(m.code, 0);
            }
        }
    }

    #[test]
    fn lengths_are_checked_before_allocation(len in any::<u32>()) {
        match wire::check_len(len) {
            Ok(n) => prop_assert!((HEADER..=HEADER + MAX_MESSAGE).contains(&n)),
            Err(_) => prop_assert!((len as usize) < HEADER || (len as usize) > HEADER + MAX_MESSAGE),
        }
    }

    #[test]
    fn a_stream_of_messages_and_garbage_reads_safely(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
        flip in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            wire::encode(&mut stream, &Message { kind: Kind::Invoke, status: Status::Success, session: 1, task: i as u64, attempt: 0, code: 0, payload: p });
        }
        // Well-formed messages read back exactly.
        let mut r = &stream[..];
        let mut buf = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let m = wire::read(&mut r, &mut buf).unwrap().unwrap();
            prop_assert_eq!(m.task, i as u64);
            prop_assert_eq!(m.payload, &p[..]);
        }
        prop_assert!(wire::read(&mut r, &mut buf).unwrap().is_none());
        // Then corrupted: whatever happens, no panic and no message past the cap.
        stream.extend_from_slice(&garbage);
        if !stream.is_empty() {
            let i = flip.index(stream.len());
            stream[i] ^= 0xff;
        }
        let mut r = &stream[..];
        for _ in 0..32 {
            match wire::read(&mut r, &mut buf) {
                Ok(Some(m)) => prop_assert!(m.payload.len() <= MAX_MESSAGE),
                _ => break,
            }
        }
    }

    #[test]
    fn whole_finds_every_boundary_of_any_cut(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        let mut ends = vec![0];
        for (i, p) in payloads.iter().enumerate() {
            wire::encode(&mut stream, &Message { kind: Kind::Invoke, status: Status::Success, session: 1, task: i as u64, attempt: 1, code: 0, payload: p });
            ends.push(stream.len());
        }
        let cut = cut.index(stream.len() + 1);
        let (done, next) = wire::whole(&stream[..cut]).unwrap();
        // The last boundary at or before the cut, and the next message's full size.
        let k = ends.iter().rposition(|&e| e <= cut).unwrap();
        prop_assert_eq!(done, ends[k]);
        if cut - done >= 4 {
            prop_assert_eq!(next, ends[k + 1] - ends[k]);
        } else {
            prop_assert_eq!(next, 0);
        }
    }

    #[test]
    fn whole_refuses_garbage_lengths(junk in proptest::collection::vec(any::<u8>(), 4..64)) {
        if let Ok((done, _)) = wire::whole(&junk) { prop_assert!(done <= junk.len()) }
    }
}
