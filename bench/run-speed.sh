#!/usr/bin/env bash
# Speed of `vmsim run`, side by side: references per second of the whole
# process, one core, for the workloads where a simulator is fast or slow.
#
# Rows (TRACE is a real valgrind lackey trace, zstd-compressed):
#   default      TRACE as lackey+zstd, default preset (x86-64)
#   default2     the same on two cores (taskset CORES2, default 0,1): the
#                lackey reader (zstd and parsing) then runs on a helper
#                thread ahead of the simulation (vmsim_trace::ahead), so
#                this row is the whole process's rate with both cores; the
#                CPU column adds both threads' time
#   .vmt         TRACE converted to .vmt, default preset
#   FA-64        the .vmt with one 64-entry fully associative LRU TLB
#                (bench/configs/fa-64.toml)
#   FA-1536      the .vmt with one 1536-entry fully associative LRU TLB
#                (bench/configs/fa-1536.toml)
#   zipf walks   synth:zipf,pages=65536,s=0.9: most lookups miss and walk
#   swap         synth:zipf,pages=20000,s=0.8,refs=2M,write=0.3 in 4096
#                frames with 32768 swap slots: most faults swap
#   scan         synth:scan,bytes=400MiB,stride=4: the TLB-hit path
# Each is run RUNS times with `vmsim run -q`, pinned to one core with taskset
# when available (the zstd decompressor and parser of a lackey trace then
# share that core; vmsim sees one core and starts no helper thread), except
# default2, pinned to CORES2. Prints per row: references, median wall seconds, M references per
# wall second, M references per CPU second (user + system time of the
# process, all threads: the figure to trust on a loaded machine, where wall
# time also counts waiting for a core), and for the FA rows the ratio of
# their wall rate to the default preset's on the same .vmt.
#
# Usage: bench/run-speed.sh [RUNS]      (default 5)
# Environment:
#   TRACE      a lackey .zst (default /work/shared/traces/lsR_linux.lackey.zst
#              when it exists, else the committed bench/data/sqlite_4k.lackey.zst)
#   CORES      taskset core list (default 0)
#   CORES2     taskset core list of the two-core row (default 0,1)
#   SYNTH_REFS references of the scan row (default 100M)
#   ZIPF_REFS  references of the zipf-walks row (default 20M)
#   ONLY       a comma-separated list of row names to run (default all)
#   BOOST=1    (root) run in a new session whose Linux autogroup is raised to
#              nice -15, so that other work on a shared machine does not take
#              the core away mid-run (the figures then approach a quiet
#              machine's; the boost ends with the script)
#   VMSIM      a prebuilt binary (default: cargo build --release)
#   CALLGRIND=1 also count each row's instructions once under valgrind
#              callgrind (whole process, all threads) and print instructions
#              per reference: repeatable whatever the machine's load
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${BOOST:-}" == 1 && -z "${VMSIM_SPEED_BOOSTED:-}" ]]; then
    # A new session is a new autogroup: the boost stays inside this script.
    export VMSIM_SPEED_BOOSTED=1
    exec setsid -w "$0" "$@"
fi
if [[ -n "${VMSIM_SPEED_BOOSTED:-}" ]]; then
    if echo -15 2>/dev/null >/proc/self/autogroup; then
        echo "autogroup: $(cat /proc/self/autogroup)"
    else
        echo "BOOST=1: cannot raise the autogroup (not root?); running unboosted"
    fi
fi
RUNS=${1:-5}
CORES=${CORES:-0}
CORES2=${CORES2:-0,1}
SYNTH_REFS=${SYNTH_REFS:-100M}
ZIPF_REFS=${ZIPF_REFS:-20M}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q --locked -p vmsim-cli
    VMSIM=target/release/vmsim
fi
HAVE_TASKSET=
if command -v taskset >/dev/null; then HAVE_TASKSET=1; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ -z "${TRACE:-}" ]]; then
    TRACE=bench/data/sqlite_4k.lackey.zst
    [[ -f /work/shared/traces/lsR_linux.lackey.zst ]] && TRACE=/work/shared/traces/lsR_linux.lackey.zst
fi
name=$(basename "$TRACE" .zst)
name=${name%.lackey}
VMT="$WORK/$name.vmt"
"$VMSIM" trace convert "$TRACE" "$VMT" >/dev/null

# name | label | input | extra arguments | cores (default CORES)
ROWS=(
    "default|$name lackey+zstd, default preset|$TRACE|"
    "default2|$name lackey+zstd, default, 2 cores|$TRACE||$CORES2"
    "vmt|$name .vmt, default preset|$VMT|"
    "fa64|$name .vmt, FA-64 LRU TLB|$VMT|--config bench/configs/fa-64.toml"
    "fa1536|$name .vmt, FA-1536 LRU TLB|$VMT|--config bench/configs/fa-1536.toml"
    "zipf|zipf 64Ki pages s=0.9 (walks)|synth:zipf,pages=65536,s=0.9,refs=$ZIPF_REFS|"
    "swap|zipf 20000 pages in 4096 frames (swap)|synth:zipf,pages=20000,s=0.8,refs=2M,write=0.3|--set memory.frames=4096 --set kernel.swap_slots=32768"
    "scan|scan 400MiB stride 4 (TLB hits)|synth:scan,bytes=$(( ${SYNTH_REFS%M} * 4 ))MiB,stride=4|"
)

TIMEFORMAT='%3R %3U %3S'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

pinned="no"
if [[ -n $HAVE_TASKSET ]]; then pinned="taskset -c $CORES (two-core row: $CORES2)"; fi
echo "$RUNS runs per row, medians; pinned: $pinned; $("$VMSIM" --version)"
printf '%-42s %11s %8s %9s %9s %9s %10s\n' row references wall_s Mrefs/s Mrefs/cpu "x .vmt" "instr/ref"
vmt_rate=""
for row in "${ROWS[@]}"; do
    IFS='|' read -r key label input extra cores <<<"$row"
    if [[ -n "${ONLY:-}" && ",$ONLY," != *",$key,"* ]]; then continue; fi
    PIN=()
    if [[ -n $HAVE_TASKSET ]]; then PIN=(taskset -c "${cores:-$CORES}"); fi
    read -r -a args <<<"$extra"
    refs=$("$VMSIM" run -q --json "${args[@]}" "$input" | jq '.references')
    walls=()
    cpus=()
    for _ in $(seq "$RUNS"); do
        # Wall time from EPOCHREALTIME (microseconds: the `.vmt` and FA
        # rows take 0.05-0.07 s, where `time`'s milliseconds cannot rank
        # two builds); CPU time from `time`.
        t=$({ time {
            w0=$EPOCHREALTIME
            "${PIN[@]}" "$VMSIM" run -q "${args[@]}" "$input" >/dev/null 2>&1
            w1=$EPOCHREALTIME
            echo "$w0 $w1"
        }; } 2>&1)
        read -r w0 w1 _ user sys <<<"$(echo $t)"
        walls+=("$(echo "$w1 - $w0" | bc -l)")
        cpus+=("$(echo "$user + $sys" | bc -l)")
    done
    wall=$(printf '%s\n' "${walls[@]}" | median)
    cpu=$(printf '%s\n' "${cpus[@]}" | median)
    rate=$(echo "$refs / $wall / 1000000" | bc -l)
    ratio=""
    if [[ $key == vmt ]]; then vmt_rate=$rate; fi
    if [[ -n $vmt_rate && $key != vmt ]]; then ratio=$(printf '%.2f' "$(echo "$rate / $vmt_rate" | bc -l)"); fi
    per_ref="-"
    if [[ "${CALLGRIND:-}" == 1 ]]; then
        ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$VMSIM" run -q "${args[@]}" "$input" 2>&1 >/dev/null |
            sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | awk '{s += $1} END {printf "%.0f\n", s}')
        per_ref=$(printf '%.1f' "$(echo "$ir / $refs" | bc -l)")
    fi
    printf '%-42s %11d %8.4f %9.1f %9.1f %9s %10s\n' "$label" "$refs" "$wall" "$rate" \
        "$(echo "$refs / $cpu / 1000000" | bc -l)" "$ratio" "$per_ref"
done
