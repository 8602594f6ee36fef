#!/usr/bin/env python3
"""PNG directories written by PIL (another tool than ours) for the png_dir tests, with the expected
pixels in HWC order as hex beside each image."""

import os

from PIL import Image


def store(name, images, labels=None):
    os.makedirs(name, exist_ok=True)
    with open(os.path.join(name, "labels.csv"), "w") as f:
        f.write("id,label\n")
        for i, _ in enumerate(images):
            f.write("%d,%d\n" % (i, (labels or [3] * len(images))[i]))
    for i, (im, expected) in enumerate(images):
        im.save(os.path.join(name, "%d.png" % i))
        with open(os.path.join(name, "%d.hex" % i), "w") as f:
            f.write(expected.hex().upper())


rgb = bytes((i * 11) % 256 for i in range(4 * 5 * 3))
rgb2 = bytes((i * 13) % 256 for i in range(4 * 5 * 3))
store("pil_rgb", [(Image.frombytes("RGB", (5, 4), rgb), rgb), (Image.frombytes("RGB", (5, 4), rgb2), rgb2)])

pal = Image.frombytes("P", (5, 4), bytes(i % 4 for i in range(20)))
palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
pal.putpalette(palette + [0] * (768 - len(palette)))
expected = bytes(c for i in range(20) for c in palette[3 * (i % 4): 3 * (i % 4) + 3])
store("pil_palette", [(pal, expected)])

gray16 = Image.new("I;16", (5, 4))
gray16.putdata([257 * i for i in range(20)])
store("pil_gray16", [(gray16, bytes(range(20)))])

big = bytes(7 * 7 * 3)
store("pil_wrong_size", [(Image.frombytes("RGB", (7, 7), big), big)])

store("pil_badcsv", [(Image.frombytes("RGB", (5, 4), rgb), rgb), (Image.frombytes("RGB", (5, 4), rgb), rgb)])
with open("pil_badcsv/labels.csv", "a") as f:
    f.write("2;4\n")
