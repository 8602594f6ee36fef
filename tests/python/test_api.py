"""imgstore.open and the Store API on every backend; the error paths; loading the extension."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgstore
import imgstore.dask
from conftest import BACKENDS, digest_of, make_sharded, make_store


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


def test_bulk_reads_see_the_connection_transaction(store_path, backend):
    make_store(store_path, backend, 10)
    with imgstore.open(store_path) as s:
        pixels = bytes(range(144))
        s.conn.execute("BEGIN")
        s.conn.execute("INSERT INTO temp.store VALUES (50, 7, ?)", (pixels,))
        labels, images = s.fetch([50, 2])
        assert labels[0] == 7 and images[0].tobytes() == pixels and len(s.ids()) == 11
        s.conn.execute("ROLLBACK")
        with pytest.raises(KeyError, match=r"\[50\]"):
            s.get([50])
        assert s.ids().tolist() == list(range(10))


def test_ranges_labels_alone_and_layouts(store_path, backend):
    make_store(store_path, backend, 40)
    with imgstore.open(store_path) as s:
        images, labels = s.to_numpy()
        ids, part_labels, part = s.scan(10, 19)
        assert ids.tolist() == list(range(10, 20)) and (part == images[10:20]).all()
        assert (part_labels == labels[10:20]).all()
        assert s.scan(5, 4)[0].tolist() == [] and s.scan(38, 2**63 - 1, expected=1)[0].tolist() == [38, 39]
        ids_only, no_labels, no_images = s.scan(labels=False, images=False)
        assert ids_only.tolist() == list(range(40)) and no_labels is None and no_images is None
        chw, _ = s.to_numpy(layout="CHW")
        assert chw.shape == (40, 3, 8, 6) and (chw.transpose(0, 2, 3, 1) == images).all()
        assert (s.get([5, 1], layout="CHW") == chw[[5, 1]]).all()
        with pytest.raises(ValueError, match="layout 'chw' is not valid"):
            s.get([1], layout="chw")


def test_to_numpy_allocates_the_array_once(tmp_path):
    import tracemalloc
    path = str(tmp_path / "s.lmdb")
    make_store(path, "lmdb", 5000, shape="32x32x3")
    with imgstore.open(path) as s:
        tracemalloc.start()
        images, labels = s.to_numpy()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert images.flags.writeable and images.flags.c_contiguous
    assert peak <= 1.02 * (images.nbytes + labels.nbytes)


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_a_damaged_image_fails_every_bulk_read(tmp_path, backend):
    """One flipped pixel byte, in a store large enough that scans check on a second thread."""
    path = str(tmp_path / ("s.lmdb" if backend == "lmdb" else "s.h5"))
    make_store(path, backend, 3000, shape="8x6x3")
    with imgstore.open(path) as s:
        victim = s.get([2500])[0].tobytes()
    data = os.path.join(path, "data.mdb") if backend == "lmdb" else path
    raw = bytearray(open(data, "rb").read())
    at = raw.find(victim)
    assert at >= 0 and raw.find(victim, at + 1) < 0
    raw[at + 100] ^= 0x01
    open(data, "wb").write(raw)
    with imgstore.open(path) as s:
        for read in (lambda: s.to_numpy(), lambda: s.get([2500]), lambda: s.get(range(3000)),
                     lambda: s.get(range(2400, 2600), layout="CHW")):
            with pytest.raises(sqlite3.DatabaseError, match="image 2500 .* is damaged: its checksum does not match"):
                read()
        assert len(s.labels()) == 3000  # labels need no pixel
        assert s.get([2499, 2501]).shape == (2, 8, 6, 3)


def test_a_dropped_table_is_an_error_not_a_crash(store_path, backend):
    make_store(store_path, backend, 5)
    s = imgstore.open(store_path)
    s.conn.execute("DROP TABLE temp.store")
    with pytest.raises(sqlite3.InterfaceError, match="no connected store table has bulk handle"):
        s.get([1])
    s.close()
    for read in (lambda: s.get([1]), lambda: s.to_numpy(), lambda: len(s), lambda: s.labels()):
        with pytest.raises(ValueError, match="is closed"):
            read()


def test_threads_share_a_store(store_path, backend):
    import threading
    make_store(store_path, backend, 300)
    with imgstore.open(store_path) as s:
        images, _ = s.to_numpy()
        errors = []

        def reader(seed):
            rng = np.random.default_rng(seed)
            for _ in range(50):
                ids = rng.integers(0, 300, 32)
                if not (s.get(ids) == images[ids]).all():
                    errors.append(seed)
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_creates_and_finds_sharded_tables(tmp_path, backend):
    path = tmp_path / "sh"
    images = (np.arange(20 * 144).reshape(20, 8, 6, 3) % 251).astype(np.uint8)
    with imgstore.open(path, backend=backend, shape=(8, 6, 3), shards=4) as s:
        ids = s.append(images, np.arange(20) % 3)
        assert ids.tolist() == list(range(20))
    assert imgstore.guess_backend(path) == backend
    assert len(imgstore.dask.manifest(str(path))["shards"]) == 4
    with imgstore.open(path) as s:
        assert s.backend == backend and len(s) == 20 and s.labels().tolist() == [i % 3 for i in range(20)]
        assert s.shards == 4 and repr(s).endswith(f"backend={backend!r}, shape=(8, 6, 3), shards=4)")
        assert (s.get([19, 0]) == images[[19, 0]]).all()
    with pytest.raises(ValueError, match="shards 0 is not valid"):
        imgstore.open(tmp_path / "x", backend=backend, shape=(8, 6, 3), shards=0)


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
    with pytest.raises(imgstore.ExtensionError, match="IMGSTORE_EXTENSION='.*nowhere.so' names no file"):
        imgstore.load(sqlite3.connect(":memory:"))
    with pytest.raises(imgstore.ExtensionError, match="IMGSTORE_EXTENSION='.*nowhere.so' names no file"):
        imgstore.loadable_path()


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


@pytest.mark.parametrize("n", [300, 2500], ids=["small", "threaded-check"])
def test_bulk_reads_equal_sql_after_random_changes(store_path, backend, n):
    """Deletes, relabels, replaced pixels and new ids (committed, rolled back, and open in a transaction): every
    bulk read equals the same SELECT through SQL."""
    make_store(store_path, backend, n)
    rng = np.random.default_rng(n)
    with imgstore.open(store_path) as s:
        conn = s.conn

        def change():
            k = rng.integers(0, 4)
            ids = [int(i) for i in rng.integers(0, n + 200, 5)]
            if k == 0:
                conn.executemany("DELETE FROM temp.store WHERE id = ?", [(i,) for i in ids])
            elif k == 1:
                conn.executemany("UPDATE temp.store SET label = label + 1 WHERE id = ?", [(i,) for i in ids])
            else:
                conn.executemany("INSERT OR REPLACE INTO temp.store VALUES (?, ?, ?)",
                                 [(i, int(rng.integers(0, 10)), rng.integers(0, 256, 144, dtype=np.uint8).tobytes())
                                  for i in ids])

        def check():
            rows = conn.execute("SELECT id, label, pixels FROM temp.store").fetchall()
            want_ids = np.array([r[0] for r in rows], dtype=np.int64)
            want_labels = np.array([r[1] for r in rows], dtype=np.int64)
            want = np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(-1, 8, 6, 3)
            images, labels = s.to_numpy()
            assert (s.ids() == want_ids).all() and (labels == want_labels).all() and (images == want).all()
            lo, hi = sorted(int(x) for x in rng.integers(0, n + 200, 2))
            got_ids, got_labels, got = s.scan(lo, hi)
            inside = (want_ids >= lo) & (want_ids <= hi)
            assert (got_ids == want_ids[inside]).all() and (got == want[inside]).all()
            assert (got_labels == want_labels[inside]).all()
            asked = rng.choice(want_ids, 40)
            at = np.searchsorted(want_ids, asked)
            labels, images = s.fetch(asked)
            assert (labels == want_labels[at]).all() and (images == want[at]).all()
            assert (s.get(asked, layout="CHW") == want[at].transpose(0, 3, 1, 2)).all()

        for _ in range(6):
            change()
            conn.execute("BEGIN")
            change()
            check()  # this connection's open transaction is seen
            conn.execute("ROLLBACK" if rng.integers(0, 2) else "COMMIT")
            check()


@pytest.mark.parametrize("read", ["s.get(range(300))", "s.to_numpy()", "s.get(range(3000))"])
def test_a_process_that_bulk_read_exits_cleanly(tmp_path, read):
    """The bulk reader's threads (a split get, a scan's checker) are process-wide: the interpreter's exit must
    not trip over them (it did: 'double free or corruption' as the pool's registry went first)."""
    path = str(tmp_path / "s.lmdb")
    make_store(path, "lmdb", 3000)
    script = f"import imgstore\ns = imgstore.open({path!r})\n{read}\nprint('read')\n"
    env = dict(os.environ, PYTHONPATH=str(Path(imgstore.__file__).parent.parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "read", "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_shards_on_a_single_store_is_refused_and_hides_nothing(tmp_path, backend):
    """shards=N names a new sharded table: on an existing single store it is an error that changes nothing (it
    made an empty sharded table inside an lmdb or png_dir store's folder, which hid its images from then on)."""
    path = str(tmp_path / {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    make_store(path, backend, 3)
    before = sorted(os.listdir(path)) if os.path.isdir(path) else None
    with pytest.raises(sqlite3.OperationalError, match="a single store.*not a sharded table.s folder"):
        imgstore.open(path, backend=backend, shape=(8, 6, 3), shards=4)
    assert (sorted(os.listdir(path)) if os.path.isdir(path) else None) == before
    with imgstore.open(path) as s:
        assert len(s) == 3 and s.ids().tolist() == [0, 1, 2]


@pytest.mark.parametrize("shape", ["4x5x1", "4x5x2", "7x3x4"])  # a store holds 1 to 4 channels
def test_chw_planes_for_every_channel_count(tmp_path, shape):
    path = str(tmp_path / "s.lmdb")
    make_store(path, "lmdb", 40, shape=shape)
    with imgstore.open(path) as s:
        hwc, _ = s.to_numpy()
        chw, _ = s.to_numpy(layout="CHW")
        assert (chw == hwc.transpose(0, 3, 1, 2)).all()
        assert (s.get([39, 0, 7], layout="CHW") == hwc[[39, 0, 7]].transpose(0, 3, 1, 2)).all()
