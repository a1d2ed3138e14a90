#!/bin/sh
# Writes the checkpoint fuzz seeds (fuzz/seeds/checkpoint/) with the vmsim
# binary given (default: target/release/vmsim): checkpoints of tiny runs
# with generator inputs, compressed, so each seed is a few KiB. Rerun it
# whenever the checkpoint format version changes (a seed of another
# version only reaches the version check).
#   swap-full.vmck, swap-incr.vmck: a zipf run swapping on 16 frames, the
#     full checkpoint and the increment after it
#   classroom-wp-full.vmck: the classroom machine, write-protect mode
set -eu
cd "$(dirname "$0")/../.."
vmsim=${1:-target/release/vmsim}
out=fuzz/seeds/checkpoint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$vmsim" run -q synth:zipf,pages=24,refs=3000,write=0.5,seed=2 \
  --set memory.frames=16 --allow-kills \
  --checkpoint-every 1000 --checkpoint-dir "$tmp/swap" --checkpoint-zstd 3 >/dev/null
"$vmsim" run -q synth:scan,bytes=32KiB,stride=1024,write=1,passes=3 --preset classroom \
  --checkpoint-every 40 --checkpoint-mode write-protect \
  --checkpoint-dir "$tmp/wp" --checkpoint-zstd 3 >/dev/null
mkdir -p "$out"
cp "$tmp/swap/ckpt-000000.vmck" "$out/swap-full.vmck"
cp "$tmp/swap/ckpt-000001.vmck" "$out/swap-incr.vmck"
cp "$tmp/wp/ckpt-000000.vmck" "$out/classroom-wp-full.vmck"
ls -l "$out"
