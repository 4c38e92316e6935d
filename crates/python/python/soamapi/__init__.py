"""IBM Spectrum Symphony's Python API (``soamapi``) on soam: Symphony clients and services
written against it run on soam unchanged. docs/python.md ("soamapi") says how each call
maps onto soam and where soam's behaviour differs.

Client::

    import soamapi
    soamapi.initialize()
    conn = soamapi.connect("SampleApp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    attrs = soamapi.SessionCreationAttributes()
    attrs.set_session_type("")
    session = conn.create_session(attrs)
    task = soamapi.TaskSubmissionAttributes()
    msg = soamapi.DefaultTextMessage()
    msg.set_text("hello")
    task.set_task_input(msg)
    session.send_task_input(task)
    for out in session.fetch_task_output(1, 60):
        reply = soamapi.DefaultTextMessage()
        out.populate_task_output(reply)
    session.close()
    conn.close()
    soamapi.uninitialize()

Service::

    class MyService(soamapi.ServiceContainer):
        def on_invoke(self, task_context):
            msg = soamapi.DefaultTextMessage()
            task_context.populate_task_input(msg)
            task_context.set_task_output(msg)

    MyService().run()

Importing this module does nothing else: no thread, no connection, nothing compiled (the
client's compiled part is loaded by :func:`connect`), so a service runs where only the
pure-Python files are (the agent provides them on every instance's ``PYTHONPATH``).
"""

from __future__ import annotations

import array
import builtins
import logging
import signal
import struct
import threading
import time
import traceback
import uuid
from typing import Any, List, Optional

from soam import service as _service

__all__ = [
    "initialize",
    "uninitialize",
    "connect",
    "Connection",
    "Session",
    "SessionCallback",
    "SessionCreationAttributes",
    "SessionOpenAttributes",
    "SessionFlags",
    "SessionCloseFlags",
    "TaskSubmissionAttributes",
    "TaskInputHandle",
    "TaskOutputHandle",
    "Message",
    "DefaultTextMessage",
    "DefaultBinaryMessage",
    "InputStream",
    "OutputStream",
    "SoamException",
    "FailureException",
    "FatalException",
    "ServiceException",
    "DefaultSecurityCallback",
    "ServiceContainer",
    "ServiceContext",
    "SessionContext",
    "TaskContext",
]

_log = logging.getLogger("soamapi")

# ---------------------------------------------------------------------------------------
# Exceptions


class SoamException(Exception):
    """Symphony's exception. ``get_embedded_exception()`` is, for a failed task, the
    exception its service raised (None when the middleware failed the task itself)."""

    def __init__(self, message: str = "", embedded: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self._embedded = embedded

    def get_embedded_exception(self) -> Optional[BaseException]:
        return self._embedded

    def __reduce__(self):  # type: ignore[override]
        return (type(self), (str(self), self._embedded))


class FailureException(SoamException, _service.RetryableError):
    """Raised by a service: the task failed and is retried (up to ``taskRetryLimit``)."""


class FatalException(SoamException, _service.FatalError):
    """Raised by a service: the task fails at once, never retried."""


class ServiceException(Exception):
    """Stands in for an exception a service raised whose class the client cannot make
    (one defined in the service's own code): ``type_name``, ``message`` and ``traceback``
    (the service's, as text) are kept, and ``str()`` reads as the original did."""

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __reduce__(self):  # type: ignore[override]
        return (type(self), (self.type_name, self.message, self.traceback))


def _embedded(text: str) -> Optional[BaseException]:
    """The exception a service raised, rebuilt from the traceback it sent; None when the
    failure is the middleware's (no traceback)."""
    if not text.startswith("Traceback (most recent call last):"):
        return None
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    type_name, _, message = last.partition(": ")
    short = type_name.rsplit(".", 1)[-1]
    cls: Optional[type] = {"FailureException": FailureException, "FatalException": FatalException}.get(short)
    if cls is None:
        found = getattr(builtins, short, None)
        if isinstance(found, type) and issubclass(found, Exception) and type_name == short:
            cls = found
    exc: BaseException
    try:
        exc = cls(message) if cls is not None else ServiceException(type_name, message, text)
    except Exception:
        exc = ServiceException(type_name, message, text)
    # The service's traceback travels with the exception (and pickles with it).
    setattr(exc, "service_traceback", text)
    return exc


# ---------------------------------------------------------------------------------------
# Messages and streams. A stream is a sequence of fields without tags: they are read back
# in the order written. Byte arrays and strings carry a u32 length; numbers are
# little-endian.


class OutputStream:
    """What ``Message.on_serialize`` writes into."""

    def __init__(self) -> None:
        self._parts: List[bytes] = []

    def write_byte_array(self, array_: Any, offset: int = 0, length: Optional[int] = None) -> None:
        data = memoryview(array_).cast("B")
        if length is None:
            length = len(data) - offset
        chunk = data[offset : offset + length]
        self._parts.append(struct.pack("<I", len(chunk)))
        self._parts.append(chunk.tobytes())

    def write_bytes(self, data: bytes) -> None:
        self._parts.append(struct.pack("<I", len(data)))
        self._parts.append(bytes(data))

    def write_string(self, s: str) -> None:
        b = s.encode("utf-8")
        self._parts.append(struct.pack("<I", len(b)))
        self._parts.append(b)

    def write_int(self, v: int) -> None:
        self._parts.append(struct.pack("<i", v))

    def write_long(self, v: int) -> None:
        self._parts.append(struct.pack("<q", v))

    def write_bool(self, v: bool) -> None:
        self._parts.append(b"\x01" if v else b"\x00")

    write_boolean = write_bool

    def write_byte(self, v: int) -> None:
        self._parts.append(struct.pack("<b", v))

    def write_float(self, v: float) -> None:
        self._parts.append(struct.pack("<f", v))

    def write_double(self, v: float) -> None:
        self._parts.append(struct.pack("<d", v))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class InputStream:
    """What ``Message.on_deserialize`` reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise SoamException(f"message ends after {len(self._data)} bytes; {end} needed")
        b = self._data[self._pos : end]
        self._pos = end
        return b

    def _len(self) -> int:
        return struct.unpack("<I", self._take(4))[0]

    def read_byte_array(self, typecode: str = "b") -> "array.array[int]":
        a = array.array(typecode)
        a.frombytes(self._take(self._len()))
        return a

    def read_bytes(self) -> bytes:
        return self._take(self._len())

    def read_string(self) -> str:
        return self._take(self._len()).decode("utf-8")

    def read_int(self) -> int:
        return struct.unpack("<i", self._take(4))[0]

    def read_long(self) -> int:
        return struct.unpack("<q", self._take(8))[0]

    def read_bool(self) -> bool:
        return self._take(1) != b"\x00"

    read_boolean = read_bool

    def read_byte(self) -> int:
        return struct.unpack("<b", self._take(1))[0]

    def read_float(self) -> float:
        return struct.unpack("<f", self._take(4))[0]

    def read_double(self) -> float:
        return struct.unpack("<d", self._take(8))[0]


class Message:
    """A task's input or output, or a session's common data. Subclasses override
    ``on_serialize(stream)`` and ``on_deserialize(stream)``; calling
    ``super().__init__()`` is not needed."""

    def on_serialize(self, stream: OutputStream) -> None:
        raise SoamException(f"{type(self).__name__} does not define on_serialize")

    def on_deserialize(self, stream: InputStream) -> None:
        raise SoamException(f"{type(self).__name__} does not define on_deserialize")


class DefaultTextMessage(Message):
    """A message of one string."""

    def __init__(self, text: str = "") -> None:
        self._text = text

    def set_text(self, text: str) -> None:
        self._text = text

    def get_text(self) -> str:
        return getattr(self, "_text", "")

    def on_serialize(self, stream: OutputStream) -> None:
        stream.write_string(self.get_text())

    def on_deserialize(self, stream: InputStream) -> None:
        self._text = stream.read_string()


class DefaultBinaryMessage(Message):
    """A message of one byte array."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytes(data)

    def set_data(self, data: bytes) -> None:
        self._data = bytes(data)

    def get_data(self) -> bytes:
        return getattr(self, "_data", b"")

    def on_serialize(self, stream: OutputStream) -> None:
        stream.write_bytes(self.get_data())

    def on_deserialize(self, stream: InputStream) -> None:
        self._data = stream.read_bytes()


def _serialize(message: Message) -> bytes:
    out = OutputStream()
    message.on_serialize(out)
    return out.getvalue()


def _deserialize(message: Message, data: bytes) -> None:
    message.on_deserialize(InputStream(data))


# ---------------------------------------------------------------------------------------
# Client: attributes, flags, handles


class SessionFlags:
    RECEIVE_SYNC = 0x1
    PARTIAL_ASYNC = 0x2
    RECEIVE_ASYNC = 0x4
    SEND_SYNC = 0x8
    FETCH_RESULTS_DIRECTLY = 0x10
    ALIAS_SESSION = 0x0  # accepted, nothing to do on soam


class SessionCloseFlags:
    DESTROY_ON_CLOSE = 0x1
    DETACH_ON_CLOSE = 0x2


class DefaultSecurityCallback:
    """Credentials: accepted and not used (the agent knows its users by their uid)."""

    def __init__(self, user: str = "", password: str = "") -> None:
        self.user = user
        self.password = password


class SessionCallback:
    """Receives a ``PARTIAL_ASYNC`` session's results on the library's threads:
    ``on_response(output_handle)`` for each finished task, ``on_exception(exc)`` once when
    the session fails (ended by an admin, taken over, the agent lost). An exception raised
    here is logged (logger ``soamapi``) and the session goes on."""

    def on_response(self, task_output_handle: "TaskOutputHandle") -> None:
        pass

    def on_exception(self, exception: "SoamException") -> None:
        pass


class SessionCreationAttributes:
    def __init__(self) -> None:
        self.name: Optional[str] = None
        self.type = ""
        self.flags = SessionFlags.RECEIVE_SYNC
        self.callback: Optional[SessionCallback] = None
        self.max_services = 0
        self.common_data: Optional[Message] = None
        self.tag: Optional[str] = None
        self.priority = 0
        self.service_name: Optional[str] = None

    def set_session_name(self, name: str) -> None:
        self.name = name

    def set_session_type(self, session_type: str) -> None:
        self.type = session_type

    def set_session_flags(self, flags: int) -> None:
        self.flags = flags

    def set_session_callback(self, callback: SessionCallback) -> None:
        self.callback = callback

    def set_max_services(self, n: int) -> None:
        self.max_services = n

    def set_common_data(self, message: Message) -> None:
        self.common_data = message

    def set_session_tag(self, tag: str) -> None:
        self.tag = tag

    def set_session_priority(self, priority: int) -> None:
        self.priority = priority

    def set_service_name(self, name: str) -> None:
        self.service_name = name


class SessionOpenAttributes:
    def __init__(self) -> None:
        self.id: Optional[str] = None
        self.name: Optional[str] = None
        self.flags = SessionFlags.RECEIVE_SYNC
        self.callback: Optional[SessionCallback] = None

    def set_session_id(self, session_id: str) -> None:
        self.id = str(session_id)

    def set_session_name(self, name: str) -> None:
        self.name = name

    def set_session_flags(self, flags: int) -> None:
        self.flags = flags

    def set_session_callback(self, callback: SessionCallback) -> None:
        self.callback = callback


class TaskSubmissionAttributes:
    def __init__(self) -> None:
        self.input: Optional[Message] = None
        self.tag: Optional[str] = None

    def set_task_input(self, message: Message) -> None:
        self.input = message

    def get_task_input(self) -> Optional[Message]:
        return self.input

    def set_task_tag(self, tag: str) -> None:
        self.tag = tag


def _soam_error(e: BaseException) -> SoamException:
    exc = SoamException(str(e))
    exc.__cause__ = e
    return exc


class TaskInputHandle:
    """What ``send_task_input`` returns: ``get_id()`` is the task's id (a string), known
    once the task reached the agent (``get_id`` waits for that)."""

    __slots__ = ("_native", "_seq", "_tag")

    def __init__(self, native: Any, seq: int, tag: Optional[str]) -> None:
        self._native = native
        self._seq = seq
        self._tag = tag

    def get_id(self) -> str:
        try:
            return str(self._native.task_id(self._seq))
        except Exception as e:
            raise _soam_error(e) from e

    def get_task_tag(self) -> Optional[str]:
        return self._tag


class TaskOutputHandle:
    """A finished task, from ``fetch_task_output`` or ``SessionCallback.on_response``."""

    __slots__ = ("_out",)

    def __init__(self, out: Any) -> None:
        self._out = out

    def get_id(self) -> str:
        return str(self._out.task)

    def is_successful(self) -> bool:
        return self._out.ok

    def populate_task_output(self, message: Message) -> None:
        if not self._out.ok:
            raise SoamException(f"task {self._out.task} failed: {self._out.error}")
        _deserialize(message, self._out.data)

    def get_exception(self) -> Optional[SoamException]:
        if self._out.ok:
            return None
        text = self._out.error or ""
        return SoamException(f"task {self._out.task} {self._out.state}: {text}", _embedded(text))

    def get_task_output(self) -> bytes:
        """The output's raw bytes (soam's addition)."""
        return self._out.data


def _quiet_thread(target: Any, name: str) -> threading.Thread:
    """A daemon thread that takes no signal (they are the program's main thread's)."""

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))
        target()

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t


class Session:
    """A soamapi session: made by ``Connection.create_session`` or ``open_session``."""

    def __init__(self, native: Any, flags: int, callback: Optional[SessionCallback], conn: "Connection") -> None:
        self._native = native
        self._conn = conn
        self._flags = flags
        self._callback = callback
        self._closed = False
        # Wait for each task to be stored (recoverable) or sent (SEND_SYNC) before returning.
        self._sync = bool(native.recoverable or flags & SessionFlags.SEND_SYNC)
        self._receiver: Optional[threading.Thread] = None
        if flags & (SessionFlags.PARTIAL_ASYNC | SessionFlags.RECEIVE_ASYNC):
            self._receiver = _quiet_thread(self._callback_loop, f"soamapi-recv-{native.app}:{native.id}")

    def get_id(self) -> str:
        return str(self._native.id)

    def get_session_name(self) -> Optional[str]:
        return self._native.tag

    def send_task_input(self, attrs: TaskSubmissionAttributes) -> TaskInputHandle:
        """Sends a task. Returns once the library has it (for a recoverable session, once
        the agent has stored it); never waits for a callback. Thread-safe: tasks sent from
        many threads at once gather into one submission (the library's own task does the
        sending, so no thread of the program has to)."""
        if attrs.input is None:
            raise SoamException("send_task_input: the attributes have no task input (set_task_input)")
        if self._closed:
            raise SoamException(f"session {self.get_id()} is closed")
        data = _serialize(attrs.input)
        try:
            seq = self._native.stage(data)
        except Exception as e:
            raise _soam_error(e) from e
        handle = TaskInputHandle(self._native, seq, attrs.tag)
        if self._sync:
            handle.get_id()
        return handle

    def _flush(self) -> None:
        """Waits until everything sent so far has reached the agent."""
        self._native.flush()

    # Receiving.

    def fetch_task_output(self, count_max: int, timeout: float = 0) -> List[TaskOutputHandle]:
        """Up to ``count_max`` finished tasks: as soon as that many are ready, or what came
        within ``timeout`` seconds (0: what is here now). Never raises on a timeout."""
        if count_max < 1:
            return []
        end = time.monotonic() + max(timeout, 0)
        got: List[TaskOutputHandle] = []
        try:
            while True:
                left = max(end - time.monotonic(), 0)
                outs = self._native.take(count_max - len(got), left, True)
                got.extend(TaskOutputHandle(o) for o in outs)
                if len(got) >= count_max or left <= 0 or not outs:
                    return got
        except Exception as e:
            if got:
                return got
            raise _soam_error(e) from e

    def _callback_loop(self) -> None:
        cb = self._callback
        while True:
            try:
                outs = self._native.take(4096, 0.25, True)
            except Exception as e:
                if self._closed:
                    return
                if cb is not None:
                    try:
                        cb.on_exception(_soam_error(e))
                    except Exception:
                        _log.exception("SessionCallback.on_exception raised")
                return
            if not outs and self._closed:
                return
            if cb is None:
                continue
            for o in outs:
                try:
                    cb.on_response(TaskOutputHandle(o))
                except Exception:
                    _log.exception("SessionCallback.on_response raised; the session goes on")

    def update(self, common_data: Message) -> None:
        """Replaces the session's common data (services get ``on_session_update``)."""
        try:
            self._native.update(_serialize(common_data))
        except Exception as e:
            raise _soam_error(e) from e

    def close(self, flags: int = SessionCloseFlags.DESTROY_ON_CLOSE) -> None:
        """Ends the session (discarding what was not collected), or with
        ``DETACH_ON_CLOSE`` leaves its work running for a later ``open_session``."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        try:
            if flags & SessionCloseFlags.DETACH_ON_CLOSE:
                self._native.detach()
            else:
                self._native.close()
        except Exception as e:
            raise _soam_error(e) from e
        finally:
            self._conn._sessions.discard(self)


class Connection:
    """A connection to one application, from :func:`connect`."""

    def __init__(self, application: str, client: Any) -> None:
        self._app = application
        self._client = client
        self._id = uuid.uuid4().hex
        self._sessions: "set[Session]" = set()

    def get_id(self) -> str:
        return self._id

    def create_session(self, attrs: SessionCreationAttributes) -> Session:
        """A new session of this connection's application. The Symphony session name is a
        label: it becomes the soam session's tag (several sessions may share it)."""
        from soam import SoamError

        label = attrs.name if attrs.name is not None else attrs.tag
        data = _serialize(attrs.common_data) if attrs.common_data is not None else None
        try:
            native = self._client._native.create_session(
                self._app,
                attrs.type or None,
                None,
                label,
                data,
                bool(attrs.flags & SessionFlags.FETCH_RESULTS_DIRECTLY),
                False,
                None,
                None,
            )
        except SoamError as e:
            raise _soam_error(e) from e
        s = Session(native, attrs.flags, attrs.callback, self)
        self._sessions.add(s)
        return s

    def open_session(self, attrs: SessionOpenAttributes) -> Session:
        """Takes an open session by id (or by soam name); its previous holder is told it
        was taken over."""
        from soam import SoamError

        key = attrs.id if attrs.id is not None else attrs.name
        if key is None:
            raise SoamException("open_session: set_session_id or set_session_name first")
        try:
            native = self._client._native.open_session(
                f"{self._app}:{key}", False, bool(attrs.flags & SessionFlags.FETCH_RESULTS_DIRECTLY), False, None, None
            )
        except SoamError as e:
            raise _soam_error(e) from e
        s = Session(native, attrs.flags, attrs.callback, self)
        self._sessions.add(s)
        return s

    def close(self) -> None:
        """Closes the sessions of this connection still open (as ``Session.close()``)."""
        for s in list(self._sessions):
            try:
                s.close()
            except SoamException:
                _log.warning("closing session %s: already ended", s.get_id())
        _connections.discard(self)


_connections: "set[Connection]" = set()


def initialize() -> None:
    """Symphony's start-up call: nothing to do on soam."""


def uninitialize() -> None:
    """Closes every connection still open."""
    for c in list(_connections):
        c.close()


def connect(application: str, security_callback: Optional[DefaultSecurityCallback] = None) -> Connection:
    """Connects to the agent for ``application`` (the profile's application name),
    starting an agent if none answers. Credentials are accepted and not used."""
    import soam

    try:
        client = soam.connect(name=f"soamapi {application}")
    except soam.SoamError as e:
        raise _soam_error(e) from e
    c = Connection(application, client)
    _connections.add(c)
    return c


# ---------------------------------------------------------------------------------------
# Services


class _Coded:
    """``set_control_code(code)``, which every context has: the hook's reply carries
    ``code``, and the profile's ``<Return controlCode=...>`` (or ``<Exception>``, if the
    hook raises) says what it does (docs/service-protocol.md)."""

    __slots__ = ()
    _svc: "_service.Service"

    def set_control_code(self, code: int) -> None:
        self._svc.set_control_code(code)


class ServiceContext(_Coded):
    __slots__ = ("_app", "_svc")

    def __init__(self, app: str, svc: "_service.Service") -> None:
        self._app = app
        self._svc = svc

    def get_application_name(self) -> str:
        return self._app


class SessionContext(_Coded):
    __slots__ = ("_id", "_data", "_svc")

    def __init__(self, session_id: int, common_data: bytes, svc: "_service.Service") -> None:
        self._id = session_id
        self._data = common_data
        self._svc = svc

    def get_session_id(self) -> str:
        return str(self._id)

    def populate_common_data(self, message: Message) -> None:
        _deserialize(message, self._data)


class TaskContext(_Coded):
    __slots__ = ("_input", "_output", "_task", "_session", "_attempt", "_svc")

    def __init__(self, data: bytes, task: int, session: int, attempt: int, svc: "_service.Service") -> None:
        self._input = data
        self._output = b""
        self._task = task
        self._session = session
        self._attempt = attempt
        self._svc = svc

    def populate_task_input(self, message: Message) -> None:
        _deserialize(message, self._input)

    def set_task_output(self, message: Message) -> None:
        self._output = _serialize(message)

    def get_task_id(self) -> str:
        return str(self._task)

    def get_session_id(self) -> str:
        return str(self._session)

    def get_attempt(self) -> int:
        return self._attempt


class ServiceContainer:
    """Symphony's service base class. Override ``on_invoke(task_context)`` (required) and
    any of ``on_create_service(service_context)``, ``on_session_enter(session_context)``,
    ``on_session_update(session_context)``, ``on_session_leave()``,
    ``on_destroy_service()``; then ``run()``. Calling ``super().__init__()`` is not needed.

    ``FailureException`` fails the task so that it is retried, ``FatalException`` fails it
    at once, any other exception is a failure like ``FailureException``; the client's
    ``get_exception().get_embedded_exception()`` is the exception raised, with the
    service's traceback as its ``service_traceback``. A hook may give its answer a
    control code with ``context.set_control_code(N)``: the profile's ``<Control>``
    block says what each code does, as in Symphony."""

    def on_create_service(self, service_context: ServiceContext) -> None:
        pass

    def on_session_enter(self, session_context: SessionContext) -> None:
        pass

    def on_invoke(self, task_context: TaskContext) -> None:
        raise FatalException(f"{type(self).__name__} does not define on_invoke")

    def on_session_update(self, session_context: SessionContext) -> None:
        pass

    def on_session_leave(self) -> None:
        pass

    def on_destroy_service(self) -> None:
        pass

    def run(self) -> None:
        """Serves the agent until it stops this instance."""
        _Adapter(self).run()


class _Adapter(_service.Service):
    """soam's service loop calling a ServiceContainer's hooks."""

    def __init__(self, container: ServiceContainer) -> None:
        self.c = container

    def failure_message(self, exc: Exception) -> bytes:
        # The traceback, always: the client rebuilds the exception from its last line.
        return traceback.format_exc().encode("utf-8", "replace")

    def on_create_service(self) -> None:
        self.c.on_create_service(ServiceContext(self.app, self))

    def on_session_enter(self, common_data: bytes) -> None:
        self.c.on_session_enter(SessionContext(self.session_id, common_data, self))

    def on_session_update(self, common_data: bytes) -> None:
        self.c.on_session_update(SessionContext(self.session_id, common_data, self))

    def on_session_leave(self) -> None:
        self.c.on_session_leave()

    def on_destroy_service(self) -> None:
        self.c.on_destroy_service()

    def on_invoke(self, data: bytes) -> bytes:
        ctx = TaskContext(data, self.task_id, self.session_id, self.attempt, self)
        self.c.on_invoke(ctx)
        return ctx._output

