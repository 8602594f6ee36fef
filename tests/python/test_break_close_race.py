"""Adversarial: Store.close() on one thread while other threads are inside Store.get(). Each get must either
return the images or raise (InterfaceError: no connected store table has bulk handle ...); the process must
not hang or touch freed memory. It hangs: with_store_table (extension/sqlite/vtab.cpp) finds the table's
sqlite3* under the table list's mutex, lets go of that mutex, then calls sqlite3_db_mutex(db) and
sqlite3_mutex_enter on a connection that close() may have freed meanwhile (and sqlite3_close frees the mutex a
waiting reader then acquires and releases).

For comparison: the same pattern through the stdlib (threads running conn.execute on s.conn while s.close())
segfaults in CPython's sqlite3 itself, so the fix belongs in Store (serialise close() with in-flight reads), not
only in the extension."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import imgstore

SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    import numpy as np
    import imgstore
    path = sys.argv[1]
    with imgstore.open(path, backend=sys.argv[2], shape=(4, 4, 3)) as s:
        s.append(np.zeros((50, 4, 4, 3), np.uint8), np.zeros(50, np.int64))
    for _ in range(150):
        s = imgstore.open(path)
        stop = threading.Event()
        def read():
            while not stop.is_set():
                try:
                    s.get([1, 2, 3])
                except Exception:
                    pass  # a closed store may refuse; it must not hang
        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.002)
        s.close()
        time.sleep(0.001)
        stop.set()
        for t in threads:
            t.join()
    print("done")
""")


def test_close_while_other_threads_get(tmp_path, backend):
    path = str(tmp_path / {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend])
    try:
        env = dict(os.environ, PYTHONPATH=str(Path(imgstore.__file__).parent.parent))
        out = subprocess.run([sys.executable, "-c", SCRIPT, path, backend], capture_output=True, text=True,
                             timeout=60, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("hung: a reader thread blocked for good in imgstore_bulk_get after close()")
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]
