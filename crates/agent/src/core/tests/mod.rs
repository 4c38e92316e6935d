//! The core alone: a [`Core`] with a recording launcher, in-memory connections and
//! instances and a temporary store, driven message by message as the reactor would
//! drive it (each `turn` is one turn of `crate::reactor`). No socket, no process, no
//! runtime: services are [`Fake`] instances that answer what the core sent them when a
//! test says so, with what the test says.

mod scenarios;

use super::Core;
use crate::config::AgentConfig;
use crate::ports::{
    Client, ClusterEvent, ConnId, CoreMsg, InstCmd, InstEvent, InstId, InstLink, InstanceIn, Launcher, OutMsg, Owner, Timer, WorkerTx, turn,
};
use bytes::Bytes;
use soam_profile::{Service, SlurmOptions};
use soam_proto::addr::SessionRef;
use soam_proto::msg::{AgentFrame, CreateSession, Event, Reply, Request, SessionInfo, SessionQuery, TaskOutput};
use soam_proto::worker::{FromWorker, ToWorker};
use soam_service::wire::{Kind, Status, features};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What the core asked of the launcher, in order.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Start(InstId),
    StartRemote(InstId),
    Timer(Timer),
    Trim,
    CancelLeftovers,
    RequestAlloc(u64),
    StartWorker { worker: u64, job: u64, node: String },
    Poll,
    Cancel(u64),
}

/// One instance as the core sees it: what it was sent, in order, until a test answers.
#[derive(Default)]
struct FakeInstance {
    sent: VecDeque<OutMsg>,
    killed: bool,
    closed: bool,
}

type Instances = Arc<Mutex<BTreeMap<InstId, FakeInstance>>>;

struct Link {
    id: InstId,
    instances: Instances,
}

impl InstanceIn for Link {
    fn send(&self, cmd: InstCmd) -> bool {
        let mut all = self.instances.lock().unwrap();
        let i = all.entry(self.id).or_default();
        if i.closed {
            return false;
        }
        match cmd {
            InstCmd::Send(msgs) => i.sent.extend(msgs),
            InstCmd::Raw(_) => panic!("the core sends messages, not bytes"),
            InstCmd::Kill => i.killed = true,
        }
        true
    }
    fn is_closed(&self) -> bool {
        self.instances.lock().unwrap().get(&self.id).is_none_or(|i| i.closed)
    }
}

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Call>>,
    instances: Instances,
    /// What each worker was sent.
    workers: Mutex<BTreeMap<u64, mpsc::UnboundedReceiver<ToWorker>>>,
    /// Why no worker can be started, when a test says so (as a rendezvous that cannot
    /// listen).
    no_workers: Mutex<Option<String>>,
}

impl Fake {
    fn record(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
    fn link(&self, id: InstId) -> InstLink {
        self.instances.lock().unwrap().insert(id, FakeInstance::default());
        Box::new(Link {
            id,
            instances: self.instances.clone(),
        })
    }
}

/// The core let go of the instance (as the agent's `InstTx` closes its channel).
impl Drop for Link {
    fn drop(&mut self) {
        if let Some(i) = self.instances.lock().unwrap().get_mut(&self.id) {
            i.closed = true;
        }
    }
}

impl Launcher for Fake {
    fn start_instance(&self, id: InstId, _app: &str, _service: Arc<Service>, _owner: Owner) -> (InstLink, Option<u32>) {
        self.record(Call::Start(id));
        (self.link(id), None)
    }
    fn start_remote(&self, id: InstId, _worker: WorkerTx) -> InstLink {
        self.record(Call::StartRemote(id));
        self.link(id)
    }
    fn set_timer(&self, _at: Instant, timer: Timer) {
        self.record(Call::Timer(timer));
    }
    fn trim_memory(&self) {
        self.record(Call::Trim);
    }
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) {
        job();
    }
    fn cancel_leftovers(&self, _job_name: String) {
        self.record(Call::CancelLeftovers);
    }
    fn request_allocation(&self, alloc: u64, _opts: SlurmOptions, _job_name: String) {
        self.record(Call::RequestAlloc(alloc));
    }
    fn start_worker(&self, worker: u64, job: u64, node: &str, _cpus: u32) -> Result<WorkerTx, String> {
        self.record(Call::StartWorker {
            worker,
            job,
            node: node.into(),
        });
        if let Some(why) = self.no_workers.lock().unwrap().clone() {
            return Err(why);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.workers.lock().unwrap().insert(worker, rx);
        Ok(tx)
    }
    fn poll_jobs(&self, _jobs: Vec<u64>) {
        self.record(Call::Poll);
    }
    fn cancel_job(&self, job: u64) {
        self.record(Call::Cancel(job));
    }
    fn cancel_jobs_now(&self, jobs: Vec<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        for j in jobs {
            self.record(Call::Cancel(j));
        }
        Box::pin(async {})
    }
}

/// A connection: every frame the core sent it.
#[derive(Default)]
struct MemOut {
    frames: Mutex<Vec<AgentFrame>>,
}

impl Client for MemOut {
    fn send(&self, f: AgentFrame) -> bool {
        self.frames.lock().unwrap().push(f);
        true
    }
    fn send_encoded(&self, _id: u64, _frame: Vec<u8>) -> bool {
        panic!("these tests list with requests answered by plain replies")
    }
    fn full(&self) -> bool {
        false
    }
    fn room_or_notify(&self) -> bool {
        true
    }
}

/// How a fake service answers one message.
enum Answer {
    /// As a working service does: success, the Invoke's input as its output.
    Echo,
    Fail(&'static str),
    /// Not now: it and everything sent after it wait.
    Hold,
}

/// The core under test and everything around it.
struct H {
    core: Option<Core>,
    rx: mpsc::UnboundedReceiver<CoreMsg>,
    fake: Arc<Fake>,
    conns: BTreeMap<ConnId, Arc<MemOut>>,
    next_req: u64,
    dir: tempfile::TempDir,
    _shutdown: watch::Sender<bool>,
}

/// Longest a test waits for the store's commit callbacks.
const WAIT: Duration = Duration::from_secs(10);

impl H {
    fn new() -> H {
        Self::open(tempfile::tempdir().unwrap())
    }

    /// A core whose agent settings `set` changes first (limits, say).
    fn with(set: impl FnOnce(&mut AgentConfig)) -> H {
        Self::open_with(tempfile::tempdir().unwrap(), set)
    }

    /// A core over the store in `dir` (a fresh one, or one a dropped core left).
    fn open(dir: tempfile::TempDir) -> H {
        Self::open_with(dir, |_| {})
    }

    fn open_with(dir: tempfile::TempDir, set: impl FnOnce(&mut AgentConfig)) -> H {
        let paths = soam_proto::paths::Paths {
            socket: dir.path().join("soamd.sock"),
            data_dir: dir.path().join("data"),
            config: dir.path().join("soamd.yaml"),
        };
        std::fs::create_dir_all(&paths.data_dir).unwrap();
        let mut cfg = AgentConfig::with_paths(paths);
        // One slot: one instance at a time, so which task runs where is plain.
        cfg.slots = 1;
        set(&mut cfg);
        let (store, loaded) = soam_store::Store::open_with(&cfg.paths.store(), 1 << 20, super::recovered_task).unwrap();
        let (inbox, rx) = crate::ports::inbox();
        let fake = Arc::new(Fake::default());
        let (shutdown, _) = watch::channel(false);
        let core = Core::new(cfg, store, loaded, inbox.clone(), fake.clone(), shutdown.clone());
        H {
            core: Some(core),
            rx,
            fake,
            conns: BTreeMap::new(),
            next_req: 1,
            dir,
            _shutdown: shutdown,
        }
    }

    /// Closes the store as the agent does at its end (no shutdown of instances: as
    /// after a kill), and starts a new core on it.
    fn restart(mut self) -> H {
        let core = self.core.take().unwrap();
        core.close().close();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        H::open(dir)
    }

    /// One turn of the core: these messages, then the turn's end.
    fn turn(&mut self, msgs: impl IntoIterator<Item = CoreMsg>) {
        turn::begin();
        let core = self.core.as_mut().unwrap();
        for m in msgs {
            core.handle(m);
        }
        core.end_turn();
        turn::end();
    }

    /// Handles what reached the inbox (commit callbacks) until none is left.
    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.turn([m]);
        }
    }

    /// Runs turns for what reaches the inbox until `done` holds.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut H) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.drain();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "still waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn connect(&mut self, conn: ConnId) {
        let out = Arc::new(MemOut::default());
        self.conns.insert(conn, out.clone());
        self.turn([CoreMsg::Connected {
            conn,
            out,
            uid: 0,
            admin: true,
            run_as: None,
            pid: None,
            client: "test".into(),
        }]);
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.turn([CoreMsg::Disconnected { conn }]);
    }

    /// Sends `req` on `conn` and waits for its answer.
    fn ask(&mut self, conn: ConnId, req: Request) -> Result<Reply, String> {
        let id = self.next_req;
        self.next_req += 1;
        self.turn([CoreMsg::Request { conn, id, req }]);
        let mut answer = None;
        self.until("a reply", |h| {
            answer = h.take_reply(conn, id);
            answer.is_some()
        });
        answer.unwrap()
    }

    /// Sends `req` on `conn` without waiting for an answer (an Ack has none).
    fn tell(&mut self, conn: ConnId, req: Request) {
        let id = self.next_req;
        self.next_req += 1;
        self.turn([CoreMsg::Request { conn, id, req }]);
    }

    fn take_reply(&self, conn: ConnId, id: u64) -> Option<Result<Reply, String>> {
        let mut frames = self.conns[&conn].frames.lock().unwrap();
        let at = frames
            .iter()
            .position(|f| matches!(f, AgentFrame::Reply { id: i, .. } | AgentFrame::Failed { id: i, .. } if *i == id))?;
        match frames.remove(at) {
            AgentFrame::Reply { result, .. } => Some(result),
            AgentFrame::Failed { message, .. } => Some(Err(message)),
            AgentFrame::Event(_) => unreachable!(),
        }
    }

    /// The events `conn` got so far (taken).
    fn events(&self, conn: ConnId) -> Vec<Event> {
        let mut frames = self.conns[&conn].frames.lock().unwrap();
        let (events, rest): (Vec<_>, Vec<_>) = frames.drain(..).partition(|f| matches!(f, AgentFrame::Event(_)));
        *frames = rest;
        events
            .into_iter()
            .map(|f| match f {
                AgentFrame::Event(e) => e,
                _ => unreachable!(),
            })
            .collect()
    }

    /// Outputs `conn` was sent so far, by task; acknowledges them.
    fn outputs(&mut self, conn: ConnId, session: &str) -> Vec<TaskOutput> {
        let mut out = Vec::new();
        for e in self.events(conn) {
            if let Event::Outputs { outputs, .. } = e {
                out.extend(outputs);
            }
        }
        if !out.is_empty() {
            let tasks = out.iter().map(|o| o.task).collect();
            self.tell(
                conn,
                Request::Ack {
                    session: sref(session),
                    tasks,
                },
            );
        }
        out.sort_by_key(|o| o.task);
        out
    }

    fn register(&mut self, conn: ConnId, profile: &str) {
        let path = self.dir.path().join("profile.yaml");
        std::fs::write(&path, profile).unwrap();
        let r = self.ask(
            conn,
            Request::RegisterApp {
                profile: profile.into(),
                path: path.display().to_string(),
                force: false,
            },
        );
        assert!(matches!(r, Ok(Reply::Registered { .. })), "{r:?}");
    }

    /// Creates a session of `stype` held by `conn`; its `APP:ID`.
    fn create(&mut self, conn: ConnId, app: &str, stype: &str) -> Result<String, String> {
        let r = self.ask(
            conn,
            Request::CreateSession(CreateSession {
                app: app.into(),
                session_type: Some(stype.into()),
                name: None,
                tag: None,
                common_data: Bytes::new(),
                direct: false,
                attach: true,
            }),
        )?;
        match r {
            Reply::Session(s) => Ok(format!("{}:{}", s.app, s.id)),
            other => panic!("a create answered {other:?}"),
        }
    }

    fn submit(&mut self, conn: ConnId, session: &str, inputs: &[&str]) {
        let tasks = inputs.iter().map(|t| Bytes::from(t.to_string())).collect();
        let r = self.ask(
            conn,
            Request::Submit {
                session: sref(session),
                tasks,
            },
        );
        assert!(matches!(r, Ok(Reply::Submitted { .. })), "{r:?}");
    }

    /// Every session, open and ended, as `soamview session -a` lists them.
    fn sessions(&mut self, conn: ConnId) -> Vec<SessionInfo> {
        let q = SessionQuery {
            all: true,
            ..SessionQuery::default()
        };
        match self.ask(conn, Request::ListSessions(q)) {
            Ok(Reply::Sessions(s)) => s,
            other => panic!("a listing answered {other:?}"),
        }
    }

    fn session(&mut self, conn: ConnId, session: &str) -> SessionInfo {
        let r = sref(session);
        let found = self
            .sessions(conn)
            .into_iter()
            .find(|s| s.app == r.app && r.key.to_string() == s.id.to_string());
        found.unwrap_or_else(|| panic!("no session {session}"))
    }

    fn calls(&self) -> Vec<Call> {
        self.fake.calls.lock().unwrap().clone()
    }

    fn started(&self) -> Vec<InstId> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Start(i) | Call::StartRemote(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    /// Timers set so far, as the launcher was asked.
    fn timers(&self) -> Vec<Timer> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Timer(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// Fires the last timer set that `pick` selects.
    fn fire(&mut self, pick: impl Fn(&Timer) -> bool) {
        let t = self.timers().into_iter().rev().find(pick).expect("no such timer was set");
        self.turn([CoreMsg::Timer(t)]);
    }

    /// Each live instance answers what it was sent, in order, as `answer` says, until
    /// it holds one or has answered everything; repeated until nothing more is
    /// answered. Returns the Invokes answered (task, attempt).
    fn serve(&mut self, answer: impl Fn(&OutMsg) -> Answer) -> Vec<(u64, u32)> {
        let mut invoked = Vec::new();
        loop {
            let mut replies = Vec::new();
            {
                let mut all = self.fake.instances.lock().unwrap();
                for (&id, inst) in all.iter_mut() {
                    if inst.closed || inst.killed {
                        continue;
                    }
                    while let Some(m) = inst.sent.front() {
                        let (status, payload) = match answer(m) {
                            Answer::Hold => break,
                            Answer::Echo if m.kind == Kind::Invoke => (Status::Success, m.payload.clone()),
                            Answer::Echo => (Status::Success, Bytes::new()),
                            Answer::Fail(why) => (Status::Failure, Bytes::from(why)),
                        };
                        let m = inst.sent.pop_front().unwrap();
                        if m.kind == Kind::Invoke {
                            invoked.push((m.task, m.attempt));
                        }
                        // A working service says which features it has in the
                        // CreateService reply's attempt field, as soam_service does.
                        let attempt = match m.kind {
                            Kind::CreateService if status == Status::Success => features::EARLY_INVOKES,
                            _ => m.attempt,
                        };
                        let ev = InstEvent::Reply {
                            kind: m.kind,
                            status,
                            task: m.task,
                            attempt,
                            code: 0,
                            payload,
                        };
                        replies.push(CoreMsg::Instance { inst: id, ev });
                    }
                }
            }
            if replies.is_empty() {
                return invoked;
            }
            self.turn(replies);
            self.drain();
        }
    }

    /// Invokes an instance was sent and has not answered: (task, attempt).
    fn running(&self) -> Vec<(InstId, u64, u32)> {
        let all = self.fake.instances.lock().unwrap();
        let mut r = Vec::new();
        for (&id, i) in all.iter().filter(|(_, i)| !i.closed && !i.killed) {
            r.extend(i.sent.iter().filter(|m| m.kind == Kind::Invoke).map(|m| (id, m.task, m.attempt)));
        }
        r
    }

    fn killed(&self, inst: InstId) -> bool {
        self.fake.instances.lock().unwrap()[&inst].killed
    }

    /// The instance's process ends (`why`), as its task reports it.
    fn exit(&mut self, inst: InstId, why: &str) {
        self.fake.instances.lock().unwrap().get_mut(&inst).unwrap().closed = true;
        self.turn([CoreMsg::Instance {
            inst,
            ev: InstEvent::Exited { why: why.into() },
        }]);
    }

    fn cluster(&mut self, ev: ClusterEvent) {
        self.turn([CoreMsg::Cluster(ev)]);
    }

    /// Worker `worker` of `job` says hello from `node` (2 CPUs).
    fn worker_up(&mut self, worker: u64, node: &str, job: u64) {
        let msg = FromWorker::Hello {
            token: String::new(),
            node: node.into(),
            cpus: 2,
            job,
            pid: 1,
        };
        self.cluster(ClusterEvent::WorkerMsg { worker, msg });
    }

    /// `conn` opens (takes) `session`: how many outputs wait for it.
    fn reopen(&mut self, conn: ConnId, session: &str) -> u64 {
        let req = Request::OpenSession {
            session: sref(session),
            direct: false,
            all: false,
        };
        match self.ask(conn, req) {
            Ok(Reply::Opened { to_deliver, .. }) => to_deliver,
            other => panic!("an open answered {other:?}"),
        }
    }
}

fn sref(s: &str) -> SessionRef {
    s.parse().unwrap()
}

/// Everything the profile needs but the session types, which each test gives.
fn profile(types: &str) -> String {
    format!(
        "application: app\nconsumer:\n  transientDisconnectionTimeout: 5\nservices:\n  - name: svc\n    command: [\"/bin/true\"]\nsessionTypes:\n  - name: \"\"\n{types}"
    )
}
