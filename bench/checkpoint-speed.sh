#!/usr/bin/env bash
# Checkpoint speed and sizes (issue 9's figures), release build.
#
# 1. Page data: a full checkpoint of a memory image of MIB MiB (default
#    1024; every page written), its write (to the page cache, then fsync)
#    and its restore (crates/vmsim/examples/checkpoint_speed.rs).
# 2. Throughput: `vmsim run` of a real trace with and without
#    --checkpoint-every EVERY (default 1M) into a fresh directory, RUNS
#    times (default 5), median wall and CPU seconds, one core for the
#    simulation (taskset) unless CORES is set; with pause mode (host
#    tracker) and write-protect mode (both trackers).
# 3. Sizes: the same run's checkpoint files: the full one, each increment,
#    and the dirty pages each tracker found (write-protect mode, both
#    trackers), from the report's records.
#
# Usage: bench/checkpoint-speed.sh [RUNS]
# Environment: MIB, EVERY, CORES (taskset core list, default 0,1: the zstd
# decompressor and the checkpoint writer have threads), TRACE (a lackey
# .zst; default /work/shared/traces/lsR_linux.lackey.zst when present, else
# the committed bench/data/sort_2k.lackey.zst), VMSIM (a prebuilt binary).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
MIB=${MIB:-1024}
EVERY=${EVERY:-1M}
CORES=${CORES:-0,1}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q -p vmsim-cli
    VMSIM=target/release/vmsim
fi
TRACE=${TRACE:-}
if [[ -z "$TRACE" ]]; then
    if [[ -f /work/shared/traces/lsR_linux.lackey.zst ]]; then
        TRACE=/work/shared/traces/lsR_linux.lackey.zst
    else
        TRACE=bench/data/sort_2k.lackey.zst
    fi
fi
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$CORES"); fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== page data: full checkpoint of $MIB MiB"
cargo run --release -q -p vmsim --example checkpoint_speed -- "$MIB" "$WORK"
rm -rf "$WORK"/ck "$WORK"/raw.vmck

TIMEFORMAT='%3R %3U %3S'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
measure() { # label, args...
    local label=$1
    shift
    local walls=() cpus=()
    for i in $(seq "$RUNS"); do
        rm -rf "$WORK/ck"
        local t
        t=$({ time "${PIN[@]}" "$VMSIM" run -q "$TRACE" "$@" >/dev/null 2>&1; } 2>&1)
        read -r wall user sys <<<"$t"
        walls+=("$wall")
        cpus+=("$(echo "$user + $sys" | bc -l)")
    done
    printf '%-46s %8.3f %8.3f\n' "$label" "$(printf '%s\n' "${walls[@]}" | median)" \
        "$(printf '%s\n' "${cpus[@]}" | median)"
}
echo
echo "== throughput: $(basename "$TRACE"), checkpoint every $EVERY, median of $RUNS"
printf '%-46s %8s %8s\n' run wall_s cpu_s
measure "no checkpoints"
measure "pause, host tracker, files written" --checkpoint-every "$EVERY" --checkpoint-dir "$WORK/ck"
measure "write-protect, both trackers, files written" --checkpoint-every "$EVERY" \
    --checkpoint-mode write-protect --checkpoint-dir "$WORK/ck"
measure "write-protect, both trackers, no files" --checkpoint-every "$EVERY" \
    --checkpoint-mode write-protect

echo
echo "== sizes: $(basename "$TRACE"), write-protect mode, both trackers, every $EVERY"
rm -rf "$WORK/ck"
"$VMSIM" run -q "$TRACE" --checkpoint-every "$EVERY" --checkpoint-mode write-protect \
    --checkpoint-dir "$WORK/ck" --json >"$WORK/r.json"
jq -r '["seq","refs","kind","file_bytes","chunks","pages_saved","dirty_host","dirty_bits","soft_dirty","wp_faults","pause_cycles"],
       (.checkpoints.records[] | [.seq, .references, (if .full then "full" else "incr" end), .file_bytes,
        .chunks_written, .pages_saved, .dirty_host, .dirty_bits, .soft_dirty, .wp_faults, .pause_cycles])
       | @tsv' "$WORK/r.json" | column -t
echo
echo "file bytes per page saved (increments):"
jq -r '[.checkpoints.records[] | select(.full | not) | select(.pages_saved > 0) | .file_bytes / .pages_saved]
       | "  min \(min | floor)  max \(max | floor)  (a page is 4096 bytes; the rest is page tables and the machine state)"' "$WORK/r.json"
