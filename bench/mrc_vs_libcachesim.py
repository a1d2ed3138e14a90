#!/usr/bin/env python3
"""Miss-ratio curves and sweeps, measured (run through bench/mrc-vs-libcachesim.sh).

Streams (built once with vmsim, as .vmt, the fast binary trace format):
  real   a real lackey trace's accesses repeated until 100M+ references
         (/work/shared/traces/lsR_linux when present, else the committed
         bench/data/sort_2k), 4 KiB pages
  zipf   synth:zipf over 1M pages, s=0.9, shuffled, 100M references

For each stream, on one core (taskset), median of 3 whole `vmsim mrc`
processes (reading and decoding the trace included):
  exact  exact LRU curve, every size, one pass
  shards SHARDS at 1% alone
then once `-p lru --shards 1%` for the mean absolute error of SHARDS
against the exact curve at the curve's sizes (powers of two up to the
footprint). libCacheSim: its LRU `process_trace` at a few sizes over the
same page stream (oracleGeneral binary), time per size and misses, which
must equal ours at those sizes.

Sweep: a grid of 8 runs of `vmsim run` (examples-like, a few seconds in
all), median of 3 of `-j 1` and `-j 2`: the speedup.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import libcachesim as lcs

ORACLE_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("sz", "<u4"), ("nxt", "<i8")])


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def timed(cmd, n=3, cpu="0"):
    times = []
    out = None
    for _ in range(n):
        t0 = time.perf_counter()
        out = run(["taskset", "-c", cpu, *cmd])
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def next_access(ids):
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    nxt = np.full(n, -1, dtype=np.int64)
    same = s[1:] == s[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def lcs_trace(vmsim, vmt, path):
    """The page stream of `vmt` as libCacheSim's oracleGeneral binary."""
    pages = path + ".pages"
    run([vmsim, "trace", "pages", vmt, "--binary", "-o", pages])
    ids = np.fromfile(pages, dtype="<u8")
    os.remove(pages)
    a = np.zeros(len(ids), dtype=ORACLE_DTYPE)
    a["t"] = np.arange(1, len(ids) + 1, dtype=np.uint64).astype(np.uint32)
    a["id"] = ids
    a["sz"] = 1
    a["nxt"] = -1  # LRU does not look at it
    a.tofile(path)
    return len(ids)


def lcs_lru(path, size):
    reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
    n = reader.get_num_of_req()
    cache = lcs.LRU(size)
    t0 = time.perf_counter()
    mr, _ = cache.process_trace(reader)
    return time.perf_counter() - t0, int(round(mr * n)), n


def mrc_stream(args, tmp, name, vmt):
    v = args.vmsim
    print(f"\n== {name}: {vmt}", flush=True)
    exact_t, out = timed([v, "mrc", vmt, "--json"])
    exact = json.loads(out.stdout)["inputs"][0]
    refs = exact["references"]
    pts = {p["size"]: p["misses"] for p in exact["curves"][0]["points"]}
    shards_t, _ = timed([v, "mrc", vmt, "--shards", "1%", "--json"])
    both = json.loads(run([v, "mrc", vmt, "-p", "lru", "--shards", "1%", "--json"]).stdout)["inputs"][0]
    err = both["curves"][1]["error"]
    maxs = json.loads(run([v, "mrc", vmt, "--shards-max", "8K", "-p", "lru", "--json"]).stdout)["inputs"][0]
    err_max = maxs["curves"][1]["error"]
    print(f"references {refs:,}, distinct pages {exact['distinct_pages']:,}, curve sizes {len(pts)}")
    print(f"vmsim exact LRU MRC, one pass:  {exact_t:7.2f} s  {refs / exact_t / 1e6:7.1f} M refs/s (whole process, one core)")
    print(f"vmsim SHARDS 1%:                {shards_t:7.2f} s  {refs / shards_t / 1e6:7.1f} M refs/s; "
          f"mean abs error {err['mean_abs']:.5f}, max {err['max_abs']:.5f}")
    print(f"vmsim SHARDS max 8K pages: mean abs error {err_max['mean_abs']:.5f}, max {err_max['max_abs']:.5f}")
    rss = run(["/usr/bin/time", "-f", "%M", v, "mrc", vmt, "--sizes", "1"]).stderr.strip().splitlines()[-1]
    print(f"vmsim exact LRU peak memory: {int(rss) / 1024:.0f} MiB")
    if args.skip_lcs:
        return
    binp = os.path.join(tmp, name + ".oracleGeneral.bin")
    lcs_trace(v, vmt, binp)
    sizes = sorted(pts)
    pick = [sizes[len(sizes) // 4], sizes[len(sizes) // 2], sizes[(3 * len(sizes)) // 4]]
    total = 0.0
    for s in pick:
        dt, misses, n = lcs_lru(binp, s)
        total += dt
        eq = "equal" if misses == pts[s] else f"DIFFERENT (ours {pts[s]})"
        print(f"libCacheSim LRU at {s:>8} frames: {dt:7.2f} s  {n / dt / 1e6:6.1f} M refs/s, misses {misses} {eq}",
              flush=True)
    per = total / len(pick)
    print(f"libCacheSim: {per:.2f} s per size, so its {len(sizes)}-size curve takes about {per * len(sizes):.0f} s "
          f"(vmsim's exact curve: {exact_t:.2f} s, {per * len(sizes) / exact_t:.0f}x faster)")
    os.remove(binp)


def sweep(args, tmp):
    spec = os.path.join(tmp, "grid.toml")
    with open(spec, "w") as f:
        f.write('inputs = ["synth:zipf,pages=60000,s=0.8,refs=1500K,write=0.3"]\n'
                '[grid]\n"memory.frames" = [4096, 16384]\n"kernel.policy" = ["clock", "fifo"]\n'
                'preset = ["x86-64", "core-i7"]\n')
    res = {}
    for j in (1, 2):
        times = []
        for k in range(3):
            out = os.path.join(tmp, f"sweep-{j}-{k}")
            t0 = time.perf_counter()
            run([args.vmsim, "sweep", spec, "--out", out, "-j", str(j), "--quiet"])
            times.append(time.perf_counter() - t0)
        res[j] = statistics.median(times)
    print(f"\n== sweep: 8 runs of vmsim run (zipf 1.5M refs, 60K pages, demand paging)")
    print(f"-j 1: {res[1]:.2f} s   -j 2: {res[2]:.2f} s   speedup {res[1] / res[2]:.2f}x (2 cores)")
    a = run([args.vmsim, "sweep", "merge", os.path.join(tmp, "sweep-1-0"), "--csv"]).stdout
    b = run([args.vmsim, "sweep", "merge", os.path.join(tmp, "sweep-2-0"), "--csv"]).stdout
    print("merged tables of -j 1 and -j 2 equal:", a == b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmsim", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--quick", action="store_true", help="10M-reference streams")
    ap.add_argument("--skip-lcs", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    print(f"libcachesim {lcs.__version__}; load {os.getloadavg()}")
    trace = os.environ.get("TRACE")
    if not trace:
        shared = "/work/shared/traces/lsR_linux.lackey.zst"
        trace = shared if os.path.exists(shared) else os.path.join(args.root, "bench/data/sort_2k.lackey.zst")
    refs_target = 10_000_000 if args.quick else 100_000_000
    with tempfile.TemporaryDirectory(prefix="vmsim-mrc-") as tmp:
        n = json.loads(run([args.vmsim, "trace", "stats", trace, "--json"]).stdout)["refs"]
        repeat = int(os.environ.get("REPEAT", 0)) or -(-refs_target // n)
        real = os.path.join(tmp, "real.vmt")
        run([args.vmsim, "trace", "convert", *([trace] * repeat), real])
        zipf = os.path.join(tmp, "zipf.vmt")
        run([args.vmsim, "trace", "convert",
             f"synth:zipf,pages=1M,s=0.9,shuffle=1,refs={refs_target}", zipf])
        mrc_stream(args, tmp, f"real ({os.path.basename(trace)} x{repeat})", real)
        mrc_stream(args, tmp, "zipf (1M pages, s=0.9)", zipf)
        if not args.skip_sweep:
            sweep(args, tmp)


if __name__ == "__main__":
    sys.exit(main())
