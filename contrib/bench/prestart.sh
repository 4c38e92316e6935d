#!/bin/sh
# The first task's latency of an application whose service takes 2 s in CreateService,
# without and with preStartApplication (issue 38, item 3). Each round registers a fresh
# application of each kind, waits long enough for a pre-started instance to be ready,
# then times one `soamsession submit` of one task from start to output.
#
#   cargo build --release && sh contrib/bench/prestart.sh [ROUNDS]
set -eu
ROUNDS=${1:-3}
B=$(cd "$(dirname "$0")/../../target/release" && pwd)
SVC=$(cd "$(dirname "$0")/../../tests/services" && pwd)/behave.py
H=$(mktemp -d)
export SOAM_HOME="$H" SOAM_NO_AUTOSTART=1
"$B/soamd" --slots 8 2>/dev/null &
AGENT=$!
trap 'kill $AGENT 2>/dev/null; rm -rf "$H"' EXIT
until [ -S "$H/run/soamd.sock" ]; do sleep 0.1; done
ms() { echo $(( $(date +%s%N) / 1000000 )); }
for round in $(seq "$ROUNDS"); do
  for pre in false true; do
    app="app-$pre-$round"
    cat > "$H/$app.xml" <<XML
<Profile>
  <Consumer applicationName="$app" preStartApplication="$pre" numOfSlotsForPreloadedServices="1"/>
  <Service name="s">
    <osTypes><osType name="all" startCmd="python3 $SVC"><env name="BEHAVE_CREATE_SLEEP">2</env></osType></osTypes>
  </Service>
</Profile>
XML
    "$B/soamreg" "$H/$app.xml" 2>/dev/null
    # Time for a pre-started instance's CreateService (2 s) to be over.
    sleep 3
    t0=$(ms)
    "$B/soamsession" submit --app "$app" --task x >/dev/null
    t1=$(ms)
    echo "round $round preStartApplication=$pre first task: $((t1 - t0)) ms"
  done
done
