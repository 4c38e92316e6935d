//! One connection to the agent: the handshake, then a writer task (requests out,
//! coalesced) and a reader task (replies matched to their request by id, events into a
//! channel). Requests can be pipelined: [`Client::send`] returns a future for the reply
//! without waiting for it.

use crate::autostart::start_agent;
use crate::paging::{PAGE, SESSION_PAGE, SessionPage};
use crate::trust::check_agent_uid;
use crate::{ClientError, ConnectOptions};
use bytes::Bytes;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use soam_proto::SessionRef;
use soam_proto::frame::{self, FrameError};
use soam_proto::msg::{
    AgentFrame, AppInfo, ClientFrame, ErrorKind, Event, Hello, MAGIC, Reply, Request, SessionInfo, SessionInfoRef, SessionQuery, TaskInfo,
    TaskState, Welcome,
};
use soam_proto::sock::Sock;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Pending = Arc<Mutex<HashMap<u64, Waiter>>>;

/// A request's caller, waiting for its reply.
struct Waiter {
    tx: oneshot::Sender<Result<Answer, ClientError>>,
    /// It asked for a page of sessions, which it reads itself, borrowing from the frame:
    /// the reader hands such a reply over undecoded (any other reply as usual).
    page: bool,
}

/// What a caller gets: the reply, or (asked for a `page`) a page of sessions' frame.
// As large as a `Reply`, which went through the channel as it is before: boxing it
// would add an allocation to every reply.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Reply(Reply),
    /// A page of sessions, as its frame came.
    Page(SessionPage),
}

impl Waiter {
    fn answer(self, a: Result<Answer, ClientError>) {
        let _ = self.tx.send(a);
    }
}

pub struct Client {
    out: mpsc::UnboundedSender<ClientFrame>,
    pending: Pending,
    events: mpsc::UnboundedReceiver<Event>,
    next_id: AtomicU64,
    /// Set when the connection ends, so later calls fail with the cause.
    lost: Arc<Mutex<Option<String>>>,
    pub agent_version: String,
    /// The protocol the agent speaks: a request newer than it must not be sent (the
    /// agent would not know it), see docs/compatibility.md.
    pub agent_protocol: u32,
}

async fn try_connect(socket: &Path) -> std::io::Result<Stream> {
    let name = socket.to_path_buf().to_fs_name::<GenericFilePath>()?;
    Stream::connect(name).await
}

/// How long a connected agent may take to answer the hello: `SOAM_CONNECT_TIMEOUT`
/// seconds, default 60 (an agent recovering a large store answers once it has).
fn answer_timeout() -> Duration {
    std::env::var("SOAM_CONNECT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(60), |s| Duration::from_secs_f64(s.min(86_400.0)))
}

impl Client {
    pub async fn connect(opts: &ConnectOptions) -> Result<Client, ClientError> {
        let stream = match try_connect(&opts.socket).await {
            Ok(s) => s,
            // Someone's agent is there, and not for this user.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ClientError::refused(
                    ErrorKind::Permission,
                    format!("cannot connect to {}: {e}", opts.socket.display()),
                ));
            }
            Err(e) if !opts.autostart => {
                return Err(ClientError::NoAgent(format!(
                    "no agent answers on {} ({e}); start one with soamd",
                    opts.socket.display()
                )));
            }
            Err(_) => {
                let mut child = start_agent(opts)?;
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    if let Ok(s) = try_connect(&opts.socket).await {
                        // A long-lived program (a Python client) would otherwise keep the
                        // agent as a zombie once it exits.
                        std::thread::spawn(move || child.wait());
                        break s;
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        // It may have lost a race with another autostarted agent.
                        if let Ok(s) = try_connect(&opts.socket).await {
                            break s;
                        }
                        let log = std::fs::read_to_string(opts.paths.log()).unwrap_or_default();
                        let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                        return Err(ClientError::NoAgent(format!("the agent exited at start ({status}): {last}")));
                    }
                    if Instant::now() > deadline {
                        return Err(ClientError::NoAgent(format!(
                            "started soamd but it did not answer on {} within 15 s",
                            opts.socket.display()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        check_agent_uid(&stream, &opts.socket)?;
        Self::handshake(stream, &opts.client_name, &opts.socket).await
    }

    async fn handshake(stream: Stream, client_name: &str, socket: &Path) -> Result<Client, ClientError> {
        let interprocess::local_socket::tokio::Stream::UdSocket(stream) = stream;
        let stream = std::os::fd::OwnedFd::try_from(stream)
            .and_then(Sock::new)
            .map_err(|e| ClientError::Lost(format!("cannot use the connection to {}: {e}", socket.display())))?;
        let stream = Arc::new(stream);
        let mut rw = &*stream;
        let hello = Hello {
            magic: MAGIC,
            version: soam_proto::PROTOCOL_VERSION,
            client: client_name.into(),
        };
        // An agent that refuses this connection (a limit) says why and closes, maybe
        // before reading the hello: its reason is still there to read.
        let sent = frame::write_msg(&mut rw, &hello).await;
        // A socket systemd holds takes connections before (and whether or not) its agent
        // runs: an agent that never comes must not leave the command waiting for good.
        let wait = answer_timeout();
        let welcome: Welcome = match tokio::time::timeout(wait, frame::read_msg(&mut rw)).await {
            Err(_) => {
                return Err(ClientError::NoAgent(format!(
                    "{} took the connection but no agent answered within {} s (a socket systemd holds whose agent does not start? see soamcontrol agent log); SOAM_CONNECT_TIMEOUT sets the wait",
                    socket.display(),
                    wait.as_secs_f64()
                )));
            }
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                let e = sent.err().map(|s| s.to_string()).unwrap_or_else(|| e.to_string());
                return Err(ClientError::Lost(format!("during handshake: {e}")));
            }
        };
        let (agent_version, agent_protocol) = match welcome {
            Welcome::Ok { agent_version, version } => (agent_version, version),
            // Refused at the door (a limit on connections, a uid it does not serve, a
            // protocol it does not speak): the handshake carries text only.
            Welcome::Refused { reason } => return Err(ClientError::refused(ErrorKind::Other, reason)),
        };
        let pending: Pending = Default::default();
        let lost: Arc<Mutex<Option<String>>> = Default::default();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(stream.clone(), out_rx, pending.clone()));
        tokio::spawn(read_loop(stream, pending.clone(), ev_tx, lost.clone()));
        Ok(Client {
            out: out_tx,
            pending,
            events: ev_rx,
            next_id: AtomicU64::new(1),
            lost,
            agent_version,
            agent_protocol,
        })
    }

    fn lost_reason(&self) -> String {
        self.lost.lock().unwrap().clone().unwrap_or_else(|| "the connection closed".into())
    }

    /// Sends a request now; the returned future resolves to its reply.
    pub fn send(&self, req: Request) -> impl std::future::Future<Output = Result<Reply, ClientError>> + use<> {
        let answer = self.send_for(req, false);
        async move {
            match answer.await? {
                Answer::Reply(r) => Ok(r),
                // Only a caller that asked for one is handed a page undecoded.
                Answer::Page(_) => Err(ClientError::refused(ErrorKind::Protocol, "a page nobody asked to read")),
            }
        }
    }

    /// Sends a request now; the future resolves to its answer, a page of sessions
    /// undecoded where `page`.
    fn send_for(&self, req: Request, page: bool) -> impl std::future::Future<Output = Result<Answer, ClientError>> + use<> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, Waiter { tx, page });
        let sent = self.out.send(ClientFrame { id, req }).is_ok();
        // The reader, once the connection ends, records why and then fails every waiter:
        // one that came in after it did would wait for good. Checked after the waiter is
        // in, it is answered here instead (or by the reader, whichever comes first).
        if self.lost.lock().unwrap().is_some()
            && let Some(w) = self.pending.lock().unwrap().remove(&id)
        {
            w.answer(Err(ClientError::Lost(self.lost_reason())));
        }
        let lost = self.lost.clone();
        async move {
            if !sent {
                return Err(ClientError::Lost(lost.lock().unwrap().clone().unwrap_or_default()));
            }
            match rx.await {
                Ok(r) => r,
                Err(_) => Err(ClientError::Lost(
                    lost.lock().unwrap().clone().unwrap_or_else(|| "the connection closed".into()),
                )),
            }
        }
    }

    pub async fn call(&self, req: Request) -> Result<Reply, ClientError> {
        self.send(req).await
    }

    /// Sends a request that has no reply (acknowledgements).
    pub fn notify(&self, req: Request) -> Result<(), ClientError> {
        self.out
            .send(ClientFrame { id: 0, req })
            .map_err(|_| ClientError::Lost(self.lost_reason()))
    }

    /// The next event; `None` once the connection has ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Events already received and not yet taken with [`Client::next_event`].
    pub fn events_waiting(&self) -> usize {
        self.events.len()
    }

    /// Why the connection ended, once it has.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap().clone()
    }

    /// Whether the agent answers listings in pages (protocol 3 on).
    fn pages(&self) -> bool {
        self.agent_protocol >= 3
    }

    /// One page of a session's tasks from `from` (0 first, then the previous page's
    /// `next`); `None` as `next` at the end. A live session's tasks, or an ended one's
    /// kept history with `history`. An agent older than paging answers with
    /// everything at once.
    pub async fn task_page(
        &self,
        session: &SessionRef,
        state: Option<TaskState>,
        history: bool,
        from: u64,
    ) -> Result<(Vec<TaskInfo>, Option<u64>), ClientError> {
        let session = session.clone();
        let req = match (self.pages(), history) {
            (true, false) => Request::ListTasksPage {
                session,
                state,
                from,
                limit: PAGE,
            },
            (true, true) => Request::TaskHistoryPage {
                session,
                from,
                limit: PAGE,
            },
            (false, false) => Request::ListTasks { session, state },
            (false, true) => Request::TaskHistory { session },
        };
        match self.call(req).await? {
            Reply::TaskPage { tasks, next } => Ok((tasks, next)),
            Reply::Tasks(tasks) => Ok((tasks, None)),
            other => Err(unexpected(&other)),
        }
    }

    /// One page of sessions after `from` (`None` first, then the previous `next`).
    pub async fn session_page(
        &self,
        query: &SessionQuery,
        from: Option<(String, u64)>,
    ) -> Result<(Vec<SessionInfo>, Option<(String, u64)>), ClientError> {
        let page = self.send_session_page(query, from).await?;
        let (rows, next) = page.rows()?;
        Ok((rows.iter().map(SessionInfoRef::to_owned).collect(), next))
    }

    /// Asks for a page of sessions now (as [`Client::session_page`]); the future
    /// resolves to it as it came, its rows to be read borrowed ([`SessionPage::rows`]).
    pub fn send_session_page(
        &self,
        query: &SessionQuery,
        from: Option<(String, u64)>,
    ) -> impl std::future::Future<Output = Result<SessionPage, ClientError>> + use<> {
        let req = if self.agent_protocol >= 5 {
            Request::ListSessionsAhead {
                query: query.clone(),
                from,
                limit: SESSION_PAGE,
            }
        } else if self.pages() {
            Request::ListSessionsPage {
                query: query.clone(),
                from,
                limit: SESSION_PAGE,
            }
        } else {
            Request::ListSessions(query.clone())
        };
        let answer = self.send_for(req, true);
        async move {
            match answer.await? {
                Answer::Page(page) => Ok(page),
                // An agent older than pages answers with every session at once.
                Answer::Reply(Reply::Sessions(all)) => Ok(SessionPage::Owned(all)),
                Answer::Reply(other) => Err(unexpected(&other)),
            }
        }
    }

    /// At most `limit` sessions after `from`, and where the next ones start: a window
    /// onto a long listing (`soamview top` asks for what its screen shows). Needs an agent
    /// of protocol 5 or later.
    pub async fn session_window(
        &self,
        query: &SessionQuery,
        from: Option<(String, u64)>,
        limit: u32,
    ) -> Result<(Vec<SessionInfo>, Option<(String, u64)>), ClientError> {
        let req = Request::ListSessionsAhead {
            query: query.clone(),
            from,
            limit,
        };
        match self.send_for(req, true).await? {
            Answer::Page(page) => {
                let (rows, next) = page.rows()?;
                Ok((rows.iter().map(SessionInfoRef::to_owned).collect(), next))
            }
            Answer::Reply(other) => Err(unexpected(&other)),
        }
    }

    /// One page of applications after `from`.
    pub async fn app_page(&self, app: Option<String>, from: Option<String>) -> Result<(Vec<AppInfo>, Option<String>), ClientError> {
        let req = if self.pages() {
            Request::ListAppsPage { app, from, limit: PAGE }
        } else {
            Request::ListApps { app }
        };
        match self.call(req).await? {
            Reply::AppPage { apps, next } => Ok((apps, next)),
            Reply::Apps(apps) => Ok((apps, None)),
            other => Err(unexpected(&other)),
        }
    }
}

/// A reply of another kind than the request's: an agent bug, said without formatting
/// the reply (which may be a whole listing).
pub(crate) fn unexpected(_: &Reply) -> ClientError {
    ClientError::refused(ErrorKind::Protocol, "unexpected reply from the agent")
}

/// Writes requests; one that cannot be sent (over the message size limit) is answered
/// at once with why, instead of leaving its caller waiting for a reply that never comes.
async fn write_loop(stream: Arc<Sock>, mut rx: mpsc::UnboundedReceiver<ClientFrame>, pending: Pending) {
    frame::write_queued_reporting(&*stream, &mut rx, |f, e| {
        let why = match e {
            FrameError::TooLarge(n) => format!(
                "the request is {n} bytes, over the {} MiB message limit; nothing was sent",
                frame::MAX_FRAME >> 20
            ),
            e => format!("the request could not be sent ({e}); nothing was sent"),
        };
        if let Some(w) = pending.lock().unwrap().remove(&f.id) {
            w.answer(Err(ClientError::refused(ErrorKind::Limit, why)));
        }
    })
    .await;
}

async fn read_loop(stream: Arc<Sock>, pending: Pending, events: mpsc::UnboundedSender<Event>, lost: Arc<Mutex<Option<String>>>) {
    // One read takes every frame that has arrived (rather than a read for each length
    // and each body); bodies larger than the buffer are read past it.
    let mut r = tokio::io::BufReader::with_capacity(64 << 10, &*stream);
    let reason = loop {
        let body = match frame::read_frame(&mut r).await {
            Ok(b) => Bytes::from(b),
            Err(FrameError::Closed) => break "the agent closed the connection".to_string(),
            Err(e) => break e.to_string(),
        };
        // A reply's caller is found from the frame's first bytes, before the rest is
        // decoded: one that reads a page of sessions itself gets the page as it came.
        let mut waiter = frame::reply_id(&body)
            .filter(|&id| id != 0)
            .and_then(|id| pending.lock().unwrap().remove(&id));
        if waiter.as_ref().is_some_and(|w| w.page)
            && let Some((at, kind)) = frame::session_page_rows(&body)
        {
            waiter
                .take()
                .unwrap()
                .answer(Ok(Answer::Page(SessionPage::Frame { body, at, kind })));
            continue;
        }
        let f: AgentFrame = match frame::decode_shared(&body) {
            Ok(f) => f,
            Err(e) => {
                let why = e.to_string();
                if let Some(w) = waiter {
                    w.answer(Err(ClientError::Lost(why.clone())));
                }
                break why;
            }
        };
        match f {
            AgentFrame::Reply { id: 0, result: Err(e) } => break format!("the agent closed the connection: {e}"),
            AgentFrame::Reply { result, .. } => {
                if let Some(w) = waiter {
                    w.answer(result.map(Answer::Reply).map_err(|m| ClientError::refused(ErrorKind::Other, m)));
                }
            }
            AgentFrame::Failed { id: 0, message, .. } => break format!("the agent closed the connection: {message}"),
            AgentFrame::Failed { id, kind, message } => {
                if let Some(w) = pending.lock().unwrap().remove(&id) {
                    w.answer(Err(ClientError::Refused { kind, message }));
                }
            }
            AgentFrame::Event(e) => {
                let _ = events.send(e);
            }
        }
    };
    *lost.lock().unwrap() = Some(reason.clone());
    for (_, w) in pending.lock().unwrap().drain() {
        w.answer(Err(ClientError::Lost(reason.clone())));
    }
}
