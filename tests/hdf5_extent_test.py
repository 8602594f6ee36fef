#!/usr/bin/env python3
"""Generated transactions on hdf5 stores; after each one ends, the file as h5py sees it holds exactly the
committed rows: /images, /labels and /ids each have /commit's row count (a ROLLBACK, of a whole transaction or
after savepoints, gives back the rows it wrote past the committed count instead of leaving them for the next
writer), and the table reads the oracle's rows. Stores: plain and gzip with threads=2 (whose whole chunks are
written by the pool), small chunks so that a transaction spans many.

usage: hdf5_extent_test.py EXTENSION [SEQUENCES] [SEED]
"""

import os
import random
import sys
import tempfile

import h5py

from harness import Checks, connect

check = Checks()
SHAPE = "32x32x3"
PIXELS = 3072


def extents(path):
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        return {k: f[k].shape[0] for k in ("images", "labels", "ids")}, int(f["commit"][1])


def sequence(ext, work, seed, options):
    rng = random.Random(seed)
    path = os.path.join(work, "s%d.h5" % seed)
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.t USING hdf5(path='%s', shape='%s', chunk=%d%s)" %
                (path, SHAPE, rng.choice([1, 7, 64]), options))
    # The oracle: a native table in the same transactions.
    con.execute("CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB)")
    name = "seed %d (%s)" % (seed, options or "plain")
    log = []
    for n in range(12):
        depth = 0
        log.append("BEGIN")
        con.execute("BEGIN")
        for _ in range(rng.randint(1, 6)):
            what = rng.random()
            if what < 0.45:
                count = rng.choice([1, 5, 300, 3000])
                first = rng.randrange(100000)
                batch = [(first + i, rng.randrange(10), bytes([rng.randrange(256)]) * PIXELS) for i in range(count)]
                log.append("INSERT OR REPLACE ids %d..%d" % (first, first + count - 1))
                for table in ("t", "n"):
                    con.executemany("INSERT OR REPLACE INTO %s VALUES (?, ?, ?)" % table, batch)
            elif what < 0.6:
                victim = con.execute("SELECT id FROM n ORDER BY random() LIMIT 1").fetchone()
                if victim:
                    log.append("DELETE id %d" % victim[0])
                    for table in ("t", "n"):
                        con.execute("DELETE FROM %s WHERE id = ?" % table, victim)
            elif what < 0.8:
                log.append("SAVEPOINT s%d" % depth)
                con.execute("SAVEPOINT s%d" % depth)
                depth += 1
            elif depth:
                log.append("ROLLBACK TO s%d" % (depth - 1))
                con.execute("ROLLBACK TO s%d" % (depth - 1))
        end = rng.choice(["COMMIT", "ROLLBACK"])
        log.append(end)
        con.execute(end)
        got, committed = extents(path)
        ok = all(v == committed for v in got.values())
        check(ok, "%s, transaction %d (%s): the file has %s rows; /commit says %d" % (name, n, end, got, committed))
        store = con.execute("SELECT count(*), image_digest(id, label, pixels) FROM t").fetchone()
        native = con.execute("SELECT count(*), image_digest(id, label, pixels) FROM n").fetchone()
        check(store == native, "%s, transaction %d (%s): the table reads %s, the native table %s" %
              (name, n, end, store, native))
        if store != native:
            print("  statements: " + "; ".join(log))
            break
    con.close()


def main():
    ext = os.path.abspath(sys.argv[1])
    sequences = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    with tempfile.TemporaryDirectory(prefix="imgstore-hdf5-extent-") as work:
        for seed in range(first, first + sequences):
            sequence(ext, work, seed, "" if seed % 2 else ", compression='gzip', threads=2")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
