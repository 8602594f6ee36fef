"""A png_dir shard that cannot commit yet: a commit that replaces images waits, up to `timeout`, for a reader of
another program holding a shard's reader lock as docs/formats.md describes (imgstore's own statements never make
it wait). The sharded table takes every changed shard's lock before it writes anything, so that COMMIT is
SQLITE_BUSY with nothing written, the transaction stays open, the table reads as before meanwhile, and COMMIT
again succeeds once the reader has gone (as on one png_dir store)."""

import fcntl
import json
import os
import sqlite3
import struct

import pytest

import imgstore


ROWS = "SELECT count(*), image_digest(id, label, pixels) FROM temp.t"


def connect():
    return imgstore.load(sqlite3.connect(":memory:", isolation_level=None))


def open_table(path, args=""):
    conn = connect()
    conn.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}'{args})")
    return conn


def make_table(path):
    """40 rows in 4 png_dir shards; their count and digest."""
    setup = open_table(path, ", shape='8x8x3', shards=4")
    setup.execute("INSERT INTO temp.t SELECT * FROM synthetic(40, '8x8x3', 1)")
    rows = setup.execute(ROWS).fetchone()
    setup.close()
    return rows


def expected_rows():
    """The oracle: the same rows in a native table, 8 of them replaced."""
    conn = connect()
    conn.execute("CREATE TEMP TABLE native(id INTEGER PRIMARY KEY, label, pixels)")
    conn.execute("INSERT INTO native SELECT * FROM synthetic(40, '8x8x3', 1)")
    conn.execute("INSERT OR REPLACE INTO native SELECT id, label, pixels FROM synthetic(8, '8x8x3', 2)")
    return conn.execute("SELECT count(*), image_digest(id, label, pixels) FROM native").fetchone()


def hold_reader_lock(path, shard):
    """Another program reading a shard as docs/formats.md describes: byte 1 of its .imgstore, shared."""
    meta = os.open(os.path.join(path, "shard-%03d" % shard, ".imgstore"), os.O_RDONLY)
    fcntl.fcntl(meta, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 1, 1, 0))
    return meta


def damage_shard(path, shard):
    """A damaged shard: where its commit writes the new labels.csv there is a directory (root may write anything,
    but not a file over a directory), so the shard fails to commit. Returns the repair."""
    obstacle = os.path.join(path, "shard-%03d" % shard, "labels.csv.pending")
    os.mkdir(obstacle)
    open(os.path.join(obstacle, "keep"), "w").close()

    def repair():
        os.remove(os.path.join(obstacle, "keep"))
        os.rmdir(obstacle)
    return repair


def assert_rows(path, rows):
    """A new connection reads `rows` (count, digest), and imgstore_check finds the store sound."""
    again = open_table(path)
    assert again.execute(ROWS).fetchone() == rows
    assert again.execute(f"SELECT imgstore_check('png_dir', '{path}')").fetchone()[0] == "ok"
    again.close()


def test_a_shard_busy_at_commit_fails_commit_with_nothing_written_and_commit_again_succeeds(tmp_path):
    path = str(tmp_path / "t")
    before = make_table(path)
    after = expected_rows()
    reader = open_table(path)
    scan = reader.execute("SELECT id FROM temp.t")
    scan.fetchone()  # a statement still reading every shard: no commit waits for it
    meta = hold_reader_lock(path, 0)
    writer = open_table(path, ", timeout=300")
    writer.execute("BEGIN")
    # Replacements in every shard (a commit of new ids only does not wait: test_png_commit_readers.py).
    writer.execute("INSERT OR REPLACE INTO temp.t SELECT id, label, pixels FROM synthetic(8, '8x8x3', 2)")
    with pytest.raises(sqlite3.OperationalError, match=r"shard-000.*reader lock.*nothing was committed, try COMMIT again"):
        writer.execute("COMMIT")
    assert writer.in_transaction
    # Nothing was written: the manifest names no unfinished commit, and another connection reads the old rows
    # at once (it has nothing to wait for or to undo).
    with open(os.path.join(path, "manifest.json")) as f:
        manifest = json.load(f)
    assert not manifest.get("pending") and not manifest.get("undo")
    other = open_table(path, ", timeout=100")
    assert other.execute(ROWS).fetchone() == before
    other.close()
    os.close(meta)
    assert len(scan.fetchall()) == 39
    reader.close()
    writer.execute("COMMIT")  # the same transaction, once the reader has gone
    assert writer.execute(ROWS).fetchone() == after
    writer.close()
    assert_rows(path, after)


def test_an_autocommit_statement_busy_at_commit_changes_nothing(tmp_path):
    path = str(tmp_path / "t")
    before = make_table(path)
    meta = hold_reader_lock(path, 2)
    writer = open_table(path, ", timeout=300")
    with pytest.raises(sqlite3.OperationalError, match="shard-002.*nothing was committed"):
        writer.execute("DELETE FROM temp.t WHERE id < 8")
    assert not writer.in_transaction
    assert writer.execute(ROWS).fetchone() == before
    os.close(meta)
    writer.execute("DELETE FROM temp.t WHERE id < 8")
    assert writer.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 32
    assert writer.execute(f"SELECT imgstore_check('png_dir', '{path}')").fetchone()[0] == "ok"


def test_a_shard_that_fails_to_commit_rolls_the_transaction_back_everywhere(tmp_path):
    path = str(tmp_path / "t")
    before = make_table(path)
    repair = damage_shard(path, 1)  # shard 1 fails to commit after the other shards have
    writer = open_table(path)
    writer.execute("BEGIN")
    writer.execute("INSERT OR REPLACE INTO temp.t SELECT id, label, pixels FROM synthetic(8, '8x8x3', 2)")
    with pytest.raises(sqlite3.OperationalError, match="rolled back in every shard; run it again.*labels.csv.pending"):
        writer.execute("COMMIT")
    with pytest.raises(sqlite3.OperationalError, match="no transaction is active"):
        writer.execute("COMMIT")  # nothing left to commit: never a success that committed nothing
    writer.close()
    repair()
    assert_rows(path, before)


def test_after_a_busy_commit_the_transaction_writes_to_every_shard(tmp_path):
    path = str(tmp_path / "t")
    make_table(path)
    writer = open_table(path, ", timeout=200")
    writer.execute("CREATE TEMP TABLE native AS SELECT * FROM temp.t")
    meta = hold_reader_lock(path, 0)
    writer.execute("BEGIN")
    writer.execute("UPDATE temp.t SET label = label + 100 WHERE id = 4")  # shard 0 only
    with pytest.raises(sqlite3.OperationalError, match="shard-000.*try COMMIT again"):
        writer.execute("COMMIT")
    # Shards that were clean at that COMMIT are still in the transaction.
    writer.execute("UPDATE temp.t SET label = label + 100 WHERE id = 5")
    writer.execute("INSERT INTO temp.t SELECT 1002, 7, pixels FROM temp.t WHERE id = 6")
    os.close(meta)
    writer.execute("COMMIT")
    for sql in ("UPDATE native SET label = label + 100 WHERE id IN (4, 5)",
                "INSERT INTO native SELECT 1002, 7, pixels FROM native WHERE id = 6"):
        writer.execute(sql)
    expected = writer.execute("SELECT count(*), image_digest(id, label, pixels) FROM native").fetchone()
    assert writer.execute(ROWS).fetchone() == expected
    writer.close()
    assert_rows(path, expected)


def test_undoing_new_ids_beside_a_reader_of_their_shard_finishes_once_it_lets_go(tmp_path):
    """The case docs/sql.md names: shard 1 fails to commit while another program reads shard 0, whose commit
    only added an id (so it took no lock). Undoing that id waits for the reader: until it lets go, statements on
    the table fail, naming the lock; after, the table is as before the transaction."""
    path = str(tmp_path / "t")
    before = make_table(path)
    repair = damage_shard(path, 1)
    meta = hold_reader_lock(path, 0)
    writer = open_table(path, ", timeout=200")
    writer.execute("BEGIN")
    writer.execute("INSERT INTO temp.t SELECT 1000, 3, pixels FROM temp.t WHERE id = 0")  # shard 0: a new id
    writer.execute("UPDATE temp.t SET label = label + 1 WHERE id = 5")  # shard 1
    with pytest.raises(sqlite3.OperationalError, match="rolled back in every shard"):
        writer.execute("COMMIT")
    writer.close()
    repair()
    reader = open_table(path, ", timeout=200")
    with pytest.raises(sqlite3.OperationalError, match="shard-000.*reader lock"):
        reader.execute("SELECT count(*) FROM temp.t").fetchone()
    os.close(meta)
    assert reader.execute(ROWS).fetchone() == before
    reader.close()
    assert_rows(path, before)
