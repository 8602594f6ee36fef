"""imgstore.torch.ImageDataset under a real DataLoader: items as torchvision's, one query a batch, workers."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import imgstore  # noqa: E402
from imgstore.torch import ImageDataset  # noqa: E402
from conftest import digest_of, make_store  # noqa: E402


def test_items_are_as_torchvision(store_path, backend):
    make_store(store_path, backend, 20)
    ds = ImageDataset(store_path)
    assert len(ds) == 20
    image, label = ds[3]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.shape == (8, 6, 3)
    assert type(label) is int
    with imgstore.open(store_path) as s:
        assert (image.numpy() == s.get([3])[0]).all() and label == s.labels()[3]
    scaled = ImageDataset(store_path, transform=lambda im: im.permute(2, 0, 1).float() / 255,
                          target_transform=lambda y: y + 100)
    image, label = scaled[3]
    assert image.shape == (3, 8, 6) and image.dtype == torch.float32 and label >= 100


def test_a_batch_is_one_query(store_path, backend, monkeypatch):
    make_store(store_path, backend, 40)
    calls = []
    real_fetch = imgstore.Store.fetch
    monkeypatch.setattr(imgstore.Store, "fetch", lambda self, ids: calls.append(len(ids)) or real_fetch(self, ids))
    batches = list(DataLoader(ImageDataset(store_path), batch_size=16, shuffle=True))
    assert calls == [16, 16, 8]
    images, labels = batches[0]
    assert images.shape == (16, 8, 6, 3) and images.dtype == torch.uint8 and labels.dtype == torch.int64


@pytest.mark.parametrize("backend", ["lmdb", "hdf5", "png_dir"])
def test_epoch_with_two_workers_yields_every_image_once(store_path, backend):
    n = 10_000
    digest = make_store(store_path, backend, n, shape="8x8x3", seed=11)
    with imgstore.open(store_path) as parent:  # the parent has the store open across the workers' fork
        images, labels = parent.to_numpy()
        id_of = {img.tobytes(): i for i, img in enumerate(images)}
        assert len(id_of) == n  # noise images are all different: the pixels name the id
        ds = ImageDataset(store_path)
        ds[0]  # and the dataset's own connection too
        seen_ids, seen_labels, seen_images = [], [], []
        for batch_images, batch_labels in DataLoader(ds, batch_size=256, shuffle=True, num_workers=2):
            for img, label in zip(batch_images.numpy(), batch_labels.tolist()):
                seen_ids.append(id_of[img.tobytes()])
                seen_labels.append(label)
                seen_images.append(img)
    assert sorted(seen_ids) == list(range(n)) and seen_ids != list(range(n))
    assert seen_labels == labels[seen_ids].tolist()
    assert digest_of(seen_ids, seen_labels, seen_images) == digest


def test_batches_from_a_batch_sampler(store_path, backend):
    """Without __getitems__ (an older torch), batching in the sampler still reads a batch in one query."""
    from torch.utils.data import BatchSampler, SequentialSampler
    make_store(store_path, backend, 40)
    ds = ImageDataset(store_path)
    loader = DataLoader(ds, sampler=BatchSampler(SequentialSampler(ds), 16, False), batch_size=None)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [16, 16, 8]
    images, labels = batches[1]
    with imgstore.open(store_path) as s:
        assert (images.numpy() == s.get(range(16, 32))).all() and (labels.numpy() == s.labels()[16:32]).all()
