"""The Python package's tests: imgstore from python/ (the source tree), the extension from $IMGSTORE_EXTENSION
(ctest passes the built one) or the project's build/imgstore.so."""

import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import imgstore  # noqa: E402

BACKENDS = ["lmdb", "hdf5", "png_dir"]
SUFFIX = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}


def make_store(path, backend, n, shape="8x6x3", seed=1, kind="noise"):
    """A store of n synthetic images with ids 0..n-1, written by the extension itself."""
    conn = imgstore.load(sqlite3.connect(":memory:"))
    conn.execute(f"CREATE VIRTUAL TABLE temp.t USING imgstore(backend='{backend}', path='{path}', shape='{shape}')")
    conn.execute(f"INSERT INTO temp.t SELECT id, label, pixels FROM synthetic({n}, '{shape}', {seed}, '{kind}')")
    conn.commit()
    digest = conn.execute("SELECT image_digest(id, label, pixels) FROM temp.t").fetchone()[0]
    conn.close()
    return digest


def make_sharded(path, backend, n, shards, shape="8x6x3", seed=4):
    """A sharded table of n synthetic images (ids 0..n-1) as temp.t of an open connection, committed."""
    conn = imgstore.load(sqlite3.connect(":memory:"))
    conn.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', shape='{shape}', shards={shards})")
    conn.execute(f"INSERT INTO temp.t SELECT id, label, pixels FROM synthetic({n}, '{shape}', {seed})")
    conn.commit()
    return conn


def digest_of(ids, labels, images):
    """image_digest() of (id, label, pixels) rows, computed by the extension."""
    conn = imgstore.load(sqlite3.connect(":memory:"))
    rows = [(int(i), int(l), bytes(memoryview(img).cast("B"))) for i, l, img in zip(ids, labels, images)]
    conn.execute("CREATE TABLE r(id INTEGER, label INTEGER, pixels BLOB)")
    conn.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
    digest = conn.execute("SELECT image_digest(id, label, pixels) FROM r").fetchone()[0]
    conn.close()
    return digest


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def store_path(tmp_path, backend):
    return str(tmp_path / SUFFIX[backend])
