"""A PyTorch map-style dataset over a store (single or sharded):

    from torch.utils.data import DataLoader
    from torchvision import transforms
    from imgstore.torch import ImageDataset

    augment = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                  transforms.ConvertImageDtype(torch.float32)])
    loader = DataLoader(ImageDataset("train.lmdb", transform=augment), batch_size=256, shuffle=True, num_workers=2)
    for images, labels in loader:      # (256, C, H, W) float32, (256,) int64
        ...

Items are (image, label) as torchvision's are: the image a uint8 tensor (C, H, W), as torchvision.io.read_image
returns it and its transforms expect (layout='HWC' keeps the stored (H, W, C) order), given to `transform` when
there is one; the label an int. A store of shape 'any' yields each image in its own size and channels:
give a `transform` that makes them one size (transforms.Resize((224, 224)), RandomResizedCrop) and one number
of channels (a folder of gray, RGB and RGBA files has 1, 3 and 4) to batch them. A DataLoader with a batch_size fetches each batch through __getitems__ (torch
>= 1.13 calls it): one bulk read of the whole batch into one array. With a torch that does not, batch in the
sampler: DataLoader(ds, sampler=BatchSampler(RandomSampler(ds), 256, False), batch_size=None) hands
__getitem__ a list. Each process opens its own connection when it first reads (a connection is never used
across a fork).
"""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ._store import _check_layout
from ._store import open as open_store

# Connections inherited through a fork: kept, never used or closed (closing would touch the parent's locks).
_inherited = []


class ImageDataset(Dataset):
    def __init__(self, path, transform=None, target_transform=None, backend=None, extension=None, layout="CHW"):
        self._store = None  # first: a failed __init__ leaves nothing for __del__ to trip on
        self._pid = None
        _check_layout(layout)
        self.path = os.fspath(path)
        self.transform = transform
        self.target_transform = target_transform
        self.extension = extension
        self.layout = layout
        with open_store(self.path, backend=backend, extension=extension) as store:
            self.backend = store.backend
            self.shape = store.shape
            self.ids = store.ids()  # index i of the dataset is the i-th id in id order

    def __len__(self):
        return len(self.ids)

    def _connection(self):
        if self._pid != os.getpid():
            if self._store is not None:
                _inherited.append(self._store)
            self._store = open_store(self.path, backend=self.backend, extension=self.extension)
            self._pid = os.getpid()
        return self._store

    def _read(self, indices):
        """(images as one uint8 tensor, labels as a list of ints) of dataset indices, in one bulk read."""
        labels, images = self._connection().fetch(self.ids[np.asarray(indices, dtype=np.int64)], self.layout)
        if isinstance(images, list):  # a store of shape 'any': one tensor per image, each its own size
            return [torch.from_numpy(image) for image in images], labels.tolist()
        return torch.from_numpy(images), labels.tolist()

    def __getitem__(self, index):
        """One item; or, given a list of indices (a DataLoader with sampler=BatchSampler(...) and
        batch_size=None, for a torch that does not call __getitems__), the whole batch (images, labels)."""
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            images, labels = self._read(index)
            if self.transform is not None:
                images = torch.stack([self.transform(image) for image in images])
            if self.target_transform is not None:
                labels = [self.target_transform(label) for label in labels]
            return images, torch.tensor(labels)
        return self.__getitems__([index])[0]

    def __getitems__(self, indices):
        """The items at `indices`, read in one bulk read."""
        images, labels = self._read(indices)
        if isinstance(images, torch.Tensor):
            images = images.unbind(0)
        if self.transform is not None:
            images = [self.transform(image) for image in images]
        if self.target_transform is not None:
            labels = [self.target_transform(label) for label in labels]
        return list(zip(images, labels))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_store"] = None  # a connection is not pickled (spawned workers open their own)
        state["_pid"] = None
        return state

    def __del__(self):
        if getattr(self, "_store", None) is not None and self._pid == os.getpid():
            self._store.close()
