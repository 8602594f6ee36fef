"""A store opened by its path, read and written as numpy arrays."""

import builtins
import contextlib
import json
import os
import sqlite3
import threading

import numpy as np

from ._bulk import INT64_MAX, BulkReader
from ._extension import load

BACKENDS = ("lmdb", "hdf5", "png_dir")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LMDB_MAGIC = (0xBEEFC0DE).to_bytes(4, "little")
_SUFFIXES = {".lmdb": "lmdb", ".mdb": "lmdb", ".h5": "hdf5", ".hdf5": "hdf5"}


def read_manifest(path):
    """The parsed manifest.json of the sharded table at `path` (a dict), or None when `path` holds none."""
    try:
        with builtins.open(os.path.join(os.fspath(path), "manifest.json"), encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None


def guess_backend(path):
    """For a directory: 'lmdb' when it holds data.mdb (an LMDB environment), a sharded table's backend from its
    manifest.json, else 'png_dir'; for a file: 'hdf5' or 'lmdb' by its first bytes (an LMDB file: a single-file lmdb
    store of an earlier version); else by its suffix."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "data.mdb")):
            return "lmdb"
        manifest = read_manifest(path)
        if manifest is not None and manifest.get("backend") in BACKENDS:
            return manifest["backend"]
        return "png_dir"
    if os.path.isfile(path):
        with builtins.open(path, "rb") as f:
            head = f.read(4096)
        if head.startswith(_HDF5_MAGIC):
            return "hdf5"
        if _LMDB_MAGIC in head:
            return "lmdb"
    backend = _SUFFIXES.get(os.path.splitext(path)[1].lower())
    if backend is None:
        raise ValueError(
            f"cannot tell the backend of {path!r}; expected a directory (png_dir), an HDF5 or LMDB file, or a "
            f"path ending in .lmdb or .h5; pass backend= one of {', '.join(BACKENDS)}"
        )
    return backend


def _sql_literal(text):
    return "'" + str(text).replace("'", "''") + "'"


def _shape_text(shape):
    if isinstance(shape, str):
        return shape
    if len(shape) != 3:
        raise ValueError(f"shape {shape!r} has {len(shape)} dimensions; expected (height, width, channels)")
    return "x".join(str(int(d)) for d in shape)


def _shard_count(path):
    """The number of shards of the sharded table at `path`, or None for a single store."""
    manifest = read_manifest(path)
    return None if manifest is None else len(manifest.get("shards", [])) or None


def _check_layout(layout):
    if layout not in ("HWC", "CHW"):
        raise ValueError(f"layout {layout!r} is not valid; expected 'HWC' (numpy's, as stored) or 'CHW' (torchvision's)")
    return layout == "CHW"


def open(path, backend=None, shape=None, shards=None, extension=None):  # noqa: A001 (as the builtin open: a path in, an object out)
    """Opens the store at `path`: a single store or a sharded table's folder (backend guessed from the files
    when not given, a sharded table's from its manifest.json). With `shape` (H, W, C) a missing store is
    created; with `shards=N` too, a sharded table of N shards. Returns a Store; close it, or use it in `with`."""
    path = os.fspath(path)
    backend = backend or guess_backend(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not valid; expected one of {', '.join(BACKENDS)}")
    if shape is None and not os.path.exists(path):
        raise FileNotFoundError(
            f"no store at {path!r}; to create one, give shape=(height, width, channels) or shape='any'")
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1):
        raise ValueError(f"shards {shards!r} is not valid; expected an integer >= 1")
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        load(conn, extension)
        args = [f"backend={_sql_literal(backend)}", f"path={_sql_literal(path)}"]
        if shape is not None:
            args.append(f"shape={_sql_literal(_shape_text(shape))}")
        if shards is not None:
            args.append(f"shards={int(shards)}")
        conn.execute(f"CREATE VIRTUAL TABLE temp.store USING imgstore({', '.join(args)})")
        return Store(conn, path, backend)
    except BaseException:
        conn.close()
        raise


class Store:
    """One store (or sharded table) on its own connection. Reads go through the extension's bulk reader:
    straight into one preallocated numpy array, in id order unless asked otherwise."""

    def __init__(self, conn, path, backend):
        self.conn = conn
        self.path = path
        self.backend = backend
        h, w, c = conn.execute("SELECT height, width, channels FROM imgstore_info('store', 'temp')").fetchone()
        # 'any' for a store of images of many sizes (shape='any'): its reads give lists of arrays, each its own size.
        self.shape = "any" if h is None else (h, w, c)
        self.shards = _shard_count(path)  # None for a single store
        self._bulk = BulkReader(conn)
        # Calls in flight on the connection (other threads may share a Store): close() waits for them, as a
        # connection closed under a call is freed memory the call then uses.
        self._calls = threading.Condition()
        self._in_flight = 0

    @contextlib.contextmanager
    def _using(self):
        with self._calls:
            if self.conn is None:
                raise ValueError(f"the store {self.path!r} is closed")
            self._in_flight += 1
        try:
            yield self.conn
        finally:
            with self._calls:
                self._in_flight -= 1
                self._calls.notify_all()

    # --- reading

    def __len__(self):
        with self._using() as conn:
            return conn.execute("SELECT count FROM imgstore_info('store', 'temp')").fetchone()[0]

    @property
    def any_size(self):
        """Whether the store holds images of many sizes (shape 'any')."""
        return self.shape == "any"

    def _rows(self, where, params, layout):
        """(ids, labels, images) of the rows the SQL condition `where` selects, in id order, through SQL: images
        of many sizes are a list of arrays, each (H, W, C) (or (C, H, W) with layout='CHW')."""
        chw = _check_layout(layout)
        ids, labels, images = [], [], []
        with self._using() as conn:
            rows = conn.execute(f"SELECT id, label, pixels, height, width, channels FROM temp.store WHERE {where} "
                                f"ORDER BY id", params).fetchall()
        for i, label, pixels, h, w, c in rows:
            image = np.frombuffer(pixels, np.uint8).reshape(h, w, c)
            ids.append(i)
            labels.append(label)
            images.append((image.transpose(2, 0, 1) if chw else image).copy())  # writable, its own memory
        return np.asarray(ids, np.int64), np.asarray(labels, np.int64), images

    def _image_shape(self, n, layout):
        h, w, c = self.shape
        return (n, c, h, w) if _check_layout(layout) else (n, h, w, c)

    def scan(self, lo=0, hi=INT64_MAX, ids=True, labels=True, images=True, layout="HWC", expected=None):
        """The rows with lo <= id <= hi in id order, as (ids, labels, images) arrays (None for each not asked
        for: labels or ids alone read no pixels), from one committed state. `expected` is the row count to
        allocate for (default: the store's count); a range that holds more is read again with room."""
        chw = _check_layout(layout)
        lo, hi = max(int(lo), 0), min(int(hi), INT64_MAX)  # ids are 0..2^63-1: wider bounds select the same rows
        if lo > hi:
            lo, hi = 1, 0  # none
        if images and self.any_size:
            out = self._rows("id BETWEEN ? AND ?", (lo, hi), layout)
            return tuple(a if want else None for a, want in zip(out, (ids, labels, True)))
        capacity = len(self) if expected is None else int(expected)
        while True:
            out_ids = np.empty(capacity, np.int64) if ids else None
            out_labels = np.empty(capacity, np.int64) if labels else None
            out_images = np.empty(self._image_shape(capacity, layout), np.uint8) if images else None
            with self._using():
                rows, total = self._bulk.scan(lo, hi, capacity, chw, out_ids, out_labels, out_images)
            if total <= capacity:
                break
            # Rows committed since the count: read again, all of them in one state, with room for more than
            # that (a writer committing during every read would otherwise keep it reading for ever).
            capacity = total + max(64, total // 8)
        return tuple(a if a is None or rows == capacity else a[:rows] for a in (out_ids, out_labels, out_images))

    def ids(self):
        """Every id, ascending (int64). Reads no pixels."""
        return self.scan(labels=False, images=False)[0]

    def labels(self):
        """Every label, in id order (int64). Reads no pixels."""
        return self.scan(ids=False, images=False)[1]

    def fetch(self, ids, layout="HWC"):
        """(labels, images) of `ids` in the order given (repeats allowed), read into one array. A missing id
        is a KeyError naming it. layout='CHW' gives (N, C, H, W) images (torchvision's order). On a store of
        shape 'any' the images are a list of arrays, each of its own size."""
        ids = self._ids(ids)
        if self.any_size:
            return self._fetch_list(ids, layout)
        labels = np.empty(len(ids), np.int64)
        images = np.empty(self._image_shape(len(ids), layout), np.uint8)
        found = np.empty(len(ids), np.uint8)
        with self._using():
            self._bulk.get(ids, labels, images, found, layout == "CHW")
        if not found.all():
            missing = list(dict.fromkeys(ids[found == 0].tolist()))
            raise KeyError(f"ids not in the store {self.path!r}: {missing[:10]}")
        return labels, images

    def _fetch_list(self, ids, layout):
        unique = sorted(set(ids.tolist()))
        found_ids, found_labels, found_images = self._rows("id IN (SELECT value FROM json_each(?))",
                                                           (json.dumps(unique),), layout)
        at = {int(i): k for k, i in enumerate(found_ids)}
        missing = [i for i in dict.fromkeys(ids.tolist()) if i not in at]
        if missing:
            raise KeyError(f"ids not in the store {self.path!r}: {missing[:10]}")
        order = [at[i] for i in ids.tolist()]
        return found_labels[order] if order else np.empty(0, np.int64), [found_images[k] for k in order]

    def _ids(self, ids):
        """`ids` as a 1-D int64 array, refusing what is not ids (a float or a string would read another id)."""
        given = np.asarray(ids)
        if given.size == 0:
            return np.empty(0, np.int64)
        if given.dtype.kind not in "iu":
            raise TypeError(f"store {self.path!r}: ids {given.reshape(-1)[:5].tolist()} have dtype {given.dtype}; "
                            f"expected integers")
        if given.ndim > 1:
            raise ValueError(f"store {self.path!r}: ids have shape {given.shape}; expected one id or a 1-D "
                             f"sequence of ids")
        if given.dtype.kind == "u" and given.max() > INT64_MAX:
            raise KeyError(f"ids not in the store: {given[given > INT64_MAX][:10].tolist()} (ids are below 2**63)")
        return np.ascontiguousarray(given.astype(np.int64).reshape(-1))

    def get(self, ids, layout="HWC"):
        """The images of `ids`, (N, H, W, C) uint8 (or (N, C, H, W) with layout='CHW'), in the order asked; on a
        store of shape 'any' a list of N arrays, each (H, W, C) of its own size (or (C, H, W))."""
        return self.fetch(ids, layout)[1]

    def to_numpy(self, layout="HWC"):
        """(images, labels) of the whole store in id order: (N, H, W, C) uint8 (or (N, C, H, W) with
        layout='CHW') and (N,) int64, read into arrays allocated once. On a store of shape 'any' the images are
        a list of arrays, each of its own size."""
        _, labels, images = self.scan(ids=False, layout=layout)
        return images, labels

    def batches(self, batch_size, shuffle=True, seed=0, epoch=0, drop_last=False, layout="HWC"):
        """Yields (ids, labels, images) batches covering every id once; shuffled by (seed, epoch) when asked,
        so each epoch has its own order and the same (seed, epoch) the same one."""
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size {batch_size!r} is not valid; expected an integer >= 1")
        _check_layout(layout)
        ids = self.ids()
        if shuffle:
            ids = ids[np.random.default_rng([int(seed), int(epoch)]).permutation(len(ids))]
        for start in range(0, len(ids), int(batch_size)):
            chunk = ids[start:start + int(batch_size)]
            if drop_last and len(chunk) < batch_size:
                return
            labels, images = self.fetch(chunk, layout)
            yield chunk, labels, images

    # --- writing

    def _checked(self, images, labels, ids):
        if self.any_size:
            return self._checked_list(images, labels, ids)
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images have dtype {images.dtype}; expected uint8 (HWC pixels 0..255)")
        if images.ndim != 4 or images.shape[1:] != self.shape:
            raise ValueError(f"images have shape {images.shape}; expected (N, {', '.join(map(str, self.shape))})")
        return (np.ascontiguousarray(images),) + self._checked_rows(len(images), labels, ids)

    def _checked_list(self, images, labels, ids):
        """Images of many sizes: a sequence of (H, W, C) uint8 arrays (C 1..4)."""
        checked = []
        for k, image in enumerate(images):
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or not 1 <= image.shape[2] <= 4 or 0 in image.shape:
                raise ValueError(f"image {k} has shape {image.shape} and dtype {image.dtype}; expected (H, W, C) "
                                 f"uint8 with C from 1 to 4")
            checked.append(np.ascontiguousarray(image))
        return (checked,) + self._checked_rows(len(checked), labels, ids)

    def _checked_rows(self, n, labels, ids):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != n or (len(labels) and labels.dtype.kind not in "iu"):
            raise ValueError(f"labels have shape {labels.shape} and dtype {labels.dtype}; expected {n} "
                             f"integers, one per image")
        if ids is not None:
            ids = np.asarray(ids)
            if ids.ndim != 1 or len(ids) != n or (len(ids) and ids.dtype.kind not in "iu"):
                raise ValueError(f"ids have shape {ids.shape} and dtype {ids.dtype}; expected {n} "
                                 f"integers, one per image")
            if len(ids) and (ids.min() < 0 or len(np.unique(ids)) != len(ids)):
                raise ValueError("ids must be unique integers >= 0")
        return labels.astype(np.int64), ids

    def append(self, images, labels, ids=None):
        """Adds images ((N, H, W, C) uint8; on a store of shape 'any' a sequence of (H, W, C) arrays of any
        sizes) with their labels in one transaction: all or nothing. Without `ids` they are numbered after the
        largest id (from 0 in an empty store). Returns the ids."""
        images, labels, ids = self._checked(images, labels, ids)
        with self._using() as conn:
            conn.execute("BEGIN")
            try:
                if ids is None:
                    last = conn.execute("SELECT max(id) FROM temp.store").fetchone()[0]
                    ids = np.arange(len(images), dtype=np.int64) + (0 if last is None else last + 1)
                rows = ((int(i), int(l), img.tobytes(), *img.shape) for i, l, img in zip(ids, labels, images))
                conn.executemany("INSERT INTO temp.store(id, label, pixels, height, width, channels) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return np.asarray(ids, dtype=np.int64)

    # --- lifetime

    def close(self):
        """Closes the connection once the calls other threads have in flight on it return; later calls raise."""
        with self._calls:
            conn, self.conn = self.conn, None
            while self._in_flight:
                self._calls.wait()
        if conn is not None:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        shards = "" if self.shards is None else f", shards={self.shards}"
        return f"imgstore.Store({self.path!r}, backend={self.backend!r}, shape={self.shape!r}{shards})"
