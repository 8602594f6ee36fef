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
    """Where the built extension may be, most specific first: inside this package (pip install ./python builds
    it there), the source tree's build/ (scripts/build), the working directory's build/."""
    package = Path(__file__).resolve().parent
    source_tree = package.parent.parent  # python/imgstore/ -> the project root
    return [package / "imgstore.so", source_tree / "build" / "imgstore.so", Path.cwd() / "build" / "imgstore.so"]


def _found():
    """$IMGSTORE_EXTENSION when set, else the first candidate that exists, else None."""
    given = os.environ.get(ENV_VAR)
    if given:
        return given
    for candidate in _candidates():
        if candidate.is_file():
            return str(candidate)
    return None


def find_extension():
    """The path to give load_extension: $IMGSTORE_EXTENSION when set, else the extension installed inside this
    package, else the project's build/imgstore.so (beside this source tree, or under the working directory), else
    'imgstore' for SQLite's own search."""
    return _found() or "imgstore"


def _names_a_file(path):
    """load_extension's view: the path, or the path with .so added (SQLite tries both)."""
    return os.path.isfile(path) or os.path.isfile(path + ".so")


def _wrong_variable(given):
    return ExtensionError(
        f"{ENV_VAR}={given!r} names no file (nor {given + '.so'!r}); point it at the built imgstore.so, or unset it "
        f"to use the extension installed with the package or built in the source tree"
    )


def loadable_path():
    """The path of the extension this package loads, for conn.load_extension(path) or the sqlite3 shell's
    `.load`: $IMGSTORE_EXTENSION when set (as given), else the first of find_extension()'s places that holds
    imgstore.so. Raises ExtensionError when there is none."""
    found = _found()
    if found is not None and os.environ.get(ENV_VAR) and not _names_a_file(found):
        raise _wrong_variable(found)
    if found is None:
        raise ExtensionError(
            f"the imgstore extension is not installed: no imgstore.so at {', '.join(map(str, _candidates()))}. "
            f"Install the package with `pip install --no-build-isolation ./python` from the project root (it "
            f"builds the extension into the package), build it with scripts/build, or set {ENV_VAR} to the "
            f"path of imgstore.so"
        )
    return found


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
    given = path
    path = path or find_extension()
    _enable(conn, True)
    try:
        conn.load_extension(path)
    except sqlite3.OperationalError as e:
        if given is None and os.environ.get(ENV_VAR) and not _names_a_file(path):
            raise _wrong_variable(path) from e
        tried = path if os.environ.get(ENV_VAR) or path != "imgstore" else ", ".join(map(str, _candidates()))
        raise ExtensionError(
            f"cannot load the imgstore extension ({e}); looked at {tried}. Install the package with `pip install "
            f"--no-build-isolation ./python` (it builds the extension into the package), build it with "
            f"scripts/build, or set {ENV_VAR} to the path of imgstore.so"
        ) from e
    finally:
        _enable(conn, False)
    return conn
