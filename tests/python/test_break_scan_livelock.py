"""Adversarial: Store.scan / to_numpy / ids / labels under a steady writer in another connection or process.
Store.scan (python/imgstore/_store.py) sizes its arrays by len(), and when the bulk scan reports more rows in
its state than it had room for, reads again with capacity = that total, exactly. A commit that lands during
each read (a scan of a big store takes longer than a writer's commit interval) makes every read one short, so
to_numpy never returns while the writer runs. Measured: hdf5, 300,000 rows of 4x4x3 (0.09 s alone), one
process appending a row per commit: one to_numpy took 20 bulk scans and 5 s. Here, deterministically: one row
committed by a second Store before each bulk scan, as a writer would during it."""

import numpy as np

import imgstore


def test_to_numpy_finishes_under_a_steady_writer(tmp_path, backend):
    path = str(tmp_path / {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    with imgstore.open(path, backend=backend, shape=(4, 4, 3)) as s:
        s.append(np.zeros((100, 4, 4, 3), np.uint8), np.zeros(100, np.int64))
    reader = imgstore.open(path)
    writer = imgstore.open(path)
    calls = [0]
    scan = reader._bulk.scan

    def scan_while_a_commit_lands(*args):
        calls[0] += 1
        if calls[0] > 50:
            raise AssertionError("to_numpy is still re-reading after 50 bulk scans")
        writer.append(np.zeros((1, 4, 4, 3), np.uint8), [1])  # the commit that lands during this read
        return scan(*args)

    reader._bulk.scan = scan_while_a_commit_lands
    try:
        images, labels = reader.to_numpy()
        assert len(labels) >= 100
    finally:
        reader.close()
        writer.close()
