"""imgstore.dask on a distributed cluster of two worker processes: per-label counts and the per-label mean image
over a sharded table equal the same figures computed in SQL."""

import os

import numpy as np
import pytest

from conftest import BACKENDS, ROOT, make_sharded as make_table

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_label_counts_and_means_equal_sql(tmp_path, backend, cluster):
    path = str(tmp_path / "t")
    conn = make_sharded(path, backend)
    ids, labels, images = imgstore.dask.read(path)
    assert images.shape == (N, 8, 6, 3) and images.dtype == np.uint8
    assert len(images.chunks[0]) == SHARDS  # one chunk per shard
    labels_np, ids_np = cluster.compute([labels, ids], sync=True)
    assert sorted(ids_np.tolist()) == list(range(N))
    wanted = sql_figures(conn)
    for label, (n, mean) in wanted.items():
        chosen = images[labels == label]
        assert int((labels == label).sum().compute()) == n
        got = cluster.compute(chosen.astype(np.float64).mean(axis=0), sync=True)
        np.testing.assert_allclose(got, mean, rtol=0, atol=1e-9)


def test_a_commit_after_read_fails_the_computation_instead_of_mixing_states(tmp_path, cluster):
    path = str(tmp_path / "t")
    conn = make_sharded(path, "lmdb")
    _, labels, _ = imgstore.dask.read(path)
    conn.execute("UPDATE temp.t SET label = 9 WHERE id < 10")
    conn.commit()
    with pytest.raises(RuntimeError, match="call read"):
        cluster.compute(labels.sum(), sync=True)
