"""imgstore.dask on a distributed cluster of two worker processes: per-label counts and the per-label mean image
over a sharded table equal the same figures computed in SQL."""

import os

import numpy as np
import pytest

import sqlite3

from conftest import BACKENDS, ROOT, make_sharded as make_table, make_store

import imgstore

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import imgstore.dask  # noqa: E402

SHAPE = "8x6x3"
N = 600
SHARDS = 3


def make_sharded(path, backend):
    return make_table(path, backend, N, SHARDS, SHAPE)


def sql_figures(conn):
    """{label: (count, mean image as float64 (H, W, C))} computed in SQL: counts with GROUP BY, the mean by
    summing each pixel byte's value (read from its hex digits) over the label's rows."""
    counts = dict(conn.execute("SELECT label, count(*) FROM temp.t GROUP BY label").fetchall())
    h, w, c = (int(x) for x in SHAPE.split("x"))
    figures = {}
    for label, n in counts.items():
        sums = conn.execute(
            "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
            "SELECT i, sum((instr('0123456789ABCDEF', substr(hex(substr(pixels, i + 1, 1)), 1, 1)) - 1) * 16 + "
            "instr('0123456789ABCDEF', substr(hex(substr(pixels, i + 1, 1)), 2, 1)) - 1) "
            "FROM temp.t, k WHERE label = ? "
            "GROUP BY i ORDER BY i", (h * w * c - 1, label)).fetchall()
        figures[label] = (n, np.array([s for _, s in sums], dtype=np.float64).reshape(h, w, c) / n)
    return figures


@pytest.fixture(scope="module")
def cluster():
    os.environ["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        with distributed.Client(c) as client:
            yield client


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_per_label_counts_and_means_equal_sql(tmp_path, backend, sharded, cluster):
    path = str(tmp_path / "t")
    if sharded:
        conn = make_sharded(path, backend)
    else:
        make_store(path, backend, N, shape=SHAPE, seed=4)
        conn = imgstore.load(sqlite3.connect(":memory:"))
        conn.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}')")
    ids, labels, images = imgstore.dask.read(path, chunk_rows=64)
    assert images.shape == (N, 8, 6, 3) and images.dtype == np.uint8
    assert images.chunks[0] == (64,) * 9 + (24,) and labels.chunks == ids.chunks == (images.chunks[0],)
    labels_np, ids_np = cluster.compute([labels, ids], sync=True)
    assert ids_np.tolist() == list(range(N))  # id order, over every shard
    assert labels_np.tolist() == [r[0] for r in conn.execute("SELECT label FROM temp.t ORDER BY id")]
    wanted = sql_figures(conn)
    for label, (n, mean) in wanted.items():
        chosen = images[labels == label]
        assert int((labels == label).sum().compute()) == n
        got = cluster.compute(chosen.astype(np.float64).mean(axis=0), sync=True)
        np.testing.assert_allclose(got, mean, rtol=0, atol=1e-9)


def test_default_chunks_are_about_64_mib_of_pixels(tmp_path):
    path = str(tmp_path / "s.lmdb")
    make_store(path, "lmdb", 3000, shape="64x64x3")  # 12 KiB an image: 5461 a chunk
    _, _, images = imgstore.dask.read(path)
    assert images.chunks[0] == (3000,)
    _, _, images = imgstore.dask.read(path, chunk_rows=1000)
    assert images.chunks[0] == (1000, 1000, 1000)
    with pytest.raises(ValueError, match="chunk_rows 0 is not valid"):
        imgstore.dask.read(path, chunk_rows=0)


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
def test_labels_and_ids_alone_read_no_pixels(tmp_path, sharded):
    """With one image file gone, a pixel read fails; labels and ids computed alone still succeed."""
    path = str(tmp_path / "t")
    if sharded:
        make_sharded(path, "png_dir").close()
        victim = os.path.join(path, "shard-001", "1.png")
    else:
        make_store(path, "png_dir", N, shape=SHAPE)
        victim = os.path.join(path, "7.png")
    ids, labels, images = imgstore.dask.read(path, chunk_rows=100)
    os.remove(victim)
    assert len(labels.compute(scheduler="sync")) == N and ids.compute(scheduler="sync").tolist() == list(range(N))
    with pytest.raises(sqlite3.Error, match="png"):
        images.compute(scheduler="sync")


def test_empty_store(tmp_path):
    path = str(tmp_path / "e.h5")
    with imgstore.open(path, shape=(4, 4, 1)):
        pass
    ids, labels, images = imgstore.dask.read(path)
    assert images.shape == (0, 4, 4, 1) and len(labels.compute()) == 0


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
def test_a_commit_after_read_fails_the_computation_instead_of_mixing_states(tmp_path, sharded, cluster):
    path = str(tmp_path / "t")
    if sharded:
        conn = make_sharded(path, "lmdb")
    else:
        make_store(path, "lmdb", N, shape=SHAPE)
        conn = imgstore.load(sqlite3.connect(":memory:"))
        conn.execute(f"CREATE VIRTUAL TABLE temp.t USING lmdb(path='{path}')")
    _, labels, _ = imgstore.dask.read(path)
    conn.execute("UPDATE temp.t SET label = 9 WHERE id < 10")
    conn.commit()
    with pytest.raises(RuntimeError, match="call read"):
        cluster.compute(labels.sum(), sync=True)
