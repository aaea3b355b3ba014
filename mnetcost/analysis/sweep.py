"""Design-space sweeps with the vectorised engine, and the accuracies already known for them.

:func:`evaluate` prices every (variant, alpha, delta, classes, resolution) combination: one
:func:`~mnetcost.calculator.resolver.plan` per (variant, classes, resolution) and one vectorised
:func:`~mnetcost.calculator.memory.sweep_costs` pass over all (alpha, delta) points of it (params,
Mult-Adds, peak activation bytes and weight bytes from the same terms). The result stays columnar
(numpy arrays) until the few rows that are shown become dicts.

Known accuracies come from two places: the paper's printed Tables 4-6 (CIFAR-10/100 at 32x32,
built-in variants only) and the summaries that ``mnetcost train --out runs/NAME`` writes
(:func:`load_runs`).

Nothing here prints; warnings are returned as strings for the command to show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from mnetcost.errors import ConfigError, MnetcostError

SORT_KEYS = ("mult_adds", "params", "accuracy", "variant", "alpha", "delta", "classes", "resolution",
             "peak_activation_bytes", "weight_bytes", "arena_bytes", "minimum_arena_bytes", "flash_bytes")
FRONT_COSTS = ("mult_adds", "params", "peak_activation_bytes", "weight_bytes", "arena_bytes", "minimum_arena_bytes",
               "flash_bytes")
TFLM_COLUMNS = ("arena_bytes", "arena_activation_bytes", "arena_persistent_bytes", "minimum_arena_bytes",
                "flash_bytes", "runtime_code_bytes")
RUNTIMES = ("simple", "tflm")
PAPER_RESOLUTION = 32
CLASSES_DATASET = {10: "cifar10", 100: "cifar100"}


def alpha_key(alpha: float) -> float:
    """Alphas are matched after rounding to 9 decimals (a run's JSON float and a parsed range
    value of the same decimal are then one key)."""
    return round(float(alpha), 9)


def config_key(variant: str, alpha: float, delta: int, classes: int, resolution: int) -> tuple:
    return (str(variant), alpha_key(alpha), int(delta), int(classes), int(resolution))


# --- the paper's accuracies and the user's runs ------------------------------------------------
@dataclass(frozen=True)
class KnownResult:
    """An accuracy known for one configuration: from the paper or from a training run."""

    source: str  # "paper" or the run's name
    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: int
    accuracy: float  # top-1 test accuracy, fraction 0-1
    dataset: str = ""
    params: int | None = None  # as the run's summary states them (the paper's are not used)
    mult_adds: int | None = None
    path: str = ""
    seed: int | None = None  # a run's seed; runs that differ only in it are averaged for plots
    recipe: tuple = ()  # a run's options that change results ((key, value), ...): not averaged across
    identity: object = field(default=None, compare=False, hash=False)  # a run's mnetcost.identity.RunIdentity
    seeds: int = 1  # > 1: the mean of that many seeds (mnetcost.analysis.runs.mean_over_seeds)
    accuracy_min: float | None = None  # their range
    accuracy_max: float | None = None
    epochs: int | None = None  # a run's finished epochs and the epochs it plans (None: not recorded)
    epochs_planned: int | None = None
    complete: bool | None = None  # False: still short of its planned epochs
    spec_toml: str | None = field(default=None, compare=False, hash=False)  # the spec text a run trained

    @property
    def unfinished(self) -> bool:
        return self.complete is False

    @property
    def key(self) -> tuple:
        return config_key(self.variant, self.alpha, self.delta, self.classes, self.resolution)

    @property
    def is_baseline(self) -> bool:
        return self.variant == "base" and self.alpha == 1 and self.delta == 1


def paper_known(dataset: str | None = None, tables=None) -> list[KnownResult]:
    """The paper's configurations (baseline once per dataset) with the printed accuracy, for
    one dataset or both, from ``tables`` (4, 5, 6) or all of them."""
    from mnetcost.calculator.paper import load_paper_results, unique_configurations

    rows = [r for r in load_paper_results() if tables is None or r.table in tables]
    return [
        KnownResult(source="paper", variant=r.variant, alpha=r.alpha, delta=r.delta, classes=r.classes,
                    resolution=PAPER_RESOLUTION, accuracy=float(r.accuracy_pct / 100), dataset=r.dataset)
        for r in unique_configurations(rows)
        if dataset is None or r.dataset == dataset
    ]


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _run_from_summary(path: Path, data) -> KnownResult:
    """Validate one summary.json; raise ValueError naming the first problem."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for key in ("variant", "alpha", "delta", "classes", "resolution"):
        if key not in data:
            raise ValueError(f"missing key {key!r}")
    variant, alpha, delta, classes, resolution = (data[k] for k in ("variant", "alpha", "delta", "classes",
                                                                    "resolution"))
    if not isinstance(variant, str) or not variant:
        raise ValueError(f"'variant' must be a non-empty string, got {variant!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"'alpha' must be a number greater than 0, got {alpha!r}")
    if not _positive_int(delta):
        raise ValueError(f"'delta' must be a positive integer, got {delta!r}")
    if not _positive_int(classes):
        raise ValueError(f"'classes' must be a positive integer, got {classes!r}")
    if isinstance(resolution, list) and len(resolution) == 2 and resolution[0] == resolution[1]:
        resolution = resolution[0]
    if not _positive_int(resolution):
        raise ValueError(f"'resolution' must be a positive integer, got {resolution!r}")
    accuracy = data.get("best_test_accuracy")
    if accuracy is None:
        accuracy = data.get("final_test_accuracy")
    if accuracy is None:
        raise ValueError("no 'best_test_accuracy' (has the run finished an epoch?)")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ValueError(f"'best_test_accuracy' must be a fraction in [0, 1], got {accuracy!r}")
    counts = {}
    for key in ("params", "mult_adds"):
        value = data.get(key)
        counts[key] = value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
    name = data.get("name")
    name = name if isinstance(name, str) and name else path.parent.name
    dataset = data.get("dataset") if isinstance(data.get("dataset"), str) else ""
    from mnetcost import identity as ID
    from mnetcost.analysis.runs import RECIPE_KEYS, stored_spec

    seed = data.get("seed") if isinstance(data.get("seed"), int) and not isinstance(data.get("seed"), bool) else None
    identity = (ID.read_run(path.parent) if (path.parent / "config.json").is_file() else None) \
        or ID.from_summary(data)
    recipe = tuple((key, identity.recipe[key]) for key in RECIPE_KEYS if identity.recipe.get(key) is not None)
    progress = {key: data.get(key) if _positive_int(data.get(key)) else None for key in ("epochs", "epochs_planned")}
    complete = data.get("complete") if isinstance(data.get("complete"), bool) else None
    return KnownResult(source=name, variant=variant, alpha=float(alpha), delta=delta, classes=classes,
                       resolution=resolution, accuracy=float(accuracy), dataset=dataset, path=str(path), seed=seed,
                       recipe=recipe, identity=identity, complete=complete, spec_toml=stored_spec(path.parent),
                       **progress, **counts)


def load_runs(directory: str | Path) -> tuple[list[KnownResult], list[str]]:
    """The runs under ``directory``: ``DIR/summary.json`` and every ``summary.json`` below it, at any
    depth (``mnetcost grid`` writes ``DIR/<dataset>/<run>/``), or a summary file given directly.
    Returns (runs, warnings); a malformed summary is skipped with a warning, a missing directory
    is an error."""
    import json

    root = Path(directory)
    if not root.exists():
        raise MnetcostError(f"--runs {directory}: no such file or directory")
    if root.is_file():
        paths = [root]
    else:
        nested = sorted(p for p in root.rglob("summary.json") if p.parent != root)  # grid layouts nest two deep
        paths = [p for p in [root / "summary.json", *nested] if p.is_file()]
    runs, warnings = [], []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            runs.append(_run_from_summary(path, data))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.append(f"warning: skipping {path}: {message}")
    if not paths:
        warnings.append(f"warning: no summary.json in {root} or its subfolders (write runs with "
                        f"`mnetcost train --out {root}/NAME`)")
    return runs, warnings


# --- the vectorised sweep ----------------------------------------------------------------------
def parse_variants(text: str) -> list[str]:
    """``all`` (the paper's three variants), one variant, or a comma list (names or spec paths),
    duplicates removed."""
    from mnetcost.calculator.spec import PAPER_VARIANTS

    items = [item.strip() for item in str(text).split(",")]
    if any(not item for item in items):
        raise MnetcostError(f"--variant has an empty item: {text!r}")
    variants: list[str] = []
    for item in items:
        for name in (PAPER_VARIANTS if item == "all" else (item,)):
            if name not in variants:
                variants.append(name)
    return variants


@dataclass
class Sweep:
    """Columnar result of :func:`evaluate`: one entry per buildable configuration."""

    variants: list[str]  # names as given (index = the ``variant`` column)
    variant: object  # int index arrays ...
    alpha: object
    delta: object
    classes: object
    resolution: object
    params: object
    mult_adds: object
    convention: str
    peak_activation_bytes: object = None  # at ``dtype`` (see mnetcost.calculator.memory)
    weight_bytes: object = None
    dtype: str = "fp32"
    runtime: str = "simple"
    tflm_build: str | None = None  # runtime tflm: the tflite-micro build (mnetcost.calculator.tflm.BUILDS)
    arena_bytes: object = None  # runtime tflm (mnetcost.calculator.tflm): the whole arena
    arena_activation_bytes: object = None  # its head
    arena_persistent_bytes: object = None  # its tail
    minimum_arena_bytes: object = None  # the smallest arena_size the interpreter accepts (what budgets judge)
    flash_bytes: object = None  # the int8 .tflite file
    runtime_code_bytes: object = None  # TFLM's code for the file's operators (Cortex-M7)
    skipped: list[dict] = field(default_factory=list)  # configurations that cannot be built
    evaluated: int = 0  # configurations priced, buildable or not

    def __len__(self) -> int:
        return int(self.alpha.size)

    def take(self, index) -> "Sweep":
        """The rows at ``index`` (a boolean mask or integer indices)."""
        cols = {name: getattr(self, name)[index] for name in
                ("variant", "alpha", "delta", "classes", "resolution", "params", "mult_adds",
                 "peak_activation_bytes", "weight_bytes", *TFLM_COLUMNS) if getattr(self, name) is not None}
        return Sweep(variants=self.variants, convention=self.convention, skipped=self.skipped,
                     evaluated=self.evaluated, dtype=self.dtype, runtime=self.runtime, tflm_build=self.tflm_build,
                     **cols)

    def to_frame(self):
        """The rows as a pandas DataFrame (variant names, exact alphas, integer costs), for
        analysis in a notebook: ``evaluate(["fmp"], alphas, [1, 2]).to_frame().query(...)``."""
        import pandas as pd

        frame = pd.DataFrame({"variant": pd.Categorical.from_codes(self.variant, categories=self.variants),
                              "alpha": self.alpha, "delta": self.delta, "classes": self.classes,
                              "resolution": self.resolution, "params": self.params, "mult_adds": self.mult_adds,
                              "peak_activation_bytes": self.peak_activation_bytes, "weight_bytes": self.weight_bytes,
                              **{name: getattr(self, name) for name in TFLM_COLUMNS
                                 if getattr(self, name) is not None}})
        frame.attrs["convention"] = self.convention
        frame.attrs["runtime"] = self.runtime
        frame.attrs["tflm_build"] = self.tflm_build
        frame.attrs["dtype"] = self.dtype
        return frame


def _zero_channel_points(layers, size: int):
    """Per point, the index of the first layer whose output has < 1 channel, or -1."""
    import numpy as np

    first = np.full(size, -1, dtype=np.int64)
    for number, layer in enumerate(layers):
        bad = np.broadcast_to(np.asarray(layer.out_c) < 1, (size,)) & (first < 0)
        first[bad] = number
    return first


INT64_MAX = 2**63 - 1


def _exact_totals(the_plan, alpha: float, delta: int, rounding: str, conv) -> tuple[int, ...]:
    """The totals of one point with Python integers (the scalar engine: exact at any size);
    (0, 0) for a point with a 0-channel layer (the sweep leaves it out for that reason)."""
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    try:
        network = resolve(the_plan.spec, float(alpha), int(delta), the_plan.classes, the_plan.resolution,
                          rounding, the_plan)
    except ConfigError:
        return 0, 0
    cost = network_cost(network, conv)  # fp32: the memory figures of every dtype are at most these
    return cost.params, cost.mult_adds, cost.peak_activation_bytes, cost.weight_bytes


def figures_bound(network) -> int:
    """An upper bound on every figure the cost model and the memory model give for ``network``
    (params, Mult-Adds, elementwise operations, peak activation and weight bytes, in any convention
    and dtype) and on every partial product on the way to them. Every term of a layer is a product of
    at most its input and output channels, its kernel's height and width and its spatial size, times
    a small constant (bytes per element, operations per Mult-Add, BatchNorm figures per channel: all
    at most 8), and each total sums such terms over the layers (a peak holds at most every tensor at
    once); the bound takes each factor plus one, sums over the layers and allows 64 of each."""
    total = 0
    for layer in network.layers:
        kernel_h, kernel_w = layer.kernel_size
        spatial = layer.in_h * layer.in_w + layer.out_h * layer.out_w
        total += (layer.in_c + 1) * (layer.out_c + 1) * (kernel_h + 1) * (kernel_w + 1) * (spatial + 1)
    return 64 * total


def _cleared(the_plan, alpha, delta, rounding: str | None) -> bool:
    """Whether :func:`figures_bound` of the point fits int64: then its exact figures do too, and
    the full pricing of :func:`_exact_totals` is not needed (False: ask it)."""
    from mnetcost.calculator.resolver import resolve

    try:
        network = resolve(the_plan.spec, float(alpha), int(delta), the_plan.classes, the_plan.resolution,
                          rounding, the_plan)
    except ConfigError:
        return False
    return figures_bound(network) <= INT64_MAX


def _int64_exact(the_plan, grid_alpha, grid_delta, rounding: str, conv):
    """Mask of the (alpha, delta) points whose totals, and so every partial product on the way
    (all terms are non-negative products of channels, sizes and classes), fit in int64.

    Every total grows with alpha and with delta (each rounding rule is monotone), so one check at
    the largest point usually clears the whole grid (first the cheap :func:`figures_bound`, then the
    exact figures); otherwise a binary search per delta finds the largest alpha that fits (a few
    dozen exact evaluations)."""
    import numpy as np

    def fits(alpha, delta) -> bool:
        return max(_exact_totals(the_plan, alpha, delta, rounding, conv)) <= INT64_MAX

    if not grid_alpha.size or _cleared(the_plan, grid_alpha.max(), grid_delta.max(), rounding) \
            or fits(grid_alpha.max(), grid_delta.max()):
        return np.ones(grid_alpha.size, dtype=bool)
    mask = np.zeros(grid_alpha.size, dtype=bool)
    alphas = distinct(grid_alpha)
    for delta in distinct(grid_delta):
        low, high = 0, alphas.size  # alphas[:low] fit, alphas[high:] do not
        while low < high:
            middle = (low + high) // 2
            if fits(alphas[middle], delta):
                low = middle + 1
            else:
                high = middle
        if low:
            mask |= (grid_delta == delta) & (grid_alpha <= alphas[low - 1])
    return mask


def _overflow_skip(variant, classes, resolution, grid_alpha, grid_delta, exact) -> dict:
    """The ``skipped`` entry for the points :func:`_int64_exact` left out, naming the smallest."""
    import numpy as np

    alphas, deltas = grid_alpha[~exact], grid_delta[~exact]
    first = np.lexsort((deltas, alphas))[0]
    return {"variant": variant, "alpha": None, "delta": None, "classes": classes, "resolution": resolution,
            "count": int(alphas.size), "overflow": True,
            "reason": f"params, Mult-Adds or bytes beyond 2^63 - 1, the sweep's 64-bit range (the smallest: alpha "
                      f"{float(alphas[first]):g}, delta {int(deltas[first])}); `mnetcost table` gives them exactly"}


def _values(values, what: str) -> list:
    """A sweep's list of values: any iterable (a list, a numpy array, a pandas column), not a
    string or a single number. (A sweep's resolutions are square: one integer each.)"""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{what} must be a list of values, got {values!r}")
    return list(values.tolist() if hasattr(values, "tolist") else values)


def evaluate(variants, alphas, deltas, classes_list=None, resolutions=None, convention="paper",
             rounding: str | None = None, dtype: str = "fp32", runtime: str = "simple",
             tflm_build: str | None = None) -> Sweep:
    """Price every combination. ``classes_list``, ``resolutions`` and ``rounding`` None: each
    variant's own (10, 32 and truncate for the paper's variants; 1,000, 224 and divisible8 for
    MobileNetV2/V3). Every alpha, delta, number of classes and resolution is checked as
    :func:`~mnetcost.calculator.resolver.resolve` checks it (numpy scalars accepted; a bad value
    raises the same ConfigError before any work). A (variant, classes, resolution) whose plan fails
    (input too small) and an alpha that leaves some layer with 0 channels are recorded in ``skipped``.
    ``runtime`` tflm (int8 only) adds TensorFlow Lite Micro's arena and the .tflite bytes
    (:func:`mnetcost.calculator.tflm.sweep_memory`) in ``tflm_build`` (``host64`` unless given; ``arm32``:
    a 32-bit Cortex-M build); a network without a TensorFlow Lite lowering is skipped with the reason."""
    import numpy as np

    from mnetcost.calculator.cost import get_convention
    from mnetcost.calculator.memory import get_dtype, sweep_costs
    from mnetcost.calculator.resolver import ROUNDINGS, as_alpha, as_count, plan, resolve_arrays, split
    from mnetcost.calculator.spec import load_spec

    conv = get_convention(convention)
    precision = get_dtype(dtype)
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "tflm" and precision.name != "int8":
        raise ConfigError(f"runtime tflm runs the int8 file; dtype {precision.name} does not apply")
    tflm_run = runtime == "tflm"
    if tflm_run:
        from mnetcost.calculator.tflm import DEFAULT_BUILD, get_build

        tflm_build = get_build(tflm_build or DEFAULT_BUILD).name
    else:
        tflm_build = None
    if rounding is not None and rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    variants = list(variants)
    alphas = [as_alpha(alpha) for alpha in _values(alphas, "alphas")]
    deltas = [as_count(delta, "delta") for delta in _values(deltas, "deltas")]
    if classes_list is not None:
        classes_list = [as_count(classes, "classes") for classes in _values(classes_list, "classes_list")]
    if resolutions is not None:
        resolutions = [as_count(resolution, "resolution") for resolution in _values(resolutions, "resolutions")]
    grid_alpha, grid_delta = np.meshgrid(np.asarray(alphas, dtype=np.float64),
                                         np.asarray(deltas, dtype=np.int64), indexing="ij")
    grid_alpha, grid_delta = grid_alpha.ravel(), grid_delta.ravel()
    size = grid_alpha.size
    columns: dict[str, list] = {k: [] for k in ("variant", "alpha", "delta", "classes", "resolution",
                                                 "params", "mult_adds", "peak_activation_bytes",
                                                 "weight_bytes", *(TFLM_COLUMNS if tflm_run else ()))}
    skipped: list[dict] = []
    evaluated = 0
    section = 0  # one per (variant, classes, resolution)
    order: list = []
    specs = {variant: load_spec(variant) for variant in variants}  # a bad variant fails before any work
    for number, variant in enumerate(variants):
        spec = specs[variant]
        for classes in (classes_list if classes_list is not None else (spec.classes,)):
            for resolution in (resolutions if resolutions is not None else (spec.resolution,)):
                evaluated += size
                try:
                    base_plan = plan(spec, classes, resolution)
                except ConfigError as exc:
                    skipped.append({"variant": variant, "alpha": None, "delta": None, "classes": classes,
                                    "resolution": resolution, "count": size, "reason": str(exc)})
                    continue
                # residual adds and V3's expansions are decided per point on the rounded widths: the
                # points are priced in groups that share their layers (usually one or two)
                section += 1
                for group in split(base_plan, grid_alpha, grid_delta, rounding):
                    if group.plan is None:
                        skipped.append({"variant": variant, "alpha": None, "delta": None, "classes": classes,
                                        "resolution": resolution, "count": int(group.points.size),
                                        "reason": group.refusal})
                        continue
                    the_plan = group.plan
                    group_alpha, group_delta = grid_alpha[group.points], grid_delta[group.points]
                    # int64 is exact only up to 2**63 - 1: points beyond it are left out (never wrapped)
                    exact = _int64_exact(the_plan, group_alpha, group_delta, rounding, conv)
                    if not exact.all():
                        skipped.append(_overflow_skip(variant, classes, resolution, group_alpha, group_delta, exact))
                    points, alpha_at, delta_at = int(exact.sum()), group_alpha[exact], group_delta[exact]
                    if not points:
                        continue
                    with np.errstate(divide="ignore", invalid="ignore"):
                        layers = resolve_arrays(the_plan, alpha_at, delta_at, rounding)
                        params, mult_adds, peak, stored = sweep_costs(layers, conv, precision)
                    params = np.broadcast_to(params, (points,))
                    mult_adds = np.broadcast_to(mult_adds, (points,))
                    peak = np.broadcast_to(peak, (points,))
                    stored = np.broadcast_to(stored, (points,))
                    zero = _zero_channel_points(layers, points)
                    ok = zero < 0
                    if not ok.all():  # one pass over the bad points, grouped by alpha (linear, not per alpha)
                        bad = np.flatnonzero(~ok)
                        unique, first, counts = np.unique(alpha_at[bad], return_index=True, return_counts=True)
                        for alpha, at, count in zip(unique, bad[first], counts):
                            layer = layers[int(zero[at])]
                            width = getattr(the_plan.layers[int(zero[at])].out_ch, "width", None)
                            rule = rounding if rounding is not None else spec.rounding
                            skipped.append({
                                "variant": variant, "alpha": float(alpha), "delta": None, "classes": classes,
                                "resolution": resolution, "count": int(count), "layer": layer.name,
                                "reason": f"layer {layer.name} would have 0 channels"
                                          + (f" ({rule} {width} × {float(alpha):g} < 1)" if width else ""),
                            })
                    count = int(ok.sum())
                    if not count:
                        continue
                    if tflm_run:
                        figures = _tflm_figures(the_plan, alpha_at[ok], delta_at[ok], rounding, tflm_build)
                        if isinstance(figures, str):
                            skipped.append({"variant": variant, "alpha": None, "delta": None, "classes": classes,
                                            "resolution": resolution, "count": count, "reason": figures})
                            continue
                        figures = {name: np.broadcast_to(figures[name], (count,)) for name in TFLM_COLUMNS}
                        fits64 = np.ones(count, dtype=bool)  # exact (object) figures beyond int64 are left out
                        for name in TFLM_COLUMNS:
                            fits64 &= figures[name] <= INT64_MAX
                        if not fits64.all():
                            skipped.append(_overflow_skip(variant, classes, resolution, alpha_at[ok], delta_at[ok],
                                                          fits64))
                            ok[np.flatnonzero(ok)[~fits64]] = False
                            count = int(ok.sum())
                            if not count:
                                continue
                        for name in TFLM_COLUMNS:
                            columns[name].append(figures[name][fits64].astype(np.int64))
                    order.append(section * size + group.points[exact][ok])  # the grid's order, restored below
                    columns["variant"].append(np.full(count, number, dtype=np.int64))
                    columns["alpha"].append(alpha_at[ok])
                    columns["delta"].append(delta_at[ok])
                    columns["classes"].append(np.full(count, classes, dtype=np.int64))
                    columns["resolution"].append(np.full(count, resolution, dtype=np.int64))
                    columns["params"].append(params[ok])
                    columns["mult_adds"].append(mult_adds[ok])
                    columns["peak_activation_bytes"].append(peak[ok])
                    columns["weight_bytes"].append(stored[ok])
    arrays = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.float64 if k == "alpha" else np.int64))
              for k, v in columns.items()}
    if len(order) > 1:  # several structure groups: rows back in the order of the grid
        rank = np.argsort(np.concatenate(order), kind="stable")
        arrays = {k: v[rank] for k, v in arrays.items()}
    return Sweep(variants=variants, convention=conv.name, skipped=skipped, evaluated=evaluated, dtype=precision.name,
                 runtime=runtime, tflm_build=tflm_build, **arrays)


def _tflm_figures(the_plan, alphas, deltas, rounding, build):
    """TFLM's arena and the .tflite bytes for these points of one plan, or the reason there are none
    (a layer the TensorFlow Lite export does not lower)."""
    from mnetcost.calculator import tflm
    from mnetcost.calculator.resolver import resolve_arrays

    layers = resolve_arrays(the_plan, alphas, deltas, rounding)
    try:
        return tflm.sweep_memory(the_plan, layers, alphas, deltas, build)
    except ConfigError as exc:
        return f"no TensorFlow Lite Micro figures: {exc}"


def skipped_notes(skipped: list[dict], limit: int = 6) -> list[str]:
    """One line per reason: which configurations were left out and why."""
    notes = []
    by_reason: dict[tuple, list] = {}
    for item in skipped:
        if item["alpha"] is None:
            plural = "s" if item["count"] != 1 else ""
            notes.append(f"note: skipped {item['variant']} at {item['classes']} classes, "
                         f"{item['resolution']}px ({item['count']} configuration{plural}): {item['reason']}")
        else:
            key = (item["variant"], item["classes"], item["resolution"], item.get("layer"))
            by_reason.setdefault(key, []).append(item)
    for (variant, classes, resolution, layer), items in by_reason.items():
        alphas = sorted(i["alpha"] for i in items)
        shown = (f"from {alphas[0]:g} to {alphas[-1]:g} ({len(alphas):,} values)" if len(alphas) > limit
                 else ", ".join(f"{a:g}" for a in alphas))  # a range and a count, not a list of many values
        count = sum(i["count"] for i in items)
        notes.append(f"note: skipped {count} {variant} configuration{'s' if count != 1 else ''} "
                     f"(classes {classes}, {resolution}px) with alpha {shown}: layer {layer} would have "
                     f"0 channels")
    return notes


# --- known accuracy and the front --------------------------------------------------------------
def variant_digests(variants) -> dict:
    """Each variant's spec digest (:func:`mnetcost.identity.spec_digest` of its text; None when it
    cannot be read)."""
    from mnetcost import identity as ID
    from mnetcost.calculator.spec import spec_text

    digests = {}
    for variant in variants:
        try:
            digests[variant] = ID.spec_digest(spec_text(variant))
        except MnetcostError:
            digests[variant] = None
    return digests


def same_network(result: KnownResult, variant: str, digest: str | None) -> bool:
    """Whether a known accuracy belongs to ``variant`` (a name or a spec file's path, whose spec
    digest is ``digest``): by the spec's content where the run recorded it (a file moved, renamed or
    given by another path matches; an edited one does not), else by the name as given (the paper's
    figures, runs that record no spec)."""
    recorded = result.identity.recipe.get("spec") if result.identity is not None else None
    if recorded and digest:
        return recorded == digest
    return result.variant == variant


def attach_accuracy(sweep: Sweep, known: list[KnownResult]):
    """Per row: the accuracy that stands for it (NaN if none), its source, and the paper's printed
    accuracy. A training run's accuracy stands where one exists (the highest of the runs for that
    configuration, its source the run's name), whether or not the paper printed a higher one; else
    the paper's (source ``paper``). A result matches a row with the same network (:func:`same_network`),
    alpha (to 9 decimals), delta, classes and resolution. Vectorised over rows, one pass per result."""
    import numpy as np

    run_accuracy = np.full(len(sweep), np.nan)
    paper_accuracy = np.full(len(sweep), np.nan)
    run_source = np.full(len(sweep), "", dtype=object)
    alphas = np.round(sweep.alpha, 9)
    recorded = any(result.identity is not None and result.identity.recipe.get("spec") for result in known)
    # digests only where a run recorded its spec's (the paper's figures alone need no hashing, nor its imports)
    digests = variant_digests(sweep.variants) if recorded else dict.fromkeys(sweep.variants)
    for result in known:
        numbers = [number for number, variant in enumerate(sweep.variants)
                   if same_network(result, variant, digests[variant])]
        if not numbers:
            continue
        rows = np.flatnonzero(
            np.isin(sweep.variant, numbers) & (alphas == alpha_key(result.alpha))
            & (sweep.delta == result.delta) & (sweep.classes == result.classes)
            & (sweep.resolution == result.resolution))
        if result.source == "paper":
            paper_accuracy[rows] = result.accuracy
            continue
        better = rows[~(run_accuracy[rows] >= result.accuracy)]  # NaN (no run yet) compares False
        run_accuracy[better] = result.accuracy
        run_source[better] = result.source
    from_run = ~np.isnan(run_accuracy)
    accuracy = np.where(from_run, run_accuracy, paper_accuracy)
    source = np.where(from_run, run_source, np.where(np.isnan(paper_accuracy), "", "paper")).astype(object)
    return accuracy, source, paper_accuracy


def distinct(values):
    """The distinct values of a 1-D array, sorted (``np.unique`` without its check for masked arrays,
    which imports ``numpy.ma``: a sixth of the ``sweep`` command's time)."""
    import numpy as np

    ordered = np.sort(np.asarray(values).ravel())
    if not ordered.size:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def accuracy_front(sweep: Sweep, accuracy, cost: str = "mult_adds"):
    """On-front mask: among rows with known accuracy and the same number of classes (one
    task), those no other row beats in ``cost`` and accuracy (see :mod:`mnetcost.analysis.pareto`)."""
    import numpy as np

    from mnetcost.analysis.pareto import pareto_mask

    if cost not in FRONT_COSTS:
        raise ConfigError(f"front cost must be one of {', '.join(FRONT_COSTS)}, got {cost!r}")
    mask = np.zeros(len(sweep), dtype=bool)
    known = ~np.isnan(accuracy)
    costs = getattr(sweep, cost)
    if costs is None:
        raise ConfigError(f"front cost {cost} needs runtime tflm")
    for classes in distinct(sweep.classes[known]):
        rows = np.flatnonzero(known & (sweep.classes == classes))
        mask[rows] = pareto_mask(costs[rows], accuracy[rows])
    return mask


def sort_order(sweep: Sweep, accuracy, key: str = "mult_adds"):
    """Row order for ``--sort``: ascending, except accuracy (best first, unknown last). Ties
    fall back to Mult-Adds, params, variant name, alpha, delta, classes, resolution."""
    import numpy as np

    if key not in SORT_KEYS:
        raise ConfigError(f"sort key must be one of {', '.join(SORT_KEYS)}, got {key!r}")
    names = sorted(sweep.variants)
    variant_rank = np.asarray([names.index(v) for v in sweep.variants], dtype=np.int64)[sweep.variant] \
        if len(sweep) else sweep.variant
    if key in TFLM_COLUMNS and sweep.arena_bytes is None:
        raise ConfigError(f"sort key {key} needs runtime tflm")
    columns = {"mult_adds": sweep.mult_adds, "params": sweep.params, "variant": variant_rank,
               "peak_activation_bytes": sweep.peak_activation_bytes, "weight_bytes": sweep.weight_bytes,
               "arena_bytes": sweep.arena_bytes, "minimum_arena_bytes": sweep.minimum_arena_bytes,
               "flash_bytes": sweep.flash_bytes,
               "alpha": sweep.alpha, "delta": sweep.delta, "classes": sweep.classes,
               "resolution": sweep.resolution,
               "accuracy": np.where(np.isnan(accuracy), np.inf, -np.nan_to_num(accuracy))}
    priority = [key] + [k for k in ("mult_adds", "params", "variant", "alpha", "delta", "classes", "resolution")
                        if k != key]
    return np.lexsort(tuple(columns[k] for k in reversed(priority)))


def rows_as_dicts(sweep: Sweep, order, accuracy, source, paper_accuracy, on_front, ops_per_mac: int = 1) -> list[dict]:
    """The JSON objects of ``mnetcost sweep`` for the rows in ``order``."""
    import numpy as np

    rows = []
    for i in np.asarray(order).tolist():
        acc = accuracy[i]
        item = {
            "variant": sweep.variants[int(sweep.variant[i])],
            "alpha": float(sweep.alpha[i]),
            "delta": int(sweep.delta[i]),
            "classes": int(sweep.classes[i]),
            "resolution": int(sweep.resolution[i]),
            "params": int(sweep.params[i]),
            "mult_adds": int(sweep.mult_adds[i]),
            "peak_activation_bytes": int(sweep.peak_activation_bytes[i]),
            "weight_bytes": int(sweep.weight_bytes[i]),
        }
        if sweep.arena_bytes is not None:
            item["runtime"] = sweep.runtime
            item["tflm_build"] = sweep.tflm_build
            item.update({name: int(getattr(sweep, name)[i]) for name in TFLM_COLUMNS})
        if ops_per_mac != 1:
            item["flops"] = item["mult_adds"] * ops_per_mac
        item["accuracy"] = None if np.isnan(acc) else float(acc)
        item["accuracy_source"] = source[i] or None
        item["paper_accuracy"] = None if np.isnan(paper_accuracy[i]) else float(paper_accuracy[i])
        item["on_front"] = bool(on_front[i])
        rows.append(item)
    return rows
