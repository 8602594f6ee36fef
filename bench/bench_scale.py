#!/usr/bin/python3
"""Scale figures for sharded tables (issue 14): loads of N smooth synthetic 32x32x3 images into 8 shards with
threads=1 and threads=2 (and into one store with threads=1 and 2: the ratio the issue asks about), full scans in SQL
and with Dask (1 and 2 worker processes), disk usage and peak memory, at each size given; then how each figure
grows between the sizes and a projection to 10 and 100 million images.

    /usr/bin/python3 bench/bench_scale.py --extension build/imgstore.so                 # the full run
    /usr/bin/python3 bench/bench_scale.py --extension build/imgstore.so --sizes 2000,20000 --png-sizes 2000,20000

Defaults: lmdb and hdf5 (gzip) at 100,000 and 1,000,000 images, png_dir at 10,000 and 100,000. Each load and SQL
scan is a fresh sqlite3 shell process; its peak RSS (VmHWM) and peak anonymous memory (RssAnon, polled every
20 ms: the writer's own memory, not the mapped file) are read from /proc. Prints markdown.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

SHAPE = "32x32x3"
SHARDS = 8
MODULE_ARGS = {"lmdb": "", "hdf5": ", compression='gzip'", "png_dir": ""}


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
        raise RuntimeError("sqlite3 failed (%s): %s" % (script[:120], err.strip()))
    return seconds, hwm / 1024, anon / 1024, out.strip()


def disk_mib(path):
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def dask_scan(path, workers, ext):
    """Seconds to read every image of the sharded table with imgstore.dask on `workers` worker processes
    (a label histogram and the mean image: every byte is read)."""
    import distributed
    import imgstore.dask
    os.environ["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        start = time.perf_counter()
        _, labels, images = imgstore.dask.read(path, extension=ext)
        client.compute([labels.sum(), images.mean(axis=0)], sync=True)
        return time.perf_counter() - start


def measure(sqlite3, ext, backend, n, work):
    row = {"backend": backend, "n": n}
    args = MODULE_ARGS[backend]
    source = "dataset('smooth', %d)" % n
    for threads in (1, 2):
        path = os.path.join(work, "%s_%d_t%d" % (backend, n, threads))
        s, rss, anon, _ = shell(sqlite3, ext, "CREATE VIRTUAL TABLE t USING %s(path='%s', shape='%s', shards=%d, "
                                "threads=%d%s); INSERT INTO t SELECT * FROM %s;" % (backend, path, SHAPE, SHARDS, threads,
                                                                                      args, source), work)
        row["load_t%d" % threads], row["rss_t%d" % threads], row["anon_t%d" % threads] = s, rss, anon
    # One store, as the baseline: threads=1 (one core, as before `threads` existed) up to 100,000 images,
    # and threads=2 (a single store's own parallel encoding) at every size.
    for threads in ((1, 2) if n <= 100_000 else (2,)):
        one = os.path.join(work, "%s_%d_one" % (backend, n)) + (".lmdb" if backend == "lmdb" else ".h5" if backend == "hdf5" else "")
        row["load_one_t%d" % threads] = shell(sqlite3, ext, "CREATE VIRTUAL TABLE t USING %s(path='%s', shape='%s', "
                                              "threads=%d%s); INSERT INTO t SELECT * FROM %s;" % (
                                                  backend, one, SHAPE, threads, args, source), work)[0]
        for leftover in (one, one + "-lock"):  # a single-file lmdb store (format 1) had its lock file beside it
            if os.path.isdir(leftover):
                shutil.rmtree(leftover)
            elif os.path.exists(leftover):
                os.remove(leftover)
    path = os.path.join(work, "%s_%d_t2" % (backend, n))
    shutil.rmtree(os.path.join(work, "%s_%d_t1" % (backend, n)))
    row["disk"] = disk_mib(path)
    s, rss, anon, out = shell(sqlite3, ext, "CREATE VIRTUAL TABLE t USING %s(path='%s'); "
                              "SELECT count(*), sum(length(pixels)) FROM t;" % (backend, path), work)
    assert out.split("|")[0] == str(n), out
    row["scan_sql"], row["scan_rss"] = s, rss
    for workers in (1, 2):
        row["dask_w%d" % workers] = dask_scan(path, workers, ext)
    shutil.rmtree(path)
    return row


def table(rows):
    print("| backend | images | load 8 shards t=1 (s) | t=2 (s) | one store t=1 / t=2 (s) | 8 shards t=2 vs one store t=1 / t=2 "
          "| peak RSS t=2 (MiB) | peak RssAnon t=1 / t=2 (MiB) | SQL scan (s) | Dask 1 / 2 workers (s) | disk (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        one_t1 = r.get("load_one_t1")
        print("| %s | %d | %.1f | %.1f | %s / %.1f | %s / %.2fx | %.0f | %.0f / %.0f | %.1f | %.1f / %.1f | %.0f |" % (
            r["backend"], r["n"], r["load_t1"], r["load_t2"], "%.1f" % one_t1 if one_t1 else "-", r["load_one_t2"],
            "%.2fx" % (one_t1 / r["load_t2"]) if one_t1 else "-", r["load_one_t2"] / r["load_t2"], r["rss_t2"],
            r["anon_t1"], r["anon_t2"], r["scan_sql"], r["dask_w1"], r["dask_w2"], r["disk"]))


def growth_and_projection(rows):
    print()
    print("Growth from the smallest to the largest size (1.0 = linear: the per-image cost did not change), and a")
    print("projection from the largest size's per-image costs to 10 and 100 million images, one Dask task per shard")
    print("of 125,000 images on M machines of 2 workers each, reading shards from a shared file system:")
    print()
    print("| backend | load per image | scan per image | disk per image | growth load / scan / disk "
          "| 10M: shards, disk, load by one writer, Dask scan on 1 / 10 machines "
          "| 100M: shards, disk, load by one writer, Dask scan on 10 / 100 machines |")
    print("|---|---:|---:|---:|---|---|---|")
    by_backend = {}
    for r in rows:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend, rs in by_backend.items():
        lo, hi = rs[0], rs[-1]

        def per(r, key):
            return r[key] / r["n"]

        growth = " / ".join("%.2f" % (per(hi, k) / per(lo, k)) for k in ("load_t2", "scan_sql", "disk"))
        scan_per_worker = per(hi, "dask_w1")  # seconds per image for one worker
        disk_per = per(hi, "disk")  # MiB per image

        def proj(n, machines):
            return "%.0f s" % (n * scan_per_worker / (2 * machines))

        def load(n):
            return "%.1f h" % (n * per(hi, "load_t2") / 3600)

        print("| %s | %.1f µs | %.1f µs | %.1f KiB | %s | %d, %.0f GiB, %s, %s / %s | %d, %.0f GiB, %s, %s / %s |" % (
            backend, per(hi, "load_t2") * 1e6, per(hi, "scan_sql") * 1e6, disk_per * 1024, growth,
            10_000_000 // 125_000, 10_000_000 * disk_per / 1024, load(10_000_000), proj(10_000_000, 1),
            proj(10_000_000, 10), 100_000_000 // 125_000, 100_000_000 * disk_per / 1024, load(100_000_000),
            proj(100_000_000, 10), proj(100_000_000, 100)))
    print()
    print("What becomes the bottleneck: the Dask scan scales with workers until the shared file system's bandwidth is")
    print("reached (100M images of 32x32x3 are ~300 GiB: at 1 GiB/s that is 5 minutes however many workers read);")
    print("the load does not scale out: one SQL transaction has one writer process, writing every shard from one")
    print("machine, so loading 100M images takes 100M x the load cost per image / the writer's threads. Loading")
    print("across machines means one table per machine (or per load), merged by the reader.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    parser.add_argument("--sqlite3", default="sqlite3")
    parser.add_argument("--sizes", default="100000,1000000", help="lmdb and hdf5 sizes, comma-separated")
    parser.add_argument("--png-sizes", default="10000,100000", help="png_dir sizes, comma-separated")
    parser.add_argument("--backends", default="lmdb,hdf5,png_dir")
    parser.add_argument("--dir", default=None, help="work directory (default: a new one in /tmp)")
    a = parser.parse_args()
    ext = os.path.abspath(a.extension)
    work = tempfile.mkdtemp(prefix="imgstore-scale-", dir=a.dir)
    rows = []
    try:
        for backend in a.backends.split(","):
            sizes = a.png_sizes if backend == "png_dir" else a.sizes
            for n in (int(x) for x in sizes.split(",")):
                rows.append(measure(a.sqlite3, ext, backend, n, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("## Scale: sharded tables (bench/bench_scale.py)")
    print()
    print("%d shards, smooth synthetic %s images, %d cores; loads are one INSERT ... SELECT FROM dataset(); the SQL"
          " scan reads every pixel blob; the Dask scan computes the label sum and the mean image." % (SHARDS, SHAPE, os.cpu_count()))
    print()
    table(rows)
    growth_and_projection(rows)


if __name__ == "__main__":
    main()
