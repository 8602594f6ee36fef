#!/usr/bin/python3
"""One syncfs against per-file fsyncs for a png_dir commit (issue 28): N files of a PNG's size (1,423 bytes, a
32x32x3 smooth image at level 6) written into 8 directories as 8 shards' commits would, then made durable
either with one syncfs(2) of the file system, or with fsync(2) of every file and then of every directory. Each
way runs on fresh files, three times, alternating; the best of each is printed.

    /usr/bin/python3 bench/bench_syncfs.py [N] [--dir /var/tmp]
"""

import ctypes
import os
import shutil
import sys
import tempfile
import time

LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
SIZE = 1423
SHARDS = 8


def write_files(root, n):
    paths = []
    data = os.urandom(SIZE)
    for s in range(SHARDS):
        os.makedirs(os.path.join(root, "shard-%03d" % s))
    for i in range(n):
        p = os.path.join(root, "shard-%03d" % (i % SHARDS), "%d.png" % i)
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
    return paths


def with_syncfs(root, paths):
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if LIBC.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)


def with_fsyncs(root, paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    for s in range(SHARDS):
        fd = os.open(os.path.join(root, "shard-%03d" % s), os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else 20000
    base = sys.argv[sys.argv.index("--dir") + 1] if "--dir" in sys.argv else "/var/tmp"
    work = tempfile.mkdtemp(prefix="imgstore-syncfs-", dir=base)
    best = {"one syncfs": float("inf"), "fsync per file and directory": float("inf")}
    try:
        os.sync()
        for k in range(3):
            for name, way in (list(best.items()) if k % 2 == 0 else list(reversed(best.items()))):
                root = os.path.join(work, "%s-%d" % (name.split()[0], k))
                paths = write_files(root, n)
                fn = with_syncfs if name == "one syncfs" else with_fsyncs
                start = time.perf_counter()
                fn(root, paths)
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d files of %d bytes in %d directories, made durable (best of 3):" % (n, SIZE, SHARDS))
    for name, t in best.items():
        print("  %-30s %.3f s (%.1f us a file)" % (name, t, t / n * 1e6))
    print("  ratio: per-file fsyncs take %.1fx the time of one syncfs" % (best["fsync per file and directory"] / best["one syncfs"]))


if __name__ == "__main__":
    main()
