#!/usr/bin/env bash
# Runs a vmsim sweep on a real one-node Slurm cluster and checks that the
# merged table equals a local `vmsim sweep` of the same spec, byte for byte.
#
# Brings Slurm up from Debian's packages (slurm-wlm, munge; installed with
# apt-get when missing): munged, slurmctld and slurmd are started here as
# plain daemons (no systemd, no cgroups: proctrack/linuxproc, task/none),
# with their state, logs and ports of their own under a temporary
# directory, and stopped by PID at the end (a munged that was already
# running is used and left alone). Submits examples/slurm/sweep.sbatch as a
# job array numbered from 1 (so SLURM_ARRAY_TASK_MIN matters), waits,
# merges, compares.
#
# Usage: bench/slurm-sweep.sh [SPEC.toml] [TASKS]
# Environment: VMSIM (default target/release/vmsim, built if missing),
#              SLURM_SWEEP_TIMEOUT (seconds to wait for the array, 300).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="$(realpath "${1:-$root/examples/slurm/grid.toml}")"
tasks="${2:-3}"
timeout="${SLURM_SWEEP_TIMEOUT:-300}"
vmsim="${VMSIM:-$root/target/release/vmsim}"
if [[ ! -x "$vmsim" ]]; then
    cargo build --release --locked --quiet -p vmsim-cli --manifest-path "$root/Cargo.toml"
fi
vmsim="$(realpath "$vmsim")"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "== installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work="$(mktemp -d /tmp/vmsim-slurm.XXXXXX)"
chmod 755 "$work"
pids=()
stop() {
    local status=$?
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    if [[ $status -ne 0 ]]; then
        echo "== slurm-sweep failed; logs in $work" >&2
        tail -n 20 "$work"/*.log >&2 2>/dev/null || true
    else
        rm -rf "$work"
    fi
    exit $status
}
trap stop EXIT

# munge: a key, its run directory (owned by munge), the daemon.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    pids+=("$(cat /run/munge/munged.pid)")
    munge -n | unmunge >/dev/null
fi

host="$(hostname -s)"
ctld_port=$((20000 + RANDOM % 20000))
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<CONF
ClusterName=vmsim
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=vmsim Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -f "$SLURM_CONF"
for _ in $(seq 100); do [[ -s "$work/slurmctld.pid" ]] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do [[ -s "$work/slurmd.pid" ]] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 150); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 0.2
done
echo "== slurm up: $(sinfo -h -o '%P %D %T %c CPUs')"

echo "== sbatch --array=1-$tasks ($(basename "$spec"))"
job="$(cd "$work" && VMSIM="$vmsim" sbatch --parsable --export=ALL \
    --array="1-$tasks" "$root/examples/slurm/sweep.sbatch" "$spec" "$work/cluster")"
job="${job%%;*}"
deadline=$((SECONDS + timeout))
while [[ -n "$(squeue -h -j "$job" 2>/dev/null)" ]]; do
    if ((SECONDS > deadline)); then
        echo "the array did not finish in ${timeout}s" >&2
        scancel "$job" || true
        exit 1
    fi
    sleep 0.5
done
for f in "$work"/vmsim-sweep-"$job"_*.out; do
    sed 's/^/  /' "$f"
done
ok="$(grep -l '^sweep .* runs in the grid' "$work"/vmsim-sweep-"$job"_*.out | wc -l)"
if [[ "$ok" -ne "$tasks" ]]; then
    echo "only $ok of $tasks array tasks finished their share" >&2
    exit 1
fi

echo "== local sweep of the same spec"
"$vmsim" sweep "$spec" --out "$work/local" --quiet
for fmt in csv json; do
    "$vmsim" sweep merge "$work/cluster" --$fmt > "$work/cluster.$fmt"
    "$vmsim" sweep merge "$work/local" --$fmt > "$work/local.$fmt"
    cmp "$work/cluster.$fmt" "$work/local.$fmt"
done
rows=$(($(wc -l < "$work/cluster.csv") - 1))
echo "slurm-sweep: $tasks array tasks, $rows runs; the merged table equals the local one byte for byte (csv $(wc -c < "$work/cluster.csv") bytes, json $(wc -c < "$work/cluster.json") bytes)"
