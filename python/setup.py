"""Builds the imgstore SQLite extension with CMake and ships it inside the package, as imgstore/imgstore.so.

The metadata is in pyproject.toml; this file only adds the build step. `pip install --no-build-isolation ./python`
(or `pip install ./python` online) runs `cmake -S <project root> -B <a temporary folder>` and builds the target
`imgstore` alone (not the tests, benchmarks or CLI), then copies imgstore.so into the package, where
imgstore.find_extension() and imgstore.loadable_path() find it. The project root is the folder above this file's
(this file is python/setup.py of the imgstore source tree). The wheel is platform-specific: the package carries a
native library, which loads into any Python's sqlite3 (tagged py3-none-<platform>, not one CPython ABI).

Environment: CMAKE (the cmake program, else `cmake` on PATH), CMAKE_BUILD_PARALLEL_LEVEL (parallel jobs, else
the number of CPUs), IMGSTORE_CMAKE_ARGS (extra configure arguments, split on spaces).
"""

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError  # a DistutilsError: setuptools and pip show it as one `error: ...` line

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # no wheel package: a plain `setup.py build/install` still works
    bdist_wheel = None

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent
LIBRARY = "imgstore.so"  # the file name fixes SQLite's entry point: sqlite3_imgstore_init
PACKAGE = "imgstore"

PREREQUISITES = (
    "Building it needs CMake (>= 3.20), a C++20 compiler, pkg-config and the development packages of SQLite, LMDB, "
    "HDF5, libpng, zlib and xxHash (configured with IMGSTORE_EXTENSION_ONLY: not the tests' tools). On Debian 12: "
    "apt-get install cmake g++ make pkg-config libsqlite3-dev liblmdb-dev libhdf5-dev libpng-dev zlib1g-dev "
    "libxxhash-dev (the project's scripts/setup installs these and everything else it uses)"
)


class ExtensionBuildError(BaseError):
    """Shown by setuptools (and pip) as one `error: <message>` line."""


def project_root():
    """The imgstore source tree this setup.py belongs to: the folder above python/, with CMakeLists.txt."""
    cmakelists = PROJECT_ROOT / "CMakeLists.txt"
    if not cmakelists.is_file() or not (PROJECT_ROOT / "extension").is_dir():
        raise ExtensionBuildError(
            f"imgstore's extension is built from the project's C++ sources, expected in {PROJECT_ROOT} (the folder "
            f"above this setup.py, {HERE}): {cmakelists} or {PROJECT_ROOT / 'extension'} is missing. Install from "
            "an imgstore source tree (`pip install ./python` at its root); a copy of python/ alone, or an sdist of "
            "it, cannot build the extension"
        )
    return PROJECT_ROOT


def find_cmake():
    cmake = os.environ.get("CMAKE") or shutil.which("cmake")
    if not cmake or not shutil.which(cmake):
        where = f"CMAKE={os.environ['CMAKE']!r} is not a program" if os.environ.get("CMAKE") else \
            f"cmake is not on PATH ({os.environ.get('PATH', '')})"
        raise ExtensionBuildError(f"cannot build imgstore's extension: {where}. {PREREQUISITES}")
    return cmake


def run(command, step, build_dir):
    print("imgstore: " + " ".join(shlex.quote(str(c)) for c in command), flush=True)
    try:
        subprocess.run([str(c) for c in command], check=True)
    except subprocess.CalledProcessError as e:
        raise ExtensionBuildError(
            f"cannot build imgstore's extension: {step} failed (exit status {e.returncode}; its messages are "
            f"above, its build folder {build_dir} is kept). {PREREQUISITES}"
        ) from None
    except OSError as e:
        raise ExtensionBuildError(f"cannot build imgstore's extension: cannot run {command[0]}: {e}") from None


class BuildExtension(build_ext):
    """Builds the CMake target `imgstore` in a fresh temporary folder and copies imgstore.so into the package."""

    def run(self):
        if getattr(self, "editable_mode", False) or self.inplace:
            # An editable install runs from the source tree, which loads the project's build/imgstore.so
            # (scripts/build); a copy inside python/imgstore would go stale beside it.
            print("imgstore: editable install, not building the extension: the package loads build/imgstore.so "
                  "of the source tree (build it with scripts/build)", flush=True)
            return
        root = project_root()
        cmake = find_cmake()
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        extra = shlex.split(os.environ.get("IMGSTORE_CMAKE_ARGS", ""))
        # A fresh folder each time: nothing comes from the project's build/ or an earlier install. It is removed
        # once the library is copied, and kept when the build fails (for CMakeError.log and the like).
        build_dir = Path(tempfile.mkdtemp(prefix="imgstore-cmake-"))
        run([cmake, "-S", root, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DIMGSTORE_EXTENSION_ONLY=ON", *extra], "cmake's configure step",
            build_dir)
        run([cmake, "--build", build_dir, "--target", "imgstore", "-j", jobs], "cmake --build", build_dir)
        built = build_dir / LIBRARY
        if not built.is_file():
            raise ExtensionBuildError(f"cmake built the target imgstore but {built} is missing")
        target = Path(self.get_library_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
        target.chmod(0o755)
        shutil.rmtree(build_dir, ignore_errors=True)
        print(f"imgstore: copied the extension to {target}", flush=True)

    def get_library_path(self):
        return os.path.join(self.build_lib, PACKAGE, LIBRARY)

    def get_outputs(self):
        if getattr(self, "editable_mode", False) or self.inplace:
            return []
        return [self.get_library_path()]

    def get_source_files(self):
        return []


class BinaryDistribution(Distribution):
    """A package with a native library: installed to platlib, its wheel not pure."""

    def has_ext_modules(self):
        return True


cmdclass = {"build_ext": BuildExtension}

if bdist_wheel is not None:
    class BinaryWheel(bdist_wheel):
        """py3-none-<platform>: imgstore.so is a SQLite extension, not a CPython module, so any Python 3 on the
        platform loads it."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, platform = super().get_tag()
            return "py3", "none", platform

    cmdclass["bdist_wheel"] = BinaryWheel


# setuptools' own build folders (build/lib, build/bdist.*, imgstore.egg-info) go to a temporary folder too, not
# into python/: a build/lib left from an earlier build would carry files since deleted from the sources into the
# next wheel. (--build-base and --egg-base on the command line still override.)
SCRATCH = tempfile.mkdtemp(prefix="imgstore-setup-")
atexit.register(shutil.rmtree, SCRATCH, True)

setup(
    distclass=BinaryDistribution,
    cmdclass=cmdclass,
    options={"build": {"build_base": os.path.join(SCRATCH, "build")}, "egg_info": {"egg_base": SCRATCH}},
)
