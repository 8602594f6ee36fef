"""An hdf5 store of shape 'any' read with plain h5py by docs/formats.md's recipe, and its checksums: a flipped
byte in /shapes or in /images makes the read fail with a checksum error, never serve the bytes."""

import sqlite3
import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest
import xxhash

import imgstore
from conftest import ROOT

# Every channel count, 1x1x1 up to 300x200x3.
SHAPES = [(1, 1, 1), (300, 200, 3), (2, 3, 2), (5, 7, 4), (32, 32, 3), (28, 28, 1), (17, 9, 2), (64, 48, 4),
          (1, 1, 4), (3, 1, 3)]


def images(seed=3):
    rng = np.random.default_rng(seed)
    out = {}
    for i, shape in enumerate(SHAPES):
        out[i] = (i % 10, rng.integers(0, 256, size=shape, dtype=np.uint8))
    for i in range(len(SHAPES), 60):
        shape = tuple(int(x) for x in rng.integers(1, 20, size=2)) + (int(rng.integers(1, 5)),)
        out[i] = (i % 10, rng.integers(0, 256, size=shape, dtype=np.uint8))
    return out


def connect():
    return imgstore.load(sqlite3.connect(":memory:", isolation_level=None))


def make(path, rows, *extra):
    conn = connect()
    conn.execute(f"CREATE VIRTUAL TABLE temp.h USING hdf5(path='{path}', shape='any'{''.join(extra)})")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO temp.h(id, label, pixels, height, width, channels) VALUES (?, ?, ?, ?, ?, ?)",
                     [(i, label, img.tobytes(), *img.shape) for i, (label, img) in rows.items()])
    conn.execute("COMMIT")
    return conn


def table(conn):
    """The table as {id: (label, HxWxC array)}, through SQL."""
    return {i: (label, np.frombuffer(px, np.uint8).reshape(h, w, c))
            for i, label, px, h, w, c in conn.execute("SELECT id, label, pixels, height, width, channels FROM temp.h")}


def read_with_h5py(path):
    """docs/formats.md's recipe: one committed state, live rows only, each image by its offset and shape; and
    each checksum as documented (the shape's term included)."""
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        n = int(f["commit"][1])
        ids, labels, offsets, shapes = f["ids"][:n], f["labels"][:n], f["offsets"][:n], f["shapes"][:n]
        checksums = f["checksums"][:n]
        out = {}
        for i in np.nonzero(ids >= 0)[0]:
            o = int(offsets[i])
            h, w, c = (int(x) for x in shapes[i])
            image = f["images"][o:o + h * w * c].reshape(h, w, c)
            id_, label = int(ids[i]), int(labels[i])
            assert (xxhash.xxh3_64_intdigest(image.tobytes(), seed=id_) ^
                    xxhash.xxh3_64_intdigest(struct.pack("<qq", id_, label)) ^
                    xxhash.xxh3_64_intdigest(struct.pack("<III", h, w, c))) == int(checksums[i])
            out[id_] = (label, image)
        return out


def same(a, b):
    return a.keys() == b.keys() and all(a[k][0] == b[k][0] and a[k][1].shape == b[k][1].shape and
                                        np.array_equal(a[k][1], b[k][1]) for k in a)


@pytest.mark.parametrize("extra", ["", ", compression='gzip:4', chunk=4096"])
def test_h5py_reads_the_documented_layout(tmp_path, extra):
    path = str(tmp_path / "any.h5")
    rows = images()
    conn = make(path, rows, extra)
    assert same(table(conn), rows)
    assert same(read_with_h5py(path), rows)
    # Changes leave tombstones and new rows at the end: the recipe reads the live ones, equal to the table.
    conn.execute("DELETE FROM temp.h WHERE id % 4 = 0")
    conn.execute("UPDATE temp.h SET label = label + 50 WHERE id % 5 = 1")
    big = np.arange(40 * 30 * 3, dtype=np.uint32).astype(np.uint8).reshape(40, 30, 3)
    conn.execute("INSERT OR REPLACE INTO temp.h(id, label, pixels, height, width, channels) VALUES (3, 9, ?, 40, 30, 3)",
                 (big.tobytes(),))
    assert same(read_with_h5py(path), table(conn))
    assert table(conn)[3][1].shape == (40, 30, 3)
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        assert f.attrs["shape"] == b"any" and f.attrs["imgstore_format"] == b"imgstore-hdf5 3"
        assert f["images"].ndim == 1 and f["images"].dtype == np.uint8
        assert f["offsets"].dtype == np.uint64 and f["shapes"].dtype == np.uint32 and f["shapes"].shape[1] == 3
        assert f["images"].compression == ("gzip" if "gzip" in extra else None)
    # After compaction the file holds exactly the live rows in id order, one image after another.
    conn.execute("SELECT imgstore_compact('hdf5', ?)", (path,)).fetchone()
    with h5py.File(path, "r") as f:
        ids, offsets, shapes = f["ids"][:], f["offsets"][:], f["shapes"][:]
        assert (np.diff(ids) > 0).all()
        ends = offsets + shapes.prod(axis=1)
        assert offsets[0] == 0 and (offsets[1:] == ends[:-1]).all() and ends[-1] == f["images"].shape[0]
        i = int(np.nonzero(ids == 3)[0][0])
        o = int(offsets[i])
        assert np.array_equal(f["images"][o:o + 40 * 30 * 3].reshape(40, 30, 3), big)
    assert same(read_with_h5py(path), table(conn))
    conn.close()


def flip(path, offset, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def chunk_offset(path, name, row, row_bytes):
    """The file offset of dataset `name`'s element `row` (row_bytes each; one chunk per 1,024 rows, unfiltered)."""
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        d = f[name]
        chunk = d.chunks[0]
        start = (row // chunk * chunk,) + (0,) * (d.ndim - 1)
        return d.id.get_chunk_info_by_coord(start).byte_offset + (row % chunk) * row_bytes


def read_in_new_process(path, sql):
    """Runs `sql` on a new table over `path` in a new process: (returncode, stdout, stderr)."""
    code = ("import sqlite3, sys; sys.path.insert(0, %r); import imgstore; "
            "c = imgstore.load(sqlite3.connect(':memory:')); "
            "c.execute(\"CREATE VIRTUAL TABLE temp.h USING hdf5(path='%s')\"); "
            "print(c.execute(%r).fetchall())") % (str(ROOT / "python"), path, sql)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("where", ["shapes", "images"])
def test_a_flipped_byte_fails_the_checksum(tmp_path, where):
    path = str(tmp_path / "any.h5")
    rows = images()
    make(path, rows).close()
    damaged = 3  # a 5x7x4 image, not the last row (whose entries also bound the store: see below)
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        row = int(np.nonzero(f["ids"][:] == damaged)[0][0])
        pixel_at = int(f["offsets"][row]) + 17
    if where == "shapes":
        flip(path, chunk_offset(path, "shapes", row, 12))  # height 5 -> 4: a sound shape, other bytes
    else:
        # /images is one chunk of 64 KiB after another: the chunk holding the byte, and the byte in it.
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            chunk = f["images"].chunks[0]
            info = f["images"].id.get_chunk_info_by_coord((pixel_at // chunk * chunk,))
        flip(path, info.byte_offset + pixel_at % chunk)
    rc, out, err = read_in_new_process(path, f"SELECT length(pixels) FROM h WHERE id = {damaged}")
    assert rc != 0 and f"image {damaged} in '{path}' is damaged: its checksum does not match" in err, err
    rc, out, err = read_in_new_process(path, "SELECT count(*), sum(length(pixels)) FROM h")
    assert rc != 0 and "its checksum does not match" in err, err
    # Every other image reads as it was written; imgstore_check lists the damaged one; verify=0 serves it.
    rc, out, err = read_in_new_process(path, f"SELECT count(*) FROM h WHERE id != {damaged} AND length(pixels) > 0")
    assert rc == 0 and out.strip() == f"[({len(rows) - 1},)]", err
    conn = connect()
    problems = conn.execute("SELECT imgstore_check('hdf5', ?, 1)", (path,)).fetchone()[0]
    assert f"image {damaged} (row {row}" in problems and "its checksum does not match" in problems, problems
    assert problems.count("image ") == 1, problems
    conn.execute(f"CREATE VIRTUAL TABLE temp.u USING hdf5(path='{path}', verify=0)")
    h, w, c, n = conn.execute(f"SELECT height, width, channels, length(pixels) FROM temp.u WHERE id = {damaged}").fetchone()
    assert (h, w, c) == ((4, 7, 4) if where == "shapes" else (5, 7, 4)) and n == h * w * c
    conn.close()


def test_damaged_last_row_entries_are_a_damaged_file(tmp_path):
    """The last row's /offsets and /shapes entries say where the committed pixels end: damaged so that they
    point past /images, the store does not open (as with a damaged /commit), naming the file."""
    path = str(tmp_path / "any.h5")
    rows = images()
    make(path, rows).close()
    flip(path, chunk_offset(path, "shapes", len(rows) - 1, 12) + 1, 0x40)  # height + 16384
    rc, out, err = read_in_new_process(path, "SELECT count(*) FROM h")
    assert rc != 0 and "the last one's pixels" in err and "(damaged file)" in err, err
