"""image_folder() against torchvision.datasets.ImageFolder and Pillow, on a tree of real files written by Pillow
(and, for the PNG kinds Pillow does not write, by hand): ids, labels, paths and classes are ImageFolder's;
pixels are np.asarray(Image.open(p)) (PNG exactly, JPEG within 2); with a shape they are
np.asarray(Image.open(p).convert(mode).resize((W, H), Image.BILINEAR)) within 2. Also jpeg_decode/jpeg_encode
against Pillow's decoder and encoder."""

import io
import os
import sqlite3
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import imgstore

torchvision = pytest.importorskip("torchvision")
from torchvision.datasets import ImageFolder  # noqa: E402
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset  # noqa: E402

MODE_OF = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
RNG = np.random.default_rng(27)


def connect():
    return imgstore.load(sqlite3.connect(":memory:"))


def photo(h, w, c):
    """Smooth gradients with a little noise, as photos are (JPEG's subsampling has something to smooth)."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * (5 + 3 * k) + y * (7 - 2 * k) + 40 * k) % 256 for k in range(c)]
    noise = RNG.integers(-12, 13, (h, w, c))
    return np.clip(np.stack(planes, -1) + noise, 0, 255).astype(np.uint8)


def raw_png(path, w, h, depth, colour_type, rows):
    """A PNG of any bit depth and colour type, for what Pillow does not write (16-bit RGB, 16-bit gray+alpha,
    2-bit gray)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + r for r in rows))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def write(root, rel, image=None, **save):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if image is not None:
        image.save(path, **save)
    return path


def make_tree(root):
    """Classes with nested folders whose path order is not depth-first ('sub-x', 'sub.d' sort before
    'sub/deeper'), a .txt and an upper-case .JPG, PNGs of every colour type and bit depth, JPEGs of every kind."""
    a = photo(37, 23, 3)
    # bird: JPEGs
    write(root, "bird/gray.jpg", Image.fromarray(photo(20, 30, 1)[:, :, 0], "L"))
    write(root, "bird/rgb420.jpg", Image.fromarray(a))
    write(root, "bird/rgb444.jpeg", Image.fromarray(photo(16, 17, 3)), subsampling=0, quality=90)
    write(root, "bird/rgb422.jpg", Image.fromarray(photo(33, 41, 3)), subsampling=1)
    write(root, "bird/progressive.jpg", Image.fromarray(photo(40, 29, 3)), progressive=True)
    write(root, "bird/UPPER.JPG", Image.fromarray(photo(5, 3, 3)), quality=95)
    write(root, "bird/cmyk.jpg", Image.fromarray(photo(11, 13, 4), "CMYK"))
    write(root, "bird/sub/one.jpg", Image.fromarray(photo(1, 1, 3)))
    # cat: PNGs of every kind, nested
    write(root, "cat/rgb.png", Image.fromarray(photo(10, 12, 3)))
    write(root, "cat/rgba.png", Image.fromarray(np.dstack([photo(9, 7, 3), RNG.choice([0, 1, 128, 200, 255], (9, 7))])
                                                .astype(np.uint8), "RGBA"))
    write(root, "cat/sub/gray_alpha.png", Image.fromarray(np.dstack([photo(6, 8, 1), RNG.integers(0, 256, (6, 8, 1))])
                                                          .astype(np.uint8), "LA"))
    write(root, "cat/sub/bits1.png", Image.fromarray(RNG.integers(0, 2, (7, 9)).astype(bool)))
    palette = Image.fromarray(RNG.integers(0, 6, (8, 5)).astype(np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 100, 50, 7, 7, 7])
    write(root, "cat/sub-x/palette.png", palette)
    write(root, "cat/sub-x/palette_trns.png", palette, transparency=bytes([0, 128, 255, 64, 255, 10]))
    write(root, "cat/sub.d/gray.png", Image.fromarray(photo(13, 4, 1)[:, :, 0], "L"))
    gray16 = Image.new("I;16", (5, 6))
    gray16.putdata([int(v) for v in RNG.integers(0, 65536, 30)])
    write(root, "cat/sub/deeper/gray16.png", gray16)
    rgb16 = RNG.integers(0, 65536, (4, 3, 3)).astype(">u2")
    raw_png(write(root, "cat/sub/deeper/rgb16.png"), 3, 4, 16, 2, [r.tobytes() for r in rgb16])
    la16 = RNG.integers(0, 65536, (3, 5, 2)).astype(">u2")
    raw_png(write(root, "cat/sub/deeper/la16.png"), 5, 3, 16, 4, [r.tobytes() for r in la16])
    bits2 = RNG.integers(0, 4, (3, 8))
    raw_png(write(root, "cat/sub/bits2.png"), 8, 3, 2, 0,
            [bytes(int("".join(f"{v:02b}" for v in r[i:i + 4]), 2) for i in range(0, 8, 4)) for r in bits2])
    with open(write(root, "cat/notes.txt"), "w") as f:
        f.write("not an image")
    # dog: a folder with a space, a JPEG named .png would be found by its bytes
    write(root, "dog/a b/odd.jpg", Image.fromarray(photo(37, 23, 3)), quality=50)
    write(root, "dog/z.png", Image.fromarray(photo(3, 3, 3)))
    write(root, "dog/jpeg_named.png", Image.fromarray(photo(8, 8, 3)), format="JPEG")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(str(tmp_path_factory.mktemp("folder") / "pets"))


def rows(root, shape=None, threads=None, columns="id, label, path, class, height, width, channels, pixels"):
    conn = connect()
    try:
        return conn.execute(f"SELECT {columns} FROM image_folder(?, ?, ?)", (root, shape, threads)).fetchall()
    finally:
        conn.close()


def pillow_pixels(path):
    """np.asarray(Image.open(path)) in image_folder's convention: mode 1 as 0/255, a palette as RGB or (with
    tRNS) RGBA, 16-bit gray (Pillow's mode I) by its high byte as Pillow reads 16-bit RGB, 16-bit gray+alpha
    (which Pillow opens as RGBA) as gray+alpha; always HWC."""
    im = Image.open(path)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    a = np.asarray(im)
    if im.mode == "1":
        a = a.astype(np.uint8) * 255
    if im.mode == "I":
        a = (a >> 8).astype(np.uint8)
    if im.mode == "RGBA" and path.endswith("la16.png"):
        a = a[:, :, [0, 3]]
    return a.reshape(a.shape[0], a.shape[1], -1)


def pillow_resized(path, shape):
    """np.asarray(Image.open(p).convert(mode).resize((W, H), Image.BILINEAR)); 16-bit gray from its high byte
    (Pillow's own convert('L') of mode I clips at 255 instead)."""
    h, w, c = (int(v) for v in shape.split("x"))
    im = Image.open(path)
    if im.mode == "I":
        im = Image.fromarray((np.asarray(im) >> 8).astype(np.uint8), "L")
    a = np.asarray(im.convert(MODE_OF[c]).resize((w, h), Image.BILINEAR))
    return a.reshape(h, w, c)


def test_ids_labels_paths_and_classes_are_imagefolders(tree):
    got = rows(tree, columns="id, label, path, class")
    folder = ImageFolder(tree, loader=lambda p: p)
    assert [(path, label) for _, label, path, _ in got] == folder.samples
    assert [i for i, *_ in got] == list(range(len(folder.samples)))
    assert [c for *_, c in got] == [folder.classes[label] for _, label, _, _ in got]
    conn = connect()
    assert dict((c, l) for l, c in conn.execute("SELECT label, class FROM image_folder_classes(?)", (tree,))) \
        == folder.class_to_idx
    # The order is sorted(os.walk()), not depth-first, and the .txt is not listed; the .JPG is.
    paths = [os.path.relpath(p, tree) for _, _, p, _ in got]
    assert paths.index("cat/sub-x/palette.png") < paths.index("cat/sub/deeper/gray16.png")
    assert "cat/notes.txt" not in paths and "bird/UPPER.JPG" in paths


def test_an_empty_class_keeps_its_label(tree, tmp_path):
    """torchvision 0.14's ImageFolder refuses a class without images (later ones: unless allow_empty=True);
    image_folder() lists it in image_folder_classes and yields no row for it, as allow_empty does."""
    root = make_tree(str(tmp_path / "with_empty"))
    os.makedirs(os.path.join(root, "cow"))  # between cat and dog: dog's label moves
    classes, class_to_idx = find_classes(root)
    assert class_to_idx["cow"] == 2 and class_to_idx["dog"] == 3
    with pytest.raises(FileNotFoundError):
        ImageFolder(root)
    expected = make_dataset(root, {c: i for c, i in class_to_idx.items() if c != "cow"}, IMG_EXTENSIONS)
    assert [(p, l) for p, l in rows(root, columns="path, label")] == expected
    conn = connect()
    assert conn.execute("SELECT label, class FROM image_folder_classes(?)", (root,)).fetchall() \
        == [(i, c) for i, c in enumerate(classes)]


def test_pixels_are_pillows(tree):
    checked = {"png": 0, "jpeg": 0}
    for _, _, path, _, h, w, c, pixels in rows(tree):
        expected = pillow_pixels(path)
        assert (h, w, c) == expected.shape, path
        got = np.frombuffer(pixels, np.uint8).reshape(h, w, c)
        if Image.open(path).format == "PNG":
            assert np.array_equal(got, expected), path
            checked["png"] += 1
        else:
            assert np.abs(got.astype(int) - expected).max() <= 2, path
            checked["jpeg"] += 1
    assert checked == {"png": 12, "jpeg": 10}


# Pillow warns when it converts a palette with per-entry alpha to L or RGB (the alpha is dropped, as here).
@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
@pytest.mark.parametrize("shape", ["24x20x3", "16x16x1", "12x9x4", "8x30x2"])
def test_shapes_are_pillows_convert_and_bilinear_resize(tree, shape):
    h, w, c = (int(v) for v in shape.split("x"))
    got = rows(tree, shape)
    assert len(got) == 22
    for _, _, path, _, gh, gw, gc, pixels in got:
        assert (gh, gw, gc) == (h, w, c)
        diff = np.abs(np.frombuffer(pixels, np.uint8).reshape(h, w, c).astype(int) - pillow_resized(path, shape))
        assert diff.max() <= 2, (path, diff.max())


def test_threads_give_the_same_bytes(tree):
    for shape in (None, "24x20x3"):
        one = rows(tree, shape, 1)
        assert rows(tree, shape, 2) == one
        assert rows(tree, shape, 7) == one


def test_reading_shapes_only_and_path_only(tree):
    everything = rows(tree)
    assert rows(tree, columns="id, height, width, channels") == [(r[0], r[4], r[5], r[6]) for r in everything]
    assert rows(tree, threads=3, columns="path, height") == [(r[2], r[4]) for r in everything]


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path):
    root = str(tmp_path / "broken")
    good = write(root, "a/good.png", Image.fromarray(photo(8, 8, 3)))
    whole = open(write(root, "a/whole.jpg", Image.fromarray(photo(30, 30, 3))), "rb").read()
    with open(os.path.join(root, "a/cut.jpg"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with open(write(root, "b/cut.png"), "wb") as f:
        f.write(open(good, "rb").read()[:60])
    conn = connect()
    # Listing never opens a file.
    assert conn.execute("SELECT count(*) FROM image_folder(?)", (root,)).fetchone() == (4,)
    for threads in (1, 2):
        with pytest.raises(sqlite3.DatabaseError, match=r"image_folder\(\): '.*/a/cut.jpg': truncated JPEG"):
            conn.execute("SELECT length(pixels) FROM image_folder(?, NULL, ?)", (root, threads)).fetchall()
    with pytest.raises(sqlite3.DatabaseError, match=r"image_folder\(\): '.*/b/cut.png': corrupt PNG"):
        conn.execute("SELECT length(pixels) FROM image_folder(?, '4x4x1') WHERE label = 1", (root,)).fetchall()
    # Pillow agrees: both are truncated for it too.
    for name in ("a/cut.jpg", "b/cut.png"):
        with pytest.raises(OSError):
            Image.open(os.path.join(root, name)).load()


def test_jpeg_functions_against_pillow():
    conn = connect()
    for h, w in ((37, 23), (16, 16), (1, 1), (64, 48)):
        for c in (1, 3):
            a = photo(h, w, c)
            im = Image.fromarray(a[:, :, 0] if c == 1 else a)
            for save in ({}, {"subsampling": 0}, {"progressive": True}, {"quality": 95}):
                buf = io.BytesIO()
                im.save(buf, "JPEG", **save)
                data = buf.getvalue()
                expected = np.asarray(Image.open(io.BytesIO(data))).reshape(h, w, c)
                got, shape = conn.execute("SELECT jpeg_decode(?), jpeg_shape(?)", (data, data)).fetchone()
                assert shape == f"{h}x{w}x{c}"
                assert np.abs(np.frombuffer(got, np.uint8).reshape(h, w, c).astype(int) - expected).max() <= 2
            # jpeg_encode's defaults are Pillow's: the two files decode to the same pixels.
            ours = conn.execute("SELECT jpeg_encode(?, ?)", (a.tobytes(), f"{h}x{w}x{c}")).fetchone()[0]
            buf = io.BytesIO()
            im.save(buf, "JPEG")
            assert Image.open(io.BytesIO(ours)).mode == ("L" if c == 1 else "RGB")
            assert np.abs(np.asarray(Image.open(io.BytesIO(ours))).astype(int)
                          - np.asarray(Image.open(buf)).astype(int)).max() <= 2


def test_jpeg_of_unnamed_chroma_sampling_decodes_as_pillow():
    """Sampling factors outside TurboJPEG 2.1's TJSAMP_* names (its header reader refuses them; its decoder and
    Pillow read them): a 4:4:4 file with its SOF's factors rewritten, so the data decodes differently but the
    same in both."""
    a = photo(32, 48, 3)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", subsampling=0, quality=90)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    conn = connect()
    for factors in ((0x22, 0x12, 0x11), (0x21, 0x12, 0x11), (0x13, 0x11, 0x11), (0x41, 0x11, 0x11)):
        data[sof + 11], data[sof + 14], data[sof + 17] = factors
        expected = np.asarray(Image.open(io.BytesIO(bytes(data))))
        got, shape = conn.execute("SELECT jpeg_decode(?), jpeg_shape(?)", (bytes(data), bytes(data))).fetchone()
        assert shape == "32x48x3"
        assert np.abs(np.frombuffer(got, np.uint8).reshape(32, 48, 3).astype(int) - expected).max() <= 2, factors


def test_opening_a_photo_folder_as_a_store_points_at_image_folder(tmp_path):
    """A new user's first try: imgstore.open() on their ImageFolder tree. The error must say how such a folder
    is read (image_folder()), not only how to create a png_dir store in it, and nothing is written there."""
    root = tmp_path / "photos"
    write(str(root), "cat/a.png", Image.fromarray(photo(8, 8, 3)))
    with pytest.raises(sqlite3.OperationalError) as e:
        imgstore.open(str(root))
    message = str(e.value)
    assert "is not a png_dir store (no labels.csv)" in message, message
    assert f"image_folder('{root}')" in message, message
    assert "'any'" in message, message
    assert sorted(os.listdir(root)) == ["cat"]
