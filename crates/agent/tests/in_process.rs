//! The agent as a library: started in this process, driven with the client library,
//! shut down through its handle.

use bytes::Bytes;
use soam_client::{Client, ConnectOptions};
use soam_proto::msg::{CreateSession, Event, Reply, Request};
use soam_proto::paths::Paths;
use soam_proto::{SessionKey, SessionRef};

/// An agent's folders under `home`.
fn paths_in(home: &std::path::Path) -> Paths {
    Paths {
        socket: home.join("run/s.sock"),
        data_dir: home.join("data"),
        config: home.join("none.yaml"),
    }
}

/// The agent, in this process, with `slots` slots and a small store cache.
async fn start(paths: &Paths, slots: u32) -> soam_agent::AgentHandle {
    let cfg = soam_agent::AgentConfig {
        slots,
        store_cache_bytes: 1 << 20,
        ..soam_agent::AgentConfig::with_paths(paths.clone())
    };
    soam_agent::start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_agent_runs_a_session() {
    let home = tempfile::tempdir().unwrap();
    let paths = paths_in(home.path());
    let agent = start(&paths, 2).await;

    let opts = ConnectOptions {
        socket: paths.socket.clone(),
        paths,
        autostart: false,
        client_name: "test".into(),
    };
    let mut c = Client::connect(&opts).await.unwrap();
    let profile = "application: up\nservices:\n  - name: tr\n    mode: exec\n    command: [\"tr\", \"a-z\", \"A-Z\"]\n";
    let path = home.path().join("up.yaml").display().to_string();
    c.call(Request::RegisterApp {
        profile: profile.into(),
        path,
        force: false,
    })
    .await
    .unwrap();
    let Reply::Session(s) = c
        .call(Request::CreateSession(CreateSession {
            app: "up".into(),
            session_type: None,
            name: None,
            tag: None,
            common_data: Bytes::new(),
            direct: false,
            attach: true,
        }))
        .await
        .unwrap()
    else {
        panic!("no session")
    };
    let sref = SessionRef {
        app: "up".into(),
        key: SessionKey::Id(s.id),
    };
    // Too many tasks in one frame: refused whole, nothing accepted.
    let flood = vec![Bytes::new(); soam_proto::frame::MAX_TASKS_PER_SUBMIT + 1];
    let e = c
        .call(Request::Submit {
            session: sref.clone(),
            tasks: flood,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the limit is 65536"), "{e}");
    // A submission in several frames: a part refused refuses the rest, up to and
    // including its Submit, and nothing of it is accepted.
    let stage = |tasks: Vec<Bytes>| {
        c.send(Request::Stage {
            session: sref.clone(),
            tasks,
        })
    };
    let too_big = Bytes::from(vec![b'a'; soam_proto::frame::MAX_PAYLOAD + 1024]);
    let replies = [
        stage(vec![Bytes::from_static(b"lost")]),
        stage(vec![too_big]),
        stage(vec![Bytes::from_static(b"lost too")]),
    ];
    let submit = c.send(Request::Submit {
        session: sref.clone(),
        tasks: vec![Bytes::from_static(b"and this")],
    });
    let [first, big, after] = replies;
    assert!(matches!(first.await.unwrap(), Reply::Staged { count: 1 }));
    let e = big.await.unwrap_err().to_string();
    assert!(e.contains("nothing of this submission was accepted"), "{e}");
    assert_eq!(after.await.unwrap_err().to_string(), e);
    assert_eq!(submit.await.unwrap_err().to_string(), e);
    // The next submission starts afresh: ids 1 and 2 show nothing above was kept.
    let tasks = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"xyz")];
    let r = c
        .call(Request::Submit {
            session: sref.clone(),
            tasks,
        })
        .await
        .unwrap();
    assert!(matches!(r, Reply::Submitted { first: 1, count: 2 }), "{r:?}");
    // Staged and submitted together, in order.
    stage(vec![Bytes::from_static(b"d")]).await.unwrap();
    let r = c
        .call(Request::Submit {
            session: sref.clone(),
            tasks: vec![Bytes::from_static(b"e")],
        })
        .await
        .unwrap();
    assert!(matches!(r, Reply::Submitted { first: 3, count: 2 }), "{r:?}");
    let mut got = Vec::new();
    while got.len() < 4 {
        match c.next_event().await.unwrap() {
            Event::Outputs { outputs, .. } => {
                c.notify(Request::Ack {
                    session: sref.clone(),
                    tasks: outputs.iter().map(|o| o.task).collect(),
                })
                .unwrap();
                got.extend(outputs.into_iter().map(|o| (o.task, o.data)));
            }
            Event::Drained { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (1, Bytes::from_static(b"ABC")),
            (2, Bytes::from_static(b"XYZ")),
            (3, Bytes::from_static(b"D")),
            (4, Bytes::from_static(b"E")),
        ]
    );
    c.call(Request::Close { session: sref }).await.unwrap();

    agent.shutdown();
    agent.wait().await;
    assert!(!home.path().join("run/s.sock").exists(), "socket removed at shutdown");
}

fn opts(paths: &Paths) -> ConnectOptions {
    ConnectOptions {
        socket: paths.socket.clone(),
        paths: paths.clone(),
        autostart: false,
        client_name: "test".into(),
    }
}

fn once(request: u8, req: Request) -> Request {
    Request::Once {
        request: [request; 16],
        req: Box::new(req),
    }
}

/// A create or submit sent again under its request id (after a lost reply) gets the
/// first result: no second session, no second copy of the tasks, before and after an
/// agent restart. Failures carry their kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_are_carried_out_once() {
    use soam_proto::msg::ErrorKind;
    let home = tempfile::tempdir().unwrap();
    let paths = paths_in(home.path());
    let agent = start(&paths, 1).await;
    let mut c1 = Client::connect(&opts(&paths)).await.unwrap();
    let profile = "application: up\nservices:\n  - name: tr\n    mode: exec\n    command: [\"tr\", \"a-z\", \"A-Z\"]\n\
                   sessionTypes:\n  - name: \"\"\n    recoverable: true\n    onClientDisconnect: continue\n";
    let path = home.path().join("up.yaml").display().to_string();
    c1.call(Request::RegisterApp {
        profile: profile.into(),
        path,
        force: false,
    })
    .await
    .unwrap();
    let create = |attach| {
        once(
            1,
            Request::CreateSession(CreateSession {
                app: "up".into(),
                session_type: None,
                name: None,
                tag: None,
                common_data: Bytes::new(),
                direct: false,
                attach,
            }),
        )
    };
    let Reply::Session(s) = c1.call(create(true)).await.unwrap() else {
        panic!()
    };
    let sref = SessionRef {
        app: "up".into(),
        key: SessionKey::Id(s.id),
    };
    // Suspended, so nothing runs (and ends) while we count.
    c1.call(Request::SessionControl {
        session: sref.clone(),
        action: soam_proto::msg::SessionAction::Suspend,
    })
    .await
    .unwrap();
    // The same create from another connection: the same session, now held there.
    let c2 = Client::connect(&opts(&paths)).await.unwrap();
    let Reply::Session(again) = c2.call(create(true)).await.unwrap() else {
        panic!()
    };
    assert_eq!(again.id, s.id);
    loop {
        match c1.next_event().await {
            Some(Event::TakenOver { .. }) => break,
            Some(Event::Drained { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let submit = |id: u8, tasks: &[&'static [u8]]| {
        once(
            id,
            Request::Submit {
                session: sref.clone(),
                tasks: tasks.iter().map(|t| Bytes::from_static(t)).collect(),
            },
        )
    };
    let r = c2.call(submit(2, &[b"a", b"b", b"c"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 1, count: 3 }), "{r:?}");
    // Repeated, with staged tasks that were part of it: the first answer, nothing added.
    c2.call(Request::Stage {
        session: sref.clone(),
        tasks: vec![Bytes::from_static(b"a")],
    })
    .await
    .unwrap();
    let r = c2.call(submit(2, &[b"b", b"c"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 1, count: 3 }), "{r:?}");
    let r = c2.call(submit(3, &[b"d"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 4, count: 1 }), "{r:?}");
    let tasks = |c: &Client| {
        let req = Request::ListTasks {
            session: sref.clone(),
            state: None,
        };
        let f = c.send(req);
        async move {
            match f.await.unwrap() {
                Reply::Tasks(t) => t.len(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(tasks(&c2).await, 4);
    // Failures carry their kind.
    let kind = |r: Result<Reply, soam_client::ClientError>| r.unwrap_err().kind();
    let nope = SessionRef {
        app: "nope".into(),
        key: SessionKey::Id(1),
    };
    assert_eq!(kind(c2.call(Request::Close { session: nope }).await), Some(ErrorKind::UnknownApp));
    let missing = SessionRef {
        app: "up".into(),
        key: SessionKey::Id(99),
    };
    assert_eq!(
        kind(c2.call(Request::Close { session: missing }).await),
        Some(ErrorKind::UnknownSession)
    );
    // c1 lost the session to c2.
    assert_eq!(kind(c1.call(submit(9, &[b"x"])).await), Some(ErrorKind::TakenOver));

    // The ids are kept with the session: the same after a restart.
    drop((c1, c2));
    agent.shutdown();
    agent.wait().await;
    let agent = start(&paths, 1).await;
    let c3 = Client::connect(&opts(&paths)).await.unwrap();
    let Reply::Session(again) = c3.call(create(true)).await.unwrap() else {
        panic!()
    };
    assert_eq!(again.id, s.id, "the create is remembered across a restart");
    let r = c3.call(submit(2, &[b"a", b"b", b"c"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 1, count: 3 }), "{r:?}");
    let r = c3.call(submit(3, &[b"d"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 4, count: 1 }), "{r:?}");
    assert_eq!(tasks(&c3).await, 4);
    let r = c3.call(submit(4, &[b"e"])).await.unwrap();
    assert!(matches!(r, Reply::Submitted { first: 5, count: 1 }), "{r:?}");
    // Once the session has ended, its create id is forgotten: a new session.
    c3.call(Request::Abort { session: sref.clone() }).await.unwrap();
    let Reply::Session(new) = c3.call(create(false)).await.unwrap() else {
        panic!()
    };
    assert_ne!(new.id, s.id);
    agent.shutdown();
    agent.wait().await;
}

/// Stands between a client and the agent, frame by frame, and cuts the first
/// connection just as the agent answers a `Submit`: the answer never arrives, as when
/// the agent or the network fails at the worst moment. Later connections pass whole.
async fn cutting_proxy(listen: std::path::PathBuf, agent: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    use soam_proto::frame;
    use soam_proto::msg::AgentFrame;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{UnixListener, UnixStream};
    let l = UnixListener::bind(&listen).unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((client, _)) = l.accept().await else { return };
            let upstream = UnixStream::connect(&agent).await.unwrap();
            let cut = std::mem::take(&mut first);
            let (mut cr, mut cw) = client.into_split();
            let (mut ar, mut aw) = upstream.into_split();
            let up = tokio::spawn(async move {
                while let Ok(body) = frame::read_frame(&mut cr).await {
                    let len = (body.len() as u32).to_le_bytes();
                    if aw.write_all(&len).await.is_err() || aw.write_all(&body).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                // The first frame is the Welcome; then agent frames.
                let mut welcome = true;
                while let Ok(body) = frame::read_frame(&mut ar).await {
                    if cut
                        && !std::mem::take(&mut welcome)
                        && matches!(
                            frame::decode::<AgentFrame>(&body),
                            Ok(AgentFrame::Reply {
                                result: Ok(Reply::Submitted { .. }),
                                ..
                            })
                        )
                    {
                        up.abort();
                        return; // both halves dropped: the client sees the connection end
                    }
                    welcome = false;
                    let len = (body.len() as u32).to_le_bytes();
                    if cw.write_all(&len).await.is_err() || cw.write_all(&body).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// Through the library: a submission whose answer is lost with the connection is sent
/// again after a reconnect, under the same request id, and accepted once: the session
/// holds each task once and every output comes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_retried_after_a_lost_answer_is_accepted_once() {
    use soam_client::session::{Next, Session, SessionConfig};
    let home = tempfile::tempdir().unwrap();
    let paths = paths_in(home.path());
    let agent = start(&paths, 2).await;
    let c = Client::connect(&opts(&paths)).await.unwrap();
    let profile = "application: up\nservices:\n  - name: tr\n    mode: exec\n    command: [\"tr\", \"a-z\", \"A-Z\"]\n\
                   sessionTypes:\n  - name: \"\"\n    recoverable: true\n";
    c.call(Request::RegisterApp {
        profile: profile.into(),
        path: home.path().join("up.yaml").display().to_string(),
        force: false,
    })
    .await
    .unwrap();
    // A session whose first connection goes through a proxy that cuts it.
    let proxied = async |name: &str| {
        let proxy_path = home.path().join(name);
        let proxy = cutting_proxy(proxy_path.clone(), paths.socket.clone()).await;
        let mut cfg = SessionConfig::new(ConnectOptions {
            socket: proxy_path,
            ..opts(&paths)
        });
        cfg.reconnect_timeout = std::time::Duration::from_secs(30);
        (Session::create(cfg, "up", None).await.unwrap(), proxy)
    };
    let held = async |s: &Session| match c
        .call(Request::ListTasks {
            session: s.addr().clone(),
            state: None,
        })
        .await
        .unwrap()
    {
        Reply::Tasks(t) => t.len() as u64,
        other => panic!("{other:?}"),
    };
    let (mut s, proxy) = proxied("proxy.sock").await;
    // Three messages' worth (staged, staged, submitted), so the retry stages again too.
    let n = 12u64;
    let input = |i: u64, t: &str| format!("{t}{i}{}", "x".repeat(700_000));
    let inputs: Vec<Bytes> = (0..n).map(|i| Bytes::from(input(i, "t"))).collect();
    let sub = s.submit(inputs).await.unwrap();
    assert_eq!((sub.first, sub.count), (1, n));
    assert_eq!(held(&s).await, n, "each task accepted once");
    let mut seen = std::collections::HashSet::new();
    while (seen.len() as u64) < n {
        match s.next().await.unwrap() {
            Next::Outputs(outputs) => {
                for o in &outputs {
                    assert!(seen.insert(o.task), "task {} twice", o.task);
                    assert!(o.data == input(o.task - 1, "T").to_uppercase(), "task {}", o.task);
                }
                s.ack(&outputs);
            }
            Next::Drained => {}
            other => panic!("{other:?}"),
        }
    }
    s.close().await.unwrap();
    proxy.abort();

    // Streaming: each batch under its own id; cut after the first is accepted, all
    // are sent again, and each is accepted once.
    let (mut s, proxy) = proxied("proxy2.sock").await;
    let inputs: Vec<Bytes> = (0..n).map(|i| Bytes::from(input(i, "t"))).collect();
    let sub = s.submit_streaming(inputs).await.unwrap();
    assert_eq!((sub.first, sub.count), (1, n));
    assert_eq!(held(&s).await, n, "each batch accepted once");
    s.abort().await.unwrap();
    proxy.abort();
    agent.shutdown();
    agent.wait().await;
}
