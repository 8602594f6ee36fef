#!/usr/bin/env python3
"""Isolation across processes: one writer process commits batches of 500 rows (replacing the pixels and
labels of existing ids, deleting and inserting others) and logs `count|digest` after each COMMIT returns;
three reader processes scan the store in a loop (count and image_digest of every row): two through the
extension (opening the store again every 20 scans), one with the format's own tool as docs/formats.md tells a user
to (py-lmdb in a read transaction; Pillow reading labels.csv and the PNGs under a shared lock on .imgstore, or,
in turn, holding its generation and reading replaced and deleted images from .old/;
h5py opened with swmr=True, locking=False, reading /commit before and after /ids and /labels).
Every third commit only inserts new ids (png_dir appends them to labels.csv beside the readers).
Every observation must equal a committed state: a scan never sees a commit halfway or a state that was never
committed. Meanwhile a second writer (timeout=10) keeps trying to write and must only ever get SQLITE_BUSY.

With --any the stores are of shape 'any': every image cut to a size of its own (by its id), given with its
height, width and channels; every observation digests the shapes too, and the format's own tools read them as
docs/formats.md says (the lmdb value's shape header, each PNG's size and colour type, hdf5's /offsets and
/shapes).

usage: isolation_test.py SQLITE3 EXTENSION [BACKEND ...] [--seconds N] [--any]
"""

import fcntl
import io
import multiprocessing
import os
import struct
import shutil
import sqlite3
import sys
import tempfile
import time

from harness import connect, synthetic_images

SHAPE = "8x8x3"
ROWS = 1500
ANY = False  # --any: stores of shape 'any'
# The shapes digested as the labels of empty images.
SHAPES_DIGEST = " || '|' || image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))"


def images(n, seed):
    return synthetic_images(n, seed, SHAPE, ANY)


INTO = "s"
DIMS = ""
NEW_IDS = 100_000  # ids of the insert-only commits


def observe(con):
    return con.execute("SELECT count(*) || '|' || image_digest(id, label, pixels)%s FROM s" %
                       (SHAPES_DIGEST if ANY else "")).fetchone()[0]


def writer(ext, backend, path, seconds, log):
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
    deadline = time.time() + seconds
    batch = 0
    with open(log, "a") as out:
        while time.time() < deadline:
            batch += 1
            con.execute("BEGIN")
            if batch % 3 == 0:  # new ids only (png_dir: appended to labels.csv beside the readers)
                con.execute("INSERT INTO %s SELECT id + %d, label, pixels%s FROM (%s)"
                            % (INTO, NEW_IDS + 10 * batch, DIMS, images(10, batch)))
                con.execute("COMMIT")
                out.write(observe(con) + "\n")
                out.flush()
                continue
            con.execute("DELETE FROM s WHERE id >= %d" % NEW_IDS)
            con.execute("INSERT OR REPLACE INTO %s SELECT id, (label + %d) %% 10, pixels%s FROM (%s)"
                        % (INTO, batch, DIMS, images(500, 1000 + batch)))
            con.execute("DELETE FROM s WHERE id BETWEEN %d AND %d" % (500 + batch % 900, 500 + batch % 900 + 20))
            con.execute("INSERT OR REPLACE INTO %s SELECT id + 500 + %d, label, pixels%s FROM (%s)"
                        % (INTO, (batch + 450) % 900, DIMS, images(21, batch)))
            con.execute("COMMIT")
            out.write(observe(con) + "\n")
            out.flush()
    return batch


def reader(ext, backend, path, seconds, log):
    deadline = time.time() + seconds
    seen = []
    errors = []
    con = connect(ext)
    try:
        con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
    except sqlite3.Error as e:
        errors.append(str(e))
        deadline = 0
    while time.time() < deadline:
        try:
            seen.append(observe(con))
            if len(seen) % 20 == 0:  # and open the store again while the writer commits
                con.execute("DROP TABLE temp.s")
                con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s')" % (backend, path))
        except sqlite3.Error as e:
            errors.append(str(e))
    with open(log, "w") as out:
        out.write("\n".join(seen) + "\n")
        for e in errors:
            out.write("ERROR " + e + "\n")


def digest_of(ext, rows):
    """image_digest of (id, label, pixels) rows (--any: and height, width, channels) read without the extension
    (the digest is only a hash)."""
    con = connect(ext)
    if ANY:
        con.execute("CREATE TEMP TABLE r(id, label, pixels, height, width, channels)")
        con.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?)", rows)
        return con.execute("SELECT count(*) || '|' || image_digest(id, label, pixels)%s FROM r" % SHAPES_DIGEST).fetchone()[0]
    con.execute("CREATE TEMP TABLE r(id, label, pixels)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
    return con.execute("SELECT count(*) || '|' || image_digest(id, label, pixels) FROM r").fetchone()[0]


def lmdb_rows(path):
    """docs/formats.md's py-lmdb recipe: a read transaction is a snapshot, so a scan sees one commit (a value is the
    label, the checksum, the pixels)."""
    import lmdb
    env = lmdb.open(path, readonly=True)
    try:
        with env.begin() as txn:
            if ANY:  # the shape after the checksum: three little-endian uint32 and four zero bytes, then the pixels
                return [(struct.unpack(">q", k)[0], struct.unpack("<q", v[:8])[0], bytes(v[32:]),
                         *struct.unpack("<III", v[16:28])) for k, v in txn.cursor()]
            return [(struct.unpack(">q", k)[0], struct.unpack("<q", v[:8])[0], bytes(v[16:])) for k, v in txn.cursor()]
    finally:
        env.close()


def append_point(path):
    """The byte labels.csv is committed up to while a commit record that appends is there (docs/formats.md)."""
    try:
        with open(os.path.join(path, "COMMIT")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    return next((int(line.split()[2]) for line in lines if line.startswith("csv append ")), None)


def committed_labels(path):
    """labels.csv's committed lines, beside a commit appending to it: docs/formats.md's rule."""
    csv = os.path.join(path, "labels.csv")
    while True:
        cut = append_point(path)
        size = os.stat(csv).st_size
        with open(csv, "rb") as f:
            data = f.read()
        if cut is None:
            cut = append_point(path)
        if cut is not None:
            data = data[:cut]
        elif not (len(data) == size == os.stat(csv).st_size):
            continue  # it grew while we read it: a commit appended and finished meanwhile
        return [tuple(int(x) for x in line.split(",")) for line in data.decode().splitlines()[1:]]


def png_rows(labels, open_image, pause=0.0):
    from PIL import Image
    rows = []
    for n, (i, label) in enumerate(labels):
        if n == len(labels) // 2:
            time.sleep(pause)
        with open_image(i) as f:
            image = Image.open(io.BytesIO(f.read()))
            if ANY:  # each PNG its own size and colour type (L, LA, RGB, RGBA: 1 to 4 channels)
                rows.append((i, label, image.tobytes(), image.height, image.width, len(image.getbands())))
            else:
                rows.append((i, label, image.convert("RGB").tobytes()))
    return rows


def ofd_lock(fd, kind, byte):
    """docs/formats.md: open-file-description locks on one byte of .imgstore, waiting while a commit holds it."""
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack("hhqqi4x", kind, 0, byte, 1, 0))


def png_dir_rows(path):
    """docs/formats.md's recipe for other tools: a shared lock on byte 1 of .imgstore while reading (after passing
    the gate, byte 0), so a commit being applied is waited for; then labels.csv and the PNGs."""
    meta = os.open(os.path.join(path, ".imgstore"), os.O_RDONLY)
    try:
        ofd_lock(meta, fcntl.F_RDLCK, 0)
        ofd_lock(meta, fcntl.F_RDLCK, 1)
        ofd_lock(meta, fcntl.F_UNLCK, 0)
        return png_rows(committed_labels(path), lambda i: open(os.path.join(path, "%d.png" % i), "rb"))
    finally:
        os.close(meta)  # drops the locks


def png_dir_rows_versioned(path):
    """docs/formats.md's recipe for a reader that does not hold commits up: byte 1 only while it reads the
    generation and labels.csv, then a shared lock on byte 1024 + generation; each image opened, then looked for
    in .old/<k> for k after its generation."""
    meta = os.open(os.path.join(path, ".imgstore"), os.O_RDONLY)
    try:
        ofd_lock(meta, fcntl.F_RDLCK, 0)
        ofd_lock(meta, fcntl.F_RDLCK, 1)
        ofd_lock(meta, fcntl.F_UNLCK, 0)
        try:
            with open(os.path.join(path, ".old", "generation")) as f:
                g = int(f.read())
        except FileNotFoundError:
            g = 0
        labels = committed_labels(path)
        ofd_lock(meta, fcntl.F_RDLCK, 1024 + g)
        ofd_lock(meta, fcntl.F_UNLCK, 1)

        def image_file(i):
            try:
                f = open(os.path.join(path, "%d.png" % i), "rb")
            except FileNotFoundError:
                f = None
            k = g + 1
            while os.path.isdir(os.path.join(path, ".old", str(k))):
                try:
                    kept = open(os.path.join(path, ".old", str(k), "%d.png" % i), "rb")
                    if f is not None:
                        f.close()
                    return kept
                except FileNotFoundError:
                    k += 1
            if f is None:
                raise FileNotFoundError("%d.png is missing; labels.csv lists id %d" % (i, i))
            return f

        return png_rows(labels, image_file, pause=0.1)  # a slow reader: commits land while it reads
    finally:
        os.close(meta)


def open_beside_writer(h5py, path, seconds=5.0):
    """docs/formats.md's open: while a writer extends the file, its superblock records the new end before the
    file reaches it, and HDF5 refuses the open for that moment ("truncated file"); open again, as imgstore's own
    readers do (up to `timeout`)."""
    deadline = time.time() + seconds
    while True:
        try:
            return h5py.File(path, "r", swmr=True, locking=False)
        except OSError as e:
            if "truncated file" not in str(e) or time.time() > deadline:
                raise
            time.sleep(0.001)


class Hdf5Reader:
    """docs/formats.md's h5py recipe for a store that a writer may be changing (SWMR): the file opened with
    swmr=True, locking=False (kept open, opened again every 20 scans); /commit = [generation, rows] refreshed
    and read before and after /ids and /labels: the same even generation both times is one commit (an odd one
    is a commit changing rows in place). Committed pixels never change, so /images is read after."""

    def __init__(self):
        self.f = None
        self.scans = 0

    def __call__(self, path):
        import h5py
        import numpy as np
        if self.f is None or self.scans % 20 == 0:
            if self.f is not None:
                self.f.close()
            self.f = open_beside_writer(h5py, path)
        self.scans += 1
        f = self.f
        commit, ids_d, labels_d, images_d = f["commit"], f["ids"], f["labels"], f["images"]
        ragged = (f["offsets"], f["shapes"]) if ANY else ()
        while True:
            commit.refresh()
            generation, rows = (int(x) for x in commit[:])
            if generation % 2:
                time.sleep(0.001)
                continue
            for d in (ids_d, labels_d, images_d) + ragged:
                d.refresh()
            ids, labels = ids_d[:rows], labels_d[:rows]
            commit.refresh()
            if int(commit[0]) == generation:
                break
        live = np.nonzero(ids >= 0)[0]
        if ANY:  # /offsets and /shapes of committed rows never change: read after, as the pixels
            offsets, shapes = ragged[0][:rows], ragged[1][:rows]
            out = []
            for r in live[np.argsort(ids[live])]:
                o, (h, w, c) = int(offsets[r]), (int(x) for x in shapes[r])
                out.append((int(ids[r]), int(labels[r]), images_d[o:o + h * w * c].tobytes(), h, w, c))
            return out
        images = images_d[:rows] if rows else np.zeros((0,) + images_d.shape[1:], "u1")
        order = live[np.argsort(ids[live])]
        return [(int(ids[r]), int(labels[r]), images[r].tobytes()) for r in order]


def tool_reader(ext, backend, path, seconds, log):
    deadline = time.time() + seconds
    seen, errors = [], []
    read = {"lmdb": lmdb_rows, "png_dir": png_dir_rows}.get(backend) or Hdf5Reader()
    scans = 0
    while time.time() < deadline:
        try:
            scans += 1
            # png_dir: both recipes of docs/formats.md, in turn
            seen.append(digest_of(ext, (png_dir_rows_versioned if backend == "png_dir" and scans % 2 else read)(path)))
        except Exception as e:  # noqa: BLE001 - every failure is reported as a reader error
            errors.append("%s: %s" % (type(e).__name__, e))
    with open(log, "w") as out:
        out.write("\n".join(seen) + "\n")
        for e in errors:
            out.write("ERROR " + e + "\n")


def second_writer(ext, backend, path, seconds, log):
    """Tries to write again and again with a short timeout: every try must end in SQLITE_BUSY (it writes
    nothing even when it gets in: DELETE of no row, then ROLLBACK)."""
    deadline = time.time() + seconds
    busy, others, got_in = 0, [], 0
    con = connect(ext)
    # 10 ms: shorter than one of the writer's transactions on every backend (hdf5's take 50-60 ms, mostly
    # fsync), so that the contender is refused, not only let in between commits.
    # A busy error says who holds the store (another writer, or a commit being applied) and how long it waited.
    def is_busy(e):
        return "waited 10 ms, try again after it commits" in str(e) and (
            "is being written by another" in str(e) or "has a commit being applied" in str(e))
    while True:  # opening may meet a commit being applied too (hdf5: /commit's generation odd)
        try:
            con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s', timeout=10)" % (backend, path))
            break
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            busy += 1
    while time.time() < deadline:
        try:
            con.execute("BEGIN")
            con.execute("DELETE FROM s WHERE id = -1")
            got_in += 1
        except sqlite3.OperationalError as e:
            if is_busy(e):
                busy += 1
            else:
                others.append(str(e))
        finally:
            con.execute("ROLLBACK") if con.in_transaction else None
    with open(log, "w") as out:
        out.write("%d %d\n" % (busy, got_in))
        for e in others:
            out.write("ERROR " + e + "\n")


def run(ext, backend, seconds):
    work = tempfile.mkdtemp(prefix="imgstore-isolation-")
    path = os.path.join(work, {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s')" % (backend, path, "any" if ANY else SHAPE))
    con.execute("INSERT INTO %s %s" % (INTO, images(ROWS, 1)))
    committed_log = os.path.join(work, "committed.txt")
    with open(committed_log, "w") as out:
        out.write(observe(con) + "\n")
    con.close()
    readers = [multiprocessing.Process(target=reader if i < 2 else tool_reader,
                                       args=(ext, backend, path, seconds, os.path.join(work, "r%d.txt" % i)))
               for i in range(3)]
    contender = multiprocessing.Process(target=second_writer, args=(ext, backend, path, seconds, os.path.join(work, "w2.txt")))
    for r in readers + [contender]:
        r.start()
    batches = writer(ext, backend, path, seconds, committed_log)
    for r in readers + [contender]:
        r.join()
    committed = set(open(committed_log).read().split())
    observations, torn, errors = 0, [], []
    for i in range(3):
        for line in open(os.path.join(work, "r%d.txt" % i)).read().splitlines():
            if not line:
                continue
            if line.startswith("ERROR "):
                errors.append(line[6:])
                continue
            observations += 1
            if line not in committed:
                torn.append(line)
    tool_scans = sum(1 for line in open(os.path.join(work, "r2.txt")).read().splitlines() if line and not line.startswith("ERROR "))
    contender_lines = open(os.path.join(work, "w2.txt")).read().splitlines()
    busy, got_in = (int(x) for x in contender_lines[0].split())
    contender_errors = [line[6:] for line in contender_lines[1:] if line.startswith("ERROR ")]
    print("%s%s: %d commits, %d scans by 3 readers (%d by the format's own tool), %d saw an uncommitted state, "
          "%d reader errors; the second writer got SQLITE_BUSY %d times, got in between commits %d times, "
          "other errors %d" % (backend, " (shape 'any')" if ANY else "", batches, observations, tool_scans, len(torn), len(errors), busy, got_in,
                               len(contender_errors)))
    for e in sorted(set(errors + contender_errors))[:5]:
        print("  error: " + e)
    ok = not torn and not errors and observations > 0 and tool_scans > 0 and busy > 0 and not contender_errors
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return ok


def main():
    global ANY, INTO, DIMS
    args = sys.argv[1:]
    if "--any" in args:
        args.remove("--any")
        ANY, INTO, DIMS = True, "s(id, label, pixels, height, width, channels)", ", height, width, channels"
    seconds = 8.0
    if "--seconds" in args:
        i = args.index("--seconds")
        seconds = float(args[i + 1])
        del args[i:i + 2]
    ext = os.path.abspath(args[1])
    backends = args[2:] or ["lmdb", "png_dir", "hdf5"]
    results = [run(ext, b, seconds) for b in backends]
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
