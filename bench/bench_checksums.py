#!/usr/bin/python3
"""What verifying every image's checksum costs a full scan (issue 24, point 1).

    /usr/bin/python3 bench/bench_checksums.py [--images N] [--extension build/imgstore]

For each checksummed backend (lmdb format 2, hdf5 format 3, plain and gzip, and an 8-shard lmdb table) a store
of N random 32x32x3 images is made; then a warm full scan that hands every pixel byte to SQLite
(`SELECT sum(length(pixels)) FROM t`) runs with verify=1 (the default) and verify=0, alternating, best of 3
each, in one process and one run. Prints a markdown table: both times, the ratio, and the cost per image.
"""

import argparse
import os
import shutil
import sqlite3
import tempfile
import time


def connect(ext):
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def scan(con, table):
    t0 = time.perf_counter()
    con.execute("SELECT sum(length(pixels)) FROM %s" % table).fetchone()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100000)
    ap.add_argument("--extension", default="build/imgstore")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="imgstore-bench-checksums-")
    cases = [("lmdb", "lmdb", "s.lmdb", ""), ("hdf5", "hdf5", "s.h5", ""),
             ("hdf5 gzip:1", "hdf5", "g.h5", ", compression='gzip:1', threads=1"),
             ("lmdb, 8 shards", "lmdb", "sh", ", shards=8")]
    print("### Checksums: what verify=1 costs a full scan (%d images)\n" % a.images)
    print("Full warm scan of %d 32x32x3 images (`SELECT sum(length(pixels)) FROM t`), best of 3, verify=1 vs "
          "verify=0 alternating in one run:\n" % a.images)
    print("| store | verify=1 (s) | verify=0 (s) | ratio | cost per image (ns) |")
    print("|---|---|---|---|---|")
    try:
        for name, backend, path, extra in cases:
            path = os.path.join(work, path)
            con = connect(a.extension)
            con.execute("CREATE VIRTUAL TABLE temp.v USING %s(path='%s', shape='32x32x3'%s)" % (backend, path, extra))
            con.execute("INSERT INTO v SELECT id, label, randomblob(3072) FROM dataset('noise', %d)" % a.images)
            threads = ", threads=1" if "threads=1" in extra else ""  # the same reading as v's
            con.execute("CREATE VIRTUAL TABLE temp.u USING %s(path='%s', verify=0%s)" % (backend, path, threads))
            scan(con, "v"), scan(con, "u")  # warm
            on, off = [], []
            for _ in range(3):
                on.append(scan(con, "v"))
                off.append(scan(con, "u"))
            on_s, off_s = min(on), min(off)
            print("| %s | %.3f | %.3f | %.2f | %.0f |" % (name, on_s, off_s, on_s / off_s,
                                                            (on_s - off_s) / a.images * 1e9))
            con.close()
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
