"""One shard of a sharded table, read alone by its format's own tools (py-lmdb and mdb_stat, h5py, Pillow and
labels.csv), holds exactly the table's rows that the routing rule (id mod N) gives it."""

import io
import struct
import subprocess

import numpy as np
import pytest

from conftest import make_sharded

SHAPE = "8x6x3"
N = 90
SHARDS = 3
SHARD = 1


def table_rows(path, backend):
    conn = make_sharded(path, backend, N, SHARDS, SHAPE, seed=5)
    conn.execute("DELETE FROM temp.t WHERE id % 10 = 4")  # deleted rows must not show in the shard either
    conn.commit()
    rows = conn.execute("SELECT id, label, pixels FROM temp.t WHERE id % ? = ? ORDER BY id", (SHARDS, SHARD)).fetchall()
    conn.close()
    return [(i, l, bytes(p)) for i, l, p in rows]


def test_lmdb_shard_with_py_lmdb_and_mdb_stat(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    wanted = table_rows(tmp_path / "t", "lmdb")
    shard = str(tmp_path / "t" / ("shard-%03d.lmdb" % SHARD))
    env = lmdb.open(shard, readonly=True)  # an LMDB environment directory, read with py-lmdb's defaults
    with env.begin() as txn:
        got = [(struct.unpack(">q", k)[0], struct.unpack("<q", v[:8])[0], bytes(v[16:])) for k, v in txn.cursor()]
    env.close()
    assert got == wanted and len(got) > 0
    stat = subprocess.run(["mdb_stat", shard], capture_output=True, text=True, check=True)
    assert "Entries: %d" % len(wanted) in stat.stdout


def test_hdf5_shard_with_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    wanted = table_rows(tmp_path / "t", "hdf5")
    with h5py.File(tmp_path / "t" / ("shard-%03d.h5" % SHARD), "r") as f:
        n = int(f["commit"][1])
        ids = f["ids"][:n]
        live = ids >= 0
        got = list(zip(ids[live].tolist(), f["labels"][:n][live].tolist(),
                       [bytes(np.ascontiguousarray(img)) for img in f["images"][:n][live]]))
    assert sorted(got) == wanted and len(got) > 0


def test_png_dir_shard_with_pillow(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    wanted = table_rows(tmp_path / "t", "png_dir")
    shard = tmp_path / "t" / ("shard-%03d" % SHARD)
    lines = (shard / "labels.csv").read_text().splitlines()[1:]
    got = []
    for line in lines:
        i, label = (int(x) for x in line.split(","))
        got.append((i, label, Image.open(io.BytesIO((shard / ("%d.png" % i)).read_bytes())).convert("RGB").tobytes()))
    assert sorted(got) == wanted and len(got) > 0
    assert len(list(shard.glob("*.png"))) == len(wanted)
