"""Grids of training runs: which runs, where, in what state, and how one is carried out.

A grid is a list of configurations (the paper's Tables 4-6 for one dataset, or a product of
variants, alphas and deltas) times a list of seeds. Every (configuration, seed) is one
``mnetcost train`` run folder under the grid's root with a stable name,
``<dataset>/<variant>-a<alpha>-d<delta>-s<seed>`` (``cifar10/fmp-a0.25-d2-s0``), so any worker
that is given the same options finds the same folders.

A run folder is in one of these states (:func:`folder_state`):

* ``done``: ``summary.json`` records every planned epoch (or at least ``--epochs``);
* ``partial``: ``config.json`` is there but not every epoch: ``train --resume`` continues it;
* ``todo``: missing, holding nothing but the lock file and temporary files, or the leftovers of
  a start that finished no epoch (a new run takes all three);
* ``running``: another live process holds its lock (:func:`mnetcost.files.lock_holder`);
* ``blocked``: anything else (files but no run ``config.json``, a run of another recipe, seed or
  data than the grid's, epochs recorded but ``last.pt`` gone): no ``train`` can use it, so the
  grid reports it and leaves it alone. Whether the run is the grid's is asked as ``train
  --resume`` asks it: :func:`mnetcost.identity.compare`, ``same-run``, of the run's identity
  against the one the grid would train (its recipe, the data's fingerprint, the seed).

These follow the run-folder contract of :mod:`mnetcost.nn.training` (``run_state``), read here
without torch.

A run is carried out by :func:`run_one` as a subprocess, ``python -m mnetcost train ... --out
FOLDER`` (``--resume`` for a partial run): a failing run is one failed outcome and the grid goes
on; ``train`` itself takes the folder's lock, so two workers never train the same run (the loser
is reported ``taken``, not failed). Each run's output is appended to ``<root>/logs/<name>.log``.

Sharding (:func:`select_shard`) gives worker INDEX of COUNT every COUNT-th run of the planned
list, starting at INDEX: disjoint, together complete, and the same on every machine.

Nothing here imports torch: planning and states read JSON and file names only.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from mnetcost import identity as ID
from mnetcost.calculator.params import parse_int
from mnetcost.errors import MnetcostError

STATES = ("done", "partial", "todo", "running", "blocked")
STATE_TEXT = {"done": "done", "partial": "partial", "todo": "to do", "running": "running", "blocked": "blocked"}
# What happened to a run in a grid call.
RESULTS = ("trained", "resumed", "skipped", "taken", "failed", "interrupted")
LOGS = "logs"
RUN_FILES = ID.RUN_FILES  # train's run-folder contract
LOCKED_TEXT = "is in use by"  # what `train` says when another process holds the run folder
PAPER_DATASETS = {10: "cifar10", 100: "cifar100"}


# --- configurations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Configuration:
    """One network to train: a variant (built-in name or absolute spec path) at alpha and delta,
    with the paper's printed accuracy where the paper has the row."""

    variant: str
    alpha: float
    delta: int
    tables: tuple[int, ...] = ()  # the paper tables that list it
    paper_accuracy: float | None = None  # fraction 0-1, as printed


def alpha_text(alpha: float) -> str:
    """Shortest text that reads back as the same float: 0.25, 1, 0.1."""
    short = f"{alpha:g}"
    return short if float(short) == alpha else repr(float(alpha))


def variant_name(variant: str) -> str:
    return Path(variant).stem if ("/" in variant or variant.endswith(".toml")) else variant


def paper_configurations(tables: Iterable[int], classes: int) -> list[Configuration]:
    """The configurations of the paper's ``tables`` (4, 5, 6) for the dataset with ``classes``
    classes, in the paper's order, the baseline once (Tables 5 and 6 repeat Table 4's)."""
    from mnetcost.calculator.paper import load_paper_results

    if classes not in PAPER_DATASETS:
        raise MnetcostError(f"the paper's tables are for 10 (CIFAR-10) or 100 (CIFAR-100) classes, not {classes}")
    dataset = PAPER_DATASETS[classes]
    chosen = set(tables)
    found: dict[tuple, Configuration] = {}
    for row in load_paper_results():
        if row.dataset != dataset or row.table not in chosen:
            continue
        key = (row.variant, row.alpha, row.delta)
        if key in found:
            found[key] = Configuration(row.variant, row.alpha, row.delta, found[key].tables + (row.table,),
                                       found[key].paper_accuracy)
        else:
            found[key] = Configuration(row.variant, row.alpha, row.delta, (row.table,), float(row.accuracy_pct / 100))
    return list(found.values())


def product_configurations(variants: Iterable[str], alphas: Iterable[float], deltas: Iterable[int],
                           classes: int | None = None) -> list[Configuration]:
    """Every (variant, alpha, delta), variants outermost; the paper's accuracy attached where
    the paper prints the row for ``classes``."""
    printed = {}
    if classes in PAPER_DATASETS:
        for config in paper_configurations((4, 5, 6), classes):
            printed[(config.variant, config.alpha, config.delta)] = config
    result = []
    for variant in variants:
        for alpha in alphas:
            for delta in deltas:
                paper = printed.get((variant, float(alpha), int(delta)))
                result.append(Configuration(variant, float(alpha), int(delta), paper.tables if paper else (),
                                            paper.paper_accuracy if paper else None))
    return result


def filter_configurations(configs: list[Configuration], variants=None, alphas=None, deltas=None) -> list[Configuration]:
    """Keep the configurations whose variant, alpha and delta are among those given (None: any)."""
    alpha_keys = None if alphas is None else {round(float(a), 9) for a in alphas}
    return [c for c in configs
            if (variants is None or c.variant in variants)
            and (alpha_keys is None or round(c.alpha, 9) in alpha_keys)
            and (deltas is None or c.delta in deltas)]


# --- runs: configuration x seed, named ------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    config: Configuration
    seed: int
    classes: int
    dataset: str  # the label: first part of the folder name

    @property
    def name(self) -> str:
        return (f"{self.dataset}/{variant_name(self.config.variant)}-a{alpha_text(self.config.alpha)}"
                f"-d{self.config.delta}-s{self.seed}")

    def describe(self) -> dict:
        c = self.config
        return {"name": self.name, "variant": c.variant, "alpha": c.alpha, "delta": c.delta, "classes": self.classes,
                "seed": self.seed, "dataset": self.dataset, "tables": list(c.tables),
                "paper_accuracy": c.paper_accuracy}


def plan_runs(configs: list[Configuration], seeds: list[int], classes: int, dataset: str) -> list[Run]:
    """Seeds outermost (every configuration's first seed comes before any second seed), then the
    configurations in their order. Two runs with one folder name are refused."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", dataset):
        raise MnetcostError(f"dataset label {dataset!r} is not a plain folder name (letters, digits, . _ + -)")
    runs = [Run(config, seed, classes, dataset) for seed in seeds for config in configs]
    seen: dict[str, Run] = {}
    for run in runs:
        if run.name in seen:
            raise MnetcostError(f"two configurations share the run folder {run.name} "
                                f"({seen[run.name].config.variant} and {run.config.variant})")
        seen[run.name] = run
    return runs


def parse_seeds(text: str) -> list[int]:
    """``0``, ``0,1,2`` or ``0-4`` (both ends included), in order, duplicates removed."""
    values: dict[int, None] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"seed list has an empty item: {text!r}")
        if "-" in item.lstrip("-"):
            first, last = (parse_int(part, "seed", 0) for part in item.split("-", 1))
            if last < first:
                raise ValueError(f"seed range {item!r} ends before it starts")
            if last - first >= 10_000:
                raise ValueError(f"seed range {item!r} has more than 10,000 seeds")
            for seed in range(first, last + 1):
                values[seed] = None
        else:
            values[parse_int(item, "seed", 0)] = None
    return list(values)


def parse_tables(text: str) -> list[int]:
    """``4``, ``4,5,6``: the paper's result tables."""
    tables = []
    for item in str(text).split(","):
        item = item.strip()
        if item not in ("4", "5", "6"):
            raise ValueError(f"the paper's result tables are 4, 5 and 6, got {item!r} in {text!r}")
        if int(item) not in tables:
            tables.append(int(item))
    return tables


# --- shards -----------------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``INDEX/COUNT`` with 0 <= INDEX < COUNT, in ASCII digits (as every integer option:
    :func:`~mnetcost.calculator.params.parse_int`; ``１/2`` and ``١/٢`` are refused)."""
    parts = str(text).split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        index, count = parse_int(parts[0], "shard INDEX", 0), parse_int(parts[1], "shard COUNT", 0)
    except ValueError:
        raise ValueError(f"shard must be INDEX/COUNT in ASCII digits with 0-based INDEX (e.g. 0/4), "
                         f"got {text!r}") from None
    if count < 1:
        raise ValueError(f"shard COUNT must be at least 1, got {text!r}")
    if index >= count:
        raise ValueError(f"shard INDEX must be below COUNT (0-based: 0/{count} ... {count - 1}/{count}), got {text!r}")
    return index, count


def shard_from_env(env: dict | None = None) -> tuple[int, int] | None:
    """The shard of a SLURM job-array task: INDEX = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)
    / SLURM_ARRAY_TASK_STEP, COUNT = SLURM_ARRAY_TASK_COUNT. None outside a job array.
    ``--array=0-7``, ``--array=1-8`` and ``--array=0-14:2`` all give shards 0/8 ... 7/8."""
    env = os.environ if env is None else env
    if "SLURM_ARRAY_TASK_ID" not in env:
        return None
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")
    values = {}
    for name in names:
        text = env.get(name, {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "1"}.get(name))
        try:
            values[name] = parse_int(str(text), name, 0)
        except ValueError:
            raise MnetcostError(f"{name}={text!r}: a SLURM job array needs integer {', '.join(names[:3])} in ASCII "
                                "digits (or give --shard INDEX/COUNT)") from None
    task, count, low, step = (values[name] for name in names)
    step = max(step, 1)
    if task < low or (task - low) % step or (task - low) // step >= count:
        raise MnetcostError(f"SLURM_ARRAY_TASK_ID={task} is not one of COUNT={count} tasks from MIN={low} in steps "
                            f"of {step} (an --array list with gaps?); give --shard INDEX/COUNT instead")
    return (task - low) // step, count


def select_shard(items: list, index: int, count: int) -> list:
    """Every ``count``-th item starting at ``index``: the shards of one list are disjoint, their
    union is the list, their sizes differ by at most one, and the split depends on nothing but
    the list."""
    if not 0 <= index < count:
        raise MnetcostError(f"shard {index}/{count}: INDEX must be in 0..{count - 1}")
    return items[index::count]


# --- states -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FolderState:
    state: str
    epochs_done: int = 0
    epochs_planned: int | None = None
    holder: str | None = None
    reason: str = ""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _is_scratch(name: str) -> bool:
    """The lock file and the temporary files of a run file's atomic write: not part of a run."""
    from mnetcost.files import LOCK_NAME

    return name == LOCK_NAME or (name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RUN_FILES))


def _metric_lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return 0


def folder_state(folder: Path | str, epochs: int | None = None, expected: dict | None = None) -> FolderState:
    """The state of one run folder, by the run-folder contract of :mod:`mnetcost.nn.training`
    (its ``run_state``: complete, partial, empty, failed-start, missing, other), from the files
    alone, plus who holds its lock. ``epochs``: the number of epochs asked for now (None: the
    run's own plan; more than a complete run has makes it partial again, to be extended).
    ``expected``: the identity (:meth:`mnetcost.identity.RunIdentity.to_json`) of the run the grid
    would train there; a run that is not it (``same-run``) is ``blocked``, the reason naming what
    differs."""
    from mnetcost.files import lock_holder

    folder = Path(folder)
    if not folder.exists():
        return FolderState("todo")
    if not folder.is_dir():
        return FolderState("blocked", reason=f"{folder} is a file, not a run folder")
    holder = lock_holder(folder)
    try:
        names = {p.name for p in folder.iterdir() if not _is_scratch(p.name)}
    except OSError as exc:
        return FolderState("blocked", reason=f"{folder}: {exc.strerror}")
    summary = _read_json(folder / "summary.json") if "summary.json" in names else None
    summary = summary if isinstance(summary, dict) else None
    config = _read_json(folder / "config.json") if "config.json" in names else None
    stored = config["config"] if isinstance(config, dict) and isinstance(config.get("config"), dict) else None
    done = 0
    if summary is not None and isinstance(summary.get("epochs"), int):
        done = summary["epochs"]
    elif "metrics.jsonl" in names:
        done = _metric_lines(folder / "metrics.jsonl")
    planned = None
    if summary is not None and isinstance(summary.get("epochs_planned"), int):
        planned = summary["epochs_planned"]
    elif stored is not None and isinstance(stored.get("epochs"), int):
        planned = stored["epochs"]
    if holder is not None:
        return FolderState("running", done, planned, holder=holder)
    if not names:
        return FolderState("todo")
    if stored is None:
        shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
        why = "no config.json" if "config.json" not in names else "a config.json that is not a run's"
        return FolderState("blocked", done, planned, reason=f"holds {shown} but {why}: not a run of `mnetcost train`")
    if expected:
        check = ID.compare(ID.from_config(config), ID.from_json(expected), "same-run", ("run", "grid"))
        if not check.same:
            return FolderState("blocked", done, planned, reason=f"a run of another recipe or data (its record: "
                                                                f"{folder / 'config.json'}): {check.text()}")
    target = epochs if epochs is not None else planned
    if summary is not None and isinstance(target, int) and target > 0 and done >= target:
        return FolderState("done", done, planned)
    if {"config.json", "last.pt"} <= names:
        return FolderState("partial", done, planned)
    if names <= {"config.json", "best.pt"}:  # a start that saved no epoch: a new run takes the folder
        return FolderState("todo", 0, planned, reason="a start that finished no epoch (a new run replaces it)")
    missing = "last.pt is missing" if "last.pt" not in names else "the run is damaged"
    return FolderState("blocked", done, planned,
                       reason=f"{done} of {target if target is not None else '?'} epochs and {missing}: "
                              "nothing to continue from")


# --- carrying a run out -----------------------------------------------------------------------------
@dataclass
class Task:
    """Everything a worker (this process or a Ray task) needs to carry out one run."""

    run: dict  # Run.describe()
    folder: str  # absolute
    log: str  # absolute
    identity: list[str]  # --variant ... --seed ... --dataset ...
    forwarded: list[str]  # the train options given to the grid
    epochs: int | None  # --epochs when given
    expected: dict = field(default_factory=dict)  # the run's identity (RunIdentity.to_json()) the grid wants
    python: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def expected_identity(run: Run, recipe: dict, data: dict) -> dict:
    """The identity (JSON) of the run ``train`` would make of ``run`` with the grid's ``recipe``
    (train's options: batch_size, lr, ...; classes and resolution where known) on ``data``
    (:func:`mnetcost.identity.data_of`): what a folder's run must be to count as this run."""
    from mnetcost.calculator.spec import spec_text

    config = run.config
    options = {**recipe, "variant": config.variant, "alpha": config.alpha, "delta": config.delta, "seed": run.seed}
    return ID.new_identity(options, data, None, spec_toml=spec_text(config.variant)).to_json()


def make_task(run: Run, root: Path, dataset: str, forwarded: list[str], epochs: int | None,
              recipe: dict | None = None, data: dict | None = None) -> Task:
    """``recipe``, ``data``: see :func:`expected_identity` (default: train's own defaults are not
    assumed; only the configuration, the seed and the data source are expected)."""
    config = run.config
    identity = ["--variant", config.variant, "--alpha", alpha_text(config.alpha), "--delta", str(config.delta),
                "--seed", str(run.seed), "--dataset", dataset]
    root = Path(root).absolute()
    expected = expected_identity(run, recipe or {}, data if data is not None else ID.data_of(dataset))
    return Task(run=run.describe(), folder=str(root / run.name), log=str(root / LOGS / f"{run.name}.log"),
                identity=identity, forwarded=list(forwarded), epochs=epochs, expected=expected)


def train_command(task: Task, resume: bool) -> list[str]:
    python = task.python or sys.executable
    return [python, "-m", "mnetcost", "train", *task.identity, *task.forwarded, "--out", task.folder,
            *(["--resume"] if resume else [])]


def _outcome(task: Task, before: FolderState, result: str, message: str = "", returncode: int | None = None,
             seconds: float = 0.0, after: FolderState | None = None) -> dict:
    final = after or before
    return {**task.run, "folder": task.folder, "state": before.state, "result": result, "message": message,
            "returncode": returncode, "seconds": round(seconds, 3), "epochs_done": final.epochs_done,
            "log": task.log if returncode is not None else None}


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def _last_message(lines) -> str:
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text):
        if "error:" in line:
            return line
    return text[-1] if text else "no output"


def run_one(task: Task | dict, echo: Callable[[str], None] | None = None) -> dict:
    """Carry out one run: skip it when done or held by another process, else start or resume it
    with ``mnetcost train`` in a subprocess, its output appended to the run's log (and passed to
    ``echo`` line by line). Returns an outcome dict (the run's fields plus ``state`` before,
    ``result`` in :data:`RESULTS`, ``message``, ``returncode``, ``seconds``, ``epochs_done``)."""
    if isinstance(task, dict):
        task = Task(**task)
    folder = Path(task.folder)
    before = folder_state(folder, task.epochs, task.expected)
    if before.state == "done":
        return _outcome(task, before, "skipped", f"complete ({_epochs(before.epochs_done)})")
    if before.state == "running":
        return _outcome(task, before, "taken", f"in use by {before.holder}")
    if before.state == "blocked":
        return _outcome(task, before, "failed", before.reason)
    resume = before.state == "partial"
    command = train_command(task, resume)
    log = Path(task.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=40)
    began = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "a", encoding="utf-8") as stream:
        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        stream.write(f"=== {stamp} {'resume' if resume else 'new run'}: {' '.join(command)}\n")
        stream.flush()
        # stdout (train's result table) goes to the log only; stderr (progress, errors) is also echoed
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   text=True, errors="replace", env=env)
        try:
            for line in process.stderr:
                stream.write(line)
                stream.flush()
                tail.append(line)
                if echo is not None:
                    echo(line.rstrip("\n"))
            returncode = process.wait()
        except BaseException:  # interrupted ourselves: let train stop with its last epoch saved, then go
            _stop(process)
            try:
                stream.write(process.stderr.read())
                stream.write(f"=== interrupted; train's exit status {process.returncode}\n")
            except (OSError, ValueError):
                pass
            raise
        stream.write(f"=== exit status {returncode} after {time.perf_counter() - began:.1f} s\n")
    seconds = time.perf_counter() - began
    after = folder_state(folder, task.epochs, task.expected)
    if returncode == 0:
        return _outcome(task, before, "resumed" if resume else "trained",
                        _epochs(after.epochs_done) if after.state == "done" else f"ended in state {after.state}",
                        returncode, seconds, after)
    if returncode in (130, -2):
        return _outcome(task, before, "interrupted", _last_message(tail), returncode, seconds, after)
    if returncode < 0:  # the process died of a signal: that is the news, not its last progress line
        return _outcome(task, before, "failed", f"{signal_text(-returncode)}; its log: {task.log}", returncode,
                        seconds, after)
    locked = [line.strip() for line in tail if LOCKED_TEXT in line]
    if locked or after.state == "running":
        holder = locked[-1].split(LOCKED_TEXT, 1)[1].split(";")[0].strip() if locked else after.holder
        return _outcome(task, before, "taken", f"in use by {holder}", returncode, seconds, after)
    if after.state == "done":  # another worker finished it meanwhile
        return _outcome(task, before, "skipped", "completed by another worker", returncode, seconds, after)
    return _outcome(task, before, "failed", _last_message(tail), returncode, seconds, after)


def signal_text(number: int) -> str:
    """``killed by signal 9 (SIGKILL)``; SIGKILL also says who sends it unasked (the kernel when
    memory runs out, a scheduler at its time limit)."""
    import signal

    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "unknown signal"
    text = f"killed by signal {number} ({name})"
    if number == signal.SIGKILL:
        text += ": by a user, a scheduler's time limit or the kernel when memory ran out"
    return text


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    """Stop ``train`` after the grid was interrupted: a Ctrl-C in a terminal reached it too, so give
    it a moment to stop by itself; else pass SIGINT on (it keeps its last completed epoch); kill it
    only when it does not stop within ``grace`` seconds."""
    import signal

    try:
        process.wait(timeout=5)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except OSError:
        pass


def run_local(tasks: list[Task], report: Callable[[int, int, dict], None] | None = None,
              echo: Callable[[str], None] | None = None) -> list[dict]:
    """The runs one after another in this process's subprocesses; stops after an interrupted one."""
    outcomes = []
    for number, task in enumerate(tasks, 1):
        outcome = run_one(task, echo)
        outcomes.append(outcome)
        if report is not None:
            report(number, len(tasks), outcome)
        if outcome["result"] == "interrupted":
            break
    return outcomes


def count_results(outcomes: list[dict]) -> dict:
    return {result: sum(1 for o in outcomes if o["result"] == result) for result in RESULTS
            if any(o["result"] == result for o in outcomes)}
