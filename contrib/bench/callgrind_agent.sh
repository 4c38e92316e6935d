#!/bin/bash
# The agent's instructions for a fixed workload, under callgrind.
#   callgrind_agent.sh DIR OUT floor    soambench --floor --json (the latency rounds)
#   callgrind_agent.sh DIR OUT tasks N  N no-op tasks of one session (soamsession submit)
# DIR is a release folder; a copy of it is made in which `soamd` is a script starting
# valgrind on the real one (in the background, so that soambench's SIGKILL of the agent
# reaches only the script; the agent is then stopped with SIGTERM or `agent shutdown`,
# and callgrind writes OUT). Prints callgrind's totals line.
set -u
dir=$1; out=$2; what=$3
w=$(mktemp -d); cp "$dir"/{soamd,soam-echo-service,soambench,soamreg,soamsession,soamcontrol,soamview} "$w"/
mv "$w/soamd" "$w/soamd.real"
cat > "$w/soamd" <<EOS
#!/bin/sh
valgrind --tool=callgrind --callgrind-out-file="$out" "$w/soamd.real" "\$@" 2>"$w/vg.log" &
echo \$! > "$w/vg.pid"
wait
EOS
chmod +x "$w/soamd"
h=$(mktemp -d); export SOAM_HOME=$h SOAM_AGENT_BIN=$w/soamd SOAM_CONNECT_TIMEOUT=120
case $what in
  floor) "$w/soambench" --floor --json >/dev/null 2>&1
         kill -TERM "$(cat "$w/vg.pid")" 2>/dev/null ;;
  tasks) printf 'application: noop\nservices:\n  - name: noop\n    command: ["%s/soam-echo-service", "--noop"]\nsessionTypes:\n  - name: ""\n' "$w" > "$h/noop.yaml"
         "$w/soamreg" "$h/noop.yaml" >/dev/null
         "$w/soamsession" submit --app noop --count "$4" >/dev/null
         "$w/soamcontrol" agent shutdown >/dev/null ;;
esac
pid=$(cat "$w/vg.pid"); for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
grep totals: "$out"
rm -rf "$w" "$h"
