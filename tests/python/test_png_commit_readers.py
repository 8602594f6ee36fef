"""png_dir commits beside statements that are reading: a commit of new ids does not wait for them (they go on
reading the state they began with, and the next statement sees the commit); a commit that replaces or deletes
images waits for them, up to `timeout`. On one store and on a sharded table, in one process and from another."""

import os
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


def test_a_replacing_commit_still_waits_for_readers(tmp_path):
    path = str(tmp_path / "t")
    setup = table(path)
    setup.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(40, '{SHAPE}', 1)")
    setup.close()
    reader = table(path)
    scan = reader.execute("SELECT id FROM temp.t")
    scan.fetchone()
    writer = table(path, timeout=200)
    with pytest.raises(sqlite3.OperationalError, match="other statements are still reading it after 200 ms"):
        writer.execute(f"INSERT OR REPLACE INTO temp.t SELECT id, label, pixels FROM synthetic(4, '{SHAPE}', 2)")
    scan.fetchall()
    writer.execute(f"INSERT OR REPLACE INTO temp.t SELECT id, label, pixels FROM synthetic(4, '{SHAPE}', 2)")
    assert reader.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 40
