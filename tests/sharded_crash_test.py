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


def crash_points(sqlite3, ext, backend, base, name, change, timed, failures, threads=1):
    """Kills a writer running `change` in one transaction at every commit point and at timed points."""
    before = state(sqlite3, ext, backend, base)
    after_dir = os.path.join(base, "after-" + name)
    shutil.copytree(os.path.join(base, "t"), os.path.join(after_dir, "t"))
    proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); BEGIN; %s COMMIT;" % (backend, change),
               after_dir)
    assert proc.returncode == 0, proc.stderr
    after = state(sqlite3, ext, backend, after_dir)
    shutil.rmtree(after_dir)
    assert before.endswith("ok") and after.endswith("ok") and before != after, (before, after)
    writer = "CREATE VIRTUAL TABLE temp.t USING %s(path='t', threads=%d); BEGIN; %s COMMIT;" % (backend, threads, change)
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

    for point in range(SHARDS + 2):
        one_kill("kill point %d" % point, dict(os.environ, IMGSTORE_SHARDED_KILL_AT=str(point)))
    # A reader that had the table open before the writer died mid-commit (two shards committed) rolls the
    # commit back itself at its next statement, and reads the table as before, the commit undone.
    work = tempfile.mkdtemp(dir=base)
    shutil.copytree(os.path.join(base, "t"), os.path.join(work, "t"))
    reader = subprocess.Popen([sqlite3, "-batch", ":memory:"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=work, text=True)
    reader.stdin.write(".load %s\nCREATE VIRTUAL TABLE temp.t USING %s(path='t');\nSELECT 'open';\n" % (ext, backend))
    reader.stdin.flush()
    assert reader.stdout.readline().strip() == "open"
    killed = run(sqlite3, ext, writer, work, env=dict(os.environ, IMGSTORE_SHARDED_KILL_AT="2"))
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
        one_kill("timed kill %d" % k, dict(os.environ), delay=rng.uniform(0.0, 0.4))
    print("%s %s: %d kills, %d found the state before, %d after" % (backend, name, SHARDS + 2 + timed,
                                                                    outcomes["before"], outcomes["after"]))


def readers_see_whole_commits(sqlite3, ext, backend, base, failures, rounds=4):
    """Readers (two shells, each reading the whole table again and again) beside a writer that commits CHANGE:
    every read must equal the table before or after the commit, never a mix of shards."""
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
        proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); BEGIN; %s COMMIT;" % (backend, CHANGE),
                   work)
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
    shutil.rmtree(base)
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
