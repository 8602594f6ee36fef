#!/usr/bin/env python3
"""Isolation across processes: one writer process commits batches of 500 rows (replacing the pixels and
labels of existing ids, deleting and inserting others) and logs `count|digest` after each COMMIT returns;
three reader processes scan the store in a loop (count and image_digest of every row), opening it again
every 20 scans. Every observation
must equal a committed state: a scan never sees a commit halfway or a state that was never committed.

hdf5 is not run here: HDF5's file lock keeps other processes out while one writes (README, "other
processes"); its in-process snapshot is checked by the differential tester.

usage: isolation_test.py SQLITE3 EXTENSION [BACKEND ...] [--seconds N]
"""

import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import time

SHAPE = "8x8x3"
ROWS = 1500


def connect(ext):
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def observe(con):
    return con.execute("SELECT count(*) || '|' || image_digest(id, label, pixels) FROM s").fetchone()[0]


def writer(ext, backend, path, seconds, log):
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
    deadline = time.time() + seconds
    batch = 0
    with open(log, "a") as out:
        while time.time() < deadline:
            batch += 1
            con.execute("BEGIN")
            con.execute("INSERT OR REPLACE INTO s SELECT id, (label + %d) %% 10, pixels FROM synthetic(500, '%s', %d)"
                        % (batch, SHAPE, 1000 + batch))
            con.execute("DELETE FROM s WHERE id BETWEEN %d AND %d" % (500 + batch % 900, 500 + batch % 900 + 20))
            con.execute("INSERT OR REPLACE INTO s SELECT id + 500 + %d, label, pixels FROM synthetic(21, '%s', %d)"
                        % ((batch + 450) % 900, SHAPE, batch))
            con.execute("COMMIT")
            out.write(observe(con) + "\n")
            out.flush()
    return batch


def reader(ext, backend, path, seconds, log):
    deadline = time.time() + seconds
    seen = []
    errors = []
    con = connect(ext)
    try:
        con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
    except sqlite3.Error as e:
        errors.append(str(e))
        deadline = 0
    while time.time() < deadline:
        try:
            seen.append(observe(con))
            if len(seen) % 20 == 0:  # and open the store again while the writer commits
                con.execute("DROP TABLE temp.s")
                con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        except sqlite3.Error as e:
            errors.append(str(e))
    with open(log, "w") as out:
        out.write("\n".join(seen) + "\n")
        for e in errors:
            out.write("ERROR " + e + "\n")


def run(ext, backend, seconds):
    work = tempfile.mkdtemp(prefix="imgstore-isolation-")
    path = os.path.join(work, {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s')" % (backend, path, SHAPE))
    con.execute("INSERT INTO s SELECT * FROM synthetic(%d, '%s', 1)" % (ROWS, SHAPE))
    committed_log = os.path.join(work, "committed.txt")
    with open(committed_log, "w") as out:
        out.write(observe(con) + "\n")
    con.close()
    readers = [multiprocessing.Process(target=reader, args=(ext, backend, path, seconds, os.path.join(work, "r%d.txt" % i)))
               for i in range(3)]
    for r in readers:
        r.start()
    batches = writer(ext, backend, path, seconds, committed_log)
    for r in readers:
        r.join()
    committed = set(open(committed_log).read().split())
    observations, torn, errors = 0, [], []
    for i in range(3):
        for line in open(os.path.join(work, "r%d.txt" % i)).read().splitlines():
            if not line:
                continue
            if line.startswith("ERROR "):
                errors.append(line[6:])
                continue
            observations += 1
            if line not in committed:
                torn.append(line)
    print("%s: %d commits, %d scans by 3 readers, %d saw an uncommitted state, %d reader errors"
          % (backend, batches, observations, len(torn), len(errors)))
    for e in sorted(set(errors))[:5]:
        print("  reader error: " + e)
    ok = not torn and not errors and observations > 0
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return ok


def main():
    args = sys.argv[1:]
    seconds = 8.0
    if "--seconds" in args:
        i = args.index("--seconds")
        seconds = float(args[i + 1])
        del args[i:i + 2]
    ext = os.path.abspath(args[1])
    backends = args[2:] or ["lmdb", "png_dir"]
    results = [run(ext, b, seconds) for b in backends]
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
