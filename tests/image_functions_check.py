#!/usr/bin/env python3
"""image_mean() and image_grid() against numpy and Pillow, on the same images read through SQL.

  - image_mean: per label, over synthetic noise and smooth images and Fashion-MNIST's test set, in every
    channel count; the float32 bytes must equal numpy's images.mean(axis=0).astype('<f4') and the uint8 bytes
    the mean rounded half up, computed in integers.
  - image_grid: the PNG decoded by Pillow has the expected size and mode, and each tile is its image, byte for
    byte; padding and the cells after the last image are black.

Prints one line per check; run by tests/sql/image_functions.sql (IMGSTORE_EXTENSION names the extension).

usage: image_functions_check.py
"""

import io
import os
import sqlite3
import sys

import numpy as np
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"


def connect():
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    db.load_extension(os.environ["IMGSTORE_EXTENSION"])
    return db


def images(db, source_sql, shape):
    """The (ids, labels, images) of a source, in id order, images as an (n, H, W, C) uint8 array."""
    rows = db.execute(f"SELECT id, label, pixels FROM {source_sql} ORDER BY id").fetchall()
    pixels = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.uint8).reshape((len(rows),) + shape)
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), pixels


def check_means(db, name, source_sql, shape):
    text = "x".join(map(str, shape))
    _, labels, pixels = images(db, source_sql, shape)
    got = {label: (f32, u8) for label, f32, u8 in db.execute(
        f"SELECT label, image_mean(pixels, '{text}'), image_mean(pixels, '{text}', 1) FROM {source_sql} GROUP BY label")}
    assert sorted(got) == sorted(set(labels.tolist())), (sorted(got), source_sql)
    for label, (f32, u8) in got.items():
        group = pixels[labels == label]
        expected_f32 = group.mean(axis=0, dtype=np.float64).astype("<f4")
        assert f32 == expected_f32.tobytes(), f"{source_sql} label {label}: float32 means differ"
        sums = group.sum(axis=0, dtype=np.int64)
        expected_u8 = ((2 * sums + len(group)) // (2 * len(group))).astype(np.uint8)  # floor(mean + 1/2)
        assert u8 == expected_u8.tobytes(), f"{source_sql} label {label}: uint8 means differ"
    print(f"image_mean {name}: {len(pixels)} images, {len(got)} labels, the bytes of numpy's means")


def check_grid(db, n, shape, columns, padding):
    text = "x".join(map(str, shape))
    source = f"synthetic({n}, '{text}', 5, 'smooth')"
    _, _, pixels = images(db, source, shape)
    png = db.execute(f"SELECT image_grid(pixels, '{text}', {columns}, {padding}) "
                     f"FROM (SELECT pixels FROM {source} ORDER BY id)").fetchone()[0]
    h, w, c = shape
    rows = -(-n // columns)
    grid_w, grid_h = columns * w + (columns - 1) * padding, rows * h + (rows - 1) * padding
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (grid_w, grid_h), (image.format, image.size)
        assert image.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c], image.mode
        grid = np.asarray(image).reshape(grid_h, grid_w, c)
    covered = np.zeros((grid_h, grid_w), dtype=bool)
    for k in range(n):
        top, left = (k // columns) * (h + padding), (k % columns) * (w + padding)
        assert np.array_equal(grid[top:top + h, left:left + w], pixels[k]), f"tile {k} differs"
        covered[top:top + h, left:left + w] = True
    assert not grid[~covered].any(), "padding or an empty cell is not black"
    print(f"image_grid {n} x {text}, {columns} columns, padding {padding}: {grid_w}x{grid_h}, each tile its image")


def main():
    db = connect()
    check_means(db, "noise 32x32x3", "synthetic(3000, '32x32x3', 3, 'noise', 10)", (32, 32, 3))
    check_means(db, "smooth 9x7x1", "synthetic(500, '9x7x1', 4, 'smooth', 3)", (9, 7, 1))
    check_means(db, "noise 5x6x2", "synthetic(300, '5x6x2', 5, 'noise', 2)", (5, 6, 2))
    check_means(db, "noise 5x6x4", "synthetic(300, '5x6x4', 6, 'noise', 1)", (5, 6, 4))
    check_means(db, "fashion-mnist test set", f"idx('{FASHION}/t10k-images-idx3-ubyte.gz', '{FASHION}/t10k-labels-idx1-ubyte.gz')",
                (28, 28, 1))
    check_grid(db, 40, (16, 16, 3), 8, 0)
    check_grid(db, 37, (16, 16, 3), 8, 2)
    check_grid(db, 3, (28, 28, 1), 8, 0)
    check_grid(db, 10, (7, 5, 2), 3, 1)
    check_grid(db, 9, (8, 8, 4), 4, 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
