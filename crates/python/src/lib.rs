//! `soam._native`: soam-client for Python. The pure-Python package (`python/soam`) wraps
//! it in documented, typed classes; nothing here is meant to be called directly.
//!
//! Data flow: one tokio runtime per process ([`runtime`], its threads block every signal
//! and are not Python threads, so they never keep the interpreter alive) runs each
//! session's *pump* (`session.rs`): a task that owns the library's `Session`, carries out
//! what Python asks through a channel (submit, acknowledge, detach/close/abort) and puts
//! what the agent sends into a queue Python threads wait on. Every wait happens with the
//! GIL released, in slices so that Ctrl-C still interrupts it. Errors cross into Python as
//! the exception classes of `soam.errors`, one per kind of `ClientError`.

mod output;
mod session;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use soam_client::ClientError;
use soam_proto::msg::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// Forks since the module was loaded, as seen by this process: a child made by `fork`
/// counts one more than its parent did at that moment. Read on every call that may use
/// the runtime or a session, so it is an atomic, not `getpid` (a system call each time).
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// This process's generation (see [`FORKS`]).
pub(crate) fn generation() -> u64 {
    static HOOK: Once = Once::new();
    // SAFETY: the handler only bumps an atomic, which is async-signal-safe.
    HOOK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forked_child));
    });
    FORKS.load(Ordering::Relaxed)
}

/// The process's runtime: one worker thread (the pumps and the connections' reader and
/// writer tasks are all I/O; a second thread would only contend with Python for a core).
/// A forked child (multiprocessing) inherits the parent's runtime without its threads:
/// it makes its own, and leaves the parent's copy alone (dropping it would wait for
/// threads that do not exist there).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: Mutex<Option<(u64, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
    let now = generation();
    let mut g = RT.lock().unwrap_or_else(|e| e.into_inner());
    match *g {
        Some((made, rt)) if made == now => rt,
        _ => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("soam-client")
                .enable_all()
                .on_thread_start(block_signals)
                .build()
                .expect("the soam client runtime could not start");
            let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
            *g = Some((now, rt));
            rt
        }
    }
}

/// Blocks every signal in a library thread: the program's signals (Ctrl-C above all) go to
/// its own threads, as a Python program expects. Processes started from here (an
/// autostarted agent) get a clean mask from `std::process::Command`.
fn block_signals() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask only changes this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The `soam.errors` class for a kind of failure.
fn error_class(py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
    static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = ERRORS.get_or_try_init(py, || py.import("soam.errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.unbind())
}

/// The exception class name for a client error (see `soam/errors.py`).
fn class_name(e: &ClientError) -> &'static str {
    match e {
        ClientError::NoAgent(_) | ClientError::Lost(_) => "AgentUnreachable",
        ClientError::Refused { kind, .. } => match kind {
            ErrorKind::UnknownApp => "UnknownApplication",
            ErrorKind::UnknownSession => "UnknownSession",
            ErrorKind::UnknownType => "UnknownSessionType",
            ErrorKind::Invalid => "InvalidRequest",
            ErrorKind::Limit => "LimitReached",
            ErrorKind::Permission => "PermissionDenied",
            ErrorKind::StoreFault => "StoreFault",
            ErrorKind::TakenOver => "TakenOver",
            ErrorKind::Ended => "SessionEnded",
            ErrorKind::Other | ErrorKind::Protocol => "SoamError",
        },
    }
}

/// `e` as the Python exception of its kind, carrying the agent's message and its kind's
/// wire name (`.kind`).
pub(crate) fn to_py(e: ClientError) -> PyErr {
    let kind = match &e {
        ClientError::NoAgent(_) => "no-agent",
        ClientError::Lost(_) => "lost",
        ClientError::Refused { kind, .. } => kind.as_str(),
    };
    raise(class_name(&e), kind, e.to_string())
}

/// An exception of `soam.errors`'s class `class`, with `.kind`.
pub(crate) fn raise(class: &str, kind: &str, message: String) -> PyErr {
    Python::attach(|py| match error_class(py, class) {
        Ok(cls) => match cls.bind(py).call1((message.clone(), kind)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(_) => PyRuntimeError::new_err(message),
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PROTOCOL_VERSION", soam_proto::PROTOCOL_VERSION)?;
    m.add_class::<output::Output>()?;
    m.add_class::<session::NativeClient>()?;
    m.add_class::<session::NativeSession>()?;
    m.add_class::<session::OutputIter>()?;
    Ok(())
}
