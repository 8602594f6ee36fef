#!/usr/bin/env python3
"""Full disk: each store lives on a small tmpfs; an INSERT that fills it fails with a clear error, and the
store still opens, in a new process, with exactly its last committed rows, and passes imgstore_check.
Needs root (to mount the tmpfs); without it the test reports itself skipped (exit 77).

usage: full_disk_test.py SQLITE3 EXTENSION
"""

import os
import shutil
import subprocess
import sys
import tempfile


def sql(sqlite3, ext, script, cwd):
    return subprocess.run([sqlite3, "-batch", "-bail", ":memory:"], input=".load %s\n%s\n" % (ext, script), cwd=cwd,
                          capture_output=True, text=True)


def main():
    sqlite3, ext = sys.argv[1], sys.argv[2]
    base = tempfile.mkdtemp(prefix="imgstore-full-")
    mnt = os.path.join(base, "mnt")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt]).returncode != 0:
        print("skipped: mounting a tmpfs needs root")
        shutil.rmtree(base, ignore_errors=True)
        return 77
    failures = []
    try:
        for backend, path in (("lmdb", "s.lmdb"), ("hdf5", "s.h5"), ("png_dir", "s_png")):
            create = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='32x32x3');" % (backend, path)
            reopen = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s');" % (backend, path)
            first = sql(sqlite3, ext, create + "INSERT INTO s SELECT * FROM synthetic(200, '32x32x3', 1);", mnt)
            if first.returncode != 0:
                failures.append("%s: the first 200 rows did not fit: %s" % (backend, first.stderr))
                continue
            full = sql(sqlite3, ext, reopen + "INSERT INTO s SELECT id + 1000, label, pixels FROM synthetic(5000, '32x32x3', 2);", mnt)
            message = full.stderr.strip()
            if full.returncode == 0:
                failures.append("%s: 15 MB went into a 6 MB file system without an error" % backend)
            elif not any(word in message for word in ("No space left", "errno = 28", "filled up", "file system is full")):
                failures.append("%s: the error does not say the disk is full: %s" % (backend, message))
            else:
                print("%s: %s" % (backend, message))
            after = sql(sqlite3, ext, reopen + "SELECT count(*), (SELECT image_digest(id, label, pixels) FROM s) = "
                        "(SELECT image_digest(id, label, pixels) FROM synthetic(200, '32x32x3', 1)) FROM s;", mnt)
            if after.stdout.strip() != "200|1":
                failures.append("%s: after the failed INSERT the store holds %r (%s); expected its 200 committed rows"
                                % (backend, after.stdout.strip(), after.stderr.strip()))
            check = sql(sqlite3, ext, "SELECT imgstore_check('%s', '%s', 1);" % (backend, path), mnt).stdout.strip()
            if check != "ok":
                failures.append("%s: imgstore_check after the full disk: %s" % (backend, check))
            for p in os.listdir(mnt):
                full_path = os.path.join(mnt, p)
                shutil.rmtree(full_path) if os.path.isdir(full_path) else os.remove(full_path)
    finally:
        subprocess.run(["umount", mnt])
        shutil.rmtree(base, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("%d passed, %d failed" % (3 - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
