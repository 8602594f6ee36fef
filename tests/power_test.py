#!/usr/bin/env python3
"""Power loss, for one backend (sharded when SHARDS is given): a writer (the real sqlite3 shell) runs a few commits —
one that grows the store (by 3,000 rows; png_dir 300), one that changes committed rows in place (UPDATE, DELETE), an
INSERT OR REPLACE, another growth — under tests/power/write_log.c, which logs its writes, truncations, creations,
syncs, renames (and exchanges), unlinks, mkdirs and rmdirs below the store's directory. From the log, the files are rebuilt as a
power loss would leave them at each sync point and at the end: every write not yet synced dropped. Each such crash
image, opened as a table (timeout=2000), must hold exactly one of the committed states (the oracle: a native SQLite
table given the same statements), never an older one than an earlier image held, and the last image the last commit.

A SIGKILL of the writer is checked the same way: the files as the writer's process leaves them after each
record that changes a file or a name (every write the kernel has, synced or not; whole writes: a kill that stops
a large write between pages is not modelled; LMDB's lock file is left out, as in every image), up to KILLS of
them spread evenly over the log. After every image the table must also take a write and keep its committed rows
(a kill leaves the writer's unfinished transaction in the files, which the next writer must trim).

The model's simplification: a name (creation, rename, unlink, mkdir, rmdir) is durable at once, as a journaling
file system's metadata mostly is, so an fsync of a directory adds nothing to it; file contents are durable only
once synced (fsync, fdatasync, syncfs: every file, a write through an O_SYNC or O_DSYNC descriptor: that write).

usage: power_test.py SQLITE3 EXTENSION SHIM BACKEND [SHARDS] [--any]
  --any  stores of shape 'any': every image cut to a size of its own (by its id), with its height, width and
         channels; the committed states compared include every row's shape
"""

import hashlib
import os
import shutil
import struct
import sys
import tempfile

from harness import Checks, shell, synthetic_images

check = Checks()
SHAPE = "8x8x3"
ANY = "--any" in sys.argv  # stores of shape 'any'
PATHS = {"lmdb": "p.lmdb", "hdf5": "p.h5", "png_dir": "p_png"}
# gzip: hdf5 chunks rewritten and moved (unsharded: the shards add sync points, not ways to write a chunk).
# (Shape 'any': /images' chunks are bytes, chunk=700 about as many as seven rows.)
VARIANTS = {"hdf5": ["", ", compression='gzip', chunk=%d" % (700 if ANY else 7)]}
# The shapes digested as the labels of empty images.
DIGEST = "SELECT count(*) || ' ' || image_digest(id, label, pixels)%s FROM t;\n" % (
    " || ' ' || image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))" if ANY else "")
INTO = "t(id, label, pixels, height, width, channels)" if ANY else "t"
DIMS = ", height, width, channels" if ANY else ""


def images(n, seed):
    return synthetic_images(n, seed, SHAPE, ANY)


SETUP = "INSERT INTO %s %s;\n" % (INTO, images(50, 1))
# Rows each growth adds: png_dir's rows are files, written out for every crash image; a tenth makes the same commits.
GROWTH = {"png_dir": (300, 200)}


# Kill images checked per store: after each record that changes a file or a name (a sync changes neither), spread
# evenly over the log when there are more (the hdf5 store has 163: every other one).
KILLS = 120

# Compacting the store changes no row: the oracle runs a statement that does nothing in its place.
COMPACT = "SELECT json_valid(imgstore_compact('%s', '%s'));"
COMPACTED = ("lmdb", "hdf5", "png_dir")


def workload(backend, path):
    first, second = GROWTH.get(backend, (3000, 2000))
    return [
        "INSERT INTO %s SELECT id + 1000, label, pixels%s FROM (%s);" % (INTO, DIMS, images(first, 2)),
        "BEGIN; UPDATE t SET label = label + 1 WHERE id % 7 = 0; DELETE FROM t WHERE id % 11 = 0; COMMIT;",
        "INSERT OR REPLACE INTO %s SELECT id * 3, 5, pixels%s FROM (%s);" % (INTO, DIMS, images(200, 4)),
    ] + ([COMPACT % (backend, path)] if backend in COMPACTED else []) + [
        "INSERT INTO %s SELECT id + 20000, label, pixels%s FROM (%s);" % (INTO, DIMS, images(second, 5)),
    ]


def committed_states(sqlite3_path, ext, cwd, statements):
    """count || digest after the setup and after each statement, from a native table."""
    script = "CREATE TABLE t(id INTEGER PRIMARY KEY, label, pixels%s);\n" % DIMS + SETUP + DIGEST
    script += "".join(("SELECT 1 WHERE 0;" if "imgstore_compact" in w else w) + "\n" + DIGEST for w in statements)
    r = shell(sqlite3_path, ext, script, cwd)
    check(r.returncode == 0, "the oracle failed: %s" % r.stderr)
    return r.stdout.split("\n")[:len(statements) + 1]


def read_log(path):
    """The shim's records: (op, path, offset or length, bytes or new path)."""
    with open(path, "rb") as f:
        data = f.read()
    records, at = [], 0
    while at < len(data):
        op = chr(data[at])
        (n,) = struct.unpack_from("I", data, at + 1)
        name = data[at + 5:at + 5 + n].decode()
        at += 5 + n
        if op in "WD":
            offset, size = struct.unpack_from("QQ", data, at)
            records.append((op, name, offset, data[at + 16:at + 16 + size]))
            at += 16 + size
        elif op == "T":
            (length,) = struct.unpack_from("Q", data, at)
            records.append((op, name, length, None))
            at += 8
        elif op in "RE":
            (m,) = struct.unpack_from("I", data, at)
            records.append((op, name, 0, data[at + 4:at + 4 + m].decode()))
            at += 4 + m
        else:
            records.append((op, name, 0, None))
    return records


def apply(content, op, offset, payload):
    if op == "T":
        return content[:offset].ljust(offset, b"\0")
    grown = content.ljust(offset + len(payload), b"\0")
    return grown[:offset] + payload + grown[offset + len(payload):]


def below(path, name):
    return path == name or path.startswith(name + "/")


def rename(tables, op, name, payload):
    """A name operation (exchange, rename, unlink, rmdir) on {path: ...} tables."""
    if op == "E":
        # Both names stay; what each held is now below the other.
        for table in tables:
            first = {path: table.pop(path) for path in [p for p in table if below(p, name)]}
            second = {path: table.pop(path) for path in [p for p in table if below(p, payload)]}
            table.update({payload + path[len(name):]: v for path, v in first.items()})
            table.update({name + path[len(payload):]: v for path, v in second.items()})
        return
    # Whatever had a rename's new name is gone; a directory takes what is below it along. (Renamed out of the
    # folder: gone.)
    for table in tables:
        moved = {path: table.pop(path) for path in [p for p in table if below(p, name)]}
        if op == "R" and payload:
            for path in [p for p in table if below(p, payload)]:
                del table[path]
            table.update({payload + path[len(name):]: v for path, v in moved.items()})


def kill_images(initial, records, limit):
    """The files as a SIGKILL of the writer leaves them after each of up to `limit` of its records, spread evenly
    (and after the last): every write applied, synced or not."""
    files = dict(initial)
    changes = sum(1 for record in records if record[0] not in "SA")
    every = max(1, -(-changes // limit))
    change = 0
    for op, name, offset, payload in records:
        if op in "SA":
            continue
        change += 1
        if op in "WDT":
            files[name] = apply(files.get(name, b""), op, offset, payload)
        elif op == "C":
            files.setdefault(name, b"")
        elif op == "M":
            files[name] = None
        elif op in "ERUX":
            rename([files], op, name, payload)
        if change % every == 0 or change == changes:
            yield dict(files)


def crash_images(initial, records):
    """The files after a power loss at each sync point and at the end: {path: bytes, or None for a directory},
    unsynced writes dropped."""
    durable = dict(initial)
    pending = {}  # path: the writes and truncations since its last sync, in order
    images = []
    for op, name, offset, payload in records:
        if op in "WDT":
            durable.setdefault(name, b"")
            pending.setdefault(name, []).append((op, offset, payload))
            if op == "D":
                # Durable by itself; it stays pending too, so that a later sync replays the writes in order.
                durable[name] = apply(durable[name], op, offset, payload)
                images.append(dict(durable))
        elif op in "SA":
            for path in list(pending) if op == "A" else [name]:
                for p_op, p_offset, p_payload in pending.pop(path, []):
                    durable[path] = apply(durable[path], p_op, p_offset, p_payload)
            images.append(dict(durable))
        elif op == "C":
            durable.setdefault(name, b"")
        elif op == "M":
            durable[name] = None
        elif op in "ERUX":
            rename([durable, pending], op, name, payload)
    images.append(dict(durable))
    return images


def is_data(path):
    # LMDB writes its lock file (the reader table) through a shared map, which the shim does not see, and the
    # first process to open the store after a reboot resets it: it is no part of a crash image (format 2's
    # lock.mdb, format 1's PATH-lock).
    return not path.endswith("-lock") and os.path.basename(path) != "lock.mdb"


def read_files(folder):
    """Every file and directory below `folder`: {path: bytes, or None for a directory}."""
    files = {}
    for top, dirs, names in os.walk(folder):
        for d in dirs:
            files[os.path.join(top, d)] = None
        for name in filter(is_data, names):
            with open(os.path.join(top, name), "rb") as f:
                files[os.path.join(top, name)] = f.read()
    return files


def write_files(files, old_root, new_root):
    for path, content in sorted(files.items()):
        where = os.path.join(new_root, os.path.relpath(path, old_root))
        if content is None:
            os.makedirs(where, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(where), exist_ok=True)
            with open(where, "wb") as f:
                f.write(content)


def traced_writer(sqlite3_path, ext, shim, work, create, table, label, statements):
    """Makes the store (untraced), runs the workload under the shim: the store's folder, its files before, and
    the log."""
    store = os.path.join(work, "store")
    os.makedirs(store)
    r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s;\n%s" % (create, SETUP), store)
    check(r.returncode == 0, "%s: could not make the store: %s" % (label, r.stderr))
    initial = read_files(store)
    log = os.path.join(work, "writes.log")
    env = dict(os.environ, LD_PRELOAD=shim, IMGSTORE_WRITE_LOG=log, IMGSTORE_WRITE_LOG_DIR=store)
    r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s;\n" % table + "\n".join(statements), store,
              env=env)
    check(r.returncode == 0, "%s: the writer failed: %s" % (label, r.stderr))
    records = [rec for rec in read_log(log) if is_data(rec[1])]
    # The shim saw every write: the whole log, every file synced at its end, replays to the files as they are.
    check(crash_images(initial, records + [("A", store, 0, None)])[-1] == read_files(store),
          "%s: the write log does not replay to the writer's files" % label)
    return store, initial, records


# After each crash image's committed state, the table takes a write: new rows, one in each shard (ids from
# 900000: shard_of is the id modulo the shards, at most 8 here), after which the committed rows read as they did
# and the new ones are there.
WRITE_AFTER = ("INSERT INTO %s SELECT id + 900000, label, pixels%s FROM (%s);\n" % (INTO, DIMS, images(8, 9)) +
               DIGEST.replace("FROM t;", "FROM t WHERE id < 900000;") + "SELECT count(*) FROM t;\n")


def check_images(sqlite3_path, ext, work, store, table, label, images, states, kind):
    """Each distinct crash image opens to a committed state, never older than an earlier image's, and takes a
    write (WRITE_AFTER) that leaves the committed rows as they were."""
    seen, last, tally, count = set(), 0, {}, 0
    for i, files in enumerate(images):
        count += 1
        key = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        where = os.path.join(work, "image%d" % i)
        write_files(files, store, where)
        r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING %s;\n" % table + DIGEST + WRITE_AFTER, where)
        shutil.rmtree(where)
        out = r.stdout.strip().split("\n")
        got = out[0]
        state = states.index(got) if got in states else None  # (the write's own failure is checked below)
        tally[state] = tally.get(state, 0) + 1
        check(state is not None, "%s: %s image %d: not a committed state: %r %r"
              % (label, kind, i, got, r.stderr.strip()))
        if state is not None:
            check(state >= last, "%s: %s image %d: commit %d after an image with commit %d"
                  % (label, kind, i, state, last))
            last = max(last, state)
            rows = int(got.split()[0]) + 8
            check(r.returncode == 0 and r.stderr == "" and out[1:] == [got, str(rows)],
                  "%s: %s image %d (commit %d): writing after it failed: %r %r" % (
                      label, kind, i, state, out[1:], r.stderr.strip()))
    check(last == len(states) - 1, "%s: the last %s image holds commit %d of %d"
          % (label, kind, last, len(states) - 1))
    print("%s: %d %s images (%d distinct) by commit (None: refused or wrong): %s" % (
        label, count, kind, len(seen), sorted(tally.items(), key=str)))


def main():
    argv = [a for a in sys.argv if a != "--any"]
    sqlite3_path, ext, shim, backend = argv[1], os.path.abspath(argv[2]), os.path.abspath(argv[3]), argv[4]
    shards = ", shards=%s" % argv[5] if len(argv) > 5 else ""
    path = "t" if shards else PATHS[backend]
    # A crash image is opened as a table would be after a reboot; the writer opens the store the same way.
    table = "%s(path='%s', timeout=2000)" % (backend, path)
    # In memory where there is a tmpfs: the shim models the disk, and on a busy machine real syncs (syncfs above
    # all) wait for every other process's writes.
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="imgstore-power-", dir=memory) as work:
        statements = workload(backend, path)
        states = committed_states(sqlite3_path, ext, work, statements)
        for n, variant in enumerate(VARIANTS.get(backend, [""]) if not shards else [""]):
            create = "%s(path='%s', shape='%s'%s%s)" % (backend, path, "any" if ANY else SHAPE, variant, shards)
            label = backend + (" any" if ANY else "") + variant + shards
            where = os.path.join(work, "run%d" % n)
            os.makedirs(where)
            store, initial, records = traced_writer(sqlite3_path, ext, shim, where, create, table, label, statements)
            check_images(sqlite3_path, ext, where, store, table, label, crash_images(initial, records), states,
                         "power-loss")
            check_images(sqlite3_path, ext, where, store, table, label, kill_images(initial, records, KILLS), states,
                         "kill")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
