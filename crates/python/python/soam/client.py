"""The soam client for Python: connect to the agent, create or open sessions, submit
tasks and collect their outputs.

Everything that waits on the agent releases the GIL, so other Python threads keep
running; a wait can be interrupted with Ctrl-C. The connection logic is the Rust client
library's (``soam-client``): the agent is started on demand, a lost agent is reconnected
to and the session reopened, a submission lost with the connection is sent again under
the same request id and accepted once, and outputs delivered twice are dropped.

Example::

    import soam

    with soam.connect() as agent:
        with agent.create_session("sampleApp") as session:
            ids = session.submit(str(i) for i in range(10))
            for out in session.outputs():
                print(out.task, out.data)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, List, Optional, Union

from . import _native
from ._native import Output
from .errors import SoamError

__all__ = ["Client", "Session", "Output", "connect", "Input"]

#: A task's input: bytes as they are, str as UTF-8, or any buffer (bytearray, memoryview).
Input = Union[bytes, str, bytearray, memoryview]


def _client_name() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"python {prog}"


class Client:
    """A connection to the soam agent.

    ``socket`` is the agent's socket (default: ``SOAM_SOCKET``, else the one under
    ``SOAM_HOME``, else the XDG location, as the commands find it). With ``autostart``
    (default: unless ``SOAM_NO_AUTOSTART=1``) an agent is started when none answers; the
    ``soamd`` started is ``SOAM_AGENT_BIN``, else the one on ``PATH``. ``name`` is what
    ``soamview session`` shows as the holder of this program's sessions.

    Raises :class:`soam.AgentUnreachable` when no agent answers and none could be
    started, :class:`soam.PermissionDenied` when the socket is someone else's.

    >>> agent = soam.Client()                    # doctest: +SKIP
    >>> agent.agent_version                      # doctest: +SKIP
    '0.1.0'
    """

    def __init__(
        self,
        socket: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        autostart: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> None:
        self._native = _native.NativeClient(
            os.fspath(socket) if socket is not None else None, autostart, name or _client_name()
        )

    @property
    def agent_version(self) -> str:
        """The agent's version."""
        return self._native.agent_version

    @property
    def socket(self) -> str:
        """The socket this client talks to."""
        return str(self._native.socket)

    def create_session(
        self,
        app: str,
        *,
        type: Optional[str] = None,
        name: Optional[str] = None,
        tag: Optional[str] = None,
        common_data: Optional[Input] = None,
        direct: bool = False,
        ordered: bool = False,
        ping_interval: Optional[float] = None,
        reconnect_timeout: Optional[float] = None,
    ) -> "Session":
        """Creates a session of application ``app``, held by this program.

        ``type`` is one of the profile's session types (default: its default type);
        ``name`` (unique among the application's open sessions) and ``tag`` can later
        stand in for the id (``APP:NAME``); ``common_data`` reaches every service instance
        in SessionEnter; ``direct`` fetches results directly (never stored); ``ordered``
        hands outputs out in task order. ``ping_interval`` (default 5 s) and
        ``reconnect_timeout`` (default 60 s) say how a lost agent is noticed and waited for.

        Raises :class:`soam.UnknownApplication`, :class:`soam.UnknownSessionType`,
        :class:`soam.LimitReached` (``maxSessions``), :class:`soam.InvalidRequest`.

        >>> s = agent.create_session("sampleApp", type="Batch", name="nightly")  # doctest: +SKIP
        >>> s.address                                                          # doctest: +SKIP
        'sampleApp:1'
        """
        data = _to_bytes(common_data) if common_data is not None else None
        n = self._native.create_session(
            app, type, name, tag, data, direct, ordered, ping_interval, reconnect_timeout
        )
        return Session(n)

    def open_session(
        self,
        address: str,
        *,
        all: bool = False,
        direct: bool = False,
        ordered: bool = False,
        ping_interval: Optional[float] = None,
        reconnect_timeout: Optional[float] = None,
    ) -> "Session":
        """Takes the open session at ``address`` (``"APP:ID"`` or ``"APP:NAME"``); another
        client holding it is told it was taken over. Its undelivered outputs follow through
        :meth:`Session.outputs`; ``all`` also brings those already delivered, where the
        session type keeps them. ``direct`` must be as the session was created.

        Raises :class:`soam.UnknownSession`, :class:`soam.InvalidRequest`,
        :class:`soam.PermissionDenied` (another user's session).

        >>> s = agent.open_session("sampleApp:nightly")             # doctest: +SKIP
        >>> outputs = [o.data for o in s.outputs()]                 # doctest: +SKIP
        """
        n = self._native.open_session(address, all, direct, ordered, ping_interval, reconnect_timeout)
        return Session(n)

    def close(self) -> None:
        """Nothing to release: each session holds its own connection. Here for symmetry
        (and ``with``)."""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"soam.Client(socket={self.socket!r}, agent_version={self.agent_version!r})"


def connect(
    socket: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    autostart: Optional[bool] = None,
    name: Optional[str] = None,
) -> Client:
    """Connects to the agent (starting one if none answers): see :class:`Client`.

    >>> import soam
    >>> agent = soam.connect()                               # doctest: +SKIP
    """
    return Client(socket, autostart=autostart, name=name)


def _to_bytes(v: Input) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


class Session:
    """A session held by this program: submit tasks, iterate their outputs, then close,
    detach or abort it. Made by :meth:`Client.create_session` and
    :meth:`Client.open_session`.

    As a context manager it closes the session when the block ends normally and detaches
    from it when the block raises (the workload keeps running and the session can be
    reopened by its address, as Ctrl-C does in ``soamsession``)::

        with agent.create_session("sampleApp") as s:
            s.submit([b"a", b"b"])
            results = {o.task: o.data for o in s.outputs()}

    A session object may be shared by threads: one may submit while another collects.
    """

    def __init__(self, native: "_native.NativeSession") -> None:
        self._native = native
        self._over = False

    @property
    def app(self) -> str:
        """The application."""
        return self._native.app

    @property
    def id(self) -> int:
        """The agent-assigned id, unique in the application."""
        return self._native.id

    @property
    def name(self) -> Optional[str]:
        return self._native.name

    @property
    def tag(self) -> Optional[str]:
        return self._native.tag

    @property
    def type(self) -> str:
        """The session type (``""``: the profile's default type)."""
        return self._native.session_type

    @property
    def recoverable(self) -> bool:
        """Whether accepted tasks survive an agent crash (the session type's ``recoverable``)."""
        return self._native.recoverable

    @property
    def address(self) -> str:
        """``"APP:ID"``: what :meth:`Client.open_session` and the commands take."""
        return f"{self.app}:{self.id}"

    @property
    def waiting(self) -> int:
        """Outputs that were waiting when the session was opened (0 for a new one)."""
        return self._native.waiting

    @property
    def finished(self) -> bool:
        """Every task this program submitted has ended and its output was handed out, and
        nothing is pending or running."""
        return self._native.finished

    def submit(self, inputs: Iterable[Input]) -> range:
        """Submits one task per input, as one submission: accepted whole, in order, or
        refused whole. Returns the new tasks' ids (a ``range``: ids follow submission
        order). A submission whose answer was lost with the connection is sent again under
        the same request id once the agent is back, and accepted once.

        Raises :class:`soam.LimitReached` (``maxStoredTasks``, ``maxRecordBytes``),
        :class:`soam.StoreFault`, :class:`soam.InvalidRequest` (an input too large),
        :class:`soam.TakenOver`, :class:`soam.SessionEnded`.

        >>> ids = s.submit([b"raw bytes", "text", bytearray(b"x")])   # doctest: +SKIP
        >>> list(ids)                                                 # doctest: +SKIP
        [1, 2, 3]
        """
        first, count = self._native.submit(inputs)
        return range(first, first + count)

    def outputs(self, *, timeout: Optional[float] = None) -> Iterator[Output]:
        """Outputs as their tasks finish (in task order if the session was made with
        ``ordered=True``), until every task this program submitted has ended and nothing
        else is pending or running. Each output is acknowledged to the agent once the
        program has taken it: one the loop never reached goes to the next holder.

        ``timeout``: raise ``TimeoutError`` when no output comes for that many seconds.
        Raises :class:`soam.TakenOver`, :class:`soam.SessionEnded` (aborted by an admin,
        say) and :class:`soam.AgentUnreachable` (lost past the reconnect timeout).

        >>> for out in s.outputs():                          # doctest: +SKIP
        ...     if out.ok: print(out.task, out.data)
        ...     else: print(out.task, "failed:", out.error)
        """
        return self._native.outputs(timeout)

    def __iter__(self) -> Iterator[Output]:
        return self.outputs()

    def fetch(self, max: int = 1, timeout: float = 0) -> List[Output]:
        """Up to ``max`` outputs: as soon as ``max`` are there, or what came within
        ``timeout`` seconds (0: only what is here already). Never raises on a timeout: an
        empty list means none came. Outputs returned are acknowledged.

        >>> first_two = s.fetch(2, timeout=10)               # doctest: +SKIP
        """
        if max < 1:
            raise ValueError(f"max must be 1 or more, not {max}")
        got = self._native.take(max, timeout, True)
        if len(got) >= max or not timeout:
            return got
        # Take more until max or the timeout: outputs come in batches.
        end = time.monotonic() + timeout
        while len(got) < max:
            left = end - time.monotonic()
            if left <= 0:
                break
            more = self._native.take(max - len(got), left, True)
            if not more:
                break
            got.extend(more)
        return got

    def update(self, common_data: Input) -> None:
        """Replaces the session's common data: instances serving the session get it in
        SessionUpdate (``Service.on_session_update``), new ones in SessionEnter.

        >>> s.update(b"new settings")                        # doctest: +SKIP
        """
        self._native.update(_to_bytes(common_data))

    def detach(self) -> None:
        """Leaves the session open and unheld: its workload keeps running, and any client
        can reopen it by :attr:`address`."""
        self._over = True
        self._native.detach()

    def close(self) -> None:
        """Ends the session (closed); outputs not collected are discarded."""
        self._over = True
        self._native.close()

    def abort(self) -> None:
        """Ends the session (aborted): pending tasks are canceled, running ones stopped."""
        self._over = True
        self._native.abort()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._over:
            return
        if exc_type is None:
            self.close()
        else:
            # The block's own exception is the one to see; a detach that fails too (the
            # session already ended, the agent gone) leaves the session as it is.
            try:
                self.detach()
            except SoamError:
                pass

    def __repr__(self) -> str:
        return f"soam.Session({self.address!r})"
