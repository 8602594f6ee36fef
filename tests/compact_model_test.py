"""imgstore_compact between generated statements, against a native table (issue 24, point 2).

One connection writes a store (single or 2 shards) and a native table alike: inserts and replaces, deletes,
relabels, committed and rolled-back transactions, savepoints rolled back to; a second connection in the same
process compacts the store, reopens its table, and reads. After every step both connections read the native
table's rows (image_digest), and at the end imgstore_check(.., 1) says ok.

With --any the store is of shape 'any': every image cut to a size of its own (by its id and the seed), and
every digest covers the shapes too.

Usage: compact_model_test.py <imgstore extension> <backend> <seeds> [--any]"""

import os
import random
import shutil
import sqlite3
import sys
import tempfile

from harness import connect

ANY = "--any" in sys.argv
ext, backend, seeds = [a for a in sys.argv if a != "--any"][1:4]
seeds = int(seeds)
SHAPE = "any" if ANY else "8x8x3"
COLS = "(id, label, pixels, height, width, channels)" if ANY else ""
DIMS = ", height, width, channels" if ANY else ""
# Shape 'any': the shapes digested as the labels of empty images.
DIGEST = "image_digest(id, label, pixels)" + (
    " || ' ' || image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))" if ANY else "")


def images(n, seed):
    """n synthetic images (8x8x3; shape 'any': cut to 1..8 x 1..8 x 1..4 by id and seed, with the shape)."""
    if not ANY:
        return "SELECT id, label, pixels FROM synthetic(%s, '8x8x3', %d)" % (n, seed)
    return ("SELECT id, label, substr(pixels, 1, height * width * channels) AS pixels, height, width, channels FROM "
            "(SELECT id, label, pixels, 1 + (id + %d) %% 8 AS height, 1 + id * 3 %% 8 AS width, 1 + id %% 4 AS channels "
            "FROM synthetic(%s, '8x8x4', %d))" % (seed, n, seed))


root = tempfile.mkdtemp(prefix="imgstore-compact-model-")
bad = 0
for seed in range(seeds):
    rng = random.Random(seed)
    work = os.path.join(root, 'seed%d' % seed); os.makedirs(work)
    path = os.path.join(work, 's.lmdb' if backend == 'lmdb' else 's.h5')
    shards = rng.choice(['', ', shards=2'])
    if shards: path = os.path.join(work, 'sh')
    a = connect(ext); b = connect(ext)
    a.execute(f"CREATE VIRTUAL TABLE temp.s USING {backend}(path='{path}', shape='{SHAPE}'{shards})")
    b.execute(f"CREATE VIRTUAL TABLE temp.s USING {backend}(path='{path}', timeout=100)")
    a.execute(f"CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label, pixels{DIMS})")
    for step in range(60):
        op = rng.choice(['ins', 'ins', 'del', 'upd', 'txn_rb', 'txn', 'compact', 'compact', 'reopen', 'sp'])
        lo = rng.randrange(0, 3000); n = rng.randrange(1, 600)
        def both(sql, args=()):
            a.execute(sql.replace('{t}', 's'), args); a.execute(sql.replace('{t}', 'n'), args)
        try:
            if op == 'ins':
                both("INSERT OR REPLACE INTO {t}%s SELECT id + ?, (id * 7) %% 10, pixels%s FROM (%s)" % (COLS, DIMS, images("?", 3)),
                     (lo, n))
            elif op == 'del':
                both("DELETE FROM {t} WHERE id >= ? AND id < ?", (lo, lo + n))
            elif op == 'upd':
                both("UPDATE {t} SET label = label + 1 WHERE id % 3 = ?", (lo % 3,))
            elif op == 'txn_rb':
                a.execute("BEGIN"); both("DELETE FROM {t} WHERE id < ?", (lo,)); both("INSERT OR REPLACE INTO {t}%s SELECT id + 5000, 1, pixels%s FROM (%s)" % (COLS, DIMS, images(50, 4))); a.execute("ROLLBACK")
            elif op == 'txn':
                a.execute("BEGIN"); both("DELETE FROM {t} WHERE id > ?", (lo,)); both("UPDATE {t} SET label = 3 WHERE id < 100"); a.execute("COMMIT")
            elif op == 'sp':
                a.execute("SAVEPOINT x"); both("DELETE FROM {t} WHERE id % 2 = 0"); a.execute("ROLLBACK TO x"); both("DELETE FROM {t} WHERE id % 5 = 0"); a.execute("RELEASE x")
            elif op == 'compact':
                b.execute("SELECT imgstore_compact(?, ?)", (backend, path)).fetchone()
            elif op == 'reopen':
                b.execute("DROP TABLE temp.s"); b.execute(f"CREATE VIRTUAL TABLE temp.s USING {backend}(path='{path}', timeout=100)")
        except sqlite3.Error as e:
            print('seed', seed, 'step', step, op, 'error', e); bad += 1; break
        da = a.execute(f"SELECT {DIGEST} FROM s").fetchone()[0]
        dn = a.execute(f"SELECT {DIGEST} FROM n").fetchone()[0]
        db = b.execute(f"SELECT {DIGEST} FROM s").fetchone()[0]
        if not (da == dn == db):
            print('seed', seed, 'step', step, op, 'differs', da, dn, db); bad += 1; break
    chk = b.execute("SELECT imgstore_check(?, ?, 1)", (backend, path)).fetchone()[0]
    if chk != 'ok': print('seed', seed, 'check', chk); bad += 1
    a.close(); b.close(); shutil.rmtree(work, ignore_errors=True)
print(backend + (" (shape 'any')" if ANY else ""), seeds, 'seeds,', bad, 'bad')
sys.exit(1 if bad else 0)
