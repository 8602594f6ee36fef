#!/usr/bin/env python3
"""Memory of hdf5 stores opened and dropped: one sqlite3 shell creates, fills, scans and drops 200 hdf5 stores
(plain and gzip, 3,000 images each) in turn; its anonymous memory (RssAnon: heap and buffers) afterwards may
exceed what it had before the first store by at most 8 MB. (Before HDF5's free lists and the freed heap were
released at each file's close, it grew by about 13 MB here.)

usage: hdf5_memory_test.py SQLITE3 EXTENSION
"""

import os
import re
import subprocess
import sys
import tempfile

from harness import Checks

check = Checks()
CYCLES = 200
BOUND_MB = 8


def main():
    shell, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="hdf5-memory-") as d:
        # .system runs under sh -c, whose parent ($PPID) is the shell itself.
        rss = ".system grep RssAnon /proc/$PPID/status\n"
        sql = [".load %s" % ext,
               "CREATE TABLE src AS SELECT * FROM synthetic(3000, '32x32x3', 1, 'smooth');", rss]
        for i in range(CYCLES):
            compression = "gzip:1" if i % 2 else "none"
            sql.append("CREATE VIRTUAL TABLE t%d USING hdf5(path='%s/s%d.h5', shape='32x32x3', compression='%s');"
                       % (i, d, i, compression))
            sql.append("INSERT INTO t%d SELECT * FROM src;" % i)
            sql.append("SELECT count(*), sum(length(pixels)) FROM t%d;" % i)
            sql.append("SELECT count(*) FROM t%d WHERE id IN (5, 100, 2000);" % i)
            sql.append("DROP TABLE t%d;" % i)
        sql.append(rss)
        out = subprocess.run([shell, "-batch", ":memory:"], input="\n".join(sql) + "\n", capture_output=True,
                             text=True, cwd=d, timeout=600)
        check(out.returncode == 0, "the shell exits 0 (stderr: %s)" % out.stderr[-500:])
        values = [int(v) for v in re.findall(r"RssAnon:\s+(\d+) kB", out.stdout)]
        check(len(values) == 2, "two RssAnon readings in the output (got %r)" % values)
        if len(values) == 2:
            grown = (values[1] - values[0]) / 1024
            print("RssAnon: %d kB before the first store, %d kB after %d" % (values[0], values[1], CYCLES))
            check(grown <= BOUND_MB, "RssAnon grew by %.1f MB over %d stores opened and dropped (from %d kB to "
                       "%d kB); expected at most %d MB" % (grown, CYCLES, values[0], values[1], BOUND_MB))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
