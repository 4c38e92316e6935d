#!/usr/bin/env python3
"""Example soam service in Python, speaking the protocol by hand (profiles/services/echo.py
is the same service on soam.service): answers each task with its input, prefixed by the
session's common data. Shows the whole service protocol (docs/service-protocol.md) in
a page: every message is a u32 little-endian length, then kind (u8), status (u8),
session (u64), task (u64), attempt (u32) and the payload; every request gets one reply
with the same header fields and a status of 0 (success), 1 (failure) or 2 (fatal)."""
import struct
import sys

HEADER = struct.Struct("<BBQQI")  # 22 bytes after the length
CREATE, ENTER, INVOKE, UPDATE, LEAVE, DESTROY = range(1, 7)
SUCCESS, FAILURE, FATAL = 0, 1, 2


def read_exact(stream, n):
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


def main():
    rd, wr = sys.stdin.buffer, sys.stdout.buffer
    prefix = b""
    while True:
        raw = read_exact(rd, 4)
        if raw is None:
            return  # the agent closed our input: leave quietly
        (length,) = struct.unpack("<I", raw)
        body = read_exact(rd, length)
        if body is None:
            return
        kind, _status, session, task, attempt = HEADER.unpack_from(body)
        payload = body[HEADER.size:]
        status, out = SUCCESS, b""
        if kind in (ENTER, UPDATE):
            prefix = payload
        elif kind == INVOKE:
            out = prefix + payload
        wr.write(struct.pack("<I", HEADER.size + len(out)))
        wr.write(HEADER.pack(kind, status, session, task, attempt))
        wr.write(out)
        wr.flush()
        if kind == DESTROY:
            return


if __name__ == "__main__":
    main()
