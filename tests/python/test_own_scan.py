"""A query left open on a connection while the same connection writes the table, as a native table allows: it
reads on, in the table as it is after each write (vtab.cpp parks the table's open cursors before every write,
commit, rollback and savepoint; core/store_rows.hpp). Each case is a sequence an adversarial run found broken
(model_test --own-scan generates such sequences; these are the four shapes it found, kept as regressions): a
freed LMDB page read after RELEASE on a sharded table, an intact HDF5 row reported damaged, a png_dir COMMIT
waiting for the connection's own scan, and an lmdb scan failing after COMMIT."""

import json
import os
import sqlite3

import pytest

import imgstore

SHAPE = "8x8x3"
BACKENDS = ["lmdb", "hdf5", "png_dir"]


def open_table(path, backend, shards, threads=1):
    con = imgstore.load(sqlite3.connect(":memory:", isolation_level=None))
    sharding = f", shards={shards}" if shards else ""
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', shape='{SHAPE}', threads={threads}{sharding})")
    return con


def rows_of(con, sql="SELECT id, label, pixels FROM temp.t"):
    return {i: (l, bytes(p)) for i, l, p in con.execute(sql)}


def read_as_versions(rows, versions):
    """The rows a scan read that match none of the states the table held while it was open."""
    return [(i, l) for i, l, p in rows if (l, None if p is None else bytes(p)) not in
            [(v[i][0], v[i][1] if p is not None else None) for v in versions if i in v]]


@pytest.fixture(params=[(b, s) for b in BACKENDS for s in (None, 4)], ids=lambda p: f"{p[0]}-{p[1] or 1}")
def table(request, tmp_path):
    backend, shards = request.param
    return str(tmp_path / f"t.{backend}"), backend, shards


def test_a_scan_reads_on_across_savepoint_writes(table):
    path, backend, shards = table
    con = open_table(path, backend, shards)
    con.execute(f"INSERT INTO t SELECT * FROM synthetic(1500, '{SHAPE}', 1)")
    con.execute("DELETE FROM t WHERE id % 2 = 1")
    con.execute("SAVEPOINT s")
    con.execute("UPDATE t SET label = label + 1 WHERE id % 3 = 0")
    versions = [rows_of(con)]
    scan = con.execute("SELECT id, label, CASE WHEN id > 700 THEN pixels END FROM t")
    con.execute(f"INSERT INTO t SELECT id + 2559, label, pixels FROM synthetic(50, '{SHAPE}', 1)")
    versions.append(rows_of(con))
    read = scan.fetchmany(426)
    con.execute("DELETE FROM t WHERE id % 3 = 1")
    versions.append(rows_of(con))
    con.execute("UPDATE t SET label = label + 1 WHERE id % 2 = 0")
    versions.append(rows_of(con))
    read += scan.fetchall()
    assert read_as_versions(read, versions) == []
    ids = [r[0] for r in read]
    assert ids == sorted(set(ids)), "ids in order, none twice"
    # Every id of the table from the start to the end, not deleted on the way, was read.
    assert set(versions[0]) & set(versions[-1]) <= set(ids)
    con.execute("RELEASE s")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == len(versions[-1])
    con.close()
    check = imgstore.load(sqlite3.connect(":memory:"))
    assert check.execute("SELECT imgstore_check(?, ?, 1)", (backend, path)).fetchone()[0] == "ok"


def test_a_scan_reads_on_across_replacements_in_a_savepoint(table):
    path, backend, shards = table
    con = open_table(path, backend, shards)
    con.execute(f"INSERT INTO t SELECT * FROM synthetic(1500, '{SHAPE}', 1)")
    versions = [rows_of(con, "SELECT id, label, pixels FROM t WHERE id > 200")]
    scan = con.execute("SELECT id, label, pixels FROM t WHERE id > 200")
    con.execute("INSERT INTO t VALUES (5000, 0, zeroblob(192))")  # committed on its own
    versions.append(rows_of(con, "SELECT id, label, pixels FROM t WHERE id > 200"))
    read = scan.fetchmany(163)
    con.execute("SAVEPOINT s")
    con.execute("DELETE FROM t WHERE id % 3 = 1")
    con.execute(f"INSERT OR REPLACE INTO t SELECT id + 486, label + 5, pixels FROM synthetic(30, '{SHAPE}', 6)")
    versions.append(rows_of(con, "SELECT id, label, pixels FROM t WHERE id > 200"))
    read += scan.fetchall()
    assert read_as_versions(read, versions) == []
    con.execute("RELEASE s")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == len(rows_of(con))
    con.close()
    check = imgstore.load(sqlite3.connect(":memory:"))
    assert check.execute("SELECT imgstore_check(?, ?, 1)", (backend, path)).fetchone()[0] == "ok"


def test_a_commit_does_not_wait_for_the_connections_own_scan(table):
    path, backend, shards = table
    con = open_table(path, backend, shards, threads=2)
    con.execute(f"INSERT INTO t SELECT * FROM synthetic(600, '{SHAPE}', 1)")
    con.execute("DROP TABLE temp.t")
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', timeout=200)")
    scan = con.execute("SELECT id, label, pixels FROM t")
    first = scan.fetchmany(100)
    con.execute("BEGIN")
    con.execute("UPDATE t SET label = 7 WHERE id = 450")
    con.execute("DELETE FROM t WHERE id = 451")
    con.execute("COMMIT")  # not BUSY: the scan is this connection's own
    rest = scan.fetchall()
    ids = [r[0] for r in first + rest]
    assert ids == [i for i in range(600) if i != 451]
    assert dict((i, l) for i, l, _ in rest)[450] == 7
    assert con.execute("SELECT label FROM t WHERE id = 450").fetchone() == (7,)
    if shards:
        with open(os.path.join(path, "manifest.json")) as f:
            assert "undo" not in json.load(f)
        assert not os.path.exists(os.path.join(path, "undo.journal"))


@pytest.mark.parametrize("end", ["COMMIT", "ROLLBACK"])
def test_a_scan_opened_in_a_transaction_reads_on_after_it_ends(table, end):
    path, backend, shards = table
    con = open_table(path, backend, shards, threads=2)
    con.execute(f"INSERT INTO t SELECT * FROM synthetic(500, '{SHAPE}', 1)")
    con.execute(f"CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label, pixels)")
    con.execute(f"INSERT INTO n SELECT * FROM synthetic(500, '{SHAPE}', 1)")
    got = {}
    for name in ("n", "t"):  # the native table is the oracle
        con.execute("BEGIN")
        con.execute(f"UPDATE {name} SET label = 99 WHERE id = 400")
        con.execute(f"INSERT INTO {name} VALUES (1000, 1, zeroblob(192))")
        scan = con.execute(f"SELECT id, label FROM {name}")
        first = scan.fetchmany(10)
        con.execute(end)
        got[name] = first + scan.fetchall()
    assert got["t"] == got["n"]
    assert len(got["t"]) == (501 if end == "COMMIT" else 500)


def test_a_row_deleted_within_its_own_step_reads_as_null(table):
    """A function of the query that deletes the row the query stands on: the native table reads that row's
    columns as NULL (its id stays) and goes on; so does the store, for a scan and for an id list."""
    path, backend, shards = table
    con = open_table(path, backend, shards)
    con.execute("CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB)")
    for name in ("t", "n"):
        con.execute(f"INSERT INTO {name} SELECT * FROM synthetic(20, '{SHAPE}', 1)")
    con.create_function("drop_row", 2, lambda name, i: con.execute(f"DELETE FROM {name} WHERE id = ?", (i,)).rowcount)
    for where in ("id < 3", "id IN (4, 5, 6)", "id >= 17"):
        want = con.execute(f"SELECT id, drop_row('n', id), label, pixels FROM n WHERE {where}").fetchall()
        got = con.execute(f"SELECT id, drop_row('t', id), label, pixels FROM t WHERE {where}").fetchall()
        assert got == want
        assert [r[2] for r in got] == [None] * len(got)
    assert rows_of(con) == rows_of(con, "SELECT id, label, pixels FROM n")
