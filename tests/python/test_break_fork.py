"""Adversarial: a Store opened in a parent and used by a forked child (os.fork, multiprocessing's fork start
method with a global Store). The parent must keep working afterwards, and the child must not use the parent's
LMDB environment (docs/reliability.md: "a forked child never uses or closes the parent's")."""

import os
import sys

import numpy as np
import pytest

import imgstore


def _child_reads(store):
    pid = os.fork()
    if pid == 0:
        try:
            store.to_numpy()
            store.get([0, 1])
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("use", ["bulk", "sql"])
def test_parent_keeps_reading_after_child_used_inherited_store(tmp_path, backend, use):
    path = str(tmp_path / {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    images = np.arange(10 * 8 * 6 * 3, dtype=np.uint64).astype(np.uint8).reshape(10, 8, 6, 3)
    with imgstore.open(path, backend=backend, shape=(8, 6, 3)) as s:
        s.append(images, np.arange(10))
        s.to_numpy()  # the parent has read: an LMDB reader is recycled into the environment's spare pool
        for _ in range(3):
            assert _child_reads(s) == 0
            # Fails on lmdb: "mdb_txn_renew ... failed: MDB_BAD_RSLOT: Invalid reuse of reader locktable slot"
            if use == "bulk":
                got, labels = s.to_numpy()
                assert (got == images).all()
            else:
                assert s.conn.execute("SELECT count(*) FROM temp.store").fetchone()[0] == 10

