#!/usr/bin/env python3
"""Format-1 lmdb stores as earlier versions made them (extension/stores/lmdb/lmdb_format.hpp: one file opened
MDB_NOSUBDIR with its lock file PATH-lock, named databases "images" and "meta", values = label (8 bytes
little-endian) + pixels, no checksum), written with py-lmdb: the fixtures of the tests that old stores still open,
read, write and convert.

usage: lmdb_v1.py make PATH HxWxC N      N images: id i has label i % 10 and pixels (i * 7 + j) % 256
       lmdb_v1.py from SRC PATH          the images of the format-2 store SRC (a directory), in format 1 at PATH
       lmdb_v1.py values PATH            'N images, value sizes {...}' of a format-1 store (what a writer left)
"""

import struct
import sys

import lmdb


def write(path, shape, images):
    """A format-1 store at `path` holding `images`, (id, label, pixels) in any order."""
    env = lmdb.open(path, subdir=False, max_dbs=2, map_size=1 << 30)
    db, meta = env.open_db(b"images"), env.open_db(b"meta")
    with env.begin(write=True) as txn:
        txn.put(b"format", b"imgstore-lmdb 1", db=meta)
        txn.put(b"shape", shape.encode(), db=meta)
        for i, label, pixels in images:
            txn.put(struct.pack(">q", i), struct.pack("<q", label) + pixels, db=db)
    env.close()


def read_v2(path):
    """(id, label, pixels) of every image of a format-2 store, as py-lmdb reads it with its defaults."""
    env = lmdb.open(path, readonly=True)
    with env.begin() as txn:
        out = [(struct.unpack(">q", k)[0], struct.unpack("<q", v[:8])[0], bytes(v[16:])) for k, v in txn.cursor()]
    env.close()
    return out


def main():
    what = sys.argv[1]
    if what == "make":
        path, shape, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        h, w, c = (int(x) for x in shape.lower().split("x"))
        write(path, shape, [(i, i % 10, bytes((i * 7 + j) % 256 for j in range(h * w * c))) for i in range(n)])
    elif what == "from":
        src, path = sys.argv[2], sys.argv[3]
        shape = open(src + "/.imgstore").read().split("shape=")[1].strip()
        write(path, shape, read_v2(src))
    elif what == "values":
        env = lmdb.open(sys.argv[2], subdir=False, readonly=True, max_dbs=2)
        db = env.open_db(b"images", create=False)
        with env.begin(db=db) as txn:
            sizes = sorted({len(v) for _, v in txn.cursor()})
            print("%d images, value sizes %s" % (txn.stat(db)["entries"], sizes))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
