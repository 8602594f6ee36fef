#!/usr/bin/env python3
"""Multi-process schedule tester: generated schedules of 2-4 processes over one store, started by fork after
the parent has opened and written the store, by fork before the parent opens anything, or by spawn; writers
commit transactions, readers check every observation against the set of committed states, and random
SIGKILLs hit both. At the end a fresh process must find exactly the last committed state of every writer and
imgstore_check(backend, path, 1) must say ok. Every backend, single and sharded (shards=3).

Readers hold some statements open across commits: after a few rows they wait until a writer acknowledges a
commit (or a second passes), then read on; the statement must still return one committed state. Writers run
with a short `timeout` and no COMMIT may fail because statements are reading: on every backend a commit never
waits for readers (png_dir keeps the files a commit replaces or deletes for the statements that began before
it; docs/formats.md).

Why the oracle is exact without a shared log: each writer owns an id range and is its store's only writer
there, so its part of the store is a function of how many of its transactions committed. Transaction n of
writer w inserts new rows, replaces, relabels, repaints, moves and deletes rows of w's range, chosen from w's
model state after n-1 transactions by a PRNG seeded with (seed, w, n); the checker replays the same model. A
writer appends n to its ack file after COMMIT returns, so:
  - a reader that read the ack files before its statement must see, for every writer, state(k) with k at least
    the acks it read, and never a k smaller than one it saw before (no committed row lost, no going back);
  - at the end each writer's rows are state(acks), or state(acks + 1) for a writer killed after its COMMIT
    and before its ack.

usage: process_test.py EXTENSION [SCHEDULES_PER_CONFIG] [SEED] [BACKEND:SHARDS,...]
       process_test.py --child JSON   (a spawned process)
"""

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib

from harness import Checks, connect, wait

SHAPE = "4x4x1"
PIXELS = 16
RANGE = 1_000_000          # ids of writer w: [w * RANGE, (w + 1) * RANGE)
TRANSACTIONS = 25          # per writer
WRITER_TIMEOUT_MS = 300    # a writer waits this long for another writer (then tries again)
HOLD = 1.0                 # seconds a reader holds a statement open at most, waiting for a commit
DEADLINE = 60.0            # seconds a schedule may take before its processes are killed and it fails
PATHS = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}


# ---- the model: what writer w's rows are after n of its transactions

def transaction(seed, w, n, rows):
    """The statements of writer w's n-th transaction (n >= 1) over its rows {id: (label, pixels)} before it,
    and the rows after it. Every statement succeeds on that state: the store must give the same rows."""
    rng = random.Random("%d/%d/%d" % (seed, w, n))
    rows = dict(rows)
    base = w * RANGE
    sql = []

    def pixels():
        return bytes(rng.randrange(256) for _ in range(PIXELS))

    def free_id():
        while True:
            i = base + rng.randrange(RANGE // 2)
            if i not in rows:
                return i

    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7) if rows else 0
        ids = sorted(rows)
        if op <= 1:  # INSERT of new ids, one statement of several rows
            new = []
            for _ in range(rng.randint(1, 4)):
                i = free_id()
                rows[i] = (rng.randrange(10), pixels())
                new.append(i)
            sql.append(("INSERT INTO s VALUES " + ", ".join("(?, ?, ?)" for _ in new),
                        [v for i in new for v in (i, rows[i][0], rows[i][1])]))
        elif op == 2:  # INSERT OR REPLACE of a committed id
            i = rng.choice(ids)
            rows[i] = (rng.randrange(10), pixels())
            sql.append(("INSERT OR REPLACE INTO s VALUES (?, ?, ?)", [i, rows[i][0], rows[i][1]]))
        elif op == 3:  # relabel a range
            lo = rng.choice(ids)
            label = rng.randrange(10)
            for i in ids:
                if lo <= i < lo + 50_000:
                    rows[i] = (label, rows[i][1])
            sql.append(("UPDATE s SET label = ? WHERE id >= ? AND id < ?", [label, lo, lo + 50_000]))
        elif op == 4:  # new pixels
            i = rng.choice(ids)
            rows[i] = (rows[i][0], pixels())
            sql.append(("UPDATE s SET pixels = ? WHERE id = ?", [rows[i][1], i]))
        elif op == 5:  # move to another id
            i, j = rng.choice(ids), free_id()
            rows[j] = rows.pop(i)
            sql.append(("UPDATE s SET id = ? WHERE id = ?", [j, i]))
        else:  # delete, then maybe the same id again
            i = rng.choice(ids)
            del rows[i]
            sql.append(("DELETE FROM s WHERE id = ?", [i]))
            if rng.randrange(2):
                rows[i] = (rng.randrange(10), pixels())
                sql.append(("INSERT INTO s VALUES (?, ?, ?)", [i, rows[i][0], rows[i][1]]))
    return sql, rows


def digest(rows):
    """Order-independent enough (sorted) digest of {id: (label, pixels)}."""
    h = 0
    for i in sorted(rows):
        label, pix = rows[i]
        h = zlib.crc32(b"%d|%d|" % (i, label) + bytes(pix), h)
    return "%d:%08x" % (len(rows), h)


def states(seed, w):
    """digest of writer w's rows after n transactions, for n = 0 .. TRANSACTIONS."""
    rows, out = {}, [digest({})]
    for n in range(1, TRANSACTIONS + 1):
        rows = transaction(seed, w, n, rows)[1]
        out.append(digest(rows))
    return out


def observed(con, hold=None):
    """{writer: digest of its rows} as one statement of `con` sees the store; hold(), if given, is called after
    the statement's first rows, with the statement still open."""
    per = {}
    for k, (i, label, pix) in enumerate(con.execute("SELECT id, label, pixels FROM s")):
        if hold is not None and k == 2:
            hold()
        per.setdefault(i // RANGE, {})[i] = (label, pix)
    return {w: digest(r) for w, r in per.items()}


def acks(work, writers):
    out = {}
    for w in range(writers):
        try:
            with open(os.path.join(work, "ack%d" % w)) as f:
                lines = f.read().split()
            out[w] = int(lines[-1]) if lines else 0
        except FileNotFoundError:
            out[w] = 0
    return out


# ---- the processes

def open_table(job, con=None, timeout=30000):
    con = con or connect(job["ext"])
    con.execute("CREATE VIRTUAL TABLE temp.s USING %s(path='%s', timeout=%d)" % (job["backend"], job["path"], timeout))
    return con


def writer(job):
    w, seed = job["index"], job["seed"]
    # Shorter than a reader's hold: a COMMIT that waited for the statements reading would fail with BUSY.
    con = open_table(job, timeout=WRITER_TIMEOUT_MS)
    rows = {}
    for n in range(1, TRANSACTIONS + 1):
        sql, after = transaction(seed, w, n, rows)
        while True:
            try:
                con.execute("BEGIN")
                for text, args in sql:
                    con.execute(text, args)
                con.execute("COMMIT")
                break
            except sqlite3.OperationalError as e:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or "reading" in str(e):
                    raise  # a commit waited for readers: it must not
                time.sleep(0.01)  # another writer holds the store longer than `timeout`: the same again
        rows = after
        with open(os.path.join(job["work"], "ack%d" % w), "a") as f:
            f.write("%d\n" % n)


def reader(job):
    """Reads until the writers are done; every observation must be a committed state that keeps up."""
    # digest -> every n after which writer w's rows have it (a state may recur: rows deleted, then none again)
    table = {w: {} for w in range(job["writers"])}
    for w in range(job["writers"]):
        for n, d in enumerate(states(job["seed"], w)):
            table[w].setdefault(d, []).append(n)
    con = open_table(job)
    seen = {w: 0 for w in range(job["writers"])}
    problems = []
    reads = 0
    rng = random.Random("%d/reader/%d" % (job["seed"], job["index"]))

    def hold():
        """Keeps the statement open until a writer acknowledges another commit (or HOLD seconds pass)."""
        end = time.time() + HOLD
        while acks(job["work"], job["writers"]) == before and time.time() < end:
            time.sleep(0.005)

    while not os.path.exists(os.path.join(job["work"], "done")) and len(problems) < 5:
        before = acks(job["work"], job["writers"])
        try:
            if reads % 2:  # every other read opens the table anew: opening races commits too
                con.close()
                con = open_table(job)
            got = observed(con, hold if rng.randrange(3) == 0 else None)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                continue
            problems.append("read failed: %s" % e)
            break
        reads += 1
        for w in range(job["writers"]):
            d = got.get(w, digest({}))
            ns = table[w].get(d)
            # The earliest state with these rows that keeps up (a recurring state is taken at its earliest).
            n = min((k for k in ns or [] if k >= max(before[w], seen[w])), default=None)
            if ns is None:
                problems.append("writer %d's rows are no committed state (%s)" % (w, d))
            elif n is None and max(ns) < before[w]:
                problems.append("writer %d: saw %s transactions after %d were acknowledged" % (w, ns, before[w]))
            elif n is None:
                problems.append("writer %d: saw %s transactions after seeing %d" % (w, ns, seen[w]))
            else:
                seen[w] = n
    with open(os.path.join(job["work"], "reader%d" % job["index"]), "w") as f:
        json.dump({"reads": reads, "problems": problems}, f)


def child(job):
    try:
        (writer if job["role"] == "writer" else reader)(job)
        code = 0
    except Exception as e:  # noqa: BLE001 - reported through the file and the exit status
        with open(os.path.join(job["work"], "error%s%d" % (job["role"], job["index"])), "w") as f:
            f.write("%s: %s" % (type(e).__name__, e))
        code = 3
    return code


def start(job, mode):
    """Starts a child; returns its pid (fork) or Popen (spawn)."""
    if mode == "spawn":
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", json.dumps(job)],
                                cwd=job["work"])
    pid = os.fork()
    if pid == 0:
        os._exit(child(job))
    return pid


def kill(proc):
    try:
        os.kill(proc.pid if isinstance(proc, subprocess.Popen) else proc, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- one schedule

def schedule(ext, backend, shards, seed, check):
    rng = random.Random(seed)
    mode = rng.choice(["fork-after", "fork-before", "spawn"])
    writers = rng.randint(2, 3)
    readers = rng.randint(0, 4 - writers)
    kills = rng.randint(0, 2)
    name = "%s%s seed %d (%s, %d writers, %d readers, %d kills)" % (
        backend, " shards=%d" % shards if shards else "", seed, mode, writers, readers, kills)
    work = tempfile.mkdtemp(prefix="imgstore-process-")
    path = os.path.join(work, PATHS[backend])
    try:
        create = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s'%s)" % (
            backend, path, SHAPE, ", shards=%d" % shards if shards else "")
        job = {"ext": ext, "backend": backend, "path": path, "work": work, "seed": seed, "writers": writers}
        jobs = [dict(job, role="writer", index=w) for w in range(writers)]
        jobs += [dict(job, role="reader", index=r) for r in range(readers)]
        parent = None
        if mode == "fork-before":
            # This process never loads the extension before it forks: another one makes the store.
            subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(':memory:'); "
                            "c.enable_load_extension(True); c.load_extension(sys.argv[1]); c.execute(sys.argv[2])",
                            ext, create], check=True)
        else:
            # The parent makes the store, writes a row of no writer's range and keeps its connection open.
            parent = connect(ext)
            parent.execute(create)
            parent.execute("INSERT INTO s VALUES (?, 0, zeroblob(%d))" % PIXELS, [9 * RANGE])
            parent.execute("SELECT count(*) FROM s").fetchone()
        procs = [(j, start(j, mode)) for j in jobs]
        deadline = time.time() + DEADLINE
        killed = set()
        for _ in range(kills):
            time.sleep(rng.uniform(0.05, 0.6))
            j, p = rng.choice(procs)
            kill(p)
            killed.add((j["role"], j["index"]))
        results = {}
        for j, p in procs:
            if j["role"] == "writer":
                results[("writer", j["index"])] = wait(p, deadline)
        with open(os.path.join(work, "done"), "w"):
            pass
        for j, p in procs:
            if j["role"] == "reader":
                results[("reader", j["index"])] = wait(p, deadline)
        for j, p in procs:
            if results.get((j["role"], j["index"])) is None:
                kill(p)
                wait(p, time.time() + 5)
        ok = True
        for (role, index), rc in sorted(results.items()):
            if (role, index) in killed and rc == -signal.SIGKILL:
                continue
            error = os.path.join(work, "error%s%d" % (role, index))
            why = open(error).read() if os.path.exists(error) else "exit status %s" % rc
            if rc != 0:
                ok = False
                check(False, "%s: %s %d failed: %s" % (name, role, index, why))
        for r in range(readers):
            report = os.path.join(work, "reader%d" % r)
            if os.path.exists(report):
                with open(report) as f:
                    got = json.load(f)
                ok = ok and not got["problems"]
                check(not got["problems"], "%s: reader %d (%d reads): %s" % (name, r, got["reads"], "; ".join(got["problems"])))
        if parent is not None:
            parent.close()
        # A fresh process: every writer's rows are its last committed state; the store checks ok.
        final = subprocess.run([sys.executable, os.path.abspath(__file__), "--final",
                                json.dumps(dict(job, killed=[i for role, i in killed if role == "writer"]))],
                               capture_output=True, text=True, timeout=120)
        check(final.returncode == 0 and ok, "%s: at the end: %s%s" % (name, final.stdout.strip(), final.stderr.strip()[-800:]))
        return final.returncode == 0 and ok
    finally:
        shutil.rmtree(work, ignore_errors=True)


def final_check(job):
    """In a fresh process: each writer's rows against its acks; imgstore_check. Exit status 0 when right."""
    try:
        con = open_table(job)
        got = observed(con)
    except sqlite3.Error as e:
        print("a fresh process cannot read the store: %s" % e)
        return 1
    done = acks(job["work"], job["writers"])
    problems = []
    for w in range(job["writers"]):
        table = states(job["seed"], w)
        d = got.get(w, digest({}))
        allowed = [done[w]] + ([done[w] + 1] if w in job["killed"] and done[w] < TRANSACTIONS else [])
        if d not in [table[n] for n in allowed]:
            have = [n for n, s in enumerate(table) if s == d]
            problems.append("writer %d committed %d transactions (acknowledged), the store holds %s" % (
                w, done[w], "the state after %d" % have[0] if have else "no committed state (%s)" % d))
    status = con.execute("SELECT imgstore_check(?, ?, 1)", [job["backend"], job["path"]]).fetchone()[0]
    if status != "ok":
        problems.append("imgstore_check: " + status)
    print("; ".join(problems) if problems else "ok")
    return 1 if problems else 0


def main():
    if sys.argv[1] == "--child":
        sys.exit(child(json.loads(sys.argv[2])))
    if sys.argv[1] == "--final":
        sys.exit(final_check(json.loads(sys.argv[2])))
    ext = os.path.abspath(sys.argv[1])
    per_config = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seed0 = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    check = Checks()
    start_time = time.time()
    only = sys.argv[4].split(",") if len(sys.argv) > 4 else None  # e.g. hdf5:3,lmdb:0 (triage)
    for backend in ("lmdb", "hdf5", "png_dir"):
        for shards in (0, 3):
            if only and "%s:%d" % (backend, shards) not in only:
                continue
            failed = 0
            for k in range(per_config):
                failed += not schedule(ext, backend, shards, seed0 + k, check)
            print("%s%s: %d schedules, %d failed" % (backend, " shards=3" if shards else "", per_config, failed))
    print("process schedules: %.1f s" % (time.time() - start_time))
    sys.exit(check.summary())


if __name__ == "__main__":
    main()
