"""Finding and loading the imgstore SQLite extension into a sqlite3 connection."""

import os
import sqlite3
from pathlib import Path

ENV_VAR = "IMGSTORE_EXTENSION"

NO_EXTENSIONS = (
    "this Python's sqlite3 module cannot load SQLite extensions (it was built without "
    "--enable-loadable-sqlite-extensions), and imgstore is one. Use a Python built with loadable extensions, "
    "such as Debian's /usr/bin/python3 (apt-get install python3 python3-numpy), or build Python with "
    "./configure --enable-loadable-sqlite-extensions"
)


class ExtensionError(RuntimeError):
    """The imgstore extension cannot be loaded: not found, or this Python cannot load extensions."""


def _candidates():
    """Where the built extension may be, most specific first."""
    source_tree = Path(__file__).resolve().parent.parent.parent  # python/imgstore/ -> the project root
    return [source_tree / "build" / "imgstore.so", Path.cwd() / "build" / "imgstore.so"]


def find_extension():
    """The path to give load_extension: $IMGSTORE_EXTENSION when set, else the project's build/imgstore.so
    (beside this source tree, or under the working directory), else 'imgstore' for SQLite's own search."""
    given = os.environ.get(ENV_VAR)
    if given:
        return given
    for candidate in _candidates():
        if candidate.is_file():
            return str(candidate)
    return "imgstore"


def _enable(conn, on):
    enable = getattr(conn, "enable_load_extension", None)
    if enable is None:
        raise ExtensionError(NO_EXTENSIONS)
    try:
        enable(on)
    except (sqlite3.NotSupportedError, AttributeError) as e:
        raise ExtensionError(NO_EXTENSIONS) from e


def load(conn, path=None):
    """Loads the extension into `conn` (a sqlite3.Connection): its modules (lmdb, hdf5, png_dir, imgstore),
    sources and functions. `path` (or $IMGSTORE_EXTENSION) overrides where it is found."""
    path = path or find_extension()
    _enable(conn, True)
    try:
        conn.load_extension(path)
    except sqlite3.OperationalError as e:
        tried = path if os.environ.get(ENV_VAR) or path != "imgstore" else ", ".join(map(str, _candidates()))
        raise ExtensionError(
            f"cannot load the imgstore extension ({e}); looked at {tried}. Build it with scripts/build, or set "
            f"{ENV_VAR} to the path of imgstore.so"
        ) from e
    finally:
        _enable(conn, False)
    return conn
