#!/bin/bash
# Tasks/s of `soamsession submit --count N` (no-op service, one session, outputs to
# /dev/null), RUNS submits to one agent of the release folder DIR:
#   submit_rate.sh DIR N RUNS
set -u
b=$1; n=$2; runs=$3
h=$(mktemp -d); export SOAM_HOME=$h SOAM_AGENT_BIN=$b/soamd
printf 'application: noop\nservices:\n  - name: noop\n    command: ["%s/soam-echo-service", "--noop"]\nsessionTypes:\n  - name: ""\n' "$b" > "$h/noop.yaml"
"$b/soamreg" "$h/noop.yaml" >/dev/null
for _ in $(seq 1 "$runs"); do
  t0=$(date +%s.%N); "$b/soamsession" submit --app noop --count "$n" >/dev/null; t1=$(date +%s.%N)
  python3 -c "print(round($n/($t1-$t0)))"
done
"$b/soamcontrol" agent shutdown >/dev/null
rm -rf "$h"
