#!/usr/bin/env python3
"""Stores one may only read: on a read-only mount (EROFS) and, as a user without write permission (EACCES),
every backend serves SELECTs (the same rows, the same digest) and refuses writes with SQLITE_READONLY and a
message naming the store; nothing is created or changed beside it. Needs root (mount, setpriv); skipped
(exit 77) otherwise.

usage: readonly_test.py SQLITE3 EXTENSION
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from harness import Checks

check = Checks()
STORES = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}



def run(sqlite3_path, ext, sql, cwd, user=None):
    cmd = [sqlite3_path, "-batch", ":memory:"]
    if user:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    return subprocess.run(cmd, input=".load %s\n%s\n" % (ext, sql), capture_output=True, text=True, cwd=cwd, timeout=60)


def tree_digest(root):
    """Names, sizes and contents of every file under root: 'nothing changed' made checkable."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            h.update(os.path.relpath(p, root).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def make_stores(sqlite3_path, ext, where):
    for backend, path in STORES.items():
        r = run(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='%s', shape='8x8x3');"
                "INSERT INTO t SELECT * FROM synthetic(300, '8x8x3', 7, 'smooth');" % (backend, path), where)
        check(r.returncode == 0, "%s: could not make the store: %s" % (backend, r.stderr))


def check_read_only(sqlite3_path, ext, where, why, user=None):
    expected = run(sqlite3_path, ext, "SELECT image_digest(id, label, pixels) FROM synthetic(300, '8x8x3', 7, 'smooth');",
                   where, user).stdout.strip()
    before = tree_digest(where)
    for backend, path in STORES.items():
        r = run(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='%s');"
                "SELECT image_digest(id, label, pixels) FROM t;"
                "SELECT count(*) FROM t WHERE id = 150;"
                "SELECT label, count(*) FROM t GROUP BY label ORDER BY label LIMIT 1;" % (backend, path), where, user)
        lines = r.stdout.split()
        check(r.returncode == 0 and lines[:2] == [expected, "1"],
              "%s (%s): reading failed: rc %d, %r, %r" % (backend, why, r.returncode, r.stdout, r.stderr))
        for write in ("INSERT INTO t SELECT id + 1000, label, pixels FROM synthetic(2, '8x8x3', 1, 'smooth')",
                      "DELETE FROM t WHERE id = 3", "UPDATE t SET label = 9 WHERE id = 4"):
            r = run(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s(path='%s');\n%s;" % (backend, path, write), where, user)
            want = "table t: the store '%s' is read-only (%s); it can be read but not written (8)" % (path, why)
            check(r.returncode != 0 and want in r.stderr,
                  "%s (%s): %s: expected %r, got %r" % (backend, why, write, want, r.stderr.strip()))
    check(tree_digest(where) == before, "%s: reading or failing to write changed the files" % why)


def main():
    sqlite3_path, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("SKIP: needs root (mount, setpriv)")
        return 77
    work = tempfile.mkdtemp(prefix="imgstore-readonly-")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    try:
        # 1. A read-only mount: a tmpfs holding the stores, remounted read-only.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], check=True)
        try:
            make_stores(sqlite3_path, ext, mnt)
            subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
            check_read_only(sqlite3_path, ext, mnt, "Read-only file system")
        finally:
            subprocess.run(["umount", mnt], check=True)
        # 2. No permission: root's stores (files 0644 in a 0755 directory, lmdb's lock file too), read by nobody.
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        make_stores(sqlite3_path, ext, shared)
        os.chmod(work, 0o755)
        for dirpath, dirnames, filenames in os.walk(shared):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        check_read_only(sqlite3_path, ext, shared, "Permission denied", user=65534)  # nobody
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
