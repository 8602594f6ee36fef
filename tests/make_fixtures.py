#!/usr/bin/env python3
"""Writes small data-set files into the current directory for the SQL tests of the sources: CIFAR-10 and
CIFAR-100 batches in their binary format, IDX files plain and gzip, and broken variants of each. Every
value is derived from the record number, so the SQL tests can compute the expected bytes themselves."""

import gzip
import os
import struct
import zlib


def cifar_record(i, label_bytes=1):
    # R plane = (i + p) % 256, G plane = (2 * i + p) % 256, B plane = (3 * i + p) % 256 for pixel p.
    labels = bytes([i % 20, i % 100]) if label_bytes == 2 else bytes([i % 10])
    planes = bytes((k * i + p) % 256 for k in (1, 2, 3) for p in range(1024))
    return labels + planes


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


os.makedirs("cifar-10-batches-bin", exist_ok=True)
for batch in range(1, 4):
    write("cifar-10-batches-bin/data_batch_%d.bin" % batch,
          b"".join(cifar_record(10 * (batch - 1) + r) for r in range(10)))
write("cifar-10-batches-bin/test_batch.bin", b"".join(cifar_record(100 + r) for r in range(5)))
write("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
write("one_batch.bin.gz", gzip.compress(b"".join(cifar_record(r) for r in range(7))))
write("cifar100.bin", b"".join(cifar_record(r, 2) for r in range(6)))
write("bad_length.bin", b"".join(cifar_record(r) for r in range(3)) + b"\x01\x02")
write("bad_label.bin", b"\x0c" + cifar_record(0)[1:])


def idx_images(n, rows, cols, declared=None, magic=0x00000803):
    header = struct.pack(">IIII", magic, n if declared is None else declared, rows, cols)
    return header + bytes((i * 7 + p) % 256 for i in range(n) for p in range(rows * cols))


def idx_labels(n, declared=None):
    return struct.pack(">II", 0x00000801, n if declared is None else declared) + bytes(i % 10 for i in range(n))


write("small-images.idx", idx_images(12, 5, 4))
write("small-labels.idx", idx_labels(12))
write("small-images.idx.gz", gzip.compress(idx_images(12, 5, 4)))
write("small-labels.idx.gz", gzip.compress(idx_labels(12)))
write("truncated-images.idx", idx_images(12, 5, 4)[:-7])
write("oversized-images.idx", idx_images(12, 5, 4) + b"extra")
write("oversized-images.idx.gz", gzip.compress(idx_images(12, 5, 4) + b"extra"))
write("truncated-images.idx.gz", gzip.compress(idx_images(12, 5, 4)[:-20]))
write("wrong-magic.idx", idx_images(12, 5, 4, magic=0x12340803))
write("wrong-type.idx", idx_images(12, 5, 4, magic=0x00000d03))
write("labels-11.idx", idx_labels(11))
write("huge-header.idx", struct.pack(">IIII", 0x00000803, 0x80000000, 0x80000000, 0x80000000) + b"\0" * 64)
write("huge-count.idx", struct.pack(">IIII", 0x00000803, 0xFFFFFFFF, 28, 28) + b"\0" * 784)
good = gzip.compress(idx_images(12, 5, 4))
write("corrupt.idx.gz", good[:30] + bytes(b ^ 0x5A for b in good[30:60]) + good[60:])
write("empty.idx", b"")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# A "PNG bomb": a valid header declaring 100000 x 100000 RGB, with a tiny compressed body.
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
write("bomb.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
      png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + png_chunk(b"IEND", b""))
