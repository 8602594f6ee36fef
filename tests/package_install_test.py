#!/usr/bin/env python3
"""The Python package installed as a user installs it: a fresh venv (Debian's python3, --system-site-packages for
numpy), `pip install --no-build-isolation --no-deps <project>/python`, which builds the extension with CMake in a
temporary folder of its own (nothing from the project's build/) and puts it inside the package. Then, from a
folder with no build/ and with IMGSTORE_EXTENSION and PYTHONPATH unset, the venv's Python:
  - imports imgstore from the venv, and imgstore.loadable_path() is the imgstore.so inside the venv's package;
  - creates an 8x8x3 store with imgstore.open, appends images and reads them back equal;
  - loads loadable_path() into a plain sqlite3 connection: SELECT count(*) FROM synthetic(5, '4x4x1', 1) is 5.
Also: pip's build leaves nothing in python/ (no build/, no *.egg-info) nor its CMake folder in TMPDIR, and with
imgstore.so removed from the package loadable_path() raises imgstore.ExtensionError.

usage: package_install_test.py [PYTHON]   (PYTHON: the interpreter for the venv, /usr/bin/python3 by default)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SOURCE = ROOT / "python"

CHECK = r"""
import sqlite3, sys, tempfile
from pathlib import Path
import numpy as np
import imgstore

venv = Path(sys.prefix).resolve()
site = Path(imgstore.__file__).resolve().parent.parent
assert venv in site.parents, f"imgstore imported from {imgstore.__file__}, not from the venv {venv}"
assert site.name == "site-packages", f"imgstore imported from {site}, not the venv's site-packages"
path = Path(imgstore.loadable_path())
assert path.is_file(), f"loadable_path() {path} is not a file"
assert path.resolve().parent == site / "imgstore", f"loadable_path() {path} is not in the package {site / 'imgstore'}"
assert imgstore.find_extension() == str(path), (imgstore.find_extension(), str(path))

with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    labels = [3, 1, 4, 1, 5]
    with imgstore.open(f"{d}/s.lmdb", shape=(8, 8, 3)) as s:
        ids = s.append(images, labels)
        assert list(ids) == [0, 1, 2, 3, 4], ids
    with imgstore.open(f"{d}/s.lmdb") as s:
        assert len(s) == 5 and tuple(s.shape) == (8, 8, 3), (len(s), s.shape)
        assert np.array_equal(s.get([0, 1, 2, 3, 4]), images)
        assert list(s.labels()) == labels, s.labels()

conn = sqlite3.connect(":memory:")
conn.enable_load_extension(True)
conn.load_extension(str(path))
n = conn.execute("SELECT count(*) FROM synthetic(5, '4x4x1', 1)").fetchone()[0]
assert n == 5, n
print("ok", path)
"""

MISSING = r"""
import imgstore
try:
    p = imgstore.loadable_path()
except imgstore.ExtensionError as e:
    print("ExtensionError:", e)
else:
    raise SystemExit(f"loadable_path() returned {p} with no imgstore.so in the package")
"""


def run(command, env, cwd, what):
    started = time.monotonic()
    r = subprocess.run([str(c) for c in command], env=env, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    print(f"{what}: {time.monotonic() - started:.1f} s, exit status {r.returncode}", flush=True)
    if r.returncode != 0:
        sys.stdout.write(r.stdout)
        raise SystemExit(f"FAIL: {what}: exit status {r.returncode}")
    return r.stdout


def leftovers():
    """What a setuptools build in the source folder would leave: build/, *.egg-info."""
    return sorted(str(p) for p in [PACKAGE_SOURCE / "build", *PACKAGE_SOURCE.glob("*.egg-info")] if p.exists())


def main():
    python = sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/python3"
    before = leftovers()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imgstore-install-") as scratch:
        scratch = Path(scratch)
        venv, work, tmp = scratch / "venv", scratch / "work", scratch / "tmp"
        work.mkdir()
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("IMGSTORE_EXTENSION", "PYTHONPATH", "PYTHONHOME")}
        env["TMPDIR"] = str(tmp)  # pip's and setup.py's temporary folders, checked for leftovers below
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

        run([python, "-m", "venv", "--system-site-packages", venv], env, work, "python3 -m venv")
        run([venv / "bin" / "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "--no-cache-dir",
             PACKAGE_SOURCE], env, work, "pip install ./python (CMake builds the extension)")

        site = Path(run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                        env, work, "site-packages").strip()).resolve()
        installed = site / "imgstore" / "imgstore.so"
        if not installed.is_file():
            raise SystemExit(f"FAIL: pip install put no extension in the package: {installed} is missing")

        out = run([venv / "bin" / "python", "-c", CHECK], env, work, "the installed package")
        print(out, end="")

        problems = []
        cmake_dirs = sorted(p.name for p in tmp.glob("imgstore-*"))
        if cmake_dirs:
            problems.append(f"the build left {', '.join(cmake_dirs)} in TMPDIR")
        after = leftovers()
        if after != before:
            problems.append(f"pip install left {', '.join(sorted(set(after) - set(before)))} in the source tree")

        installed.unlink()
        out = run([venv / "bin" / "python", "-c", MISSING], env, work, "loadable_path() without imgstore.so")
        print(out, end="")
        if "not installed" not in out or str(installed) not in out:
            problems.append(f"the error without imgstore.so does not name {installed}: {out.strip()}")

    print(f"total: {time.monotonic() - started:.1f} s")
    if problems:
        raise SystemExit("FAIL: " + "; ".join(problems))
    print("ok")


if __name__ == "__main__":
    main()
