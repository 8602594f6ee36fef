#!/usr/bin/env python3
"""Writers in forked and spawned processes keep every committed row (issue 23), on every backend, plain and
sharded (shards=3). The parent creates the store and writes one row, then a 2-process multiprocessing Pool
runs; each worker opens its own connection and table (timeout=30000) and commits N single-row transactions
with ids of its own. Three process models:
- fork-after-open: the parent keeps its connection open across the fork (the Pool is made after the write);
- fork-before-open: the Pool's processes are forked before the parent opens anything;
- fork-in-transaction: forked while the parent holds the writer lock (an open transaction, committed once the
  workers wait for it: their copies of the lock's descriptor must not keep it held);
- spawn: fresh interpreters.
At the end the store holds exactly the committed rows, each with the pixels written, and imgstore_check (full)
says ok. An hdf5 store the parent was writing at the fork cannot be written through the HDF5 handles the child
inherited, nor can they be closed (hdf5_file.hpp, H5File::opener_): there the workers must be refused with a
message naming their table and the fork, having committed nothing. Before the fix, with the parent's store open
at the fork, the workers' commits "succeeded" and rows vanished (170 of 301 kept, imgstore_check ok).

usage: fork_test.py EXTENSION [N]
"""

import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time

from harness import Checks, connect

SHAPE = "8x8x3"
MODELS = ("fork-after-open", "fork-before-open", "fork-in-transaction", "spawn")


def pixels(row_id):
    return bytes((row_id * 7 + j) % 256 for j in range(8 * 8 * 3))


def table_sql(name, backend, path, shards):
    return "CREATE VIRTUAL TABLE temp.%s USING %s(path='%s', shape='%s', timeout=30000%s)" % (
        name, backend, path, SHAPE, ", shards=%d" % shards if shards else "")


def insert(conn, table, row_id, commit=True):
    conn.execute("BEGIN")
    conn.execute("INSERT INTO %s(id, label, pixels) VALUES (?, ?, ?)" % table, (row_id, row_id % 10, pixels(row_id)))
    if commit:
        conn.execute("COMMIT")


def worker(job):
    """One Pool worker: its own connection and table; N single-row commits. Returns (committed ids, error)."""
    ext, backend, path, shards, k, n = job
    committed = []
    try:
        conn = connect(ext)
        conn.execute(table_sql("w", backend, path, shards))
        for i in range(n):
            insert(conn, "w", 1000 * (k + 1) + i)
            committed.append(1000 * (k + 1) + i)
        conn.close()
        return committed, None
    except sqlite3.Error as e:
        return committed, str(e)


def refused_across_fork(backend, model):
    return backend == "hdf5" and model == "fork-in-transaction"


def run_variant(check, ext, work, backend, shards, model, n):
    name = "%s%s %s" % (backend, " shards=%d" % shards if shards else "", model)
    path = os.path.join(work, "%s_%d_%s" % (backend, shards, model.replace("-", "_")) + (".h5" if backend == "hdf5" and not shards else ""))
    context = multiprocessing.get_context("spawn" if model == "spawn" else "fork")
    pool = context.Pool(2) if model == "fork-before-open" else None
    parent = connect(ext)
    parent.execute(table_sql("t", backend, path, shards))
    insert(parent, "t", 1)
    committed = [1]
    if model == "fork-in-transaction":
        insert(parent, "t", 2, commit=False)
    if pool is None:
        pool = context.Pool(2)
    with pool:
        pending = pool.map_async(worker, [(ext, backend, path, shards, k, n) for k in range(2)])
        if model == "fork-in-transaction":
            time.sleep(0.5)  # the workers wait for the parent's writer lock meanwhile
            parent.execute("COMMIT")
            committed.append(2)
        results = pending.get(timeout=300)
    errors = [error for _, error in results if error]
    for ids, _ in results:
        committed += ids
    if refused_across_fork(backend, model):
        check(len(errors) == 2 and all("table w" in e and "fork" in e for e in errors),
              "%s: a worker was not refused with a message naming its table and the fork: %r" % (name, errors))
    else:
        check(not errors, "%s: a worker failed: %r" % (name, errors))
    reader = connect(ext)
    reader.execute(table_sql("r", backend, path, shards))
    stored = reader.execute("SELECT id, pixels FROM r ORDER BY id").fetchall()
    kept = sum(1 for row_id, _ in stored if row_id in set(committed))
    print("%s: %d of %d committed rows kept (%d stored)" % (name, kept, len(committed), len(stored)))
    check(sorted(row_id for row_id, _ in stored) == sorted(committed),
          "%s: the store holds %d rows, %d of the %d committed" % (name, len(stored), kept, len(committed)))
    check(all(blob == pixels(row_id) for row_id, blob in stored), "%s: a row's pixels read back different" % name)
    verdict = reader.execute("SELECT imgstore_check(?, ?, 1)", (backend, path)).fetchone()[0]
    check(verdict == "ok", "%s: imgstore_check says %r" % (name, verdict))
    reader.close()
    parent.close()


def main():
    ext = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    check = Checks()
    with tempfile.TemporaryDirectory() as work:
        for backend in ("lmdb", "hdf5", "png_dir"):
            for shards in (0, 3):
                for model in MODELS:
                    run_variant(check, ext, work, backend, shards, model, n)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
