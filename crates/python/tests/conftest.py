"""Fixtures: a real soamd in a temporary SOAM_HOME, started and stopped by PID.

The binaries come from ``SOAM_BIN_DIR`` (tests/python.rs sets it to the build's target
folder), else from ``PATH``. Every test gets its own agent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SERVICES = HERE / "services"
REPO = HERE.parents[2]


def bin_path(name: str) -> str:
    d = os.environ.get("SOAM_BIN_DIR")
    if d:
        return str(Path(d) / name)
    found = shutil.which(name)
    if not found:
        skip(f"{name} is not on PATH and SOAM_BIN_DIR is not set (tests/python.rs sets it)")
    return found


def skip(why: str) -> None:
    """Skips the test, saying why; under SOAM_TEST_NO_SKIP=1 (CI) that is a failure, as
    for the Rust tests (docs/testing.md)."""
    if os.environ.get("SOAM_TEST_NO_SKIP") == "1":
        pytest.fail(f"would skip ({why}), but SOAM_TEST_NO_SKIP=1 says every test must run here")
    pytest.skip(why)


def wait_for(what: str, cond: Callable[[], object], secs: float = 15.0) -> object:
    end = time.monotonic() + secs
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Agent:
    """A running soamd under ``home``; ``run`` runs a command against it."""

    def __init__(self, home: Path, slots: int = 2, shared: bool = False) -> None:
        self.home = home
        self.slots = slots
        self.shared = shared
        self.proc: Optional[subprocess.Popen] = None
        self.env = dict(os.environ, SOAM_HOME=str(home), SOAM_NO_AUTOSTART="1")
        self.env.pop("SOAM_SOCKET", None)

    @property
    def socket(self) -> Path:
        return self.home / "run" / "soamd.sock"

    def start(self) -> None:
        log = open(self.home / "agent.log", "ab")
        self.proc = subprocess.Popen(
            [bin_path("soamd"), "--slots", str(self.slots), *(["--shared"] if self.shared else [])],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()

        def serving() -> bool:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(self.socket))
                return True
            except OSError:
                return False
            finally:
                s.close()

        wait_for("the agent to serve", serving)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def run(self, *args: str, check: bool = True, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [bin_path(args[0]), *args[1:]], env=self.env, input=input, capture_output=True
        )
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
        return p

    def register(self, name: str, text: str) -> Path:
        path = self.home / name
        path.write_text(text)
        self.run("soamreg", str(path), "-f")
        return path

    def log(self) -> str:
        return (self.home / "agent.log").read_text(errors="replace")


def profile(app: str, service: str, types: str = "", consumer: str = "", env: str = "") -> str:
    """A YAML profile whose one service runs ``service`` (a file in tests/services, or an
    absolute path) under this Python."""
    path = service if os.path.isabs(service) else str(SERVICES / service)
    return (
        f"application: {app}\n"
        f"consumer:\n  policy: proportion\n{consumer}"
        f"services:\n  - name: svc\n    command: [{sys.executable!r}, {path!r}]\n{env}"
        f"sessionTypes:\n  - name: \"\"\n{types}"
    )


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("SOAM_HOME", str(home))
    monkeypatch.setenv("SOAM_NO_AUTOSTART", "1")
    monkeypatch.delenv("SOAM_SOCKET", raising=False)
    a = Agent(home)
    a.start()
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture
def echo(agent: Agent) -> Agent:
    """An agent with app ``echo`` (profiles/services/echo.py, on soam.service) registered,
    with a ``Keep`` type whose outputs are kept after delivery and whose sessions survive
    their client."""
    agent.register(
        "echo.yaml",
        profile(
            "echo",
            str(REPO / "profiles/services/echo.py"),
            types='  - name: Keep\n    discardResultsOnDelivery: false\n    onClientDisconnect: continue\n',
        ),
    )
    return agent
