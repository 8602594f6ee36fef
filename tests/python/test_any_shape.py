"""Stores of shape 'any' (images of many sizes) from Python: lists of arrays in, the same bytes out, on every
backend, single and sharded; torchvision's way of batching them (a transform to one size)."""

import sqlite3

import numpy as np
import pytest
import torch
from torchvision import transforms

import imgstore
import imgstore.dask
from imgstore.torch import ImageDataset

SHAPES = [(4, 5, 3), (7, 2, 1), (3, 3, 4), (10, 1, 2), (32, 32, 3), (1, 1, 1), (61, 40, 3)]


def images_of(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in SHAPES]


@pytest.fixture(params=[None, 3], ids=["single", "sharded"])
def shards(request):
    return request.param


def test_append_get_scan_round_trip(store_path, backend, shards):
    images = images_of()
    labels = list(range(10, 10 + len(images)))
    with imgstore.open(store_path, backend=backend, shape="any", shards=shards) as s:
        assert s.shape == "any" and s.any_size and "shape='any'" in repr(s)
        assert s.append(images, labels).tolist() == list(range(len(images)))
    with imgstore.open(store_path) as s:  # the path alone: a store of shape 'any'
        assert s.shape == "any" and len(s) == len(images)
        got = s.get([6, 0, 2, 0])
        assert [g.shape for g in got] == [SHAPES[6], SHAPES[0], SHAPES[2], SHAPES[0]]
        assert all(np.array_equal(g, images[i]) for g, i in zip(got, [6, 0, 2, 0]))
        chw = s.get([4], layout="CHW")[0]
        assert chw.shape == (3, 32, 32) and np.array_equal(chw, images[4].transpose(2, 0, 1))
        ids, got_labels, all_images = s.scan()
        assert ids.tolist() == list(range(len(images))) and got_labels.tolist() == labels
        assert all(np.array_equal(a, b) for a, b in zip(all_images, images))
        ids, got_labels, none = s.scan(2, 4, images=False)
        assert ids.tolist() == [2, 3, 4] and none is None
        listed, _ = s.to_numpy()
        assert len(listed) == len(images) and all(a.flags.writeable for a in listed)
        labels_of, fetched = s.fetch([5, 1])
        assert labels_of.tolist() == [15, 11] and fetched[0].shape == (1, 1, 1)
        with pytest.raises(KeyError, match=r"ids not in the store .*\[99\]"):
            s.get([1, 99])
        assert s.get([]) == []


def test_bad_images_are_refused_whole(store_path, backend):
    with imgstore.open(store_path, backend=backend, shape="any") as s:
        with pytest.raises(ValueError, match=r"image 1 has shape \(4, 4\) and dtype uint8; expected \(H, W, C\)"):
            s.append([np.zeros((2, 2, 3), np.uint8), np.zeros((4, 4), np.uint8)], [0, 1])
        with pytest.raises(ValueError, match=r"image 0 has shape \(2, 2, 5\)"):
            s.append([np.zeros((2, 2, 5), np.uint8)], [0])
        with pytest.raises(ValueError, match="dtype float32"):
            s.append([np.zeros((2, 2, 3), np.float32)], [0])
        assert len(s) == 0


def test_one_shape_store_refuses_other_sizes_by_shape(store_path, backend):
    with imgstore.open(store_path, backend=backend, shape=(4, 5, 3)) as s:
        s.append(np.zeros((2, 4, 5, 3), np.uint8), [0, 1])
        with pytest.raises(ValueError, match=r"expected \(N, 4, 5, 3\)"):
            s.append(np.zeros((1, 5, 4, 3), np.uint8), [0])


def test_sql_refuses_pixels_without_their_shape(store_path, backend):
    conn = imgstore.load(sqlite3.connect(":memory:"))
    conn.execute(f"CREATE VIRTUAL TABLE temp.v USING {backend}(path='{store_path}', shape='any')")
    with pytest.raises(sqlite3.IntegrityError, match="come without their shape"):
        conn.execute("INSERT INTO temp.v VALUES (1, 0, zeroblob(12))")
    conn.close()


def test_dataset_yields_each_size_and_a_transform_batches_them(store_path, backend, shards):
    images = images_of(1)
    with imgstore.open(store_path, backend=backend, shape="any", shards=shards) as s:
        s.append(images, list(range(len(images))))
    ds = ImageDataset(store_path)
    items = [ds[i] for i in range(len(ds))]
    assert [tuple(t.shape) for t, _ in items] == [(c, h, w) for h, w, c in SHAPES]
    assert all(torch.equal(t, torch.from_numpy(images[i].transpose(2, 0, 1).copy())) for i, (t, _) in enumerate(items))
    # As with ImageFolder: a transform that makes every image one size (and one channel count) lets a DataLoader
    # batch them, here in two worker processes.
    one_size = transforms.Compose([transforms.Lambda(lambda t: t[:1]), transforms.Resize((8, 8), antialias=True)])
    loader = torch.utils.data.DataLoader(ImageDataset(store_path, transform=one_size), batch_size=4, num_workers=2)
    batches = list(loader)
    assert [tuple(b.shape) for b, _ in batches] == [(4, 1, 8, 8), (3, 1, 8, 8)]
    assert torch.cat([l for _, l in batches]).tolist() == list(range(len(images)))


def test_dask_says_why_not(store_path, backend):
    with imgstore.open(store_path, backend=backend, shape="any") as s:
        s.append(images_of()[:2], [0, 1])
    with pytest.raises(ValueError, match="shape 'any' holds images of many sizes"):
        imgstore.dask.read(store_path)
