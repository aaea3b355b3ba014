"""Accuracy against cost: the points and their Pareto front as data, then a matplotlib figure.

:func:`collect_points` and :func:`front_of` are pure (no matplotlib); :func:`draw` imports
matplotlib (Agg backend) only when called, and :func:`save_figure` writes through a temporary
file in the target folder, renamed into place, so no half-written file is ever left behind.

Paper points carry the paper's printed accuracy but the Mult-Adds and parameters mnetcost
computes for the configuration (the paper's printed costs are rounded and, for FMP, estimated);
the figure says so in its footnote.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from mnetcost.errors import MnetcostError

IMAGE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
X_AXES = ("mult_adds", "params", "latency", "peak_memory", "weight_bytes")
RUNTIME_NAMES = {"torch": "eager PyTorch", "onnxruntime": "ONNX Runtime (fp32)",
                 "onnxruntime-int8": "ONNX Runtime (static int8)"}
MEMORY_AXES = {"peak_memory": "peak_activation_bytes", "weight_bytes": "weight_bytes"}  # axis -> point key
DATASETS = {"cifar10": ("CIFAR-10", 10), "cifar100": ("CIFAR-100", 100)}
VARIANT_STYLE = {  # colour-blind-safe (Okabe-Ito) colours, one marker shape per variant
    "base": ("#0072B2", "o", "base (Table 1: strided convs)"),
    "mp3": ("#E69F00", "s", "mp3 (Table 2: 3×3/2 max pooling)"),
    "fmp": ("#009E73", "^", "fmp (Table 3: fractional max pooling)"),
}
OTHER_STYLES = [("#CC79A7", "D"), ("#56B4E9", "v"), ("#D55E00", "P"), ("#999999", "X")]
MAX_PLOTTED = 10**300  # costs above this cannot be placed on a float axis (with room for the margins)


def image_format(path: str | Path, option: str = "--out") -> str:
    """png, svg or pdf from the file's suffix; anything else is a one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        shown = suffix or "no suffix"
        raise MnetcostError(f"{option} {path}: unknown image type ({shown}); use a .png, .svg or .pdf file name")
    return IMAGE_FORMATS[suffix]


def check_output(path: str | Path, option: str = "--out") -> str:
    """Validate an image path before any work: suffix known, folder exists, not a directory."""
    from mnetcost.files import check_target

    fmt = image_format(path, option)
    check_target(path, option)
    return fmt


# --- data --------------------------------------------------------------------------------------
def bench_runtimes(results: list) -> list[str]:
    """The runtimes of ``mnetcost bench`` results in order of appearance (a result without a
    ``runtime`` key, from before ``--runtime`` existed, is eager PyTorch)."""
    return list(dict.fromkeys(item.get("runtime", "torch") for item in results if isinstance(item, dict)))


def load_latency(path: str | Path, runtime: str | None = None) -> dict[tuple, dict]:
    """Latency results written by ``mnetcost bench --out FILE``, keyed like sweep configurations:
    those of ``runtime`` (``torch``, ``onnxruntime``, ``onnxruntime-int8``); a file measured in
    several runtimes needs one named."""
    from mnetcost.analysis.sweep import config_key

    file = Path(path)
    if not file.is_file():
        raise MnetcostError(f"--latency {path}: no such file (write one with `mnetcost bench --out {path}`)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MnetcostError(f"--latency {path}: not a JSON file from `mnetcost bench`: "
                            f"{str(exc).splitlines()[0]}") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise MnetcostError(f"--latency {path}: no 'results' list (is it from `mnetcost bench --out`?)")
    runtimes = bench_runtimes(results)
    if runtime is None and len(runtimes) > 1:
        raise MnetcostError(f"--latency {path} was measured in {', '.join(runtimes)}: choose one with --runtime")
    if runtime is not None and runtimes and runtime not in runtimes:
        raise MnetcostError(f"--runtime {runtime}: {path} has {', '.join(runtimes)} only "
                            f"(measure it with `mnetcost bench --runtime {runtime}`)")
    table = {}
    for number, item in enumerate(results):
        if runtime is not None and isinstance(item, dict) and item.get("runtime", "torch") != runtime:
            continue
        try:
            key = config_key(item["variant"], item["alpha"], item["delta"], item["classes"], item["resolution"])
            float(item["latency_ms"])  # must be a number
        except (KeyError, TypeError, ValueError):
            raise MnetcostError(f"--latency {path}: result {number} lacks variant/alpha/delta/classes/"
                                "resolution/latency_ms") from None
        table[key] = item
    return table


def _costs(variant, alpha: float, delta: int, classes: int, resolution: int, convention: str):
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    cost = network_cost(resolve(variant, alpha, delta, classes, resolution), convention)
    return cost.params, cost.mult_adds


def _memory(item, dtype: str) -> tuple:
    """(peak activation bytes, weight bytes) of a point's configuration at ``dtype``, or (None, None)
    when it cannot be resolved (a run whose spec file is gone)."""
    from mnetcost.analysis.runs import trained_spec
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    try:
        cost = network_cost(resolve(trained_spec(item.variant, getattr(item, "spec_toml", None)), item.alpha, item.delta, item.classes, item.resolution), "paper",
                            dtype)
        return cost.peak_activation_bytes, cost.weight_bytes
    except MnetcostError:
        return None, None


def collect_points(dataset: str = "cifar10", *, include_paper: bool = True, runs=(), convention: str = "paper",
                   latency: dict | None = None, tables=None, dtype: str = "fp32") -> tuple[list[dict], list[str]]:
    """The points to plot and warnings. Each point: variant, alpha, delta, classes, resolution,
    mult_adds, params, peak_activation_bytes and weight_bytes at ``dtype`` (None when the
    configuration cannot be resolved), accuracy (fraction), source ("paper" or the run's name), baseline, and
    latency_ms/images_per_s when ``latency`` (from :func:`load_latency`) is given. ``tables``
    limits the paper's points to some of Tables 4, 5, 6 (each includes the baseline)."""
    from mnetcost.analysis.sweep import paper_known

    if dataset not in DATASETS:
        raise MnetcostError(f"unknown dataset {dataset!r} (one of {', '.join(DATASETS)})")
    classes = DATASETS[dataset][1]
    known = paper_known(dataset, tables) if include_paper else []
    warnings: list[str] = []
    for run in runs:
        if run.dataset in DATASETS and run.dataset != dataset:
            continue  # a run on the other CIFAR belongs to the other figure
        if run.dataset not in DATASETS and run.classes != classes:
            continue
        known.append(run)
    points = []
    unmeasured = []
    from mnetcost.analysis.runs import trained_spec

    for item in known:
        try:
            params, mult_adds = _costs(trained_spec(item.variant, getattr(item, "spec_toml", None)), item.alpha, item.delta, item.classes, item.resolution,
                                       convention)
        except MnetcostError as exc:
            if item.params is None or item.mult_adds is None:
                warnings.append(f"warning: skipping run {item.source}: {exc}")
                continue
            params, mult_adds = item.params, item.mult_adds  # a spec file that is gone: trust the summary
        if max(params, mult_adds) > MAX_PLOTTED:  # beyond a float (alpha 1e300 in a summary): cannot be placed
            warnings.append(f"warning: skipping {describe_item(item)}: {len(str(max(params, mult_adds)))}-digit "
                            "costs are beyond what a figure can place")
            continue
        point = {"variant": item.variant, "alpha": item.alpha, "delta": item.delta, "classes": item.classes,
                 "resolution": item.resolution, "mult_adds": int(mult_adds), "params": int(params),
                 "accuracy": item.accuracy, "source": item.source, "dataset": item.dataset,
                 "baseline": item.is_baseline}
        point["peak_activation_bytes"], point["weight_bytes"] = _memory(item, dtype)
        point["dtype"] = dtype
        if getattr(item, "unfinished", False) and item.epochs and item.epochs_planned:  # a run still training
            point.update(epochs=item.epochs, epochs_planned=item.epochs_planned)
        if getattr(item, "seeds", 1) > 1:  # the mean of several seeds (analysis.runs.mean_over_seeds)
            point.update(seeds=item.seeds, accuracy_min=item.accuracy_min, accuracy_max=item.accuracy_max)
        if latency is not None:
            measured = latency.get(item.key)
            if measured is None:
                unmeasured.append(point)
                continue
            point["latency_ms"] = float(measured["latency_ms"])
            if measured.get("images_per_s") is not None:
                point["images_per_s"] = float(measured["images_per_s"])
        points.append(point)
    if unmeasured:
        names = ", ".join(describe(p) for p in unmeasured[:4]) + (", ..." if len(unmeasured) > 4 else "")
        classes_measured = sorted({key[3] for key in latency})
        hint = (f" (the latency file has classes {', '.join(map(str, classes_measured))} only; "
                f"measure with `mnetcost bench --classes {classes}`)" if classes not in classes_measured else "")
        warnings.append(f"note: no latency measured for {len(unmeasured)} of {len(unmeasured) + len(points)} "
                        f"points, left out: {names}{hint}")
    return points, warnings


def describe_item(item) -> str:
    where = "paper" if item.source == "paper" else f"run {item.source}"
    return f"{item.variant} α={item.alpha:g} δ={item.delta} ({where})"


def describe(point: dict) -> str:
    where = "paper" if point["source"] == "paper" else f"run {point['source']}"
    return f"{point['variant']} α={point['alpha']:g} δ={point['delta']} ({where})"


def x_value(point: dict, x: str):
    if x in MEMORY_AXES:
        return point[MEMORY_AXES[x]]
    return point["latency_ms"] if x == "latency" else point[x]


def front_of(points: list[dict], x: str = "mult_adds") -> list[dict]:
    """The points on the accuracy Pareto front over ``x``, ordered by ``x`` (see mnetcost.analysis.pareto)."""
    from mnetcost.analysis.pareto import front_indices

    if not points:
        return []
    indices = front_indices([x_value(p, x) for p in points], [p["accuracy"] for p in points])
    return [points[i] for i in indices]


# --- drawing -----------------------------------------------------------------------------------
def _style(variant: str, others: dict) -> tuple[str, str, str]:
    if variant in VARIANT_STYLE:
        return VARIANT_STYLE[variant]
    if variant not in others:
        colour, marker = OTHER_STYLES[len(others) % len(OTHER_STYLES)]
        others[variant] = (colour, marker, variant)
    return others[variant]


def _axis_text(x: str, unit: str) -> tuple[str, object]:
    if x == "mult_adds":
        return f"{unit} per image (log scale)", lambda v, _: _si(v)
    if x == "params":
        return "Parameters (log scale)", lambda v, _: _si(v)
    if x == "peak_memory":
        return f"Peak activation memory, {unit} (bytes, log scale)", lambda v, _: _binary(v)
    if x == "weight_bytes":
        return f"Weight storage, {unit} (bytes, log scale)", lambda v, _: _binary(v)
    return "Latency at batch 1 (ms per image, log scale)", lambda v, _: f"{v:g} ms"


def _binary(value: float) -> str:
    for factor, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= factor:
            return f"{value / factor:g} {suffix}"
    return f"{value:g} B"


def _si(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def _literal_text(function):
    """Text in a figure is drawn as written: a ``$`` in a title, a run's or a spec's name is not
    matplotlib mathtext (``--title '$\\foo$'`` was a traceback)."""
    import functools

    @functools.wraps(function)
    def literal(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return function(*args, **kwargs)

    return literal


LABEL_RADII = (5, 9, 14, 20, 28, 38, 50)  # points from the marker; beyond 12 a thin leader line joins them
LABEL_ANGLES = (20, -20, 160, 200, 90, 270, 45, -45, 135, 225, 0, 180, 67, -67, 113, 247)


def _segment_hits(p, q, rect) -> bool:
    """Whether the segment p-q crosses the rectangle (x0, y0, x1, y1) (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for step, room in ((-dx, x0 - rect[0]), (dx, rect[2] - x0), (-dy, y0 - rect[1]), (dy, rect[3] - y0)):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _segments_cross(p, q, r, s) -> bool:
    """Whether the segments p-q and r-s cross at a point inside both (touching at an end or running
    along each other does not count)."""
    def side(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2, d3, d4 = side(r, s, p), side(r, s, q), side(p, q, r), side(p, q, s)
    return ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4))


def _leader(centre, radius, rect):
    """The leader line as drawn: from the label box's centre towards the marker, ending at the marker's
    edge (or None when the box covers the centre)."""
    import math

    target = ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2)
    dx, dy = target[0] - centre[0], target[1] - centre[1]
    length = math.hypot(dx, dy)
    if length <= radius:
        return None
    start = (centre[0] + dx * radius / length, centre[1] + dy * radius / length)
    return start, target


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


MARKER_RADIUS = 4.5  # points: half the width of a plotted marker (s=46, edge 1.6)
RING_RADIUS = 9.0  # points: the baseline's ring (s=230, edge 1.3), which labels must stay out of too


def _place_labels(ax, fig, anchors, texts, colours, line=(), *, lines=(), shifts=None, radii=None, fontsize=7):
    """Label every point without two labels touching. In display space, for each point (the most
    crowded first) try spots on rings around it (``LABEL_RADII`` x ``LABEL_ANGLES``), nearest
    first, and keep the first whose box overlaps no placed label, no marker (``radii``: per
    point, its marker's radius in points, larger for a ringed point; a label stays out of its
    own point's ring as well) and crosses no segment of ``line`` (the front) or ``lines`` (data
    polylines: series, guides, error bars); if none is free, the least bad. A label set off by
    more than 12 points gets a thin leader line to its marker, which crosses none of those lines
    either. ``shifts``: per point, the
    marker's horizontal offset in points (see :func:`_dodge`)."""
    import math

    from matplotlib.transforms import offset_copy

    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72
    shifts = list(shifts) if shifts is not None else [0.0] * len(anchors)
    radii = [r * scale for r in radii] if radii is not None else [MARKER_RADIUS * scale] * len(anchors)
    centres = []
    for (x, y), shift in zip(anchors, shifts):
        px, py = ax.transData.transform((x, y))
        centres.append((px + shift * scale, py))
    markers = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), r in zip(centres, radii)]
    # a label may start right beside its own plain marker, but never inside its own ring
    own = [(cx - r + 2 * scale, cy - r + 2 * scale, cx + r - 2 * scale, cy + r - 2 * scale)
           if r > MARKER_RADIUS * scale else None for (cx, cy), r in zip(centres, radii)]
    polylines = [list(line)] if len(line) else []
    polylines += [list(polyline) for polyline in lines]
    segments = []
    for polyline in polylines:
        pixels = [tuple(ax.transData.transform(point)) for point in polyline]
        segments += list(zip(pixels, pixels[1:]))
    frame = ax.get_window_extent(renderer)
    sizes = []
    for text in texts:
        probe = ax.text(0, 0, text, fontsize=fontsize)
        box = probe.get_window_extent(renderer)
        sizes.append((box.width, box.height))
        probe.remove()
    candidates = []
    for r in LABEL_RADII:
        for angle in LABEL_ANGLES:
            c, s_ = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            ha = "left" if c > 0.3 else ("right" if c < -0.3 else "center")
            va = "bottom" if s_ > 0.3 else ("top" if s_ < -0.3 else "center")
            candidates.append((r, r * c, r * s_, ha, va))

    def rect_of(i, dx, dy, ha, va):
        w, h = sizes[i]
        x = centres[i][0] + dx * scale
        y = centres[i][1] + dy * scale
        x0 = x if ha == "left" else (x - w if ha == "right" else x - w / 2)
        y0 = y if va == "bottom" else (y - h if va == "top" else y - h / 2)
        return (x0 - 1, y0 - 1, x0 + w + 1, y0 + h + 1)

    crowd = [sum(1 for other in centres if abs(other[0] - c[0]) < 60 and abs(other[1] - c[1]) < 25)
             for c in centres]
    order = sorted(range(len(anchors)), key=lambda i: (-crowd[i], centres[i][0], centres[i][1]))
    placed: list[tuple] = []
    for i in order:
        best = None
        for r, dx, dy, ha, va in candidates:
            rect = rect_of(i, dx, dy, ha, va)
            outside = rect[0] < frame.x0 or rect[2] > frame.x1 or rect[1] < frame.y0 or rect[3] > frame.y1
            score = 1e9 if outside else 0.0
            score += 10 * sum(_overlap(rect, other) for other in placed)
            score += 10 * sum(_overlap(rect, m) for j, m in enumerate(markers) if j != i)
            if own[i] is not None:
                score += 10 * _overlap(rect, own[i])
            score += 40 * sum(1 for p, q in segments if _segment_hits(p, q, rect))
            if r > 12:  # a leader line will join label and marker: it crosses no line, marker or label either
                leader = _leader(centres[i], radii[i], rect)
                if leader is not None:
                    score += 40 * sum(1 for p, q in segments if _segments_cross(*leader, p, q))
                    score += 40 * sum(1 for j, m in enumerate(markers) if j != i and _segment_hits(*leader, m))
                    score += 40 * sum(1 for other in placed if _segment_hits(*leader, other))
            if best is None or score < best[0]:
                best = (score, rect, r, dx, dy, ha, va)
            if score == 0:
                break
        _, rect, r, dx, dy, ha, va = best
        placed.append(rect)
        leader = dict(arrowstyle="-", color=colours[i], linewidth=0.5, alpha=0.7, shrinkA=0, shrinkB=3) \
            if r > 12 else None
        ax.annotate(texts[i], anchors[i], xycoords=offset_copy(ax.transData, fig=fig, x=shifts[i], units="points"),
                    xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                    color=colours[i], zorder=4, arrowprops=leader)


def _dodge(xs, ys, log_x: bool = True, step: float = 7.0) -> list[float]:
    """Horizontal marker offsets in points for points that share a position (same cost and
    accuracy: base and mp3 at equal params), so no marker hides another: a group of k is spread
    ``step`` points apart around its place; a point alone stays put."""
    import math

    groups: dict = {}
    for i, (x, y) in enumerate(zip(xs, ys)):
        key = (round(math.log10(x), 3) if log_x and x > 0 else round(x, 9), round(y, 3))
        groups.setdefault(key, []).append(i)
    shifts = [0.0] * len(xs)
    for members in groups.values():
        for rank, i in enumerate(members):
            shifts[i] = (rank - (len(members) - 1) / 2) * step
    return shifts


def _break_marker():
    """Two parallel diagonal strokes, the usual mark of a cut axis ("//")."""
    from matplotlib.path import Path as MarkerPath

    return MarkerPath([(-1.3, -0.7), (-0.1, 0.7), (0.1, -0.7), (1.3, 0.7)],
                      [MarkerPath.MOVETO, MarkerPath.LINETO, MarkerPath.MOVETO, MarkerPath.LINETO])


def _compress_gap(ax, values, low: float, high: float, band: float = 0.06):
    """When the points' values leave an empty stretch longer than 30 % of the axis (runs far
    below the paper's points), squeeze it to ``band`` of the height with a piecewise-linear
    axis instead of squeezing every point into a corner, and mark the break so it cannot be
    missed: both spines are cut, with "//" marks where each cut begins and ends, the band is
    shaded and says how many points of accuracy it holds. Returns (start, end, times shorter
    than the scale elsewhere), or None."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, MaxNLocator

    ordered = sorted(values)
    if len(ordered) < 2:
        return None
    size, at = max((b - a, k) for k, (a, b) in enumerate(zip(ordered, ordered[1:])))
    if size <= 0.3 * (high - low):
        return None
    start, end = ordered[at] + 2.5, ordered[at + 1] - 2.5
    kept = (start - low) + (high - end)
    factor = band / (1 - band) * kept / (end - start)

    def forward(y):
        y = np.asarray(y, dtype=float)
        return np.where(y <= start, y, np.where(y >= end, y - (end - start) * (1 - factor),
                                                start + (y - start) * factor))

    def inverse(v):
        v = np.asarray(v, dtype=float)
        top = start + (end - start) * factor
        return np.where(v <= start, v, np.where(v >= top, v + (end - start) * (1 - factor),
                                                start + (v - start) / factor))

    ax.set_yscale("function", functions=(forward, inverse))
    ax.set_ylim(low, high)
    ticks = [t for t in MaxNLocator(nbins=4).tick_values(low, start) if low <= t <= start]
    ticks += [t for t in MaxNLocator(nbins=6).tick_values(end, high) if end <= t <= high]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    edge = ax.get_yaxis_transform()  # x in axes fractions (0: left spine, 1: right), y in data
    ax.axhspan(start, end, facecolor="#e8e8e8", edgecolor="none", zorder=0)
    for side in (0, 1):  # cut both spines inside the band ...
        ax.plot([side, side], [start, end], transform=edge, color="white", linewidth=4, solid_capstyle="butt",
                clip_on=False, zorder=5, gid="axis-break")
        for y in (start, end):  # ... and mark each end of the cut
            ax.plot([side], [y], transform=edge, linestyle="none", marker=_break_marker(), markersize=11,
                    markeredgewidth=1.3, color="black", clip_on=False, zorder=6, gid="axis-break")
    shorter = 1 / factor
    ax.text(0.5, (start + end) / 2, f"axis broken: {start:.0f}–{end:.0f} % ({end - start:.0f} points, no data) "
            f"squeezed {shorter:.0f}× shorter than the scale elsewhere", fontsize=7, color="#333333",
            ha="center", va="center", transform=edge, zorder=1)
    return start, end, shorter


@_literal_text
def draw_axes(ax, points: list[dict], front: list[dict], *, x: str = "mult_adds", unit: str = "Mult-Adds",
              title: str = "") -> tuple[dict, tuple]:
    """Draw points and front into ``ax``. Returns (legend handles by key, the label job that
    :func:`place_labels` runs once the figure's layout is final)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from mnetcost.analysis.pareto import step_line

    xs = [x_value(p, x) for p in points]
    ys = [100 * p["accuracy"] for p in points]
    others: dict = {}
    handles = {}
    from matplotlib.transforms import offset_copy

    anchors, texts, colours, radii = [], [], [], []
    staircase: list[tuple] = []
    bars: list[list[tuple]] = []  # error bars, avoided by the labels
    shifts = _dodge(xs, ys)  # points that share a position are set side by side, none hidden
    seeded = {p["variant"] for p in points if p["source"] != "paper" and p.get("accuracy_min") is not None}
    for point, px, py, shift in zip(points, xs, ys, shifts):
        colour, marker, name = _style(point["variant"], others)
        paper = point["source"] == "paper"
        place = offset_copy(ax.transData, fig=ax.figure, x=shift, units="points") if shift else ax.transData
        ax.scatter([px], [py], s=46, marker=marker, zorder=3, linewidths=1.6,
                   facecolors=colour if paper else "white", edgecolors=colour, transform=place)
        if point.get("accuracy_min") is not None:  # a mean over seeds: their range as an error bar, drawn
            low, high = 100 * point["accuracy_min"], 100 * point["accuracy_max"]  # over the hollow marker
            ax.errorbar([px], [py], yerr=[[py - low], [high - py]], fmt="none", ecolor=colour, elinewidth=1.4,
                        capsize=5, capthick=1.4, zorder=4, transform=place)
            bars.append([(px, low), (px, high)])
        key = (name, paper)
        if key not in handles:
            handles[key] = Line2D([], [], linestyle="none", marker=marker, markersize=7, markeredgewidth=1.6,
                                  color=colour, markerfacecolor=colour if paper else "white",
                                  label=name if paper else f"{point['variant']}: your runs (hollow; bars: seed range)"
                                  if point["variant"] in seeded else f"{point['variant']}: your runs (hollow)")
        if point["baseline"]:
            ax.scatter([px], [py], s=230, marker="o", facecolors="none", edgecolors="black", linewidths=1.3,
                       zorder=2, transform=place)
            handles[("baseline", True)] = Line2D([], [], linestyle="none", marker="o", markersize=13,
                                                 markerfacecolor="none", markeredgecolor="black",
                                                 label="baseline: MobileNet α=1 δ=1")
        anchors.append((px, py))
        texts.append(point_label(point))
        colours.append(colour)
        radii.append(RING_RADIUS if point["baseline"] else MARKER_RADIUS)
    if front:
        fx = [x_value(p, x) for p in front]
        fy = [100 * p["accuracy"] for p in front]
        sx, sy = step_line(fx, fy, right_edge=max(xs) * 1.6)
        ax.step(sx, sy, where="post", color="#444444", linestyle="--", linewidth=1.1, zorder=1)
        for i in range(len(sx)):  # the corners of the staircase, for label placement
            staircase.append((sx[i], sy[i]))
            if i + 1 < len(sx):
                staircase.append((sx[i + 1], sy[i]))
        handles[("front", True)] = Line2D([], [], color="#444444", linestyle="--", linewidth=1.1,
                                          label="Pareto front (best accuracy\nfor at most this cost)")
    ax.set_xscale("log")
    if xs:
        ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
        spans = ys + [100 * p[k] for p in points for k in ("accuracy_min", "accuracy_max") if p.get(k) is not None]
        ax.set_ylim(min(spans) - 2.5, max(spans) + 2.5)
        cut = _compress_gap(ax, spans, min(spans) - 2.5, max(spans) + 2.5)
        if cut is not None:  # the break goes into the legend too, where a reader looks for what marks mean
            handles[("break", True)] = Line2D([], [], linestyle="none", marker=_break_marker(), markersize=11,
                                              markeredgewidth=1.3, color="black",
                                              label=f"accuracy axis broken: {cut[0]:.0f}–{cut[1]:.0f} %\n"
                                                    f"drawn {cut[2]:.0f}× shorter (no points there)")
    label, formatter = _axis_text(x, unit)
    ax.xaxis.set_major_locator(LogLocator(base=2) if x in MEMORY_AXES else LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(formatter))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)
    ax.set_ylabel("Top-1 test accuracy (%)")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=12)
    return handles, (ax, anchors, texts, colours, staircase, bars, shifts, radii)


def point_label(point: dict) -> str:
    """``α=0.25 δ=2`` for a paper point; a run's name after it; for the mean of several seeds the
    seeds' range in numbers, since a range of a tenth of a point is too short to see as a bar."""
    text = f"α={point['alpha']:g} δ={point['delta']}"
    if point["source"] == "paper":
        return text
    progress = f", {point['epochs']} of {point['epochs_planned']} epochs" if point.get("epochs_planned") else ""
    seeds = point.get("seeds", 1)
    if seeds > 1 and point.get("accuracy_min") is not None:
        name = point["source"].removesuffix(f" ({seeds} seeds)")
        return (f"{text} ({name}: {seeds} seeds, {100 * point['accuracy_min']:.1f}–"
                f"{100 * point['accuracy_max']:.1f} %{progress})")
    return f"{text} ({point['source']}{progress})"


def legend_handles(*handle_dicts) -> list:
    """Variants first (in order of appearance), then the baseline ring, the front and an axis break."""
    merged: dict = {}
    for handles in handle_dicts:
        for key, handle in handles.items():
            merged.setdefault(key, handle)
    names = [style[2] for style in VARIANT_STYLE.values()]
    variants = [k for k in merged if k[0] not in ("baseline", "front", "break")]
    variants.sort(key=lambda k: (not k[1], names.index(k[0]) if k[0] in names else len(names)))
    ordered = [merged[k] for k in variants]
    return ordered + [merged[k] for k in (("baseline", True), ("front", True), ("break", True)) if k in merged]


@_literal_text
def place_labels(fig, *jobs) -> None:
    """Lay the figure out, then place every axes' point labels (see :func:`draw_axes`)."""
    fig.canvas.draw()
    for ax, anchors, texts, colours, staircase, bars, shifts, radii in jobs:
        _place_labels(ax, fig, anchors, texts, colours, staircase, lines=bars, shifts=shifts, radii=radii)
    fig.set_layout_engine("none")  # the labels were placed for this layout: keep it when saving


def new_figure(width: float, height: float, columns: int = 1, rows: int = 1):
    """An Agg-backed Figure (no pyplot: the caller's backend is untouched) and its axes (row by row)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False).ravel()


@_literal_text
def add_footnote(fig, text: str, fontsize: float = 7) -> None:
    """Small grey lines under the axes, with room reserved for them in the constrained layout."""
    lines = text.count("\n") + 1
    height_pt = fig.get_figheight() * 72
    bottom = (lines * fontsize * 1.3 + 4) / height_pt
    fig.text(0.005, 0.004, text, fontsize=fontsize, color="#444444", ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))


@_literal_text
def draw(points: list[dict], front: list[dict], *, x: str = "mult_adds", dataset: str = "cifar10",
         convention: str = "paper", title: str | None = None, footnote: str | None = None, tables=None,
         dtype: str = "fp32"):
    """A matplotlib Figure (Agg) of accuracy against ``x``: points per variant, runs hollow,
    the baseline ringed, each point labelled α/δ, the front as a step line."""
    from mnetcost.calculator.cost import get_convention

    unit = dtype if x in MEMORY_AXES else get_convention(convention).unit
    fig, (ax,) = new_figure(10, 5.8)
    name, _ = DATASETS.get(dataset, (dataset, 0))
    what = {"mult_adds": unit, "params": "parameters", "latency": "measured latency",
            "peak_memory": f"peak activation memory ({dtype})", "weight_bytes": f"weight storage ({dtype})"}[x]
    source = f"Chen & Su, {tables_text(tables)}" if any(p["source"] == "paper" for p in points) else ""
    if any(p["source"] != "paper" for p in points):
        source = f"{source} + your runs" if source else "your runs"
    handles, job = draw_axes(ax, points, front, x=x, unit=unit,
                             title=title or f"{name}: top-1 accuracy vs {what} ({source})")
    ax.legend(handles=legend_handles(handles), loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize=8, frameon=False)
    elsewhere = sorted({p["dataset"] for p in points if p["source"] != "paper" and p.get("dataset") != dataset})
    if elsewhere:  # runs on other data with this number of classes: say so under the figure
        line = (f"Runs trained on {', '.join(map(str, elsewhere))}, not {name}: their accuracy is not directly "
                "comparable with the paper's.")
        footnote = f"{footnote}\n{line}" if footnote else line
    if footnote:
        add_footnote(fig, footnote)
    place_labels(fig, job)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) via a temporary file and a rename."""
    import matplotlib

    from mnetcost.files import atomic_write

    fmt = image_format(path)
    target = Path(path)
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with matplotlib.rc_context({"svg.hashsalt": "mnetcost"}):
        atomic_write(target, lambda stream: fig.savefig(stream, format=fmt, metadata=metadata))
    return target


def tables_text(tables=None) -> str:
    """``Tables 4–6``, ``Table 5``, ``Tables 4, 6``."""
    chosen = sorted(set(tables or (4, 5, 6)))
    if chosen == [4, 5, 6]:
        return "Tables 4–6"
    return f"Table {chosen[0]}" if len(chosen) == 1 else "Tables " + ", ".join(map(str, chosen))


def paper_footnote(convention: str, include_paper: bool, x: str, tables=None, dtype: str = "fp32",
                   runtime: str | None = None) -> str:
    parts = []
    if include_paper:
        parts.append(f"Paper points: accuracy as printed in Chen & Su, {tables_text(tables)}; "
                     f"Mult-Adds and parameters computed by mnetcost (convention '{convention}') for each "
                     "configuration, not the paper's printed figures.")
    if x == "latency":
        parts.append("Latency: measured by `mnetcost bench` on this machine (median, batch 1)"
                     + (f" in {RUNTIME_NAMES.get(runtime, runtime)}." if runtime else "."))
    if x == "peak_memory":
        parts.append(f"Peak activation memory at {dtype}: input + output bytes of the largest layer, layers run one "
                     "at a time with BatchNorm and ReLU fused (mnetcost's execution model; the paper prints none).")
    if x == "weight_bytes":
        parts.append(f"Weight storage at {dtype}: deployed weights with BatchNorm folded into one bias per conv "
                     "output channel (mnetcost's figure; the paper prints none).")
    parts.append("Front: no other point has lower-or-equal cost and higher-or-equal accuracy (one strictly).")
    return "\n".join(parts)


def points_as_json(points: list[dict], front: list[dict]) -> dict:
    def clean(point):
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in point.items()}

    return {"points": [clean(p) for p in points], "front": [clean(p) for p in front]}


NOISY_SPREAD = 1.5  # a batch-1 median this many times its 10th percentile: the timing was disturbed


def latency_noise_note(bench: dict) -> str:
    """A caveat for a bench result whose timings were disturbed (other processes on the machine): per
    runtime, how many configurations have a batch-1 median at least ``NOISY_SPREAD`` times their 10th
    percentile (an undisturbed loop of identical passes stays near 1.1), and the load average when the
    bench recorded one. Empty when none was."""
    parts = []
    for runtime in bench_runtimes(bench["results"]):
        rows = [r for r in bench["results"] if r.get("runtime", "torch") == runtime and r.get("latency_ms_p10")]
        spreads = [r["latency_ms"] / r["latency_ms_p10"] for r in rows]
        noisy = [spread for spread in spreads if spread >= NOISY_SPREAD]
        if noisy:
            parts.append(f"{RUNTIME_NAMES.get(runtime, runtime)} {len(noisy)} of {len(rows)} "
                         f"({min(noisy):.1f}–{max(noisy):.1f}×)")
    if not parts:
        return ""
    load = bench.get("load_average")
    busy = f"; load average {load[0]:.1f} when it started" if isinstance(load, (list, tuple)) and load else ""
    return ("Disturbed timings: batch-1 medians at least 1.5× their 10th percentile in " + ", ".join(parts)
            + f" configurations: other processes shared the machine{busy}. Read those medians as upper bounds.")


@_literal_text
def draw_latency(bench: dict, title: str | None = None):
    """Measured time against Mult-Adds from a ``mnetcost bench`` result: batch-1 latency (left)
    and per-image time at the larger batch (right), log-log, with a slope-1 guide (time
    proportional to Mult-Adds) through the median ratio, so departures from it stand out."""
    import statistics

    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    results = bench["results"]
    if not results:
        raise MnetcostError("no bench results to plot")
    runtimes = bench_runtimes(results)  # one row of panels per runtime, on shared axis ranges
    panels = []
    for runtime in runtimes:
        mine = [r for r in results if r.get("runtime", "torch") == runtime]
        batched = [r for r in mine if r.get("images_per_s")]
        named = f"{RUNTIME_NAMES.get(runtime, runtime)}, " if len(runtimes) > 1 else ""
        panels.append(("latency_ms", f"{named}batch 1: latency, median (bars: 10th–90th percentile)", mine))
        if batched:
            panels.append(("per_image_ms", f"{named}batch {bench['batch_size']}: ms per image (1000 / images/s)",
                           batched))
    columns = len(panels) // len(runtimes)
    fig, axes = new_figure(7.0 * columns + 2.4, 6.6 if len(runtimes) == 1 else 4.6 * len(runtimes),
                           columns=columns, rows=len(runtimes))
    others: dict = {}
    handles = {}
    jobs = []  # labels are placed once the whole figure is laid out
    ranges: dict = {}  # key -> (axes, xlim, ylim) of each runtime's panel
    for ax, (key, label, rows) in zip(axes, panels):
        xs = [r["mult_adds"] for r in rows]
        ys = [r["latency_ms"] if key == "latency_ms" else 1000 / r["images_per_s"] for r in rows]
        anchors, texts, colours, obstacles = [], [], [], []
        for r, px, py in zip(rows, xs, ys):
            colour, marker, name = _style(r["variant"], others)
            ax.scatter([px], [py], s=40, marker=marker, color=colour, zorder=3)
            if key == "latency_ms" and r.get("latency_ms_p10") is not None and r.get("latency_ms_p90") is not None:
                ax.errorbar([px], [py], yerr=[[max(py - r["latency_ms_p10"], 0)], [max(r["latency_ms_p90"] - py, 0)]],
                            fmt="none", ecolor=colour, elinewidth=0.8, alpha=0.6, zorder=2)
                obstacles.append([(px, min(py, r["latency_ms_p10"])), (px, max(py, r["latency_ms_p90"]))])
            handles.setdefault(name, Line2D([], [], linestyle="none", marker=marker, markersize=7, color=colour,
                                            label=name))
            anchors.append((px, py))
            texts.append(f"α={r['alpha']:g} δ={r['delta']}")
            colours.append(colour)
        series: dict = {}  # (variant, alpha) -> points in order of delta: shows what delta costs
        for r, px, py in zip(rows, xs, ys):
            series.setdefault((r["variant"], r["alpha"]), []).append((r["delta"], px, py))
        for (variant, _), line in series.items():
            if len(line) > 1:
                line.sort()
                ax.plot([p[1] for p in line], [p[2] for p in line], color=_style(variant, others)[0], alpha=0.35,
                        linewidth=1.0, zorder=1)
                obstacles.append([(p[1], p[2]) for p in line])
                handles.setdefault("series", Line2D([], [], color="#666666", alpha=0.5, linewidth=1.0,
                                                    label="lines join δ = 1, 2, 4…\nat one variant and α"))
        ratio = statistics.median(y / x for x, y in zip(xs, ys))
        low, high = min(xs) / 1.5, max(xs) * 1.5
        ax.plot([low, high], [ratio * low, ratio * high], color="#888888", linestyle=":", linewidth=1.2, zorder=1)
        guide = [(low * (high / low) ** (k / 20), ratio * low * (high / low) ** (k / 20)) for k in range(21)]
        obstacles.append(guide)  # in pieces: a straight line on log axes is not one on linear pixels
        handles.setdefault("guide", Line2D([], [], color="#888888", linestyle=":", linewidth=1.2,
                                           label="time ∝ Mult-Adds\n(slope 1, through the median)"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, high)
        tops = [max(y, r.get("latency_ms_p90") or 0) if key == "latency_ms" else y for r, y in zip(rows, ys)]
        bottoms = [min(y, r.get("latency_ms_p10") or y) if key == "latency_ms" else y for r, y in zip(rows, ys)]
        ax.set_ylim(min(bottoms) / 1.5, max(tops) * 1.5)
        ranges.setdefault(key, []).append((ax, ax.get_xlim(), ax.get_ylim()))
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Mult-Adds per image (log scale)")
        ax.set_ylabel("ms per image (log scale)")
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        jobs.append((ax, anchors, texts, colours, obstacles))
    for group in ranges.values():  # runtimes on the same scales, so their rows compare at a glance
        if len(group) > 1:
            xlim = (min(g[1][0] for g in group), max(g[1][1] for g in group))
            ylim = (min(g[2][0] for g in group), max(g[2][1] for g in group))
            for ax, _, _ in group:
                ax.set_xlim(*xlim)
                ax.set_ylim(*ylim)
    ordered = [h for k, h in handles.items() if k not in ("guide", "series")]
    ordered += [handles[k] for k in ("series", "guide") if k in handles]
    axes[columns - 1].legend(handles=ordered, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                             fontsize=8, frameon=False)
    threads = bench.get("threads")
    layout = "channels-last" if bench.get("channels_last") else "NCHW"
    plural = "" if threads == 1 else "s"
    where = (f"{bench.get('device', '?')} ({bench.get('device_name', '')}), {threads} thread{plural}, "
             f"{layout}, torch {bench.get('torch')}"
             + (f", onnxruntime {bench['onnxruntime']}" if bench.get("onnxruntime") else ""))
    fig.suptitle(title or f"Measured inference time vs Mult-Adds — {where}", fontsize=11)
    noise = latency_noise_note(bench)
    if noise:  # the caveat travels with the figure, not only in the text around it
        add_footnote(fig, noise)
    fig.canvas.draw()
    for ax, anchors, texts, colours, obstacles in jobs:
        _place_labels(ax, fig, anchors, texts, colours, lines=obstacles)
    fig.set_layout_engine("none")  # the labels were placed for this layout: keep it when saving
    return fig


# --- learning curves ---------------------------------------------------------------------------
def load_curves(folders) -> list[dict]:
    """Per-epoch metrics of ``mnetcost train`` run folders: one ``{name, summary, rows}`` per
    folder, ``rows`` from ``metrics.jsonl`` in epoch order. A folder without metrics is an error."""
    curves = []
    for folder in map(Path, folders):
        metrics = folder / "metrics.jsonl"
        if not metrics.is_file():
            raise MnetcostError(f"{folder}: no metrics.jsonl (is it a `mnetcost train --out` folder?)")
        try:
            rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
            summary_path = folder / "summary.json"
            summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MnetcostError(f"{folder}: unreadable run files: {str(exc).splitlines()[0]}") from None
        missing = [key for key in ("epoch", "loss", "train_acc", "test_loss", "test_acc")
                   if any(key not in row for row in rows)]
        if not rows or missing:
            raise MnetcostError(f"{metrics}: no epochs" if not rows else f"{metrics}: rows lack {', '.join(missing)}")
        # a number training could not write as JSON (null, named under "nonfinite") is NaN again here
        rows = [{key: float("nan") if value is None and key in row.get("nonfinite", {}) else value
                 for key, value in row.items()} if isinstance(row, dict) and isinstance(row.get("nonfinite"), dict)
                else row for row in rows]
        curves.append({"name": folder.name, "summary": summary, "rows": sorted(rows, key=lambda r: r["epoch"])})
    return curves


def _seed_of(curve: dict):
    """The run's seed (its summary says it; the folder name ``...-s1`` of a grid run otherwise), or None."""
    seed = curve["summary"].get("seed")
    if seed is None:
        stem, _, tail = curve["name"].rpartition("-s")
        seed = int(tail) if stem and tail.isdigit() else None
    return seed


def curves_title(curves: list[dict]) -> str:
    """What the curves are of: the data, and which seed (one seed of a configuration never passes
    for all of them)."""
    datasets = ", ".join(sorted({str(c["summary"].get("dataset", "?")) for c in curves}))
    seeds = [_seed_of(c) for c in curves]
    if None in seeds:
        return f"Learning curves on {datasets}"
    if len(set(seeds)) == 1:
        return f"Learning curves on {datasets} (seed {seeds[0]} of each configuration)"
    return f"Learning curves on {datasets} (seeds {', '.join(map(str, sorted(set(seeds))))}: one line per run)"


@_literal_text
def draw_curves(curves: list[dict], title: str | None = None):
    """Learning curves: loss (left) and top-1 accuracy (right) against epoch, one colour per
    run, training dashed and test solid; every run's label names its seed, and the title says
    which seeds are shown."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not curves:
        raise MnetcostError("no runs to plot")
    fig, (loss_ax, acc_ax) = new_figure(12, 4.6, columns=2)
    variants = [c["summary"].get("variant", c["name"]) for c in curves]
    by_variant = len(set(variants)) == len(variants)  # else one colour per run
    palette = [style[0] for style in VARIANT_STYLE.values()] + [style[0] for style in OTHER_STYLES]
    others: dict = {}
    handles = []
    for number, (curve, variant) in enumerate(zip(curves, variants)):
        summary, rows = curve["summary"], curve["rows"]
        colour = _style(variant, others)[0] if by_variant else palette[number % len(palette)]
        epochs = [r["epoch"] for r in rows]
        dot = {"marker": "." if len(rows) > 3 else "o", "markersize": 6 if len(rows) > 3 else 7}
        loss_ax.plot(epochs, [r["loss"] for r in rows], color=colour, linestyle="--", markerfacecolor="white", **dot)
        loss_ax.plot(epochs, [r["test_loss"] for r in rows], color=colour, **dot)
        acc_ax.plot(epochs, [100 * r["train_acc"] for r in rows], color=colour, linestyle="--", markerfacecolor="white",
                    **dot)
        acc_ax.plot(epochs, [100 * r["test_acc"] for r in rows], color=colour, **dot)
        what = curve["name"]
        if {"variant", "alpha", "delta"} <= set(summary):
            what = f"{summary['variant']} α={summary['alpha']:g} δ={summary['delta']}"
            if summary.get("mult_adds"):
                what += f" ({summary['mult_adds'] / 1e6:.2f}M Mult-Adds)"
        if _seed_of(curve) is not None:
            what += f", seed {_seed_of(curve)}"
        if len({c["summary"].get("bn_stats", "running") for c in curves}) > 1:  # train --bn-stats differs
            what += f", BatchNorm statistics: {summary.get('bn_stats', 'running')}"
        best = max(rows, key=lambda r: r["test_acc"])
        handles.append(Line2D([], [], color=colour, marker=".", label=f"{what}\nbest test {100 * best['test_acc']:.1f}%"
                                                                    f" (epoch {best['epoch']})"))
    handles += [Line2D([], [], color="#444444", linestyle="--", marker="o", markersize=4, markerfacecolor="white",
                       label="training (running mean over the epoch)"),
                Line2D([], [], color="#444444", marker="o", markersize=4, label="test set, after the epoch (eval mode)")]
    first = min(r["epoch"] for c in curves for r in c["rows"])
    last = max(r["epoch"] for c in curves for r in c["rows"])
    for ax, label in ((loss_ax, "Cross-entropy loss"), (acc_ax, "Top-1 accuracy (%)")):
        ax.set_xlim(first - 0.5, last + 0.5)  # whole epochs, even for a run of one (not 0.945-1.05)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    acc_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
                  frameon=False)
    fig.suptitle(title or curves_title(curves), fontsize=11)
    hidden = hidden_curves_note(curves)
    if hidden:  # a curve drawn exactly over another is invisible: the figure says it is there
        add_footnote(fig, hidden)
    return fig


def hidden_curves_note(curves: list[dict], width: int = 170) -> str:
    """Which runs' training (dashed) or test (solid) curves coincide point for point, so that the one
    drawn last hides the others, named by their run folders; empty when none do."""
    import textwrap

    lines = []
    for kind, style, keys in (("training", "dashed", ("loss", "train_acc")), ("test", "solid", ("test_loss", "test_acc"))):
        groups: dict = {}
        for curve in curves:
            series = tuple((r["epoch"], *(r[key] for key in keys)) for r in curve["rows"])
            groups.setdefault(series, []).append(curve)
        for group in groups.values():
            if len(group) > 1:
                why = ""
                if kind == "training" and len({curve["summary"].get("bn_stats", "running") for curve in group}) > 1:
                    why = " (same seed and recipe: the BatchNorm statistics used for evaluation do not change training)"
                lines += textwrap.wrap(f"The {kind} curves ({style}) of {', '.join(c['name'] for c in group[:-1])} and "
                                       f"{group[-1]['name']} are identical point for point{why}: one line hides the "
                                       "other.", width)
    return "\n".join(lines)
