"""imgstore.torch.ImageDataset under a real DataLoader: items as torchvision's, one query a batch, workers."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import imgstore  # noqa: E402
from imgstore.torch import ImageDataset  # noqa: E402
from conftest import digest_of, make_sharded, make_store  # noqa: E402


def test_items_are_as_torchvision(store_path, backend):
    make_store(store_path, backend, 20)
    ds = ImageDataset(store_path)
    assert len(ds) == 20
    image, label = ds[3]
    # CHW uint8, contiguous, as torchvision.io.read_image returns an image
    assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.shape == (3, 8, 6)
    assert type(label) is int
    with imgstore.open(store_path) as s:
        hwc = s.get([3])[0]
        assert (image.permute(1, 2, 0).numpy() == hwc).all() and label == s.labels()[3]
        assert (s.get([3], layout="CHW")[0] == image.numpy()).all()
    hwc_ds = ImageDataset(store_path, layout="HWC")
    assert hwc_ds[3][0].shape == (8, 6, 3) and (hwc_ds[3][0].numpy() == hwc).all()
    scaled = ImageDataset(store_path, transform=lambda im: im.float() / 255, target_transform=lambda y: y + 100)
    image, label = scaled[3]
    assert image.shape == (3, 8, 6) and image.dtype == torch.float32 and label >= 100
    with pytest.raises(ValueError, match="layout 'NHWC' is not valid"):
        ImageDataset(store_path, layout="NHWC")


def test_a_failed_init_leaves_nothing_to_print(tmp_path, capfd):
    with pytest.raises(FileNotFoundError):
        ImageDataset(str(tmp_path / "missing.lmdb"))
    import gc
    gc.collect()
    assert "Exception ignored" not in capfd.readouterr().err


@pytest.mark.parametrize("backend", ["lmdb", "hdf5", "png_dir"])
def test_sharded_tables(tmp_path, backend):
    path = str(tmp_path / "sh")
    make_sharded(path, backend, 100, 4, shape="8x6x3").close()
    ds = ImageDataset(path)
    assert len(ds) == 100 and ds.backend == backend
    with imgstore.open(path) as s:
        assert s.backend == backend and len(s) == 100
        images, labels = s.to_numpy()
        seen = {}
        for ids, batch_labels, batch_images in s.batches(16, seed=1):
            for i, l, img in zip(ids, batch_labels, batch_images):
                seen[int(i)] = (int(l), img)
    assert sorted(seen) == list(range(100))
    assert all(seen[i][0] == labels[i] and (seen[i][1] == images[i]).all() for i in range(100))
    batch_images, batch_labels = next(iter(DataLoader(ds, batch_size=100)))
    assert (batch_images.permute(0, 2, 3, 1).numpy() == images).all() and (batch_labels.numpy() == labels).all()


def test_a_batch_is_one_query(store_path, backend, monkeypatch):
    make_store(store_path, backend, 40)
    calls = []
    real_fetch = imgstore.Store.fetch
    monkeypatch.setattr(imgstore.Store, "fetch",
                        lambda self, ids, layout="HWC": calls.append(len(ids)) or real_fetch(self, ids, layout))
    batches = list(DataLoader(ImageDataset(store_path), batch_size=16, shuffle=True))
    assert calls == [16, 16, 8]
    images, labels = batches[0]
    assert images.shape == (16, 3, 8, 6) and images.dtype == torch.uint8 and labels.dtype == torch.int64


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
            for img, label in zip(batch_images.permute(0, 2, 3, 1).contiguous().numpy(), batch_labels.tolist()):
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
        assert (images.numpy() == s.get(range(16, 32), layout="CHW")).all()
        assert (labels.numpy() == s.labels()[16:32]).all()


@pytest.mark.parametrize("backend", ["lmdb", "hdf5", "png_dir"])
def test_an_epoch_through_torchvision_transforms_and_make_grid(tmp_path, backend):
    """The README's pipeline: torchvision's augmentations on the dataset's CHW items, two workers, make_grid."""
    torchvision = pytest.importorskip("torchvision")
    from torchvision import transforms
    n = 1000
    path = str(tmp_path / f"s.{backend}")
    make_store(path, backend, n, shape="32x32x3", seed=5, kind="smooth")
    with imgstore.open(path) as s:
        originals, labels = s.to_numpy(layout="CHW")
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    augment = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ConvertImageDtype(torch.float32),
        transforms.Normalize(mean, std),
    ])
    loader = DataLoader(ImageDataset(path, transform=augment), batch_size=256, shuffle=True, num_workers=2)
    seen_labels = []
    for images, batch_labels in loader:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 32, 32)
        assert images.min() >= (0 - 0.5) / 0.25 and images.max() <= (1 - 0.5) / 0.25
        seen_labels += batch_labels.tolist()
    assert len(seen_labels) == n and sorted(seen_labels) == sorted(labels.tolist())

    # Deterministic transforms show the items are the stored images, in torchvision's layout.
    flip = ImageDataset(path, transform=transforms.Compose([transforms.RandomHorizontalFlip(p=1.0),
                                                            transforms.ConvertImageDtype(torch.float32)]))
    batch, _ = next(iter(DataLoader(flip, batch_size=8)))
    expected = torch.from_numpy(originals[:8]).flip(-1).float() / 255
    assert torch.allclose(batch, expected)
    grid = torchvision.utils.make_grid(next(iter(DataLoader(ImageDataset(path), batch_size=8)))[0], nrow=4, padding=2)
    assert grid.shape == (3, 2 + 2 * 34, 2 + 4 * 34) and grid.dtype == torch.uint8
    for k in range(8):
        row, col = divmod(k, 4)
        tile = grid[:, 2 + row * 34: 2 + row * 34 + 32, 2 + col * 34: 2 + col * 34 + 32]
        assert (tile.numpy() == originals[k]).all()
