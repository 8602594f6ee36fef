"""Flipped bytes in an hdf5 store are found by every read and by imgstore_check (issue 24, point 1).

For a plain, a gzip and a sharded hdf5 table: random images are stored; then one byte in the middle of one
image is flipped in the file (found by searching the file for that image's bytes, as damage lands), and one
byte of another row's label (at the file offset HDF5 reports for the /labels chunk). Then, in a new process:
  - SELECT pixels of each damaged id fails with SQLITE_CORRUPT naming the table, the id and the file;
  - a full scan fails the same way, never serving the wrong bytes;
  - imgstore_check(.., 1) lists exactly the damaged ids;
  - with verify=0 the bytes are served unchecked, as asked;
  - the undamaged ids read as they were written.
A gzip store's flipped byte breaks its deflate stream or its checksum: either way an error, never bytes.

Usage: checksum_test.py <imgstore extension>"""

import os
import re
import sqlite3
import sys
import tempfile

import h5py

from harness import Checks, connect

EXT = sys.argv[1]
check = Checks()
work = tempfile.mkdtemp(prefix="imgstore-checksum-")


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def damage_image(path, pixels):
    """Flips a byte in the middle of the stored copy of `pixels` (uncompressed stores)."""
    data = open(path, "rb").read()
    at = data.find(pixels)
    if at < 0 or data.find(pixels, at + 1) >= 0:
        return False
    flip(path, at + len(pixels) // 2)
    return True


def damage_label(path, row):
    """Flips the lowest byte of /labels[row], at the file offset of its chunk as HDF5 reports it."""
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        d = f["labels"]
        chunk = d.chunks[0]
        info = d.id.get_chunk_info_by_coord((row // chunk * chunk,))
        offset = info.byte_offset + (row % chunk) * 8
    flip(path, offset)


def row_of(path, id_):
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        return list(f["ids"][:]).index(id_)


def expect_corrupt(con, sql, args, what, pattern):
    try:
        con.execute(sql, args).fetchall()
    except sqlite3.DatabaseError as e:
        check(re.search(pattern, str(e)) is not None, "%s: the error names table, id and file (%s)" % (what, e))
        return
    check(False, "%s: expected an error, got rows" % what)


def run(name, args, files):
    """`files(id)`: the .h5 file holding id."""
    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.t USING hdf5(%s)" % args)
    con.execute("INSERT INTO t SELECT id, id % 10, randomblob(3072) FROM dataset('noise', 200)")
    images = dict(con.execute("SELECT id, pixels FROM t"))
    con.close()  # the file closed before it is damaged (as a disk damages it: behind the library's caches)
    pixel_victim, label_victim = 57, 123
    gzip = "gzip" in args
    if gzip:
        with h5py.File(files(pixel_victim), "r", swmr=True, locking=False) as f:
            row = list(f["ids"][:]).index(pixel_victim)
            d = f["images"]
            info = d.id.get_chunk_info_by_coord((row // d.chunks[0] * d.chunks[0], 0, 0, 0))
        flip(files(pixel_victim), info.byte_offset + info.size // 2)
    else:
        check(damage_image(files(pixel_victim), images[pixel_victim]), "%s: image %d found once in its file" % (name, pixel_victim))
    if not gzip:
        damage_label(files(label_victim), row_of(files(label_victim), label_victim))

    con = connect(EXT)
    con.execute("CREATE VIRTUAL TABLE temp.t USING hdf5(path='%s')" % args.split("'")[1])
    victims = (pixel_victim,) if gzip else (pixel_victim, label_victim)
    for victim in victims:
        # gzip: the flipped byte breaks the chunk's deflate stream (HDF5's error, naming the file and the id)
        pattern = r"table t: '%s': reading id %d \(.*inflate" % (re.escape(files(victim)), victim)
        if not gzip:
            pattern = r"table t: image %d in '%s' is damaged: its checksum does not match" % (victim, re.escape(files(victim)))
        expect_corrupt(con, "SELECT pixels FROM t WHERE id = ?", (victim,), "%s: SELECT of id %d" % (name, victim), pattern)
    expect_corrupt(con, "SELECT sum(length(pixels)) FROM t", (), "%s: a full scan" % name, r"table t: ")
    report = con.execute("SELECT imgstore_check('hdf5', ?, 1)", (args.split("'")[1],)).fetchone()[0]
    damaged = sorted(int(x) for x in re.findall(r"image (\d+) .*is damaged", report))
    if gzip:
        check("inflate" in report, "%s: imgstore_check reports the damaged chunk (%s)" % (name, report))
    else:
        check(damaged == [pixel_victim, label_victim], "%s: imgstore_check lists the damaged ids (%s)" % (name, report))
    # (gzip: the ids sharing the damaged chunk are lost with it)
    lost = set(range(pixel_victim // 21 * 21, pixel_victim // 21 * 21 + 21)) if gzip else {pixel_victim, label_victim}
    sound = [i for i in images if i not in lost]
    got = dict(con.execute("SELECT id, pixels FROM t WHERE id IN (%s)" % ",".join(map(str, sound))))
    check(all(got[i] == images[i] for i in sound), "%s: the %d sound images read as written" % (name, len(sound)))
    if not gzip:
        con.execute("CREATE VIRTUAL TABLE temp.u USING hdf5(path='%s', verify=0)" % args.split("'")[1])
        served = con.execute("SELECT pixels FROM u WHERE id = ?", (pixel_victim,)).fetchone()[0]
        check(served != images[pixel_victim] and len(served) == 3072, "%s: verify=0 serves the bytes unchecked" % name)


path = os.path.join(work, "plain.h5")
run("plain", "path='%s', shape='32x32x3'" % path, lambda i: path)
gz = os.path.join(work, "gzip.h5")
run("gzip", "path='%s', shape='32x32x3', compression='gzip:1'" % gz, lambda i: gz)
folder = os.path.join(work, "sharded")
run("sharded", "path='%s', shape='32x32x3', shards=3" % folder, lambda i: os.path.join(folder, "shard-%03d.h5" % (i % 3)))
sys.exit(check.summary())
