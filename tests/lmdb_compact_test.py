#!/usr/bin/env python3
"""Compaction of lmdb stores (extension/stores/lmdb/lmdb_compact.cpp) through imgstore_compact('lmdb', path) in the
sqlite3 shell, with the test hooks' module (build/test-hooks/imgstore.so, core/test_hooks.hpp):
- killed (SIGKILL) at each of its points, and at random times, in format 2 (a directory) and format 1 (one file):
  the store then opens to exactly the committed rows, byte for byte (image_digest against a native table), its
  check is ok, the leftover temporary is gone after the next open, and a compaction run again shrinks it;
- beside another process that has the store open (format 2): its scan started before the compaction reads its
  whole snapshot; its next statement reads the compacted store; its writes commit into the new data file (read back
  by py-lmdb from the path), also when it was waiting for the writer lock while the compaction stood stopped
  (SIGSTOP) before its swap, or wrote while it stood after the swap; no committed row is lost;
- format 1 is refused while another process has it open, and compacted once it is closed.

usage: lmdb_compact_test.py SQLITE3 EXTENSION TEST_HOOKS_EXTENSION
"""

import json
import multiprocessing
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

import lmdb

from harness import Checks, connect, shell

check = Checks()
SHAPE = "8x8x3"
POINTS = {2: ["compact-made", "compact-copied", "compact-before-swap", "compact-swapped", "compact-removing"],
          1: ["compact-made", "compact-copied", "compact-before-swap", "compact-swapped"]}
DIGEST = "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;"


class Store:
    """A store and its oracle (a native table in ref.db given the same rows)."""

    def __init__(self, sqlite3_path, ext, hooks, work, fmt, n=3000, shape=SHAPE):
        self.sqlite3, self.ext, self.hooks, self.work, self.fmt = sqlite3_path, ext, hooks, work, fmt
        self.path = os.path.join(work, "s.lmdb")
        fill = ("INSERT INTO t SELECT * FROM synthetic(%d, '%s', 3);"
                "DELETE FROM t WHERE id %% 3 <> 0;" % (n, shape))  # free pages for the compaction to drop
        self.sql("ATTACH 'ref.db' AS r; CREATE TABLE r.t(id INTEGER PRIMARY KEY, label, pixels);"
                 "CREATE VIRTUAL TABLE temp.t USING lmdb(path='v2.lmdb', shape='%s');" % shape + fill +
                 "INSERT INTO r.t SELECT * FROM t;")
        if fmt == 1:
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "lmdb_v1.py"), "from",
                            os.path.join(work, "v2.lmdb"), self.path], check=True)
        else:
            os.rename(os.path.join(work, "v2.lmdb"), self.path)

    def sql(self, script):
        r = shell(self.sqlite3, self.ext, script, self.work)
        check(r.returncode == 0, "format %d: %s: %s" % (self.fmt, script[:80], r.stderr.strip()))
        return r.stdout.strip()

    def expected(self):
        return self.sql("ATTACH 'ref.db' AS r; " + DIGEST.replace("FROM t", "FROM r.t"))

    def actual(self):
        return self.sql("CREATE VIRTUAL TABLE temp.t USING lmdb(path='s.lmdb'); " + DIGEST +
                        "SELECT imgstore_check('lmdb', 's.lmdb', 1);")

    def compact(self, env=None, wait=True):
        """imgstore_compact in a sqlite3 shell of its own: (exit status, rows kept or None, stderr), or the process."""
        proc = subprocess.Popen([self.sqlite3, "-batch", "-cmd", ".load " + self.hooks, ":memory:",
                                 "SELECT imgstore_compact('lmdb', 's.lmdb');"], cwd=self.work, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, **(env or {})))
        if not wait:
            return proc
        out, err = proc.communicate(timeout=120)
        rows = json.loads(out)["rows"] if proc.returncode == 0 and out.strip() else None
        return proc.returncode, rows, err.strip()

    def leftovers(self):
        return [n for n in os.listdir(self.work) if n.startswith("s.lmdb.")]


def sound(store, label):
    """The store holds exactly the oracle's rows, byte for byte, and its check is ok."""
    got = store.actual().split("\n")
    check(got == [store.expected(), "ok"], "%s: expected %r, ok; got %r" % (label, store.expected(), got))


def kill_points(sqlite3_path, ext, hooks):
    for fmt, points in POINTS.items():
        for point in points:
            with tempfile.TemporaryDirectory(prefix="imgstore-compact-") as work:
                store = Store(sqlite3_path, ext, hooks, work, fmt, n=600)
                rc, _, err = store.compact({"IMGSTORE_LMDB_KILL_AT": point})
                label = "format %d, killed at %s" % (fmt, point)
                check(rc == -signal.SIGKILL, "%s: the compacting process was not killed: %d %s" % (label, rc, err))
                sound(store, label)
                check(store.leftovers() == [], "%s: leftovers after the next open: %r" % (label, store.leftovers()))
                rc, rows, err = store.compact()
                check(rc == 0 and rows == 200, "%s: compacting again: %d %r %s" % (label, rc, rows, err))
                sound(store, label + ", compacted again")


def random_kills(sqlite3_path, ext, hooks, kills=8):
    with tempfile.TemporaryDirectory(prefix="imgstore-compact-") as work:
        store = Store(sqlite3_path, ext, hooks, work, 2, n=20000, shape="32x32x3")
        start = time.time()
        rc, out, err = store.compact()
        duration = time.time() - start
        check(rc == 0, "random kills: an undisturbed compaction: %s" % err)
        rng = random.Random(24)
        outcomes = {}
        for k in range(kills):
            proc = store.compact(wait=False)
            delay = rng.uniform(0, duration * 1.2)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            outcomes[proc.returncode] = outcomes.get(proc.returncode, 0) + 1
            sound(store, "random kill %d after %.3f of %.3f s" % (k, delay, duration))
        print("random kills of a %.3f s compaction: exit statuses %s" % (duration, outcomes))


def other_process(ext, path, commands, replies):
    """Another process with the store open: runs ('sql', text) or ('scan', n) commands, replies with rows or an
    error. A scan started by ('scan', n) is read on by ('rest',)."""
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.t USING lmdb(path='%s', timeout=30000)" % path)
    scan = None
    while True:
        command = commands.get()
        try:
            if command[0] == "quit":
                return
            if command[0] == "scan":
                scan = con.cursor()
                scan.execute("SELECT id, label, pixels FROM t ORDER BY id")
                replies.put(scan.fetchmany(command[1]))
            elif command[0] == "rest":
                replies.put(scan.fetchall())
                scan = None
            else:
                replies.put(con.execute(command[1]).fetchall())
        except Exception as e:  # noqa: BLE001 (the reply is the test's evidence)
            replies.put("error: %s" % e)


def entries_in_path(path):
    env = lmdb.open(path, readonly=True)
    with env.begin() as txn:
        n = txn.stat()["entries"]
    env.close()
    return n


def stopped(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(") ")[1][0] == "T"


def beside_another_process(sqlite3_path, ext, hooks):
    with tempfile.TemporaryDirectory(prefix="imgstore-compact-") as work:
        store = Store(sqlite3_path, ext, hooks, work, 2)
        before = store.sql("CREATE VIRTUAL TABLE temp.t USING lmdb(path='s.lmdb');"
                           "SELECT id, label, hex(pixels) FROM t ORDER BY id;").split("\n")
        ctx = multiprocessing.get_context("spawn")
        commands, replies = ctx.Queue(), ctx.Queue()
        other = ctx.Process(target=other_process, args=(ext, store.path, commands, replies))
        other.start()
        ask = lambda *command: (commands.put(command), replies.get(timeout=60))[1]  # noqa: E731
        first = ask("scan", 10)
        rc, out, err = store.compact()
        check(rc == 0, "beside a reader: the compaction failed: %s" % err)
        rest = ask("rest")
        seen = ["%d|%d|%s" % (i, label, bytes(p).hex().upper()) for i, label, p in first + rest]
        check(seen == before, "the scan begun before the compaction read %d rows of %d, or other bytes" % (len(seen), len(before)))
        check(ask("sql", "SELECT count(*) FROM t") == [(len(before),)], "the next statement reads the compacted store")
        check(ask("sql", "INSERT INTO t SELECT id + 100000, label, pixels FROM synthetic(50, '%s', 9)" % SHAPE) == [],
              "a write after the compaction")
        store.sql("ATTACH 'ref.db' AS r; INSERT INTO r.t SELECT id + 100000, label, pixels FROM synthetic(50, '%s', 9);" % SHAPE)
        check(entries_in_path(store.path) == len(before) + 50, "the write went into the new data file")

        # A writer waiting for the lock of the old file while the compaction stands before its swap.
        proc = store.compact({"IMGSTORE_LMDB_STOP_AT": "compact-before-swap"}, wait=False)
        while not stopped(proc.pid):
            time.sleep(0.01)
        commands.put(("sql", "INSERT INTO t SELECT id + 200000, label, pixels FROM synthetic(50, '%s', 10)" % SHAPE))
        time.sleep(0.3)
        check(replies.empty(), "the writer waits while the compaction holds the store")
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        check(proc.returncode == 0, "the stopped compaction finished: %s" % err)
        check(replies.get(timeout=60) == [], "the waiting writer committed after the swap")
        store.sql("ATTACH 'ref.db' AS r; INSERT INTO r.t SELECT id + 200000, label, pixels FROM synthetic(50, '%s', 10);" % SHAPE)
        check(entries_in_path(store.path) == len(before) + 100, "the waiting writer's rows are in the new data file")

        # A writer while the compaction stands after its swap, still holding the old file's lock.
        proc = store.compact({"IMGSTORE_LMDB_STOP_AT": "compact-swapped"}, wait=False)
        while not stopped(proc.pid):
            time.sleep(0.01)
        check(ask("sql", "INSERT INTO t SELECT id + 300000, label, pixels FROM synthetic(50, '%s', 11)" % SHAPE) == [],
              "a writer beside a compaction stopped after its swap")
        store.sql("ATTACH 'ref.db' AS r; INSERT INTO r.t SELECT id + 300000, label, pixels FROM synthetic(50, '%s', 11);" % SHAPE)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        check(proc.returncode == 0, "the compaction stopped after its swap finished: %s" % err)
        check(entries_in_path(store.path) == len(before) + 150, "no row lost across three compactions")
        commands.put(("quit",))
        other.join(30)
        sound(store, "beside another process")
        check(store.leftovers() == [], "leftovers: %r" % store.leftovers())

    with tempfile.TemporaryDirectory(prefix="imgstore-compact-") as work:
        store = Store(sqlite3_path, ext, hooks, work, 1, n=300)
        ctx = multiprocessing.get_context("spawn")
        commands, replies = ctx.Queue(), ctx.Queue()
        other = ctx.Process(target=other_process, args=(ext, store.path, commands, replies))
        other.start()
        commands.put(("sql", "SELECT count(*) FROM t"))
        replies.get(timeout=60)
        rc, _, err = store.compact()
        check(rc != 0 and "another process has it open; a single-file store (format 1) is compacted only when nothing"
              in err, "format 1 beside another process: refused, got %d %r" % (rc, err))
        commands.put(("quit",))
        other.join(30)
        rc, rows, err = store.compact()
        check(rc == 0 and rows == 100, "format 1, closed: compacted: %d %r %s" % (rc, rows, err))
        check(os.path.isfile(store.path), "format 1 stays one file")
        sound(store, "format 1 compacted")


def main():
    sqlite3_path, ext, hooks = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    kill_points(sqlite3_path, ext, hooks)
    random_kills(sqlite3_path, ext, hooks)
    beside_another_process(sqlite3_path, ext, hooks)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
