#!/usr/bin/env python3
"""Concurrent access, as docs/sql.md and docs/reliability.md promise it:
- lmdb: a reader in another process keeps its consistent snapshot through a scan while a writer commits;
- two writer processes: the second waits for the first to commit (every backend), and with a short
  `timeout` it gets SQLITE_BUSY naming the store instead; the store is never corrupted;
- one store opened twice in one process (two connections): both read it; a second writer gets a clear busy
  error instead of a deadlock;
- threads with separate connections over all three backends do not crash (HDF5 is serialised).
Runs Python's sqlite3 module (the same SQLite library) with the extension loaded, and the sqlite3 shell.

usage: concurrency_test.py SQLITE3 EXTENSION
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from harness import Checks, connect

check = Checks()




def shell(sqlite3_path, ext, script, cwd):
    return subprocess.Popen([sqlite3_path, "-batch", "-bail", ":memory:"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd), ".load %s\n%s\n" % (ext, script)


PATHS = {"lmdb": "c.lmdb", "hdf5": "c.h5", "png_dir": "c_png"}


# 1. lmdb: a scan keeps its snapshot while another process deletes everything and commits.
def lmdb_snapshot(sqlite3_path, ext, work):
    reader = connect(ext)
    reader.execute("CREATE VIRTUAL TABLE temp.s USING lmdb(path='c.lmdb')")
    cursor = reader.execute("SELECT id, label, pixels FROM s")
    seen = cursor.fetchmany(500)
    proc, script = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.w USING lmdb(path='c.lmdb');"
                         "DELETE FROM w; INSERT INTO w SELECT id + 10000, label, pixels FROM synthetic(10, '8x8x3', 5);", work)
    out, err = proc.communicate(script)
    check(proc.returncode == 0, "lmdb: the writer could not commit while a reader scans: " + err)
    seen += cursor.fetchall()
    expected = reader.execute("SELECT id, label, pixels FROM synthetic(2000, '8x8x3', 1)").fetchall()
    check(seen == expected, "lmdb: the reader's scan did not keep its snapshot (%d rows)" % len(seen))
    check(reader.execute("SELECT count(*), min(id) FROM s").fetchone() == (10, 10000),
          "lmdb: a new statement does not see the committed state")
    reader.close()


# 2. Two writer processes: the second waits for the first's COMMIT (default timeout, 5 s), or with
# timeout=300 gives up with SQLITE_BUSY naming the store, having written nothing.
def two_writer_processes(sqlite3_path, ext, work, paths):
    for backend, path in paths.items():
        first = connect(ext)
        first.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        first.execute("BEGIN")
        first.execute("INSERT INTO s SELECT id + 50000, label, pixels FROM synthetic(100, '8x8x3', 2)")
        impatient, impatient_script = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', timeout=300);"
                                            "INSERT INTO s SELECT id + 70000, label, pixels FROM synthetic(100, '8x8x3', 4);" % (backend, path), work)
        _, impatient_err = impatient.communicate(impatient_script, timeout=60)
        check(impatient.returncode != 0 and "'%s' is being written by another" % path in impatient_err
              and "waited 300 ms" in impatient_err,
              "%s: a second writer with timeout=300 did not get the busy error: %r" % (backend, impatient_err))
        proc, script = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.s USING %s(path='%s');"
                             "INSERT INTO s SELECT id + 60000, label, pixels FROM synthetic(100, '8x8x3', 3);" % (backend, path), work)
        proc.stdin.write(script)
        proc.stdin.close()
        time.sleep(1.0)
        still_waiting = proc.poll() is None
        first.execute("COMMIT")
        first.close()
        proc.wait(timeout=60)
        err = proc.stderr.read()
        check(still_waiting and proc.returncode == 0,
              "%s: the second writer did not wait for the first (waiting %s, rc %s, %s)" % (backend, still_waiting, proc.returncode, err))
        con = connect(ext)
        con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        n = con.execute("SELECT count(*) FROM s WHERE id >= 50000").fetchone()[0]
        check(n == 200, "%s: after two writers the store holds %d new rows; expected 200" % (backend, n))
        check(con.execute("SELECT imgstore_check('%s', '%s', 1)" % (backend, path)).fetchone()[0] == "ok",
              "%s: imgstore_check after two writers" % backend)
        con.close()


# 3. One store, two connections of one process: both read; a second writer is told it is busy.
def two_connections(ext, paths):
    for backend, path in paths.items():
        a = connect(ext)
        b = connect(ext)
        a.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        b.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        check(a.execute("SELECT count(*) FROM s").fetchone() == b.execute("SELECT count(*) FROM s").fetchone(),
              "%s: two connections see different counts" % backend)
        a.execute("BEGIN")
        a.execute("INSERT INTO s VALUES (90000, 1, zeroblob(192))")
        try:
            b.execute("INSERT INTO s VALUES (90001, 1, zeroblob(192))")
            check(False, "%s: a second writer in the same process was let in" % backend)
        except sqlite3.OperationalError as e:
            check("being written by another connection" in str(e), "%s: unclear busy error: %s" % (backend, e))
        a.execute("COMMIT")
        b.execute("INSERT INTO s VALUES (90001, 1, zeroblob(192))")
        check(a.execute("SELECT count(*) FROM s WHERE id >= 90000").fetchone()[0] == 2,
              "%s: the first connection does not see the second's commit" % backend)
        a.close()
        b.close()


# 4. Threads, each with its own connection, reading all three stores and writing their own.
def threads_with_own_connections(ext, paths):
    errors = []

    def worker(t):
        try:
            con = connect(ext)
            for backend, path in paths.items():
                con.execute("CREATE VIRTUAL TABLE temp.%s USING %s(path='%s')" % (backend, backend, path))
            con.execute("CREATE VIRTUAL TABLE temp.own USING hdf5(path='t%d.h5', shape='8x8x3')" % t)
            for i in range(20):
                for backend in paths:
                    con.execute("SELECT count(*), image_digest(id, label, pixels) FROM %s" % backend).fetchone()
                con.execute("INSERT INTO own SELECT id + %d, label, pixels FROM synthetic(50, '8x8x3', %d)" % (i * 100, t))
            if con.execute("SELECT count(*) FROM own").fetchone()[0] != 1000:
                errors.append("thread %d: its own store lost rows" % t)
            con.close()
        except Exception as e:  # noqa: BLE001 - any failure is the test's finding
            errors.append("thread %d: %s" % (t, e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check(not errors, "threads: " + "; ".join(errors))


def main():
    sqlite3_path, ext = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="imgstore-conc-")
    os.chdir(work)
    paths = PATHS
    setup = connect(ext)
    for backend, path in paths.items():
        setup.execute("CREATE VIRTUAL TABLE temp.%s USING %s(path='%s', shape='8x8x3')" % (backend, backend, path))
        setup.execute("INSERT INTO %s SELECT * FROM synthetic(2000, '8x8x3', 1)" % backend)
        setup.execute("DROP TABLE temp.%s" % backend)
    setup.close()

    lmdb_snapshot(sqlite3_path, ext, work)
    two_writer_processes(sqlite3_path, ext, work, paths)
    two_connections(ext, paths)
    threads_with_own_connections(ext, paths)

    os.chdir("/")
    if not check.failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
