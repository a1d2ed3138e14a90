#!/usr/bin/env bash
# Records bench/data/sqlite_4k.lackey.zst: the sqlite3 shell (Debian's
# sqlite3 3.40) building a 4000-row table in memory, indexing it and
# querying it (bench/data/sqlite_4k.sql), under valgrind lackey: 55M
# references over 661 pages of 4 KiB. The MRC bench repeats it twice for a
# 110M-reference "sqlite-sized" stream. Needs valgrind and sqlite3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet --locked -p vmsim-cli --manifest-path "$root/Cargo.toml"
cd "$root/bench/data"
LC_ALL=C "$root/target/release/vmsim" trace record -o sqlite_4k.lackey.zst -- sqlite3 :memory: ".read sqlite_4k.sql"
