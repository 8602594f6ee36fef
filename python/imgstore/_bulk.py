"""The extension's bulk reader (extension/sqlite/bulk_read.h) through ctypes: images, labels and ids copied by
the extension straight into numpy arrays, with no SQLite value or Python object per row. ctypes releases the
GIL for the call; the extension holds the connection's mutex during it, as a statement would."""

import ctypes
import sqlite3

import numpy as np

INT64_MAX = 2**63 - 1
_ERR_BYTES = 2048

# The loaded extension by its file: the same file the connection's load_extension loaded, so the same copy
# (dlopen of a loaded path returns it), whose table handles are the connection's.
_libraries = {}


def _library(path):
    lib = _libraries.get(path)
    if lib is None:
        lib = ctypes.CDLL(path)
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p
        lib.imgstore_bulk_get.argtypes = [i64, ptr, i64, i32, ptr, ptr, ptr, ctypes.c_char_p, i64]
        lib.imgstore_bulk_get.restype = ctypes.c_int
        lib.imgstore_bulk_scan.argtypes = [i64, i64, i64, i64, i32, ptr, ptr, ptr, ptr, ptr, ctypes.c_char_p, i64]
        lib.imgstore_bulk_scan.restype = ctypes.c_int
        _libraries[path] = lib
    return lib


# SQLite result codes to the exceptions Python's sqlite3 raises for them, so a damaged image or a busy store is
# the same exception from a bulk read as from a query.
_EXCEPTIONS = {
    5: sqlite3.OperationalError,   # SQLITE_BUSY
    7: MemoryError,                # SQLITE_NOMEM
    8: sqlite3.OperationalError,   # SQLITE_READONLY
    10: sqlite3.OperationalError,  # SQLITE_IOERR
    11: sqlite3.DatabaseError,     # SQLITE_CORRUPT
    13: sqlite3.OperationalError,  # SQLITE_FULL
    14: sqlite3.OperationalError,  # SQLITE_CANTOPEN
    19: sqlite3.IntegrityError,    # SQLITE_CONSTRAINT
    20: sqlite3.IntegrityError,    # SQLITE_MISMATCH
    21: sqlite3.InterfaceError,    # SQLITE_MISUSE
}


def _raise(rc, err):
    message = err.value.decode("utf-8", "replace")
    error = _EXCEPTIONS.get(rc & 0xFF, sqlite3.OperationalError)(message)
    if isinstance(error, sqlite3.Error):
        error.sqlite_errorcode = rc
    raise error


def _address(array):
    return None if array is None else array.ctypes.data


class BulkReader:
    """Bulk reads of one store table of `conn` (by default the Store's temp.store)."""

    def __init__(self, conn, table="store", schema="temp"):
        path, self.handle = conn.execute(
            "SELECT imgstore_extension_path(), imgstore_bulk_handle(?, ?)", (table, schema)).fetchone()
        self._lib = _library(path)

    def get(self, ids, labels, pixels, found, chw):
        """Fills labels[i], pixels[i] and found[i] for ids[i] (arrays preallocated by the caller)."""
        err = ctypes.create_string_buffer(_ERR_BYTES)
        rc = self._lib.imgstore_bulk_get(self.handle, _address(ids), len(ids), int(chw), _address(labels),
                                         _address(pixels), _address(found), err, _ERR_BYTES)
        if rc != 0:
            _raise(rc, err)

    def scan(self, lo, hi, capacity, chw, ids, labels, pixels):
        """Reads up to `capacity` rows with lo <= id <= hi into the given arrays (None: not read); returns
        (rows written, rows in the range)."""
        err = ctypes.create_string_buffer(_ERR_BYTES)
        rows, total = ctypes.c_int64(0), ctypes.c_int64(0)
        rc = self._lib.imgstore_bulk_scan(self.handle, int(lo), int(hi), int(capacity), int(chw), _address(ids),
                                          _address(labels), _address(pixels), ctypes.byref(rows),
                                          ctypes.byref(total), err, _ERR_BYTES)
        if rc != 0:
            _raise(rc, err)
        return rows.value, total.value
