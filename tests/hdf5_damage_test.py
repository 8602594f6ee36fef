#!/usr/bin/env python3
"""Damaged hdf5 stores: a small store with one byte flipped at a time (a deterministic sample of offsets over
HDF5's metadata and over the datasets' raw chunks), each copy opened by a new sqlite3 shell as a table with
timeout=2000, scanned in full, and checked with imgstore_check(..., 1). Every case must end on its own (the shell
is killed at 10 s: a hang) without a signal, and the table must give either exactly the store's rows or an error
naming the table and the file. A flip in HDF5's metadata (all checksummed in the latest file format) must never
read as different rows; a flip in raw chunk data (pixels, labels, ids) can, as the format keeps no checksum of
its own there yet: those cases are counted, not failed.

With --any the store is of shape 'any' (images of many sizes: a 1-D /images, /offsets, /shapes), and its rows
are compared with their shapes; /offsets, /shapes and /checksums are raw chunk data too.

usage: hdf5_damage_test.py SQLITE3 EXTENSION [--any]
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

from harness import Checks, shell

check = Checks()
SHAPE = "4x4x1"
ROWS = 20
KILL_AFTER = 10  # seconds: far past the table's timeout (2 s) and imgstore_check's default (5 s)
METADATA_CASES = 300
RAW_CASES = 40
ANY = "--any" in sys.argv
# The rows, and what is compared of them (shape 'any': each image cut to 1..4 x 1..4 x 1..4 by its id).
if ANY:
    CREATE = "shape='any'"
    ROWS_SQL = ("INSERT INTO t(id, label, pixels, height, width, channels) SELECT id, label, "
                "substr(pixels, 1, (1 + id % 4) * (1 + id / 4 % 4) * (1 + id / 2 % 4)), 1 + id % 4, 1 + id / 4 % 4, "
                "1 + id / 2 % 4 FROM synthetic({rows}, '4x4x4', 1);")
    DIGEST = ("count(*) || ' ' || image_digest(id, label, pixels) || ' ' || "
              "image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))")
    RAW = ("images", "labels", "ids", "commit", "offsets", "shapes", "checksums")
else:
    CREATE = "shape='%s'" % SHAPE
    ROWS_SQL = "INSERT INTO t SELECT * FROM synthetic({rows}, '%s', 1);" % SHAPE
    DIGEST = "count(*) || ' ' || image_digest(id, label, pixels)"
    RAW = ("images", "labels", "ids", "commit")


def raw_ranges(path):
    """[start, end) of every dataset chunk's raw bytes: the rest of the file is HDF5's metadata (or free)."""
    import h5py
    ranges = []
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        for name in RAW:
            d = f[name].id
            for i in range(d.get_num_chunks()):
                info = d.get_chunk_info(i)
                ranges.append((info.byte_offset, info.byte_offset + info.size))
    return ranges


def spread(offsets, n):
    """n offsets spread evenly over the sorted list, first and last included."""
    if len(offsets) <= n:
        return offsets
    return [offsets[i * (len(offsets) - 1) // (n - 1)] for i in range(n)]


def sample_offsets(data, ranges):
    """Metadata: its non-zero bytes (zeros are mostly unused space), spread; raw: the bytes the rows use."""
    def in_raw(i):
        return any(lo <= i < hi for lo, hi in ranges)
    metadata = [i for i in range(len(data)) if data[i] and not in_raw(i)]
    used = []
    for lo, hi in ranges:
        used += range(lo, min(hi, lo + ROWS * 16))  # 16 bytes a row: a 4x4x1 image, or two int64 rows
    return spread(metadata, METADATA_CASES), spread(sorted(used), RAW_CASES)


def run_case(sqlite3_path, ext, good, work, offset, expected):
    """One flipped byte in a copy: 'rows', 'error', 'wrong', 'unclear', 'hang' or 'signal', and the detail."""
    where = os.path.join(work, "case%d" % offset)
    os.makedirs(where)
    path = os.path.join(where, "d.h5")
    shutil.copyfile(good, path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0xFF]))
    script = ("CREATE VIRTUAL TABLE temp.t USING hdf5(path='d.h5', timeout=2000);\n"
              "SELECT 'rows', " + DIGEST + " FROM t;\n"
              "SELECT 'check', imgstore_check('hdf5', 'd.h5', 1);\n")
    try:
        r = shell(sqlite3_path, ext, script, where, timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        return "hang", "killed after %d s" % KILL_AFTER
    finally:
        shutil.rmtree(where, ignore_errors=True)
    if r.returncode < 0:
        return "signal", "signal %d: %s" % (-r.returncode, r.stderr.strip()[:300])
    if "check|" not in r.stdout:
        return "unclear", "imgstore_check gave nothing: %r" % r.stderr.strip()[:300]
    rows = [line for line in r.stdout.splitlines() if line.startswith("rows|")]
    if rows and rows[0] == "rows|" + expected:
        return "rows", ""
    if rows:
        return "wrong", rows[0]
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    clear = bool(errors) and "table t" in errors[0] and "d.h5" in errors[0]
    return ("error" if clear else "unclear"), (errors[0] if errors else "no output")


def main():
    sqlite3_path, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="imgstore-hdf5-damage-") as work:
        r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='good.h5', %s);" % CREATE +
                  ROWS_SQL.format(rows=ROWS) + "SELECT %s FROM t;" % DIGEST, work)
        check(r.returncode == 0, "could not make the store: %s" % r.stderr)
        expected = r.stdout.strip()
        good = os.path.join(work, "good.h5")
        with open(good, "rb") as f:
            data = f.read()
        metadata, raw = sample_offsets(data, raw_ranges(good))
        cases = [(o, "metadata") for o in metadata] + [(o, "raw") for o in raw]
        tally = {}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = pool.map(lambda c: (c, run_case(sqlite3_path, ext, good, work, c[0], expected)), cases)
            for (offset, region), (outcome, detail) in results:
                tally[(region, outcome)] = tally.get((region, outcome), 0) + 1
                if outcome in ("hang", "signal", "unclear") or (outcome == "wrong" and region == "metadata"):
                    check(False, "byte %d (%s) flipped: %s: %s" % (offset, region, outcome, detail))
                else:
                    check(True, "")
        for (region, outcome), n in sorted(tally.items()):
            print("%-8s %-7s %d" % (region, outcome, n))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
