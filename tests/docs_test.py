#!/usr/bin/env python3
"""Runs the examples of README.md and of every docs/*.md page, and checks that README.md links each page.

An example is a fenced code block that is
  - an sqlite3 session: lines `sqlite> SQL` (continued by `   ...> SQL`), each followed by the output the shell
    shows for it; an optional `$ sqlite3` line starts it. The session runs through the real sqlite3 shell (one
    process per block, on an in-memory database) and each statement's output, errors included, must be what
    the block shows. A line `...` in the shown output stands for any number of lines. Errors are compared as the
    interactive shell prints them (`Runtime error: ...`, without the batch shell's `near line N`).
  - a ```python block: run as a script by this Python (Debian's /usr/bin/python3, whose sqlite3 loads
    extensions), with PYTHONPATH=python and IMGSTORE_EXTENSION set; it must exit 0, and when each top-level
    `print(...)` line carries a trailing `# comment`, the script's output must be those comments, in order.
    A ```python block of `>>> ` lines is an interactive session instead, run by doctest (with ELLIPSIS: `...`
    in a shown result stands for any text).
Other blocks (commands such as scripts/run, text) are not examples.

An HTML comment on the line before a block marks it:
    <!-- not run: REASON -->      the block is not run (it needs CIFAR-10's files, is a fragment, ...)
    <!-- approximate: REASON -->  numbers in the output may differ from the shown ones by 2% (a size on disk)

Every page runs in one scratch folder, README.md first, then docs/*.md in name order, so a page's examples
may use the stores of the README's first session (`fashion.lmdb`, ...). The folder has `build` (the folder of
the extension under test, so `.load ./build/imgstore` loads it), `sql` and `python` linked in, as the project
root has; that is where the pages say their examples run.

Also checked: README.md links every docs/*.md page, and every relative link of these pages names a file that
exists (and, for a #fragment into a markdown page, one of its headings).

usage: docs_test.py SQLITE3 EXTENSION [PAGE.md ...]   (the pages: README.md and docs/*.md by default)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "\x01imgstore-docs-test"
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(not run|approximate):\s*(.+?)\s*-->\s*$")
PROMPT = re.compile(r"^sqlite> ?(.*)$")
CONTINUATION = re.compile(r"^\s*\.\.\.> ?(.*)$")
SHELL_ERROR = re.compile(r"^(\w[\w ]*?) near line (\d+): (.*)$")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class Block:
    def __init__(self, page, line, info, lines, marker):
        self.page, self.line, self.info, self.lines = page, line, info, lines
        self.marker = marker  # (kind, reason) or None

    @property
    def kind(self):
        if self.info in ("python", "py"):
            return "python"
        if any(PROMPT.match(l) for l in self.lines):
            return "sqlite"
        return "other"

    def where(self):
        return f"{self.page}:{self.line}"


def blocks_of(page, text):
    """The fenced blocks of a markdown page, each with the marker comment on the line before it, if any.
    Also fails on a `sqlite>` line outside a fenced block (it would silently never run)."""
    blocks, lines, i = [], text.split("\n"), 0
    problems = []
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if PROMPT.match(lines[i].strip()):
                problems.append(f"{page}:{i + 1}: a sqlite> line outside a fenced block is never run")
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3)
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mm = MARKER.match(prev)
        marker = (mm.group(1), mm.group(2)) if mm else None
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            problems.append(f"{page}:{i + 1}: a code block that is never closed")
        blocks.append(Block(page, i + 1, info, body, marker))
        i = j + 1
    return blocks, problems


# --- sqlite3 sessions -------------------------------------------------------------------------------------

class Statement:
    def __init__(self, line):
        self.line = line  # line in the page
        self.sql = []
        self.expected = []


def statements_of(block):
    stmts, problems = [], []
    for k, line in enumerate(block.lines):
        at = block.line + 1 + k
        p, c = PROMPT.match(line), CONTINUATION.match(line)
        if p:
            stmts.append(Statement(at))
            stmts[-1].sql.append(p.group(1))
        elif c and stmts and not stmts[-1].expected:
            stmts[-1].sql.append(c.group(1))
        elif not stmts:
            if line.strip() not in ("$ sqlite3", ""):
                problems.append(f"{block.page}:{at}: before the first sqlite> prompt: {line!r}")
        else:
            stmts[-1].expected.append(line.rstrip())
    return stmts, problems


def same_line(expected, actual, approximate):
    if expected == actual:
        return True
    if not approximate:
        return False
    if NUMBER.sub("#", expected) != NUMBER.sub("#", actual):
        return False
    for e, a in zip(NUMBER.findall(expected), NUMBER.findall(actual)):
        e, a = float(e), float(a)
        if abs(e - a) > 0.02 * max(abs(e), abs(a)):
            return False
    return True


def matches(expected, actual, approximate):
    """Lines against lines; an expected `...` line matches any run of lines (none included)."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(matches(expected[1:], actual[k:], approximate) for k in range(len(actual) + 1))
    return bool(actual) and same_line(expected[0], actual[0], approximate) and \
        matches(expected[1:], actual[1:], approximate)


def run_session(block, sqlite3, workdir):
    """Runs the block's statements in one sqlite3 process. After each, `.print` marks the end of its output on
    stdout and `.shell` one on stderr, so each statement gets its own output and errors."""
    stmts, problems = statements_of(block)
    if problems:
        return problems
    script = []
    for n, st in enumerate(stmts):
        script += st.sql
        script.append(f".print {MARK}:{n}")
        script.append(f".shell echo {MARK}:{n} >&2")
    try:
        done = subprocess.run([sqlite3, "-init", "/dev/null"], input="\n".join(script) + "\n", cwd=workdir,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return [f"{block.where()}: the session did not finish in 120 s"]
    outputs = [[] for _ in stmts]

    def split(stream, normalise):
        n, chunks = 0, [[] for _ in stmts]
        for line in stream.splitlines():
            if line.startswith(MARK):
                n = int(line.rsplit(":", 1)[1]) + 1
                continue
            if n >= len(stmts):
                return None, f"output after the last statement: {line!r}"
            chunks[n].append(normalise(line))
        return chunks, None

    out, why = split(done.stdout, lambda l: l.rstrip())
    err, why2 = split(done.stderr, lambda l: SHELL_ERROR.sub(r"\1: \3", l).rstrip())
    if out is None or err is None:
        return [f"{block.where()}: {why or why2}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"]
    for n in range(len(stmts)):
        outputs[n] = out[n] + err[n]
    approximate = block.marker is not None and block.marker[0] == "approximate"
    failures = []
    for st, actual in zip(stmts, outputs):
        if not matches(st.expected, actual, approximate):
            failures.append(
                f"{block.page}:{st.line}: sqlite> {' '.join(st.sql)}\n"
                + "  the page shows:\n" + "".join(f"    {l}\n" for l in st.expected or ["(nothing)"])
                + "  the shell printed:\n" + "".join(f"    {l}\n" for l in actual or ["(nothing)"]))
    return failures


# --- python blocks ----------------------------------------------------------------------------------------

def run_python(block, extension, workdir, scripts_dir):
    source = "\n".join(block.lines) + "\n"
    doctest = next((l for l in block.lines if l.strip()), "").startswith(">>>")
    path = Path(scripts_dir) / f"{block.page.replace('/', '_')}_{block.line}.{'txt' if doctest else 'py'}"
    path.write_text(source)
    command = [sys.executable, "-m", "doctest", "-o", "ELLIPSIS", str(path)] if doctest else [sys.executable, str(path)]
    env = dict(os.environ, IMGSTORE_EXTENSION=str(extension),
               PYTHONPATH=os.pathsep.join([str(ROOT / "python")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=300)
    except subprocess.TimeoutExpired:
        return [f"{block.where()}: the python block did not finish in 300 s"]
    if done.returncode != 0:
        return [f"{block.where()}: the python block failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"]
    prints = [l for l in block.lines if l.startswith("print(")]
    shown = [re.match(r"^print\(.*\)\s+#\s?(.*)$", l) for l in prints]
    if prints and all(shown):
        expected = [m.group(1).rstrip() for m in shown]
        actual = [l.rstrip() for l in done.stdout.splitlines()]
        if expected != actual:
            return [f"{block.where()}: the python block printed\n"
                    + "".join(f"    {l}\n" for l in actual) + "  where the page shows\n"
                    + "".join(f"    {l}\n" for l in expected)]
    return []


# --- links ------------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces -> -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    out, fence = set(), False
    for line in path.read_text().split("\n"):
        if FENCE.match(line):
            fence = not fence
        elif not fence and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def check_links(pages):
    problems = []
    for page in pages:
        base = (ROOT / page).parent
        for target in LINK.findall((ROOT / page).read_text()):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, fragment = target.partition("#")
            dest = (base / file) if file else (ROOT / page)
            if not dest.exists():
                problems.append(f"{page}: the link {target} names {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}, which does not exist")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                problems.append(f"{page}: the link {target}: {file or page} has no heading #{fragment}")
    readme_links = {os.path.normpath(t.partition("#")[0]) for t in LINK.findall((ROOT / "README.md").read_text())}
    for doc in sorted((ROOT / "docs").glob("*.md")):
        rel = str(doc.relative_to(ROOT))
        if rel not in readme_links:
            problems.append(f"README.md does not link {rel}: every docs/*.md page is linked from the front page")
    return problems


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sqlite3, extension = sys.argv[1], Path(sys.argv[2]).resolve()
    pages = sys.argv[3:] or ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    failures = check_links(pages)
    summary = []
    workdir = Path(tempfile.mkdtemp(prefix="imgstore-docs-"))
    scripts_dir = Path(tempfile.mkdtemp(prefix="imgstore-docs-py-"))
    try:
        os.symlink(extension.parent, workdir / "build")
        for name in ("sql", "python"):
            os.symlink(ROOT / name, workdir / name)
        for page in pages:
            blocks, problems = blocks_of(page, (ROOT / page).read_text())
            failures += problems
            counts = {"sqlite": 0, "python": 0, "not run": 0, "other": 0}
            for block in blocks:
                if block.marker and block.marker[0] == "not run":
                    counts["not run"] += 1
                    continue
                kind = block.kind
                counts[kind] += 1
                if kind == "sqlite":
                    failures += run_session(block, sqlite3, workdir)
                elif kind == "python":
                    failures += run_python(block, extension, workdir, scripts_dir)
                elif block.marker:
                    failures.append(f"{block.where()}: marked {block.marker[0]}, but it is not an example")
            summary.append(f"{page}: {counts['sqlite']} sqlite3 sessions and {counts['python']} python blocks run, "
                           f"{counts['not run']} marked not run, {counts['other']} other blocks")
    finally:
        if failures and os.environ.get("IMGSTORE_DOCS_KEEP"):
            print(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(scripts_dir, ignore_errors=True)
    print("\n".join(summary))
    if failures:
        print(f"\n{len(failures)} problems:\n")
        print("\n".join(failures))
        sys.exit(1)
    print("every example ran as its page shows")


if __name__ == "__main__":
    main()
