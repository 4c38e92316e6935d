"""Services in pure Python: subclass :class:`Service`, override the hooks you need, call
:meth:`Service.run`.

Standard library only, and nothing compiled: the agent gives every service instance this
package on ``PYTHONPATH`` (docs/python.md), so a service runs on any Python 3 on any host
where an instance starts, a Slurm node included, with nothing installed there.

Example (``profiles/services/echo.py``)::

    from soam.service import Service

    class Echo(Service):
        def on_invoke(self, data: bytes) -> bytes:
            return self.common_data + data

    if __name__ == "__main__":
        Echo().run()

The six hooks follow the service protocol (docs/service-protocol.md):
``on_create_service()``, ``on_session_enter(common_data)``, ``on_invoke(data)``,
``on_session_update(common_data)``, ``on_session_leave()``, ``on_destroy_service()``.
While a hook runs, ``self.app``, ``self.session_id``, ``self.common_data``,
``self.task_id`` and ``self.attempt`` describe what it serves.

Failures: raise :class:`RetryableError` (the attempt failed; the task is retried up to the
session type's ``taskRetryLimit``), :class:`FatalError` (the task fails at once), or any
other exception (a retryable failure whose message is the traceback). What a hook prints
goes to stderr, which the agent keeps in its log: stdout carries the protocol.

Control codes (Symphony's): a hook calls ``self.set_control_code(N)``, or raises
``RetryableError(text, control_code=N)`` / ``FatalError(...)``, and the profile's
``<Return controlCode="N">`` or ``<Exception controlCode="N">`` (YAML: the method's
``on:`` list) says what that answer does to the task and to the instance. No code is
code 0. The code goes with the hook's one reply (docs/service-protocol.md).

:meth:`Service.run` reads requests in large chunks and answers a burst of pipelined
requests with one write, so a Python service keeps up with the agent's pipelining.
"""

from __future__ import annotations

import os
import struct
import sys
import traceback
from typing import Any, BinaryIO, List, Optional, Union

__all__ = ["Service", "RetryableError", "FatalError", "Output", "MAX_PAYLOAD"]

CREATE_SERVICE, SESSION_ENTER, INVOKE, SESSION_UPDATE, SESSION_LEAVE, DESTROY_SERVICE = range(1, 7)
SUCCESS, FAILURE, FATAL = 0, 1, 2
#: In a reply's status: the payload starts with a control code (i32 LE).
CODED = 0x80
_CODE = struct.Struct("<i")

#: The largest payload a reply may carry (an output over it fails its task with a message).
MAX_PAYLOAD = 15 * 1024 * 1024

#: The length (u32) and the header: kind, status, session, task, attempt.
_FRAME = struct.Struct("<IBBQQI")
_HEAD = _FRAME.size - 4

#: What ``on_invoke`` may return: the output's bytes, text (sent as UTF-8), or None (empty).
Output = Union[bytes, bytearray, memoryview, str, None]


class RetryableError(Exception):
    """Raised by a hook: this attempt failed and may be retried (``onFailure`` of the
    method's ``control`` decides; for ``invoke`` the default retries up to
    ``taskRetryLimit``). Its text is the failure message the client sees;
    ``control_code`` goes with it (the profile's ``<Exception controlCode=N>``)."""

    def __init__(self, *args: object, control_code: int = 0) -> None:
        super().__init__(*args)
        self.control_code = control_code


class FatalError(Exception):
    """Raised by a hook: fail at once, never retry (unless the profile says otherwise
    for its control code). Its text is the failure message."""

    def __init__(self, *args: object, control_code: int = 0) -> None:
        super().__init__(*args)
        self.control_code = control_code


def _message(e: BaseException) -> bytes:
    text = str(e) or type(e).__name__
    return text.encode("utf-8", "replace")


class Service:
    """The base class of a persistent service. Every hook does nothing by default but
    ``on_invoke``, which must be overridden."""

    #: The application this instance serves (set before ``on_create_service``).
    app: str = ""
    #: The session being served, 0 between sessions.
    session_id: int = 0
    #: The session's common data (set before ``on_session_enter``/``on_session_update``).
    common_data: bytes = b""
    #: The task being invoked and its attempt number (from 1).
    task_id: int = 0
    attempt: int = 0
    #: The control code the running hook's reply carries (see :meth:`set_control_code`).
    control_code: int = 0

    def set_control_code(self, code: int) -> None:
        """Gives the running hook's reply control code ``code`` (a 32-bit signed
        integer): the profile's ``<Return controlCode=...>`` (or ``<Exception>``, if
        the hook then raises) says what it does. Reset to 0 after each reply."""
        if not -(2**31) <= code < 2**31:
            raise ValueError(f"a control code is a 32-bit signed integer, not {code}")
        self.control_code = code

    def on_create_service(self) -> None:
        """Once, when the instance starts. A failure here stops the instance."""

    def on_session_enter(self, common_data: bytes) -> None:
        """Before the first task of a session; ``common_data`` as the client gave it."""

    def on_invoke(self, data: bytes) -> Output:
        """Runs one task: ``data`` is its input, the return value its output."""
        raise NotImplementedError("a soam.service.Service must define on_invoke")

    def on_session_update(self, common_data: bytes) -> None:
        """The session's common data was replaced (``soamsession update``)."""

    def on_session_leave(self) -> None:
        """After the last task of a session on this instance."""

    def on_destroy_service(self) -> None:
        """Once, before the instance exits (idle, profile updated, agent stopping)."""

    def failure_message(self, exc: Exception) -> bytes:
        """The failure message for an exception a hook raised (called while it is being
        handled): the text of a :class:`RetryableError` or :class:`FatalError`, the whole
        traceback of any other exception. Override to change what clients see."""
        if isinstance(exc, (RetryableError, FatalError)):
            return _message(exc)
        return traceback.format_exc().encode("utf-8", "replace")

    def run(self, stdin: Optional[BinaryIO] = None, stdout: Optional[BinaryIO] = None) -> None:
        """Serves requests until DestroyService or the end of input (the agent gone).

        Takes the process's stdin and stdout (or the given binary streams, for tests);
        with the real ones, file descriptor 1 and ``sys.stdout`` are pointed at stderr so
        that ``print`` in a hook cannot break the protocol.
        """
        if stdin is None:
            rfd = sys.stdin.fileno()
        else:
            rfd = stdin.fileno()
        if stdout is None:
            # The protocol keeps the real stdout; everything printed goes to stderr.
            wfd = os.dup(sys.stdout.fileno())
            sys.stdout.flush()
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
            sys.stdout = sys.stderr
        else:
            wfd = stdout.fileno()
        try:
            self._serve(rfd, wfd)
        except BrokenPipeError:
            pass  # the agent is gone

    def _serve(self, rfd: int, wfd: int) -> None:
        unpack, pack = _FRAME.unpack_from, _FRAME.pack
        read, head = os.read, _HEAD
        invoke = self.on_invoke
        data = b""
        out: List[bytes] = []
        while True:
            chunk = read(rfd, 1 << 18)
            if not chunk:
                return
            data = data + chunk if data else chunk
            pos, end = 0, len(data)
            while end - pos >= 26:
                length, kind, _status, session, task, attempt = unpack(data, pos)
                stop = pos + 4 + length
                if stop > end:
                    break
                if length < head:
                    raise SystemExit(f"soam.service: a request of {length} bytes is shorter than its header")
                payload = data[pos + 26 : stop]
                pos = stop
                status = SUCCESS
                if kind == INVOKE:
                    self.task_id = task
                    self.attempt = attempt
                    try:
                        r = invoke(payload)
                        if r is None:
                            r = b""
                        elif r.__class__ is not bytes:
                            r = r.encode() if isinstance(r, str) else bytes(r)
                        if len(r) > MAX_PAYLOAD:
                            status, r = FATAL, (f"the output of {len(r)} bytes is over the {MAX_PAYLOAD} bytes a service may return").encode()
                    except FatalError as e:
                        status, r = FATAL, self.failure_message(e)
                        self._code_of(e)
                    except Exception as e:
                        status, r = FAILURE, self.failure_message(e)
                        self._code_of(e)
                else:
                    r, status = self._control(kind, session, payload)
                if self.control_code:
                    r = _CODE.pack(self.control_code) + r
                    status |= CODED
                    self.control_code = 0
                out.append(pack(head + len(r), kind, status, session, task, attempt))
                out.append(r)
                if kind == DESTROY_SERVICE:
                    _write(wfd, b"".join(out))
                    return
            data = data[pos:] if pos < end else b""
            # Replies go out once no further whole request is buffered: one write a burst.
            if out:
                _write(wfd, b"".join(out))
                out.clear()

    def _control(self, kind: int, session: int, payload: bytes) -> "tuple[bytes, int]":
        """A request other than Invoke: its reply payload and status."""
        try:
            if kind == SESSION_ENTER:
                self.session_id, self.common_data = session, payload
                self.on_session_enter(payload)
            elif kind == SESSION_UPDATE:
                self.common_data = payload
                self.on_session_update(payload)
            elif kind == SESSION_LEAVE:
                try:
                    self.on_session_leave()
                finally:
                    self.session_id, self.common_data = 0, b""
            elif kind == CREATE_SERVICE:
                self.app = payload.decode("utf-8", "replace")
                self.on_create_service()
            elif kind == DESTROY_SERVICE:
                self.on_destroy_service()
            else:
                return f"unknown request kind {kind}".encode(), FATAL
        except FatalError as e:
            self._code_of(e)
            return self.failure_message(e), FATAL
        except Exception as e:
            self._code_of(e)
            return self.failure_message(e), FAILURE
        return b"", SUCCESS

    def _code_of(self, e: BaseException) -> None:
        """An exception's own control code, if it has one, is the reply's."""
        code = getattr(e, "control_code", 0)
        if isinstance(code, int) and code and -(2**31) <= code < 2**31:
            self.control_code = code


def _write(fd: int, b: bytes) -> None:
    view = memoryview(b)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve(invoke: Any) -> None:
    """Runs a service whose only hook is ``invoke(data) -> output``::

        from soam.service import serve
        serve(lambda data: data.upper())
    """

    class _Fn(Service):
        def on_invoke(self, data: bytes) -> Output:
            out: Output = invoke(data)
            return out

    _Fn().run()
