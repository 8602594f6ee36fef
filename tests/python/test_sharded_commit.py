"""A shard that cannot commit: the transaction is rolled back in every shard, the error says so, and the table
opens as it was (a png_dir shard's commit that replaces images waits, up to `timeout`, for a reader of another
program holding the shard's reader lock as docs/formats.md describes; imgstore's own statements never make it
wait)."""

import fcntl
import os
import sqlite3
import struct

import pytest

import imgstore


def connect():
    return imgstore.load(sqlite3.connect(":memory:", isolation_level=None))


def test_a_shard_busy_at_commit_rolls_the_transaction_back_everywhere(tmp_path):
    path = str(tmp_path / "t")
    setup = connect()
    setup.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', shape='8x8x3', shards=4)")
    setup.execute("INSERT INTO temp.t SELECT * FROM synthetic(40, '8x8x3', 1)")
    digest = setup.execute("SELECT image_digest(id, label, pixels) FROM temp.t").fetchone()[0]
    setup.close()
    reader = connect()
    reader.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}')")
    scan = reader.execute("SELECT id FROM temp.t")
    scan.fetchone()  # a statement still reading every shard: no commit waits for it
    # Another program reading shard 0 with docs/formats.md's lock recipe: byte 1 of its .imgstore, shared.
    meta = os.open(os.path.join(path, "shard-000", ".imgstore"), os.O_RDONLY)
    fcntl.fcntl(meta, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 1, 1, 0))
    writer = connect()
    writer.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', timeout=300)")
    writer.execute("BEGIN")
    # Replacements (a commit of new ids only does not wait for readers: test_png_commit_readers.py).
    writer.execute("INSERT OR REPLACE INTO temp.t SELECT id, label, pixels FROM synthetic(8, '8x8x3', 2)")
    with pytest.raises(sqlite3.OperationalError, match="rolled back in every shard; run it again"):
        writer.execute("COMMIT")
    os.close(meta)
    assert len(scan.fetchall()) == 39
    reader.close()
    with pytest.raises(sqlite3.OperationalError, match="no transaction is active"):
        writer.execute("COMMIT")  # nothing left to commit: never a success that committed nothing
    writer.close()
    again = connect()
    again.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}')")
    assert again.execute("SELECT count(*), image_digest(id, label, pixels) FROM temp.t").fetchone() == (40, digest)
    assert again.execute(f"SELECT imgstore_check('png_dir', '{path}')").fetchone()[0] == "ok"
