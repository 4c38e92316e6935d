"""The Python client against a real agent: sessions, submissions, outputs, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

import soam
from conftest import Agent, profile, wait_for


def test_submit_returns_ids_and_outputs_come_back_as_bytes(echo: Agent) -> None:
    with soam.connect() as agent:
        with agent.create_session("echo", common_data=b"> ") as s:
            ids = s.submit([b"raw\x00bytes", "text \u00e9", bytearray(b"buf"), memoryview(b"mv")])
            assert ids == range(1, 5)
            got = {o.task: o for o in s.outputs()}
    assert sorted(got) == [1, 2, 3, 4]
    assert got[1].data == b"> raw\x00bytes" and got[1].ok and got[1].state == "done" and got[1].error is None
    assert got[2].data == "> text \u00e9".encode()
    assert got[3].text() == "> buf" and got[4].data == b"> mv"
    # Closed by the context manager.
    assert "echo:1" not in echo.run("soamview", "session", "echo").stdout.decode()


def test_a_generator_of_inputs_and_a_second_submission(echo: Agent) -> None:
    s = soam.connect().create_session("echo")
    assert s.submit(str(i) for i in range(1000)) == range(1, 1001)
    assert s.submit([b"x"]) == range(1001, 1002)
    outs = list(s.outputs())
    assert sorted(o.task for o in outs) == list(range(1, 1002))
    assert {o.data for o in outs} == {str(i).encode() for i in range(1000)} | {b"x"}
    assert s.finished
    s.close()


def test_a_single_input_is_refused_with_a_hint(echo: Agent) -> None:
    s = soam.connect().create_session("echo")
    with pytest.raises(ValueError, match="not one input"):
        s.submit(b"abc")
    with pytest.raises(ValueError, match="must be bytes, str or a buffer"):
        s.submit([1])
    s.close()


def test_ordered_mode_hands_outputs_out_in_task_order(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))
    with soam.connect().create_session("h", ordered=True) as s:
        s.submit(["sleep:0.6", "sleep:0.3", "a", "b"])
        assert [o.task for o in s.outputs()] == [1, 2, 3, 4]


def test_fetch_returns_up_to_max_and_never_raises_on_timeout(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))
    s = soam.connect().create_session("h")
    assert s.fetch(5, timeout=0) == []
    assert s.fetch(5, timeout=0.2) == []
    s.submit(["a", "b", "c", "sleep:30"])
    got = s.fetch(2, timeout=10)
    assert len(got) == 2
    got += s.fetch(10, timeout=0.5)
    assert sorted(o.data for o in got) == [b"a", b"b", b"c"]
    s.abort()


def test_fetch_waits_for_what_another_thread_submits(agent: Agent) -> None:
    # A session with nothing in it yet: fetch waits its timeout, as a Symphony client
    # fetching while its sender threads are still starting expects.
    agent.register("h.yaml", profile("h", "hooks.py"))
    s = soam.connect().create_session("h")
    go = threading.Event()

    def sender() -> None:
        go.wait()
        time.sleep(0.3)  # the scenario: a sender that comes after fetch began waiting
        s.submit(["late"])

    t = threading.Thread(target=sender)
    t.start()
    go.set()
    got = s.fetch(1, timeout=60)
    t.join()
    assert [o.data for o in got] == [b"late"]
    s.close()


def test_failures_carry_the_service_s_message(agent: Agent) -> None:
    agent.register(
        "h.yaml", profile("h", "hooks.py", types="  - name: R\n    taskRetryLimit: 2\n")
    )
    with soam.connect().create_session("h", type="R") as s:
        s.submit(["fail", "fatal", "boom", "print", "info"])
        got = {o.task: o for o in s.outputs()}
    assert got[1].state == "error" and got[1].attempts == 3 and got[1].error == "failed on attempt 3"
    assert got[2].state == "error" and got[2].attempts == 1 and got[2].error == "fatal on attempt 1"
    assert "Traceback" in got[3].error and "ValueError: boom in the service" in got[3].error
    assert not got[1].ok and got[1].data == b""
    assert got[4].data == b"printed"
    app, session, task, attempt = got[5].data.decode().split()
    assert (app, task, attempt) == ("h", "5", "1") and int(session) == s.id
    assert "this goes to stderr" in agent.log()


def test_every_error_kind_has_its_class_and_the_agent_s_message(echo: Agent) -> None:
    c = soam.connect()
    with pytest.raises(soam.UnknownApplication) as e:
        c.create_session("nope")
    assert e.value.kind == "unknown-app" and "nope" in str(e.value)
    assert isinstance(e.value, soam.SoamError) and isinstance(e.value, LookupError)
    with pytest.raises(soam.UnknownSessionType):
        c.create_session("echo", type="NoSuchType")
    with pytest.raises(soam.UnknownSession):
        c.open_session("echo:999")
    with pytest.raises(soam.InvalidRequest):
        c.open_session("no-colon")
    # A limit: one open session at a time.
    echo.register("lim.yaml", profile("lim", "hooks.py", consumer="  maxSessions: 1\n"))
    first = c.create_session("lim")
    with pytest.raises(soam.LimitReached, match="maxSessions"):
        c.create_session("lim")
    first.close()
    c.create_session("lim").close()
    # The exceptions pickle (they cross process boundaries in real programs).
    import pickle

    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is soam.UnknownApplication and again.kind == "unknown-app" and str(again) == str(e.value)


def test_no_agent_is_agent_unreachable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOAM_HOME", str(tmp_path))
    monkeypatch.setenv("SOAM_NO_AUTOSTART", "1")
    with pytest.raises(soam.AgentUnreachable, match="no agent answers"):
        soam.connect()


def test_connect_starts_an_agent_under_soam_home_and_honours_soam_socket(tmp_path, monkeypatch) -> None:
    from conftest import bin_path

    home = tmp_path / "h"
    monkeypatch.setenv("SOAM_HOME", str(home))
    monkeypatch.delenv("SOAM_NO_AUTOSTART", raising=False)
    monkeypatch.setenv("SOAM_AGENT_BIN", bin_path("soamd"))
    c = soam.connect()
    assert c.socket == str(home / "run" / "soamd.sock")
    a = Agent(home)
    pid = int(a.run("soamcontrol", "agent", "status", "--json").stdout.decode().split('"pid":')[1].split(",")[0])
    try:
        # SOAM_SOCKET names the socket, whatever SOAM_HOME says.
        monkeypatch.setenv("SOAM_SOCKET", c.socket)
        monkeypatch.setenv("SOAM_HOME", str(tmp_path / "elsewhere"))
        monkeypatch.setenv("SOAM_NO_AUTOSTART", "1")
        assert soam.connect().socket == c.socket
    finally:
        os.kill(pid, 15)
        wait_for("the autostarted agent to stop", lambda: not os.path.exists(c.socket))


def test_detach_and_reopen_by_name_from_another_client(echo: Agent) -> None:
    s = soam.connect().create_session("echo", type="Keep", name="nightly", tag="t1")
    assert (s.name, s.tag, s.type) == ("nightly", "t1", "Keep")
    s.submit([b"a", b"b", b"c"])
    s.detach()
    with pytest.raises(soam.SessionEnded, match="detached by this program"):
        s.submit([b"d"])
    code = (
        "import soam\n"
        "s = soam.connect().open_session('echo:nightly')\n"
        "print(sorted(o.data.decode() for o in s.outputs()), s.waiting)\n"
        "s.detach()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=os.environ).stdout
    assert out.decode().split("]")[0] == "['a', 'b', 'c'"
    # Kept after delivery: `all` brings them again.
    s2 = soam.connect().open_session("echo:nightly", all=True)
    assert sorted(o.data for o in s2.outputs()) == [b"a", b"b", b"c"]
    s2.close()


def test_taken_over_tells_the_first_holder(echo: Agent) -> None:
    s = soam.connect().create_session("echo", type="Keep")
    s.submit([b"x"])
    other = soam.connect().open_session(s.address)
    with pytest.raises(soam.TakenOver, match="taken over"):
        list(s.outputs(timeout=30))
    assert [o.data for o in other.outputs()] == [b"x"]
    other.close()


def test_outputs_are_acknowledged_once_taken_and_the_rest_go_to_the_next_holder(echo: Agent) -> None:
    # Default type: outputs are discarded once acknowledged.
    s = soam.connect().create_session("echo", ordered=True)
    s.submit(str(i) for i in range(10))
    taken = []
    for o in s.outputs():
        taken.append(o.data)
        if len(taken) == 3:
            break
    assert taken == [b"0", b"1", b"2"]
    s.detach()
    s2 = soam.connect().open_session(s.address, ordered=True)
    rest = [o.data for o in s2.outputs()]
    assert rest == [str(i).encode() for i in range(3, 10)]
    s2.close()


def test_context_manager_detaches_when_the_block_raises(echo: Agent) -> None:
    c = soam.connect()
    with pytest.raises(RuntimeError):
        with c.create_session("echo", type="Keep") as s:
            s.submit([b"kept"])
            raise RuntimeError("the program failed")
    # Still open, unheld: reopen collects.
    s2 = c.open_session(s.address)
    assert [o.data for o in s2.outputs()] == [b"kept"]
    s2.close()


def test_abort_cancels_pending_tasks(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))
    s = soam.connect().create_session("h")
    s.submit(["sleep:30"] * 6)
    s.abort()
    hist = agent.run("soamview", "history", "h", "--json").stdout.decode()
    assert '"aborted"' in hist


def test_waiting_releases_the_gil(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))
    s = soam.connect().create_session("h")
    s.submit(["sleep:1"])
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        outs = list(s.outputs())
    finally:
        stop.set()
        t.join()
    assert [o.data for o in outs] == [b"slept"]
    # A thread that needs the GIL ran all through the wait.
    assert ticks > 100_000, ticks
    s.close()


def test_the_client_reconnects_after_an_agent_restart(echo: Agent) -> None:
    echo.register(
        "rec.yaml",
        profile("rec", "hooks.py", types="  - name: R\n    recoverable: true\n    onClientDisconnect: continue\n"),
    )
    s = soam.connect().create_session("rec", type="R", reconnect_timeout=30)
    assert s.submit(["a", "b"]) == range(1, 3)
    echo.kill9()
    echo.start()
    # The submission after the restart goes through the reconnected session.
    assert s.submit(["c"]) == range(3, 4)
    assert sorted(o.data for o in s.outputs(timeout=60)) == [b"a", b"b", b"c"]
    s.close()


def test_update_reaches_the_instances(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))
    with soam.connect().create_session("h", common_data=b"v1") as s:
        s.submit(["x"])
        assert [o.data for o in s.outputs()] == [b"v1x"]
        s.update(b"v2")
        s.submit(["y", "hooks"])
        got = {o.task: o.data for o in s.outputs()}
    assert got[2] == b"v2y"
    assert got[3].decode().endswith("enter:v1,update:v2")


def test_a_forked_child_connects_on_its_own_and_cannot_use_the_parent_s_session(echo: Agent) -> None:
    # multiprocessing's fork start method: the child inherits the library without its
    # threads. It makes its own; the parent's session is refused there, not hung on.
    s = soam.connect().create_session("echo", type="Keep")
    s.submit([b"parent"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(r)
            try:
                s.submit([b"from the child"])
                msg = "used the parent's session"
            except soam.SoamError as e:
                msg = "refused: " + str(e)
            with soam.connect().create_session("echo") as mine:
                mine.submit([b"child"])
                msg += " | " + ",".join(o.data.decode() for o in mine.outputs())
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    assert msg.startswith("refused: session echo:") and "forked" in msg, msg
    assert msg.endswith(" | child"), msg
    assert [o.data for o in s.outputs()] == [b"parent"]
    s.close()
