"""imgstore from Python: image stores (LMDB, HDF5, a directory of PNGs) as numpy arrays.

    import imgstore
    with imgstore.open("train.lmdb") as train:
        print(len(train), train.shape)                 # 50000 (32, 32, 3)
        images = train.get([7, 3, 11])                 # (3, 32, 32, 3) uint8, in the order asked
        for ids, labels, images in train.batches(256, seed=0, epoch=0):
            ...

Everything goes through the imgstore SQLite extension and the standard sqlite3 module; `imgstore.torch` has a
PyTorch dataset.
"""

from ._extension import ExtensionError, find_extension, load, loadable_path
from ._store import Store, guess_backend, open

__all__ = ["ExtensionError", "Store", "find_extension", "guess_backend", "load", "loadable_path", "open"]
