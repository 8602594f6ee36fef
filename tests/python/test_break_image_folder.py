"""Adversarial folders for image_folder() (extension/sources/folder_walk.cpp): its ids and labels must be
torchvision's ImageFolder's for any name the file system holds, not only for UTF-8 names."""

import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

import imgstore

torchvision = pytest.importorskip("torchvision")
from torchvision.datasets import ImageFolder  # noqa: E402


def write_png(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(f, "PNG")


def test_non_utf8_names_sort_as_image_folder_sorts(tmp_path):
    # Python sees a name that is not UTF-8 with each bad byte as a lone surrogate U+DC80..U+DCFF
    # (os.fsdecode), and sorted() orders code points, so b"\xc3" (U+DCC3) comes after "中" (U+4E2D) and b"\xff"
    # (U+DCFF) before "\ue000". image_folder sorted the raw bytes (0xC3 < 0xE4, 0xFF > 0xEE): other ids, and
    # for class folders other labels, than ImageFolder's.
    root = os.fsencode(str(tmp_path / "tree"))
    for name in ["a中.png".encode(), b"a\xff.png", "a\ue000.png".encode(), b"a\xc3.png", b"a\xe0.png"]:
        write_png(os.path.join(root, b"k", name))
    for cls in [b"c\xff", "c\ue000".encode(), b"c\xe0", "c中".encode()]:
        write_png(os.path.join(root, cls, b"sub\xe9", b"x.png"))
        write_png(os.path.join(root, cls, "sub中".encode(), b"x.png"))
    folder = ImageFolder(os.fsdecode(root), loader=lambda p: p)
    expected = [(i, label, os.fsencode(p)) for i, (p, label) in enumerate(folder.samples)]

    conn = imgstore.load(sqlite3.connect(":memory:"))
    conn.text_factory = bytes  # the paths are not UTF-8
    got = conn.execute("SELECT id, label, path FROM image_folder(?)", (os.fsdecode(root),)).fetchall()
    assert got == expected
    classes = conn.execute("SELECT label, class FROM image_folder_classes(?)", (os.fsdecode(root),)).fetchall()
    assert classes == [(i, os.fsencode(c)) for i, c in enumerate(folder.classes)]
