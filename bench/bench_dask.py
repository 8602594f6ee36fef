#!/usr/bin/python3
"""imgstore.dask at scale (issue 26, point 5): a full read of a 1,000,000-image sharded table with Dask against the
SQL scan of the same table, per worker.

    /usr/bin/python3 bench/bench_dask.py [--images 1000000] [--extension build/imgstore.so]

Tables as bench_scale.py makes them: 8 shards of smooth synthetic 32x32x3 images, lmdb and hdf5 (gzip). Each time is
the best of 2. The SQL scan is a fresh sqlite3 shell reading every pixel blob (`SELECT count(*),
sum(length(pixels))`, every image's checksum checked); the Dask read loads every chunk of `images` and computes
nothing from it; the Dask scan
is what bench_scale.py computes, the label sum and the mean image (every byte read and summed), on a local
cluster of 1 and 2 worker processes (one thread each); `labels` alone is the label histogram, which reads no
pixels. Prints markdown.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

MODULE_ARGS = {"lmdb": "", "hdf5": ", compression='gzip'"}


def shell(sqlite3, ext, script, cwd):
    start = time.perf_counter()
    out = subprocess.run([sqlite3, "-batch", "-bail", ":memory:"], input=".load %s\n%s\n" % (ext, script),
                         capture_output=True, text=True, cwd=cwd, check=True).stdout
    return time.perf_counter() - start, out.strip()


def dask_times(path, workers, ext):
    import dask.array as da
    import distributed
    import imgstore.dask
    os.environ["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.run(lambda: __import__("imgstore.dask"))  # the workers' imports: not the read's time

        def timed(compute):
            best = float("inf")
            for _ in range(2):  # best of 2, as the SQL scan
                start = time.perf_counter()
                ids, labels, images = imgstore.dask.read(path, extension=ext)
                client.compute(compute(ids, labels, images), sync=True)
                best = min(best, time.perf_counter() - start)
            return best
        # Every image read into its chunk and nothing computed from it (the SQL scan's work), then the label sum
        # and the mean image (bench_scale.py's Dask scan: float64 sums of every byte), then labels alone.
        read = timed(lambda ids, labels, images: images.map_blocks(
            lambda b: np.array([len(b)]), chunks=(1,), drop_axis=[1, 2, 3], dtype=np.int64).sum())
        mean = timed(lambda ids, labels, images: [labels.sum(), images.mean(axis=0)])
        alone = timed(lambda ids, labels, images: da.bincount(labels, minlength=10))
        return read, mean, alone


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    parser.add_argument("--sqlite3", default="sqlite3")
    args = parser.parse_args()
    ext = os.path.abspath(args.extension)
    work = Path(tempfile.mkdtemp(prefix="imgstore-bench-dask-"))
    rows = []
    try:
        for backend in ("lmdb", "hdf5"):
            path = str(work / backend)
            load, _ = shell(args.sqlite3, ext, "CREATE VIRTUAL TABLE t USING %s(path='%s', shape='32x32x3', shards=8%s); "
                            "INSERT INTO t SELECT * FROM dataset('smooth', %d);" % (backend, path, MODULE_ARGS[backend],
                                                                                   args.images), work)
            sql, out = min(shell(args.sqlite3, ext, "CREATE VIRTUAL TABLE t USING %s(path='%s'); "
                                 "SELECT count(*), sum(length(pixels)) FROM t;" % (backend, path), work) for _ in range(2))
            assert out.split("|")[0] == str(args.images), out
            rows.append((backend, load, sql, dask_times(path, 1, ext), dask_times(path, 2, ext)))
            shutil.rmtree(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n### imgstore.dask.read of {args.images:,} images in 8 shards (smooth 32x32x3; hdf5 gzip), one run\n")
    print("| backend | load (s) | SQL scan (s) | Dask read, 1 / 2 workers (s) | read, 1 worker / SQL scan (target <= 2) "
          "| Dask label sum + mean image, 1 / 2 workers (s) | labels alone, 1 / 2 workers (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, load, sql, (r1, m1, l1), (r2, m2, l2) in rows:
        print(f"| {backend} | {load:.1f} | {sql:.1f} | {r1:.1f} / {r2:.1f} | {r1 / sql:.2f} | {m1:.1f} / {m2:.1f} "
              f"| {l1:.1f} / {l2:.1f} |")


if __name__ == "__main__":
    main()
