#!/usr/bin/env python3
"""A process forked right after statements that ran on the codec pool (threads=2) starts its own pool and
finishes: the parent opens a table (a new pool, its workers starting), writes a batch on png_dir, gzip hdf5
and sharded png_dir stores and reads the first rows of a scan (its read-ahead left running), forks at once,
and the child writes its own batch (its own workers) and exits. Each child must finish within 30 s; at the end every
row of the parent and the children is in the store. A worker still freeing its job when the parent forked
or starting, left the allocator's lock held in the child under GCC 12's AddressSanitizer, whose allocator
takes no locks around fork (thread_pool.cpp, ForkQuiesce): the child's new workers hung at start (1 in 40
fork-after schedules of tests/process_test.py).

usage: fork_pool_test.py EXTENSION [FORKS]
"""

import os
import signal
import sys
import tempfile
import time

from harness import Checks, connect, wait

check = Checks()
SHAPE = "16x16x3"
BATCH = 24
STORES = [("png_dir", "p", ""), ("hdf5", "h.h5", ", compression='gzip'"), ("png_dir", "sp", ", shards=3")]


def table(con, backend, path, options):
    con.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', shape='%s', threads=2, timeout=30000%s)" %
                (backend, path, SHAPE, options))


def insert(con, first):
    con.execute("INSERT INTO t SELECT id + ?, label, pixels FROM synthetic(?, '%s')" % SHAPE, (first, BATCH))


def finish(pid, seconds):
    """The child's exit status, or None if it hung (then it is killed)."""
    code = wait(pid, time.time() + seconds)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return code


def main():
    ext = os.path.abspath(sys.argv[1])
    forks = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with tempfile.TemporaryDirectory(prefix="imgstore-fork-pool-") as work:
        for backend, name, options in STORES:
            path = os.path.join(work, name)
            hung = failed = 0
            for k in range(forks):
                # A new connection and table: its pool's workers are just starting when the statements return.
                con = connect(ext)
                table(con, backend, path, options)
                if k % 2:
                    insert(con, 2 * k * BATCH)  # the pool's workers are still finishing when this returns
                    # A scan ended early: its read-ahead decodes may still run when this returns.
                    con.execute("SELECT length(pixels) FROM t LIMIT ?", (k % 3,)).fetchall()
                else:
                    # One row (the pool made for it, its workers starting), then a count.
                    con.execute("INSERT INTO t VALUES (?, 0, zeroblob(768))", (2 * k * BATCH,))
                    con.execute("SELECT count(*) FROM t").fetchall()
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        child = connect(ext)
                        table(child, backend, path, options)
                        insert(child, (2 * k + 1) * BATCH)
                        child.close()
                        code = 0
                    finally:
                        os._exit(code)
                code = finish(pid, 30)
                hung += code is None
                failed += code not in (None, 0)
                if k < forks - 1:
                    con.close()
            what = "%s%s: %d forks" % (backend, options, forks)
            check(hung == 0, "%s: %d children hung (killed after 30 s)" % (what, hung))
            check(failed == 0, "%s: %d children failed" % (what, failed))
            count = con.execute("SELECT count(*) FROM t").fetchone()[0]
            want = forks * BATCH + forks // 2 * BATCH + (forks + 1) // 2 - (hung + failed) * BATCH
            check(count == want, "%s: the store holds %d rows; the parent and its children wrote %d" % (what, count, want))
            con.close()
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
