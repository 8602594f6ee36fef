#!/usr/bin/python3
"""Python at memory speed (issue 26): the package's bulk reads against numpy doing the same work in memory,
measured in one run, best of 3.

    /usr/bin/python3 bench/bench_bulk.py [--images 100000] [--extension build/imgstore.so]

On N smooth synthetic 32x32x3 images in an lmdb store, an hdf5 store and an 8-shard lmdb table (page cache
warm; each store opened once):
  - to_numpy(): the whole store into one (N, 32, 32, 3) array, against `a.copy()` of the same array in memory
    (a fresh array too, so both pay for its pages); peak memory: the largest Python-traced allocation
    (tracemalloc: numpy's arrays and every Python object) during to_numpy(), over the array's bytes;
  - get() of 256 random ids, the mean of 500 batches (new ids each), against `a[ids]` of the same batches, the
    two alternating batch by batch;
  - a PyTorch DataLoader epoch (batch 256, shuffled, num_workers=0) of ImageDataset (CHW uint8 tensors),
    against the same loop over an in-memory dataset yielding the same items from a (N, 3, 32, 32) tensor
    (the ceiling), images/s.
Prints markdown.
"""

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

import imgstore  # noqa: E402
from imgstore.torch import ImageDataset  # noqa: E402

STORES = [("lmdb", "s.lmdb", ""), ("hdf5", "s.h5", ""), ("lmdb, 8 shards", "sh.lmdb", ", shards=8")]


class InMemory(Dataset):
    """The ceiling: the items ImageDataset yields (CHW uint8 tensor, int label), from memory, a batch by numpy's
    fancy indexing (the fastest of the in-memory loops tried: indexing a torch tensor with the list of indices
    ran at half its rate)."""

    def __init__(self, images_chw, labels):
        self.images, self.labels = images_chw, labels

    def __len__(self):
        return len(self.labels)

    def __getitems__(self, indices):
        images = torch.from_numpy(self.images[indices])
        return [(image, int(label)) for image, label in zip(images, self.labels[indices])]


def best(f, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def epoch_seconds(ds):
    loader = DataLoader(ds, batch_size=256, shuffle=True, num_workers=0)
    seen = 0
    for images, _ in loader:
        seen += len(images)
    assert seen == len(ds)


def make(work, n):
    conn = imgstore.load(sqlite3.connect(":memory:"))
    for backend, name, extra in STORES:
        module = backend.split(",")[0]
        conn.execute(f"CREATE VIRTUAL TABLE temp.t USING {module}(path='{work / name}', shape='32x32x3'{extra})")
        conn.execute(f"INSERT INTO temp.t SELECT * FROM dataset('smooth', {n})")
        conn.commit()
        conn.execute("DROP TABLE temp.t")
    conn.close()


def measure(path, n, rng_seed=0):
    row = {}
    with imgstore.open(path) as store:
        images, labels = store.to_numpy()  # warm
        assert images.shape == (n, 32, 32, 3)
        row["to_numpy"] = best(store.to_numpy)
        row["copy"] = best(images.copy)
        tracemalloc.start()
        store.to_numpy()
        row["peak"] = tracemalloc.get_traced_memory()[1] / images.nbytes
        tracemalloc.stop()
        rng = np.random.default_rng(rng_seed)
        batches = [rng.integers(0, n, 256) for _ in range(500)]
        for b in batches[:20]:
            assert (store.get(b) == images[b]).all()

        # Alternating per batch, so both see the same machine; each the best of 3 passes.
        row["get"] = row["fancy"] = float("inf")
        for _ in range(3):
            took = {"get": 0.0, "fancy": 0.0}
            for b in batches:
                t0 = time.perf_counter()
                store.get(b)
                t1 = time.perf_counter()
                images[b]
                took["get"] += t1 - t0
                took["fancy"] += time.perf_counter() - t1
            for key in took:
                row[key] = min(row[key], took[key] / len(batches))
    ceiling = InMemory(np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels)
    ds = ImageDataset(path)
    epoch_seconds(ds)  # warm
    row["loader"] = n / best(lambda: epoch_seconds(ds))
    row["ceiling"] = n / best(lambda: epoch_seconds(ceiling))
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--extension", default=str(ROOT / "build" / "imgstore.so"))
    args = parser.parse_args()
    os.environ["IMGSTORE_EXTENSION"] = args.extension
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="imgstore-bench-bulk-"))
    try:
        make(work, args.images)
        rows = [(label, measure(work / name, args.images)) for label, name, _ in STORES]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.images
    print(f"\n### Bulk reads from Python, {n:,} smooth 32x32x3 images ({n * 3072 / 1e6:.0f} MB), best of 3, one run\n")
    print("| store | to_numpy (s) | numpy copy (s) | ratio (target <= 1.5) | peak / array (target <= 1.1) "
          "| get 256 random (ms) | fancy indexing (ms) | ratio (target <= 2) | DataLoader w=0 (images/s) "
          "| in-memory ceiling (images/s) | of the ceiling (target >= 0.9) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['to_numpy']:.3f} | {r['copy']:.3f} | {r['to_numpy'] / r['copy']:.2f} | {r['peak']:.3f} "
              f"| {r['get'] * 1e3:.3f} | {r['fancy'] * 1e3:.3f} | {r['get'] / r['fancy']:.2f} | {r['loader']:,.0f} "
              f"| {r['ceiling']:,.0f} | {r['loader'] / r['ceiling']:.2f} |")


if __name__ == "__main__":
    main()
