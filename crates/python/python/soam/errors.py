"""The exceptions of ``soam``: one class per kind of failure, all under :class:`SoamError`.

Each carries the agent's one-line message (``str(e)``) and the kind's wire name
(``e.kind``, as ``soamsession`` prints it), so a program can act on the class and show a
person the message::

    import soam
    try:
        session = soam.connect().create_session("noSuchApp")
    except soam.UnknownApplication as e:
        print("register it first:", e)

Standard library only: the classes exist without the compiled part of the package.
"""

from __future__ import annotations

__all__ = [
    "SoamError",
    "AgentUnreachable",
    "UnknownApplication",
    "UnknownSession",
    "UnknownSessionType",
    "InvalidRequest",
    "LimitReached",
    "PermissionDenied",
    "StoreFault",
    "TakenOver",
    "SessionEnded",
]


class SoamError(Exception):
    """A request to the agent failed. ``kind`` is the failure's wire name (``"limit"``,
    ``"unknown-app"``, ...); ``str(e)`` is the agent's message."""

    def __init__(self, message: str = "", kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> "tuple[type, tuple[str, str]]":
        return (type(self), (str(self), self.kind))


class AgentUnreachable(SoamError, ConnectionError):
    """No agent answers (and none could be started), or the connection was lost for good
    (after the reconnect timeout)."""


class UnknownApplication(SoamError, LookupError):
    """No application of that name is registered."""


class UnknownSession(SoamError, LookupError):
    """No open session has that id or name."""


class UnknownSessionType(SoamError, LookupError):
    """The application's profile has no session type of that name."""


class InvalidRequest(SoamError, ValueError):
    """Malformed or out-of-range input: a name, an address, a task too large."""


class LimitReached(SoamError):
    """A configured limit refused the request (maxSessions, maxStoredTasks,
    maxRecordBytes); nothing already accepted was lost."""


class PermissionDenied(SoamError, PermissionError):
    """The agent (or the socket) refused this user: another user's session, an admin act."""


class StoreFault(SoamError):
    """The agent's store cannot be written (a full disk); nothing was changed."""


class TakenOver(SoamError):
    """Another client opened the session: this one may no longer act on it."""


class SessionEnded(SoamError):
    """The session has ended (closed, aborted, or finished by this program)."""
