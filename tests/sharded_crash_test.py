#!/usr/bin/env python3
"""Crash test of a multi-shard commit: a writer (the real sqlite3 shell) inserting rows into every shard of a
sharded table is killed with SIGKILL at each point of its commit (IMGSTORE_SHARDED_KILL_AT: after the pending
manifest, after each shard's commit, after the final manifest), and at timed points over the whole statement.
After each kill a new process must find the table exactly as before the transaction or exactly as after it
(count and image_digest), every shard's row count equal to the manifest's (imgstore_check says ok), and each
shard alone holding no row of the killed transaction unless it committed; then it must be able to write again.

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


def main():
    sqlite3, ext, backend = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    timed = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    base = tempfile.mkdtemp(prefix="imgstore-sharded-crash-")
    insert = "INSERT INTO t SELECT id + %d, label, pixels FROM synthetic(%d, '%s', 9);" % (ROWS, ROWS, SHAPE)
    proc = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t', shape='%s', shards=%d);"
               "INSERT INTO t SELECT * FROM synthetic(%d, '%s', 3);" % (backend, SHAPE, SHARDS, ROWS, SHAPE), base)
    assert proc.returncode == 0, proc.stderr
    before = state(sqlite3, ext, backend, base)
    after_dir = os.path.join(base, "after")
    shutil.copytree(os.path.join(base, "t"), os.path.join(after_dir, "t"))
    assert run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); %s" % (backend, insert), after_dir).returncode == 0
    after = state(sqlite3, ext, backend, after_dir)
    assert before.endswith("ok") and after.endswith("ok") and before != after, (before, after)
    writer = "CREATE VIRTUAL TABLE temp.t USING %s(path='t'); BEGIN; %s COMMIT;" % (backend, insert)
    failures = []
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
            failures.append("%s: found %r; expected %r or %r" % (label, found, before, after))
            return
        manifest = json.load(open(os.path.join(work, "t", "manifest.json")))
        if "pending" in manifest:
            failures.append("%s: the manifest still has pending ids after recovery" % label)
        again = run(sqlite3, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='t');"
                    "INSERT INTO t SELECT id + 100000, label, pixels FROM synthetic(10, '%s', 1);" % (backend, SHAPE), work)
        if again.returncode != 0:
            failures.append("%s: cannot write after recovery: %s" % (label, again.stderr))
        shutil.rmtree(work)

    for point in range(SHARDS + 2):
        env = dict(os.environ, IMGSTORE_SHARDED_KILL_AT=str(point))
        one_kill("kill point %d" % point, env)
    rng = random.Random(14)
    for k in range(timed):
        one_kill("timed kill %d" % k, dict(os.environ), delay=rng.uniform(0.0, 0.4))
    shutil.rmtree(base)
    print("%s: %d kills, %d found the state before, %d after" % (backend, SHARDS + 2 + timed, outcomes["before"],
                                                                 outcomes["after"]))
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
