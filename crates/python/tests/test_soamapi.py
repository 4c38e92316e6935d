"""Symphony's soamapi on soam: the calls real Symphony programs make, against a real agent."""

from __future__ import annotations

import array
import logging
import os
import pickle
import re
import subprocess
import sys
import threading

import pytest

from conftest import REPO, Agent, profile

EXAMPLES = REPO / "profiles" / "soamapi"


def test_importing_soamapi_does_nothing_else() -> None:
    code = (
        "import sys, threading\n"
        "before = threading.active_count()\n"
        "import soamapiversion, soamapi\n"
        "assert threading.active_count() == before, 'a thread at import'\n"
        "assert 'soam._native' not in sys.modules, 'the compiled client loaded at import'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=os.environ)
    assert out.stdout == b"ok\n", out.stderr.decode()


def test_the_example_pair_runs_as_symphony_programs(agent: Agent) -> None:
    agent.run("soamreg", str(EXAMPLES / "SampleAppPython.xml"))
    sync = subprocess.run([sys.executable, str(EXAMPLES / "SyncClient.py"), "20"], capture_output=True, env=os.environ, timeout=120)
    text = sync.stdout.decode()
    assert sync.returncode == 0, text + sync.stderr.decode()
    assert "all done: 20 of 20" in text
    # Four threads send, so which text got which id varies; each reply names its own task.
    replies = re.findall(r"^task (\d+): echo hello (\d+) \(task (\d+)\)$", text, re.M)
    assert len(replies) == 20 and all(a == c for a, _, c in replies), text
    assert sorted(int(k) for _, k, _ in replies) == list(range(20)), text
    asyn = subprocess.run(
        [sys.executable, str(EXAMPLES / "AsyncClient.py"), "0", "ok", "oops", "fatal"],
        capture_output=True,
        env=os.environ,
        timeout=120,
    )
    text = asyn.stdout.decode()
    assert asyn.returncode == 0, text + asyn.stderr.decode()
    assert "all done: 3 of 3, 2 failed" in text
    assert "ValueError(\"the service could not handle 'oops'\")" in text
    assert "FatalException('asked to fail for good')" in text


@pytest.fixture
def app(agent: Agent) -> Agent:
    agent.register(
        "c.yaml",
        profile(
            "capp",
            "container.py",
            types="  - name: R2\n    taskRetryLimit: 2\n  - name: Keep\n    onClientDisconnect: continue\n    discardResultsOnDelivery: false\n",
        ),
    )
    return agent


def text_message(s: str):
    import soamapi

    m = soamapi.DefaultTextMessage()
    m.set_text(s)
    return m


def send(session, text: str):
    import soamapi

    t = soamapi.TaskSubmissionAttributes()
    t.set_task_input(text_message(text))
    return session.send_task_input(t)


def new_session(conn, type_: str = "", flags=None, callback=None, name=None):
    import soamapi

    a = soamapi.SessionCreationAttributes()
    a.set_session_type(type_)
    if name is not None:
        a.set_session_name(name)
    if flags is not None:
        a.set_session_flags(flags)
    if callback is not None:
        a.set_session_callback(callback)
    return conn.create_session(a)


def texts(outputs):
    import soamapi

    got = {}
    for o in outputs:
        m = soamapi.DefaultTextMessage()
        o.populate_task_output(m)
        got[int(o.get_id())] = m.get_text()
    return got


def test_send_from_many_threads_and_fetch_everything(app: Agent) -> None:
    import soamapi

    soamapi.initialize()
    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("anyone", "any password"))
    s = new_session(conn)
    ids = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        for i in range(250):
            h = send(s, f"t{k}-{i}")
            with lock:
                ids.append(h.get_id())

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(i) for i in ids) == list(range(1, 2001))
    got = {}
    while len(got) < 2000:
        outs = s.fetch_task_output(2000 - len(got), 60)
        assert outs, "fetch_task_output timed out with tasks outstanding"
        got.update(texts(outs))
    assert set(got.values()) == {f"T{k}-{i}" for k in range(8) for i in range(250)}
    s.close()
    conn.close()
    soamapi.uninitialize()


def test_fetch_task_output_returns_zero_to_count_and_never_raises_on_timeout(app: Agent) -> None:
    import soamapi

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    s = new_session(conn)
    assert s.fetch_task_output(5, 0) == []
    assert s.fetch_task_output(5, 0.2) == []
    for i in range(3):
        send(s, f"x{i}")
    got = []
    while len(got) < 3:
        outs = s.fetch_task_output(1, 30)
        assert len(outs) == 1
        got += outs
    assert sorted(texts(got).values()) == ["X0", "X1", "X2"]
    s.close(soamapi.SessionCloseFlags.DESTROY_ON_CLOSE)
    conn.close()


def test_failures_embed_the_service_s_exception(app: Agent) -> None:
    import soamapi

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    s = new_session(conn, "R2")
    hs = {send(s, t).get_id(): t for t in ["fail", "fatal", "oops", "custom", "attempt"]}
    outs = []
    while len(outs) < 5:
        outs += s.fetch_task_output(5, 60)
    by = {hs[o.get_id()]: o for o in outs}
    assert by["attempt"].is_successful() and by["attempt"].get_exception() is None
    for name in ["fail", "fatal", "oops", "custom"]:
        assert not by[name].is_successful()
    fail = by["fail"].get_exception()
    assert isinstance(fail, soamapi.SoamException)
    emb = fail.get_embedded_exception()
    assert isinstance(emb, soamapi.FailureException) and str(emb) == "asked to fail"
    fatal = by["fatal"].get_exception().get_embedded_exception()
    assert isinstance(fatal, soamapi.FatalException)
    oops = by["oops"].get_exception().get_embedded_exception()
    assert type(oops) is ValueError and str(oops) == "bad value 'oops'"
    assert "raise ValueError" in oops.service_traceback and "container.py" in oops.service_traceback
    custom = by["custom"].get_exception().get_embedded_exception()
    assert isinstance(custom, soamapi.ServiceException)
    assert str(custom) == "CustomError: a class of the service's own" and custom.type_name == "CustomError"
    # The embedded exceptions pickle, traceback and all (they go to other processes).
    for e in (oops, custom, fail):
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and str(again) == str(e)
    assert pickle.loads(pickle.dumps(oops)).service_traceback == oops.service_traceback
    assert "FailureException: asked to fail" in str(fail)
    s.close()
    conn.close()


def test_control_codes_from_the_contexts_act_as_the_profile_says(agent: Agent, tmp_path) -> None:
    import soamapi

    control = (
        "    control:\n      invoke:\n        on:\n"
        "          - {event: return, controlCode: 5, actionOnWorkload: fail}\n"
        "          - {event: failure, controlCode: 3, actionOnWorkload: fail}\n"
    )
    agent.register("coded.yaml", profile("coded", "container.py", types="    taskRetryLimit: 2\n", env=control))
    conn = soamapi.connect("coded", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    s = new_session(conn)
    coded, plain = tmp_path / "coded.log", tmp_path / "plain.log"
    hs = {send(s, t).get_id(): t for t in ["code:5:no", "code:0:yes", f"failcode:3:{coded}", f"failcode:0:{plain}"]}
    outs = []
    while len(outs) < 4:
        outs += s.fetch_task_output(4, 60)
    by = {hs[o.get_id()]: o for o in outs}
    assert not by["code:5:no"].is_successful()
    assert "control code 5" in str(by["code:5:no"].get_exception())
    assert texts([by["code:0:yes"]]) == {int(by["code:0:yes"].get_id()): "yes"}
    # Code 3's failure fails at once; code 0's is retried to the limit (2 retries).
    assert not by[f"failcode:3:{coded}"].is_successful()
    assert coded.read_text().count("attempt") == 1
    assert plain.read_text().count("attempt") == 3
    s.close()
    conn.close()


def test_byte_array_messages_and_common_data(app: Agent) -> None:
    import soamapi

    class Blob(soamapi.Message):
        def __init__(self):  # no super().__init__()
            self.data = None

        def on_serialize(self, stream):
            raise AssertionError("not sent")

        def on_deserialize(self, stream):
            self.data = stream.read_byte_array("b")

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    a = soamapi.SessionCreationAttributes()
    a.set_session_type("")
    a.set_common_data(text_message("shared"))
    s = conn.create_session(a)
    send(s, "bytes:300")
    send(s, "common")
    outs = []
    while len(outs) < 2:
        outs += s.fetch_task_output(2, 30)
    outs.sort(key=lambda o: int(o.get_id()))
    b = Blob()
    outs[0].populate_task_output(b)
    assert isinstance(b.data, array.array) and b.data.typecode == "b" and len(b.data) == 300
    assert b.data.tobytes() == bytes(i % 256 for i in range(300))
    # The array goes straight into pickle.loads, as real clients do (buffer protocol).
    assert pickle.loads(array.array("b", pickle.dumps({"k": 1}))) == {"k": 1}
    assert texts([outs[1]]) == {2: "shared"}
    s.close()
    conn.close()


def test_partial_async_calls_back_on_library_threads_and_survives_a_raising_callback(app: Agent, caplog) -> None:
    import soamapi

    seen = []
    threads = set()
    done = threading.Event()

    class Cb(soamapi.SessionCallback):  # no super().__init__()
        def __init__(self):
            self.lock = threading.Lock()

        def on_response(self, h):
            with self.lock:
                threads.add((threading.current_thread().name, threading.current_thread().daemon))
                seen.append(h.get_id())
                if len(seen) == 1:
                    raise RuntimeError("a callback that raises")
                if len(seen) == 30:
                    done.set()

        def on_exception(self, e):
            raise AssertionError(f"on_exception: {e}")

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    cb = Cb()
    s = new_session(conn, flags=soamapi.SessionFlags.PARTIAL_ASYNC, callback=cb)
    with caplog.at_level(logging.ERROR, logger="soamapi"):
        for i in range(30):
            # Held while sending, as real clients do: send never waits for a callback.
            with cb.lock:
                h = send(s, f"a{i}")
                h.get_id()
        assert done.wait(60), f"{len(seen)} callbacks"
    assert sorted(int(i) for i in seen) == list(range(1, 31))
    assert all(daemon and name.startswith("soamapi-") for name, daemon in threads)
    assert "a callback that raises" in caplog.text
    s.close()
    conn.close()


def test_on_exception_is_called_when_the_session_is_killed(app: Agent) -> None:
    import soamapi

    failed = threading.Event()

    class Cb(soamapi.SessionCallback):
        def on_exception(self, e):
            assert isinstance(e, soamapi.SoamException)
            failed.set()

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    s = new_session(conn, flags=soamapi.SessionFlags.PARTIAL_ASYNC, callback=Cb())
    app.run("soamcontrol", "session", "kill", f"capp:{s.get_id()}")
    assert failed.wait(30)
    with pytest.raises(soamapi.SoamException):
        s.close()
    conn.close()


def test_a_session_name_is_a_label_several_sessions_share(app: Agent) -> None:
    import soamapi

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    a = new_session(conn, name="ScalerSession")
    b = new_session(conn, name="ScalerSession")
    assert a.get_id() != b.get_id()
    assert a.get_session_name() == b.get_session_name() == "ScalerSession"
    conn.close()  # closes both


def test_detach_on_close_then_open_session_by_id(app: Agent) -> None:
    import soamapi

    conn = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    s = new_session(conn, "Keep")
    for i in range(4):
        send(s, f"d{i}")
    sid = s.get_id()
    s.close(soamapi.SessionCloseFlags.DETACH_ON_CLOSE)
    conn.close()
    conn2 = soamapi.connect("capp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    o = soamapi.SessionOpenAttributes()
    o.set_session_id(sid)
    s2 = conn2.open_session(o)
    got = []
    while len(got) < 4:
        outs = s2.fetch_task_output(4, 30)
        assert outs
        got += outs
    assert sorted(texts(got).values()) == ["D0", "D1", "D2", "D3"]
    s2.close()
    conn2.close()


def test_errors_are_soam_exceptions(app: Agent) -> None:
    import soamapi

    conn = soamapi.connect("noSuchApp", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    with pytest.raises(soamapi.SoamException, match="noSuchApp"):
        new_session(conn)
    conn2 = soamapi.connect("capp", None)
    with pytest.raises(soamapi.SoamException, match="NoSuchType"):
        new_session(conn2, "NoSuchType")
    s = new_session(conn2)
    with pytest.raises(soamapi.SoamException, match="no task input"):
        s.send_task_input(soamapi.TaskSubmissionAttributes())
    s.close()
    with pytest.raises(soamapi.SoamException, match="closed"):
        send(s, "late")


def test_a_refused_send_is_raised_by_get_id_and_by_the_next_send(tmp_path, monkeypatch) -> None:
    # A non-recoverable send returns before the agent has the task: a refusal (here
    # maxStoredTasks) comes back through the refused tasks' get_id and the next send.
    import soamapi

    home = tmp_path / "h"
    home.mkdir(mode=0o700)
    (home / "soamd.yaml").write_text("maxStoredTasks: 5\n")
    monkeypatch.setenv("SOAM_HOME", str(home))
    a = Agent(home)
    a.start()
    try:
        a.register("c.yaml", profile("capp", "container.py"))
        conn = soamapi.connect("capp", None)
        s = new_session(conn)
        # However the sends gather into submissions, ten pass the limit of five.
        hs = [send(s, "x") for _ in range(10)]
        errors = []
        for h in hs:
            try:
                h.get_id()
            except soamapi.SoamException as e:
                errors.append(str(e))
        assert errors and all("maxStoredTasks" in e for e in errors), errors
        with pytest.raises(soamapi.SoamException, match="maxStoredTasks"):
            send(s, "after")
        s.close()
        conn.close()
    finally:
        a.stop()
