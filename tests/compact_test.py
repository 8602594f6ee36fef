"""imgstore_compact and the hdf5 store's own bound on dead space (issue 24, point 2), with real processes.

1. ring: one writer inserts 500-row batches and deletes the oldest, keeping 7,000 live rows, for `seconds`;
   after every commit the hdf5 file must stay within 3x its live pixel bytes (it compacts by itself).
2. plain h5py: after imgstore_compact, f['ids'][:], f['labels'][:] and f['images'][:] are the table in id
   order, on plain and gzip stores and on each shard of a sharded hdf5 table; deleted, replaced and rolled-back
   rows are gone; the rows are the same as before (image_digest) and imgstore_check(.., 1) says ok.
3. kills: a compactor process is killed with SIGKILL at random moments, again and again, while a writer
   process that opened the store before any compaction commits batches; every batch the writer saw committed
   is there at the end, byte for byte (imgstore_check verifies every checksum), the store opens whole, and no
   '.compact' file outlives the next compaction.
4. readers: a statement that started before a compaction reads the old rows to its end; the next statement of
   the same connection reads the compacted file.
5. png_dir and sharded png_dir compact (nothing dead to give back: their files are removed at commit).

Usage: compact_test.py <imgstore extension> <seconds of the ring> <kill rounds>"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

from harness import Checks, connect, wait

EXT, RING_SECONDS, KILLS = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
check = Checks()
work = tempfile.mkdtemp(prefix="imgstore-compact-")


def table_rows(con, table):
    rows = con.execute("SELECT id, label, pixels FROM %s ORDER BY id" % table).fetchall()
    return rows


def digest(con, table):
    return con.execute("SELECT image_digest(id, label, pixels) FROM %s" % table).fetchone()[0]


def ring():
    path = os.path.join(work, "ring.h5")
    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.r USING hdf5(path='%s', shape='32x32x3')" % path)
    next_id, worst, commits = 0, 0.0, 0
    start = time.time()
    while time.time() - start < RING_SECONDS:
        con.execute("BEGIN")
        con.execute("INSERT INTO r SELECT id + ?, label, pixels FROM dataset('noise', 500)", (next_id,))
        next_id += 500
        con.execute("DELETE FROM r WHERE id < ?", (next_id - 7000,))
        con.execute("COMMIT")
        commits += 1
        live = con.execute("SELECT count(*) FROM r").fetchone()[0]
        worst = max(worst, os.path.getsize(path) / (live * 3072))
    check(worst <= 3.0, "ring: the file stayed within 3x its live data (worst %.2fx over %d commits)" % (worst, commits))
    check(con.execute("SELECT count(*), min(id) FROM r").fetchone() == (7000, next_id - 7000), "ring: 7,000 live rows")
    check(con.execute("SELECT imgstore_check('hdf5', ?, 1)", (path,)).fetchone()[0] == "ok", "ring: the store checks ok")
    print("ring: %d commits in %.0f s, worst %.2fx its live data" % (commits, RING_SECONDS, worst))


def churn(con, table):
    """Deletes, replaces, relabels and a rolled-back transaction: dead rows of every kind."""
    con.execute("INSERT INTO %s SELECT id * 3 %% 1000, label, pixels FROM dataset('noise', 1000)" % table)
    con.execute("DELETE FROM %s WHERE id %% 4 = 1" % table)
    con.execute("INSERT OR REPLACE INTO %s SELECT id * 8, 9, pixels FROM dataset('smooth', 50)" % table)
    con.execute("UPDATE %s SET label = label + 100 WHERE id %% 10 = 0" % table)
    con.execute("BEGIN")
    con.execute("INSERT INTO %s SELECT id + 5000, label, pixels FROM dataset('noise', 300)" % table)
    con.execute("ROLLBACK")


def h5py_reads_table(path, rows, what):
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        ids, labels, images = f["ids"][:], f["labels"][:], f["images"][:]
        check(list(ids) == [r[0] for r in rows], "%s: h5py's f['ids'][:] is the table's ids in id order" % what)
        check(list(labels) == [r[1] for r in rows], "%s: f['labels'][:] is the table's labels" % what)
        check(images.tobytes() == b"".join(r[2] for r in rows), "%s: f['images'][:] is the table's pixels" % what)
        check(int(f["commit"][1]) == len(rows), "%s: /commit holds the row count" % what)


def plain_h5py():
    for name, extra in (("plain", ""), ("gzip", ", compression='gzip:4', threads=2")):
        path = os.path.join(work, "%s.h5" % name)
        con = connect(EXT)
        con.execute("CREATE VIRTUAL TABLE temp.t USING hdf5(path='%s', shape='32x32x3'%s)" % (path, extra))
        churn(con, "t")
        before, rows = digest(con, "t"), table_rows(con, "t")
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            check(f["ids"].shape[0] > len(rows), "%s: dead rows before compaction (%d rows for %d live)"
                  % (name, f["ids"].shape[0], len(rows)))
        out = con.execute("SELECT imgstore_compact('hdf5', ?)", (path,)).fetchone()[0]
        check('"rows": %d' % len(rows) in out, "%s: imgstore_compact reports the rows kept (%s)" % (name, out))
        check(digest(con, "t") == before, "%s: the same rows after compaction, through the open table" % name)
        h5py_reads_table(path, rows, name)
        check(not os.path.exists(path + ".compact"), "%s: no .compact file left" % name)
        check(con.execute("SELECT imgstore_check('hdf5', ?, 1)", (path,)).fetchone()[0] == "ok", "%s: checks ok" % name)
        con.execute("INSERT INTO t SELECT id + 9000, label, pixels FROM dataset('noise', 10)")
        check(con.execute("SELECT count(*) FROM t").fetchone()[0] == len(rows) + 10, "%s: writable after it" % name)
    # Sharded: each shard compacted, each shard readable alone by h5py in id order.
    folder = os.path.join(work, "sharded")
    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.s USING hdf5(path='%s', shape='32x32x3', shards=3)" % folder)
    churn(con, "s")
    before, rows = digest(con, "s"), table_rows(con, "s")
    out = con.execute("SELECT imgstore_compact('hdf5', ?)", (folder,)).fetchone()[0]
    check('"rows": %d' % len(rows) in out, "sharded: imgstore_compact reports every shard's rows (%s)" % out)
    check(digest(con, "s") == before, "sharded: the same rows after compaction")
    for k in range(3):
        h5py_reads_table(os.path.join(folder, "shard-%03d.h5" % k), [r for r in rows if r[0] % 3 == k], "shard %d" % k)
    again = connect(EXT)
    again.execute("CREATE VIRTUAL TABLE temp.s USING hdf5(path='%s')" % folder)
    check(digest(again, "s") == before, "sharded: a new connection opens the compacted shards (manifest counts agree)")


WRITER = r"""
import sys, time
sys.path.insert(0, %(tests)r)
from harness import connect
con = connect(%(ext)r)
con.execute("CREATE VIRTUAL TABLE temp.w USING hdf5(path=%(path)r, timeout=20000)")
log = open(%(log)r, "a")
batch = 0
deadline = time.time() + %(seconds)f
while time.time() < deadline:
    first = 100000 + batch * 50
    con.execute("BEGIN")
    con.execute("INSERT INTO w SELECT id + ?, label, pixels FROM dataset('noise', 50)", (first,))
    con.execute("DELETE FROM w WHERE id >= ? AND id < ?", (first - 5000, first - 4975))
    con.execute("COMMIT")
    log.write("%%d %%d\n" %% (first, first - 5000)); log.flush()
    batch += 1
"""

COMPACTOR = r"""
import sys
sys.path.insert(0, %(tests)r)
from harness import connect
con = connect(%(ext)r)
while True:
    con.execute("SELECT imgstore_compact('hdf5', ?)", (%(path)r,)).fetchone()
    print("compacted", flush=True)
"""


def kills():
    path = os.path.join(work, "killed.h5")
    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.k USING hdf5(path='%s', shape='32x32x3')" % path)
    con.execute("INSERT INTO k SELECT * FROM dataset('noise', 3000)")
    log = os.path.join(work, "writer.log")
    seconds = 2.0 + KILLS * 0.25
    tests = os.path.dirname(os.path.abspath(__file__))
    writer = subprocess.Popen([sys.executable, "-c", WRITER % dict(tests=tests, ext=EXT, path=path, log=log,
                                                                   seconds=seconds)])
    rng = random.Random(24)
    compactions = 0
    for _ in range(KILLS):
        c = subprocess.Popen([sys.executable, "-c", COMPACTOR % dict(tests=tests, ext=EXT, path=path)],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.05, 0.4))
        c.send_signal(signal.SIGKILL)
        out, _ = c.communicate()
        compactions += out.count("compacted")
    check(wait(writer, time.time() + seconds + 60) == 0, "kills: the writer ran to its end without an error")
    committed = [tuple(map(int, line.split())) for line in open(log)]
    con2 = connect(EXT)
    con2.execute("CREATE VIRTUAL TABLE temp.k USING hdf5(path='%s')" % path)
    ids = set(r[0] for r in con2.execute("SELECT id FROM k"))
    deleted = set(dead for _, dead in committed)
    missing = [first for first, _ in committed
               if not all(first + i in ids for i in range(0 if first not in deleted else 25, 50))]
    resurrected = [dead for _, dead in committed if dead >= 100000 and any(dead + i in ids for i in range(25))]
    check(not missing, "kills: every batch the writer saw committed is there (%d batches; missing %s)"
          % (len(committed), missing[:5]) + " of %d" % len(missing))
    check(not resurrected, "kills: no row the writer deleted came back (%s)" % resurrected[:5])
    check(con2.execute("SELECT imgstore_check('hdf5', ?, 1)", (path,)).fetchone()[0] == "ok",
          "kills: every image checks against its checksum")
    con2.execute("SELECT imgstore_compact('hdf5', ?)", (path,)).fetchone()
    check(not os.path.exists(path + ".compact"), "kills: the next compaction removed any leftover '.compact'")
    print("kills: %d compactor processes killed, %d compactions finished, %d writer commits"
          % (KILLS, compactions, len(committed)))
    check(compactions > 0 and len(committed) > 10, "kills: compactions and commits both happened")


def readers():
    path = os.path.join(work, "read.h5")
    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.t USING hdf5(path='%s', shape='32x32x3')" % path)
    churn(con, "t")
    rows = table_rows(con, "t")
    reading = con.execute("SELECT id, label, pixels FROM t ORDER BY id")
    first = [reading.fetchone() for _ in range(10)]
    other = connect(EXT)
    other.execute("SELECT imgstore_compact('hdf5', ?)", (path,)).fetchone()
    other.execute("CREATE VIRTUAL TABLE temp.o USING hdf5(path='%s')" % path)
    other.execute("DELETE FROM o WHERE id < 100")
    rest = reading.fetchall()
    check(first + rest == rows, "readers: a statement begun before the compaction read the old rows to its end")
    check(con.execute("SELECT count(*) FROM t").fetchone()[0] == len([r for r in rows if r[0] >= 100]),
          "readers: the next statement reads the compacted file and the commit after it")


def png_dir():
    for name, extra in (("png", ""), ("png_sharded", ", shards=2")):
        path = os.path.join(work, name)
        con = connect(EXT)
        con.execute("CREATE VIRTUAL TABLE temp.p USING png_dir(path='%s', shape='8x8x3'%s)" % (path, extra))
        con.execute("INSERT INTO p SELECT id, label, zeroblob(192) FROM dataset('noise', 40)")
        con.execute("DELETE FROM p WHERE id < 20")
        before = digest(con, "p")
        out = con.execute("SELECT imgstore_compact('png_dir', ?)", (path,)).fetchone()[0]
        check('"rows": 20' in out and digest(con, "p") == before, "%s: compacts, keeping its rows (%s)" % (name, out))


ring()
plain_h5py()
kills()
readers()
png_dir()
sys.exit(check.summary())
