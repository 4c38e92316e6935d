"""soam.service on its own (pipes, no agent) and through the agent."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import soam
from conftest import SERVICES, Agent, profile

FRAME = struct.Struct("<IBBQQI")


def frame(kind: int, session: int = 0, task: int = 0, attempt: int = 0, payload: bytes = b"") -> bytes:
    return FRAME.pack(22 + len(payload), kind, 0, session, task, attempt) + payload


def replies(data: bytes):
    pos = 0
    while pos < len(data):
        length, kind, status, session, task, attempt = FRAME.unpack_from(data, pos)
        yield kind, status, session, task, attempt, data[pos + 26 : pos + 4 + length]
        pos += 4 + length


def run_service(requests: bytes) -> list:
    """Runs hooks.py on a pipe fed with ``requests`` at once (pipelined)."""
    env = dict(os.environ)
    p = subprocess.run([sys.executable, str(SERVICES / "hooks.py")], input=requests, capture_output=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return list(replies(p.stdout))


def test_a_pipelined_burst_is_answered_in_order_with_the_hooks() -> None:
    reqs = (
        frame(1, payload=b"app")
        + frame(2, session=7, payload=b"cd:")
        + b"".join(frame(3, 7, t, 1, b"x%d" % t) for t in range(1, 201))
        + frame(4, session=7, payload=b"new:")
        + frame(3, 7, 201, 1, b"y")
        + frame(3, 7, 202, 2, b"hooks")
        + frame(3, 7, 203, 1, b"fail")
        + frame(3, 7, 204, 1, b"fatal")
        + frame(3, 7, 205, 1, b"boom")
        + frame(5, session=7)
        + frame(6)
    )
    r = run_service(reqs)
    assert [x[0] for x in r] == [1, 2] + [3] * 200 + [4, 3, 3, 3, 3, 3, 5, 6]
    assert all(x[1] == 0 for x in r[:-5] if x[0] != 3 or x[3] < 203)
    invokes = {x[3]: x for x in r if x[0] == 3}
    assert invokes[1][5] == b"cd:x1" and invokes[200][5] == b"cd:x200"
    assert invokes[201][5] == b"new:y"
    assert invokes[202][5] == b"create,enter:cd:,update:new:" and invokes[202][4] == 2
    assert invokes[203][1] == 1 and invokes[203][5] == b"failed on attempt 1"
    assert invokes[204][1] == 2
    assert invokes[205][1] == 1 and b"ValueError: boom" in invokes[205][5]
    # Session, task and attempt are copied into each reply.
    assert all(x[2] == 7 for x in r if x[0] == 3)


def test_control_codes_go_first_in_the_reply_flagged_in_its_status() -> None:
    r = run_service(
        frame(1, payload=b"app")
        + frame(3, 1, 1, 1, b"code:-7")
        + frame(3, 1, 2, 1, b"failcode:3")
        + frame(3, 1, 3, 1, b"plain")
        + frame(6)
    )
    coded, failed, plain = r[1], r[2], r[3]
    # Status 0x80 | outcome, then the code (i32 LE) before the reply's own payload.
    assert coded[1] == 0x80 and struct.unpack_from("<i", coded[5])[0] == -7 and coded[5][4:] == b"coded"
    assert failed[1] == 0x81 and struct.unpack_from("<i", failed[5])[0] == 3 and failed[5][4:] == b"coded"
    # A code is the one reply's: the next one carries none.
    assert plain[1] == 0 and plain[5] == b"plain"


def test_a_request_cut_short_ends_the_service_quietly() -> None:
    r = run_service(frame(1, payload=b"app") + frame(3, 1, 1, 1, b"abc")[:10])
    assert [x[0] for x in r] == [1]


def test_the_agent_gives_instances_the_package_without_the_wheel(agent: Agent, tmp_path: Path) -> None:
    # A service whose python sees neither this test's PYTHONPATH nor an installed soam:
    # the agent's own folder (soamd writes it) is what it imports.
    script = tmp_path / "where.py"
    script.write_text(
        "import soam.service, soamapi, sys\n"
        "class W(soam.service.Service):\n"
        "    def on_invoke(self, data):\n"
        "        return soam.service.__file__ + ' ' + soamapi.__file__\n"
        "W().run()\n"
    )
    agent.register("w.yaml", profile("w", str(script), env="    env: {PYTHONPATH: /nonexistent}\n"))
    with soam.connect().create_session("w") as s:
        s.submit([b""])
        where = [o.data.decode() for o in s.outputs()]
    assert len(where) == 1 and where[0].count("soam-python-") == 2, where
