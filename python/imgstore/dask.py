"""A store or sharded table as dask arrays, in id order, in chunks of rows read by the tasks themselves:

    import imgstore.dask
    ids, labels, images = imgstore.dask.read("train.lmdb")   # or a sharded table's folder
    images.shape, images.chunks[0]                          # (N, 32, 32, 3), about 64 MiB of pixels a chunk
    per_label = dask.array.bincount(labels).compute()       # reads labels only: no pixel is read

read() lists the ids (no pixels) and cuts them into chunks of `chunk_rows` rows; each chunk of each array is
its own task, which opens the store with the extension and reads its id range through the bulk reader, so
`labels` or `ids` computed alone read no pixels and the task graph carries only paths and id ranges: it runs
on a distributed cluster whose workers see the same files.

The arrays are the table as of one commit (the one read() saw): a task that finds the store committed to since
(another set of ids in its range; for a sharded table, another manifest generation; for a single store, its
files changed) fails rather than mix two states: call read() again.
"""

import collections
import hashlib
import os
import threading
import time

import dask
import dask.array as da
import numpy as np

from ._store import guess_backend, read_manifest
from ._store import open as _open_store

__all__ = ["read", "manifest"]

CHUNK_BYTES = 64 << 20


def manifest(path):
    """The parsed manifest.json of the sharded table at `path` (a dict); FileNotFoundError when it has none."""
    found = read_manifest(path)
    if found is None:
        raise FileNotFoundError(f"no manifest.json in {os.fspath(path)!r}: not a sharded table's folder")
    return found


def _commit_file(path, backend):
    """The file every commit of a single store rewrites or writes: LMDB's data file, the HDF5 file, png_dir's
    labels.csv."""
    if backend == "lmdb" and os.path.isdir(path):
        return os.path.join(path, "data.mdb")
    if backend == "png_dir":
        return os.path.join(path, "labels.csv")
    return path


def _state(path, backend):
    """What changes when the table is committed to: a sharded table's manifest generation, else the commit
    file's identity, size and modification time."""
    found = read_manifest(path)
    if found is not None:
        return ("generation", found["generation"])
    try:
        st = os.stat(_commit_file(path, backend))
    except FileNotFoundError:
        return ("missing",)
    return ("file", st.st_ino, st.st_size, st.st_mtime_ns)


def _fingerprint(ids):
    return hashlib.blake2b(np.ascontiguousarray(ids, dtype=np.int64).tobytes(), digest_size=16).hexdigest()


# Stores this thread of this process has open, by (path, backend, extension): a worker's tasks reuse them, as
# opening one reads its whole index (an hdf5 store's ids, a sharded table's every shard). Each read is still
# a statement of its own, of the last committed state. Per thread: a threaded scheduler's tasks then read in
# parallel (one connection is one reader at a time).
_open_stores = threading.local()
_KEEP_OPEN = 8


def _store(path, backend, extension):
    stores = getattr(_open_stores, "stores", None)
    if stores is None or stores[0] != os.getpid():  # a forked worker opens its own
        stores = _open_stores.stores = (os.getpid(), collections.OrderedDict())
    cache = stores[1]
    key = (path, backend, extension)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    store = _open_store(path, backend=backend, extension=extension)
    cache[key] = store
    while len(cache) > _KEEP_OPEN:
        cache.popitem(last=False)[1].close()
    return store


def _read_chunk(path, backend, extension, lo, hi, count, fingerprint, state, what):
    """One chunk of one array: the rows with lo <= id <= hi, checked to be the ones read() listed."""
    store = _store(path, backend, extension)
    ids, labels, images = store.scan(lo, hi, ids=True, labels=what == "labels", images=what == "images",
                                     expected=count)
    now = _state(path, backend)
    if now != state or len(ids) != count or _fingerprint(ids) != fingerprint:
        if now != state:
            what = ("its manifest's generation is %s, was %s" % (now[1], state[1]) if now[0] == "generation"
                    else "its files changed")
        else:
            what = "ids %d..%d hold %d rows, %d when listed" % (lo, hi, len(ids), count)
        raise RuntimeError("%s was committed to since read() listed its rows (%s): call read() again" % (path, what))
    return {"ids": ids, "labels": labels, "images": images}[what]


def _listed(path, backend, extension, timeout):
    """(shape, every id, the state they are of): the ids listed between two equal states."""
    deadline = time.monotonic() + timeout
    while True:
        before = _state(path, backend)
        with _open_store(path, backend=backend, extension=extension) as store:
            shape, ids = store.shape, store.ids()
        if _state(path, backend) == before:
            return shape, ids, before
        if time.monotonic() > deadline:
            raise TimeoutError("%s: committed to during every listing of its ids for %g s" % (path, timeout))
        time.sleep(0.01)


def read(path, chunk_rows=None, backend=None, extension=None, timeout=30.0):
    """(ids, labels, images) of the store or sharded table at `path` as dask arrays in id order: int64 (N,),
    int64 (N,) and uint8 (N, H, W, C), in chunks of `chunk_rows` rows (default: about 64 MiB of pixels)."""
    path = os.path.abspath(os.fspath(path))
    backend = backend or guess_backend(path)
    shape, all_ids, state = _listed(path, backend, extension, timeout)
    if shape == "any":
        raise ValueError(f"{path}: a store of shape 'any' holds images of many sizes, which make no dask array; "
                         f"read it with imgstore.open(path).get(ids) (a list of arrays)")
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // int(np.prod(shape)))
    if isinstance(chunk_rows, bool) or int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows {chunk_rows!r} is not valid; expected an integer >= 1")
    chunk_rows = int(chunk_rows)
    if len(all_ids) == 0:
        return (da.zeros((0,), dtype=np.int64), da.zeros((0,), dtype=np.int64),
                da.zeros((0,) + tuple(shape), dtype=np.uint8))
    arrays = {"ids": [], "labels": [], "images": []}
    for start in range(0, len(all_ids), chunk_rows):
        chunk = all_ids[start:start + chunk_rows]
        args = (path, backend, extension, int(chunk[0]), int(chunk[-1]), len(chunk), _fingerprint(chunk), state)
        for what, tail, dtype in (("ids", (), np.int64), ("labels", (), np.int64), ("images", tuple(shape), np.uint8)):
            task = dask.delayed(_read_chunk, pure=True)(*args, what)
            arrays[what].append(da.from_delayed(task, shape=(len(chunk),) + tail, dtype=dtype))
    return tuple(da.concatenate(arrays[what]) for what in ("ids", "labels", "images"))
