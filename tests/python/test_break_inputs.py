"""Adversarial inputs to the bulk read paths (python/imgstore/_store.py, _bulk.py): values that are not ids must
be refused, never read as some other id."""

import numpy as np
import pytest

import imgstore
from conftest import make_store


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "s.lmdb")
    make_store(path, "lmdb", 10)
    with imgstore.open(path) as s:
        yield s


@pytest.mark.parametrize("ids", [[1.7], [2.5, 3.0], np.array([0.9]), ["3"], [True]])
def test_get_refuses_non_integer_ids(store, ids):
    # fetch() does np.asarray(ids, dtype=np.int64): 1.7 becomes 1, "3" becomes 3, True becomes 1, so
    # get([1.7]) silently returns image 1. append() refuses such ids ("expected ... integers").
    with pytest.raises((ValueError, TypeError)):
        store.get(ids)


def test_get_refuses_uint64_ids_beyond_int64(store):
    # np.uint64(2**64 - 1) is cast to -1: a KeyError naming an id never asked for ("[-1]"). (Any uint64 >= 2**63
    # becomes negative, so no other row is read; only the message is wrong.) Python's int 2**63 is an
    # OverflowError, as it should be.
    with pytest.raises((ValueError, OverflowError, KeyError)) as e:
        store.get(np.array([2**64 - 1], dtype=np.uint64))
    assert "-1" not in str(e.value)


def test_scan_bounds_beyond_int64_do_not_wrap(store):
    # ctypes' c_int64 argument conversion wraps silently: hi = 2**64 + 3 becomes 3, lo = -2**64 + 7 becomes 7.
    ids = store.scan(0, 2**64 + 3, labels=False, images=False)[0]
    assert ids.tolist() == list(range(10))  # every id is <= 2**64 + 3; got [0, 1, 2, 3]
    ids = store.scan(-2**64 + 7, 9, labels=False, images=False)[0]
    assert ids.tolist() == list(range(10))  # got [7, 8, 9]


def test_get_keeps_the_shape_of_the_ids(store):
    # A 2-D array of ids is flattened without a word: (2, 2) ids give (4, H, W, C) images.
    ids = np.array([[1, 2], [3, 4]])
    try:
        images = store.get(ids)
    except ValueError:
        return  # refusing is fine too
    assert images.shape[:2] == (2, 2)
