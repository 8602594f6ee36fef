#!/usr/bin/env python3
"""Crash test: a writer (the real sqlite3 shell) is killed with SIGKILL at many points, and after each kill a
new process opens the store and must find exactly a committed state (count and image_digest equal to the
oracle's, a native SQLite table given the same statements), or, for HDF5 only, refuse the file with a clear
error (a kill inside HDF5's own metadata flush, see docs/reliability.md); then it must be able to write again.

Two workloads, each killed KILLS times (default 100):
  transaction  one large transaction: inserts, DELETEs and label UPDATEs of committed rows, an OR REPLACE of
               a committed id; the kills are spread over it, half of them over its last part and its COMMIT
  loop         a shell running single-row INSERT OR REPLACE statements (each its own transaction) on a store
               of 2,000 rows; after the kill the store must equal the state after some prefix of them

usage: crash_test.py SQLITE3 EXTENSION BACKEND [KILLS] [THREADS] [--any]
  THREADS  the store module's threads argument for every writer (default: the module's default, the cores);
           with png_dir and threads > 1 the killed transaction's INSERTs are encoded on worker threads
  --any    stores of shape 'any': every image cut to a size of its own (height, width, channels from its id),
           given on INSERT; the states compared include every row's shape
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OPTIONS = ""          # extra module arguments (", threads=N")
ROWS = 200           # rows each killed transaction inserts (and the next one deletes again)
SHAPE = "32x32x3"
ANY = False           # --any: stores of shape 'any'


def images(n, shape, seed, kind=""):
    """The SELECT of n synthetic images (id, label, pixels); with --any, each cut to a size of its own, 1..2H x
    1..2W x 1..4 by its id and the seed (about as many bytes on average), with its height, width and channels."""
    kind = ", '%s'" % kind if kind else ""
    if not ANY:
        return "SELECT id, label, pixels FROM synthetic(%d, '%s', %d%s)" % (n, shape, seed, kind)
    h, w = (2 * int(x) for x in shape.split("x")[:2])
    return ("SELECT id, label, substr(pixels, 1, height * width * channels) AS pixels, height, width, channels FROM "
            "(SELECT id, label, pixels, 1 + (id + %d) %% %d AS height, 1 + (id * 7 + %d) %% %d AS width, "
            "1 + (id + %d) %% 4 AS channels FROM synthetic(%d, '%dx%dx4', %d%s))" % (seed, h, seed, w, seed, n, h, w, seed, kind))


def into(table):
    """INSERT's target: the table, with --any its columns (height, width and channels are hidden)."""
    return table + ("(id, label, pixels, height, width, channels)" if ANY else "")


def dims():
    """What a SELECT from images() adds after its pixels: with --any, the shape."""
    return ", height, width, channels" if ANY else ""


def digest(table):
    """count and image_digest of a table; with --any, of every row's shape too."""
    shapes = " || ' ' || image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))" if ANY else ""
    return "SELECT count(*) || ' ' || image_digest(id, label, pixels)%s FROM %s;" % (shapes, table)


def native(table):
    return "CREATE TABLE %s(id INTEGER PRIMARY KEY, label, pixels%s);" % (table, dims())


def sql(sqlite3, ext, script, cwd, check=True):
    proc = subprocess.run([sqlite3, "-batch", "-bail", ":memory:"], input=".load %s\n%s\n" % (ext, script),
                          cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError("sqlite3 failed: %s\n%s" % (script[:200], proc.stderr))
    return proc


LOOP_SHAPE = "8x8x1"
LOOP_ROWS = 2000
LOOP_STATEMENTS = 3000
LOOP_KILLS = 30


def loop_statement(table, i):
    return "INSERT OR REPLACE INTO %s SELECT %d, %d, pixels%s FROM (%s);\n" % (
        into(table), (i * 37) % LOOP_ROWS, i % 10, dims(), images(1, LOOP_SHAPE, i))


def loop_workload(sqlite3, ext, backend, path):
    """Kills a shell looping single-row INSERT OR REPLACE statements; returns a list of failures."""
    work = tempfile.mkdtemp(prefix="imgstore-crash-loop-")
    open_store = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s'%s);" % (backend, path, OPTIONS)
    sql(sqlite3, ext, "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s'%s);"
        "INSERT INTO %s %s;" % (backend, path, "any" if ANY else LOOP_SHAPE, OPTIONS, into("s"),
                                images(LOOP_ROWS, LOOP_SHAPE, 3)),
        work)
    # The oracle: the state after every prefix of the statements, computed once in one process.
    ref_digest = digest("ref") + "\n"
    script = (native("ref") + "INSERT INTO %s %s;\n" % (into("ref"), images(LOOP_ROWS, LOOP_SHAPE, 3)) + ref_digest +
              "".join(loop_statement("ref", i) + ref_digest for i in range(1, LOOP_STATEMENTS + 1)))
    states = sql(sqlite3, ext, script, work).stdout.split("\n")[:LOOP_STATEMENTS + 1]
    done = 0  # statements the store holds
    failures = []
    for k in range(LOOP_KILLS):
        if done >= LOOP_STATEMENTS - 200:
            break
        # From a file, not a pipe: writing the statements must not wait for the writer to read them.
        script = os.path.join(work, "loop.sql")
        with open(script, "w") as f:
            f.write(".load %s\n%s%s" % (ext, open_store, "".join(
                loop_statement("s", i) for i in range(done + 1, LOOP_STATEMENTS + 1))))
        with open(script) as f:
            writer = subprocess.Popen([sqlite3, "-batch", ":memory:"], stdin=f, cwd=work,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.15 + 0.03 * (k % 10))  # past start-up (loading HDF5 takes ~0.1 s)
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        proc = sql(sqlite3, ext, open_store + digest("s"), work, check=False)
        got = proc.stdout.strip()
        later = [j for j in range(done, LOOP_STATEMENTS + 1) if states[j] == got]
        if proc.returncode != 0 or not later:
            failures.append("loop kill %d: the store holds %r (%s); expected the state after statement %d or a later one"
                            % (k, got, proc.stderr.strip(), done))
            break
        done = later[0]
    print("%s loop: %d statements committed across %d kills" % (backend, done, LOOP_KILLS))
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return failures


class CrashRun:
    """One backend's store and its oracle (a native SQLite file with the committed rows) in a work directory."""

    def __init__(self, sqlite3, ext, backend, create="", open_with=""):
        """`create` and `open_with`: more module arguments at creation and at every opening (e.g. hdf5's
        compression and threads)."""
        self.sqlite3, self.ext, self.backend = sqlite3, ext, backend
        open_with += OPTIONS
        self.create = create + open_with
        self.path = {"lmdb": "s.lmdb", "hdf5": "s.h5", "png_dir": "s_png"}[backend]
        self.work = tempfile.mkdtemp(prefix="imgstore-crash-")
        self.open_store = "CREATE VIRTUAL TABLE temp.s USING %s(path='%s'%s);" % (backend, self.path, open_with)
        self.shape = "any" if ANY else SHAPE
        self.run("ATTACH 'ref.db' AS r; %s"
                 "CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s'%s%s);"
                 "INSERT INTO %s %s;"
                 "INSERT INTO %s %s;" % (
                     native("r.ref"), backend, self.path, self.shape, create, open_with,
                     into("s"), images(200, SHAPE, 1, "smooth"), into("r.ref"), images(200, SHAPE, 1, "smooth")))

    def run(self, script, check=True):
        return sql(self.sqlite3, self.ext, script, self.work, check=check)

    def state(self):
        proc = self.run(self.open_store + digest("s"), check=False)
        return proc.returncode, proc.stdout.strip(), proc.stderr.strip()

    def start_writer(self, statements):
        """A writer shell that has loaded the extension, opened the store and begun; returns when it is there,
        so the time to a kill counts from the transaction's start, not from the process's."""
        writer = subprocess.Popen([self.sqlite3, "-batch", ":memory:"], stdin=subprocess.PIPE, cwd=self.work,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        writer.stdin.write(".load %s\n%sBEGIN;\n.print ready\n%sCOMMIT;\n.print done\n" % (self.ext, self.open_store, statements))
        writer.stdin.flush()
        writer.stdout.readline()  # "ready"
        return writer

    @staticmethod
    def changes(table, k, base, seed):
        """The killed transaction's statements, for the store `s` or the oracle `r.ref`."""
        return ("INSERT INTO {into} SELECT id + {base}, label, pixels{dims} FROM ({many});\n"
                "DELETE FROM {t} WHERE id >= 2000000 AND id < {base};\n"
                "DELETE FROM {t} WHERE id IN ({d1}, {d2});\n"
                "UPDATE {t} SET label = label + 1 WHERE id BETWEEN {u} AND {u} + 4;\n"
                "INSERT OR REPLACE INTO {into} SELECT {r}, 9, pixels{dims} FROM ({one});\n"
                ).format(t=table, into=into(table), base=base, dims=dims(), many=images(ROWS, SHAPE, seed, "smooth"),
                         one=images(1, SHAPE, seed, "smooth"), d1=(k * 7) % 200, d2=(k * 11 + 3) % 200,
                         u=(k * 13) % 200, r=(k * 17 + 5) % 200)

    def undisturbed_duration(self):
        """How long an undisturbed transaction of the same kind takes, to spread the kills over it and its commit."""
        writer = self.start_writer(self.changes("s", 0, 1000000, 2))
        start = time.time()
        writer.stdout.readline()  # "done"
        duration = time.time() - start
        writer.stdin.close()
        writer.wait()
        self.run("ATTACH 'ref.db' AS r; BEGIN;\n%sCOMMIT;" % self.changes("r.ref", 0, 1000000, 2))
        return duration

    def expected_before_after(self, k, base, seed):
        """The oracle's state now and after the killed transaction, from one process."""
        ref_digest = digest("r.ref") + "\n"
        out = self.run("ATTACH 'ref.db' AS r;\n%sBEGIN;\n%s%sROLLBACK;" % (ref_digest, self.changes("r.ref", k, base, seed),
                                                                          ref_digest)).stdout.split("\n")
        return out[0].strip(), out[1].strip()

    def kill_after(self, statements, delay):
        writer = self.start_writer(statements)
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdin.close()
        writer.stdout.close()

    def restart_from_oracle(self):
        """A fresh store holding the oracle's rows (after hdf5 damage was detected and reported)."""
        for p in (self.path, self.path + "-lock"):
            shutil.rmtree(os.path.join(self.work, p), ignore_errors=True)
            if os.path.exists(os.path.join(self.work, p)):
                os.remove(os.path.join(self.work, p))
        self.run("ATTACH 'ref.db' AS r; CREATE VIRTUAL TABLE temp.s USING %s(path='%s', shape='%s'%s);"
                 "INSERT INTO %s SELECT id, label, pixels%s FROM r.ref;" % (self.backend, self.path, self.shape,
                                                                            self.create, into("s"), dims()))

    def write_again(self, k, base, oracle_changes):
        """After a kill the store can be written again, and its structure is sound (every image read back now
        and then); the oracle follows. A failure message, or None."""
        write = "INSERT INTO {into} SELECT id + %d, label, pixels%s FROM (%s);\n" % (base + 5000, dims(),
                                                                                     images(1, SHAPE, 7))
        full = 1 if k % 10 == 9 else 0
        proc = self.run(self.open_store + write.replace("{into}", into("s")) + "SELECT imgstore_check('%s', '%s', %d);" % (
            self.backend, self.path, full), check=False)
        if proc.returncode != 0:
            return "kill %d: writing after the crash failed: %s" % (k, proc.stderr.strip())
        self.run("ATTACH 'ref.db' AS r; BEGIN;\n%s%sCOMMIT;" % (oracle_changes, write.replace("{into}", into("r.ref"))))
        found = proc.stdout.strip()
        return None if found == "ok" else "kill %d: imgstore_check found: %s" % (k, found)

    def kills(self, kills):
        """Kills a writer `kills` times; returns the outcomes and the first failure (or None)."""
        duration = self.undisturbed_duration()
        outcomes = {"old state": 0, "new state": 0, "damage detected": 0}
        base = 2000000
        for k in range(kills):
            seed = 100 + k
            old, new = self.expected_before_after(k, base, seed)
            # Half the kills spread over the whole transaction, half over its last part and its COMMIT.
            if k % 2 == 0:
                delay = duration * (0.1 + 1.2 * k / max(kills - 1, 1))
            else:
                delay = duration * (0.75 + 0.5 * k / max(kills - 1, 1))
            self.kill_after(self.changes("s", k, base, seed), delay)
            rc, got, err = self.state()
            oracle_changes = ""
            if rc == 0 and got == old:
                outcomes["old state"] += 1
            elif rc == 0 and got == new:
                outcomes["new state"] += 1
                oracle_changes = self.changes("r.ref", k, base, seed)
            elif rc != 0 and self.backend == "hdf5" and ("damaged" in err or "HDF5" in err or "unable to" in err):
                outcomes["damage detected"] += 1
                print("kill %d after %.3fs: damage detected on open: %s" % (k, delay, err))
                self.restart_from_oracle()
            else:
                return duration, outcomes, ("kill %d after %.3fs: the store holds %r (rc %d, %s); expected the old state "
                                            "%r or the new %r" % (k, delay, got, rc, err, old, new))
            base += 10000
            failure = self.write_again(k, base, oracle_changes)
            if failure:
                return duration, outcomes, failure
        return duration, outcomes, None


def main():
    global ANY, OPTIONS
    ANY = "--any" in sys.argv
    argv = [a for a in sys.argv if a != "--any"]
    sqlite3, ext, backend = argv[1], argv[2], argv[3]
    kills = int(argv[4]) if len(argv) > 4 else 100
    if len(argv) > 5:
        OPTIONS = ", threads=%d" % int(argv[5])
    crash = CrashRun(sqlite3, ext, backend)
    duration, outcomes, failure = crash.kills(kills)
    failures = [failure] if failure else []
    print("%s%s: %d kills over %.3fs transactions: %s" % (backend, " (shape 'any')" if ANY else "", kills, duration,
                                                         outcomes))
    if not failures:
        started = time.time()
        failures += loop_workload(sqlite3, ext, backend, crash.path)
        print("%s loop: %.1f s" % (backend, time.time() - started))
    if not failures and backend == "hdf5":
        # A gzip store loaded with threads: chunks compressed on worker threads and written directly
        # (hdf5_chunks.hpp); a kill keeps the last commit just the same.
        threaded = CrashRun(sqlite3, ext, backend, create=", compression='gzip:1'", open_with=", threads=2")
        t_duration, t_outcomes, t_failure = threaded.kills(max(kills // 4, 5))
        print("hdf5 gzip threads=2: %d kills over %.3fs transactions: %s" % (max(kills // 4, 5), t_duration, t_outcomes))
        if t_failure:
            failures.append("gzip threads=2: " + t_failure)
            print("work directory kept: " + threaded.work)
        else:
            shutil.rmtree(threaded.work, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    if not failures:
        shutil.rmtree(crash.work, ignore_errors=True)
    else:
        print("work directory kept: " + crash.work)
    print("%d passed, %d failed" % (kills - len(failures) if not failures else 0, len(failures)))
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
