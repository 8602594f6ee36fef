"""A sharded imgstore table as dask arrays: one chunk per shard, each loaded in a worker by opening its shard.

    import imgstore.dask
    ids, labels, images = imgstore.dask.read("train")     # a folder made with shards=N
    images.shape, images.chunks[0]                        # (N, 32, 32, 3), the manifest's row count per shard
    per_label = dask.array.bincount(labels).compute()

Chunk k holds shard k's rows in id order (the routing is `id mod N`, so the arrays are in shard order, not id
order; `ids` says which image each row is). A shard is opened with the extension in the task itself, so the
task graph carries only paths: it runs on a distributed cluster whose workers see the same files.

The arrays are the table as of one commit (the manifest's generation when read() ran): a commit that changes
existing rows is waited out, and a task that finds the table committed again since fails rather than mix two
states (call read() again).
"""

import json
import os
import time

import dask
import dask.array as da
import numpy as np

from ._store import open as _open_store

__all__ = ["read", "manifest"]


def manifest(path):
    """The parsed manifest.json of the sharded table at `path` (a dict)."""
    with open(os.path.join(path, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def _settled_manifest(path, timeout):
    """The manifest once no commit is changing existing rows (such a commit's shards are not all written yet)."""
    deadline = time.monotonic() + timeout
    while True:
        m = manifest(path)
        if not m.get("undo"):
            return m
        if time.monotonic() > deadline:
            raise TimeoutError("%s: a commit changing existing rows has not finished in %g s (if its writer died, "
                               "open the table once with the extension to roll it back)" % (path, timeout))
        time.sleep(0.01)


def _load_shard(table_path, shard_path, backend, pending, generation, extension):
    """(ids, labels, images) of one shard, read with the extension; ids of an unfinished commit left out."""
    with _open_store(shard_path, backend=backend, extension=extension) as store:
        rows = store.conn.execute("SELECT id, label, pixels FROM temp.store").fetchall()  # one statement: one commit
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        labels = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        images = store._images([r[2] for r in rows])
    now = manifest(table_path)["generation"]
    if now != generation:
        raise RuntimeError("%s was committed to while it was read (generation %d, now %d): call read() again"
                           % (table_path, generation, now))
    if pending:
        keep = np.ones(len(ids), dtype=bool)
        for lo, hi in pending:
            keep &= ~((ids >= lo) & (ids <= hi))
        ids, labels, images = ids[keep], labels[keep], images[keep]
    return ids, labels, images


def read(path, extension=None, timeout=30.0):
    """(ids, labels, images) of the sharded table at `path` as dask arrays: int64 (N,), int64 (N,) and uint8
    (N, H, W, C), one chunk per shard, sized by the manifest's committed row counts."""
    m = _settled_manifest(path, timeout)
    shape = tuple(int(x) for x in m["shape"].lower().split("x"))
    pending = [tuple(r) for r in m.get("pending", [])]
    ids, labels, images = [], [], []
    for shard in m["shards"]:
        rows = int(shard["rows"])
        loaded = dask.delayed(_load_shard, pure=True, nout=3)(
            os.path.abspath(path), os.path.join(os.path.abspath(path), shard["file"]), m["backend"], pending,
            m["generation"], extension)
        ids.append(da.from_delayed(loaded[0], shape=(rows,), dtype=np.int64))
        labels.append(da.from_delayed(loaded[1], shape=(rows,), dtype=np.int64))
        images.append(da.from_delayed(loaded[2], shape=(rows,) + shape, dtype=np.uint8))
    return da.concatenate(ids), da.concatenate(labels), da.concatenate(images)
