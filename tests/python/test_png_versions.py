"""png_dir's old files for the statements reading (.old/<generation>/), at their edges: a version 1 store, a
file that cannot be opened, a file system without hard links, PNGs that are symbolic links, commits that only
relabel, a damaged or lost .old/generation (docs/formats.md). Each case once failed on the first build of
.old/ (an adversarial review)."""

import fcntl
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap

import pytest

import imgstore

SHAPE = "8x8x3"
ALL = "SELECT id, label, pixels FROM temp.t"


def table(path, threads=1, shape=SHAPE):
    con = imgstore.load(sqlite3.connect(":memory:", isolation_level=None))
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', shape='{shape}', threads={threads}, timeout=300)")
    return con


def replace_all(con):
    con.execute(f"INSERT OR REPLACE INTO temp.t SELECT id, label + 1, pixels FROM synthetic(10, '{SHAPE}', 7)")


def half_read(path):
    """A store of 10 rows, its rows, a writer, and a scan of another connection that has read 3 of them."""
    writer = table(path)
    writer.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(10, '{SHAPE}', 1)")
    before = writer.execute(ALL).fetchall()
    reader = table(path)
    scan = reader.execute(ALL)
    return writer, before, reader, scan, scan.fetchmany(3)


def version_1_store(tmp_path):
    """A store of 10 rows as an earlier build left it: .imgstore says version 1."""
    path = str(tmp_path / "t")
    con = table(path)
    con.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(10, '{SHAPE}', 1)")
    con.close()
    with open(os.path.join(path, ".imgstore"), "r+") as f:
        text = f.read()
        f.seek(0)
        f.write(text.replace("imgstore-png_dir 2", "imgstore-png_dir 1"))
    return path


def byte_locked(path, byte):
    """Can another program take `byte` of .imgstore exclusively now? (F_OFD_SETLK, released at once)"""
    fd = os.open(os.path.join(path, ".imgstore"), os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, byte, 1, 0))
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def test_on_a_version_1_store_a_statement_holds_the_reader_lock(tmp_path):
    # An earlier build's writer keeps no old files: it only waits for byte 1, so this build's statements hold it
    # on a version 1 store, until this build's first write marks the store version 2.
    path = version_1_store(tmp_path)
    reader = table(path)
    scan = reader.execute(ALL)
    scan.fetchmany(3)
    assert byte_locked(path, 1)  # an earlier build's commit would wait for it
    del scan
    assert not byte_locked(path, 1)
    writer = table(path)
    replace_all(writer)  # marks it version 2
    assert open(os.path.join(path, ".imgstore")).readline() == "imgstore-png_dir 2\n"
    scan = writer.execute(ALL)
    scan.fetchmany(3)
    assert not byte_locked(path, 1)  # a version 2 store: the statement holds only its generation


def test_a_kept_file_that_cannot_be_opened_is_an_error_not_a_newer_image(tmp_path):
    path = str(tmp_path / "t")
    writer, before, reader, scan, rows = half_read(path)
    replace_all(writer)
    # Every descriptor but one in use: <id>.png takes it, and .old/1/<id>.png cannot be opened (EMFILE).
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        os.close(held.pop())
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"table t: cannot open '.*/\.old/1/\d\.png': Too many open files"):
            rows += scan.fetchall()
    finally:
        for fd in held:
            os.close(fd)
    assert reader.execute(ALL).fetchall() != before  # a new statement: the commit (nothing was read wrong)


NO_LINK = r"""
#define _GNU_SOURCE
#include <errno.h>
int link(const char* a, const char* b) { (void)a; (void)b; errno = EPERM; return -1; }
int linkat(int d1, const char* a, int d2, const char* b, int f) { (void)d1; (void)a; (void)d2; (void)b; (void)f; errno = EPERM; return -1; }
"""

NO_LINK_RUN = """
import os, sqlite3, sys
sys.path.insert(0, {python!r})
import imgstore
def table():
    con = imgstore.load(sqlite3.connect(':memory:', isolation_level=None))
    con.execute("CREATE VIRTUAL TABLE temp.t USING png_dir(path='{path}', shape='8x8x3', threads=1)")
    return con
writer, reader = table(), table()
writer.execute("INSERT INTO temp.t SELECT * FROM synthetic(10, '8x8x3', 1)")
before = writer.execute("SELECT * FROM temp.t").fetchall()
scan = reader.execute("SELECT * FROM temp.t")
rows = scan.fetchmany(3)
writer.execute("INSERT OR REPLACE INTO temp.t SELECT id, label + 1, pixels FROM synthetic(10, '8x8x3', 7)")
writer.execute("DELETE FROM temp.t WHERE id = 9")
rows += scan.fetchall()
assert rows == before, "the scan read another state"
assert len(writer.execute("SELECT * FROM temp.t").fetchall()) == 9
writer.execute("INSERT INTO temp.t SELECT id + 100, label, pixels FROM synthetic(1, '8x8x3', 1)")  # no reader: no copy
print(writer.execute("SELECT imgstore_check('png_dir', '{path}', 1)").fetchone()[0])
"""


def test_without_hard_links_the_old_files_are_copied(tmp_path):
    # vfat, exFAT, CIFS without unix extensions: link() fails with EPERM; a shim makes it so here (after any
    # preload already there: the sanitizer run's ASan runtime must stay first).
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler for the shim")
    (tmp_path / "no_link.c").write_text(NO_LINK)
    shim = str(tmp_path / "no_link.so")
    subprocess.run([cc, "-shared", "-fPIC", "-o", shim, str(tmp_path / "no_link.c")], check=True)
    path = str(tmp_path / "t")
    python = os.path.dirname(os.path.dirname(imgstore.__file__))
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), shim]))
    run = subprocess.run([sys.executable, "-c", NO_LINK_RUN.format(python=python, path=path)], capture_output=True,
                         text=True, env=dict(os.environ, LD_PRELOAD=preload))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    assert not [k for k in os.listdir(os.path.join(path, ".old")) if k.isdigit()]  # removed at the last commit


def test_pngs_that_are_symbolic_links_keep_their_images(tmp_path):
    # A folder of relative symbolic links to PNGs elsewhere (a user's dataset, deduplicated): the old file kept
    # for a reader is the image, not a link that would not resolve from .old/.
    src = tmp_path / "src"
    made = table(str(src))
    made.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(10, '{SHAPE}', 1)")
    made.close()
    path = tmp_path / "t"
    path.mkdir()
    for i in range(10):
        os.symlink(f"../src/{i}.png", path / f"{i}.png")
    shutil.copy(src / "labels.csv", path / "labels.csv")
    shutil.copy(src / ".imgstore", path / ".imgstore")  # (without it, readers take no lock: docs/formats.md)
    writer = table(str(path))
    before = writer.execute(ALL).fetchall()
    reader = table(str(path))
    scan = reader.execute(ALL)
    rows = scan.fetchmany(3)
    replace_all(writer)
    writer.execute("DELETE FROM temp.t WHERE id = 9")
    rows += scan.fetchall()
    assert rows == before
    assert [r[0] for r in writer.execute(ALL)] == list(range(9))


def test_a_commit_that_only_relabels_keeps_nothing(tmp_path):
    path = str(tmp_path / "t")
    writer, before, reader, scan, rows = half_read(path)
    for k in range(20):
        writer.execute("UPDATE temp.t SET label = ? WHERE id % 2 = 0", [k])
    assert not os.path.exists(os.path.join(path, ".old"))  # no file changed: no generation, nothing kept
    rows += scan.fetchall()
    assert rows == before


def test_a_damaged_or_lost_generation_file_is_reported_and_repaired(tmp_path):
    path = str(tmp_path / "t")
    writer, _, reader, scan, _ = half_read(path)
    replace_all(writer)  # generation 1, kept for the scan
    after = writer.execute(ALL).fetchall()
    del scan
    generation = os.path.join(path, ".old", "generation")
    with open(generation, "w") as f:
        f.write("1\nx\x00garbage")
    with pytest.raises(sqlite3.DatabaseError, match=r"table t: '.*/\.old/generation' is damaged \(11 bytes\); "
                                                    r"expected a generation number below 2\^62 and a line end"):
        reader.execute(ALL).fetchall()
    os.mkdir(os.path.join(path, ".old", "18446744073709551615"))  # a damaged folder name too: removed, not counted to
    con = table(path)
    assert con.execute(f"SELECT imgstore_repair('png_dir', '{path}')").fetchone()[0] == "ok"
    assert os.listdir(os.path.join(path, ".old")) == ["generation"]
    assert open(os.path.join(path, ".old", "generation")).read() == "0\n"  # every folder gone: counted from 0
    assert reader.execute(ALL).fetchall() == after
    assert reader.execute("SELECT count(*) FROM temp.t").fetchone()[0] == 10


def test_a_lost_generation_file_beside_kept_files_is_reported_and_repaired(tmp_path):
    path = str(tmp_path / "t")
    writer, _, reader, scan, _ = half_read(path)
    replace_all(writer)  # generation 1: .old/1 kept for the scan
    after = writer.execute(ALL).fetchall()
    os.unlink(os.path.join(path, ".old", "generation"))
    # A statement would take .old/1's files for its own state's: refused instead.
    with pytest.raises(sqlite3.DatabaseError, match=r"generation' is missing while '.*/\.old' is there; "
                                                    r"imgstore_repair\(\) rebuilds it once no statement reads the store"):
        writer.execute(ALL).fetchall()
    con = table(path)
    # Not while the scan (generation 0) still reads: its files are there.
    assert "is missing while" in con.execute(f"SELECT imgstore_repair('png_dir', '{path}')").fetchone()[0]
    del scan
    assert con.execute(f"SELECT imgstore_repair('png_dir', '{path}')").fetchone()[0] == "ok"
    assert writer.execute(ALL).fetchall() == after
    assert con.execute(f"SELECT imgstore_check('png_dir', '{path}', 1)").fetchone()[0] == "ok"


def test_a_generation_file_lost_after_some_commits_is_refused(tmp_path):
    # The count would start again from 0 and meet folders kept by earlier commits (.old/2 here, .old/1 pruned).
    path = str(tmp_path / "t")
    writer, _, reader, scan, _ = half_read(path)
    replace_all(writer)  # generation 1, kept for the scan
    second = table(path)
    later = second.execute(ALL)
    later.fetchmany(3)  # generation 1
    scan.fetchall()
    writer.execute("DELETE FROM temp.t WHERE id = 6")  # generation 2: .old/2 kept for `later`, .old/1 pruned
    os.unlink(os.path.join(path, ".old", "generation"))
    with pytest.raises(sqlite3.DatabaseError, match=r"generation' is missing while '.*/\.old' is there; "
                                                    r"imgstore_repair\(\) rebuilds it once no statement reads the store"):
        reader.execute(ALL).fetchall()
    with pytest.raises(sqlite3.DatabaseError, match="is missing while"):
        writer.execute("DELETE FROM temp.t WHERE id = 7")
    later.fetchall()


def test_a_statement_holds_no_reader_lock_once_another_connection_marked_the_store_version_2(tmp_path):
    path = version_1_store(tmp_path)
    reader, writer = table(path), table(path)  # both open it as version 1
    replace_all(writer)  # marks it version 2
    scan = reader.execute(ALL)
    scan.fetchmany(3)
    assert not byte_locked(path, 1)
    replace_all(writer)  # does not wait for the scan


def test_a_directory_of_another_tool_isolates_statements_before_its_first_write(tmp_path):
    # No .imgstore yet (a folder of PNGs and labels.csv from another tool): a statement holds the directory
    # shared, and the first writer waits for it, since a commit cannot keep files for statements without a
    # generation.
    path = str(tmp_path / "t")
    made = table(path)
    made.execute(f"INSERT INTO temp.t SELECT * FROM synthetic(10, '{SHAPE}', 1)")
    made.close()
    os.unlink(os.path.join(path, ".imgstore"))
    reader = table(path)
    before = reader.execute(ALL).fetchall()
    scan = reader.execute(ALL)
    rows = scan.fetchmany(3)
    writer = table(path)
    with pytest.raises(sqlite3.OperationalError, match="is being written by another connection or process"):
        replace_all(writer)
    rows += scan.fetchall()
    assert rows == before
    replace_all(writer)  # the statement has ended: the first write makes .imgstore
    assert os.path.exists(os.path.join(path, ".imgstore"))
    scan = reader.execute(ALL)
    rows = scan.fetchmany(3)
    after = writer.execute(ALL).fetchall()
    writer.execute("DELETE FROM temp.t WHERE id = 9")  # from now on commits do not wait
    assert rows + scan.fetchall() == after
