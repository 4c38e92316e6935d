#!/usr/bin/env python3
"""Test service whose behaviour each task's input chooses:
  fail            failure (retryable) with "failed on attempt N"
  fatal           fatal failure
  die             the process exits in the middle of the task
  dieonce:PATH    dies unless PATH exists (creates it first): the retry succeeds
  sleep:S         sleeps S seconds, then answers "slept"
  nap:S:TEXT      sleeps S seconds, then answers TEXT
  pid             answers its process id
  peek:S          answers "next-waiting" if another request was already waiting in its
                  pipe (or came within S seconds), else "next-not-waiting"
  whoami          answers "uid gid groups HOME pid" (groups comma-separated, sorted)
  cwd             answers the folder it runs in
Environment BEHAVE_CREATE_SLEEP=S makes CreateService take S seconds.
  anything else   answers common data + input
Common data "fail-enter" makes SessionEnter (and SessionUpdate) fail; common data
"update-fails-once:PATH..." makes a SessionUpdate to it fail unless PATH exists (creating
it first), while SessionEnter takes it. Common data "leave-log:PATH" makes its
SessionLeave append to PATH whether the agent's next request was already waiting in the
pipe ("next-waiting") or not within 5 s ("next-not-waiting"); requests are read straight
from the pipe, unbuffered, so the pipe shows what the agent has sent and not yet been
read.
With BEHAVE_EARLY=1 in its environment it announces early invokes (docs/service-protocol.md)
and refuses, unrun, the Invokes that follow a failed early SessionEnter of their session;
common data "enter-fails-once:PATH" makes the first SessionEnter that creates PATH fail
(one of several racing), each refused Invoke append its task id to PATH.refused, and
each of the session's Invokes that runs append its task id to PATH.started. With
BEHAVE_DIE_REFUSED=1 as well, the process does not answer the first Invoke it refuses:
it waits (up to 30 s) until PATH.die exists, then exits.
Common data "enter-waits:PATH ..." makes SessionEnter create PATH.entering, then wait (up
to 30 s) until PATH.go exists before it answers."""
import os
import select
import struct
import sys
import time

HEADER = struct.Struct("<BBQQI")
CREATE, ENTER, INVOKE, UPDATE, LEAVE, DESTROY = range(1, 7)


def read_exact(fd, n):
    b = b""
    while len(b) < n:
        part = os.read(fd, n - len(b))
        if not part:
            return None
        b += part
    return b


def main():
    rd, wr = sys.stdin.fileno(), sys.stdout.buffer
    common = b""
    early = os.environ.get("BEHAVE_EARLY") == "1"
    die_refused = os.environ.get("BEHAVE_DIE_REFUSED") == "1"
    refused = None  # (session, log path or None) whose early SessionEnter failed
    while True:
        raw = read_exact(rd, 4)
        if raw is None:
            return
        body = read_exact(rd, struct.unpack("<I", raw)[0])
        if body is None:
            return
        kind, _s, session, task, attempt = HEADER.unpack_from(body)
        payload = body[HEADER.size:]
        status, out = 0, b""
        if kind == CREATE and early:
            attempt = 1  # the features it announces
        if kind == CREATE and os.environ.get("BEHAVE_CREATE_SLEEP"):
            time.sleep(float(os.environ["BEHAVE_CREATE_SLEEP"]))
        if kind == ENTER:
            refused = None
        if kind == INVOKE and refused is not None and refused[0] == session:
            if refused[1]:
                with open(refused[1], "a") as log:
                    log.write("%d\n" % task)
                if die_refused:
                    die = refused[1][:-len(".refused")] + ".die"
                    deadline = time.time() + 30
                    while not os.path.exists(die) and time.time() < deadline:
                        time.sleep(0.01)
                    os._exit(3)
            status = 1
        elif kind in (ENTER, UPDATE):
            once = b"update-fails-once:"
            enter_once = b"enter-fails-once:"
            if kind == ENTER and payload.startswith(enter_once):
                path = payload[len(enter_once):].decode()
                try:
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    status, out = 1, b"enter refused once"
                except FileExistsError:
                    common = payload
            elif kind == ENTER and payload.startswith(b"enter-waits:"):
                # Holds SessionEnter (its reply, and so the session's tasks) until the
                # test says go, so that it can act while the Enter is under way.
                path = payload[len(b"enter-waits:"):].split(b" ")[0].decode()
                open(path + ".entering", "w").close()
                deadline = time.time() + 30
                while not os.path.exists(path + ".go") and time.time() < deadline:
                    time.sleep(0.01)
                common = payload
            elif payload == b"fail-enter":
                status, out = 1, b"enter refused"
            elif kind == UPDATE and payload.startswith(once):
                path = payload[len(once):].split(b" ")[0].decode()
                if not os.path.exists(path):
                    open(path, "w").close()
                    status, out = 1, b"update refused"
                else:
                    common = payload
            else:
                common = payload
            if kind == ENTER and status != 0 and attempt & 1:
                log = None
                if payload.startswith(enter_once):
                    log = payload[len(enter_once):].decode() + ".refused"
                refused = (session, log)
        elif kind == LEAVE and common.startswith(b"leave-log:"):
            waiting = select.select([rd], [], [], 5.0)[0]
            with open(common[len(b"leave-log:"):].decode(), "a") as log:
                log.write("next-waiting\n" if waiting else "next-not-waiting\n")
        elif kind == INVOKE:
            text = payload.decode("utf-8", "replace")
            if common.startswith(b"enter-fails-once:"):
                with open(common[len(b"enter-fails-once:"):].decode() + ".started", "a") as log:
                    log.write("%d\n" % task)
            if text == "fail":
                status, out = 1, b"failed on attempt %d" % attempt
            elif text == "fatal":
                status, out = 2, b"fatal on attempt %d" % attempt
            elif text == "die":
                os._exit(3)
            elif text.startswith("dieonce:"):
                path = text[len("dieonce:"):]
                if not os.path.exists(path):
                    open(path, "w").close()
                    os._exit(3)
                out = b"survived on attempt %d" % attempt
            elif text.startswith("sleep:"):
                time.sleep(float(text[len("sleep:"):]))
                out = b"slept"
            elif text.startswith("nap:"):
                _, secs, rest = text.split(":", 2)
                time.sleep(float(secs))
                out = rest.encode()
            elif text.startswith("say:"):
                sys.stderr.write(text[len("say:"):] + "\n")
                sys.stderr.flush()
                out = b"said"
            elif text.startswith("env:"):
                out = os.environ.get(text[len("env:"):], "unset").encode()
            elif text == "sockets":
                # Sockets this process has open: a listening socket leaked from the
                # agent would be one.
                n = 0
                for fd in os.listdir("/proc/self/fd"):
                    try:
                        n += os.readlink("/proc/self/fd/" + fd).startswith("socket:")
                    except OSError:
                        pass
                out = str(n).encode()
            elif text.startswith("peek:"):
                waiting = select.select([rd], [], [], float(text[len("peek:"):]))[0]
                out = b"next-waiting" if waiting else b"next-not-waiting"
            elif text == "pid":
                out = str(os.getpid()).encode()
            elif text == "whoami":
                groups = ",".join(str(g) for g in sorted(os.getgroups()))
                out = ("%d %d %s %s %d" % (os.getuid(), os.getgid(), groups,
                                           os.environ.get("HOME", ""), os.getpid())).encode()
            elif text == "cwd":
                out = os.getcwd().encode()
            else:
                out = common + payload
        wr.write(struct.pack("<I", HEADER.size + len(out)))
        wr.write(HEADER.pack(kind, status, session, task, attempt))
        wr.write(out)
        wr.flush()
        if kind == DESTROY:
            return


if __name__ == "__main__":
    main()
