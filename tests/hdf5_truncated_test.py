#!/usr/bin/env python3
"""An hdf5 store cut short of the end its superblock records, as a power loss leaves it after a commit that
grew the file (the commit synced; the H5Fclose after it, which cuts the file to that end, lost). Made here by
cutting a committed store's trailing zero bytes: what extending the file back restores exactly. Then:
imgstore_check (which changes nothing) reports it and names imgstore_repair, leaving the file as it is, as
does a table opened by a user who may not write the store (when run as root);
imgstore_repair restores the last commit; a table opened on the store (which may write it) does too. Each
restored store holds exactly the committed rows and takes a new commit.

usage: hdf5_truncated_test.py SQLITE3 EXTENSION
"""

import os
import shutil
import sys
import tempfile

from harness import Checks, shell

check = Checks()
SHAPE = "8x8x3"
DIGEST = "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;"



def cut_copy(good, path):
    """A copy of `good` without its trailing zero bytes; returns the cut length and the full one."""
    with open(good, "rb") as f:
        data = f.read()
    end = len(data.rstrip(b"\0"))
    with open(path, "wb") as f:
        f.write(data[:end])
    return end, len(data)


def main():
    sqlite3_path, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="imgstore-hdf5-truncated-") as work:
        # A store, then a commit that grows it (3,000 rows more): the last committed state.
        r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='good.h5', shape='%s');"
                  "INSERT INTO t SELECT * FROM synthetic(50, '%s', 1);"
                  "INSERT INTO t SELECT id + 1000, label, pixels FROM synthetic(3000, '%s', 2);%s"
                  % (SHAPE, SHAPE, SHAPE, DIGEST), work)
        check(r.returncode == 0, "could not make the store: %s" % r.stderr)
        committed = r.stdout.strip()
        good = os.path.join(work, "good.h5")

        # imgstore_check reports it, names imgstore_repair, and changes nothing.
        cut, full = cut_copy(good, os.path.join(work, "c.h5"))
        check(0 < cut < full, "the store ends in zero bytes to cut (%d of %d)" % (cut, full))
        r = shell(sqlite3_path, ext, "SELECT imgstore_check('hdf5', 'c.h5', 1);", work)
        want = ("table imgstore_check: 'c.h5' is shorter (%d bytes) than the end its superblock records (%d): cut "
                "short, as a power loss after a commit that grew it leaves it; SELECT imgstore_repair('hdf5', 'c.h5') "
                "restores its last commit" % (cut, full))
        check(r.stdout.strip() == want, "imgstore_check: expected %r, got %r %r" % (want, r.stdout, r.stderr))
        check(os.path.getsize(os.path.join(work, "c.h5")) == cut, "imgstore_check changed the file's size")

        # A reader that may not write the store (nobody, from root) is refused the same way, and changes nothing.
        if os.geteuid() == 0 and shutil.which("setpriv"):
            os.chmod(work, 0o755)
            os.chmod(os.path.join(work, "c.h5"), 0o644)
            r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='c.h5');%s" % DIGEST, work,
                      user=65534)
            check(r.returncode != 0 and want.replace("table imgstore_check", "table t") in r.stderr,
                  "a reader without write permission: expected %r, got %r" % (want, r.stderr))
            check(os.path.getsize(os.path.join(work, "c.h5")) == cut, "a reader without write permission changed the file")
        else:
            print("(not root: the reader without write permission is not tried)")

        # imgstore_repair restores the last commit; so does a table opened on the store.
        r = shell(sqlite3_path, ext, "SELECT imgstore_repair('hdf5', 'c.h5');", work)
        check(r.stdout.strip() == "ok", "imgstore_repair: expected 'ok', got %r %r" % (r.stdout, r.stderr))
        cut_copy(good, os.path.join(work, "o.h5"))
        for path, how in (("c.h5", "after imgstore_repair"), ("o.h5", "opened as a table")):
            r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='%s');%s"
                      "INSERT INTO t SELECT id + 9000, label, pixels FROM synthetic(5, '%s', 3);"
                      "SELECT count(*) FROM t;" % (path, DIGEST, SHAPE), work)
            check(r.returncode == 0 and r.stdout.split("\n")[:2] == [committed, "3055"],
                  "%s: expected the committed rows %r and a new commit, got %r %r" % (how, committed, r.stdout, r.stderr))
            check(os.path.getsize(os.path.join(work, path)) >= full, "%s: the file is still short" % how)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
