#!/usr/bin/env bash
# Live migration over loopback: page data moved per second (issue 10's
# ">= 500 MB/s for a 1 GiB process" figure), release build.
#
# A process writes every page of MIB MiB (default 1024: `synth:scan` with a
# 4 KiB stride, so each page holds data) and is moved at the end of its
# first pass, stop-and-copy, to a `vmsim migrate listen` on 127.0.0.1 with
# the same machine; it makes a second pass there. The link model is set
# fast (migrate.bandwidth) so the simulated link does not make the source
# simulate extra references: what is timed is the host moving the pages.
#
# Timed (wall, RUNS times, default 3, medians):
# - the migration itself, as the source measures it (its status line
#   "migrated process ... in S s of host time"): from the migration point
#   to the destination's `Adopted`, i.e. every page read out of simulated
#   memory, encoded, authenticated, sent, received, checked and staged,
#   the state sent, and the process built at the destination;
# - as a cross-check, the source's whole run with the migration minus the
#   same run of one pass without it (this difference also holds the
#   source's teardown of its copy and process start-up).
# Page data / time = MB/s (10^6 bytes per second).
#
# Usage: bench/migrate-speed.sh [RUNS]
# Environment: MIB, MODE (stop-and-copy, the default, or pre-copy: with
# this fast link its first round carries every page and the pause almost
# none), VMSIM (a prebuilt binary).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
MIB=${MIB:-1024}
MODE=${MODE:-stop-and-copy}
if [[ -z "${VMSIM:-}" ]]; then
    cargo build --release -q -p vmsim-cli
    VMSIM=target/release/vmsim
fi
WORK=$(mktemp -d)
LISTENER=
cleanup() {
    if [[ -n "$LISTENER" ]]; then kill "$LISTENER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
"$VMSIM" migrate keygen --key-file "$WORK/key" >/dev/null
PAGES=$((MIB * 256))
FRAMES=$((PAGES + PAGES / 64 + 4096))
SET=(--set "memory.frames=$FRAMES" --set migrate.bandwidth=1000000000000 --set migrate.latency=1)
ONE="synth:scan,bytes=${MIB}MiB,stride=4096,write=1,passes=1"
TWO="synth:scan,bytes=${MIB}MiB,stride=4096,write=1,passes=2"
BYTES=$((MIB * 1048576))

TIMEFORMAT='%3R'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=() mig=() host=() cpu=()
for i in $(seq "$RUNS"); do
    t=$({ time "$VMSIM" run -q "$ONE" "${SET[@]}" >/dev/null 2>"$WORK/base.err"; } 2>&1)
    base+=("$t")
    "$VMSIM" migrate listen --key-file "$WORK/key" -q "${SET[@]}" >"$WORK/dest.out" 2>"$WORK/dest.err" &
    LISTENER=$!
    addr=
    for _ in $(seq 500); do
        addr=$(sed -n 's/^vmsim migrate: listening on //p' "$WORK/dest.err")
        [[ -n "$addr" ]] && break
        sleep 0.01
    done
    t=$({ time "$VMSIM" run "$TWO" "${SET[@]}" --migrate-to "$addr" --migrate-at "$PAGES" \
        --key-file "$WORK/key" --migrate-mode "$MODE" >"$WORK/src.out" 2>"$WORK/src.err"; } 2>&1)
    mig+=("$t")
    h=$(sed -n "s/^vmsim: migrated process .* in \([0-9.]*\) s of host time.*/\1/p" "$WORK/src.err")
    if [[ -z "$h" ]]; then
        echo "no timing line from the source:" >&2
        cat "$WORK/src.err" >&2
        exit 1
    fi
    host+=("$h")
    c=$(sed -n "s/.*this side's CPU \([0-9.]*\) s.*/\1/p" "$WORK/src.err")
    cpu+=("${c:-0}")
    wait "$LISTENER"
    LISTENER=
    if grep -q aborted "$WORK/src.err"; then
        echo "migration aborted:" >&2
        cat "$WORK/src.err" "$WORK/dest.err" >&2
        exit 1
    fi
    echo "run $i: one pass ${base[-1]} s, with migration ${mig[-1]} s; the migration ${host[-1]} s" >&2
done
b=$(printf '%s\n' "${base[@]}" | median)
m=$(printf '%s\n' "${mig[@]}" | median)
h=$(printf '%s\n' "${host[@]}" | median)
c=$(printf '%s\n' "${cpu[@]}" | median)
d=$(awk -v m="$m" -v b="$b" 'BEGIN {print m - b}')
echo "== migration of $MIB MiB over loopback ($MODE), median of $RUNS"
printf '%-44s %8s s\n' "run, one pass, no migration" "$b"
printf '%-44s %8s s\n' "run to the pause + migration" "$m"
printf '%-44s %8s s\n' "difference" "$d"
printf '%-44s %8s s\n' "migration (source's host time to adoption)" "$h"
printf '%-44s %8s s\n' "  of which the source's CPU time" "$c"
awk -v h="$h" -v d="$d" -v n="$BYTES" 'BEGIN {
    printf "page data: %d bytes in %.3f s = %.0f MB/s (difference: %.0f MB/s)\n", n, h, n / h / 1e6, n / d / 1e6 }'
awk -v c="$c" -v n="$BYTES" 'BEGIN { if (c > 0) printf "source CPU: %.0f MB/s of its CPU time\n", n / c / 1e6 }'
