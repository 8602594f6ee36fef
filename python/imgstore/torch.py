"""A PyTorch map-style dataset over a store:

    from torch.utils.data import DataLoader
    from imgstore.torch import ImageDataset

    loader = DataLoader(ImageDataset("train.lmdb"), batch_size=256, shuffle=True, num_workers=2)
    for images, labels in loader:      # (256, H, W, C) uint8, (256,) int64
        ...

Items are (image, label) as torchvision's are: the image a uint8 tensor (H, W, C) (or transform(image)), the
label an int. DataLoader with a batch_size fetches a batch through __getitems__ (torch >= 1.13 calls it): one
query for the whole batch. With a torch that does not, batch in the sampler:
DataLoader(ds, sampler=BatchSampler(RandomSampler(ds), 256, False), batch_size=None) hands __getitem__ a list. Each process opens its own connection when it first reads (a connection is never
used across a fork).
"""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ._store import open as open_store

# Connections inherited through a fork: kept, never used or closed (closing would touch the parent's locks).
_inherited = []


class ImageDataset(Dataset):
    def __init__(self, path, transform=None, target_transform=None, backend=None, extension=None):
        self.path = os.fspath(path)
        self.transform = transform
        self.target_transform = target_transform
        self.extension = extension
        with open_store(self.path, backend=backend, extension=extension) as store:
            self.backend = store.backend
            self.shape = store.shape
            self.ids = store.ids()  # index i of the dataset is the i-th id in id order
        self._store = None
        self._pid = None

    def __len__(self):
        return len(self.ids)

    def _connection(self):
        if self._pid != os.getpid():
            if self._store is not None:
                _inherited.append(self._store)
            self._store = open_store(self.path, backend=self.backend, extension=self.extension)
            self._pid = os.getpid()
        return self._store

    def _item(self, image, label):
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __getitem__(self, index):
        """One item; or, given a list of indices (a DataLoader with sampler=BatchSampler(...) and
        batch_size=None, for a torch that does not call __getitems__), the whole batch (images, labels)."""
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            labels, images = self._connection().fetch(self.ids[np.asarray(index, dtype=np.int64)])
            images = torch.from_numpy(images)
            if self.transform is not None:
                images = torch.stack([self.transform(image) for image in images])
            labels = [int(label) if self.target_transform is None else self.target_transform(int(label))
                      for label in labels]
            return images, torch.tensor(labels)
        return self.__getitems__([index])[0]

    def __getitems__(self, indices):
        """The items at `indices`, read in one query."""
        labels, images = self._connection().fetch(self.ids[np.asarray(indices, dtype=np.int64)])
        items = zip(torch.from_numpy(images), labels.tolist())
        if self.transform is None and self.target_transform is None:
            return list(items)
        return [self._item(image, label) for image, label in items]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_store"] = None  # a connection is not pickled (spawned workers open their own)
        state["_pid"] = None
        return state

    def __del__(self):
        if self._store is not None and self._pid == os.getpid():
            self._store.close()
