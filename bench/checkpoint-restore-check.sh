#!/usr/bin/env bash
# Restore equality over real traces (issue 9): for each trace, `vmsim run`
# with checkpoints written every EVERY references (default: a tenth of the
# trace), then `vmsim restore --at K` for the first, a middle and the last
# checkpoint; each restored report must equal the run's (the checkpoint
# records' file names and sizes aside: host facts). Also checks that a
# pause-mode run's figures equal a run without checkpoints. Prints one line
# per trace and exits 1 on any difference.
#
# Usage: bench/checkpoint-restore-check.sh [TRACE...]
# Default: every *.lackey.zst in /work/shared/traces when present (the
# .vmt conversion of each too), else the committed traces.
# Environment: MODE (pause | write-protect, default pause), VMSIM.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-pause}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q -p vmsim-cli
    VMSIM=target/release/vmsim
fi
TRACES=("$@")
if [[ ${#TRACES[@]} -eq 0 ]]; then
    if compgen -G "/work/shared/traces/*.lackey.zst" >/dev/null; then
        TRACES=(/work/shared/traces/*.lackey.zst)
    else
        TRACES=(crates/vmsim-trace/tests/data/*.lackey.zst bench/data/*.lackey.zst)
    fi
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
strip() { jq 'del(.checkpoints.records[]?.file, .checkpoints.records[]?.file_bytes)' "$1"; }
fail=0
printf '%-40s %11s %6s %s\n' input references ckpts result
for t in "${TRACES[@]}"; do
    inputs=("$t")
    vmt="$WORK/$(basename "$t" .lackey.zst).vmt"
    "$VMSIM" trace convert "$t" "$vmt" >/dev/null
    inputs+=("$vmt")
    for in in "${inputs[@]}"; do
        refs=$("$VMSIM" run -q --json "$in" | jq .references)
        every=$(( refs / 10 + 1 ))
        rm -rf "$WORK/ck"
        "$VMSIM" run -q --json "$in" --checkpoint-every "$every" --checkpoint-mode "$MODE" \
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
            "$VMSIM" run -q --json "$in" >"$WORK/plain.json"
            if ! diff -q <(jq 'del(.checkpoints)' "$WORK/run.json") <(jq . "$WORK/plain.json") >/dev/null; then
                result="$result; pause mode CHANGED the figures"
                fail=1
            fi
        fi
        label=$(basename "$in")
        printf '%-40s %11d %6d %s\n' "$label" "$refs" "$n" "$result"
    done
done
exit $fail
