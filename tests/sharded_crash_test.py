#!/usr/bin/env python3
"""Crash test of a multi-shard commit: a writer (the real sqlite3 shell) changing every shard of a sharded table
is killed with SIGKILL at each point of its commit (IMGSTORE_SHARDED_KILL_AT: after the manifest that starts
it, after each shard's commit, after the final manifest), and at timed points over the whole transaction.
Two transactions: one inserting new rows, one that also relabels, deletes and replaces existing rows (undone
from undo.journal). After each kill a new process must find the table exactly as before the transaction or
exactly as after it (count and image_digest) with every shard's row count equal to the manifest's (imgstore_check
says ok); then it must be able to write again. Last, readers running beside an uninterrupted writer must only
ever see the table as before or as after its commit.

usage: sharded_crash_test.py SQLITE3 EXTENSION BACKEND [TIMED_KILLS]
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHARDS = 4
ROWS = 400
SHAPE = "8x8x3"


def run(sqlite3, ext, script, cwd, env=None):
    return subprocess.run([sqlite3, "-batch", "-bail", ":memory:"], input=".load %s\n%s\n" % (ext, script),
                          cwd=cwd, capture_output=True, text=True, env=env)


def state(sqlite3, ext, backend, cwd):
    proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t');"
               "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;"
               "SELECT imgstore_check('%s', 't');" % (backend, backend), cwd)
    if proc.returncode != 0:
        return "error: " + proc.stderr.strip()
    return proc.stdout.strip()


INSERT = "INSERT INTO t SELECT id + %d, label, pixels FROM synthetic(%d, '%s', 9);" % (ROWS, ROWS, SHAPE)
CHANGE = ("UPDATE t SET label = (label + 1) %% 10 WHERE id %% 3 = 0; DELETE FROM t WHERE id %% 7 = 1;"
          "INSERT OR REPLACE INTO t SELECT id * 5, label, pixels FROM synthetic(60, '%s', 11);"
          "INSERT INTO t SELECT id + %d, label, pixels FROM synthetic(20, '%s', 12);" % (SHAPE, ROWS, SHAPE))


def crash_points(sqlite3, ext, backend, base, name, change, timed, failures, threads=1, budget=None):
    """Kills a writer running `change` in one transaction at every commit point and at timed points. With
    `budget` (IMGSTORE_SHARD_BUDGET, lmdb) the change is one autocommit INSERT whose shards commit early, every
    `budget` / shards bytes, and the kill points include those early commits."""
    script = change if budget else "BEGIN; %s COMMIT;" % change
    before = state(sqlite3, ext, backend, base)
    after_dir = os.path.join(base, "after-" + name)
    shutil.copytree(os.path.join(base, "t"), os.path.join(after_dir, "t"))
    proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); %s" % (backend, script), after_dir)
    assert proc.returncode == 0, proc.stderr
    after = state(sqlite3, ext, backend, after_dir)
    shutil.rmtree(after_dir)
    assert before.endswith("ok") and after.endswith("ok") and before != after, (before, after)
    writer = "CREATE VIRTUAL TABLE temp.t USING %s(path='t', threads=%d); %s" % (backend, threads, script)
    extra = {"IMGSTORE_SHARD_BUDGET": str(budget)} if budget else {}
    outcomes = {"before": 0, "after": 0}

    def one_kill(label, env, delay=None):
        work = tempfile.mkdtemp(dir=base)
        shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
        p = subprocess.Popen([sqlite3, "-batch", "-bail", ":memory:"], stdin=subprocess.PIPE, cwd=work, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        p.stdin.write(".load %s\n%s\n" % (ext, writer))
        p.stdin.close()
        if delay is not None:
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
        p.wait()
        found = state(sqlite3, ext, backend, work)
        if found == before:
            outcomes["before"] += 1
        elif found == after:
            outcomes["after"] += 1
        else:
            failures.append("%s, %s: found %r; expected %r or %r" % (name, label, found, before, after))
            return
        manifest = json.load(open(os.path.join(work, "t", "manifest.json")))
        if "pending" in manifest or "undo" in manifest:
            failures.append("%s, %s: the manifest is still unfinished after recovery" % (name, label))
        again = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t');"
                    "INSERT INTO t SELECT id + 100000, label, pixels FROM synthetic(10, '%s', 1);" % (backend, SHAPE), work)
        if again.returncode != 0:
            failures.append("%s, %s: cannot write after recovery: %s" % (name, label, again.stderr))
        shutil.rmtree(work)

    points = SHARDS + 2
    if budget:
        # Counts the commit points this load passes (a kill point past the last kills nothing).
        points = count_points(sqlite3, ext, base, writer, extra)
        assert points > SHARDS + 2 + 4, "the load made %d commit points: it did not commit early" % points
    for point in range(points):
        one_kill("kill point %d" % point, dict(os.environ, IMGSTORE_SHARDED_KILL_AT=str(point), **extra))
    # A reader that had the table open before the writer died mid-commit (two shards committed) rolls the
    # commit back itself at its next statement, and reads the table as before, the commit undone.
    work = tempfile.mkdtemp(dir=base)
    shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
    reader = subprocess.Popen([sqlite3, "-batch", ":memory:"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=work, text=True)
    reader.stdin.write(".load %s\nCREATE VIRTUAL TABLE temp.t USING %s(path='t');\nSELECT 'open';\n" % (ext, backend))
    reader.stdin.flush()
    assert reader.stdout.readline().strip() == "open"
    killed = run(sqlite3, ext, writer, work, env=dict(os.environ, IMGSTORE_SHARDED_KILL_AT="2", **extra))
    assert killed.returncode == -signal.SIGKILL, killed
    reader.stdin.write("SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;\n"
                       "SELECT imgstore_check('%s', 't');\n" % backend)
    out, err = reader.communicate()
    if out.strip() != before:
        failures.append("%s, a reader open before the writer died: found %r (%s); expected %r" % (
            name, out.strip(), err.strip(), before))
    shutil.rmtree(work)
    rng = random.Random(14)
    for k in range(timed):
        one_kill("timed kill %d" % k, dict(os.environ, **extra), delay=rng.uniform(0.0, 0.4))
    print("%s %s: %d kills, %d found the state before, %d after" % (backend, name, points + timed,
                                                                    outcomes["before"], outcomes["after"]))


def count_points(sqlite3, ext, base, writer, extra):
    """How many commit points `writer` passes: killed at a large point number it is not killed, so the points are
    counted by killing at ever larger ones until one run finishes."""
    lo, hi = 0, 1
    while True:  # hi: a point the run does not reach
        work = tempfile.mkdtemp(dir=base)
        shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
        proc = run(sqlite3, ext, writer, work, env=dict(os.environ, IMGSTORE_SHARDED_KILL_AT=str(hi), **extra))
        shutil.rmtree(work)
        if proc.returncode == 0:
            break
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        work = tempfile.mkdtemp(dir=base)
        shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
        proc = run(sqlite3, ext, writer, work, env=dict(os.environ, IMGSTORE_SHARDED_KILL_AT=str(mid), **extra))
        shutil.rmtree(work)
        lo, hi = (lo, mid) if proc.returncode == 0 else (mid, hi)
    return hi


def failed_load_leaves_nothing(sqlite3, ext, backend, base, failures):
    """A load whose shards committed early and which then fails (a duplicate id at its last row) leaves the
    table as before it, in this process and in the next, and the same with threads=2."""
    before = state(sqlite3, ext, backend, base)
    for threads in (1, 2):
        work = tempfile.mkdtemp(dir=base)
        shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
        proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t', threads=%d);"
                   "INSERT INTO t SELECT id + %d, label, pixels FROM synthetic(%d, '%s', 9) "
                   "UNION ALL SELECT 5, 0, zeroblob(%d);"
                   "SELECT 'same: ' || count(*) || ' ' || image_digest(id, label, pixels) FROM t;" % (
                       backend, threads, ROWS, ROWS, SHAPE, 8 * 8 * 3), work,
                   env=dict(os.environ, IMGSTORE_SHARD_BUDGET="16000"))
        if "id 5 already exists" not in proc.stderr:
            failures.append("failed load, threads=%d: expected the duplicate id's error, got %r" % (threads, proc.stderr))
        found = state(sqlite3, ext, backend, work)
        if found != before:
            failures.append("failed load, threads=%d: found %r; expected the table as before, %r" % (threads, found, before))
        manifest = json.load(open(os.path.join(work, "t", "manifest.json")))
        if "pending" in manifest:
            failures.append("failed load, threads=%d: the manifest still names pending ids after the rollback" % threads)
        shutil.rmtree(work)
    print("%s: a failed load that had committed shards early left the table as before (threads 1 and 2)" % backend)


def readers_see_whole_commits(sqlite3, ext, backend, base, failures, rounds=4, script=None, env=None):
    """Readers (two shells, each reading the whole table again and again) beside a writer that commits CHANGE
    (or `script`): every read must equal the table before or after the commit, never a mix of shards."""
    script = script or "BEGIN; %s COMMIT;" % CHANGE
    for k in range(rounds):
        work = tempfile.mkdtemp(dir=base)
        shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
        before = state(sqlite3, ext, backend, work).split("\n")[0]
        reads = ("CREATE VIRTUAL TABLE temp.t USING %s(path='t');" % backend +
                 "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;" * 400)
        readers = [subprocess.Popen([sqlite3, "-batch", ":memory:"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=work, text=True) for _ in range(2)]
        for r in readers:
            r.stdin.write(".load %s\n%s\n" % (ext, reads))
            r.stdin.close()
        time.sleep(0.01 * k)
        proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); %s" % (backend, script), work, env=env)
        if proc.returncode != 0:
            failures.append("reader round %d: the writer failed: %s" % (k, proc.stderr))
        after = state(sqlite3, ext, backend, work).split("\n")[0]
        seen = {"before": 0, "after": 0}
        for r in readers:
            out, err = r.stdout.read(), r.stderr.read()
            if r.wait() != 0:
                failures.append("reader round %d: a reader failed: %s" % (k, err.strip()))
            for line in out.strip().split("\n"):
                if line == before:
                    seen["before"] += 1
                elif line == after:
                    seen["after"] += 1
                else:
                    failures.append("reader round %d read %r; expected %r or %r (%s)" % (k, line, before, after, err.strip()))
        print("%s readers, round %d: %d reads saw the table before the commit, %d after" % (
            backend, k, seen["before"], seen["after"]))
        if seen["before"] + seen["after"] != 2 * 400:
            failures.append("reader round %d: %d good reads of %d" % (k, seen["before"] + seen["after"], 2 * 400))
        shutil.rmtree(work)


def main():
    sqlite3, ext, backend = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    timed = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    base = tempfile.mkdtemp(prefix="imgstore-sharded-crash-")
    proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t', shape='%s', shards=%d);"
               "INSERT INTO t SELECT * FROM synthetic(%d, '%s', 3);" % (backend, SHAPE, SHARDS, ROWS, SHAPE), base)
    assert proc.returncode == 0, proc.stderr
    failures = []
    crash_points(sqlite3, ext, backend, base, "insert", INSERT, timed, failures)
    crash_points(sqlite3, ext, backend, base, "change", CHANGE, timed, failures)
    # With two threads the bulk rows queue per shard and png_dir and hdf5 shards commit on workers.
    crash_points(sqlite3, ext, backend, base, "insert, threads=2", INSERT, timed // 2, failures, threads=2)
    crash_points(sqlite3, ext, backend, base, "change, threads=2", CHANGE, timed // 2, failures, threads=2)
    readers_see_whole_commits(sqlite3, ext, backend, base, failures)
    if backend == "lmdb":
        # A load that commits shards early (LMDB holds a transaction's pages in memory; sharded_store.cpp).
        crash_points(sqlite3, ext, backend, base, "early commits", INSERT, timed // 2, failures, budget=16000)
        crash_points(sqlite3, ext, backend, base, "early commits, threads=2", INSERT, timed // 2, failures,
                     threads=2, budget=16000)
        failed_load_leaves_nothing(sqlite3, ext, backend, base, failures)
        readers_see_whole_commits(sqlite3, ext, backend, base, failures, rounds=2, script=INSERT,
                                  env=dict(os.environ, IMGSTORE_SHARD_BUDGET="16000"))
    shutil.rmtree(base)
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
