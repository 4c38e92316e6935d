#!/bin/sh
# tests/bench/cluster.sh BINDIR: the same no-op and exec workloads through one agent,
# on 6 local slots and on a 3-node Slurm allocation of 3 x 2 CPUs (slurm-local.sh
# start --nodes 3). Prints the time to the first task on an empty cluster and three (RUNS=N: N)
# alternating runs of each workload. Used for docs/benchmarks.md.
B=$1
export SOAM_HOME=$(mktemp -d) SOAM_NO_AUTOSTART=1
S="launcher: slurm\n    slurm: {partition: local, nodes: 3, cpusPerNode: 2, timeLimit: \"30\", maxAllocations: 1, idleRelease: 600}"
printf "application: loc\nservices:\n  - name: noop\n    default: true\n    command: [\"$B/soam-echo-service\", \"--noop\"]\n  - name: t\n    mode: exec\n    command: [\"true\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n  - name: Exec\n    serviceName: t\n    persistTaskHistory: none\n" > $SOAM_HOME/loc.yaml
printf "application: clu\nservices:\n  - name: noop\n    default: true\n    command: [\"$B/soam-echo-service\", \"--noop\"]\n    $S\n  - name: t\n    mode: exec\n    command: [\"true\"]\n    $S\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n  - name: Exec\n    serviceName: t\n    persistTaskHistory: none\n" > $SOAM_HOME/clu.yaml
$B/soamd --slots 6 >$SOAM_HOME/agent.log 2>&1 &
until $B/soamcontrol agent status >/dev/null 2>&1; do sleep 0.01; done
$B/soamreg $SOAM_HOME/loc.yaml >/dev/null; $B/soamreg $SOAM_HOME/clu.yaml >/dev/null
t() { s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
echo "first task on an empty cluster (s): $(t $B/soamsession submit --app clu --task x)"
echo "first exec task on an empty cluster (s): $(t $B/soamsession submit --app clu --type Exec --task x)"
for r in $(seq ${RUNS:-3}); do
  echo "persistent 300000 no-op: local $(t $B/soamsession submit --app loc --count 300000) s, cluster $(t $B/soamsession submit --app clu --count 300000) s"
done
for r in $(seq ${RUNS:-3}); do
  echo "exec 3000 true: local $(t $B/soamsession submit --app loc --type Exec --count 3000) s, cluster $(t $B/soamsession submit --app clu --type Exec --count 3000) s"
done
$B/soamview cluster
$B/soamcontrol agent shutdown >/dev/null; wait
rm -rf $SOAM_HOME
