//! What every measurement of the lab is made of: sessions created, tasks submitted and
//! collected through the real client library, one-task round trips on a warm instance,
//! and how a figure is reported. `soambench` runs its phases with these; so do the
//! Python benchmark (its Rust baseline) and the bare client (its session).

use anyhow::bail;
use bytes::Bytes;
use soam_client::{Client, ConnectOptions, Dedup};
use soam_proto::msg::{CreateSession, Event, Reply, Request};
use soam_proto::{SessionKey, SessionRef};
use std::time::Instant;

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub(crate) fn session_ref(app: &str, id: u64) -> SessionRef {
    SessionRef {
        app: app.into(),
        key: SessionKey::Id(id),
    }
}

/// A plain session of `app` (of type `stype`, or its default).
pub(crate) fn create_request(app: &str, stype: Option<&str>, attach: bool) -> Request {
    Request::CreateSession(CreateSession {
        app: app.into(),
        session_type: stype.map(String::from),
        name: None,
        tag: None,
        common_data: Bytes::new(),
        direct: false,
        attach,
    })
}

pub(crate) async fn create(c: &Client, app: &str, stype: Option<&str>, attach: bool) -> anyhow::Result<u64> {
    match c.call(create_request(app, stype, attach)).await? {
        Reply::Session(s) => Ok(s.id),
        _ => bail!("unexpected reply"),
    }
}

pub(crate) async fn submit(c: &Client, s: &SessionRef, n: usize) -> anyhow::Result<()> {
    let replies: Vec<_> = soam_client::batches(vec![Bytes::new(); n], 16_384)
        .into_iter()
        .map(|tasks| c.send(Request::Submit { session: s.clone(), tasks }))
        .collect();
    for r in replies {
        r.await?;
    }
    Ok(())
}

/// Collects `n` distinct outputs, acknowledging each batch.
pub(crate) async fn collect(c: &mut Client, s: &SessionRef, n: usize) -> anyhow::Result<()> {
    let mut seen = Dedup::default();
    let mut got = 0;
    while got < n {
        match c.next_event().await {
            Some(Event::Outputs { outputs, .. }) => {
                let ids: Vec<u64> = outputs.iter().map(|o| o.task).collect();
                got += ids.iter().filter(|&&t| seen.first(t)).count();
                c.notify(Request::Ack {
                    session: s.clone(),
                    tasks: ids,
                })?;
            }
            Some(Event::Ended { reason, .. }) => bail!("session ended: {reason}"),
            None => bail!("connection lost"),
            _ => {}
        }
    }
    Ok(())
}

/// One session of `n` no-op tasks, start to close: tasks per second.
pub(crate) async fn throughput(opts: &ConnectOptions, app: &str, stype: Option<&str>, n: usize) -> anyhow::Result<f64> {
    let mut c = Client::connect(opts).await?;
    let t0 = Instant::now();
    let id = create(&c, app, stype, true).await?;
    let s = session_ref(app, id);
    submit(&c, &s, n).await?;
    collect(&mut c, &s, n).await?;
    c.call(Request::Close { session: s }).await?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

pub(crate) async fn collect_one(c: &mut Client, s: &SessionRef) -> anyhow::Result<()> {
    loop {
        match c.next_event().await {
            Some(Event::Outputs { outputs, .. }) => {
                c.notify(Request::Ack {
                    session: s.clone(),
                    tasks: outputs.iter().map(|o| o.task).collect(),
                })?;
                return Ok(());
            }
            Some(Event::Ended { reason, .. }) => bail!("session ended: {reason}"),
            None => bail!("connection lost"),
            _ => {}
        }
    }
}

/// One row of the results: key, value, target (empty: none), whether it is met.
pub(crate) type Figure = (&'static str, f64, &'static str, bool);

/// One task at a time through a session of the no-op service, on a warm instance.
pub(crate) struct Latency {
    c: Client,
    s: SessionRef,
}

impl Latency {
    pub(crate) async fn open(opts: &ConnectOptions) -> anyhow::Result<Latency> {
        let c = Client::connect(opts).await?;
        let id = create(&c, "bench", None, true).await?;
        Ok(Latency {
            c,
            s: session_ref("bench", id),
        })
    }

    /// `n` round trips (submit, output, acknowledge), each one's time in µs.
    pub(crate) async fn rounds(&mut self, n: usize, samples: &mut Vec<f64>) -> anyhow::Result<()> {
        for _ in 0..n {
            let t0 = Instant::now();
            let reply = self.c.send(Request::Submit {
                session: self.s.clone(),
                tasks: vec![Bytes::new()],
            });
            collect_one(&mut self.c, &self.s).await?;
            reply.await?;
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    }

    pub(crate) async fn close(self) -> anyhow::Result<()> {
        self.c.call(Request::Close { session: self.s }).await?;
        Ok(())
    }
}
