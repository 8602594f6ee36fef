#!/usr/bin/python3
"""PyTorch DataLoader epoch throughput: imgstore.torch.ImageDataset on each backend against an in-memory numpy
array (the ceiling) and the article's Python layouts read the article's way (Pillow on a directory of PNGs,
py-lmdb with one pickle per image, h5py on an (N, H, W, C) dataset).

    /usr/bin/python3 bench/bench_python.py [--images N] [--epochs E] [--extension build/imgstore.so]

Every loader is `DataLoader(ds, batch_size=256, shuffle=True, num_workers=W)` for W = 0 and 2, over the same N
smooth synthetic 32x32x3 images (page cache warm); images/s = N / the best of E epochs' wall time after a
warm-up epoch, with persistent workers (their start is not counted). Every dataset opens its file in the process that reads (lazily, so each worker has its own). Prints
markdown; bench/RESULTS.md records a run.
"""

import argparse
import csv
import os
import pickle
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import h5py
import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

import imgstore  # noqa: E402
from imgstore.torch import ImageDataset  # noqa: E402

SHAPE = (32, 32, 3)
PATHS = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}


class InMemory(Dataset):
    """The ceiling: the same items (CHW uint8 tensors, as ImageDataset's) from numpy arrays, a batch by fancy
    indexing."""

    def __init__(self, images, labels):
        self.images, self.labels = np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]), int(self.labels[i])

    def __getitems__(self, indices):
        images = torch.from_numpy(self.images[indices])
        return [(image, int(label)) for image, label in zip(images, self.labels[indices])]


class LazyOpen(Dataset):
    """A file opened on first use in each process."""

    def __init__(self, path, n):
        self.path, self.n, self._handle, self._pid = path, n, None, None

    def __len__(self):
        return self.n

    def handle(self):
        if self._pid != os.getpid():
            self._handle, self._pid = self.open(), os.getpid()
        return self._handle

    def __getstate__(self):
        return {**self.__dict__, "_handle": None, "_pid": None}


class PillowDir(LazyOpen):
    """The article's disk layout: one PNG per image, read with Pillow; labels from a CSV."""

    def open(self):
        with open(os.path.join(self.path, "labels.csv")) as f:
            rows = list(csv.reader(f))[1:]
        return {int(i): int(label) for i, label in rows}

    def __getitem__(self, i):
        labels = self.handle()
        image = np.array(Image.open(os.path.join(self.path, f"{i}.png")))
        return torch.from_numpy(image), labels[i]


class PickledLmdb(LazyOpen):
    """The article's LMDB layout: key f'{i:08}', value a pickled (image bytes, label) object."""

    def open(self):
        return lmdb.open(self.path, readonly=True, lock=False, readahead=False)

    def __getitem__(self, i):
        with self.handle().begin() as txn:
            pixels, label = pickle.loads(txn.get(f"{i:08}".encode()))
        return torch.from_numpy(np.frombuffer(pixels, np.uint8).reshape(SHAPE).copy()), label


class H5py(LazyOpen):
    """The article's HDF5 layout: datasets images (N, H, W, C) and labels (N), read a row at a time."""

    def open(self):
        return h5py.File(self.path, "r")

    def __getitem__(self, i):
        f = self.handle()
        return torch.from_numpy(f["images"][i]), int(f["labels"][i])


def make_data(work, n, ext):
    """The imgstore stores (written by the extension) and the article's layouts of the same images."""
    conn = imgstore.load(sqlite3.connect(":memory:"), ext)
    for backend, name in PATHS.items():
        conn.execute(f"CREATE VIRTUAL TABLE temp.{backend} USING {backend}(path='{work / name}', shape='32x32x3')")
        conn.execute(f"INSERT INTO temp.{backend} SELECT * FROM synthetic({n}, '32x32x3', 1, 'smooth')")
        conn.commit()
    conn.close()
    with imgstore.open(work / PATHS["lmdb"], extension=ext) as s:
        images, labels = s.to_numpy()
    env = lmdb.open(str(work / "article.lmdb"), map_size=images.nbytes * 2 + (64 << 20))
    with env.begin(write=True) as txn:
        for i, (image, label) in enumerate(zip(images, labels)):
            txn.put(f"{i:08}".encode(), pickle.dumps((image.tobytes(), int(label))))
    env.close()
    with h5py.File(work / "article.h5", "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    return np.array(images), labels


def epoch_rate(ds, workers, epochs):
    """Images/s of the best of `epochs` epochs after a warm-up epoch; workers persist across epochs, so their
    start is not counted (it is a fork, the same for every dataset, and would dominate short epochs)."""
    loader = DataLoader(ds, batch_size=256, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    best = float("inf")
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        seen = 0
        for images, _labels in loader:
            seen += len(images)
        if epoch > 0:
            best = min(best, time.perf_counter() - t0)
        assert seen == len(ds)
    del loader
    return len(ds) / best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    args = parser.parse_args()
    os.environ["IMGSTORE_EXTENSION"] = args.extension
    work = Path(tempfile.mkdtemp(prefix="imgstore-bench-python-"))
    try:
        images, labels = make_data(work, args.images, args.extension)
        n = args.images
        loaders = [
            ("in-memory numpy (ceiling)", InMemory(images, labels)),
            ("imgstore lmdb", ImageDataset(work / PATHS["lmdb"])),
            ("imgstore hdf5", ImageDataset(work / PATHS["hdf5"])),
            ("imgstore png_dir", ImageDataset(work / PATHS["png_dir"])),
            ("article: Pillow, PNG directory", PillowDir(str(work / PATHS["png_dir"]), n)),
            ("article: py-lmdb, pickles", PickledLmdb(str(work / "article.lmdb"), n)),
            ("article: h5py", H5py(str(work / "article.h5"), n)),
        ]
        rates = {name: [epoch_rate(ds, w, args.epochs) for w in (0, 2)] for name, ds in loaders}
        report(rates, n, args.epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(rates, n, epochs):
    ceiling = rates["in-memory numpy (ceiling)"]
    print(f"\n### PyTorch DataLoader, {n} smooth 32x32x3 images, batch 256, shuffled (best of {epochs} epochs after a warm-up; persistent workers)\n")
    print("| dataset | images/s, 0 workers | images/s, 2 workers | of the ceiling (0 / 2) |")
    print("|---|---:|---:|---:|")
    for name, (r0, r2) in rates.items():
        print(f"| {name} | {r0:,.0f} | {r2:,.0f} | {r0 / ceiling[0]:.2f} / {r2 / ceiling[1]:.2f} |")
    pillow = rates["article: Pillow, PNG directory"]
    png = rates["imgstore png_dir"]
    print(f"\nimgstore png_dir / Pillow directory: {png[0] / pillow[0]:.2f}x (0 workers), "
          f"{png[1] / pillow[1]:.2f}x (2 workers)")


if __name__ == "__main__":
    main()
