//! The library's own unit tests: batching, dedup and pages.

use super::*;
use bytes::Bytes;
use soam_proto::frame::{self, PageKind};
use soam_proto::msg::{AgentFrame, ClientFrame, ErrorKind, Hello, Reply, Request, SessionInfo, SessionQuery, Welcome};
use soam_proto::paths::Paths;
use std::time::Duration;

#[test]
fn dedup_and_batches() {
    let mut d = Dedup::default();
    assert!(d.first(1) && d.first(1000) && !d.first(1) && !d.first(1000) && d.first(2));
    let b = batches((0..10).map(|i| Bytes::from(vec![i as u8])).collect(), 4);
    assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    let big = vec![Bytes::from(vec![0u8; frame::BATCH_BYTES - 100]), Bytes::from(vec![1u8; 200])];
    assert_eq!(batches(big, 100).len(), 2);
}

/// Session `id` as an agent lists it.
fn info(id: u64) -> SessionInfo {
    SessionInfo {
        app: "old".into(),
        id,
        name: Some(format!("n{id}")),
        tag: None,
        session_type: String::new(),
        state: soam_proto::msg::SessionState::Open,
        priority: 1,
        recoverable: false,
        direct: false,
        pending: id,
        running: 0,
        done: 0,
        error: 0,
        canceled: 0,
        undelivered: 0,
        created_ms: 1,
        ended_ms: None,
        holder: None,
        orphaned: false,
        owner_uid: 0,
        reason: None,
    }
}

/// A page whose rows do not decode (cut short) is refused as a protocol error, not
/// read as fewer rows.
#[test]
fn a_page_cut_short_is_a_protocol_error() {
    let mut rows = frame::Rows::default();
    rows.push_session(&info(1).view());
    for kind in [PageKind::RowsFirst, PageKind::NextFirst] {
        let mut out = Vec::new();
        frame::encode_session_page(7, kind, &rows, &None, &mut out).unwrap();
        let body = Bytes::from(out[4..].to_vec());
        let (at, kind) = frame::session_page_rows(&body).unwrap();
        let whole = SessionPage::Frame {
            body: body.clone(),
            at,
            kind,
        };
        assert_eq!(whole.rows().unwrap().0.len(), 1);
        let cut = SessionPage::Frame {
            body: body.slice(..body.len() - 3),
            at,
            kind,
        };
        assert!(
            matches!(
                cut.rows(),
                Err(ClientError::Refused {
                    kind: ErrorKind::Protocol,
                    ..
                })
            ),
            "{kind:?}"
        );
    }
}

/// A fake agent of protocol `version` on a socket of its own: it greets one client,
/// then `serve`s the connection's two halves. Returns a client connected to it, the
/// agent's task, and the folder of the socket (removed when dropped).
async fn fake_agent<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
    version: u32,
    serve: impl FnOnce(tokio::net::unix::OwnedReadHalf, tokio::net::unix::OwnedWriteHalf) -> F + Send + 'static,
) -> (Client, tokio::task::JoinHandle<T>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let agent = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let _: Hello = frame::read_msg(&mut r).await.unwrap();
        let welcome = Welcome::Ok {
            version,
            agent_version: format!("0.0.{version}"),
        };
        frame::write_msg(&mut w, &welcome).await.unwrap();
        serve(r, w).await
    });
    let opts = ConnectOptions {
        socket,
        paths: Paths::from_env(),
        autostart: false,
        client_name: "test".into(),
    };
    (Client::connect(&opts).await.unwrap(), agent, dir)
}

/// An agent older than pages (protocol 2) answers a listing with every session at
/// once: a page reader gets them as one last page; a refusal comes back as an error,
/// and a reply that does not decode as the reason the connection is lost.
#[tokio::test]
async fn an_agent_without_pages_lists_sessions_in_one() {
    let (c, agent, _dir) = fake_agent(2, |mut r, mut w| async move {
        let f: ClientFrame = frame::read_msg(&mut r).await.unwrap();
        assert!(matches!(f.req, Request::ListSessions(_)), "{:?}", f.req);
        let all = Reply::Sessions(vec![info(1), info(2)]);
        frame::write_msg(&mut w, &AgentFrame::Reply { id: f.id, result: Ok(all) })
            .await
            .unwrap();
        let f: ClientFrame = frame::read_msg(&mut r).await.unwrap();
        let no = AgentFrame::Reply {
            id: f.id,
            result: Err("no such application".into()),
        };
        frame::write_msg(&mut w, &no).await.unwrap();
        // A reply that starts well (its id) and then does not decode.
        let f: ClientFrame = frame::read_msg(&mut r).await.unwrap();
        assert!(f.id < 128, "a one-byte id");
        let body = [0u8, f.id as u8, 0, 0xff, 0xff, 0xff];
        let mut raw = (body.len() as u32).to_le_bytes().to_vec();
        raw.extend_from_slice(&body);
        tokio::io::AsyncWriteExt::write_all(&mut w, &raw).await.unwrap();
    })
    .await;
    let mut seen = Vec::new();
    each_session_page(&c, &SessionQuery::default(), |rows, last| {
        seen.extend(rows.iter().map(|r| (r.id, r.name.map(String::from), last)));
        Ok::<_, ClientError>(())
    })
    .await
    .unwrap();
    assert_eq!(seen, [(1, Some("n1".into()), true), (2, Some("n2".into()), true)]);
    let e = c.session_page(&SessionQuery::default(), None).await.unwrap_err();
    assert!(e.to_string().contains("no such application"), "{e}");
    // Its caller hears why the connection is lost, not only that it is.
    let call = c.call(Request::ListApps { app: None });
    let e = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("an answer")
        .unwrap_err();
    let why = c.lost().unwrap();
    assert!(
        matches!(&e, ClientError::Lost(m) if *m == why) && why != "the connection closed",
        "{e} / {why}"
    );
    agent.await.unwrap();
}

/// An agent of protocol 3 or 4 knows pages but not `ListSessionsAhead`: a listing
/// asks it with `ListSessionsPage`, each next page once the rows before say where it
/// starts, and gets every row once.
#[tokio::test]
async fn an_agent_of_protocol_4_is_asked_for_pages_it_knows() {
    let (c, agent, _dir) = fake_agent(4, |mut r, mut w| async move {
        let mut froms = Vec::new();
        for page in 0..3u64 {
            let f: ClientFrame = frame::read_msg(&mut r).await.unwrap();
            let Request::ListSessionsPage { from, .. } = f.req else {
                panic!("{:?}", f.req);
            };
            froms.push(from);
            let next = (page < 2).then(|| ("app".to_string(), 2 * page + 2));
            let sessions = vec![info(2 * page + 1), info(2 * page + 2)];
            let reply = Reply::SessionPage { sessions, next };
            frame::write_msg(
                &mut w,
                &AgentFrame::Reply {
                    id: f.id,
                    result: Ok(reply),
                },
            )
            .await
            .unwrap();
        }
        froms
    })
    .await;
    let mut seen = Vec::new();
    each_session_page(&c, &SessionQuery::default(), |rows, last| {
        seen.extend(rows.iter().map(|r| (r.id, last)));
        Ok::<_, ClientError>(())
    })
    .await
    .unwrap();
    assert_eq!(seen, [(1, false), (2, false), (3, false), (4, false), (5, true), (6, true)]);
    let key = |id| Some(("app".to_string(), id));
    assert_eq!(agent.await.unwrap(), [None, key(2), key(4)]);
}
