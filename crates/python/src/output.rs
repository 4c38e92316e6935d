//! `soam.Output`: one finished task as Python sees it. The output's bytes stay in the
//! frame they came in until Python asks for them (`.data`, `.error`), so a program that
//! only counts outputs never copies them.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use soam_proto::msg::{TaskOutput, TaskState};

/// A finished task: ``task`` (its id), ``state`` (``"done"``, ``"error"`` or
/// ``"canceled"``), ``data`` (the output's bytes when done, else ``b""``), ``error`` (the
/// failure message when not done, else ``None``), ``attempts`` and ``ok``.
///
/// >>> for out in session.outputs():            # doctest: +SKIP
/// ...     print(out.task, out.data if out.ok else out.error)
#[pyclass(frozen, module = "soam", name = "Output")]
pub struct Output {
    task: u64,
    state: TaskState,
    attempts: u32,
    data: Bytes,
}

impl From<TaskOutput> for Output {
    fn from(o: TaskOutput) -> Output {
        Output {
            task: o.task,
            state: o.state,
            attempts: o.attempts,
            data: o.data,
        }
    }
}

#[pymethods]
impl Output {
    /// The task's id in its session (ids follow submission order).
    #[getter]
    fn task(&self) -> u64 {
        self.task
    }

    /// ``"done"``, ``"error"`` or ``"canceled"``.
    #[getter]
    fn state(&self) -> &'static str {
        self.state.as_str()
    }

    /// How many attempts the task took.
    #[getter]
    fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the task is done (its output is ``data``).
    #[getter]
    fn ok(&self) -> bool {
        self.state == TaskState::Done
    }

    /// The output's bytes for a done task; ``b""`` otherwise. Each access makes a new
    /// ``bytes``: keep it in a variable rather than reading it twice.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        if self.state == TaskState::Done {
            PyBytes::new(py, &self.data)
        } else {
            PyBytes::new(py, b"")
        }
    }

    /// The output as text (UTF-8, undecodable bytes replaced); ``""`` unless done.
    fn text(&self) -> String {
        if self.state == TaskState::Done {
            String::from_utf8_lossy(&self.data).into_owned()
        } else {
            String::new()
        }
    }

    /// The failure message (the service's, or the agent's) for a task in error or
    /// canceled; ``None`` for a done one.
    #[getter]
    fn error(&self) -> Option<String> {
        (self.state != TaskState::Done).then(|| String::from_utf8_lossy(&self.data).into_owned())
    }

    fn __repr__(&self) -> String {
        let body = String::from_utf8_lossy(&self.data[..self.data.len().min(40)]).into_owned();
        let more = if self.data.len() > 40 { "..." } else { "" };
        match self.state {
            TaskState::Done => format!("Output(task={}, state='done', data={body:?}{more})", self.task),
            s => format!("Output(task={}, state='{}', error={body:?}{more})", self.task, s.as_str()),
        }
    }
}
