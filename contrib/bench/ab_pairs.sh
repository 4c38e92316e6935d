#!/bin/bash
# Alternates two builds' soambench, N pairs: A=dir B=dir ab_pairs.sh N OUT ARGS...
# (each dir a release folder: soambench, soamd, soam-echo-service...). Writes
# OUT.a.I.json and OUT.b.I.json. docs/benchmarks.md, "Ports between the core and its I/O".
set -u
n=$1; out=$2; shift 2
for i in $(seq 1 "$n"); do
  "$A/soambench" "$@" 2>/dev/null > "$out.a.$i.json"
  "$B/soambench" "$@" 2>/dev/null > "$out.b.$i.json"
done
