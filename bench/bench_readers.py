#!/usr/bin/python3
"""Many readers, one writer: full-scan throughput with 1, 2 and 4 reader processes on each backend, and a
writer's commit latency with and without 3 readers scanning beside it.

    /usr/bin/python3 bench/bench_readers.py [--images N] [--scans S] [--backends lmdb,hdf5,png_dir]
                                            [--extension build/imgstore]

Each reader process opens its own connection and runs `SELECT image_digest(id, label, pixels) FROM t` (every
pixel byte read and hashed) S times; throughput = readers x S x N / wall time from a common start (page cache
warm). Commit latency: 40 transactions of `INSERT OR REPLACE` of 100 images (BEGIN ... COMMIT), median and
95th percentile, alone and while 3 readers scan in a loop; a transaction that gets SQLITE_BUSY (a reader keeps
the writer out) is counted, not timed. Prints a markdown table; bench/RESULTS.md records a run.

    /usr/bin/python3 bench/bench_readers.py --latency [--latency-images N] [--seconds T] [--interval I]
                                            [--backends hdf5,png_dir] [--extension build/imgstore]

Reader latency beside a writer (issue 23, item 7): one writer commits 500-row batches that change committed
rows (INSERT OR REPLACE of 200 existing ids with new pixels, UPDATE of 200 labels, DELETE of 100 ids and their
re-insert), one starting every I seconds (or as soon as the last ended: the same commits for every build of the
extension compared) for T seconds; 3 reader processes loop over a full scan (`image_digest` of every row) and 20 point
lookups (label and pixels of a random id), timing each statement. Prints p50 / p99 / max per backend and kind
of statement, the writer's commits and the readers' SQLITE_BUSY count.
"""

import argparse
import multiprocessing
import os
import random
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


def timing_reader(ext, backend, path, images, seed, stop, out):
    con = open_table(ext, backend, path)
    con.execute("SELECT count(*) FROM t").fetchone()
    rng = random.Random(seed)
    scans, points, busy = [], [], 0
    while not stop.is_set():
        for sql, args, into in [("SELECT image_digest(id, label, pixels) FROM t", (), scans)] + \
                [("SELECT label, length(pixels) FROM t WHERE id = ?", (rng.randrange(images),), points)] * 20:
            t0 = time.perf_counter()
            try:
                con.execute(sql, args).fetchall()
                into.append(time.perf_counter() - t0)
            except sqlite3.OperationalError:
                busy += 1
    out.put((scans, points, busy))


def changing_writer(con, images, batch):
    """One commit of `batch` rows that all change committed rows: replaced pixels, new labels, deletes and their
    re-inserts (so the store keeps its size)."""
    ids = random.sample(range(images), batch)
    replace, relabel, delete = ids[:batch * 2 // 5], ids[batch * 2 // 5:batch * 4 // 5], ids[batch * 4 // 5:]
    con.execute("BEGIN")
    con.execute("INSERT OR REPLACE INTO t SELECT s.id, s.label + 1, s.pixels FROM synthetic(%d, '%s', %d, 'smooth') s "
                "WHERE s.id IN (%s)" % (images, SHAPE, random.randrange(1 << 30), ",".join(map(str, replace))))
    con.execute("UPDATE t SET label = label + 7 WHERE id IN (%s)" % ",".join(map(str, relabel)))
    con.execute("DELETE FROM t WHERE id IN (%s)" % ",".join(map(str, delete)))
    con.execute("INSERT INTO t SELECT * FROM synthetic(%d, '%s', 5, 'smooth') s WHERE s.id IN (%s)"
                % (images, SHAPE, ",".join(map(str, delete))))
    con.execute("COMMIT")


def reader_latency(ext, backend, path, images, seconds, interval, readers=3, batch=500):
    stop = multiprocessing.Event()
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=timing_reader, args=(ext, backend, path, images, i, stop, out))
             for i in range(readers)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', timeout=10000)" % (backend, path))
    commits = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        changing_writer(con, images, batch)
        commits.append(time.perf_counter() - t0)
        time.sleep(max(0.0, t0 + interval - time.perf_counter()))
    con.close()
    stop.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    scans = sorted(x for r in results for x in r[0])
    points = sorted(x for r in results for x in r[1])
    return scans, points, sum(r[2] for r in results), sorted(commits)


def percentiles(xs):
    if not xs:
        return "-"
    def at(q):
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000
    return "%.2f / %.2f / %.1f ms" % (at(0.5), at(0.99), xs[-1] * 1000)


def latency_main(ext, work, args):
    print("### Reader latency beside a writer changing committed rows (%d images of %s, 3 readers, 500-row commits "
          "every %g s for %g s, %d cores)\n" % (args.latency_images, SHAPE, args.interval, args.seconds, os.cpu_count()))
    print("| backend | full scan p50 / p99 / max | point lookup p50 / p99 / max | scans | lookups | reader busy "
          "| commits (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        path = os.path.join(work, "lat-" + PATHS[backend])
        con = connect(ext)
        con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', shape='%s')" % (backend, path, SHAPE))
        con.execute("INSERT INTO t SELECT * FROM synthetic(%d, '%s', 1, 'smooth')" % (args.latency_images, SHAPE))
        con.close()
        scans, points, busy, commits = reader_latency(ext, backend, path, args.latency_images, args.seconds,
                                                      args.interval)
        print("| %s | %s | %s | %d | %d | %d | %d (%.0f ms) |"
              % (backend, percentiles(scans), percentiles(points), len(scans), len(points), busy, len(commits),
                 statistics.median(commits) * 1000 if commits else 0), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--extension", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "imgstore"))
    parser.add_argument("--latency", action="store_true", help="only the reader latency beside a writer")
    parser.add_argument("--latency-images", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=2)
    parser.add_argument("--backends", default="lmdb,hdf5,png_dir")
    args = parser.parse_args()
    ext = os.path.abspath(args.extension)
    work = tempfile.mkdtemp(prefix="imgstore-bench-readers-")
    try:
        if args.latency:
            latency_main(ext, work, args)
            return
        print("### Many readers, one writer (%d images of %s, %d scans per reader, %d cores)\n"
              % (args.images, SHAPE, args.scans, os.cpu_count()))
        print("| backend | 1 reader (images/s) | 2 readers | 4 readers | 2 vs 1 | commit of 100 images, alone (median / p95) "
              "| with 3 readers scanning (median / p95) | busy with readers |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for backend, name in PATHS.items():
            if backend not in args.backends.split(","):
                continue
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
