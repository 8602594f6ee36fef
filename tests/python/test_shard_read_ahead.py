"""A sharded table's scan with threads=2 reads its shards ahead on worker threads (shard_read_ahead.hpp): the rows,
their order and their errors are those of threads=1, and a scan still open when the same connection writes goes
on reading (the writes pause the read-ahead)."""

import os
import signal
import sqlite3
import time

import pytest

import imgstore
from conftest import BACKENDS

SHAPE = "8x6x3"


def connect():
    return imgstore.load(sqlite3.connect(":memory:", isolation_level=None))


def open_table(path, backend, threads):
    con = connect()
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', threads={threads})")
    return con


@pytest.fixture(params=BACKENDS)
def table(request, tmp_path):
    backend = request.param
    path = str(tmp_path / "t")
    con = connect()
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', shape='{SHAPE}', shards=5, threads=1)")
    con.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(3000, '{SHAPE}', 7)")
    con.execute("CREATE TABLE ref AS SELECT * FROM synthetic(3000, ?, 7)", (SHAPE,))
    ref = con.execute("SELECT id, label, pixels FROM ref ORDER BY id").fetchall()
    con.close()
    return backend, path, ref


def test_threads_2_scan_is_the_threads_1_scan(table):
    backend, path, ref = table
    for threads in (1, 2):
        con = open_table(path, backend, threads)
        assert con.execute("SELECT id, label, pixels FROM temp.t").fetchall() == ref
        # Only ids and labels: no pixels read, ahead or not; a range; a scan stopped early.
        assert con.execute("SELECT id, label FROM temp.t").fetchall() == [(i, l) for i, l, _ in ref]
        assert con.execute("SELECT id, pixels FROM temp.t WHERE id BETWEEN 1000 AND 1499").fetchall() == [
            (i, p) for i, _, p in ref[1000:1500]]
        assert con.execute("SELECT id, pixels FROM temp.t LIMIT 7").fetchall() == [(i, p) for i, _, p in ref[:7]]
        con.close()


def test_a_scan_open_while_the_connection_writes_goes_on(table):
    backend, path, ref = table
    con = open_table(path, backend, 2)
    scan = con.execute("SELECT id, label, pixels FROM temp.t")
    seen = scan.fetchmany(700)
    # Writes on the same connection while the scan is open and reading ahead: an autocommit insert of new ids
    # and a transaction that relabels rows the scan has passed.
    con.execute(f"INSERT INTO temp.t SELECT id + 10000, label, pixels FROM synthetic(300, '{SHAPE}', 8)")
    relabelled = 0
    if backend != "png_dir":  # (a png_dir commit that changes rows waits for its readers: this scan)
        con.execute("BEGIN")
        con.execute("UPDATE temp.t SET label = label + 100 WHERE id < 100")
        con.execute("COMMIT")
        relabelled = 100
    seen += scan.fetchall()
    ids = [row[0] for row in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    by_id = {i: (l, p) for i, l, p in ref}
    assert [row for row in seen if row[0] < 3000] == ref  # every row it had, as it was
    new = dict((i, (l, p)) for i, l, p in con.execute(
        f"SELECT id + 10000, label, pixels FROM synthetic(300, '{SHAPE}', 8)").fetchall())
    assert all(new[i] == (l, p) for i, l, p in seen if i >= 3000)  # any new row it saw, whole
    assert con.execute("SELECT count(*), sum(label >= 100) FROM temp.t").fetchone() == (3300, relabelled)
    assert by_id  # (the reference was read)
    con.close()


def test_a_missing_png_read_ahead_fails_at_its_row(tmp_path):
    path = str(tmp_path / "t")
    con = connect()
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', shape='{SHAPE}', shards=4)")
    con.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(2000, '{SHAPE}', 3)")
    con.close()
    victim = 1001  # shard 1 (id mod 4)
    shard = [d for d in sorted(os.listdir(path)) if d.startswith("shard-001")][0]
    os.remove(os.path.join(path, shard, f"{victim}.png"))
    errors = []
    for threads in (1, 2):
        con = open_table(path, "png_dir", threads)
        scan = con.execute("SELECT id, length(pixels) FROM temp.t")
        rows = []
        with pytest.raises(sqlite3.DatabaseError) as failure:
            for row in scan:
                rows.append(row)
        # Every row before it (Python's sqlite3 steps to the next row before handing out one: the last row
        # before the failing one may go with the error), then the error at it.
        assert [r[0] for r in rows] == list(range(len(rows))) and len(rows) >= victim - 1
        errors.append(str(failure.value))
        # Rows that do not need it still read; labels need no file.
        assert con.execute("SELECT count(*) FROM temp.t WHERE id > 1001").fetchone()[0] == 998
        assert con.execute("SELECT count(label) FROM temp.t").fetchone()[0] == 2000
        con.close()
    assert errors[0] == errors[1]
    assert f"{victim}.png' is missing; labels.csv lists id {victim}" in errors[1]


@pytest.mark.parametrize("finish", ["read on", "drop"])
def test_a_forked_child_with_a_scan_reading_ahead(table, finish):
    """A child forked while a statement reads ahead (a DataLoader worker given the parent's open statement): it
    reads the rest of it by itself, or drops it, and never waits for the parent's worker threads."""
    backend, path, ref = table
    con = open_table(path, backend, 2)
    scan = con.execute("SELECT id, label, pixels FROM temp.t")
    first = scan.fetchmany(500)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            if finish == "read on":
                code = 0 if first + scan.fetchall() == ref else 4
            else:
                del scan
                con.close()
                code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on the inherited scan")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    assert first + scan.fetchall() == ref  # the parent reads on too
    con.close()
