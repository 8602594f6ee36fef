#!/usr/bin/python3
"""Scale figures (issue 28): N smooth synthetic 32x32x3 images in one store (threads=1) and in 8 shards
(threads=2), for each binary backend (lmdb; hdf5 with gzip), at 100,000, 1,000,000 and 10,000,000 images:

  - load: one INSERT ... SELECT FROM dataset('smooth', N), in a fresh sqlite3 shell; peak RSS (VmHWM) and peak
    anonymous memory (RssAnon: the process's own memory, not the mapped file) polled every 20 ms;
  - scan: every pixel blob read in id order (a fresh shell);
  - batches: 1,000 batches of 256 random ids, each one statement (`WHERE id IN (...)`), as a training loop's
    sampler asks;
  - lookups: 10,000 random ids read one at a time (a join from a native table of ids: one point read per row);
  - disk: du of the store;
  - growth: each per-image cost at the largest size over the same at the smallest (1.0 = linear);

then a projection to 100 million and 1 billion images from the largest size measured. Stores are deleted as
soon as they are measured (10,000,000 images are about 30-40 GB each). Prints markdown, and the hours it took.

    /usr/bin/python3 bench/bench_scale.py                                   # the full run (hours)
    /usr/bin/python3 bench/bench_scale.py --sizes 20000,100000 --dir /var/tmp
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHAPE = "32x32x3"
SHARDS = 8
MODULE_ARGS = {"lmdb": "", "hdf5": ", compression='gzip'", "png_dir": ""}
SUFFIX = {"lmdb": ".lmdb", "hdf5": ".h5", "png_dir": ""}
LAYOUTS = [("one store, threads=1", 1, 1), ("8 shards, threads=2", SHARDS, 2)]
BATCHES, BATCH = 1000, 256
LOOKUPS = 10_000


def shell(sqlite3, ext, script, cwd):
    """Runs `script` in a new sqlite3 shell; (seconds, peak RSS MiB, peak RssAnon MiB, stdout)."""
    start = time.perf_counter()
    p = subprocess.Popen([sqlite3, "-batch", "-bail", ":memory:"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=cwd)
    p.stdin.write(".load %s\n%s\n" % (ext, script))
    p.stdin.close()
    hwm = anon = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
                    elif line.startswith("RssAnon:"):
                        anon = max(anon, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    out, err = p.stdout.read(), p.stderr.read()
    if p.returncode != 0:
        raise RuntimeError("sqlite3 failed (%s): %s" % (script[:160], err.strip()))
    return seconds, hwm / 1024, anon / 1024, out.strip()


def disk_mib(path):
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def drop_caches():
    """Writes back and drops the page cache (root only; otherwise a sync), so each step starts alike."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def measure(sqlite3, ext, backend, n, layout, work, seed):
    name, shards, threads = layout
    row = {"backend": backend, "n": n, "layout": name}
    path = os.path.join(work, "%s_%d_%d" % (backend, n, shards)) + (SUFFIX[backend] if shards == 1 else "")
    create = "CREATE VIRTUAL TABLE t USING %s(path='%s', shape='%s', threads=%d%s%s);" % (
        backend, path, SHAPE, threads, ", shards=%d" % shards if shards > 1 else "", MODULE_ARGS[backend])
    drop_caches()
    row["load"], row["rss"], row["anon"], _ = shell(sqlite3, ext, create + "INSERT INTO t SELECT * FROM dataset('smooth', %d);" % n, work)
    row["disk"] = disk_mib(path)
    opened = "CREATE VIRTUAL TABLE t USING %s(path='%s', threads=%d);" % (backend, path, threads)
    scan = "SELECT count(*), sum(length(pixels)) FROM t;"
    # Scans from the page cache where the store fits in memory (the load left it there); the sharded table is
    # scanned with threads=1 first, then with its threads=2 (the read-ahead's gain).
    if shards > 1:
        s, _, _, out = shell(sqlite3, ext, opened.replace("threads=%d" % threads, "threads=1") + scan, work)
        assert out == "%d|%d" % (n, n * 3072), out
        row["scan_t1"] = s
    s, rss, _, out = shell(sqlite3, ext, opened + scan, work)
    assert out == "%d|%d" % (n, n * 3072), out
    row["scan"], row["scan_rss"] = s, rss
    rng = random.Random(seed)
    # Random ids, written as a native table first (its making is timed apart and subtracted).
    ids = ",".join("(%d,%d)" % (b, rng.randrange(n)) for b in range(BATCHES) for _ in range(BATCH))
    points = ",".join("(%d)" % rng.randrange(n) for _ in range(LOOKUPS))
    setup = ("CREATE TEMP TABLE batch(b, id); INSERT INTO batch VALUES %s; CREATE INDEX temp.batch_b ON batch(b);"
             "CREATE TEMP TABLE point(id); INSERT INTO point VALUES %s;" % (ids, points))
    base = shell(sqlite3, ext, opened + setup, work)[0]
    batches = "".join("SELECT count(*), sum(length(pixels)) FROM t WHERE id IN (SELECT id FROM batch WHERE b = %d);" % b
                      for b in range(BATCHES))
    drop_caches()
    row["batches"] = shell(sqlite3, ext, opened + setup + batches, work)[0] - base
    drop_caches()
    s, _, _, out = shell(sqlite3, ext, opened + setup + "SELECT count(*), sum(length(t.pixels)) FROM point JOIN t "
                         "ON t.id = point.id;", work)
    assert out == "%d|%d" % (LOOKUPS, LOOKUPS * 3072), out
    row["lookups"] = s - base
    if backend == "png_dir":
        # Kept until the run ends: ext4 passes over recently freed inodes when it allocates, so files created just
        # after a mass delete cost more (bench/notes/png.md), and the next load would pay for this one's delete.
        return row
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
    return row


def report(rows, hours, sizes):
    print("## Scale: 10 million images (bench/bench_scale.py)")
    print()
    print("Smooth synthetic %s images; one store with threads=1 and %d shards with threads=2; %d cores, %d GiB of "
          "memory (the page cache dropped before each step). Load: one INSERT ... SELECT FROM dataset(); scan: "
          "every pixel blob in id order; batches: %d statements of %d random ids (`id IN (...)`); lookups: %d "
          "random ids one at a time. The run took %.2f hours." % (
              SHAPE, SHARDS, os.cpu_count(), round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
              BATCHES, BATCH, LOOKUPS, hours))
    print()
    print("| backend | layout | images | load (s) | per image (µs) | vs one store | peak RSS / RssAnon (MiB) | "
          "scan (s) | scan t=1 / t=2 | 1,000 batches of 256 (s) | 10,000 lookups (s) | disk (GiB) | disk per image (B) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        one = [o for o in rows if o["backend"] == r["backend"] and o["n"] == r["n"] and o["layout"] == LAYOUTS[0][0]]
        print("| %s | %s | %d | %.1f | %.1f | %s | %.0f / %.0f | %.1f | %s | %.1f | %.2f | %.2f | %.0f |" % (
            r["backend"], r["layout"], r["n"], r["load"], r["load"] / r["n"] * 1e6,
            "%.2fx" % (one[0]["load"] / r["load"]) if one else "-", r["rss"], r["anon"], r["scan"],
            "%.2fx" % (r["scan_t1"] / r["scan"]) if "scan_t1" in r else "-",
            r["batches"], r["lookups"], r["disk"] / 1024, r["disk"] * 2**20 / r["n"]))
    print()
    lo_n, hi_n = min(sizes), max(sizes)
    print("Growth of the per-image cost from %d to %d images (1.0 = linear), and projections from the %d-image "
          "figures (per-image load and disk times the size; one writer process):" % (lo_n, hi_n, hi_n))
    print()
    print("| backend | layout | growth load / scan / batch / lookup / disk | 100M: disk, load | 1B: disk, load |")
    print("|---|---|---|---|---|")
    for backend in dict.fromkeys(r["backend"] for r in rows):
        for name, _, _ in LAYOUTS:
            rs = {r["n"]: r for r in rows if r["backend"] == backend and r["layout"] == name}
            if lo_n not in rs or hi_n not in rs:
                continue
            lo, hi = rs[lo_n], rs[hi_n]
            growth = " / ".join("%.2f" % ((hi[k] / hi_n) / (lo[k] / lo_n)) for k in ("load", "scan"))
            # (batches and lookups are a fixed number of reads: their growth is the ratio of their times)
            growth += " / " + " / ".join("%.2f" % (hi[k] / lo[k]) for k in ("batches", "lookups"))
            growth += " / %.2f" % ((hi["disk"] / hi_n) / (lo["disk"] / lo_n))

            def proj(total):
                return "%.1f TiB, %.1f h" % (total * hi["disk"] / hi_n / 2**20, total * hi["load"] / hi_n / 3600)

            print("| %s | %s | %s | %s | %s |" % (backend, name, growth, proj(100_000_000), proj(1_000_000_000)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    parser.add_argument("--sqlite3", default="sqlite3")
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--backends", default="lmdb,hdf5")
    parser.add_argument("--dir", default=None, help="work directory (default: a new one in /var/tmp)")
    a = parser.parse_args()
    ext = os.path.abspath(a.extension)
    sizes = [int(x) for x in a.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="imgstore-scale-", dir=a.dir or "/var/tmp")
    start = time.time()
    rows = []
    try:
        for backend in a.backends.split(","):
            for n in sizes:
                for layout in LAYOUTS:
                    rows.append(measure(a.sqlite3, ext, backend, n, layout, work, seed=n))
                    r = rows[-1]
                    print("%s, %s, %d: load %.1f s, scan %.1f s, batches %.1f s, lookups %.2f s, %.0f MiB" % (
                        backend, r["layout"], n, r["load"], r["scan"], r["batches"], r["lookups"], r["disk"]),
                        file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rows, (time.time() - start) / 3600, sizes)


if __name__ == "__main__":
    main()
