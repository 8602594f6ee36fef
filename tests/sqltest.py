#!/usr/bin/env python3
"""Runs an SQL test script through the real sqlite3 shell with the extension loaded.

A script is plain SQL for the stock shell, cut into steps by directive comments:

    -- expect: 1            the step's output must be exactly these lines ('|' between columns); several
                            consecutive expect lines are a multi-line expectation, one line each; spaces
                            after the first one are kept (EXPLAIN QUERY PLAN indents its nested lines)
    -- expect-rows: 3       the step must print this many lines
    -- error: id 5 already exists
                            the step must fail, with this text in the error message
    -- process              the steps after it run in a new sqlite3 process (on the same files)
    -- shell: COMMAND       runs COMMAND with bash in the work directory; it must exit 0 ($SQLITE3 and
                            $IMGSTORE_EXTENSION name the shell and the extension under test)
    -- shell-expect: TEXT   the preceding shell command's stdout, stripped, must equal TEXT (\\n: a new line)

A step with no directive must simply not fail. {module}, {path}, {ext} and {dir} are replaced by the
module under test, a fresh store path for it, its file extension and the work directory, so one
conformance script serves every backend.

usage: sqltest.py SQLITE3 EXTENSION SCRIPT [MODULE]
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

STORE_PATHS = {"lmdb": "store.lmdb", "hdf5": "store.h5", "png_dir": "store_png", "": "store"}


class Step:
    def __init__(self, line_no):
        self.line_no = line_no
        self.sql = []
        self.expect = None
        self.expect_rows = None
        self.error = None
        self.shell = None
        self.shell_expect = None


def parse(text):
    """Returns a list of processes, each a list of steps."""
    processes = [[]]
    step = Step(1)

    def close(step):
        if step.sql or step.shell:
            processes[-1].append(step)

    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^--\s*(expect-rows|shell-expect|expect|error|process|shell)\b:?( ?)(\s*.*)$", line)
        if not m:
            step.sql.append(line)
            continue
        kind, arg = m.group(1), m.group(3)
        if kind != "expect":
            arg = arg.lstrip()
        if kind == "expect" and not step.sql and step.expect:
            step.expect.append(arg)  # consecutive expect lines: a multi-line expectation
            continue
        if kind == "shell-expect":
            # attaches to the shell step just closed
            last = processes[-1][-1] if processes[-1] and not step.sql else step
            last.shell_expect = arg.strip().replace("\\n", "\n")
            continue
        close(step)
        step = Step(no)
        if kind == "process":
            processes.append([])
        elif kind == "shell":
            step.shell = arg
            close(step)
            step = Step(no + 1)
        elif kind == "expect":
            step.expect = [] if arg.strip() == "(none)" else [arg]
        elif kind == "expect-rows":
            step.expect_rows = int(arg)
        elif kind == "error":
            step.error = arg.strip()
    close(step)
    return [p for p in processes if p]


def run_process(sqlite3, extension, steps, workdir, substitute):
    """Runs the steps in one sqlite3 process; returns a list of (step, stdout lines, stderr text)."""
    script = [".bail off", ".headers off", ".mode list", ".load " + extension]
    markers = []
    for i, step in enumerate(steps):
        marker = "@@step-%d@@" % i
        markers.append(marker)
        script.append(".print " + marker)
        script.extend(substitute(line) for line in step.sql)
    script.append(".print @@end@@")
    # stdbuf -o0: stdout unbuffered so that it interleaves with stderr in order.
    proc = subprocess.run(
        ["stdbuf", "-o0", "-e0", sqlite3, "-batch", "test.db"],
        input="\n".join(script) + "\n",
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    out = proc.stdout.splitlines()
    results = []
    if proc.returncode < 0 or "@@end@@" not in out:
        # The shell died (a signal, a sanitizer abort): every step that printed no marker failed.
        tail = "\n".join(out[-15:])
        seen = {int(l[7:-2]) for l in out if l.startswith("@@step-")}
        first = True
        for i, step in enumerate(steps):
            if i not in seen:
                why = ("the sqlite3 process died (rc %d) before this step:\n%s" % (proc.returncode, tail)) if first \
                    else "did not run (the sqlite3 process had died)"
                results.append((step, ["Runtime error near line 0: " + why]))
                first = False
    current = None
    lines = []
    for line in out:
        if line.startswith("@@step-") or line == "@@end@@":
            if current is not None:
                results.append((steps[current], lines))
            current = int(line[7:-2]) if line.startswith("@@step-") else None
            lines = []
        elif current is not None:
            lines.append(line)
        else:
            lines.append(line)
            if line.strip():
                results.append((None, [line]))
                lines = []
    return results


ERROR_RE = re.compile(r"^(Parse|Runtime) error near line \d+: |^Error: ")


def check(script_path, sqlite3, extension, module):
    text = open(script_path).read()
    processes = parse(text)
    workdir = tempfile.mkdtemp(prefix="imgstore-sqltest-")
    here = os.path.dirname(os.path.abspath(__file__))
    ext = {"lmdb": ".lmdb", "hdf5": ".h5", "png_dir": ""}.get(module, "")

    def substitute(s):
        return (s.replace("{module}", module)
                .replace("{path}", STORE_PATHS.get(module, "store"))
                .replace("{ext}", ext)
                .replace("{dir}", workdir)
                .replace("{tests}", here)
                .replace("{extension}", extension))

    failures = []
    passed = 0
    try:
        for steps in processes:
            # Shell steps run between SQL processes in file order: split around them.
            batch = []
            for step in steps + [None]:
                if step is not None and step.shell is None:
                    batch.append(step)
                    continue
                if batch:
                    for st, lines in run_process(sqlite3, extension, batch, workdir, substitute):
                        ok, why = judge(st, lines, substitute)
                        where = "%s:%s" % (os.path.basename(script_path), st.line_no if st else "?")
                        if ok:
                            passed += 1
                        else:
                            failures.append("%s: %s" % (where, why))
                    batch = []
                if step is not None:
                    cmd = substitute(step.shell)
                    env = dict(os.environ, SQLITE3=sqlite3, IMGSTORE_EXTENSION=extension)
                    proc = subprocess.run(["/bin/bash", "-c", cmd], cwd=workdir, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, errors="replace", env=env)
                    where = "%s:%s" % (os.path.basename(script_path), step.line_no)
                    if proc.returncode != 0:
                        failures.append("%s: shell command failed (%d): %s\n%s" %
                                        (where, proc.returncode, cmd, proc.stdout))
                    elif step.shell_expect is not None and proc.stdout.strip() != substitute(step.shell_expect):
                        failures.append("%s: shell command printed %r; expected %r" %
                                        (where, proc.stdout.strip(), step.shell_expect))
                    else:
                        passed += 1
    finally:
        if failures or os.environ.get("IMGSTORE_KEEP_TEST_DIR"):
            print("work directory kept: " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 0 if not failures else 1


def judge(step, lines, substitute):
    if step is None:
        return False, "output outside any step: %r" % lines
    errors = [l for l in lines if ERROR_RE.match(l)]
    rows = [l for l in lines if not ERROR_RE.match(l)]
    sql = " ".join(l.strip() for l in step.sql if l.strip())[:200]
    if step.error is not None:
        if not errors:
            return False, "expected an error containing %r, got none from: %s" % (step.error, sql)
        if not any(substitute(step.error) in e for e in errors):
            return False, "expected an error containing %r, got %r" % (step.error, errors)
        return True, ""
    if errors:
        return False, "unexpected error %r from: %s" % (errors, sql)
    if step.expect is not None and rows != [substitute(e) for e in step.expect]:
        return False, "expected %r, got %r from: %s" % (step.expect, rows, sql)
    if step.expect_rows is not None and len(rows) != step.expect_rows:
        return False, "expected %d rows, got %d from: %s" % (step.expect_rows, len(rows), sql)
    return True, ""


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        print(__doc__)
        sys.exit(2)
    sys.exit(check(sys.argv[3], sys.argv[1], sys.argv[2], sys.argv[4] if len(sys.argv) == 5 else ""))
