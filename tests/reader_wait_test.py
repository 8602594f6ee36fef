#!/usr/bin/env python3
"""Readers do not wait for a commit in progress (issue 23, item 7).

hdf5: a live writer (another process holding
the writer lock, an OFD lock on byte 0 of the .h5 file) is simulated mid-commit with h5py: /commit's generation
odd with the old row count and a row appended past it; then, once its journal is complete, committed rows
changed in place (a tombstone, a relabel). A reader's statement must return the previous committed state at
once (not after its timeout, not SQLITE_BUSY) in each phase of such a commit: no journal yet, a journal cut
short (being written), a complete journal with rows changed. Nothing is recovered while the writer lives: the
journal and the odd generation stay. Once it dies (lock free), another process's open rolls the commit back.

png_dir: a live writer (another process) holds the directory's flock (its transaction) and the record lock
(byte 2 of .imgstore) beside its commit record (COMMIT), as between its commit point and its tidying up. A
reader's statement reads the store at once, leaving COMMIT alone, instead of waiting for the writer's
transaction to end (the previous build waited `timeout` for the flock).

usage: reader_wait_test.py SQLITE3 EXTENSION hdf5|png_dir
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from harness import Checks, connect, shell

check = Checks()
TIMEOUT_MS = 3000  # a reader that waited for the commit would take this long, then fail
OLD = "1:10,2:20,3:30"

# Holds the writer lock (hdf5_format.hpp: kWriterLockByte) until killed, like a writer mid-commit.
HOLDER = r"""
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 1, 0))
print('locked', flush=True)
time.sleep(600)
"""

# Holds a png_dir writer's transaction lock (flock on the directory) and its record lock until killed.
PNG_WRITER = r"""
import fcntl, os, struct, sys, time
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(d, fcntl.LOCK_EX)
m = os.open(os.path.join(sys.argv[1], '.imgstore'), os.O_RDWR)
fcntl.fcntl(m, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 2, 1, 0))
print('locked', flush=True)
time.sleep(600)
"""


def journal_bytes(rows, entries):
    body = b"IMGJRNL1" + struct.pack("<QQ", rows, len(entries))
    for row, id_, label in entries:
        body += struct.pack("<Qqq", row, id_, label)
    return body + struct.pack("<I", zlib.crc32(body))


def h5py_run(code, path):
    """Runs `code` (f: the file opened in `mode`) in another process: HDF5 refuses to open a file twice in one
    process in different modes, and this one has it open through the extension."""
    run = subprocess.run([sys.executable, "-c", "import h5py, sys\n" + code, path], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr)
    return run.stdout


def begin_commit(path):
    """The writer's odd phase: /commit = [g + 1, old rows], a row appended past the count (as write_rows
    does). Returns (g, rows)."""
    out = h5py_run("""
with h5py.File(sys.argv[1], 'r+') as f:
    g, rows = (int(x) for x in f['commit'][:])
    f['commit'][0] = g + 1
    for name in ('ids', 'labels', 'images'):
        f[name].resize(rows + 1, axis=0)
    f['ids'][rows] = 4
    f['labels'][rows] = 40
print(g, rows)
""", path)
    g, rows = out.split()
    return int(g), int(rows)


def change_in_place(path):
    """After the journal: row 0 tombstoned, row 1 relabelled."""
    h5py_run("""
with h5py.File(sys.argv[1], 'r+') as f:
    f['ids'][0] = -1
    f['labels'][1] = 99
""", path)


def commit_word(path):
    out = h5py_run("""
with h5py.File(sys.argv[1], 'r', swmr=True, locking=False) as f:
    print(*(int(x) for x in f['commit'][:]))
""", path)
    return [int(x) for x in out.split()]


def timed_read(con):
    t0 = time.monotonic()
    try:
        got = con.execute("SELECT group_concat(id || ':' || label) FROM (SELECT id, label FROM t ORDER BY id)").fetchone()[0]
    except Exception as e:  # noqa: BLE001 (reported as a failed check)
        got = "error: %s" % e
    return got, time.monotonic() - t0


def store_with_reader(ext, backend, path, what):
    """A store of the rows OLD names, committed by one connection; another (the reader, returned) has read it."""
    setup = connect(ext)
    setup.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='2x2x1')" % (backend, path))
    setup.execute("INSERT INTO s VALUES (1, 10, x'01010101'), (2, 20, x'02020202'), (3, 30, x'03030303')")
    setup.close()
    reader = connect(ext)
    reader.execute("CREATE VIRTUAL TABLE temp.t USING %s(path='%s', timeout=%d)" % (backend, path, TIMEOUT_MS))
    check(timed_read(reader)[0] == OLD, what + ": the committed rows before the commit")
    return reader


def png_dir_case(ext, work):
    path = os.path.join(work, "store")
    reader = store_with_reader(ext, "png_dir", path, "png_dir")
    holder = subprocess.Popen([sys.executable, "-c", PNG_WRITER, path], stdout=subprocess.PIPE, text=True)
    record = os.path.join(path, "COMMIT")
    try:
        check(holder.stdout.readline().strip() == "locked", "png_dir: the writer's locks are held")
        open(record, "w").write("a record the live writer stands behind\n")
        got, took = timed_read(reader)
        check(got == OLD, "png_dir: a reader beside a live writer's commit record reads %r; expected %r" % (got, OLD))
        check(took < TIMEOUT_MS / 1000 / 3,
              "png_dir: the read took %.3f s; expected well under the %d ms timeout" % (took, TIMEOUT_MS))
        check(os.path.exists(record), "png_dir: a live writer's record is left alone")
        os.unlink(record)  # the writer's tidying up
    finally:
        holder.kill()
        holder.wait()
    check(timed_read(reader)[0] == OLD, "png_dir: the rows after the writer ended")
    reader.close()


def main():
    sqlite3_path, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="imgstore-reader-wait-")
    try:
        if sys.argv[3] == "png_dir":
            png_dir_case(ext, work)
            return check.summary()
        for phase in ("no journal yet", "journal cut short", "complete journal"):
            path = os.path.join(work, phase.replace(" ", "_") + ".h5")
            reader = store_with_reader(ext, "hdf5", path, phase)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE, text=True)
            try:
                check(holder.stdout.readline().strip() == "locked", phase + ": the writer lock is held")
                g, rows = begin_commit(path)
                journal = os.path.join(path + "-journal")
                full = journal_bytes(rows, [(0, 1, 10), (1, 2, 20)])
                if phase == "journal cut short":
                    open(journal, "wb").write(full[:len(full) - 7])
                elif phase == "complete journal":
                    open(journal, "wb").write(full)
                    change_in_place(path)
                got, took = timed_read(reader)
                want = OLD
                check(got == want, "%s: a reader during the commit reads %r; expected %r" % (phase, got, want))
                check(took < TIMEOUT_MS / 1000 / 3,
                      "%s: the read took %.3f s; expected well under the %d ms timeout" % (phase, took, TIMEOUT_MS))
                again, _ = timed_read(reader)
                check(again == want, "%s: a second statement reads %r; expected %r" % (phase, again, want))
                check(commit_word(path) == [g + 1, rows],
                      "%s: /commit stays [%d, %d] beside a live writer: %r" % (phase, g + 1, rows, commit_word(path)))
                check(os.path.exists(journal) == (phase != "no journal yet"),
                      phase + ": a live writer's journal is left alone")
            finally:
                holder.kill()
                holder.wait()
            # The writer is dead: another process's open recovers its commit (this process keeps its file open
            # and the state it read).
            late = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE t USING hdf5(path='%s');\n"
                         "SELECT group_concat(id || ':' || label) FROM (SELECT id, label FROM t ORDER BY id);" % path, work)
            check(late.stdout.strip() == OLD, "%s: after the writer died, the rolled back state: %r %r"
                  % (phase, late.stdout, late.stderr))
            check(commit_word(path) == [g + 2, rows] and not os.path.exists(path + "-journal"),
                  "%s: after the writer died, /commit is [%d, %d] and no journal: %r" % (phase, g + 2, rows, commit_word(path)))
            check(timed_read(reader)[0] == OLD, phase + ": the first reader reads the recovered state")
            reader.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
