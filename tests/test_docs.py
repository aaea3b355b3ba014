"""The documentation cannot rot: every command block marked runnable in README.md and docs/*.md
runs with this checkout's code and must print the key figures it shows, and every file the
documentation cites is in git.

How a block is marked runnable: an HTML comment (invisible on GitHub) on the line before a
``console`` fence::

    <!-- runnable -->
    ```console
    $ mnetcost ratio --M 64 --N 128 --alpha 0.5 --delta 2
      parameters (from the counts)                 0.5328           73/137
    ...
    ```

* Every line that starts with ``$ `` is a command: ``mnetcost ...`` runs as ``python -m mnetcost
  ...`` and ``python ...`` with this interpreter, in the repository's root, with this checkout
  first on ``PYTHONPATH``; the arguments are split as a shell would (``shlex``, ``#`` starts a
  comment), but nothing else of a shell is there: no pipes, redirection or variables.
* The lines after a command, up to the next ``$ `` line, are its output as shown; a line of
  ``...`` or ``…`` stands for lines left out, and so does ``...`` inside a line.
* Every number shown with three or more significant digits (``589,824``, ``0.5328``, ``45.4``,
  ``1.00``) must appear, written the same way, among the numbers of the real output (stdout and
  stderr together). Numbers of one or two digits (``14%``, ``δ=2``) are not checked.
* ``check="text"`` in the comment (repeatable) names text that must appear verbatim both in the
  block and in the real output: for lines whose point is not a number.
* ``exit=N`` in the comment expects exit status N (default 0).

Mark only what is cheap (the calculator, a single cross-check, a script over a committed file):
the whole module must stay well under a minute. Training, export and evaluation on real data stay
unmarked; keep them right by hand.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"^<!--\s*runnable\b(?P<options>.*?)-->\s*$")
NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d|,\d|\.\d)")
ELIDED = {"...", "…"}
NEEDS_TORCH = {"crosscheck", "train", "bench", "export", "evaluate"}


@dataclass
class Command:
    where: str  # file:line
    argv: list[str]
    shown: list[str]  # the output lines as the documentation shows them
    exit_code: int
    checks: list[str]


def significant_digits(number: str) -> int:
    return len(number.replace(",", "").replace(".", "").lstrip("0"))


def key_figures(lines: list[str]) -> list[str]:
    """Numbers with three or more significant digits, as written."""
    return [n for line in lines for n in NUMBER.findall(line) if significant_digits(n) >= 3]


def parse(path: Path) -> list[Command]:
    """The commands of every block marked runnable in ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(ROOT).as_posix()
    commands: list[Command] = []
    for number, line in enumerate(lines):
        mark = MARK.match(line.strip())
        if not mark:
            continue
        where = f"{name}:{number + 1}"
        assert number + 1 < len(lines) and lines[number + 1].strip() == "```console", \
            f"{where}: a runnable mark must stand right above a ```console block"
        options = mark.group("options")
        checks = re.findall(r'check="([^"]*)"', options)
        exit_code = int(re.search(r"exit=(\d+)", options).group(1)) if "exit=" in options else 0
        leftover = re.sub(r'check="[^"]*"|exit=\d+', "", options).strip()
        assert not leftover, f"{where}: unknown option in the runnable mark: {leftover!r}"
        end = next((k for k in range(number + 2, len(lines)) if lines[k].strip() == "```"), None)
        assert end is not None, f"{where}: the ```console block is not closed"
        block = lines[number + 2:end]
        assert block and block[0].startswith("$ "), f"{where}: a runnable block starts with a `$ ` command"
        text = "\n".join(block)
        for check in checks:
            assert check in text, f"{where}: check={check!r} is not in the block as shown"
        for k, row in enumerate(block):
            if not row.startswith("$ "):
                continue
            shown = []
            for follow in block[k + 1:]:
                if follow.startswith("$ "):
                    break
                shown.append(follow)
            argv = shlex.split(row[2:], comments=True)
            assert not {"|", ">", ">>", "<", "&&", ";"} & set(argv), f"{where}: no shell syntax in a runnable command"
            commands.append(Command(f"{name}:{number + 3 + k}", argv, shown, exit_code,
                                    [c for c in checks if c in "\n".join(shown)]))
    return commands


COMMANDS = [command for path in DOCS for command in parse(path)]


def test_the_documentation_has_runnable_blocks():
    """A marking that no longer parses must not pass as "nothing to check"."""
    files = {c.where.split(":")[0] for c in COMMANDS}
    assert {"README.md", "docs/calculator.md", "docs/memory.md", "docs/crosscheck.md"} <= files, files
    assert len(COMMANDS) >= 15


def test_key_figures_are_found_as_written():
    assert key_figures(["  (3) depthwise Mult-Adds D_K·D_K·(αM·δ)·D_F·D_F      589,824", "ratio 0.5328  73/137",
                        "conv_pw_2 45.4 KiB = 14% of 1.00 MiB; α=0.25 δ=2; 18.93M", "576, 4,096, and 3,384.",
                        "torch 2.13.0 x86-64 1e-05"]) \
        == ["589,824", "0.5328", "137", "45.4", "1.00", "18.93", "576", "4,096", "3,384"]


_RESULTS: dict[tuple, subprocess.CompletedProcess] = {}  # a command shown on two pages runs once


def run(argv: list[str]) -> subprocess.CompletedProcess:
    if tuple(argv) not in _RESULTS:
        _RESULTS[tuple(argv)] = _run(argv)
    return _RESULTS[tuple(argv)]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    if argv[0] == "mnetcost":
        argv = [sys.executable, "-m", "mnetcost", *argv[1:]]
    elif argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    else:
        raise AssertionError(f"runnable commands are `mnetcost ...` or `python ...`, not {argv[0]!r}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_runnable_block(command):
    if command.argv[0] == "mnetcost" and NEEDS_TORCH & set(command.argv[1:2]):
        pytest.importorskip("torch")
        pytest.importorskip("fvcore")
    result = run(command.argv)
    output = result.stdout + result.stderr
    assert result.returncode == command.exit_code, f"{command.where}: exit {result.returncode}\n{output[-2000:]}"
    found = set(NUMBER.findall(output))
    missing = [n for n in key_figures(command.shown) if n not in found]
    assert not missing, f"{command.where}: `{shlex.join(command.argv)}` no longer prints {missing}"
    for check in command.checks:
        assert check in output, f"{command.where}: `{shlex.join(command.argv)}` no longer prints {check!r}"


# --- every file the documentation cites is in git -----------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE = re.compile(r"`([^`\n]+)`")
PLACEHOLDER = set("<>{}*$[]|=~")


def tracked() -> tuple[set[str], set[str]]:
    """(files, folders) in git, as paths relative to the repository's root."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = {f for f in listed.stdout.split("\0") if f}
    folders = {"/".join(f.split("/")[:k]) for f in files for k in range(1, f.count("/") + 1)}
    return files, folders


def cited(text: str, page: str, tops: set[str]) -> list[tuple[str, str]]:
    """(where, repository path) for every link and image of the page ``page`` (its path from the
    repository's root) with ``text``, and every path-looking word in its code (inline and
    fenced) that starts with one of the repository's top folders ``tops``."""
    folder = Path(page).parent
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            found.append((f"{page}:{number}", os.path.normpath(folder / target.split("#")[0]).replace(os.sep, "/")))
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        for span in [line] if in_fence else INLINE.findall(line):
            for word in span.split():
                word = word.strip("'\"(),;:.").removeprefix("./")
                if "/" not in word or PLACEHOLDER & set(word) or "://" in word or word.startswith("-"):
                    continue
                if word.split("/")[0] in tops:
                    found.append((f"{page}:{number}", word.rstrip("/")))
    return found


def test_every_cited_file_is_in_git():
    files, folders = tracked()
    tops = {f.split("/")[0] for f in files if "/" in f}
    missing = [f"{where}: {target}" for path in DOCS
               for where, target in cited(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix(), tops)
               if target not in files and target not in folders]
    assert not missing, "cited but not in git:\n" + "\n".join(missing)


def test_cited_paths_are_found_in_links_code_and_commands():
    text = ("![f](pareto.png) [m](../README.md#x) [w](https://example.org/a/b) see `results/cifar10-repro/run.sh`\n"
            "```bash\nmnetcost plot --out docs/nothing-here.png  # x\n```\n`runs/x/best.pt` `<dir>/a.npz` "
            "`results/x/`\n")
    assert [t for _, t in cited(text, "docs/page.md", {"docs", "results"})] == [
        "docs/pareto.png", "README.md", "results/cifar10-repro/run.sh", "docs/nothing-here.png", "results/x"]


# --- every #anchor a link names is a heading of its page --------------------------------------------
def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (letters of any script, digits,
    `_` and `-` kept), spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, in_fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def test_every_anchor_a_link_names_exists():
    assert slug("## `mnetcost ratio`: equations (1)–(4) and section III.A".lstrip("#")) \
        == "mnetcost-ratio-equations-14-and-section-iiia"
    assert slug("BatchNorm statistics for short runs (`--bn-stats`)") == "batchnorm-statistics-for-short-runs---bn-stats"
    missing = []
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target) or "#" not in target:
                    continue
                page, anchor = target.split("#", 1)
                linked = (path.parent / page).resolve() if page else path
                if linked.suffix == ".md" and anchor not in anchors(linked):
                    missing.append(f"{path.relative_to(ROOT).as_posix()}:{number}: {target}")
    assert not missing, "links to headings that do not exist:\n" + "\n".join(missing)
