#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into fuzz/corpus/ (run once; the seeds are committed).
usage: make_corpus.py SQLITE3 EXTENSION"""

import gzip
import os
import struct
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sqlite3, ext = sys.argv[1], sys.argv[2]


def put(harness, name, data):
    d = os.path.join(here, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sql_blob(query, cwd):
    out = subprocess.run([sqlite3, "-batch", ":memory:"], input=".load %s\n%s\n" % (ext, query), cwd=cwd,
                         capture_output=True, text=True, check=True).stdout.strip()
    return bytes.fromhex(out)


tmp = tempfile.mkdtemp()
put("fuzz_args", "good", b"path='x.lmdb'\nshape='32x32x3'\nlevel=6")
put("fuzz_args", "quoted", b"path=\"it''s\"\nshape=28X28X1\nchunk=21")
put("fuzz_args", "bad", b"shape=100000x100000x3\ncolour=red\npath")
for c in (1, 2, 3, 4):
    put("fuzz_png_decode", "c%d.png" % c, sql_blob("SELECT hex(png_encode(pixels, '7x5x%d')) FROM synthetic(1, '7x5x%d', 1, 'smooth');" % (c, c), tmp))
whole = sql_blob("SELECT hex(png_encode(pixels, '16x16x3', 9)) FROM synthetic(1, '16x16x3', 2);", tmp)
put("fuzz_png_decode", "truncated.png", whole[: len(whole) // 2])
# JPEG seeds of every kind jpeg_decode reads, written by Pillow (the decoder it must agree with); the last bytes
# of each input also pick the shape the harness resizes to.
import io
from PIL import Image
def jpeg(name, image, **save):
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save)
    put("fuzz_jpeg_decode", name, buf.getvalue())
    return buf.getvalue()
ramp = bytes((x * 7 + y * 3) % 256 for y in range(23) for x in range(37) for _ in range(3))
rgb = Image.frombytes("RGB", (37, 23), ramp)
jpeg("gray.jpg", rgb.convert("L"))
whole = jpeg("rgb420.jpg", rgb)
jpeg("rgb444.jpg", rgb, subsampling=0, quality=95)
jpeg("progressive.jpg", rgb.resize((9, 17)), progressive=True)
jpeg("cmyk.jpg", rgb.resize((8, 5)).convert("CMYK"))
put("fuzz_jpeg_decode", "truncated.jpg", whole[: len(whole) // 2])

images = struct.pack(">IIII", 0x803, 3, 4, 5) + bytes(range(60))
labels = struct.pack(">II", 0x801, 3) + bytes([1, 2, 3])
put("fuzz_idx", "plain", bytes([len(images) // 4]) + images + labels)
gz_images = gzip.compress(images)
put("fuzz_idx", "gzip", bytes([(len(gz_images) + 3) // 4]) + gz_images + b"\0" * ((4 - len(gz_images) % 4) % 4) + gzip.compress(labels))

record = bytes([3]) + bytes(i % 256 for i in range(3072))
put("fuzz_cifar", "two", record + record)
put("fuzz_cifar", "cifar100", bytes([1]) + record + bytes([2]) + record)

subprocess.run([sqlite3, "-batch", ":memory:"], cwd=tmp, check=True, text=True,
               input=".load %s\nCREATE VIRTUAL TABLE temp.a USING lmdb(path='s.lmdb', shape='4x4x1');"
                     "INSERT INTO a SELECT * FROM synthetic(30, '4x4x1', 3);"
                     "CREATE VIRTUAL TABLE temp.b USING hdf5(path='s.h5', shape='4x4x1', chunk=8);"
                     "INSERT INTO b SELECT * FROM synthetic(30, '4x4x1', 3); DELETE FROM b WHERE id = 4;\n" % ext)
put("fuzz_store_open", "lmdb-dir", b"\2" + open(os.path.join(tmp, "s.lmdb", "data.mdb"), "rb").read())
# A single-file store (format 1), as earlier versions made it.
subprocess.run([sys.executable, os.path.join(here, "..", "tests", "lmdb_v1.py"), "from", os.path.join(tmp, "s.lmdb"),
                os.path.join(tmp, "v1.lmdb")], check=True)
put("fuzz_store_open", "lmdb", b"\0" + open(os.path.join(tmp, "v1.lmdb"), "rb").read())
put("fuzz_store_open", "hdf5", b"\1" + open(os.path.join(tmp, "s.h5"), "rb").read())
lmdb = open(os.path.join(tmp, "v1.lmdb"), "rb").read()
h5 = open(os.path.join(tmp, "s.h5"), "rb").read()
put("fuzz_store_open", "lmdb-truncated", b"\0" + lmdb[:12288])
put("fuzz_store_open", "lmdb-short", b"\0" + lmdb[:100])
put("fuzz_store_open", "hdf5-truncated", b"\1" + h5[: len(h5) // 2])
put("fuzz_store_open", "hdf5-superblock-flipped", b"\1" + h5[:8] + bytes(b ^ 0xFF for b in h5[8:24]) + h5[24:])
put("fuzz_store_open", "garbage", b"\1" + b"not a store at all" * 20)
print("seeds written to", os.path.join(here, "corpus"))
