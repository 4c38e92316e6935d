#!/usr/bin/env python3
"""Reads a round trace of soamd (built with --features round-trace, run with
SOAM_TRACE=FILE) and prints, over the rounds of one task at a time (a Submit, then its
Invoke, the service's reply, the outputs), how long each step took: p10, p50 and p90.

    cargo build --release --features round-trace
    SOAM_TRACE=/tmp/trace.txt target/release/soambench --floor --json
    python3 contrib/bench/round_trace.py /tmp/trace.txt

Steps (crates/agent/src/trace.rs): 0 a connection's reader has the Submit, 6 the core's
task wakes, 1 the core takes the Submit, 2 the Invoke is in the service's pipe, 3 the
instance's reader has the reply, 6, 4 the core takes the reply, 5 the outputs are in the
client's socket.
"""
import sys

marks = [tuple(map(int, line.split())) for line in open(sys.argv[1])]
rounds = []
i = 0
while i < len(marks):
    if marks[i][0] != 0:
        i += 1
        continue
    seq = marks[i : i + 16]
    steps = [k for k, _ in seq]
    try:
        s1 = steps.index(1)
        s2 = steps.index(2, s1)
        s3 = steps.index(3, s2)
        s4 = steps.index(4, s3)
        s5 = steps.index(5, s4)
    except ValueError:
        i += 1
        continue
    # One task at a time only: no other Submit or reply inside the round.
    if 0 in steps[1:s5] or steps[s1:s5].count(3) != 1:
        i += 1
        continue
    t = lambda j: seq[j][1]
    wake1 = max((j for j in range(s1) if steps[j] == 6), default=s1)
    wake2 = max((j for j in range(s3, s4) if steps[j] == 6), default=s4)
    rounds.append({
        "reader -> core task wakes": t(wake1) - t(0),
        "core wakes -> takes the Submit": t(s1) - t(wake1),
        "Submit -> Invoke in the pipe": t(s2) - t(s1),
        "pipe -> reply read (service)": t(s3) - t(s2),
        "reader -> core task wakes (2)": t(wake2) - t(s3),
        "core wakes -> takes the reply": t(s4) - t(wake2),
        "reply -> outputs in the socket": t(s5) - t(s4),
        "in the agent, all": t(s5) - t(0),
    })
    i += s5
# Rounds after an idle pause (a millisecond or more) are not the warm ones measured.
rounds = [r for r in rounds if r["in the agent, all"] < 1_000_000]
print(f"{len(rounds)} rounds")
for key in rounds[0]:
    v = sorted(r[key] for r in rounds)
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))] / 1000
    print(f"{key:32s} p10 {q(0.1):7.2f}  p50 {q(0.5):7.2f}  p90 {q(0.9):7.2f} us")
