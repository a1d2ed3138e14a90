#!/usr/bin/env bash
# Speed of `vmsim run`: references per second on the default preset, one core.
#
# Inputs: a real valgrind lackey trace (zstd), the same trace converted to .vmt,
# and two synthetic 100M-reference streams (scan and zipf). Each is run RUNS times
# with `vmsim run -q`, pinned to one core with taskset when available (the zstd
# decompressor of a lackey trace runs on a helper thread: give it a second core
# with CORES=0,1). Prints: input, references, median wall seconds, M references
# per wall second, and M references per CPU second (user + system time of the
# process, all threads: the figure to trust on a loaded machine, where wall time
# also counts waiting for a core; for lackey+zstd it includes the decompressor).
#
# Usage: bench/run-speed.sh [RUNS]      (default 5)
# Environment: CORES (taskset core list, default 0), TRACE (a lackey .zst;
# default /work/shared/traces/lsR_linux.lackey.zst when it exists, plus the
# committed bench/data/sort_2k.lackey.zst), SYNTH_REFS (default 100M),
# VMSIM (a prebuilt binary; default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
CORES=${CORES:-0}
SYNTH_REFS=${SYNTH_REFS:-100M}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q -p vmsim-cli
    VMSIM=target/release/vmsim
fi
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$CORES"); fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

TRACES=(bench/data/sort_2k.lackey.zst)
if [[ -n "${TRACE:-}" ]]; then
    TRACES=("$TRACE")
elif [[ -f /work/shared/traces/lsR_linux.lackey.zst ]]; then
    TRACES+=(/work/shared/traces/lsR_linux.lackey.zst)
fi

INPUTS=()
for t in "${TRACES[@]}"; do
    name=$(basename "$t" .lackey.zst)
    "$VMSIM" trace convert "$t" "$WORK/$name.vmt" >/dev/null
    INPUTS+=("$t" "$WORK/$name.vmt")
done
# 100M references each: 400 MiB scanned in 4-byte steps; a zipf stream over 64Ki pages.
INPUTS+=("synth:scan,bytes=$(( ${SYNTH_REFS%M} * 4 ))MiB,stride=4")
INPUTS+=("synth:zipf,pages=65536,s=0.9,refs=$SYNTH_REFS")

TIMEFORMAT='%3R %3U %3S'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

printf '%-44s %11s %8s %9s %9s\n' input references wall_s Mrefs/s Mrefs/cpu
for input in "${INPUTS[@]}"; do
    refs=$("$VMSIM" run -q --json "$input" | jq '.references')
    walls=()
    cpus=()
    for _ in $(seq "$RUNS"); do
        t=$({ time "${PIN[@]}" "$VMSIM" run -q "$input" >/dev/null 2>&1; } 2>&1)
        read -r wall user sys <<<"$t"
        walls+=("$wall")
        cpus+=("$(echo "$user + $sys" | bc -l)")
    done
    wall=$(printf '%s\n' "${walls[@]}" | median)
    cpu=$(printf '%s\n' "${cpus[@]}" | median)
    label=$input
    [[ $input == "$WORK"/* ]] && label="${input#"$WORK"/} (.vmt)"
    printf '%-44s %11d %8.3f %9.1f %9.1f\n' "$label" "$refs" "$wall" \
        "$(echo "$refs / $wall / 1000000" | bc -l)" "$(echo "$refs / $cpu / 1000000" | bc -l)"
done
