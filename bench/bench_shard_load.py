#!/usr/bin/python3
"""Sharded loads against one store (issue 28): N smooth synthetic 32x32x3 images loaded with one
`INSERT ... SELECT FROM dataset('smooth', N)` into one store with threads=1 and into 8 shards with threads=2, in
PAIRS alternating runs per backend (a fresh sqlite3 shell each, the page cache dropped before each), so that
each pair's ratio is measured in one run and the machine's drift (on this VM the kernel's first touch of page
cache memory makes one lmdb load vary by 20%) shows as the spread of the pairs. Prints markdown: every pair,
the median ratio, and the peak RSS of each load.

    /usr/bin/python3 bench/bench_shard_load.py                              # lmdb, hdf5 (gzip), png_dir at 1M
    /usr/bin/python3 bench/bench_shard_load.py --backends lmdb --n 200000 --pairs 3
    /usr/bin/python3 bench/bench_shard_load.py --backends png_dir --fresh-fs   # root: each load on a new ext4

--fresh-fs (root only) makes each load's store on a new, empty ext4 file system (a sparse image in the work
directory, mounted through a loop device, removed after the load): without it, png_dir loads run beside the
stores of the loads before (ext4 makes files more slowly the more inodes it holds, and right after a mass delete
more slowly still), so a pair's second load ran on a fuller file system than its first.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_scale import MODULE_ARGS, SHAPE, SHARDS, drop_caches, shell

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {"lmdb": 5, "hdf5": 3, "png_dir": 2}


def load(sqlite3, ext, backend, path, shards, threads, n):
    """One load in a new shell (bench_scale's, which polls its peak RSS): (seconds, peak RSS MiB)."""
    sharding = ", shards=%d" % shards if shards > 1 else ""
    script = ("CREATE VIRTUAL TABLE t USING %s(path='%s', shape='%s', threads=%d%s%s);\n"
              "INSERT INTO t SELECT * FROM dataset('smooth', %d);" % (
                  backend, path, SHAPE, threads, sharding, MODULE_ARGS[backend], n))
    seconds, rss, _, _ = shell(sqlite3, ext, script, None)
    return seconds, rss


@contextlib.contextmanager
def fresh_file_system(work, size="64G"):
    """A new, empty ext4 (mkfs defaults) mounted at work/fs for the duration; its image removed afterwards.

    The loop device does direct I/O to its image: a buffered loop device caches every block twice and writes it
    back twice (the kernel's threads then took about a quarter of the 2 cores in a sharded load, which one store
    leaves idle), which a disk does not."""
    image, mount = work / "fs.img", work / "fs"
    mount.mkdir(exist_ok=True)
    try:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        device = subprocess.run(["losetup", "--direct-io=on", "--find", "--show", str(image)], check=True,
                                capture_output=True, text=True).stdout.strip()
        try:
            subprocess.run(["mount", device, str(mount)], check=True)
            try:
                yield mount
            finally:
                subprocess.run(["umount", str(mount)], check=False)
        finally:
            subprocess.run(["losetup", "-d", device], check=False)
    finally:
        image.unlink(missing_ok=True)


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    parser.add_argument("--sqlite3", default="sqlite3")
    parser.add_argument("--backends", default="lmdb,hdf5,png_dir")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=0, help="pairs per backend (default: lmdb 5, hdf5 3, png_dir 2)")
    parser.add_argument("--dir", default=None, help="work directory (default: a new one in /var/tmp)")
    parser.add_argument("--fresh-fs", action="store_true", help="each load on a new ext4 file system (root)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="imgstore-shard-load-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.time()
    print("## Sharded loads against one store (bench/bench_shard_load.py)")
    print()
    print("%d smooth synthetic %s images, one `INSERT ... SELECT FROM dataset('smooth', %d)` in a new sqlite3 shell "
          "per load; one store with threads=1 against %d shards with threads=2, alternating, the page cache dropped "
          "before each load; %d cores. Ratio: one store's time over the shards' in the same pair.%s" % (
              args.n, SHAPE, args.n, SHARDS, os.cpu_count(),
              " Each load on a new, empty ext4 file system (--fresh-fs: a sparse image through a loop device with direct I/O)."
              if args.fresh_fs else ""))
    print()
    print("| backend | pair | one store (s) | 8 shards (s) | ratio | peak RSS one / shards (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    summary = []
    for backend in args.backends.split(","):
        pairs = args.pairs or PAIRS[backend]
        ratios, ones, shards_s, rss = [], [], [], []
        kept = []  # png_dir stores stay until the backend is done: ext4 makes files slowly right after a mass delete
        for pair in range(1, pairs + 1):
            times = {}
            for name, shards, threads in (("one", 1, 1), ("shards", SHARDS, 2)):
                store = "%s-%s-%d" % (backend, name, pair)
                if args.fresh_fs:
                    with fresh_file_system(work) as where:
                        drop_caches()
                        times[name] = load(args.sqlite3, args.extension, backend, str(where / store), shards,
                                           threads, args.n)
                    continue
                path = str(work / store)
                drop_caches()
                times[name] = load(args.sqlite3, args.extension, backend, path, shards, threads, args.n)
                if backend == "png_dir":
                    kept.append(path)
                else:
                    remove(path)
            ratio = times["one"][0] / times["shards"][0]
            ratios.append(ratio)
            ones.append(times["one"][0])
            shards_s.append(times["shards"][0])
            rss.append((times["one"][1], times["shards"][1]))
            print("| %s | %d | %.1f | %.1f | %.2fx | %.0f / %.0f |" % (
                backend, pair, times["one"][0], times["shards"][0], ratio, times["one"][1], times["shards"][1]),
                flush=True)
        for path in kept:
            remove(path)
        summary.append((backend, pairs, statistics.median(ratios), min(ratios), max(ratios),
                        statistics.median(ones) / statistics.median(shards_s), max(r[1] for r in rss)))
    print()
    print("| backend | pairs | median ratio | range | ratio of median times | peak RSS of the shards (MiB) |")
    print("|---|---:|---:|---|---:|---:|")
    for backend, pairs, median, lo, hi, of_medians, peak in summary:
        print("| %s | %d | %.2fx | %.2f-%.2fx | %.2fx | %.0f |" % (backend, pairs, median, lo, hi, of_medians, peak))
    print()
    print("The run took %.0f minutes." % ((time.time() - began) / 60))
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
