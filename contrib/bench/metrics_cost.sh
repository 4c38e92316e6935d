#!/bin/bash
# Tasks/s of `soamsession submit --count N` (no-op service, one session) with metrics
# off and on, alternating, PAIRS pairs, each with a fresh agent of the release folder
# DIR. "on": metricsAddress set and /metrics scraped every second meanwhile (Python's
# urllib, as a Prometheus server would):
#   metrics_cost.sh DIR N PAIRS
# docs/benchmarks.md, "Metrics".
set -u
b=$1; n=$2; pairs=$3
run() {  # $1: off | on
  h=$(mktemp -d); export SOAM_HOME=$h SOAM_AGENT_BIN=$b/soamd
  if [ "$1" = on ]; then echo "metricsAddress: 0" > "$h/soamd.yaml"; fi
  printf 'application: noop\nservices:\n  - name: noop\n    command: ["%s/soam-echo-service", "--noop"]\nsessionTypes:\n  - name: ""\n' "$b" > "$h/noop.yaml"
  "$b/soamreg" "$h/noop.yaml" >/dev/null 2>&1
  scraper=
  if [ "$1" = on ]; then
    addr=$(grep -o 'metrics served at http://[^/]*' "$h/data/soamd.log" | head -1 | sed 's|.*http://||')
    python3 -c "
import time, urllib.request
while True:
    urllib.request.urlopen('http://$addr/metrics').read()
    time.sleep(1)" &
    scraper=$!
  fi
  t0=$(date +%s.%N); "$b/soamsession" submit --app noop --count "$n" >/dev/null; t1=$(date +%s.%N)
  [ -n "$scraper" ] && kill "$scraper"
  echo "$1 $(python3 -c "print(round($n/($t1-$t0)))")"
  "$b/soamcontrol" agent shutdown >/dev/null
  rm -rf "$h"
}
for _ in $(seq 1 "$pairs"); do run off; run on; done
