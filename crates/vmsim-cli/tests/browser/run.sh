#!/usr/bin/env bash
# Browser tests of the --html pages (test_pages.py) in headless Chromium.
#
# Installs what they need when missing: Debian's chromium (apt-get; the
# browser Playwright would download is not reachable from CI) and the
# playwright Python package in a virtual environment under target/. Runs
# against $VMSIM (default target/release/vmsim, built if missing); writes
# screenshots to $SCREENSHOTS (default target/html-screenshots).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
VMSIM=${VMSIM:-target/release/vmsim}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
VENV=${BROWSER_VENV:-target/browser-venv}

if [ ! -x "$CHROMIUM" ]; then
    echo "== installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! "$VENV/bin/python" -c 'import playwright' 2>/dev/null; then
    echo "== installing playwright into $VENV (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q playwright
fi
if [ ! -x "$VMSIM" ]; then
    cargo build --release --locked -p vmsim-cli
fi
VMSIM="$(realpath "$VMSIM")" CHROMIUM="$CHROMIUM" \
    "$VENV/bin/python" crates/vmsim-cli/tests/browser/test_pages.py "$@"
