#!/usr/bin/env bash
# Restore equality over real traces (issue 9): for each input, `vmsim run`
# with checkpoints written every EVERY references (default: a tenth of the
# run), then `vmsim restore --at K` for the first, a middle and the last
# checkpoint; each restored report must equal the run's (the checkpoint
# records' file names and sizes aside: host facts). In pause mode, also
# checks that the run's figures equal a run without checkpoints. Prints one
# line per input and exits 1 on any difference.
#
# Inputs: each trace (and its .vmt conversion); then the two-process
# fork/COW scenarios of the real forkcow program (examples/forkcow-real.toml,
# and its 8 MiB version when the shared traces are present), once as they
# are and once under memory pressure with swap (memory.frames=PRESSURE,
# default 1024, with 16384 swap slots; the largest traces with 128 frames).
#
# Usage: bench/checkpoint-restore-check.sh [TRACE...]
# Default: every *.lackey.zst in /work/shared/traces when present, else the
# committed traces.
# Environment: MODE (pause | write-protect, default pause), PRESSURE, VMSIM.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-pause}
PRESSURE=${PRESSURE:-1024}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q -p vmsim-cli
    VMSIM=target/release/vmsim
fi
TRACES=("$@")
SHARED=/work/shared/traces
if [[ ${#TRACES[@]} -eq 0 ]]; then
    if compgen -G "$SHARED/*.lackey.zst" >/dev/null; then
        TRACES=("$SHARED"/*.lackey.zst)
    else
        TRACES=(crates/vmsim-trace/tests/data/*.lackey.zst bench/data/*.lackey.zst)
    fi
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
strip() { jq 'del(.checkpoints.records[]?.file, .checkpoints.records[]?.file_bytes)' "$1"; }
fail=0

check() { # label, input, extra run arguments...
    local label=$1 in=$2
    shift 2
    local refs every n result
    refs=$("$VMSIM" run -q --json "$in" "$@" | jq .references)
    every=$(( refs / 10 + 1 ))
    rm -rf "$WORK/ck"
    "$VMSIM" run -q --json "$in" "$@" --checkpoint-every "$every" --checkpoint-mode "$MODE" \
        --checkpoint-dir "$WORK/ck" >"$WORK/run.json"
    n=$(jq '.checkpoints.records | length' "$WORK/run.json")
    result=ok
    for k in 0 $(( n / 2 )) $(( n - 1 )); do
        "$VMSIM" restore -q --json "$WORK/ck" --at "$k" >"$WORK/r.json"
        if ! diff -q <(strip "$WORK/run.json") <(strip "$WORK/r.json") >/dev/null; then
            result="DIFFERS at $k"
            fail=1
        fi
    done
    if [[ $MODE == pause ]]; then
        "$VMSIM" run -q --json "$in" "$@" >"$WORK/plain.json"
        if ! diff -q <(jq 'del(.checkpoints)' "$WORK/run.json") <(jq . "$WORK/plain.json") >/dev/null; then
            result="$result; pause mode CHANGED the figures"
            fail=1
        fi
    fi
    local swapped
    swapped=$(jq '.paging.swap_outs' "$WORK/run.json")
    printf '%-52s %11d %6d %9d  %s\n' "$label" "$refs" "$n" "$swapped" "$result"
}

printf '%-52s %11s %6s %9s  %s\n' input references ckpts swap_outs result
for t in "${TRACES[@]}"; do
    vmt="$WORK/$(basename "$t" .lackey.zst).vmt"
    "$VMSIM" trace convert "$t" "$vmt" >/dev/null
    check "$(basename "$t")" "$t"
    check "$(basename "$vmt")" "$vmt"
done
# Two processes with fork and copy-on-write, from the real forkcow traces.
SCEN=(examples/forkcow-real.toml)
if [[ -f $SHARED/forkcow_8m.parent.lackey.zst ]]; then
    sed -e "s|traces/forkcow_1m|$SHARED/forkcow_8m|" examples/forkcow-real.toml \
        >"$WORK/forkcow8m.toml"
    SCEN+=("$WORK/forkcow8m.toml")
fi
for s in "${SCEN[@]}"; do
    check "$(basename "$s") (fork/COW)" "$s"
    check "$(basename "$s") (fork/COW), $PRESSURE frames" "$s" --set "memory.frames=$PRESSURE" \
        --set kernel.swap_slots=16384
done
# Memory pressure: the largest traces swap.
for t in "${TRACES[@]}"; do
    case $t in
    *forkcow_8m.parent* | *lsR_linux* | *sort_2k*)
        check "$(basename "$t"), 128 frames" "$t" --set memory.frames=128 \
            --set kernel.swap_slots=16384
        ;;
    esac
done
exit $fail
