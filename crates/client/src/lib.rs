//! The client side of soam, used by every command and usable by any Rust program.
//!
//! Data flow: [`Client::connect`] finds the agent's socket (starting `soamd` when none
//! answers, unless `SOAM_NO_AUTOSTART=1`), runs the handshake, and splits into a writer
//! task (requests out, coalesced) and a reader task (replies matched to their request by
//! id, events into a channel; a page of sessions goes to its caller as the frame it came
//! in, read there with its text borrowed: [`each_session_page`]). Requests can be
//! pipelined: [`Client::send`] returns a future for the reply without waiting for it.
//! [`Dedup`] drops outputs already seen, as at-least-once delivery means a reopened
//! session may resend some.

pub mod journal;
pub mod session;

use bytes::Bytes;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use soam_proto::SessionRef;
use soam_proto::frame::{self, FrameError, PageKind};
use soam_proto::msg::{
    AgentFrame, AppInfo, ClientFrame, ErrorKind, Event, Hello, MAGIC, Reply, Request, SessionInfo, SessionInfoRef, SessionQuery, TaskInfo,
    TaskState, Welcome,
};
use soam_proto::paths::Paths;
use soam_proto::sock::Sock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No agent answers and none could be started.
    #[error("{0}")]
    NoAgent(String),
    /// The request was refused (by the agent, or before it was sent): what kind of
    /// failure, for a program to act on, and the one-line reason, for a person.
    #[error("{message}")]
    Refused { kind: ErrorKind, message: String },
    /// The connection broke.
    #[error("connection to the agent lost: {0}")]
    Lost(String),
}

impl ClientError {
    pub fn refused(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError::Refused {
            kind,
            message: message.into(),
        }
    }

    /// The kind of a refusal; `None` when no agent answered or the connection broke.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Refused { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub socket: PathBuf,
    pub paths: Paths,
    /// Start `soamd` if nobody answers.
    pub autostart: bool,
    /// Shown by the agent as the holder of sessions ("soamsession submit").
    pub client_name: String,
}

impl ConnectOptions {
    /// Paths from the environment; `socket` overrides (`--socket`).
    pub fn from_env(client_name: &str, socket: Option<PathBuf>) -> ConnectOptions {
        let paths = Paths::from_env();
        let autostart = !matches!(std::env::var("SOAM_NO_AUTOSTART").as_deref(), Ok("1") | Ok("true") | Ok("yes"));
        ConnectOptions {
            socket: socket.unwrap_or_else(|| paths.socket.clone()),
            paths,
            autostart,
            client_name: client_name.into(),
        }
    }
}

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

/// Where the agent binary is: `SOAM_AGENT_BIN`, next to this program, or on PATH.
fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SOAM_AGENT_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("soamd");
        if sibling.is_file() {
            return sibling;
        }
        // Test binaries live in target/*/deps; the agent one level up.
        if let Some(up) = exe.parent().and_then(|p| p.parent()).map(|p| p.join("soamd"))
            && up.is_file()
        {
            return up;
        }
    }
    PathBuf::from("soamd")
}

fn start_agent(opts: &ConnectOptions) -> Result<std::process::Child, ClientError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    let data = &opts.paths.data_dir;
    // Private from the start: the agent checks it again and refuses one others own.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(|e| ClientError::NoAgent(format!("cannot create {}: {e}", data.display())))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(opts.paths.log())
        .map_err(|e| ClientError::NoAgent(format!("cannot open {}: {e}", opts.paths.log().display())))?;
    let bin = agent_binary();
    let mut cmd = std::process::Command::new(&bin);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| ClientError::NoAgent(e.to_string()))?)
        .stderr(log)
        .env("SOAM_SOCKET", &opts.socket);
    // SAFETY: setsid, sigemptyset and pthread_sigmask are async-signal-safe. The child
    // leaves our session so it outlives this command and is not hit by the terminal's
    // Ctrl-C; it starts with no signal blocked, whatever the thread that started it had
    // blocked (the Python package's library threads block every signal), or it would
    // never see SIGTERM.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        ClientError::NoAgent(format!(
            "no agent answers on {} and starting {} failed: {e}",
            opts.socket.display(),
            bin.display()
        ))
    })
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

/// The uids whose agent this client talks to: its own, root's, and the shared agent's
/// named by `SOAM_AGENT_UID` (a uid or a user name).
fn trusted_agent_uids() -> Result<Vec<u32>, ClientError> {
    // SAFETY: getuid has no preconditions.
    let mut uids = vec![unsafe { libc::getuid() }, 0];
    if let Some(v) = std::env::var_os("SOAM_AGENT_UID").filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy().into_owned();
        let uid = match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => nix::unistd::User::from_name(&v)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
                .ok_or_else(|| ClientError::NoAgent(format!("SOAM_AGENT_UID: no user named '{v}'")))?,
        };
        uids.push(uid);
    }
    Ok(uids)
}

/// Refuses a socket served by anyone else: whoever could create the socket path could
/// otherwise collect this user's tasks and answer with anything (SO_PEERCRED names the
/// process that listens, as the kernel saw it).
fn check_agent_uid(stream: &Stream, socket: &Path) -> Result<(), ClientError> {
    let creds = stream
        .peer_creds()
        .map_err(|e| ClientError::NoAgent(format!("cannot tell who serves {}: {e}", socket.display())))?;
    let uid = creds.euid().unwrap_or(u32::MAX);
    if trusted_agent_uids()?.contains(&uid) {
        return Ok(());
    }
    Err(ClientError::refused(
        ErrorKind::Permission,
        format!(
            "refusing to talk to {}: it is served by uid {uid}, not by you, root or SOAM_AGENT_UID",
            socket.display()
        ),
    ))
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

/// Rows asked for per page: a page of pending tasks encodes to well under a MiB, and the
/// agent serves other clients between pages.
const PAGE: u32 = 20_000;
/// Sessions asked for per page: fewer than tasks, so that a listing of 10,000 sessions
/// comes in several pages, the agent building the next while the caller prints one (see
/// [`each_page`]).
const SESSION_PAGE: u32 = 1_000;

/// Walks a listing from its first page to its last: `fetch` gets where to start (`None`
/// first, then the previous page's `next`) and `each` every page, with whether it is the
/// last. Stops at the first error of either. The next page is asked for before `each`
/// gets this one, so the agent and the caller work at once.
///
/// ```no_run
/// # async fn f(client: &soam_client::Client, q: soam_proto::msg::SessionQuery) -> Result<(), soam_client::ClientError> {
/// let mut n = 0;
/// soam_client::each_page(
///     async |from| client.session_page(&q, from).await,
///     |page, _last| {
///         n += page.len();
///         Ok::<_, soam_client::ClientError>(())
///     },
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn each_page<C, T, E: From<ClientError>>(
    mut fetch: impl AsyncFnMut(Option<C>) -> Result<(Vec<T>, Option<C>), ClientError>,
    mut each: impl FnMut(Vec<T>, bool) -> Result<(), E>,
) -> Result<(), E> {
    use std::task::Poll;
    let (mut page, mut next) = fetch(None).await?;
    loop {
        let Some(from) = next else {
            return each(page, true);
        };
        // The next page is asked for before this one is handed over, so that the agent
        // builds it while the caller works on this one: the request is queued by the
        // first poll, and written by the connection's writer task when this task
        // yields.
        let mut ahead = std::pin::pin!(fetch(Some(from)));
        let early = std::future::poll_fn(|cx| Poll::Ready(ahead.as_mut().poll(cx))).await;
        tokio::task::yield_now().await;
        each(page, false)?;
        (page, next) = match early {
            Poll::Ready(r) => r?,
            Poll::Pending => ahead.await?,
        };
    }
}

/// A page of sessions as it came ([`Client::send_session_page`]).
pub enum SessionPage {
    /// A page frame's body, the page's own fields from `at` on, laid out as `kind`.
    Frame { body: Bytes, at: usize, kind: PageKind },
    /// Every session at once, from an agent older than pages.
    Owned(Vec<SessionInfo>),
}

impl SessionPage {
    /// Its rows, their text borrowed from the page, and where the next page starts
    /// (`None`: this is the last).
    pub fn rows(&self) -> Result<frame::SessionRows<'_>, ClientError> {
        match self {
            SessionPage::Frame { body, at, kind } => frame::decode_session_rows(&body[*at..], *kind).map_err(malformed_page),
            SessionPage::Owned(all) => Ok((all.iter().map(SessionInfo::view).collect(), None)),
        }
    }

    /// Where the next page starts, when the page says so before its rows (an agent of
    /// protocol 5 and later): `None` when only [`Self::rows`] can tell.
    pub fn next_first(&self) -> Option<Result<Option<(String, u64)>, ClientError>> {
        match self {
            SessionPage::Frame { body, at, kind } => frame::session_page_next(&body[*at..], *kind).map(|n| n.map_err(malformed_page)),
            SessionPage::Owned(_) => Some(Ok(None)),
        }
    }
}

fn malformed_page(e: FrameError) -> ClientError {
    ClientError::refused(ErrorKind::Protocol, format!("a malformed page from the agent: {e}"))
}

/// [`each_page`] for sessions, with each page's rows borrowed from the frame it came
/// in: `each` gets every page's rows (matching `query`) and whether it is the last.
pub async fn each_session_page<E: From<ClientError>>(
    client: &Client,
    query: &SessionQuery,
    mut each: impl FnMut(&[SessionInfoRef<'_>], bool) -> Result<(), E>,
) -> Result<(), E> {
    let mut ahead = client.send_session_page(query, None);
    loop {
        let page = ahead.await?;
        // The next page is asked for before this one is handed over (see `each_page`),
        // and before its rows are read when the page says first where the next starts;
        // the yield lets the writer task send the request.
        let early = match page.next_first().transpose()? {
            Some(Some(from)) => {
                let asked = client.send_session_page(query, Some(from));
                tokio::task::yield_now().await;
                Some(asked)
            }
            _ => None,
        };
        let (rows, next) = page.rows()?;
        let Some(from) = next else {
            return each(&rows, true);
        };
        ahead = match early {
            Some(asked) => asked,
            None => {
                let asked = client.send_session_page(query, Some(from));
                tokio::task::yield_now().await;
                asked
            }
        };
        each(&rows, false)?;
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

/// Remembers which task ids were seen, so duplicates of at-least-once delivery are
/// dropped. A bitmap: one bit per task id.
#[derive(Debug, Default)]
pub struct Dedup {
    bits: Vec<u64>,
}

impl Dedup {
    /// True the first time `task` is seen.
    pub fn first(&mut self, task: u64) -> bool {
        let (w, b) = ((task / 64) as usize, task % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let new = self.bits[w] & (1 << b) == 0;
        self.bits[w] |= 1 << b;
        new
    }
}

/// Splits inputs into `Submit`-sized batches (count and bytes), keeping order.
pub fn batches(inputs: Vec<Bytes>, max_tasks: usize) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for i in inputs {
        if !cur.is_empty() && (cur.len() >= max_tasks || bytes + i.len() + 16 > frame::BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += i.len() + 16;
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
