#!/usr/bin/env bash
# Miss-ratio curves and sweeps, measured: exact LRU MRC and SHARDS speed and
# error on 100M+ reference streams, side by side with libCacheSim's per-size
# LRU simulations (its Python package has no MRC), and the 2-core speedup of
# `vmsim sweep` over -j 1. libCacheSim is a benchmark peer only, installed
# here into its own virtual environment (shared with
# bench/policy-vs-libcachesim.sh).
#
# Usage: bench/mrc-vs-libcachesim.sh [--quick]
# Environment: LCS_VENV (default target/lcs-venv), LCS_VERSION (0.3.5),
#              TRACE (a real trace; default bench/data/sqlite_4k.lackey.zst),
#              REPEAT (times it is repeated), ZIPF_REFS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LCS_VENV:-$root/target/lcs-venv}"
version="${LCS_VERSION:-0.3.5}"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import libcachesim" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "libcachesim==$version"
fi
cargo build --release --quiet --locked -p vmsim-cli --manifest-path "$root/Cargo.toml"
exec "$venv/bin/python" "$root/bench/mrc_vs_libcachesim.py" --vmsim "$root/target/release/vmsim" --root "$root" "$@"
