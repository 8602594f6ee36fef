#!/usr/bin/env python3
"""Crash test: a writer (the real sqlite3 shell) is killed with SIGKILL in the middle of a large
transaction or of its COMMIT, at many points; after each kill a new process opens the store and must find
exactly the last committed state (count and image_digest equal to it), or, for HDF5 only, refuse the file
with a clear error (HDF5 writes in place, see the README); then it must be able to write again.

usage: crash_test.py SQLITE3 EXTENSION BACKEND [KILLS]
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROWS = 1500          # rows each killed transaction inserts
SHAPE = "32x32x3"


def sql(sqlite3, ext, script, cwd, check=True):
    proc = subprocess.run([sqlite3, "-batch", "-bail", ":memory:"], input=".load %s\n%s\n" % (ext, script),
                          cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError("sqlite3 failed: %s\n%s" % (script[:200], proc.stderr))
    return proc


def main():
    sqlite3, ext, backend = sys.argv[1], sys.argv[2], sys.argv[3]
    kills = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    path = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend]
    work = tempfile.mkdtemp(prefix="imgstore-crash-")
    open_store = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s');" % (backend, path)
    # The oracle: a native SQLite file with the committed rows.
    sql(sqlite3, ext, "ATTACH 'ref.db' AS r; CREATE TABLE r.ref(id INTEGER PRIMARY KEY, label, pixels);"
        "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s');"
        "INSERT INTO s SELECT * FROM synthetic(200, '%s', 1, 'smooth');"
        "INSERT INTO r.ref SELECT * FROM synthetic(200, '%s', 1, 'smooth');" % (backend, path, SHAPE, SHAPE, SHAPE), work)

    def state():
        proc = sql(sqlite3, ext, open_store + "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM s;", work,
                   check=False)
        return proc.returncode, proc.stdout.strip(), proc.stderr.strip()

    def expected(extra_seed=None, base=0):
        union = "" if extra_seed is None else (
            " UNION ALL SELECT id + %d, label, pixels FROM synthetic(%d, '%s', %d, 'smooth')" % (base, ROWS, SHAPE, extra_seed))
        return sql(sqlite3, ext, "ATTACH 'ref.db' AS r; SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM "
                   "(SELECT * FROM r.ref%s);" % union, work).stdout.strip()

    # How long an undisturbed transaction of ROWS takes, to spread the kills over it and its commit.
    start = time.time()
    sql(sqlite3, ext, open_store + "BEGIN; INSERT INTO s SELECT id + 1000000, label, pixels FROM synthetic(%d, '%s', 2, 'smooth');"
        "COMMIT;" % (ROWS, SHAPE), work)
    duration = time.time() - start
    sql(sqlite3, ext, "ATTACH 'ref.db' AS r; INSERT INTO r.ref SELECT id + 1000000, label, pixels FROM synthetic(%d, '%s', 2, 'smooth');"
        % (ROWS, SHAPE), work)

    outcomes = {"old state": 0, "new state": 0, "damage detected": 0}
    failures = []
    base = 2000000
    for k in range(kills):
        seed = 100 + k
        old = expected()
        new = expected(seed, base)
        delay = duration * (0.1 + 1.2 * k / max(kills - 1, 1))
        writer = subprocess.Popen([sqlite3, "-batch", ":memory:"], stdin=subprocess.PIPE, cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        writer.stdin.write(".load %s\n%sBEGIN;\nINSERT INTO s SELECT id + %d, label, pixels FROM synthetic(%d, '%s', %d, 'smooth');\n"
                           "COMMIT;\n" % (ext, open_store, base, ROWS, SHAPE, seed))
        writer.stdin.flush()
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdin.close()
        rc, got, err = state()
        if rc == 0 and got == old:
            outcomes["old state"] += 1
        elif rc == 0 and got == new:
            outcomes["new state"] += 1
            sql(sqlite3, ext, "ATTACH 'ref.db' AS r; INSERT INTO r.ref SELECT id + %d, label, pixels FROM synthetic(%d, '%s', %d, 'smooth');"
                % (base, ROWS, SHAPE, seed), work)
        elif rc != 0 and backend == "hdf5" and ("damaged" in err or "HDF5" in err or "unable to" in err):
            outcomes["damage detected"] += 1
            print("kill %d after %.3fs: damage detected on open: %s" % (k, delay, err))
            # Start again from a fresh store holding the oracle's rows.
            for p in (path, path + "-lock"):
                shutil.rmtree(os.path.join(work, p), ignore_errors=True)
                if os.path.exists(os.path.join(work, p)):
                    os.remove(os.path.join(work, p))
            sql(sqlite3, ext, "ATTACH 'ref.db' AS r; CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s');"
                "INSERT INTO s SELECT * FROM r.ref;" % (backend, path, SHAPE), work)
        else:
            failures.append("kill %d after %.3fs: the store holds %r (rc %d, %s); expected the old state %r or the new %r"
                            % (k, delay, got, rc, err, old, new))
            break
        base += 10000
        # It can be written again.
        proc = sql(sqlite3, ext, open_store + "INSERT INTO s SELECT id + %d, label, pixels FROM synthetic(1, '%s', 7);"
                   % (base + 5000, SHAPE), work, check=False)
        if proc.returncode != 0:
            failures.append("kill %d: writing after the crash failed: %s" % (k, proc.stderr.strip()))
            break
        sql(sqlite3, ext, "ATTACH 'ref.db' AS r; INSERT INTO r.ref SELECT id + %d, label, pixels FROM synthetic(1, '%s', 7);"
            % (base + 5000, SHAPE), work)
        check = sql(sqlite3, ext, "SELECT imgstore_check('%s', '%s', 1);" % (backend, path), work).stdout.strip()
        if check != "ok":
            failures.append("kill %d: imgstore_check found: %s" % (k, check))
            break
    print("%s: %d kills over %.3fs transactions: %s" % (backend, kills, duration, outcomes))
    for f in failures:
        print("FAIL " + f)
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    print("%d passed, %d failed" % (kills - len(failures) if not failures else 0, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
