"""The Python figures of soambench (issue 37's targets): soambench runs this with the
agent it started (SOAM_HOME) and the applications it registered, and prints what it prints.

    python3 contrib/bench/python_bench.py KIND TASKS [APP]   # one run, one JSON object

KIND:
  client   TASKS empty tasks submitted at once and collected (``for o in s.outputs()``)
           through the soam client, on app ``bench`` (the Rust no-op service): tasks/s;
  soamapi  TASKS tasks of a soamapi.Message subclass sent from 8 threads with
           send_task_input, then fetched with fetch_task_output and each output read with
           populate_task_output, on app ``echo`` (the Rust echo service): tasks/s;
  service  TASKS empty tasks through app APP (default ``pysvc``, whose instances are the
           pure-Python no-op service on soam.service; ``pyraw``: the hand-written
           profiles/services/raw_echo.py), submitted and collected by the soam client: tasks/s;
  latency  TASKS round trips of one task (submit, output, acknowledged) on app ``bench``
           after a warm-up task: the median and 99th percentile in microseconds.
Times are wall clock from the first submit to the last output.
"""

from __future__ import annotations

import array
import json
import sys
import threading
import time


def client(n: int) -> dict:
    import soam

    with soam.connect(name="python_bench") as agent:
        s = agent.create_session("bench")
        inputs = [b""] * n
        t0 = time.perf_counter()
        s.submit(inputs)
        got = 0
        for _ in s.outputs():
            got += 1
        secs = time.perf_counter() - t0
        s.close()
    assert got == n, (got, n)
    return {"python_client_tasks_per_s": n / secs}


def soamapi_run(n: int) -> dict:
    import soamapi

    class Payload(soamapi.Message):
        def __init__(self, data: bytes = b"") -> None:
            self.data = data

        def on_serialize(self, stream: "soamapi.OutputStream") -> None:
            a = array.array("b", self.data)
            stream.write_byte_array(a, 0, len(a))

        def on_deserialize(self, stream: "soamapi.InputStream") -> None:
            self.data = stream.read_byte_array("b")

    soamapi.initialize()
    conn = soamapi.connect("echo", soamapi.DefaultSecurityCallback("Guest", "Guest"))
    attrs = soamapi.SessionCreationAttributes()
    attrs.set_session_type("")
    session = conn.create_session(attrs)
    threads = 8
    t0 = time.perf_counter()

    def send(k: int) -> None:
        for _ in range(k * n // threads, (k + 1) * n // threads):
            task = soamapi.TaskSubmissionAttributes()
            task.set_task_input(Payload(b"x"))
            session.send_task_input(task)

    ts = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = 0
    while got < n:
        outs = session.fetch_task_output(n - got, 60)
        if not outs:
            raise SystemExit(f"soamapi: fetch_task_output timed out after {got} of {n}")
        for o in outs:
            m = Payload()
            o.populate_task_output(m)
        got += len(outs)
    secs = time.perf_counter() - t0
    session.close()
    conn.close()
    soamapi.uninitialize()
    return {"python_soamapi_tasks_per_s": n / secs}


def service(n: int, app: str = "pysvc") -> dict:
    import soam

    with soam.connect(name="python_bench") as agent:
        # A first session starts the instances, so that their start is not timed.
        with agent.create_session(app) as warm:
            warm.submit([b""] * 1000)
            for _ in warm.outputs():
                pass
        s = agent.create_session(app)
        t0 = time.perf_counter()
        s.submit([b""] * n)
        got = sum(1 for _ in s.outputs())
        secs = time.perf_counter() - t0
        s.close()
    assert got == n, (got, n)
    return {"python_service_tasks_per_s": n / secs}


def latency(n: int) -> dict:
    import soam

    with soam.connect(name="python_bench") as agent:
        s = agent.create_session("bench")
        s.submit([b""])
        for _ in s.outputs():
            pass
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            s.submit((b"",))
            for _ in s.outputs():
                pass
            samples.append((time.perf_counter() - t0) * 1e6)
        s.close()
    samples.sort()
    return {
        "python_latency_p50_us": samples[len(samples) // 2],
        "python_latency_p99_us": samples[min(len(samples) - 1, len(samples) * 99 // 100)],
    }


def main() -> int:
    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "service" and len(sys.argv) > 3:
        print(json.dumps(service(n, sys.argv[3])))
        return 0
    fn = {"client": client, "soamapi": soamapi_run, "service": service, "latency": latency}[kind]
    print(json.dumps(fn(n)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
