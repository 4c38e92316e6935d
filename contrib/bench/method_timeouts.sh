#!/bin/bash
# What a method timeout costs: 1,000,000 no-op tasks through `soamsession submit
# --count`, twice, with and without `invoke: {timeout: 60}` in the profile, in one
# agent; prints each run's wall time and the agent's memory after it.
#
# usage: contrib/bench/method_timeouts.sh [BIN_DIR]   (default: target/release)
set -euo pipefail
bin=$(cd "${1:-target/release}" && pwd)
dir=$(mktemp -d)
export SOAM_HOME=$dir/home SOAM_NO_AUTOSTART=1
unset SOAM_SOCKET
mkdir -p "$SOAM_HOME"
for t in 0 60; do
  cat > "$dir/t$t.yaml" <<YAML
application: t$t
services:
  - name: noop
    command: ["$bin/soam-echo-service", "--noop"]
    control:
      invoke: {timeout: $t}
sessionTypes:
  - name: ""
    persistTaskHistory: none
YAML
done
"$bin/soamd" --slots 2 > "$dir/agent.log" 2>&1 &
agent=$!
trap 'kill $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do "$bin/soamview" app > /dev/null 2>&1 && break; sleep 0.1; done
"$bin/soamreg" "$dir/t0.yaml" -f > /dev/null
"$bin/soamreg" "$dir/t60.yaml" -f > /dev/null
for t in 0 60 0 60; do
  start=$(date +%s%N)
  "$bin/soamsession" submit --app "t$t" --count 1000000 > /dev/null
  ms=$((($(date +%s%N) - start) / 1000000))
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
  printf 'invoke timeout %2s s: %d.%03d s, agent RSS %d MiB\n' "$t" $((ms / 1000)) $((ms % 1000)) $((rss / 1024))
done
