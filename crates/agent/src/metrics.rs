//! Prometheus metrics (`metricsAddress` in soamd.yaml; docs/usage.md "Metrics"): the
//! figures a scrape shows, how they are written as Prometheus' text format, and the
//! HTTP endpoint that serves them.
//!
//! Data flow: a `GET /metrics` on the listener posts `CoreMsg::Metrics` to the core's
//! inbox; the core answers with a [`Snapshot`] taken in one turn (`core::metrics`, where
//! the counting is); this side turns it into metric families (the `prometheus` crate's
//! `proto` types) and writes them with its `TextEncoder`. The core never waits on a
//! scraper, and a scrape costs the core one pass over its sessions and instances.

use crate::ports::{CoreMsg, Inbox};
use prometheus::proto::{self, MetricFamily, MetricType};
use soam_proto::msg::TaskState;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Upper bounds of the time histograms' buckets, in milliseconds (tasks are timed in
/// milliseconds): from a no-op task to a long one.
pub const BUCKETS_MS: [u64; 12] = [1, 5, 10, 25, 50, 100, 250, 1_000, 5_000, 30_000, 120_000, 600_000];

/// A histogram of durations in milliseconds, with Prometheus' cumulative buckets made at
/// encoding time from these per-bucket counts (the last one is +Inf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    pub counts: [u64; BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
}

impl Hist {
    pub fn observe(&mut self, ms: u64) {
        let i = BUCKETS_MS.iter().position(|&b| ms <= b).unwrap_or(BUCKETS_MS.len());
        self.counts[i] += 1;
        self.sum_ms += ms;
    }

    pub fn add(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_ms += o.sum_ms;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What a session's tasks did, counted as it happened (never decreases): four
/// counters, kept at the end of the session so that the task path's fields stay
/// together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub submitted: u64,
    pub done: u64,
    pub failed: u64,
    pub retried: u64,
}

impl Tally {
    /// A task ended in `state`.
    pub fn ended(&mut self, state: TaskState) {
        match state {
            TaskState::Done => self.done += 1,
            TaskState::Error => self.failed += 1,
            _ => {}
        }
    }

    pub fn add(&mut self, o: &Tally) {
        self.submitted += o.submitted;
        self.done += o.done;
        self.failed += o.failed;
        self.retried += o.retried;
    }
}

#[derive(Debug, Clone, Default)]
pub struct AppCounters {
    pub tasks: Tally,
    /// From the start of a task's last attempt to its end (tasks that ended).
    pub run: Hist,
    /// From a task's submission to the start of its last attempt.
    pub wait: Hist,
    pub sessions_created: u64,
    /// By the state each ended in.
    pub sessions_ended: BTreeMap<&'static str, u64>,
}

/// Everything a scrape shows, taken in one turn of the core.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub apps: BTreeMap<String, AppSnapshot>,
    /// Allocations by state.
    pub allocations: BTreeMap<String, u64>,
    pub store_bytes: u64,
    pub store_commits: u64,
    pub store_degraded: bool,
    pub connections: u64,
    pub uptime_s: u64,
    pub version: &'static str,
}

#[derive(Debug, Default)]
pub struct AppSnapshot {
    pub counters: AppCounters,
    /// Open sessions by state.
    pub sessions: BTreeMap<&'static str, u64>,
    pub pending: u64,
    pub running: u64,
    pub busy_instances: u64,
    pub idle_instances: u64,
    /// Hosts its services may not start on (`actionOnSI="blockHost"`).
    pub blocked_hosts: u64,
}

fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut l = proto::LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn metric(labels: &[(&str, &str)]) -> proto::Metric {
    let mut m = proto::Metric::default();
    m.set_label(labels.iter().map(|(k, v)| label(k, v)).collect());
    m
}

fn counter(labels: &[(&str, &str)], v: u64) -> proto::Metric {
    let mut m = metric(labels);
    let mut c = proto::Counter::default();
    c.set_value(v as f64);
    m.set_counter(c);
    m
}

fn gauge(labels: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut m = metric(labels);
    let mut g = proto::Gauge::default();
    g.set_value(v);
    m.set_gauge(g);
    m
}

fn histogram(labels: &[(&str, &str)], h: &Hist) -> proto::Metric {
    let mut m = metric(labels);
    let mut p = proto::Histogram::default();
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for (i, &bound) in BUCKETS_MS.iter().enumerate() {
        cumulative += h.counts[i];
        let mut b = proto::Bucket::default();
        b.set_cumulative_count(cumulative);
        b.set_upper_bound(bound as f64 / 1000.0);
        buckets.push(b);
    }
    p.set_bucket(buckets);
    p.set_sample_count(h.count());
    p.set_sample_sum(h.sum_ms as f64 / 1000.0);
    m.set_histogram(p);
    m
}

/// The metric families of a snapshot, named and labelled as Prometheus' conventions
/// say (`soam_..._total` counters, seconds, bytes); every application appears in each
/// per-application family, at 0 where nothing happened.
pub fn families(s: &Snapshot) -> Vec<MetricFamily> {
    use MetricType::{COUNTER, GAUGE, HISTOGRAM};
    let per_app = |f: &dyn Fn(&str, &AppSnapshot) -> Vec<proto::Metric>| -> Vec<proto::Metric> {
        s.apps.iter().flat_map(|(name, a)| f(name, a)).collect()
    };
    let task_counter = |name: &str, help: &str, get: fn(&Tally) -> u64| {
        family(
            name,
            help,
            COUNTER,
            per_app(&|app, a| vec![counter(&[("app", app)], get(&a.counters.tasks))]),
        )
    };
    let mut out = vec![
        task_counter("soam_tasks_submitted_total", "Tasks accepted into sessions.", |t| t.submitted),
        task_counter("soam_tasks_done_total", "Tasks that ended done.", |t| t.done),
        task_counter("soam_tasks_failed_total", "Tasks that ended in error.", |t| t.failed),
        task_counter(
            "soam_tasks_retried_total",
            "Failed attempts run again (counted against taskRetryLimit).",
            |t| t.retried,
        ),
        family(
            "soam_sessions_created_total",
            "Sessions created.",
            COUNTER,
            per_app(&|app, a| vec![counter(&[("app", app)], a.counters.sessions_created)]),
        ),
        family(
            "soam_sessions_ended_total",
            "Sessions ended, by the state they ended in.",
            COUNTER,
            per_app(&|app, a| {
                ["closed", "aborted"]
                    .iter()
                    .map(|st| {
                        counter(
                            &[("app", app), ("state", st)],
                            a.counters.sessions_ended.get(st).copied().unwrap_or(0),
                        )
                    })
                    .collect()
            }),
        ),
        family(
            "soam_sessions",
            "Open sessions, by state.",
            GAUGE,
            per_app(&|app, a| {
                ["open", "suspended", "reconnecting"]
                    .iter()
                    .map(|st| gauge(&[("app", app), ("state", st)], a.sessions.get(st).copied().unwrap_or(0) as f64))
                    .collect()
            }),
        ),
        family(
            "soam_tasks",
            "Tasks of open sessions waiting or running.",
            GAUGE,
            per_app(&|app, a| {
                vec![
                    gauge(&[("app", app), ("state", "pending")], a.pending as f64),
                    gauge(&[("app", app), ("state", "running")], a.running as f64),
                ]
            }),
        ),
        family(
            "soam_instances",
            "Service instances, busy (serving a session) or idle.",
            GAUGE,
            per_app(&|app, a| {
                vec![
                    gauge(&[("app", app), ("state", "busy")], a.busy_instances as f64),
                    gauge(&[("app", app), ("state", "idle")], a.idle_instances as f64),
                ]
            }),
        ),
        family(
            "soam_blocked_hosts",
            "Hosts an application's services may not start on (actionOnSI=\"blockHost\").",
            GAUGE,
            per_app(&|app, a| vec![gauge(&[("app", app)], a.blocked_hosts as f64)]),
        ),
        family(
            "soam_task_run_seconds",
            "Time from the start of a task's last attempt to its end.",
            HISTOGRAM,
            per_app(&|app, a| vec![histogram(&[("app", app)], &a.counters.run)]),
        ),
        family(
            "soam_task_queue_wait_seconds",
            "Time from a task's submission to the start of its last attempt.",
            HISTOGRAM,
            per_app(&|app, a| vec![histogram(&[("app", app)], &a.counters.wait)]),
        ),
    ];
    let allocations: Vec<proto::Metric> = ["requested", "pending", "running", "releasing"]
        .iter()
        .map(|st| gauge(&[("state", st)], s.allocations.get(*st).copied().unwrap_or(0) as f64))
        .collect();
    out.push(family("soam_allocations", "Slurm allocations held, by state.", GAUGE, allocations));
    out.push(family(
        "soam_store_bytes",
        "Bytes of the store's records (what maxRecordBytes bounds).",
        GAUGE,
        vec![gauge(&[], s.store_bytes as f64)],
    ));
    out.push(family(
        "soam_store_commits_total",
        "Store commits (each one a group of writes) since the agent started.",
        COUNTER,
        vec![counter(&[], s.store_commits)],
    ));
    out.push(family(
        "soam_store_degraded",
        "1 while the store cannot be written (writes are refused), else 0.",
        GAUGE,
        vec![gauge(&[], if s.store_degraded { 1.0 } else { 0.0 })],
    ));
    out.push(family(
        "soam_connections",
        "Client connections open.",
        GAUGE,
        vec![gauge(&[], s.connections as f64)],
    ));
    out.push(family(
        "soam_uptime_seconds",
        "Seconds since the agent started.",
        GAUGE,
        vec![gauge(&[], s.uptime_s as f64)],
    ));
    out.push(family(
        "soam_build_info",
        "The agent's release, as its version label; always 1.",
        GAUGE,
        vec![gauge(&[("version", s.version)], 1.0)],
    ));
    // A family with no application has no samples, which the text format cannot say.
    out.retain(|f| !f.get_metric().is_empty());
    out
}

/// The snapshot as Prometheus' text format (version 0.0.4).
pub fn text(s: &Snapshot) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&families(s), &mut buf)
        .expect("families are checked non-empty and named");
    String::from_utf8(buf).expect("the text encoder writes UTF-8")
}

/// Serves `GET /metrics` on `listener` until the agent stops: each scrape asks the core
/// for a snapshot. Anything else gets 404 (another path) or 405 (another method).
pub async fn serve(listener: tokio::net::TcpListener, inbox: Inbox) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, say: the next accept may work.
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| answer(req, inbox.clone()));
            // A scraper that goes away mid-answer is its own business.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
        });
    }
}

type Answer = hyper::Response<http_body_util::Full<bytes::Bytes>>;

fn plain(status: u16, text: &str) -> Answer {
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(format!("{text}\n"))));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
    r
}

async fn answer(req: hyper::Request<hyper::body::Incoming>, inbox: Inbox) -> Result<Answer, std::convert::Infallible> {
    if req.uri().path() != "/metrics" {
        return Ok(plain(404, "soamd serves its metrics at /metrics"));
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return Ok(plain(405, "only GET /metrics"));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    inbox.send(CoreMsg::Metrics(tx));
    let Ok(snapshot) = rx.await else {
        return Ok(plain(503, "the agent is stopping"));
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(text(&snapshot))));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
    );
    Ok(r)
}

/// Binds the metrics address; a port without a host is loopback's.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metricsAddress {addr}: cannot listen: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_in_seconds_and_every_app_has_each_family() {
        let mut s = Snapshot {
            version: "9.9.9",
            ..Snapshot::default()
        };
        let mut t = Tally::default();
        t.ended(TaskState::Done);
        t.ended(TaskState::Done);
        t.ended(TaskState::Error);
        let a = s.apps.entry("a".into()).or_default();
        a.counters.tasks = t;
        a.counters.run.observe(2);
        a.counters.run.observe(2_000);
        s.apps.entry("b".into()).or_default();
        let text = text(&s);
        assert!(text.contains("soam_tasks_done_total{app=\"a\"} 2\n"), "{text}");
        assert!(text.contains("soam_tasks_failed_total{app=\"a\"} 1\n"), "{text}");
        assert!(text.contains("soam_tasks_done_total{app=\"b\"} 0\n"), "{text}");
        // 2 ms and 2 s: one in le=0.005, both by le=5, the sum in seconds.
        assert!(text.contains("soam_task_run_seconds_bucket{app=\"a\",le=\"0.001\"} 0\n"), "{text}");
        assert!(text.contains("soam_task_run_seconds_bucket{app=\"a\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("soam_task_run_seconds_bucket{app=\"a\",le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("soam_task_run_seconds_bucket{app=\"a\",le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("soam_task_run_seconds_sum{app=\"a\"} 2.002\n"), "{text}");
        assert!(text.contains("soam_build_info{version=\"9.9.9\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE soam_tasks_done_total counter\n"), "{text}");
    }
}
