#!/usr/bin/python3
"""Many readers, one writer: full-scan throughput with 1, 2 and 4 reader processes on each backend, and a
writer's commit latency with and without 3 readers scanning beside it.

    /usr/bin/python3 bench/bench_readers.py [--images N] [--scans S] [--extension build/imgstore]

Each reader process opens its own connection and runs `SELECT image_digest(id, label, pixels) FROM t` (every
pixel byte read and hashed) S times; throughput = readers x S x N / wall time from a common start (page cache
warm). Commit latency: 40 transactions of `INSERT OR REPLACE` of 100 images (BEGIN ... COMMIT), median and
95th percentile, alone and while 3 readers scan in a loop; a transaction that gets SQLITE_BUSY (a reader keeps
the writer out) is counted, not timed. Prints a markdown table; bench/RESULTS.md records a run.
"""

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import tempfile
import time

SHAPE = "32x32x3"
PATHS = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}


def connect(ext):
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def open_table(ext, backend, path):
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', timeout=10000)" % (backend, path))
    return con


def scanner(ext, backend, path, scans, start, done):
    con = open_table(ext, backend, path)
    con.execute("SELECT count(*) FROM t").fetchone()
    start.wait()
    for _ in range(scans):
        con.execute("SELECT image_digest(id, label, pixels) FROM t").fetchone()
    done.put(time.perf_counter())


def throughput(ext, backend, path, images, readers, scans):
    start = multiprocessing.Barrier(readers + 1)
    done = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=scanner, args=(ext, backend, path, scans, start, done)) for _ in range(readers)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    ends = [done.get() for _ in procs]
    for p in procs:
        p.join()
    return readers * scans * images / (max(ends) - t0)


def looping_scanner(ext, backend, path, stop):
    con = open_table(ext, backend, path)
    while not stop.is_set():
        try:
            con.execute("SELECT image_digest(id, label, pixels) FROM t").fetchone()
        except sqlite3.OperationalError:
            time.sleep(0.001)


def commit_latency(ext, backend, path, readers):
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=looping_scanner, args=(ext, backend, path, stop)) for _ in range(readers)]
    for p in procs:
        p.start()
    time.sleep(0.5 if readers else 0)
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', timeout=2000)" % (backend, path))
    times, busy = [], 0
    for i in range(40):
        t0 = time.perf_counter()
        try:
            con.execute("BEGIN")
            con.execute("INSERT OR REPLACE INTO t SELECT id + %d, label, pixels FROM synthetic(100, '%s', %d, 'smooth')"
                        % (i * 100, SHAPE, 100 + i))
            con.execute("COMMIT")
            times.append(time.perf_counter() - t0)
        except sqlite3.OperationalError:
            busy += 1
            if con.in_transaction:
                con.execute("ROLLBACK")
    con.close()
    stop.set()
    for p in procs:
        p.join()
    if not times:
        return None, None, busy
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], busy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--extension", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "imgstore"))
    args = parser.parse_args()
    ext = os.path.abspath(args.extension)
    work = tempfile.mkdtemp(prefix="imgstore-bench-readers-")
    try:
        print("### Many readers, one writer (%d images of %s, %d scans per reader, %d cores)\n"
              % (args.images, SHAPE, args.scans, os.cpu_count()))
        print("| backend | 1 reader (images/s) | 2 readers | 4 readers | 2 vs 1 | commit of 100 images, alone (median / p95) "
              "| with 3 readers scanning (median / p95) | busy with readers |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for backend, name in PATHS.items():
            path = os.path.join(work, name)
            con = connect(ext)
            con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', shape='%s')" % (backend, path, SHAPE))
            con.execute("INSERT INTO t SELECT * FROM synthetic(%d, '%s', 1, 'smooth')" % (args.images, SHAPE))
            con.close()
            rates = {k: throughput(ext, backend, path, args.images, k, args.scans) for k in (1, 2, 4)}
            alone = commit_latency(ext, backend, path, 0)
            shared = commit_latency(ext, backend, path, 3)

            def ms(m):
                return "-" if m is None else "%.1f ms" % (m * 1000)
            print("| %s | %.0f | %.0f | %.0f | %.2fx | %s / %s | %s / %s | %d of 40 |"
                  % (backend, rates[1], rates[2], rates[4], rates[2] / rates[1], ms(alone[0]), ms(alone[1]),
                     ms(shared[0]), ms(shared[1]), shared[2]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
