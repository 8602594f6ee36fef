#!/usr/bin/env python3
"""An hdf5 store truncated or replaced under an open reader: a reader process opens a table, starts a scan
(five rows fetched), then the store is truncated to half its size (uncompressed and gzip) or replaced by
another store with rename; the reader finishes its scan and runs new statements. Each gives rows or an error
naming the table and the file, the rows it gives are the stored images (not the zeros HDF5 reads past a
file's end), the truncated stores' scans end in an error, and the reader is never killed by a signal (a
read-only mapping of a truncated file would raise SIGBUS).

usage: hdf5_truncate_test.py EXTENSION
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import Checks, connect

check = Checks()
ROWS = 4000
STATEMENTS = [
    "SELECT count(*) FROM t",
    "SELECT id, pixels FROM t",
    "SELECT id, pixels FROM t WHERE id = 1",
    "SELECT id, pixels FROM t WHERE id = %d" % (ROWS - 1),
    "SELECT id, pixels FROM t WHERE id IN (2, %d, %d)" % (ROWS // 2, ROWS - 2),
]


def outcome(rows_or_error):
    """One statement's outcome as the reader reports it: rows as [id, md5 of pixels], or an error."""
    try:
        return {"rows": [[r[0], hashlib.md5(r[1]).hexdigest()] if len(r) > 1 else [r[0]] for r in rows_or_error()]}
    except Exception as e:  # sqlite3.Error, or anything the extension lets through: reported, not fatal
        return {"error": "%s: %s" % (type(e).__name__, e)}


def reader(ext, path):
    """The reader process: a scan started, then (after the parent's change) finished, then new statements."""
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE t USING hdf5(path='%s')" % path)
    scan = con.execute("SELECT id, pixels FROM t")
    first = scan.fetchmany(5)
    print(json.dumps({"ready": len(first)}), flush=True)
    sys.stdin.readline()  # the parent has truncated or replaced the file
    print(json.dumps(outcome(scan.fetchall)), flush=True)
    for sql in STATEMENTS:
        print(json.dumps(outcome(lambda: con.execute(sql).fetchall())), flush=True)
    return 0


def make_store(ext, path, compression, kind, n):
    con = connect(ext)
    con.execute("CREATE VIRTUAL TABLE s USING hdf5(path='%s', shape='32x32x3', compression='%s')" % (path, compression))
    con.execute("INSERT INTO s SELECT * FROM synthetic(%d, '32x32x3', 7, '%s')" % (n, kind))
    digests = {i: hashlib.md5(p).hexdigest() for i, p in con.execute("SELECT id, pixels FROM s")}
    con.close()
    return digests


def run_case(ext, d, compression, action):
    name = "%s, %s" % (compression, action)
    path = os.path.join(d, "store.h5")
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    original = make_store(ext, path, compression, "noise", ROWS)
    other = make_store(ext, os.path.join(d, "other.h5"), compression, "smooth", ROWS // 2)
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--reader", ext, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = child.stdout.readline()
    check(ready.startswith('{"ready": 5'), "%s: the reader started its scan (got %r)" % (name, ready))
    if action == "truncate":
        os.truncate(path, os.path.getsize(path) // 2)
    else:
        os.rename(os.path.join(d, "other.h5"), path)
    try:
        out, err = child.communicate("go\n", timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    check(child.returncode >= 0, "%s: the reader is not killed by a signal (return code %d; stderr %s)"
          % (name, child.returncode, err[-300:]))
    check(child.returncode == 0, "%s: the reader exits 0 (return code %d; stderr %s)" % (name, child.returncode, err[-300:]))
    results = [json.loads(line) for line in out.splitlines()]
    check(len(results) == 1 + len(STATEMENTS), "%s: the scan and %d statements report (got %d)"
          % (name, len(STATEMENTS), len(results)))
    for k, (sql, result) in enumerate(zip(["the scan started before the change"] + STATEMENTS, results)):
        if "error" in result:
            message = result["error"]
            check("table t" in message and path in message, "%s: '%s' fails naming the table and the file (got %r)"
                  % (name, sql, message))
            continue
        for row in result["rows"]:
            if len(row) == 1:
                continue  # a count
            image_id, digest = row
            check(digest == original.get(image_id) or (action == "replace" and digest == other.get(image_id)),
                  "%s: '%s' gives id %d's stored pixels" % (name, sql, image_id))
    if action == "truncate" and results:
        check("error" in results[0], "%s: the scan over the truncated half fails (got %d rows)"
              % (name, len(results[0].get("rows", []))))
        print("%s: the scan after the truncation: %s" % (name, results[0].get("error", "rows")))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        return reader(sys.argv[2], sys.argv[3])
    ext = os.path.abspath(sys.argv[1])
    d = tempfile.mkdtemp(prefix="hdf5-truncate-")
    try:
        for compression, action in [("none", "truncate"), ("none", "replace"), ("gzip:1", "truncate")]:
            run_case(ext, d, compression, action)
    finally:
        shutil.rmtree(d)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
