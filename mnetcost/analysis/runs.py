"""Training runs read back from their folders, aggregated over seeds, set beside the paper's
printed accuracy, and the paper's claims checked against them (``mnetcost report``).

Records -> groups -> claims, each a pure step over plain data:

* :func:`load_records`: every run folder under a directory (any depth: a folder holding
  ``config.json`` or ``summary.json``), read from its JSON files only (no torch, no checkpoint).
* :func:`group_records`: one group per run identity but its seed (:func:`mnetcost.identity.pool`,
  ``same-recipe``: the configuration, every recipe option down to the planned epochs, and the
  data, by its fingerprint or, for runs that record none, its path); the seeds of a group are
  its sample, each seed counted once (a copied run folder, the same run id, and a second run of
  a seed are left out, and the report says so). Each
  group gets best and final test accuracy as mean, sample standard deviation, min and max over
  its seeds, the paper's printed accuracy and the difference, params and Mult-Adds computed by
  the calculator for the configuration (never copied from a summary), training activation memory
  where :mod:`mnetcost.calculator.memory` is available, epochs and training time.
* :func:`check_claims`: the paper's claims, for each paper configuration they concern: δ=4 beats
  δ=2 at each (variant, α); fmp beats mp3 and mp3 beats base at each (α, δ); fmp α=0.25 δ=2
  beats the baseline (base α=1 δ=1) with fewer Mult-Adds. A verdict compares the difference of
  the means with the seed spread (:func:`verdict`).

Accuracies stay fractions in [0, 1]; differences are fractions too (0.021 = 2.1 points).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from mnetcost import identity as ID
from mnetcost.errors import MnetcostError

# The recipe options beside the configuration (variant, alpha, delta, classes, resolution).
RECIPE_KEYS = tuple(key for key in ID.RECIPE if key not in ("variant", "spec", "alpha", "delta", "classes",
                                                             "resolution"))
METRICS = ("best", "final")
VERDICTS = ("holds", "fails", "inconclusive", "not measured")
PAPER_DATASETS = {10: "cifar10", 100: "cifar100"}
SKIP_FOLDERS = {"logs"}


@dataclass(frozen=True)
class RunRecord:
    """One run folder as its JSON files describe it."""

    name: str  # path relative to the report's directory
    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: int
    dataset: str  # the data's name (cifar10, cifar10-jpeg, ...)
    seed: int | None
    recipe: tuple  # ((key, value), ...) for RECIPE_KEYS present
    best: float | None  # best test accuracy over epochs (None: no epoch finished)
    final: float | None
    epochs: int
    epochs_planned: int | None
    complete: bool
    seconds: float | None  # training + evaluation time of its epochs
    device: str | None = None
    identity: ID.RunIdentity | None = field(default=None, compare=False)
    spec_toml: str | None = field(default=None, compare=False)  # the spec text the run trained (config.json)

    @property
    def has_accuracy(self) -> bool:
        return self.best is not None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _metrics(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line a kill cut short
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _fraction(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= 1 else None


def run_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (``root`` included) holding config.json or summary.json, sorted;
    a run folder's subfolders and ``logs`` folders are not searched."""
    found = []
    for folder, dirs, files in os.walk(root):
        if "config.json" in files or "summary.json" in files:
            found.append(Path(folder))
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_FOLDERS)
    return sorted(found)


def read_record(folder: Path, root: Path) -> RunRecord:
    """One run folder; ValueError naming the first problem when it is not a readable run."""
    summary = _read_json(folder / "summary.json")
    config = _read_json(folder / "config.json")
    summary = summary if isinstance(summary, dict) else {}
    stored = config.get("config") if isinstance(config, dict) and isinstance(config.get("config"), dict) else {}
    if not summary and not stored:
        raise ValueError("neither summary.json nor config.json is a run's")

    def pick(key):
        return summary[key] if key in summary else stored.get(key)

    variant, alpha, delta, classes, resolution = (pick(k) for k in ("variant", "alpha", "delta", "classes",
                                                                   "resolution"))
    if not isinstance(variant, str) or not variant:
        raise ValueError(f"'variant' must be a non-empty string, got {variant!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"'alpha' must be a number greater than 0, got {alpha!r}")
    for key, value in (("delta", delta), ("classes", classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key!r} must be a positive integer, got {value!r}")
    if isinstance(resolution, list) and len(resolution) == 2 and resolution[0] == resolution[1]:
        resolution = resolution[0]
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"'resolution' must be a square size in pixels, got {resolution!r}")
    rows = _metrics(folder / "metrics.jsonl")
    accuracies = [a for a in (_fraction(row.get("test_acc")) for row in rows) if a is not None]
    best = _fraction(summary.get("best_test_accuracy"))
    final = _fraction(summary.get("final_test_accuracy"))
    if best is None and accuracies:
        best, final = max(accuracies), accuracies[-1]
    epochs = summary.get("epochs") if isinstance(summary.get("epochs"), int) else len(rows)
    planned = summary.get("epochs_planned") if isinstance(summary.get("epochs_planned"), int) else stored.get("epochs")
    planned = planned if isinstance(planned, int) else None
    seconds = math.fsum(value for value in (_finite(row.get("seconds")) for row in rows) if value is not None)
    if not seconds and _finite(summary.get("train_seconds")) is not None:
        seconds = _finite(summary["train_seconds"])
    dataset = summary.get("dataset") if isinstance(summary.get("dataset"), str) else None
    if dataset is None and isinstance(config, dict) and isinstance(config.get("dataset_info"), dict):
        dataset = config["dataset_info"].get("name")
    if not isinstance(dataset, str) or not dataset:
        source = str(stored.get("dataset", "?"))
        dataset = source if source in PAPER_DATASETS.values() else Path(source).name
    seed = pick("seed")
    identity = ID.from_config(config) if stored else ID.from_summary(summary)
    if identity.data.get("name") is None:
        identity = identity.with_data(name=dataset)
    recipe = tuple((key, identity.recipe[key]) for key in RECIPE_KEYS if identity.recipe.get(key) is not None)
    relative = os.path.relpath(folder, root)
    spec_toml = stored.get("spec_toml") if isinstance(stored.get("spec_toml"), str) else None
    return RunRecord(name=folder.name if relative == "." else relative.replace(os.sep, "/"), variant=variant,
                     alpha=float(alpha), delta=delta, classes=classes, resolution=resolution, dataset=dataset,
                     seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None, recipe=recipe,
                     best=best, final=final, epochs=epochs, epochs_planned=planned,
                     complete=planned is not None and epochs >= planned > 0 and bool(summary),
                     seconds=seconds or None, device=summary.get("device") if isinstance(summary.get("device"), str)
                     else None, identity=identity, spec_toml=spec_toml)


def load_records(directory: str | Path) -> tuple[list[RunRecord], list[str]]:
    """Every run under ``directory`` and warnings for folders that are not readable runs. A
    missing directory, or one without any run, is an error."""
    root = Path(directory)
    if not root.exists():
        raise MnetcostError(f"{directory}: no such folder")
    if not root.is_dir():
        raise MnetcostError(f"{directory}: not a folder (give the grid's --out folder or a run folder)")
    records, warnings = [], []
    for folder in run_folders(root):
        try:
            records.append(read_record(folder, root))
        except ValueError as exc:
            warnings.append(f"warning: skipping {folder}: {exc}")
    if not records and not warnings:
        raise MnetcostError(f"{directory}: no run folders (config.json or summary.json) in it or below it")
    return records, warnings


# --- groups: one configuration and recipe, its seeds --------------------------------------------
@dataclass(frozen=True)
class Stats:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for one seed
    low: float
    high: float
    n: int

    @property
    def spread(self) -> float:
        """max - min over the seeds (0 for one seed)."""
        return self.high - self.low


def stats(values: list[float]) -> Stats | None:
    if not values:
        return None
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stats(mean, std, min(values), max(values), n)


@dataclass
class Group:
    dataset: str
    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: int
    recipe: tuple
    runs: list[RunRecord] = field(default_factory=list)  # one per seed
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (run, why it does not count)
    identity: ID.RunIdentity | None = None  # of its first run
    spec_toml: str | None = None  # the spec text its runs trained (one content: runs pool by it)

    @property
    def paper_dataset(self) -> str | None:
        return PAPER_DATASETS.get(self.classes) if self.resolution == 32 else None

    @property
    def data(self) -> dict:
        data = self.identity.data if self.identity is not None else {}
        return {"name": self.dataset, "source": data.get("source"), "fingerprint": data.get("fingerprint")}

    def counted(self) -> list[RunRecord]:
        """The runs its means pool (:func:`counted_runs`): runs at one epoch count only, so that a
        seed still training does not pull down the mean of the seeds that finished."""
        return counted_runs(self.runs, lambda r: r.has_accuracy, lambda r: r.complete, lambda r: r.epochs)

    def apart(self) -> list[RunRecord]:
        """Its runs with an accuracy that the means leave out (still behind the counted ones)."""
        kept = {id(r) for r in self.counted()}
        return [r for r in self.runs if r.has_accuracy and id(r) not in kept]

    def accuracy(self, metric: str = "best") -> Stats | None:
        return stats([getattr(r, metric) for r in self.counted() if getattr(r, metric) is not None])

    def unfinished(self) -> list[str]:
        """Its counted runs that have not trained all their planned epochs, as "name (E of P epochs)"."""
        return [_progress(r) for r in self.counted() if not r.complete and r.epochs_planned is not None]

    def identity_notes(self) -> list[dict]:
        """What its runs do not record, so that it could not be compared when they were pooled
        (nothing for a group of one run): ``{"note": what, "runs": [names]}``."""
        if len(self.runs) < 2:
            return []
        notes = []
        for what, lacking in (
                ("pooled by the data's path, not its content (no data fingerprint recorded)",
                 [r.name for r in self.runs if r.identity is not None and not r.identity.data.get("fingerprint")]),
                ("pooled by the variant's name, not the spec's content (no spec recorded)",
                 [r.name for r in self.runs if r.identity is not None and not r.identity.recipe.get("spec")])):
            if lacking:
                notes.append({"note": what, "runs": lacking})
        return notes


def counted_runs(runs: list, has_accuracy, complete, epochs) -> list:
    """Of runs that differ only in their seed, those a mean may pool: the complete ones when any
    run is complete; else those with the most finished epochs. Runs at other epoch counts are left
    out of the mean (and shown apart), since their accuracy is not yet what the recipe gives."""
    measured = [run for run in runs if has_accuracy(run)]
    finished = [run for run in measured if complete(run)]
    if finished:
        return finished
    most = max((epochs(run) for run in measured), default=None)
    return [run for run in measured if epochs(run) == most]


def progress_text(name: str, epochs: int | None, epochs_planned: int | None) -> str:
    """A run's name with how far it is, "name (E of P epochs)" (the name alone when it plans none)."""
    return f"{name} ({epochs} of {epochs_planned} epochs)" if epochs_planned else name


def _progress(record: RunRecord) -> str:
    return progress_text(record.name, record.epochs, record.epochs_planned)


def _keep_first(record: RunRecord) -> tuple:
    """Of two runs that count as one, the complete one with more epochs, then by name, is kept."""
    return (not record.complete, -record.epochs, record.name)


def group_records(records: list[RunRecord]) -> list[Group]:
    """Runs that differ in their seed only share a group (:func:`mnetcost.identity.pool`, the one
    judge of what may be pooled), a seed counted once; groups in the order of the paper's tables
    (dataset, variant base/mp3/fmp/others, alpha descending, delta), runs by seed."""
    pools = ID.pool(sorted(records, key=_keep_first), lambda record: record.identity, lambda record: record.name)
    groups = []
    for found in pools:
        first = found.members[0]
        groups.append(Group(first.dataset, first.variant, first.alpha, first.delta, first.classes, first.resolution,
                            first.recipe, runs=list(found.members),
                            left_out=sorted((record.name, reason) for record, reason in found.left_out),
                            identity=first.identity, spec_toml=first.spec_toml))
    order = {"base": 0, "mp3": 1, "fmp": 2}
    result = sorted(groups, key=lambda g: (g.dataset, order.get(g.variant, 3), g.variant, -g.alpha, g.delta,
                                           repr(g.recipe), str(g.data["source"]), str(g.data["fingerprint"])))
    for group in result:
        group.runs.sort(key=lambda r: (r.seed is None, r.seed or 0, r.name))
    return result


def data_labels(groups: list[Group]) -> list[str]:
    """Each group's data as the report names it: its name, and where groups with that name ran
    on other data (:func:`mnetcost.identity.same_data`), also its path (or, for one path, its
    fingerprint)."""
    labels = []
    for group in groups:
        namesakes = [other for other in groups if other.dataset == group.dataset and other.identity is not None]
        if group.identity is None or all(ID.same_data(group.identity, other.identity) for other in namesakes):
            labels.append(group.dataset)
            continue
        source = group.data["source"]
        one_path = all(other.data["source"] == source for other in namesakes)
        labels.append(f"{group.dataset} ({ID.short(group.data['fingerprint']) if one_path else source})")
    return labels


def paper_accuracies() -> dict[tuple, float]:
    """(dataset, variant, alpha, delta) -> the paper's printed accuracy (fraction)."""
    from mnetcost.calculator.paper import load_paper_results

    return {(r.dataset, r.variant, round(r.alpha, 9), r.delta): float(r.accuracy_pct / 100)
            for r in load_paper_results()}


def stored_spec(folder: Path) -> str | None:
    """The spec text a run folder's config.json stores (what the run trained), or None."""
    config = _read_json(Path(folder) / "config.json")
    stored = config.get("config") if isinstance(config, dict) else None
    text = stored.get("spec_toml") if isinstance(stored, dict) else None
    return text if isinstance(text, str) else None


def trained_spec(variant: str, spec_toml: str | None):
    """What a run trained, to price it: its stored spec text (a spec file may have been edited or
    moved since), else the variant by name or path (runs that store no text)."""
    if spec_toml is None:
        return variant
    from mnetcost.calculator.spec import parse_spec

    return parse_spec(spec_toml, variant)


def _costs(group: Group) -> dict:
    """Params and Mult-Adds (paper convention) by the calculator, of the spec its runs trained (the
    text their config.json stores; the variant's name or file only for runs that store none); training
    activation bytes per image and peak inference activation bytes (fp32) when the memory model is there."""
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    try:
        network = resolve(trained_spec(group.variant, group.spec_toml), alpha=group.alpha, delta=group.delta, classes=group.classes,
                          resolution=group.resolution)
    except MnetcostError as exc:
        return {"params": None, "mult_adds": None, "cost_note": str(exc).splitlines()[0]}
    cost = network_cost(network, "paper")
    result = {"params": int(cost.params), "mult_adds": int(cost.mult_adds)}
    try:
        from mnetcost.calculator.memory import network_memory
    except ImportError:
        return result
    fmp_mode = dict(group.recipe).get("fmp_mode", "tf")
    try:
        memory = network_memory(network, fmp_mode=fmp_mode)
    except MnetcostError:
        return result
    result["peak_activation_bytes"] = int(memory.peak_activation_bytes)
    result["training_activation_bytes_per_image"] = int(memory.training_activation_bytes_per_image)
    return result


def _stats_dict(value: Stats | None) -> dict:
    if value is None:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": value.mean, "std": value.std, "min": value.low, "max": value.high, "n": value.n}


def describe_groups(groups: list[Group]) -> list[dict]:
    """The report's rows (the JSON contract): one per group."""
    printed = paper_accuracies()
    rows = []
    for group, label in zip(groups, data_labels(groups)):
        best, final = group.accuracy("best"), group.accuracy("final")
        paper = printed.get((group.paper_dataset, group.variant, round(group.alpha, 9), group.delta))
        seconds = [r.seconds for r in group.counted() if r.seconds is not None]
        costs = _costs(group)
        batch = dict(group.recipe).get("batch_size")
        per_image = costs.get("training_activation_bytes_per_image")
        rows.append({
            "dataset": group.dataset, "data": {**group.data, "label": label},
            "paper_dataset": group.paper_dataset, "variant": group.variant,
            "alpha": group.alpha, "delta": group.delta, "classes": group.classes, "resolution": group.resolution,
            "recipe": dict(group.recipe), "runs": [r.name for r in group.runs],
            "seeds": [r.seed for r in group.runs], "complete": sum(r.complete for r in group.runs),
            "without_accuracy": [r.name for r in group.runs if not r.has_accuracy],
            # runs at fewer epochs than the counted ones: left out of the means, their figures so far
            "not_in_means": [{"run": r.name, "epochs": r.epochs, "epochs_planned": r.epochs_planned,
                              "best_test_accuracy": r.best, "final_test_accuracy": r.final} for r in group.apart()],
            "left_out": [{"run": name, "reason": reason} for name, reason in group.left_out],
            "identity_notes": group.identity_notes(),
            "best_test_accuracy": _stats_dict(best), "final_test_accuracy": _stats_dict(final),
            "paper_accuracy": paper,
            "best_minus_paper": best.mean - paper if best is not None and paper is not None else None,
            "params": costs.get("params"), "mult_adds": costs.get("mult_adds"),
            "peak_activation_bytes": costs.get("peak_activation_bytes"),
            "training_activation_bytes": per_image * batch if per_image is not None and isinstance(batch, int)
            else None,
            "epochs": sorted({r.epochs for r in group.runs}),
            "epochs_planned": sorted({r.epochs_planned for r in group.runs if r.epochs_planned is not None}),
            "seconds_per_run": math.fsum(seconds) / len(seconds) if seconds else None,
            "cost_note": costs.get("cost_note"),
        })
    return rows


# --- the paper's claims ----------------------------------------------------------------------------
def verdict(a: Stats | None, b: Stats | None) -> tuple[str, float | None, float | None]:
    """Does ``a`` beat ``b``? (verdict, difference of the means, margin). The margin is the
    larger seed spread (max - min) of the two; the claim ``holds`` when the difference exceeds
    it, ``fails`` when the difference is below minus it, and is ``inconclusive`` in between
    (within the seed spread). ``not measured`` when either side has no finished epoch. With one
    seed on each side the margin is 0: the verdict then rests on single runs (the report says so)."""
    if a is None or b is None:
        return "not measured", None, None
    difference = a.mean - b.mean
    margin = max(a.spread, b.spread)
    if difference > margin:
        return "holds", difference, margin
    if difference < -margin:
        return "fails", difference, margin
    return "inconclusive", difference, margin


def _label(variant: str, alpha: float, delta: int) -> str:
    return f"{variant} α={alpha:g} δ={delta}"


def _claim_pairs(dataset: str, rows: set[tuple]) -> list[tuple[str, tuple, tuple]]:
    """(claim, a, b) with a and b (variant, alpha, delta) from the paper's rows of ``dataset``."""
    pairs = []
    for variant in ("base", "mp3", "fmp"):
        for alpha in sorted({r[1] for r in rows if r[0] == variant}, reverse=True):
            if (variant, alpha, 2) in rows and (variant, alpha, 4) in rows:
                pairs.append(("δ=4 beats δ=2", (variant, alpha, 4), (variant, alpha, 2)))
    for delta in (2, 4):
        for alpha in sorted({r[1] for r in rows if r[2] == delta}, reverse=True):
            for better, worse in (("fmp", "mp3"), ("mp3", "base")):
                if (better, alpha, delta) in rows and (worse, alpha, delta) in rows:
                    pairs.append((f"{better} beats {worse}", (better, alpha, delta), (worse, alpha, delta)))
    if ("fmp", 0.25, 2) in rows and ("base", 1.0, 1) in rows:
        pairs.append(("fmp α=0.25 δ=2 beats the baseline with fewer Mult-Adds", ("fmp", 0.25, 2), ("base", 1.0, 1)))
    return pairs


def check_claims(groups: list[Group], metric: str = "best") -> list[dict]:
    """The paper's claims for every dataset and recipe that has runs comparable with the paper
    (its classes and 32x32 images), each with the measured means, spreads, difference, the
    paper's own difference, and a verdict."""
    if metric not in METRICS:
        raise MnetcostError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    printed = paper_accuracies()
    cohorts: list[tuple[tuple, dict]] = []  # ((dataset label, paper dataset, recipe), {configuration: group})
    labels = dict(zip(map(id, groups), data_labels(groups)))
    for group in groups:
        if group.paper_dataset is None:
            continue
        for (label, paper_dataset, recipe), found in cohorts:
            first = next(iter(found.values()))
            if paper_dataset == group.paper_dataset and (first.identity is None or group.identity is None or ID.compare(
                    first.identity, group.identity, "same-cohort").same):
                found.setdefault((group.variant, round(group.alpha, 9), group.delta), group)
                break
        else:
            cohorts.append(((labels[id(group)], group.paper_dataset, group.recipe),
                            {(group.variant, round(group.alpha, 9), group.delta): group}))
    claims = []
    for (dataset, paper_dataset, recipe), found in cohorts:
        rows = {(v, a, d) for (ds, v, a, d) in printed if ds == paper_dataset}
        for claim, a_key, b_key in _claim_pairs(paper_dataset, rows):
            a_group, b_group = found.get(a_key), found.get(b_key)
            a_stats = a_group.accuracy(metric) if a_group else None
            b_stats = b_group.accuracy(metric) if b_group else None
            outcome, difference, margin = verdict(a_stats, b_stats)
            paper_a, paper_b = printed[(paper_dataset, *a_key)], printed[(paper_dataset, *b_key)]
            item = {
                "claim": claim, "dataset": dataset, "paper_dataset": paper_dataset, "recipe": dict(recipe),
                "metric": metric, "a": _label(*a_key), "b": _label(*b_key),
                "a_accuracy": _stats_dict(a_stats), "b_accuracy": _stats_dict(b_stats),
                "difference": difference, "margin": margin, "paper_difference": paper_a - paper_b,
                "verdict": outcome,
                # runs still training: a verdict that rests on them may change when they finish
                "unfinished": [name for g in (a_group, b_group) if g is not None for name in g.unfinished()],
                # seeds still behind the counted runs: not in the means (the verdict may move when they finish)
                "not_in_means": [_progress(r) for g in (a_group, b_group) if g is not None for r in g.apart()],
            }
            if b_key == ("base", 1.0, 1):
                from mnetcost.calculator.cost import network_cost
                from mnetcost.calculator.resolver import resolve

                classes = {"cifar10": 10, "cifar100": 100}[paper_dataset]
                a_cost, b_cost = (network_cost(resolve(v, alpha=al, delta=d, classes=classes, resolution=32), "paper")
                                  for v, al, d in (a_key, b_key))
                item["a_mult_adds"], item["b_mult_adds"] = int(a_cost.mult_adds), int(b_cost.mult_adds)
                if item["verdict"] == "holds" and a_cost.mult_adds >= b_cost.mult_adds:
                    item["verdict"] = "fails"
            item["evidence"] = evidence(item)
            claims.append(item)
    return claims


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _side(label: str, value: dict) -> str:
    if not value["n"]:
        return f"{label}: no run"
    spread = (f" ± {100 * value['std']:.1f} (sd), range {100 * value['min']:.1f}–{100 * value['max']:.1f}"
              if value["n"] > 1 else "")
    seeds = f"{value['n']} seed" + ("s" if value["n"] != 1 else "")
    return f"{label} {_pct(value['mean'])}{spread} ({seeds})"


def provisional(item: dict) -> bool:
    """Whether a measured claim (from :func:`check_claims`) rests on runs still training."""
    return bool(item.get("unfinished")) and item["difference"] is not None


def evidence(item: dict) -> str:
    """One sentence backing a verdict with the numbers."""
    a, b = item["a_accuracy"], item["b_accuracy"]
    parts = [f"{_side(item['a'], a)} vs {_side(item['b'], b)}"]
    if item["difference"] is not None:
        points = 100 * item["difference"]
        if a["n"] == 1 and b["n"] == 1:
            parts.append(f"difference {points:+.1f} points; one seed each, so the seed spread is unknown")
        else:
            parts.append(f"difference {points:+.1f} points against a seed spread of {100 * item['margin']:.1f}")
    parts.append(f"paper {100 * item['paper_difference']:+.1f} points")
    if "a_mult_adds" in item:
        parts.append(f"Mult-Adds {item['a_mult_adds'] / 1e6:.2f} M vs {item['b_mult_adds'] / 1e6:.2f} M "
                     f"({item['a_mult_adds'] / item['b_mult_adds']:.2f}x)")
    if provisional(item):
        parts.append("provisional, runs unfinished: " + ", ".join(item["unfinished"]))
    if item.get("not_in_means") and item["difference"] is not None:
        parts.append("not in the means (behind the other seeds): " + ", ".join(item["not_in_means"]))
    return "; ".join(parts)


def report(directory: str | Path, metric: str = "best") -> tuple[dict, list[str]]:
    """Everything ``mnetcost report`` shows, as data: {"runs": [group rows], "claims": [...]} and
    warnings."""
    records, warnings = load_records(directory)
    groups = group_records(records)
    for what, names in (("have no finished epoch yet", [r.name for r in records if r.best is None and not r.epochs]),
                        ("have no finite test accuracy in their files",
                         [r.name for r in records if r.best is None and r.epochs])):
        if names:
            shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            warnings.append(f"note: {len(names)} run(s) {what}: {shown}")
    return {"metric": metric, "runs": describe_groups(groups), "claims": check_claims(groups, metric)}, warnings


# --- seeds averaged for plots ------------------------------------------------------------------------
def mean_over_seeds(known: list) -> tuple[list, list]:
    """:class:`~mnetcost.analysis.sweep.KnownResult` runs that differ only in their seed, as one
    point each (:func:`mnetcost.identity.pool`, as the report pools them; a seed counted once):
    the mean accuracy, ``seeds`` the count, ``accuracy_min``/``accuracy_max`` the range. As in the
    report, the mean pools runs at one epoch count only (:func:`counted_runs`). A run without a
    seed or an identity, and the paper's rows, stay their own points.

    Returns (points, apart): ``apart`` the runs left out of a mean because they are behind the
    other seeds (not plotted)."""
    from dataclasses import replace

    from mnetcost import identity as ID

    pooled = [item for item in known if getattr(item, "seed", None) is not None and getattr(item, "identity", None)]
    points = {}  # id(first counted run of a pool) -> its point; the other runs of a pool have none
    counted = set()
    apart = []
    for found in ID.pool(pooled, lambda item: item.identity, lambda item: item.source):
        counted.update(id(item) for item in found.members)
        counted.update(id(item) for item, _ in found.left_out)
        items = counted_runs(found.members, lambda item: True, lambda item: item.complete is not False,
                             lambda item: item.epochs or 0)
        kept = {id(item) for item in items}
        apart += [item for item in found.members if id(item) not in kept]
        if len(items) == 1:
            points[id(items[0])] = items[0]
            continue
        values = [i.accuracy for i in items]
        name = items[0].source
        stem = name.rsplit("-s", 1)[0] if name.rsplit("-s", 1)[-1].isdigit() else name
        points[id(items[0])] = replace(items[0], source=f"{stem} ({len(items)} seeds)",
                                       accuracy=math.fsum(values) / len(values), seed=None, seeds=len(items),
                                       accuracy_min=min(values), accuracy_max=max(values))
    return ([points[id(item)] if id(item) in points else item for item in known
             if id(item) in points or id(item) not in counted], apart)
