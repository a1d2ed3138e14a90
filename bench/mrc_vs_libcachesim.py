#!/usr/bin/env python3
"""Miss-ratio curves and sweeps, measured (run through bench/mrc-vs-libcachesim.sh).

Streams (built once with vmsim, as .vmt, the fast binary trace format):
  real   a real lackey trace's accesses repeated until 100M+ references:
         the committed bench/data/sqlite_4k (sqlite3 building, indexing and
         querying a table: 55M references, twice), or TRACE; 4 KiB pages
  zipf   synth:zipf over 1M pages, s=0.9, shuffled, 100M references
         (ZIPF_REFS to change; a footprint too large for the caches)

For each stream, on one core (taskset), median of 3 whole `vmsim mrc`
processes (reading and decoding the trace included):
  exact  exact LRU curve, every size, one pass
  shards SHARDS at 1% alone
then once `-p lru --shards 1%` for the mean absolute error of SHARDS
against the exact curve at the curve's sizes (powers of two up to the
footprint). libCacheSim: its LRU `process_trace` at a few sizes over the
same page stream (oracleGeneral binary), time per size and misses, which
must equal ours at those sizes.

Sweep: a grid of 16 runs of `vmsim run` (under a second each), `-j 1`
and `-j 2` alternated 5 times: the speedup of the medians and of the best. On a machine shared with other work,
Linux's autogroup scheduling gives this session one share of the CPU
however many threads it runs, so a 2-thread sweep cannot show its speedup;
BOOST=1 (root) raises this session's autogroup to nice -15 first, which
approximates a quiet machine.
"""

import argparse
import json
import os
import resource
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
    """Median wall time and median CPU time (user + system) of n runs."""
    times = []
    cpus = []
    out = None
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = run(["taskset", "-c", cpu, *cmd])
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return (statistics.median(times), statistics.median(cpus)), out


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
    (exact_t, exact_c), out = timed([v, "mrc", vmt, "--json"])
    exact = json.loads(out.stdout)["inputs"][0]
    refs = exact["references"]
    pts = {p["size"]: p["misses"] for p in exact["curves"][0]["points"]}
    (shards_t, shards_c), _ = timed([v, "mrc", vmt, "--shards", "1%", "--json"])
    both = json.loads(run([v, "mrc", vmt, "-p", "lru", "--shards", "1%", "--json"]).stdout)["inputs"][0]
    err = both["curves"][1]["error"]
    # The SHARDS paper's view: 100 sizes evenly spaced up to the footprint.
    d = exact["distinct_pages"]
    uniform = ",".join(str(max(1, round(d * i / 100))) for i in range(1, 101))
    uni = json.loads(run([v, "mrc", vmt, "-p", "lru", "--shards", "1%", "--shards-max", "8K",
                          "--sizes", uniform, "--json"]).stdout)["inputs"][0]
    err_uni = uni["curves"][1]["error"]
    err_uni_max = uni["curves"][2]["error"]
    maxs = json.loads(run([v, "mrc", vmt, "--shards-max", "8K", "-p", "lru", "--json"]).stdout)["inputs"][0]
    err_max = maxs["curves"][1]["error"]
    print(f"references {refs:,}, distinct pages {exact['distinct_pages']:,}, curve sizes {len(pts)}")
    print(f"vmsim exact LRU MRC, one pass:  wall {exact_t:6.2f} s = {refs / exact_t / 1e6:6.1f} M refs/s, "
          f"CPU {exact_c:6.2f} s = {refs / exact_c / 1e6:6.1f} M refs/s (whole process, one core)")
    print(f"vmsim SHARDS 1%:                wall {shards_t:6.2f} s = {refs / shards_t / 1e6:6.1f} M refs/s, "
          f"CPU {shards_c:6.2f} s = {refs / shards_c / 1e6:6.1f} M refs/s")
    print(f"  SHARDS 1% error, powers of two:        mean abs {err['mean_abs']:.5f}, max {err['max_abs']:.5f}")
    print(f"  SHARDS 1% error, 100 even sizes:       mean abs {err_uni['mean_abs']:.5f}, max {err_uni['max_abs']:.5f}")
    print(f"  SHARDS max 8K error, powers of two:    mean abs {err_max['mean_abs']:.5f}, max {err_max['max_abs']:.5f}")
    print(f"  SHARDS max 8K error, 100 even sizes:   mean abs {err_uni_max['mean_abs']:.5f}, max {err_uni_max['max_abs']:.5f}")
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
        # CPU-bound runs (memory holds the footprint: no swap file traffic).
        f.write('inputs = ["synth:zipf,pages=60000,s=0.8,refs=3M,write=0.3"]\n'
                '[grid]\n"memory.frames" = [65536, 262144]\n"kernel.policy" = ["clock", "fifo", "nru", "sieve"]\n'
                'preset = ["x86-64", "core-i7"]\n')
    res = {}
    best = {}
    times = {1: [], 2: []}
    # Alternate -j 1 and -j 2 so both see the same background load.
    for k in range(5):
        for j in (1, 2):
            out = os.path.join(tmp, f"sweep-{j}-{k}")
            t0 = time.perf_counter()
            run([args.vmsim, "sweep", spec, "--out", out, "-j", str(j), "--quiet"])
            times[j].append(time.perf_counter() - t0)
    for j in (1, 2):
        res[j] = statistics.median(times[j])
        best[j] = min(times[j])
    print(f"\n== sweep: 16 runs of vmsim run (zipf 3M refs over 60K pages, memory holds them); "
          f"load {os.getloadavg()}")
    print(f"median of 5: -j 1 {res[1]:.2f} s, -j 2 {res[2]:.2f} s: speedup {res[1] / res[2]:.2f}x (2 cores)")
    print(f"best of 5:   -j 1 {best[1]:.2f} s, -j 2 {best[2]:.2f} s: speedup {best[1] / best[2]:.2f}x")
    a = run([args.vmsim, "sweep", "merge", os.path.join(tmp, "sweep-1-0"), "--csv"]).stdout
    b = run([args.vmsim, "sweep", "merge", os.path.join(tmp, "sweep-2-0"), "--csv"]).stdout
    print("merged tables of -j 1 and -j 2 equal:", a == b)


def boost():
    if os.environ.get("BOOST") == "1":
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write("-15")
            print("autogroup:", open("/proc/self/autogroup").read().strip())
        except OSError as e:
            print(f"BOOST=1: cannot raise the autogroup ({e})")


def main():
    boost()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmsim", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--quick", action="store_true", help="10M-reference streams")
    ap.add_argument("--skip-lcs", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--only-sweep", action="store_true")
    args = ap.parse_args()
    print(f"libcachesim {lcs.__version__}; load {os.getloadavg()}")
    trace = os.environ.get("TRACE") or os.path.join(args.root, "bench/data/sqlite_4k.lackey.zst")
    refs_target = 10_000_000 if args.quick else 100_000_000
    if args.only_sweep:
        with tempfile.TemporaryDirectory(prefix="vmsim-mrc-") as tmp:
            sweep(args, tmp)
        return 0
    with tempfile.TemporaryDirectory(prefix="vmsim-mrc-") as tmp:
        n = json.loads(run([args.vmsim, "trace", "stats", trace, "--json"]).stdout)["refs"]
        repeat = int(os.environ.get("REPEAT", 0)) or -(-refs_target // n)
        real = os.path.join(tmp, "real.vmt")
        run([args.vmsim, "trace", "convert", *([trace] * repeat), real])
        zipf = os.path.join(tmp, "zipf.vmt")
        run([args.vmsim, "trace", "convert",
             f"synth:zipf,pages=1M,s=0.9,shuffle=1,refs={os.environ.get('ZIPF_REFS', refs_target)}", zipf])
        mrc_stream(args, tmp, f"real ({os.path.basename(trace)} x{repeat})", real)
        mrc_stream(args, tmp, "zipf (1M pages, s=0.9)", zipf)
        if not args.skip_sweep:
            sweep(args, tmp)


if __name__ == "__main__":
    sys.exit(main())
