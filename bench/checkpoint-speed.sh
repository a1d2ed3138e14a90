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
# 4. Restore, merge and rewind-replay on a chain of the same run: rebuilding
#    the newest checkpoint, restoring and running on, `vmsim replay` of the
#    first and the last address the program stores to (rewinding to the
#    start, and found in the newest span), `--until`, and a merge.
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
    MED_WALL=$(printf '%s\n' "${walls[@]}" | median)
    MED_CPU=$(printf '%s\n' "${cpus[@]}" | median)
    local ratio=""
    if [[ -n "${BASE_WALL:-}" ]]; then
        ratio=$(printf '  x%.2f wall, x%.2f cpu' "$(echo "$MED_WALL / $BASE_WALL" | bc -l)" \
            "$(echo "$MED_CPU / $BASE_CPU" | bc -l)")
    fi
    printf '%-46s %8.3f %8.3f%s\n' "$label" "$MED_WALL" "$MED_CPU" "$ratio"
}
echo
echo "== throughput: $(basename "$TRACE"), checkpoint every $EVERY, median of $RUNS"
printf '%-46s %8s %8s\n' run wall_s cpu_s
measure "no checkpoints"
BASE_WALL=$MED_WALL BASE_CPU=$MED_CPU
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

# 4. Restore, merge and rewind-replay on the same chain (pause mode, host
#    tracker: the default of `vmsim run --checkpoint-every`).
echo
echo "== restore, merge, replay: $(basename "$TRACE"), chain of checkpoints every $EVERY, median of $RUNS"
rm -rf "$WORK/ck"
"$VMSIM" run -q "$TRACE" --checkpoint-every "$EVERY" --checkpoint-dir "$WORK/ck" >/dev/null
LAST=$(( $(ls "$WORK/ck" | grep -c '\.vmck$') - 1 ))
timed() { # label, args... (median wall and CPU seconds of RUNS runs of vmsim ARGS)
    local label=$1
    shift
    local walls=() cpus=()
    for i in $(seq "$RUNS"); do
        local t
        t=$({ time "${PIN[@]}" "$VMSIM" "$@" >/dev/null 2>&1; } 2>&1)
        read -r wall user sys <<<"$t"
        walls+=("$wall")
        cpus+=("$(echo "$user + $sys" | bc -l)")
    done
    printf '%-46s %8.3f %8.3f\n' "$label" "$(printf '%s\n' "${walls[@]}" | median)" \
        "$(printf '%s\n' "${cpus[@]}" | median)"
}
printf '%-46s %8s %8s\n' command wall_s cpu_s
timed "rebuild checkpoint $LAST (checkpoint show)" checkpoint show "$WORK/ck" --at "$LAST"
timed "restore checkpoint $LAST and run to the end" restore -q "$WORK/ck" --at "$LAST"
timed "restore checkpoint 0 and run to the end" restore -q "$WORK/ck" --at 0
# The first and the last address the program stores to: the first is
# (most likely) never written again, so the search rewinds to the start;
# the last is found in the newest span.
read -r EARLY LATE < <(zstd -dcq "$TRACE" | awk '$1 == "S" || $1 == "M" {
        split($2, a, ","); if (!first) first = a[1]; last = a[1] }
    END { print "0x" first, "0x" last }')
timed "replay --watch $EARLY (first store)" replay "$WORK/ck" --watch "$EARLY"
timed "replay --watch $LATE (last store)" replay "$WORK/ck" --watch "$LATE"
timed "replay --until (middle of the run)" replay "$WORK/ck" --watch "$LATE" \
    --until "$(( (LAST + 1) * $(numfmt --from=si "$EVERY") / 2 + 1 ))"
for va in "$EARLY" "$LATE"; do
    "$VMSIM" replay "$WORK/ck" --watch "$va" --json |
        jq -r --arg va "$va" '"  \($va): written by reference \(.writer.reference // "none") (instruction \(.writer.instruction // "none")); replayed \(.replayed) references in \(.spans | length) span(s), from the start: \(.from_start)"'
done
cp -r "$WORK/ck" "$WORK/ck2"
t=$({ time "$VMSIM" checkpoint merge "$WORK/ck2" --at "$LAST" >/dev/null; } 2>&1)
echo "checkpoint merge --at $LAST (once): wall/user/sys $t; files: full $(stat -c %s "$WORK/ck/ckpt-000000.vmck") bytes, merged $LAST $(stat -c %s "$WORK/ck2/$(printf 'ckpt-%06d.vmck' "$LAST")") bytes"
