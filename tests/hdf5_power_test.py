#!/usr/bin/env python3
"""Power loss for hdf5 stores: a writer (the real sqlite3 shell) runs a few commits — one that grows the file
by 3,000 rows, one that changes committed rows in place (the journal), an INSERT OR REPLACE, another growth —
under tests/power/write_log.c, which logs its writes, truncations, syncs, renames and unlinks below the store's
directory. From the log, the files are rebuilt as a power loss would leave them at each sync point and at the
end: every write not yet synced dropped. Each such crash image, opened as a table (timeout=2000), must hold
exactly one of the committed states (the oracle: a native SQLite table given the same statements), never an
older one than an earlier image held, and the last image the last commit.

usage: hdf5_power_test.py SQLITE3 EXTENSION SHIM
"""

import hashlib
import os
import struct
import sys
import tempfile

from harness import Checks, shell

check = Checks()
SHAPE = "8x8x3"
DIGEST = "SELECT count(*) || ' ' || image_digest(id, label, pixels) FROM t;\n"
SETUP = "INSERT INTO t SELECT * FROM synthetic(50, '%s', 1);\n" % SHAPE
WORKLOAD = [
    "INSERT INTO t SELECT id + 1000, label, pixels FROM synthetic(3000, '%s', 2);" % SHAPE,
    "BEGIN; UPDATE t SET label = label + 1 WHERE id % 7 = 0; DELETE FROM t WHERE id % 11 = 0; COMMIT;",
    "INSERT OR REPLACE INTO t SELECT id * 3, 5, pixels FROM synthetic(200, '%s', 4);" % SHAPE,
    "INSERT INTO t SELECT id + 20000, label, pixels FROM synthetic(2000, '%s', 5);" % SHAPE,
]


def committed_states(sqlite3_path, ext, cwd):
    """count || digest after the setup and after each statement, from a native table."""
    script = "CREATE TABLE t(id INTEGER PRIMARY KEY, label, pixels);\n" + SETUP + DIGEST
    script += "".join(w + "\n" + DIGEST for w in WORKLOAD)
    r = shell(sqlite3_path, ext, script, cwd)
    check(r.returncode == 0, "the oracle failed: %s" % r.stderr)
    return r.stdout.split("\n")[:len(WORKLOAD) + 1]


def read_log(path):
    """The shim's records: (op, path, offset, bytes or length or new path)."""
    with open(path, "rb") as f:
        data = f.read()
    records, at = [], 0
    while at < len(data):
        op = chr(data[at])
        (n,) = struct.unpack_from("I", data, at + 1)
        name = data[at + 5:at + 5 + n].decode()
        at += 5 + n
        if op == "W":
            offset, size = struct.unpack_from("QQ", data, at)
            records.append((op, name, offset, data[at + 16:at + 16 + size]))
            at += 16 + size
        elif op == "T":
            (length,) = struct.unpack_from("Q", data, at)
            records.append((op, name, length, None))
            at += 8
        elif op == "R":
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


def crash_images(initial, records):
    """The files after a power loss at each sync point and at the end: {path: bytes}, unsynced writes dropped.
    Names (rename, unlink) count at once, as a journaling file system's metadata mostly does."""
    durable = dict(initial)
    pending = {}
    images = []
    for op, name, offset, payload in records:
        if op in "WT":
            durable.setdefault(name, b"")
            pending.setdefault(name, []).append((op, offset, payload))
        elif op == "S":
            for p_op, p_offset, p_payload in pending.pop(name, []):
                durable[name] = apply(durable[name], p_op, p_offset, p_payload)
            images.append(dict(durable))
        elif op == "R":
            durable[payload] = durable.pop(name, b"")
            pending[payload] = pending.pop(name, [])
        elif op == "U":
            durable.pop(name, None)
            pending.pop(name, None)
    images.append(dict(durable))
    return images


def read_files(folder):
    files = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            files[os.path.join(folder, name)] = f.read()
    return files


def traced_writer(sqlite3_path, ext, shim, work, options):
    """Makes the store (untraced), runs the workload under the shim: the files before, and the log."""
    store = os.path.join(work, "store")
    os.makedirs(store)
    r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='p.h5', shape='%s'%s);\n%s"
              % (SHAPE, options, SETUP), store)
    check(r.returncode == 0, "%s: could not make the store: %s" % (options, r.stderr))
    initial = read_files(store)
    log = os.path.join(work, "writes.log")
    env = dict(os.environ, LD_PRELOAD=shim, IMGSTORE_WRITE_LOG=log, IMGSTORE_WRITE_LOG_DIR=store)
    r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='p.h5');\n" + "\n".join(WORKLOAD),
              store, env=env)
    check(r.returncode == 0, "%s: the writer failed: %s" % (options, r.stderr))
    records = read_log(log)
    # The shim saw every write: the whole log, each file synced at its end, replays to the files as they are.
    names = {rec[1] for rec in records if rec[0] in "WT"}
    check(crash_images(initial, records + [("S", n, 0, None) for n in sorted(names)])[-1] == read_files(store),
          "%s: the write log does not replay to the writer's files" % options)
    return initial, records


def check_images(sqlite3_path, ext, work, images, states, options):
    """Each distinct crash image opens to a committed state, never older than an earlier image's."""
    seen, last, tally = set(), 0, {}
    for i, files in enumerate(images):
        key = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        where = os.path.join(work, "image%d" % i)
        os.makedirs(where)
        for name, content in files.items():
            with open(os.path.join(where, os.path.basename(name)), "wb") as f:
                f.write(content)
        r = shell(sqlite3_path, ext, "CREATE VIRTUAL TABLE temp.t USING hdf5(path='p.h5', timeout=2000);\n" + DIGEST,
                  where)
        got = r.stdout.strip()
        state = states.index(got) if r.returncode == 0 and got in states else None
        tally[state] = tally.get(state, 0) + 1
        check(state is not None, "%s: crash image %d of %d: not a committed state: %r %r"
              % (options, i, len(images), got, r.stderr.strip()))
        if state is not None:
            check(state >= last, "%s: crash image %d: commit %d after an image with commit %d" % (options, i, state, last))
            last = max(last, state)
    check(last == len(WORKLOAD), "%s: the last image holds commit %d of %d" % (options, last, len(WORKLOAD)))
    print("%s: %d crash images (%d distinct) by commit (None: refused or wrong): %s" % (
        options.strip(", ") or "plain", len(images), len(seen), sorted(tally.items(), key=str)))


def main():
    sqlite3_path, ext, shim = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    with tempfile.TemporaryDirectory(prefix="imgstore-hdf5-power-") as work:
        states = committed_states(sqlite3_path, ext, work)
        for n, options in enumerate(("", ", compression='gzip', chunk=7")):  # gzip: chunks rewritten, moved
            where = os.path.join(work, "run%d" % n)
            os.makedirs(where)
            initial, records = traced_writer(sqlite3_path, ext, shim, where, options)
            check_images(sqlite3_path, ext, where, crash_images(initial, records), states, options)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
