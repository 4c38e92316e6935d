"""soam for Python: drive soam sessions from a program, and write services in pure Python.

- :func:`connect` / :class:`Client`, :class:`Session`, :class:`Output`: the client
  (``soam.client``), compiled, releasing the GIL whenever it waits;
- ``soam.aio``: the same for asyncio programs (``async for``);
- ``soam.service``: the base class of a pure-Python service (standard library only, so a
  compute node runs it on any Python 3 with nothing compiled);
- ``soam.errors``: one exception class per kind of failure, all :class:`SoamError`.

Quick start (``soamreg profiles/sample.yaml`` first)::

    import soam
    with soam.connect().create_session("sampleApp") as s:
        s.submit(["hello", "world"])
        for out in s.outputs():
            print(out.task, out.data)

Importing ``soam`` loads nothing compiled: the client is loaded on first use, so
``soam.service`` and ``soam.errors`` work where only the pure-Python files are present.
See docs/python.md.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

# The agent gives services the pure-Python files on PYTHONPATH (docs/python.md); where the
# wheel is installed too, its compiled client is found through the package's other folder.
__path__ = extend_path(__path__, __name__)

from . import errors as _errors
from .errors import *  # noqa: F401,F403 - every exception class, as soam.NAME

if TYPE_CHECKING:
    from .client import Client, Input, Output, Session, connect

__version__ = "0.1.0"

#: Loaded from `soam.client` the first time one is named (see `__getattr__`).
_CLIENT = ("connect", "Client", "Session", "Output", "Input")

__all__ = [*_CLIENT, *_errors.__all__]


def __getattr__(name: str) -> Any:
    # The client needs the compiled module; loaded the first time it is named.
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'soam' has no attribute {name!r}")
