#!/usr/bin/env python3
"""Damaged images in lmdb stores, as a user would find them: a store of random images (so each image's bytes occur
once in data.mdb) made through the sqlite3 shell, then, behind the store's back, one byte in the middle of image 17's
pixels flipped and one byte of image 29's label, each found by searching data.mdb for that image's bytes. Then
imgstore_check('lmdb', path, 1) names exactly those two ids, one line each; every read of their pixels (a lookup, a
scan, an IN list) fails with SQLITE_CORRUPT and a message naming the table, the id and the data file, also after an
UPDATE of the label (which changes only the checksum's label term: it never vouches for the damaged bytes); the other
images still read; a label alone still reads; verify=0 serves the bytes.
Alone and sharded (shards=3, where check prefixes each line with its shard).

usage: lmdb_damage_test.py SQLITE3 EXTENSION
"""

import os
import sys
import tempfile

from harness import Checks, shell

check = Checks()
SHAPE = "8x8x3"
N = 60


def run(sqlite3_path, ext, sql, cwd):
    return shell(sqlite3_path, ext, sql, cwd)


def image_bytes(sqlite3_path, ext, cwd, create, image_id):
    r = run(sqlite3_path, ext, "%s SELECT hex(pixels) FROM t WHERE id = %d;" % (create, image_id), cwd)
    return bytes.fromhex(r.stdout.strip())


def flip(data_file, needle, at):
    """Flips byte `at` (relative to where `needle` starts; negative: before it) of the one place `needle` is."""
    with open(data_file, "rb") as f:
        data = bytearray(f.read())
    where = data.find(needle)
    check(where >= 0 and data.find(needle, where + 1) < 0, "%s: the image's bytes occur once" % data_file)
    data[where + at] ^= 0x01
    with open(data_file, "wb") as f:
        f.write(data)


def one_store(sqlite3_path, ext, work, shards):
    label = "sharded" if shards else "single"
    path = "t" if shards else "x.lmdb"
    create = "CREATE VIRTUAL TABLE temp.t USING lmdb(path='%s');" % path
    r = run(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING lmdb(path='%s', shape='%s'%s);"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
            "INSERT INTO t SELECT i, i %% 10, randomblob(192) FROM n;" % (path, SHAPE, ", shards=3" if shards else "", N),
            work)
    check(r.returncode == 0, "%s: making the store: %s" % (label, r.stderr))
    files = {i: os.path.join(path, "shard-%03d.lmdb" % (i % 3), "data.mdb") if shards else os.path.join(path, "data.mdb")
             for i in (17, 29)}
    pixels = {i: image_bytes(sqlite3_path, ext, work, create, i) for i in (17, 29)}
    flip(os.path.join(work, files[17]), pixels[17], len(pixels[17]) // 2)  # a pixel
    flip(os.path.join(work, files[29]), pixels[29], -16)  # the label's lowest byte, 16 bytes before the pixels

    r = run(sqlite3_path, ext, "SELECT imgstore_check('lmdb', '%s', 1);" % path, work)
    lines = r.stdout.strip().split("\n")
    for i in (17, 29):
        prefix = "shard shard-%03d.lmdb: " % (i % 3) if shards else ""
        want = "%simage %d in '%s' is damaged: its checksum does not match (stored 0x" % (prefix, i, files[i])
        check(sum(line.startswith(want) for line in lines) == 1, "%s: imgstore_check names image %d: %r" % (label, i, lines))
    check(len(lines) == 2, "%s: imgstore_check names the two damaged images only: %r" % (label, lines))
    r = run(sqlite3_path, ext, "SELECT imgstore_check('lmdb', '%s', 0);" % path, work)
    check(r.stdout.strip() == "ok", "%s: a structural check does not read the pixels: %r" % (label, r.stdout))

    for i in (17, 29):
        want = "table t: image %d in '%s' is damaged: its checksum does not match (stored 0x" % (i, files[i])
        for query in ("SELECT pixels FROM t WHERE id = %d" % i,
                      "SELECT sum(length(pixels)) FROM t WHERE id > %d" % (i - 5),
                      "SELECT count(*) FROM t WHERE id IN (3, %d, 40) AND length(pixels) = 192" % i,
                      "SELECT hex(pixels) FROM t WHERE id BETWEEN %d AND %d" % (i - 1, i + 1),
                      "UPDATE t SET label = 3 WHERE id = %d; SELECT pixels FROM t WHERE id = %d" % (i, i)):
            r = run(sqlite3_path, ext, "%s\n%s;" % (create, query), work)
            check(want in r.stderr and "(11)" in r.stderr and str(pixels[i].hex().upper()) not in r.stdout,
                  "%s: %s: expected SQLITE_CORRUPT with %r, got %r %r" % (label, query, want, r.stdout, r.stderr))
    r = run(sqlite3_path, ext, create + "SELECT count(*) FROM t WHERE id NOT IN (17, 29) AND length(pixels) = 192;"
            "SELECT count(label) FROM t;", work)
    check(r.stdout.split() == [str(N - 2), str(N)], "%s: the other images and every label read: %r %r" % (label, r.stdout, r.stderr))
    r = run(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING lmdb(path='%s', verify=0);"
            "SELECT count(*) FROM t WHERE length(pixels) = 192;" % path, work)
    check(r.stdout.strip() == str(N), "%s: verify=0 serves every image: %r %r" % (label, r.stdout, r.stderr))


def main():
    sqlite3_path, ext = sys.argv[1], os.path.abspath(sys.argv[2])
    for shards in (0, 3):
        with tempfile.TemporaryDirectory(prefix="imgstore-lmdb-damage-") as work:
            one_store(sqlite3_path, ext, work, shards)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
