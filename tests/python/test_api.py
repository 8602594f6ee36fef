"""imgstore.open and the Store API on every backend; the error paths; loading the extension."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgstore
from conftest import digest_of, make_sharded, make_store


def test_open_guesses_backend_and_reads(store_path, backend):
    digest = make_store(store_path, backend, 50)
    with imgstore.open(store_path) as s:
        assert s.backend == backend
        assert len(s) == 50 and s.shape == (8, 6, 3)
        assert s.ids().dtype == np.int64 and s.ids().tolist() == list(range(50))
        labels = s.labels()
        assert labels.dtype == np.int64 and labels.shape == (50,)
        images, all_labels = s.to_numpy()
        assert images.shape == (50, 8, 6, 3) and images.dtype == np.uint8
        assert (all_labels == labels).all()
        assert digest_of(s.ids(), labels, images) == digest


def test_guess_backend_of_every_lmdb_layout(tmp_path):
    """An lmdb store is a directory holding data.mdb (not a png_dir), an older one a single LMDB file; a sharded
    folder says its backend in manifest.json. Each opens without backend=."""
    make_store(tmp_path / "new.lmdb", "lmdb", 5)
    make_sharded(tmp_path / "sharded", "lmdb", 6, 2).close()
    make_store(tmp_path / "pngs", "png_dir", 3)
    fixture = Path(__file__).resolve().parents[1] / "lmdb_v1.py"
    subprocess.run([sys.executable, str(fixture), "make", str(tmp_path / "old.lmdb"), "8x6x3", "7"], check=True)
    for name, backend, n in (("new.lmdb", "lmdb", 5), ("sharded", "lmdb", 6), ("pngs", "png_dir", 3),
                             ("old.lmdb", "lmdb", 7)):
        assert imgstore.guess_backend(tmp_path / name) == backend
        with imgstore.open(tmp_path / name) as s:
            assert len(s) == n


def test_get_in_the_order_asked(store_path, backend):
    make_store(store_path, backend, 30)
    with imgstore.open(store_path, backend=backend) as s:
        images, _ = s.to_numpy()
        asked = [17, 3, 29, 3, 0]
        got = s.get(asked)
        assert got.shape == (5, 8, 6, 3) and got.dtype == np.uint8
        assert (got == images[asked]).all()
        labels, again = s.fetch(np.array(asked))
        assert (labels == s.labels()[asked]).all() and (again == got).all()
        assert s.get([]).shape == (0, 8, 6, 3)
        with pytest.raises(KeyError, match=r"\[99\]"):
            s.get([1, 99])


def test_get_is_one_query_with_in_pushdown(store_path, backend):
    make_store(store_path, backend, 10)
    with imgstore.open(store_path) as s:
        plan = s.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id, label, pixels FROM temp.store WHERE id IN (SELECT value FROM json_each(?))",
            ("[1,2]",)).fetchall()
        assert "INDEX 2:" in plan[0][3]  # the store's plan for id IN (...), all values at once


def test_batches_cover_every_id_once(store_path, backend):
    make_store(store_path, backend, 103)
    with imgstore.open(store_path) as s:
        images, labels = s.to_numpy()
        seen = []
        for ids, batch_labels, batch_images in s.batches(16, shuffle=True, seed=5, epoch=1):
            assert len(ids) <= 16
            assert (batch_labels == labels[ids]).all() and (batch_images == images[ids]).all()
            seen.extend(ids.tolist())
        assert sorted(seen) == list(range(103)) and seen != list(range(103))
        again = np.concatenate([ids for ids, _, _ in s.batches(16, seed=5, epoch=1)])
        other = np.concatenate([ids for ids, _, _ in s.batches(16, seed=5, epoch=2)])
        assert again.tolist() == seen and other.tolist() != seen
        in_order = np.concatenate([ids for ids, _, _ in s.batches(50, shuffle=False)])
        assert in_order.tolist() == list(range(103))


def test_append_one_transaction(store_path, backend):
    rng = np.random.default_rng(0)
    with imgstore.open(store_path, backend=backend, shape=(4, 5, 3)) as s:
        assert len(s) == 0
        first = rng.integers(0, 256, (20, 4, 5, 3), dtype=np.uint8)
        ids = s.append(first, np.arange(20) % 7)
        assert ids.tolist() == list(range(20))
        more = rng.integers(0, 256, (5, 4, 5, 3), dtype=np.uint8)
        assert s.append(more, [1, 2, 3, 4, 5], ids=[100, 90, 80, 70, 60]).tolist() == [100, 90, 80, 70, 60]
        assert s.append(more[:1], [9]).tolist() == [101]
        assert len(s) == 26
        assert (s.get([90, 0, 101]) == np.stack([more[1], first[0], more[0]])).all()
    with imgstore.open(store_path) as s:  # committed
        assert len(s) == 26 and s.labels()[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("images, labels, ids, message", [
    (np.zeros((2, 4, 5, 3), np.float32), [0, 1], None, "dtype float32; expected uint8"),
    (np.zeros((2, 5, 4, 3), np.uint8), [0, 1], None, r"shape \(2, 5, 4, 3\); expected \(N, 4, 5, 3\)"),
    (np.zeros((4, 5, 3), np.uint8), [0], None, r"expected \(N, 4, 5, 3\)"),
    (np.zeros((2, 4, 5, 3), np.uint8), [0, 1, 2], None, "expected 2 integers, one per image"),
    (np.zeros((2, 4, 5, 3), np.uint8), [0.5, 1], None, "dtype float64; expected 2 integers"),
    (np.zeros((2, 4, 5, 3), np.uint8), [0, 1], [7], "ids have shape"),
    (np.zeros((2, 4, 5, 3), np.uint8), [0, 1], [7, 7], "unique integers >= 0"),
    (np.zeros((2, 4, 5, 3), np.uint8), [0, 1], [-1, 3], "unique integers >= 0"),
])
def test_append_bad_input_writes_nothing(store_path, backend, images, labels, ids, message):
    with imgstore.open(store_path, backend=backend, shape=(4, 5, 3)) as s:
        s.append(np.ones((3, 4, 5, 3), np.uint8), [1, 2, 3])
        with pytest.raises(ValueError, match=message):
            s.append(images, labels, ids=ids)
        assert len(s) == 3


def test_append_existing_id_rolls_back_whole_batch(store_path, backend):
    with imgstore.open(store_path, backend=backend, shape=(4, 5, 3)) as s:
        s.append(np.ones((3, 4, 5, 3), np.uint8), [1, 2, 3])
        with pytest.raises(sqlite3.IntegrityError, match="id 2 already exists"):
            s.append(np.zeros((3, 4, 5, 3), np.uint8), [0, 0, 0], ids=[10, 11, 2])
        assert len(s) == 3 and s.ids().tolist() == [0, 1, 2]


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="give shape="):
        imgstore.open(tmp_path / "missing.lmdb")
    with pytest.raises(ValueError, match="expected one of lmdb, hdf5, png_dir"):
        imgstore.open(tmp_path / "x.lmdb", backend="zip", shape=(1, 1, 1))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot tell the backend"):
        imgstore.open(tmp_path / "notes.txt")
    make_store(str(tmp_path / "a.h5"), "hdf5", 3)
    with pytest.raises(sqlite3.Error, match="shape '2x2x1' disagrees"):
        imgstore.open(tmp_path / "a.h5", shape=(2, 2, 1))
    with pytest.raises(ValueError, match="batch_size 0"):
        with imgstore.open(tmp_path / "a.h5") as s:
            next(s.batches(0))


def test_sql_info_and_load(tmp_path):
    make_store(str(tmp_path / "i.lmdb"), "lmdb", 12, shape="3x2x1")
    conn = imgstore.load(sqlite3.connect(":memory:"))
    conn.execute(f"CREATE VIRTUAL TABLE temp.train USING lmdb(path='{tmp_path / 'i.lmdb'}')")
    row = conn.execute("SELECT backend, shape, height, width, channels, count FROM imgstore_info('train')").fetchone()
    assert row == ("lmdb", "3x2x1", 3, 2, 1, 12)


def test_extension_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGSTORE_EXTENSION", str(tmp_path / "nowhere.so"))
    assert imgstore.find_extension() == str(tmp_path / "nowhere.so")
    with pytest.raises(imgstore.ExtensionError, match="nowhere.so.*IMGSTORE_EXTENSION"):
        imgstore.load(sqlite3.connect(":memory:"))


REAL_CONNECT = sqlite3.connect


class NoExtensionConnection:
    """A connection as a Python built without loadable extensions has: no enable_load_extension."""

    def __init__(self, *args, **kwargs):
        self._conn = REAL_CONNECT(":memory:")

    def __getattr__(self, name):
        if name in ("enable_load_extension", "load_extension"):
            raise AttributeError(name)
        return getattr(self._conn, name)


def test_python_without_extension_loading_gets_the_fix(monkeypatch, tmp_path):
    with pytest.raises(imgstore.ExtensionError, match="cannot load SQLite extensions.*/usr/bin/python3"):
        imgstore.load(NoExtensionConnection())
    monkeypatch.setattr(imgstore._store.sqlite3, "connect", NoExtensionConnection)
    with pytest.raises(imgstore.ExtensionError, match="--enable-loadable-sqlite-extensions"):
        imgstore.open(tmp_path / "x.lmdb", shape=(1, 1, 1))
