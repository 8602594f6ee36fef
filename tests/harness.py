"""What the process tests share: a Python sqlite3 connection with the extension loaded (autocommit, so the
tests say BEGIN and COMMIT themselves), and a tally of named checks."""

import os
import sqlite3
import subprocess
import time


def synthetic_images(n, seed, shape, any_size):
    """The SELECT of n synthetic images of `shape`; for a store of shape 'any' (`any_size`) each cut to
    1..8 x 1..8 x 1..4 by its id, with its height, width and channels."""
    if not any_size:
        return "SELECT id, label, pixels FROM synthetic(%d, '%s', %d)" % (n, shape, seed)
    return ("SELECT id, label, substr(pixels, 1, height * width * channels) AS pixels, height, width, channels FROM "
            "(SELECT id, label, pixels, 1 + id %% 8 AS height, 1 + id * 3 %% 8 AS width, 1 + id %% 4 AS channels "
            "FROM synthetic(%d, '8x8x4', %d))" % (n, seed))


def connect(ext):
    con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def shell(sqlite3_path, ext, script, cwd, timeout=60, env=None, user=None):
    """The real sqlite3 shell with the extension loaded running `script` (on past errors), in `cwd`; as the
    user id `user` (setpriv, from root) when given."""
    cmd = [sqlite3_path, "-batch", ":memory:"]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    return subprocess.run(cmd, input=".load %s\n%s\n" % (ext, script), capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def wait(proc, deadline):
    """A child's exit status (negative: killed by that signal), or None when past the deadline (time.time()).
    `proc`: a pid from os.fork, or a subprocess.Popen."""
    while time.time() < deadline:
        if isinstance(proc, subprocess.Popen):
            rc = proc.poll()
            if rc is not None:
                return rc
        else:
            pid, status = os.waitpid(proc, os.WNOHANG)
            if pid:
                return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.005)
    return None


class Checks:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def __call__(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failures.append(what)
            print("FAIL " + what)

    def summary(self):
        """Prints the tally; the process's exit status."""
        print("%d checks passed, %d failed" % (self.passed, len(self.failures)))
        return 1 if self.failures else 0
