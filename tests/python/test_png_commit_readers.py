"""png_dir commits beside statements that are reading: no commit waits for them, whether it adds ids, replaces
images or deletes them; they go on reading the state they began with (a replaced or deleted file is kept in
.old/<generation>/ for them until they end), and the next statement sees the commit. Only a reader of another
program that holds .imgstore's reader lock while it reads (docs/formats.md) makes a commit that replaces or
deletes wait, up to `timeout`. On one store and on a sharded table, in one process and from another."""

import fcntl
import glob
import os
import struct
import sqlite3
import subprocess
import sys
import time

import pytest

import imgstore

SHAPE = "8x8x3"


def connect():
    return imgstore.load(sqlite3.connect(":memory:", isolation_level=None))


def table(path, shards=None, timeout=None, threads=2):
    con = connect()
    args = f"path='{path}', shape='{SHAPE}', threads={threads}" + (f", shards={shards}" if shards else "")
    args += f", timeout={timeout}" if timeout else ""
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir({args})")
    return con


@pytest.mark.parametrize("shards", [None, 3])
def test_an_insert_commits_while_a_scan_reads_on(tmp_path, shards):
    path = str(tmp_path / "t")
    setup = table(path, shards)
    setup.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(300, '{SHAPE}', 1)")
    before = setup.execute("SELECT count(*), image_digest(id, label, pixels) FROM temp.t").fetchone()
    setup.close()
    reader = table(path, shards)
    scan = reader.execute("SELECT id, label, pixels FROM temp.t")
    rows = scan.fetchmany(50)  # a statement still reading
    writer = table(path, shards, timeout=200)
    start = time.monotonic()
    writer.execute(f"INSERT INTO temp.t SELECT id + 1000, label, pixels FROM synthetic(100, '{SHAPE}', 2)")
    assert time.monotonic() - start < 2.0  # it did not wait for the reader (timeout 200 ms: it would have failed)
    # Another statement of the same connection while the scan still reads: the state the scan began with (the
    # connection keeps one snapshot while a statement reads, as SQLite's own connections do), and the scan,
    # reading ahead on worker threads, is not disturbed by it.
    assert reader.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 300
    rows += scan.fetchall()
    assert len(rows) == 300 and max(r[0] for r in rows) < 1000  # the state it began with, whole
    assert reader.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 400  # the next statement: the commit
    # In another process (a statement of this one still reading): its own INSERT commits, and it sees it.
    scan = reader.execute("SELECT id FROM temp.t")
    scan.fetchmany(5)
    child = subprocess.run([sys.executable, "-c", f"""
import sqlite3, imgstore
con = imgstore.load(sqlite3.connect(':memory:', isolation_level=None))
con.execute("CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', timeout=200)")
con.execute("INSERT INTO temp.t SELECT id + 2000, label, pixels FROM synthetic(50, '{SHAPE}', 3)")
print(con.execute("SELECT count(*) FROM temp.t").fetchone()[0])
"""], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "450"
    assert len(scan.fetchall()) == 395
    assert reader.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 450
    assert reader.execute(f"SELECT imgstore_check('png_dir', '{path}')").fetchone()[0] == "ok"
    assert before[0] == 300


def folders_kept(path):
    """The .old/<k> folders of a store or of a sharded table's shards."""
    return sorted(glob.glob(os.path.join(path, ".old", "[0-9]*")) + glob.glob(os.path.join(path, "*", ".old", "[0-9]*")))


def change(con):
    """One transaction that replaces, relabels, deletes and adds rows."""
    con.execute("BEGIN")
    con.execute(f"INSERT OR REPLACE INTO temp.t SELECT id * 3, label + 1, pixels FROM synthetic(20, '{SHAPE}', 9)")
    con.execute("UPDATE temp.t SET label = label + 5 WHERE id % 7 = 1")
    con.execute("DELETE FROM temp.t WHERE id % 5 = 2")
    con.execute(f"INSERT INTO temp.t SELECT id + 5000, label, pixels FROM synthetic(10, '{SHAPE}', 4)")
    con.execute("COMMIT")


ALL = "SELECT id, label, pixels FROM temp.t"


@pytest.mark.parametrize("shards", [None, 3])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_commit_that_replaces_and_deletes_does_not_wait_for_a_scan(tmp_path, shards, threads):
    path = str(tmp_path / "t")
    setup = table(path, shards)
    setup.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(200, '{SHAPE}', 1)")
    before = setup.execute(ALL).fetchall()
    setup.close()
    reader = table(path, shards, threads=threads)
    scan = reader.execute(ALL)
    rows = scan.fetchmany(30)
    lookup = reader.execute("SELECT id, label, pixels FROM temp.t WHERE id IN (3, 12, 57, 150)")  # by id, too
    writer = table(path, shards, timeout=200)
    start = time.monotonic()
    change(writer)  # timeout 200 ms: had it waited for the reader, it would have failed
    assert time.monotonic() - start < 2.0
    after = writer.execute(ALL).fetchall()
    assert after != before and len(after) == 200 - 40 + 10
    assert folders_kept(path)  # the replaced and deleted files, for the scan
    rows += scan.fetchall()
    assert rows == before  # the state the scan began with, every pixel of it
    assert lookup.fetchall() == [r for r in before if r[0] in (3, 12, 57, 150)]
    assert reader.execute(ALL).fetchall() == after  # the next statement: the commit
    del scan, lookup
    # No statement needs the old files any more: the next commit removes them.
    writer.execute(f"INSERT INTO temp.t SELECT id + 9000, label, pixels FROM synthetic(1, '{SHAPE}', 5)")
    writer.execute("DELETE FROM temp.t WHERE id = 9000")
    assert folders_kept(path) == []
    assert writer.execute(f"SELECT imgstore_check('png_dir', '{path}', 1)").fetchone()[0] == "ok"


READER = """
import sqlite3, sys, imgstore
con = imgstore.load(sqlite3.connect(':memory:', isolation_level=None))
con.execute("CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', threads=2)")
scan = con.execute("SELECT id, label, pixels FROM temp.t")
rows = scan.fetchmany(10)
print('reading', flush=True)
sys.stdin.readline()  # the parent commits meanwhile
rows += scan.fetchall()
print(len(rows))
print(repr(sorted((i, l, p.hex()) for i, l, p in rows)))
"""


def test_a_reader_in_another_process_keeps_its_state(tmp_path):
    path = str(tmp_path / "t")
    writer = table(path, timeout=200)
    writer.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(100, '{SHAPE}', 1)")
    before = writer.execute(ALL).fetchall()
    child = subprocess.Popen([sys.executable, "-c", READER.format(path=path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert child.stdout.readline().strip() == "reading"
    change(writer)
    out, _ = child.communicate("go\n", timeout=60)
    assert child.returncode == 0
    assert out.splitlines()[0] == "100"
    assert out.splitlines()[1] == repr(sorted((i, l, p.hex()) for i, l, p in before))
    assert writer.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 100 - 20 + 10


def test_a_reader_of_another_program_holding_the_reader_lock_makes_a_replacing_commit_wait(tmp_path):
    path = str(tmp_path / "t")
    writer = table(path, timeout=200)
    writer.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(40, '{SHAPE}', 1)")
    before = writer.execute(ALL).fetchall()
    # docs/formats.md's recipe for a reader of another program: byte 1 of .imgstore shared while it reads.
    meta = os.open(os.path.join(path, ".imgstore"), os.O_RDONLY)
    fcntl.fcntl(meta, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 1, 1, 0))
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"a reader has held its reader lock .*\.imgstore', byte 1.* "
                                                           r"for 200 ms; nothing was committed, try COMMIT again"):
            writer.execute(f"INSERT OR REPLACE INTO temp.t SELECT id, label + 1, pixels FROM synthetic(4, '{SHAPE}', 2)")
        assert writer.execute(ALL).fetchall() == before  # nothing was committed
        # A commit of new ids only changes no file it reads: it does not wait.
        writer.execute(f"INSERT INTO temp.t SELECT id + 100, label, pixels FROM synthetic(2, '{SHAPE}', 2)")
    finally:
        os.close(meta)
    writer.execute(f"INSERT OR REPLACE INTO temp.t SELECT id, label + 1, pixels FROM synthetic(4, '{SHAPE}', 2)")
    assert writer.execute("SELECT count(*), sum(label) FROM temp.t").fetchone()[0] == 42
    assert writer.execute(f"SELECT imgstore_check('png_dir', '{path}', 1)").fetchone()[0] == "ok"
