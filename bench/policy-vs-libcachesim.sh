#!/usr/bin/env bash
# Compares vmsim's replacement policies with libCacheSim (miss counts and
# speed). libCacheSim is a benchmark peer only: it is installed here, into a
# virtual environment this script creates, never as a build or test
# dependency. Usage: bench/policy-vs-libcachesim.sh [--skip-speed] [...]
# Environment: LCS_VENV (default target/lcs-venv), LCS_VERSION (0.3.5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LCS_VENV:-$root/target/lcs-venv}"
version="${LCS_VERSION:-0.3.5}"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import libcachesim" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "libcachesim==$version"
fi
cargo build --release --quiet -p vmsim-cli --manifest-path "$root/Cargo.toml"
exec "$venv/bin/python" "$root/bench/policy_vs_libcachesim.py" --vmsim "$root/target/release/vmsim" "$@"
