#!/usr/bin/python3
"""A join of a native table of ids with a store, as SQLite plans it, against the order forced by CROSS JOIN
(issue 25, point 1).

    /usr/bin/python3 bench/bench_planner.py [--images N] [--ids K] [--extension build/imgstore]

For each backend, alone and sharded (shards=4), a store of N smooth 32x32x3 images is made, and a native table
`ids(id INTEGER PRIMARY KEY)` of K distinct ids drawn from it (seed 25; no ANALYZE, so SQLite guesses it holds
1,048,576 rows). Each form of the query reads the pixels of those K images:

    join   SELECT sum(length(pixels)) FROM ids JOIN s USING(id)
    where  SELECT sum(length(pixels)) FROM ids, s WHERE s.id = ids.id
    in     SELECT sum(length(pixels)) FROM s WHERE id IN (SELECT id FROM ids)
    cross  SELECT sum(length(pixels)) FROM ids CROSS JOIN s USING(id)    (ids outside: the order to match)

warm (one untimed run each), then alternating, best of 7 runs each, in one process. Prints a markdown table:
the plan SQLite chose for `join`, each form's time and its ratio to `cross`.
"""

import argparse
import os
import random
import shutil
import sqlite3
import tempfile
import time

SHAPE = "32x32x3"
FORMS = {
    "join": "SELECT sum(length(pixels)) FROM ids JOIN s USING(id)",
    "where": "SELECT sum(length(pixels)) FROM ids, s WHERE s.id = ids.id",
    "in": "SELECT sum(length(pixels)) FROM s WHERE id IN (SELECT id FROM ids)",
    "cross": "SELECT sum(length(pixels)) FROM ids CROSS JOIN s USING(id)",
}
CASES = [("lmdb", "s.lmdb", ""), ("hdf5", "s.h5", ""), ("png_dir", "s_png", ""),
         ("lmdb", "sharded_lmdb", ", shards=4"), ("hdf5", "sharded_h5", ", shards=4"),
         ("png_dir", "sharded_png", ", shards=4")]


def connect(ext, db):
    con = sqlite3.connect(db, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def timed(con, sql):
    t0 = time.perf_counter()
    con.execute(sql).fetchone()
    return time.perf_counter() - t0


def plan(con, sql):
    return " / ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql))


def run_case(ext, work, backend, path, extra, images, ids):
    con = connect(ext, os.path.join(work, "bench.db"))
    con.execute("DROP TABLE IF EXISTS s")
    con.execute("CREATE VIRTUAL TABLE s USING %s(path='%s', shape='%s'%s)" % (backend, path, SHAPE, extra))
    con.execute("BEGIN")
    con.execute("INSERT INTO s SELECT * FROM synthetic(%d, '%s', 7)" % (images, SHAPE))
    con.execute("COMMIT")
    expected = ids * 32 * 32 * 3
    times = {form: [] for form in FORMS}
    for form, sql in FORMS.items():  # warm, and every form returns the same
        got = con.execute(sql).fetchone()[0]
        if got != expected:
            raise SystemExit("%s %s: %s read %s bytes; expected %d" % (backend, extra, form, got, expected))
    for _ in range(7):
        for form, sql in FORMS.items():
            times[form].append(timed(con, sql))
    chosen = plan(con, FORMS["join"])
    con.execute("DROP TABLE s")
    con.close()
    shutil.rmtree(os.path.join(work, path), ignore_errors=True)
    for leftover in (os.path.join(work, path + "-lock"),):
        if os.path.exists(leftover):
            os.remove(leftover)
    return chosen, {form: min(t) for form, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100000)
    ap.add_argument("--ids", type=int, default=1000)
    ap.add_argument("--extension", default="build/imgstore")
    a = ap.parse_args()
    ext = os.path.abspath(a.extension)
    work = tempfile.mkdtemp(prefix="imgstore-bench-planner-")
    cwd = os.getcwd()
    try:
        os.chdir(work)
        con = connect(ext, "bench.db")
        con.execute("CREATE TABLE ids(id INTEGER PRIMARY KEY)")
        con.executemany("INSERT INTO ids VALUES (?)",
                        [(i,) for i in random.Random(25).sample(range(a.images), a.ids)])
        con.close()
        print("### A join of %d native ids with a store of %d %s images: as planned, against CROSS JOIN "
              "(best of 7, warm)" % (a.ids, a.images, SHAPE))
        print()
        print("| store | plan of `ids JOIN s USING(id)` | cross | join | where | in | join / cross |"
              " where / cross | in / cross |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for backend, path, extra in CASES:
            chosen, t = run_case(ext, work, backend, path, extra, a.images, a.ids)
            name = backend + (" (shards=4)" if extra else "")
            ms = lambda form: "%.1f ms" % (t[form] * 1000)
            ratio = lambda form: "%.2fx" % (t[form] / t["cross"])
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, chosen.replace("|", "\\|"), ms("cross"), ms("join"), ms("where"), ms("in"),
                ratio("join"), ratio("where"), ratio("in")))
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
