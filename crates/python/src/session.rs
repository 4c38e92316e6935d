//! Connections and sessions for Python: `NativeClient` connects (starting the agent on
//! demand), `NativeSession` is one session held by this program, `OutputIter` hands out
//! its outputs one at a time.
//!
//! Data flow: a `NativeSession` owns nothing of the connection. Its *pump*, a task on the
//! library's runtime, owns the library's `soam_client::session::Session` (so its
//! reconnect, ping, dedup and idempotent submits apply unchanged) and runs one loop: a
//! command from Python (`Cmd`: submit, acknowledge, finish) or the session's next event.
//! Outputs go into `Shared`'s queue (in task order with `ordered`), which Python threads
//! take from with the GIL released. Outputs are acknowledged to the agent once Python has
//! them: `take(ack=True)` at once, `OutputIter` as each batch is used up (or, when the
//! iterator is dropped mid-batch, those it handed out; the rest go back to the queue).

use crate::output::Output;
use crate::{raise, runtime, to_py};
use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use soam_client::session::{Next, Reorder, Session, SessionConfig, Submitted};
use soam_client::{Client, ClientError, ConnectOptions};
use soam_proto::SessionRef;
use soam_proto::msg::{CreateSession, SessionInfo, SessionState, TaskOutput};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a wait runs with the GIL released before Python's signal handlers get a turn
/// (Ctrl-C must interrupt a program waiting for outputs).
const SLICE: Duration = Duration::from_millis(100);

/// Runs `fut` on the library's runtime and waits for it with the GIL released, in slices
/// between which pending signals are handled (a KeyboardInterrupt leaves the future
/// running to its end on the runtime, where its result is dropped).
fn wait<T: Send + 'static>(py: Python<'_>, fut: impl Future<Output = T> + Send + 'static) -> PyResult<T> {
    let mut handle = runtime().spawn(fut);
    loop {
        let r = py.detach(|| runtime().block_on(async { tokio::time::timeout(SLICE, &mut handle).await }));
        match r {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => return Err(pyo3::exceptions::PyRuntimeError::new_err(format!("soam client task failed: {e}"))),
            Err(_) => py.check_signals()?,
        }
    }
}

/// A connection to the agent, made (and the agent started if none answers) when created.
#[pyclass(frozen, module = "soam._native")]
pub struct NativeClient {
    opts: ConnectOptions,
    agent_version: String,
    agent_protocol: u32,
}

fn options(socket: Option<std::path::PathBuf>, autostart: Option<bool>, name: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::from_env(name, socket);
    if let Some(a) = autostart {
        opts.autostart = a;
    }
    opts
}

fn config(opts: &ConnectOptions, direct: bool, ping: Option<f64>, reconnect: Option<f64>) -> PyResult<SessionConfig> {
    let mut cfg = SessionConfig::new(opts.clone());
    cfg.direct = direct;
    let secs = |v: f64, what: &str| {
        if (0.0..=86_400.0).contains(&v) {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(PyValueError::new_err(format!("{what} must be 0 to 86400 seconds, not {v}")))
        }
    };
    if let Some(p) = ping {
        cfg.ping_interval = secs(p, "ping_interval")?.max(Duration::from_millis(10));
    }
    if let Some(r) = reconnect {
        cfg.reconnect_timeout = secs(r, "reconnect_timeout")?;
    }
    Ok(cfg)
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (socket=None, autostart=None, name="python"))]
    fn new(py: Python<'_>, socket: Option<std::path::PathBuf>, autostart: Option<bool>, name: &str) -> PyResult<NativeClient> {
        let opts = options(socket, autostart, name);
        let o = opts.clone();
        let client = wait(py, async move { Client::connect(&o).await })?.map_err(to_py)?;
        Ok(NativeClient {
            agent_version: client.agent_version.clone(),
            agent_protocol: client.agent_protocol,
            opts,
        })
    }

    #[getter]
    fn agent_version(&self) -> &str {
        &self.agent_version
    }

    #[getter]
    fn agent_protocol(&self) -> u32 {
        self.agent_protocol
    }

    #[getter]
    fn socket(&self) -> std::path::PathBuf {
        self.opts.socket.clone()
    }

    #[pyo3(signature = (app, session_type=None, name=None, tag=None, common_data=None, direct=false, ordered=false, ping_interval=None, reconnect_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        py: Python<'_>,
        app: String,
        session_type: Option<String>,
        name: Option<String>,
        tag: Option<String>,
        common_data: Option<Vec<u8>>,
        direct: bool,
        ordered: bool,
        ping_interval: Option<f64>,
        reconnect_timeout: Option<f64>,
    ) -> PyResult<NativeSession> {
        let cfg = config(&self.opts, direct, ping_interval, reconnect_timeout)?;
        let c = CreateSession {
            app,
            session_type,
            name,
            tag,
            common_data: common_data.map(Bytes::from).unwrap_or_default(),
            direct,
            attach: true,
        };
        let s = wait(py, async move { Session::create_with(cfg, c).await })?.map_err(to_py)?;
        Ok(NativeSession::start(s, ordered, 0))
    }

    /// Takes the session at `address` (`APP:ID` or `APP:NAME`).
    #[pyo3(signature = (address, all=false, direct=false, ordered=false, ping_interval=None, reconnect_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_session(
        &self,
        py: Python<'_>,
        address: &str,
        all: bool,
        direct: bool,
        ordered: bool,
        ping_interval: Option<f64>,
        reconnect_timeout: Option<f64>,
    ) -> PyResult<NativeSession> {
        let addr: SessionRef = address.parse().map_err(|e: String| raise("InvalidRequest", "invalid", e))?;
        let cfg = config(&self.opts, direct, ping_interval, reconnect_timeout)?;
        let (s, waiting) = wait(py, async move { Session::open(cfg, &addr, all).await })?.map_err(to_py)?;
        Ok(NativeSession::start(s, ordered, waiting))
    }
}

/// What Python asks of a session's pump.
enum Cmd {
    Submit {
        inputs: Vec<Bytes>,
        reply: oneshot::Sender<Result<Submitted, ClientError>>,
    },
    Ack(Vec<u64>),
    /// New common data (SessionUpdate to the instances serving the session).
    Update {
        data: Bytes,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Finish {
        how: Finish,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    Detach,
    Close,
    Abort,
}

impl Finish {
    fn done(self) -> &'static str {
        match self {
            Finish::Detach => "detached",
            Finish::Close => "closed",
            Finish::Abort => "aborted",
        }
    }
}

/// Why a session can no longer be used from here.
#[derive(Clone)]
enum End {
    TakenOver,
    Ended {
        state: SessionState,
        reason: String,
    },
    Failed(ClientError),
    /// This program detached, closed or aborted it.
    Finished(Finish),
}

/// What the pump and Python's threads share.
#[derive(Default)]
struct Shared {
    st: Mutex<St>,
    cv: Condvar,
    /// Inputs sent one at a time (`stage`, soamapi's `send_task_input` from any number of
    /// threads), which the pump submits together: one round trip for all that gathered
    /// while the previous one was under way. No Python thread is involved in sending, so
    /// none has to win the GIL back for the next batch to go.
    staged: Mutex<Staged>,
    staged_ready: tokio::sync::Notify,
    /// What became of staged inputs, by sequence number.
    sent: Mutex<Sent>,
    sent_cv: Condvar,
}

#[derive(Default)]
struct Staged {
    inputs: Vec<Bytes>,
    /// The sequence number of `inputs[0]`.
    first_seq: u64,
}

#[derive(Default)]
struct Sent {
    /// Staged inputs before this sequence number have been submitted (or refused).
    upto: u64,
    /// Each submission of staged inputs: (its first sequence number, its first task id
    /// or why it was refused), in order.
    batches: Vec<(u64, Result<u64, ClientError>)>,
    /// A refusal not yet reported to the sender (by `stage`).
    unreported: Option<ClientError>,
}

impl Sent {
    /// The task id of staged input `seq`, once submitted.
    fn id_of(&self, seq: u64) -> Option<Result<u64, ClientError>> {
        if seq >= self.upto {
            return None;
        }
        let i = self.batches.partition_point(|(first, _)| *first <= seq) - 1;
        let (first_seq, r) = &self.batches[i];
        Some(r.clone().map(|first| first + (seq - first_seq)))
    }
}

#[derive(Default)]
struct St {
    queue: VecDeque<TaskOutput>,
    /// Tasks this program submitted, and how many of their outputs came.
    submitted: u64,
    received: u64,
    /// The first task id this program submitted: outputs of older tasks (an opened
    /// session's) do not count as this program's.
    first_mine: Option<u64>,
    /// The agent said nothing is pending or running and every output was sent.
    drained: bool,
    /// Python threads waiting on `Shared::cv`: the pump wakes them only if there are any
    /// (a notify is a system call even with nobody waiting, and the pump has one to make
    /// for every frame of outputs while the program is busy with the last one).
    waiters: u32,
    end: Option<End>,
}

impl St {
    /// Nothing more will come unless more is submitted.
    fn finished(&self) -> bool {
        self.drained && self.received >= self.submitted
    }
}

/// What a wait for outputs found.
enum Took {
    Outputs(Vec<TaskOutput>),
    TimedOut,
    Finished,
    End(End),
}

impl Shared {
    /// Waits up to `slice` for outputs; takes at most `max`. `to_the_end`: a finished
    /// session is only reported once the wait is over (`fetch` waits its whole timeout, as
    /// another thread may be about to submit).
    fn take(&self, max: usize, slice: Duration, to_the_end: bool) -> Option<Took> {
        let mut st = self.st.lock().unwrap();
        let deadline = Instant::now() + slice;
        loop {
            if !st.queue.is_empty() {
                let n = max.min(st.queue.len());
                return Some(Took::Outputs(st.queue.drain(..n).collect()));
            }
            if let Some(e) = &st.end {
                return Some(Took::End(e.clone()));
            }
            if st.finished() && !to_the_end {
                return Some(Took::Finished);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st.waiters += 1;
            st = self.cv.wait_timeout(st, deadline - now).unwrap().0;
            st.waiters -= 1;
        }
    }

    fn end(&self, e: End) {
        self.st.lock().unwrap().end = Some(e);
        self.cv.notify_all();
    }
}

/// Waits for outputs with the GIL released, up to `timeout` (`None`: for as long as it
/// takes), letting signals in between slices.
fn take(py: Python<'_>, shared: &Arc<Shared>, max: usize, timeout: Option<f64>, to_the_end: bool) -> PyResult<Took> {
    let deadline = match timeout {
        Some(t) if !(t.is_finite() && t >= 0.0) => {
            return Err(PyValueError::new_err(format!("timeout must be 0 or more seconds, not {t}")));
        }
        Some(t) => Some(Instant::now() + Duration::from_secs_f64(t.min(1e9))),
        None => None,
    };
    loop {
        let slice = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()).min(SLICE));
        if let Some(t) = py.detach(|| shared.take(max, slice, to_the_end)) {
            return Ok(t);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Took::TimedOut);
        }
        py.check_signals()?;
    }
}

/// One session held by this program.
#[pyclass(frozen, module = "soam._native")]
pub struct NativeSession {
    /// The process that made it (its pid, and its generation: `crate::generation`): its
    /// pump runs there only.
    pid: u32,
    generation: u64,
    info: SessionInfo,
    waiting: u64,
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl NativeSession {
    fn start(s: Session, ordered: bool, waiting: u64) -> NativeSession {
        let info = s.info().clone();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        runtime().spawn(pump(s, shared.clone(), rx, ordered));
        NativeSession {
            pid: std::process::id(),
            generation: crate::generation(),
            info,
            waiting,
            shared,
            cmds: tx,
        }
    }

    fn address(&self) -> String {
        format!("{}:{}", self.info.app, self.info.id)
    }

    /// The exception for a session that can no longer be used.
    fn end_error(&self, e: &End) -> PyErr {
        let addr = self.address();
        match e {
            End::TakenOver => raise("TakenOver", "taken-over", format!("session {addr} was taken over")),
            End::Ended { state, reason } if reason.is_empty() => raise("SessionEnded", "ended", format!("session {addr} ended {state}")),
            End::Ended { state, reason } => raise("SessionEnded", "ended", format!("session {addr} ended {state}: {reason}")),
            End::Failed(e) => to_py(e.clone()),
            End::Finished(f) => raise("SessionEnded", "ended", format!("session {addr} was {} by this program", f.done())),
        }
    }

    /// The error to raise when the pump has gone (it records why before it goes).
    fn gone(&self) -> PyErr {
        let e = self.shared.st.lock().unwrap().end.clone();
        match e {
            Some(e) => self.end_error(&e),
            None => raise("SoamError", "other", format!("session {} is no longer served", self.address())),
        }
    }

    /// Refuses a session used in a process forked after it was made: its pump and
    /// connection are the parent's, and a wait for them would never end.
    fn here(&self) -> PyResult<()> {
        if crate::generation() == self.generation {
            return Ok(());
        }
        Err(raise(
            "SoamError",
            "other",
            format!(
                "session {} belongs to process {}, not to this forked one; connect and open it again here",
                self.address(),
                self.pid
            ),
        ))
    }

    fn send(&self, c: Cmd) -> PyResult<()> {
        self.here()?;
        self.cmds.send(c).map_err(|_| self.gone())
    }

    fn finish(&self, py: Python<'_>, how: Finish) -> PyResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Finish { how, reply: tx })?;
        match wait(py, rx)? {
            Ok(r) => r.map_err(to_py),
            Err(_) => Err(self.gone()),
        }
    }
}

/// The inputs of a submission: bytes as they are, str as UTF-8, anything else through
/// `bytes()` (bytearray, memoryview, array).
fn inputs(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Bytes>> {
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err(
            "submit takes an iterable of inputs, not one input: wrap it in a list",
        ));
    }
    let mut v = Vec::with_capacity(obj.len().unwrap_or(0));
    for item in obj.try_iter()? {
        let item = item?;
        if let Ok(b) = item.cast::<PyBytes>() {
            v.push(Bytes::copy_from_slice(b.as_bytes()));
        } else if let Ok(s) = item.cast::<PyString>() {
            v.push(Bytes::copy_from_slice(s.to_cow()?.as_bytes()));
        } else {
            // Through memoryview, which only buffers pass (bytes(3) would be three zeros).
            let view = item.py().get_type::<pyo3::types::PyMemoryView>().call1((&item,));
            let b = view.and_then(|v| item.py().get_type::<PyBytes>().call1((v,))).map_err(|e| {
                PyValueError::new_err(format!(
                    "a task input must be bytes, str or a buffer, not {}: {e}",
                    item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
            v.push(Bytes::copy_from_slice(b.cast::<PyBytes>()?.as_bytes()));
        }
    }
    Ok(v)
}

#[pymethods]
impl NativeSession {
    #[getter]
    fn app(&self) -> &str {
        &self.info.app
    }
    #[getter]
    fn id(&self) -> u64 {
        self.info.id
    }
    #[getter]
    fn name(&self) -> Option<&str> {
        self.info.name.as_deref()
    }
    #[getter]
    fn tag(&self) -> Option<&str> {
        self.info.tag.as_deref()
    }
    #[getter]
    fn session_type(&self) -> &str {
        &self.info.session_type
    }
    #[getter]
    fn recoverable(&self) -> bool {
        self.info.recoverable
    }
    #[getter]
    fn direct(&self) -> bool {
        self.info.direct
    }
    /// Outputs that were waiting when the session was opened.
    #[getter]
    fn waiting(&self) -> u64 {
        self.waiting
    }

    /// Submits `inputs` as one submission (accepted whole or refused whole, sent once
    /// however often the connection is lost); returns (first task id, count).
    fn submit(&self, py: Python<'_>, inputs_: &Bound<'_, PyAny>) -> PyResult<(u64, u64)> {
        let inputs = inputs(inputs_)?;
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Submit { inputs, reply: tx })?;
        match wait(py, rx)? {
            Ok(r) => r.map(|s| (s.first, s.count)).map_err(to_py),
            Err(_) => Err(self.gone()),
        }
    }

    /// Up to `max` outputs, waiting up to `timeout` seconds (None: until one comes).
    /// `until_finished`: stop waiting once nothing more will come unless more is
    /// submitted. `ack`: acknowledged now; else the caller acknowledges.
    #[pyo3(signature = (max, timeout=None, ack=true, until_finished=false))]
    fn take<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        timeout: Option<f64>,
        ack: bool,
        until_finished: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        match take(py, &self.shared, max.max(1), timeout, !until_finished)? {
            Took::Outputs(v) => {
                if ack {
                    self.send(Cmd::Ack(v.iter().map(|o| o.task).collect()))?;
                }
                PyList::new(py, v.into_iter().map(Output::from))
            }
            Took::TimedOut | Took::Finished => Ok(PyList::empty(py)),
            Took::End(e) => Err(self.end_error(&e)),
        }
    }

    /// Whether every task this program submitted has its output taken from the agent
    /// and nothing is pending or running.
    #[getter]
    fn finished(&self) -> bool {
        let st = self.shared.st.lock().unwrap();
        st.finished() && st.queue.is_empty()
    }

    /// Acknowledges outputs by task id.
    fn ack(&self, tasks: Vec<u64>) -> PyResult<()> {
        self.send(Cmd::Ack(tasks))
    }

    /// An iterator over outputs as they finish, until nothing more will come.
    #[pyo3(signature = (timeout=None, batch=65536))]
    fn outputs(slf: &Bound<'_, Self>, timeout: Option<f64>, batch: usize) -> OutputIter {
        OutputIter {
            session: slf.clone().unbind(),
            timeout,
            max: batch.max(1),
            cur: Mutex::new(Batch::default()),
            exhausted: Default::default(),
        }
    }

    /// Stages one input to be submitted with whatever else gathers (see `Shared::staged`);
    /// returns its sequence number, for `task_id`. Raises a refusal of an earlier staged
    /// submission not reported yet (once).
    fn stage(&self, data: &Bound<'_, PyBytes>) -> PyResult<u64> {
        self.here()?;
        if let Some(e) = self.shared.sent.lock().unwrap().unreported.take() {
            return Err(to_py(e));
        }
        if let Some(e) = &self.shared.st.lock().unwrap().end {
            return Err(self.end_error(e));
        }
        let mut st = self.shared.staged.lock().unwrap();
        let seq = st.first_seq + st.inputs.len() as u64;
        st.inputs.push(Bytes::copy_from_slice(data.as_bytes()));
        if st.inputs.len() == 1 {
            self.shared.staged_ready.notify_one();
        }
        Ok(seq)
    }

    /// The task id of staged input `seq`, waiting (GIL released) until it is submitted.
    fn task_id(&self, py: Python<'_>, seq: u64) -> PyResult<u64> {
        self.here()?;
        loop {
            let r = py.detach(|| {
                let sent = self.shared.sent.lock().unwrap();
                match sent.id_of(seq) {
                    Some(r) => Some(r),
                    None => self.shared.sent_cv.wait_timeout(sent, SLICE).unwrap().0.id_of(seq),
                }
            });
            match r {
                Some(r) => return r.map_err(to_py),
                None if self.shared.st.lock().unwrap().end.is_some() && self.cmds.is_closed() => return Err(self.gone()),
                None => py.check_signals()?,
            }
        }
    }

    /// Waits (GIL released) until every input staged so far has been submitted or
    /// refused, or the session is gone.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.here()?;
        let target = {
            let st = self.shared.staged.lock().unwrap();
            st.first_seq + st.inputs.len() as u64
        };
        loop {
            let done = py.detach(|| {
                let sent = self.shared.sent.lock().unwrap();
                sent.upto >= target || self.shared.sent_cv.wait_timeout(sent, SLICE).unwrap().0.upto >= target
            });
            if done || self.cmds.is_closed() {
                return Ok(());
            }
            py.check_signals()?;
        }
    }

    /// Replaces the session's common data: instances serving it get SessionUpdate.
    fn update(&self, py: Python<'_>, common_data: Vec<u8>) -> PyResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Update {
            data: Bytes::from(common_data),
            reply: tx,
        })?;
        match wait(py, rx)? {
            Ok(r) => r.map_err(to_py),
            Err(_) => Err(self.gone()),
        }
    }

    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, Finish::Detach)
    }
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, Finish::Close)
    }
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, Finish::Abort)
    }
}

#[derive(Default)]
struct Batch {
    items: std::vec::IntoIter<TaskOutput>,
    ids: Vec<u64>,
    given: usize,
}

/// Outputs one at a time. Each batch taken from the queue is acknowledged when it is used
/// up; dropped mid-batch, the iterator acknowledges what it gave and puts the rest back.
#[pyclass(module = "soam._native")]
pub struct OutputIter {
    session: Py<NativeSession>,
    timeout: Option<f64>,
    max: usize,
    cur: Mutex<Batch>,
    exhausted: std::sync::atomic::AtomicBool,
}

enum Step {
    Item(Output),
    Finished,
    TimedOut,
}

impl OutputIter {
    /// The next output, waiting up to `timeout` (None: as long as it takes).
    fn step(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Step> {
        let session = self.session.get();
        session.here()?;
        {
            let mut b = self.cur.lock().unwrap();
            if let Some(o) = b.items.next() {
                b.given += 1;
                return Ok(Step::Item(Output::from(o)));
            }
            // Used up: every output of the batch was taken.
            let ids = std::mem::take(&mut b.ids);
            b.given = 0;
            if !ids.is_empty() {
                session.send(Cmd::Ack(ids))?;
            }
        }
        // Waited for without the batch's lock: another thread may call next meanwhile.
        match take(py, &session.shared, self.max, timeout, false)? {
            Took::Outputs(v) => {
                let mut b = self.cur.lock().unwrap();
                b.ids.extend(v.iter().map(|o| o.task));
                b.items = v.into_iter();
                match b.items.next() {
                    Some(o) => {
                        b.given += 1;
                        Ok(Step::Item(Output::from(o)))
                    }
                    None => Ok(Step::TimedOut),
                }
            }
            Took::Finished => Ok(Step::Finished),
            Took::TimedOut => Ok(Step::TimedOut),
            Took::End(e) => Err(session.end_error(&e)),
        }
    }

    fn settle(&self, b: &mut Batch, session: &NativeSession) {
        let given: Vec<u64> = b.ids.drain(..b.given).collect();
        b.ids.clear();
        b.given = 0;
        let rest: Vec<TaskOutput> = std::mem::take(&mut b.items).collect();
        if !rest.is_empty() {
            let mut st = session.shared.st.lock().unwrap();
            for o in rest.into_iter().rev() {
                st.queue.push_front(o);
            }
        }
        if !given.is_empty() {
            let _ = session.cmds.send(Cmd::Ack(given));
        }
    }
}

impl Drop for OutputIter {
    fn drop(&mut self) {
        let b = &mut *self.cur.lock().unwrap();
        let s = self.session.get();
        self.settle(b, s);
    }
}

#[pymethods]
impl OutputIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Output>> {
        match self.step(py, self.timeout)? {
            Step::Item(o) => Ok(Some(o)),
            Step::Finished => Ok(None),
            Step::TimedOut => Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                "no output of session {} within {} s",
                self.session.get().address(),
                self.timeout.unwrap_or_default()
            ))),
        }
    }

    /// The next output if one comes within `timeout` seconds (0: only one already here),
    /// else None; once nothing more will come, None with `exhausted` set. For event loops
    /// (`soam.aio`), which must not block.
    fn poll(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Output>> {
        match self.step(py, Some(timeout))? {
            Step::Item(o) => Ok(Some(o)),
            Step::Finished => {
                self.exhausted.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
            Step::TimedOut => Ok(None),
        }
    }

    /// Nothing more will come (set by `poll`).
    #[getter]
    fn exhausted(&self) -> bool {
        self.exhausted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Acknowledges the outputs handed out so far and puts the rest of the batch back
    /// (as dropping the iterator does).
    fn close(&self) {
        let b = &mut *self.cur.lock().unwrap();
        self.settle(b, self.session.get());
    }
}

/// Counts an accepted submission as this program's (for `St::finished`); in ordered
/// mode, outputs are released from the first one's first task.
fn submitted(shared: &Shared, r: &Result<Submitted, ClientError>, ordered: bool, reorder: &mut Option<Reorder>) {
    let Ok(sub) = r else { return };
    if sub.count == 0 {
        return;
    }
    let mut st = shared.st.lock().unwrap();
    st.submitted += sub.count;
    st.first_mine = Some(st.first_mine.map_or(sub.first, |f| f.min(sub.first)));
    st.drained = false;
    if ordered && reorder.is_none() {
        *reorder = Some(Reorder::new(Some(sub.first)));
    }
}

/// The session's pump: Python's commands and the session's events, one at a time.
async fn pump(mut s: Session, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Cmd>, ordered: bool) {
    let mut reorder: Option<Reorder> = None;
    loop {
        tokio::select! {
            biased;
            _ = shared.staged_ready.notified() => {
                let (inputs, first_seq) = {
                    let mut st = shared.staged.lock().unwrap();
                    let first = st.first_seq;
                    st.first_seq += st.inputs.len() as u64;
                    (std::mem::take(&mut st.inputs), first)
                };
                if inputs.is_empty() {
                    continue;
                }
                let n = inputs.len() as u64;
                shared.st.lock().unwrap().drained = false;
                let r = s.submit(inputs).await;
                submitted(&shared, &r, ordered, &mut reorder);
                let mut sent = shared.sent.lock().unwrap();
                if let Err(e) = &r {
                    sent.unreported = Some(e.clone());
                }
                sent.batches.push((first_seq, r.map(|sub| sub.first)));
                sent.upto = first_seq + n;
                drop(sent);
                shared.sent_cv.notify_all();
            }
            cmd = rx.recv() => match cmd {
                // The Python object is gone without detaching, closing or aborting: the
                // connection closes as a vanished client's would.
                None => return,
                Some(Cmd::Submit { inputs, reply }) => {
                    shared.st.lock().unwrap().drained = false;
                    let r = s.submit(inputs).await;
                    submitted(&shared, &r, ordered, &mut reorder);
                    let _ = reply.send(r);
                }
                Some(Cmd::Ack(ids)) => s.ack_ids(ids),
                Some(Cmd::Update { data, reply }) => {
                    let req = soam_proto::msg::Request::UpdateCommonData { session: s.addr().clone(), data };
                    let _ = reply.send(s.client().call(req).await.map(|_| ()));
                }
                Some(Cmd::Finish { how, reply }) => {
                    let r = match how {
                        Finish::Detach => s.detach().await,
                        Finish::Close => s.close().await,
                        Finish::Abort => s.abort().await,
                    };
                    shared.end(match &r {
                        Ok(()) => End::Finished(how),
                        Err(e) => End::Failed(e.clone()),
                    });
                    let _ = reply.send(r);
                    return;
                }
            },
            next = s.next() => match next {
                Ok(Next::Outputs(v)) => {
                    let mut st = shared.st.lock().unwrap();
                    let first = st.first_mine;
                    st.received += v.iter().filter(|o| first.is_some_and(|f| o.task >= f)).count() as u64;
                    if ordered {
                        let r = reorder.get_or_insert_with(|| Reorder::new(None));
                        for o in v {
                            st.queue.extend(r.push(o));
                        }
                    } else {
                        st.queue.extend(v);
                    }
                    let wake = st.waiters > 0;
                    drop(st);
                    if wake {
                        shared.cv.notify_all();
                    }
                }
                Ok(Next::Drained) => {
                    let mut st = shared.st.lock().unwrap();
                    if let Some(r) = reorder.as_mut() {
                        st.queue.extend(r.rest());
                    }
                    st.drained = true;
                    drop(st);
                    shared.cv.notify_all();
                }
                Ok(Next::TakenOver) => return shared.end(End::TakenOver),
                Ok(Next::Ended { state, reason }) => return shared.end(End::Ended { state, reason }),
                Err(e) => return shared.end(End::Failed(e)),
            }
        }
    }
}
