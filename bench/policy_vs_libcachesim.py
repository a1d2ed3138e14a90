#!/usr/bin/env python3
"""Compare vmsim's replacement policies with libCacheSim's (a benchmark peer).

Run through bench/policy-vs-libcachesim.sh, which creates the virtual
environment with libcachesim 0.3.5 and builds vmsim in release mode.

Two parts:
  agreement  for FIFO, LRU, CLOCK (both insertion variants), ARC, LIRS,
             SIEVE, S3-FIFO and OPT/Belady on seeded zipf and loop streams at
             several frame counts, and on a real program's page stream (the
             committed bench/data/sqlite_4k.lackey.zst through `vmsim trace
             pages`, its first --real-refs references) at 64-512 frames:
             prints "policy stream frames ours theirs equal", the largest
             difference of each policy that differs (in % of libCacheSim's
             misses), and the reason where a difference is on purpose.
  speed      on a 10M-reference zipf stream at 100 and 100,000 frames, on one
             core: vmsim's in-process simulation rate (from --timing), the
             whole `vmsim policy` process time (read text file, parse, remap,
             simulate), and libCacheSim's in-process `process_trace` over its
             binary oracleGeneral trace.
  real speed the same for LRU, ARC, LIRS and OPT on the real program's page
             stream (sqlite_4k, its first --real-speed-refs references) at
             64-1024 frames, in CPU seconds (the simulating thread's, from
             --timing; libCacheSim's process CPU time around process_trace;
             the whole vmsim process's user + system time), medians of
             --real-speed-runs: on a real stream most references hit, which
             is where a simulator's hit path counts. Target: our simulation
             at least 3x libCacheSim's rate, our whole process (reading the
             text file included) faster than libCacheSim in-process.

The streams are generated here, deterministically from a seed, and written
twice: as text (page numbers, one per line) for vmsim and as oracleGeneral
binary (u32 time, u64 id, u32 size=1, i64 next access) for libCacheSim, so
"frames" means the same thing in both (object size 1, cache size = frames).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import libcachesim as lcs

ORACLE_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("sz", "<u4"), ("nxt", "<i8")])


def zipf_stream(n_refs, n_objs, alpha, seed):
    """Seeded zipf(alpha) over objects 0..n_objs-1 (0 the most popular), by
    inverse CDF: deterministic for a given seed and numpy's PCG64."""
    rng = np.random.Generator(np.random.PCG64(seed))
    w = 1.0 / np.power(np.arange(1, n_objs + 1, dtype=np.float64), alpha)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(n_refs)
    ids = np.searchsorted(cdf, u, side="right").astype(np.uint64)
    # Scatter popular objects over the id space so ids carry no rank order.
    perm = np.random.Generator(np.random.PCG64(seed + 1)).permutation(n_objs).astype(np.uint64)
    return perm[np.minimum(ids, n_objs - 1)]


def loop_stream(n_refs, length):
    """0, 1, ..., length-1, 0, 1, ... (a loop larger or smaller than memory)."""
    return (np.arange(n_refs, dtype=np.uint64) % np.uint64(length)).astype(np.uint64)


def next_access(ids):
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    nxt = np.full(n, -1, dtype=np.int64)
    same = s[1:] == s[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def write_streams(ids, directory, name):
    txt = os.path.join(directory, name + ".txt")
    binp = os.path.join(directory, name + ".oracleGeneral.bin")
    with open(txt, "w") as f:
        f.write("\n".join(map(str, ids.tolist())))
        f.write("\n")
    a = np.zeros(len(ids), dtype=ORACLE_DTYPE)
    a["t"] = np.arange(1, len(ids) + 1, dtype=np.uint32)
    a["id"] = ids
    a["sz"] = 1
    a["nxt"] = next_access(ids)
    a.tofile(binp)
    return txt, binp


# (label, vmsim policy and flags, libCacheSim constructor, note when a
# difference is on purpose)
POLICIES_ALL = [
    ("fifo", ["--policy", "fifo"], lambda c: lcs.FIFO(c), None),
    ("lru", ["--policy", "lru"], lambda c: lcs.LRU(c), None),
    ("clock/clear", ["--policy", "clock", "--clock-insert", "clear"], lambda c: lcs.Clock(c, init_freq=0), None),
    ("clock/referenced", ["--policy", "clock"], lambda c: lcs.Clock(c, init_freq=1), None),
    ("arc", ["--policy", "arc"], lambda c: lcs.ARC(c), None),
    ("lirs", ["--policy", "lirs"], lambda c: lcs.LIRS(c),
     "on purpose: libCacheSim's LIRS, on a hit to a resident HIR page outside the stack S, demotes "
     "an LIR page and may push a page out of Q, so it evicts on a hit and holds fewer pages than "
     "frames; ours evicts only on a fault, as demand paging must (see lirs_evicts_on_hits below)"),
    ("sieve", ["--policy", "sieve"], lambda c: lcs.Sieve(c), None),
    ("s3-fifo", ["--policy", "s3-fifo"], lambda c: lcs.S3FIFO(c), None),
    ("opt", ["--policy", "opt"], lambda c: lcs.Belady(c), None),
]

POLICIES = [p for p in POLICIES_ALL if not os.environ.get("ONLY") or p[0] in os.environ["ONLY"].split(",")]

SPEED_POLICIES = {
    "fifo": (["--policy", "fifo"], lambda c: lcs.FIFO(c)),
    "lru": (["--policy", "lru"], lambda c: lcs.LRU(c)),
    "clock": (["--policy", "clock", "--clock-insert", "clear"], lambda c: lcs.Clock(c)),
    "arc": (["--policy", "arc"], lambda c: lcs.ARC(c)),
    "opt": (["--policy", "opt"], lambda c: lcs.Belady(c)),
}


def ours(vmsim, txt, flags, frames, timing=False, cpu=False):
    """Misses, wall seconds of the process, and the simulation's seconds
    (from --timing). With `cpu`: the process's user + system seconds
    instead of wall, and the simulating thread's CPU seconds."""
    cmd = [vmsim, "policy", *flags, "--frames", str(frames), "--file", txt, "--quiet", "--json"]
    if timing:
        cmd.append("--timing")
    r0 = os.times()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    r1 = os.times()
    if cpu:
        wall = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    res = json.loads(p.stdout)
    sim = None
    for line in p.stderr.splitlines():
        if line.startswith("timing:"):
            key = "simulate CPU " if cpu and "simulate CPU " in line else "simulate "
            sim = float(line.split(key)[1].split(" s")[0])
    return res["misses"], wall, sim


def theirs(binp, make, frames, cpu=False):
    reader = lcs.TraceReader(binp, lcs.TraceType.ORACLE_GENERAL_TRACE)
    n = reader.get_num_of_req()
    cache = make(frames)
    clock = time.process_time if cpu else time.perf_counter
    t0 = clock()
    miss_ratio, _ = cache.process_trace(reader)
    dt = clock() - t0
    return int(round(miss_ratio * n)), dt, n


def real_stream(vmsim, tmp, trace, n_refs):
    """The page stream of a real trace (`vmsim trace pages --binary`), its
    first `n_refs` references."""
    out = os.path.join(tmp, "real.pages.bin")
    subprocess.run([vmsim, "trace", "pages", trace, "--binary", "-o", out], check=True)
    return np.fromfile(out, dtype="<u8")[:n_refs]


def agreement(vmsim, tmp, n_refs, real_trace, real_refs):
    streams = {
        "zipf0.8": (zipf_stream(n_refs, 20_000, 0.8, 42), [100, 500, 1000, 2000]),
        "zipf1.0": (zipf_stream(n_refs, 20_000, 1.0, 7), [100, 500, 1000, 2000]),
        "loop1500": (loop_stream(n_refs, 1500), [100, 500, 1000, 2000]),
        "zipf+loop": (np.concatenate([zipf_stream(n_refs // 2, 5000, 0.9, 3), loop_stream(n_refs // 2, 900)]),
                      [100, 500, 1000, 2000]),
    }
    if real_refs > 0 and os.path.exists(real_trace):
        name = os.path.basename(real_trace).split(".")[0]
        streams[name] = (real_stream(vmsim, tmp, real_trace, real_refs), [64, 128, 256, 512])
    print(f"{'policy':<17} {'stream':<10} {'frames':>6} {'ours':>8} {'theirs':>8}  equal")
    all_equal = True
    unequal = []
    worst = {}
    for sname, (ids, frame_counts) in streams.items():
        txt, binp = write_streams(ids, tmp, sname)
        for label, flags, make, note in POLICIES:
            for f in frame_counts:
                o, _, _ = ours(vmsim, txt, flags, f)
                t, _, _ = theirs(binp, make, f)
                eq = o == t
                all_equal &= eq
                if not eq:
                    unequal.append(label)
                    pct = 100.0 * abs(o - t) / max(t, 1)
                    if pct > worst.get(label, (0.0,))[0]:
                        worst[label] = (pct, sname, f)
                print(f"{label:<17} {sname:<10} {f:>6} {o:>8} {t:>8}  {'yes' if eq else 'NO'}"
                      + ("" if eq or note is None else "  (on purpose, see below)"))
    for label, (pct, sname, f) in sorted(worst.items()):
        print(f"largest difference, {label}: {pct:.3f}% of libCacheSim's misses ({sname}, {f} frames)")
    sys.stdout.flush()
    return all_equal, sorted(set(unequal))


def lirs_evicts_on_hits(frames=100, n_refs=200_000):
    """Evidence for the LIRS note: count the hits after which libCacheSim's
    LIRS holds fewer objects than before, once full."""
    cache = lcs.LIRS(frames)
    req = lcs.Request()
    before = 0
    on_hit = 0
    for x in zipf_stream(n_refs, 5000, 1.0, 11).tolist():
        req.obj_id = x
        req.obj_size = 1
        hit = cache.get(req)
        n = cache.get_n_obj()
        if hit and n < before:
            on_hit += 1
        before = n
    print(f"lirs_evicts_on_hits: libCacheSim's LIRS ({frames} frames) dropped a page on {on_hit} "
          f"hits of {n_refs} references")


def speed(vmsim, tmp, n_refs):
    ids = zipf_stream(n_refs, 1_000_000, 1.0, 2024)
    txt, binp = write_streams(ids, tmp, "zipf-speed")
    print(f"\nspeed: {n_refs:,} zipf(1.0) references over 1,000,000 pages, one core (taskset)")
    print(f"{'policy':<7} {'frames':>7} {'ours Mrefs/s':>13} {'lcs Mrefs/s':>12} {'ratio':>6} "
          f"{'ours process s':>15} {'lcs in-proc s':>14} {'misses equal':>13}")
    ok = True
    for name, (flags, make) in SPEED_POLICIES.items():
        for f in (100, 100_000):
            # Best of 3 for both sides.
            runs_o = [ours(vmsim, txt, flags, f, timing=True) for _ in range(3)]
            runs_t = [theirs(binp, make, f) for _ in range(3)]
            o_miss = runs_o[0][0]
            t_miss = runs_t[0][0]
            o_sim = min(r[2] for r in runs_o)
            o_wall = min(r[1] for r in runs_o)
            t_sim = min(r[1] for r in runs_t)
            o_rate = n_refs / o_sim / 1e6
            t_rate = n_refs / t_sim / 1e6
            ratio = o_rate / t_rate
            ok &= ratio >= 2.0 and o_wall < t_sim
            print(f"{name:<7} {f:>7} {o_rate:>13.1f} {t_rate:>12.1f} {ratio:>6.2f} "
                  f"{o_wall:>15.3f} {t_sim:>14.3f} {'yes' if o_miss == t_miss else 'NO':>13}")
            sys.stdout.flush()
    return ok


REAL_SPEED_POLICIES = {
    "lru": (["--policy", "lru"], lambda c: lcs.LRU(c)),
    "arc": (["--policy", "arc"], lambda c: lcs.ARC(c)),
    "lirs": (["--policy", "lirs"], lambda c: lcs.LIRS(c)),
    "opt": (["--policy", "opt"], lambda c: lcs.Belady(c)),
}


def real_speed(vmsim, tmp, trace, n_refs, runs):
    """LRU, ARC, LIRS, OPT on the real page stream, CPU seconds, medians."""
    ids = real_stream(vmsim, tmp, trace, n_refs)
    n = len(ids)
    txt, binp = write_streams(ids, tmp, "real-speed")
    name = os.path.basename(trace).split(".")[0]
    print(f"\nreal speed: {name}, {n:,} references, {len(np.unique(ids)):,} pages, one core, "
          f"CPU seconds, median of {runs}")
    print(f"{'policy':<7} {'frames':>7} {'ours Mrefs/s':>13} {'lcs Mrefs/s':>12} {'ratio':>6} "
          f"{'ours process s':>15} {'lcs in-proc s':>14} {'misses':>9} {'equal':>6}")
    ok = True
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for pname, (flags, make) in REAL_SPEED_POLICIES.items():
        for f in (64, 256, 1024):
            runs_o = [ours(vmsim, txt, flags, f, timing=True, cpu=True) for _ in range(runs)]
            runs_t = [theirs(binp, make, f, cpu=True) for _ in range(runs)]
            o_miss, t_miss = runs_o[0][0], runs_t[0][0]
            o_sim = med([r[2] for r in runs_o])
            o_proc = med([r[1] for r in runs_o])
            t_sim = med([r[1] for r in runs_t])
            o_rate = n / o_sim / 1e6
            t_rate = n / t_sim / 1e6
            ratio = o_rate / t_rate
            equal = o_miss == t_miss
            ok &= ratio >= 3.0 and o_proc < t_sim
            print(f"{pname:<7} {f:>7} {o_rate:>13.1f} {t_rate:>12.1f} {ratio:>6.2f} "
                  f"{o_proc:>15.3f} {t_sim:>14.3f} {o_miss:>9} {'yes' if equal else 'NO':>6}"
                  + ("" if equal or pname != "lirs" else "  (LIRS differs on purpose)"))
            sys.stdout.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmsim", required=True, help="path to the release vmsim binary")
    ap.add_argument("--agreement-refs", type=int, default=200_000)
    ap.add_argument("--real-trace", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "data", "sqlite_4k.lackey.zst"))
    ap.add_argument("--real-refs", type=int, default=2_000_000,
                    help="references of the real trace's page stream to compare (0: none)")
    ap.add_argument("--speed-refs", type=int, default=10_000_000)
    ap.add_argument("--real-speed-refs", type=int, default=20_000_000,
                    help="references of the real trace's page stream to time (0: skip)")
    ap.add_argument("--real-speed-runs", type=int, default=5)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-agreement", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})  # children (vmsim) inherit it
    print(f"libcachesim {lcs.__version__}")
    with tempfile.TemporaryDirectory(prefix="vmsim-lcs-") as tmp:
        status = 0
        if not args.skip_agreement:
            eq, unequal = agreement(args.vmsim, tmp, args.agreement_refs, args.real_trace, args.real_refs)
            print("agreement:", "all equal" if eq else "differences in " + ", ".join(unequal))
            for label, _, _, note in POLICIES:
                if label in unequal and note:
                    print(f"  {label}: {note}")
            unexplained = [l for l, _, _, note in POLICIES if l in unequal and not note]
            if unexplained:
                print("agreement FAILED for", ", ".join(unexplained))
                status = 1
            if "lirs" in unequal:
                lirs_evicts_on_hits()
        if not args.skip_speed:
            ok = speed(args.vmsim, tmp, args.speed_refs)
            print("speed:", "ours >= 2x libCacheSim in-process and our whole process faster everywhere"
                  if ok else "target NOT met everywhere (see table)")
            if args.real_speed_refs > 0 and os.path.exists(args.real_trace):
                ok = real_speed(args.vmsim, tmp, args.real_trace, args.real_speed_refs,
                                args.real_speed_runs)
                print("real speed:", "ours >= 3x libCacheSim in-process and our whole process faster everywhere"
                      if ok else "target NOT met everywhere (see table)")
        return status


if __name__ == "__main__":
    sys.exit(main())
