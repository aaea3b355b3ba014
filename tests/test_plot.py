"""`mnetcost plot`: valid image files, the JSON contract, runs, latency, and bad input."""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from PIL import Image

from mnetcost.cli import main
from mnetcost.calculator.cost import network_cost
from mnetcost.analysis.plot import collect_points, front_of, save_figure
from mnetcost.calculator.resolver import resolve

POINT_KEYS = {"variant", "alpha", "delta", "mult_adds", "params", "accuracy", "source"}


def run(*args):
    return CliRunner().invoke(main, ["plot", *args], catch_exceptions=False)


def write_summary(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": folder.name, "variant": "mp3", "alpha": 0.25, "delta": 2, "classes": 10,
            "resolution": [32, 32], "dataset": "cifar10", "convention": "paper", "params": 433458,
            "mult_adds": 1777408, "best_test_accuracy": 0.9, "final_test_accuracy": 0.85, "epochs": 2}
    data.update(fields)
    (folder / "summary.json").write_text(json.dumps(data))


def test_png_is_valid_and_json_contract(tmp_path):
    out = tmp_path / "pareto.png"
    result = run("--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 1000 and image.size[1] > 600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pareto.png"]  # no temporary file left
    data = json.loads(result.stdout)
    assert set(data) == {"points", "front"}
    assert len(data["points"]) == 19  # Tables 4-6 on CIFAR-10, the repeated baseline once
    assert all(POINT_KEYS <= set(p) and p["source"] == "paper" for p in data["points"])
    assert sum(p["baseline"] for p in data["points"]) == 1
    # the paper's accuracy, mnetcost's costs
    fmp = next(p for p in data["points"] if (p["variant"], p["alpha"], p["delta"]) == ("fmp", 1.0, 2))
    cost = network_cost(resolve("fmp", 1.0, 2, 10, 32))
    assert (fmp["accuracy"], fmp["mult_adds"], fmp["params"]) == (0.889, cost.mult_adds, cost.params)
    points, _ = collect_points("cifar10")
    assert data["front"] == front_of(points)
    assert [p["mult_adds"] for p in data["front"]] == sorted(p["mult_adds"] for p in data["front"])


def test_svg_and_pdf_by_suffix(tmp_path):
    svg, pdf = tmp_path / "p.svg", tmp_path / "p.PDF"
    assert run("--out", str(svg), "--dataset", "cifar100", "--x", "params").exit_code == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert run("--out", str(pdf)).exit_code == 0
    assert pdf.read_bytes()[:5] == b"%PDF-" and b"%%EOF" in pdf.read_bytes()[-32:]


def test_runs_are_added_and_bad_summaries_skipped(tmp_path):
    runs = tmp_path / "runs"
    write_summary(runs / "mine")
    write_summary(runs / "hundred", dataset="cifar100", classes=100)  # belongs to the other figure
    write_summary(runs / "bad", delta=0)
    (runs / "empty").mkdir()
    (runs / "empty" / "summary.json").write_text("")
    out = tmp_path / "runs.png"
    result = run("--out", str(out), "--runs", str(runs), "--format", "json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and any("bad" in w and "'delta'" in w for w in warnings)
    mine = [p for p in json.loads(result.stdout)["points"] if p["source"] != "paper"]
    assert mine == [{"variant": "mp3", "alpha": 0.25, "delta": 2, "classes": 10, "resolution": 32,
                     "mult_adds": 1777408, "params": 433458, "accuracy": 0.9, "source": "mine", "dataset": "cifar10",
                     "baseline": False, "peak_activation_bytes": (32 * 32 * 3 + 32 * 32 * 8) * 4,
                     "weight_bytes": 4 * 421_530, "dtype": "fp32"}]  # conv1 holds the peak; deployed fp32 weights
    # a run beating everything cheaper is on the front
    assert any(p["source"] == "mine" for p in json.loads(result.stdout)["front"])
    only = run("--out", str(tmp_path / "only.png"), "--runs", str(runs), "--no-paper", "--format", "json")
    assert [p["source"] for p in json.loads(only.stdout)["points"]] == ["mine"]


def test_latency_axis_from_a_bench_file(tmp_path):
    latency = tmp_path / "latency.json"
    results = [{"variant": v, "alpha": a, "delta": d, "classes": 10, "resolution": 32, "latency_ms": ms,
                "images_per_s": 1000.0}
               for v, a, d, ms in [("base", 1.0, 1, 3.0), ("fmp", 0.25, 2, 2.0), ("mp3", 0.5, 2, 4.0)]]
    latency.write_text(json.dumps({"schema": "mnetcost.bench/1", "results": results}))
    out = tmp_path / "lat.png"
    result = run("--out", str(out), "--x", "latency", "--latency", str(latency), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["points"]) == 3 and all("latency_ms" in p for p in data["points"])
    assert [(p["variant"], p["latency_ms"]) for p in data["front"]] == [("fmp", 2.0)]  # fastest and most accurate
    assert "no latency measured for 16 of 19 points" in result.stderr  # not silently dropped
    with Image.open(out) as image:
        image.verify()


@pytest.mark.parametrize("args, words", [
    (("--out", "{tmp}/pareto.jpg"), "unknown image type (.jpg)"),
    (("--out", "{tmp}/pareto"), "unknown image type (no suffix)"),
    (("--out", "{tmp}/missing/pareto.png"), "does not exist"),
    (("--out", "{tmp}/p.png", "--x", "latency"), "--x latency needs --latency FILE"),
    (("--out", "{tmp}/p.png", "--x", "latency", "--latency", "{tmp}/none.json"), "no such file"),
    (("--out", "{tmp}/p.png", "--x", "latency", "--latency", "{tmp}/junk.json"), "not a JSON file"),
    (("--out", "{tmp}/p.png", "--runs", "{tmp}/nowhere"), "no such file or directory"),
    (("--out", "{tmp}/p.png", "--no-paper"), "--no-paper leaves nothing to plot"),
    (("--out", "{tmp}/p.png", "--dataset", "imagenet"), "imagenet"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    (tmp_path / "junk.json").write_text("not json")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")

    class Broken:
        def savefig(self, stream, **kwargs):  # a file object, as save_figure writes through one
            stream.write(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_figure(Broken(), target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_cli_import_loads_no_matplotlib_or_torch():
    code = ("import sys, mnetcost.cli, mnetcost.analysis.sweep, mnetcost.analysis.pareto, mnetcost.analysis.plot, mnetcost.nn.latency; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'pandas', 'fvcore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runs_on_other_data_are_named_under_the_figure(tmp_path):
    from mnetcost.analysis.plot import draw
    from mnetcost.analysis.sweep import load_runs

    write_summary(tmp_path / "runs" / "sub", dataset="cifar10-jpeg-subset", best_test_accuracy=0.48)
    write_summary(tmp_path / "runs" / "real", dataset="cifar10", best_test_accuracy=0.7)
    runs, _ = load_runs(tmp_path / "runs")
    points, _ = collect_points("cifar10", runs=runs)
    assert {(p["source"], p["dataset"]) for p in points if p["source"] != "paper"} == {
        ("sub", "cifar10-jpeg-subset"), ("real", "cifar10")}
    figure = draw(points, front_of(points), footnote="paper note")
    text = "\n".join(t.get_text() for t in figure.texts)
    assert "paper note" in text and "Runs trained on cifar10-jpeg-subset, not CIFAR-10" in text
    only_cifar = [p for p in points if p["source"] != "sub"]
    text = "\n".join(t.get_text() for t in draw(only_cifar, front_of(only_cifar)).texts)
    assert "Runs trained on" not in text


# --- the reproduction's figure: runs beside the paper, seeds, rings, an axis break ---------------
def reproduction_like_runs(low=None):
    """Runs placed as the full-CIFAR-10 reproduction's are (three of them the mean of two seeds),
    or, with ``low``, three one-epoch runs far below the paper's points."""
    from mnetcost.analysis.sweep import KnownResult

    def known(name, variant, alpha, delta, accuracies):
        seeds = len(accuracies)
        return KnownResult(source=name + (f" ({seeds} seeds)" if seeds > 1 else ""), variant=variant, alpha=alpha,
                           delta=delta, classes=10, resolution=32, accuracy=sum(accuracies) / seeds,
                           dataset="cifar10-jpeg", seeds=seeds, accuracy_min=min(accuracies) if seeds > 1 else None,
                           accuracy_max=max(accuracies) if seeds > 1 else None)

    if low is not None:
        return [known(f"{v}-1epoch", v, 0.25, 2, [low]) for v in ("base", "mp3", "fmp")]
    return [known("base-a1-d1-s0", "base", 1, 1, [.648]), known("base-a0.25-d2", "base", .25, 2, [.589, .598]),
            known("base-a0.25-d4-s0", "base", .25, 4, [.626]), known("mp3-a0.25-d2", "mp3", .25, 2, [.619, .630]),
            known("mp3-a0.25-d4-s0", "mp3", .25, 4, [.660]), known("fmp-a0.25-d2", "fmp", .25, 2, [.7645, .7652]),
            known("fmp-a0.25-d4-s0", "fmp", .25, 4, [.7918])]


def drawn(runs):
    from mnetcost.analysis.plot import draw

    points, _ = collect_points("cifar10", runs=runs)
    fig = draw(points, front_of(points))
    fig.canvas.draw()
    return fig, fig.axes[0], points


def test_no_label_runs_through_a_baseline_ring():
    """docs/pareto_runs.png: the fmp runs' label ran through the paper baseline's ring."""
    fig, ax, points = drawn(reproduction_like_runs())
    renderer = fig.canvas.get_renderer()
    from matplotlib.collections import PathCollection

    scattered = [c for c in ax.collections if isinstance(c, PathCollection)]
    rings = [c for c in scattered if c.get_sizes()[0] > 200]
    assert len(rings) == 2  # the paper's baseline and the run of it
    labels = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().startswith("α=")]
    assert len(labels) == len(points)
    for ring in rings:
        cx, cy = ring.get_offset_transform().transform(ring.get_offsets())[0]
        radius = (ring.get_sizes()[0] ** 0.5 / 2 + ring.get_linewidths()[0] / 2) * fig.dpi / 72
        for box in labels:
            nearest_x, nearest_y = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
            assert (nearest_x - cx) ** 2 + (nearest_y - cy) ** 2 >= radius ** 2, box


def test_seed_ranges_are_drawn_over_their_markers_and_written_in_the_label():
    """docs/pareto_runs.png: the seed bars hid behind the hollow markers."""
    from matplotlib.collections import LineCollection, PathCollection

    fig, ax, _ = drawn(reproduction_like_runs())
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    markers = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_sizes()[0] < 100]
    assert len(bars) == 3 and all(bar.get_zorder() > max(m.get_zorder() for m in markers) for bar in bars)
    texts = [t.get_text() for t in ax.texts]
    assert "α=0.25 δ=2 (base-a0.25-d2: 2 seeds, 58.9–59.8 %)" in texts
    assert "α=0.25 δ=2 (mp3-a0.25-d2: 2 seeds, 61.9–63.0 %)" in texts


def test_a_broken_accuracy_axis_is_marked_on_both_spines_and_in_the_legend():
    """Runs 42 points below the paper's: the empty stretch is squeezed, and the cut is marked where
    no reader can miss it."""
    fig, ax, _ = drawn(reproduction_like_runs(low=0.28))
    edge = ax.get_yaxis_transform()
    marks = [line for line in ax.lines if line.get_gid() == "axis-break" and line.get_linestyle() == "None"]
    places = sorted((float(line.get_xdata()[0]), round(float(line.get_ydata()[0]), 1)) for line in marks)
    assert places == [(0.0, 30.5), (0.0, 67.7), (1.0, 30.5), (1.0, 67.7)]
    assert all(line.get_transform() == edge and not line.get_clip_on() for line in marks)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("accuracy axis broken: 31–68 %") for t in legend), legend
    assert any("axis broken: 31–68 % (37 points, no data)" in t.get_text() for t in ax.texts)


def test_learning_curves_say_which_seed_they_show():
    """docs/curves_cifar10.png showed one seed of each configuration without saying which."""
    from mnetcost.analysis.plot import draw_curves

    rows = [{"epoch": 1, "loss": 2.1, "train_acc": 0.25, "test_loss": 2.3, "test_acc": 0.3}]
    summary = {"variant": "base", "alpha": 0.25, "delta": 2, "dataset": "cifar10-jpeg"}
    curves = [{"name": "base-a0.25-d2-s0", "summary": {**summary, "seed": 0}, "rows": rows},
              {"name": "fmp-a0.25-d2-s0", "summary": {**summary, "variant": "fmp", "seed": 0}, "rows": rows}]
    fig = draw_curves(curves)
    assert fig._suptitle.get_text() == "Learning curves on cifar10-jpeg (seed 0 of each configuration)"
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[0].startswith("base α=0.25 δ=2, seed 0") and labels[1].startswith("fmp α=0.25 δ=2, seed 0")
    both = draw_curves([curves[0], {**curves[0], "name": "base-a0.25-d2-s1", "summary": {**summary}}])
    assert both._suptitle.get_text() == "Learning curves on cifar10-jpeg (seeds 0, 1: one line per run)"


def leader_lines(fig, ax):
    """Each drawn leader line (display space) with its label's text."""
    fig.canvas.draw()
    lines = []
    for text in ax.texts:
        patch = getattr(text, "arrow_patch", None)
        if patch is None:
            continue
        vertices = patch.get_path().vertices  # in display space once drawn
        lines.append((text.get_text(), tuple(vertices[0]), tuple(vertices[-1])))
    return lines


def front_segments(ax):
    """The dashed step line of the front, as drawn, in display space."""
    from matplotlib.lines import Line2D

    steps = [line for line in ax.get_lines() if isinstance(line, Line2D) and line.get_linestyle() == "--"]
    segments = []
    for line in steps:
        assert line.get_drawstyle() == "steps-post"  # across to the next point's x, then up or down to it
        points = line.get_xydata()
        corners = [tuple(points[0])]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            corners += [(x1, y0), (x1, y1)]
        pixels = [tuple(xy) for xy in ax.transData.transform(corners)]
        segments += list(zip(pixels, pixels[1:]))
    return segments


def crosses(a, b, c, d) -> bool:
    """Whether segments a-b and c-d meet at a point inside both (parametric solution; an independent
    check of the plot's own test)."""
    (ax_, ay), (bx, by), (cx, cy), (dx, dy) = a, b, c, d
    denominator = (bx - ax_) * (dy - cy) - (by - ay) * (dx - cx)
    if denominator == 0:
        return False
    t = ((cx - ax_) * (dy - cy) - (cy - ay) * (dx - cx)) / denominator
    u = ((cx - ax_) * (by - ay) - (cy - ay) * (bx - ax_)) / denominator
    return 1e-9 < t < 1 - 1e-9 and 1e-9 < u < 1 - 1e-9


@pytest.mark.parametrize("runs", ["reproduction", "committed"])
def test_no_leader_line_crosses_the_front(runs, monkeypatch, tmp_path):
    """docs/pareto_runs.png (`mnetcost plot --runs results/cifar10-repro/runs`): base α=0.5 δ=4's
    leader line crossed the front's step on the way to its label."""
    import mnetcost.analysis.plot as plot

    if runs == "committed":  # the documented command, its figure caught as it is saved
        from pathlib import Path

        figures = []
        monkeypatch.setattr(plot, "save_figure", lambda figure, out: figures.append(figure))
        folder = Path(__file__).resolve().parent.parent / "results" / "cifar10-repro" / "runs"
        assert run("--runs", str(folder), "--out", str(tmp_path / "p.png")).exit_code == 0
        fig = figures[0]
    else:
        points, _ = collect_points("cifar10", runs=reproduction_like_runs())
        fig = plot.draw(points, front_of(points))
    ax = fig.axes[0]
    segments = front_segments(ax)
    assert len(segments) > 10
    leaders = leader_lines(fig, ax)
    for text, start, end in leaders:
        for p, q in segments:
            assert not crosses(start, end, p, q), (text, start, end, p, q)


def test_segments_cross_only_inside_both():
    from mnetcost.analysis.plot import _segments_cross

    assert _segments_cross((0, 0), (2, 2), (0, 2), (2, 0))
    assert not _segments_cross((0, 0), (1, 1), (2, 0), (3, 1))  # apart
    assert not _segments_cross((0, 0), (1, 1), (1, 1), (2, 0))  # touching at an end
    assert not _segments_cross((0, 0), (2, 0), (1, 0), (3, 0))  # along each other


def figure_text(fig) -> str:
    return "\n".join(text.get_text() for text in fig.texts)


def test_a_curve_hidden_under_an_identical_one_is_named_in_the_figure():
    """docs/bn_stats.png: the two runs' training curves coincide, so one was invisible, and only the
    page's text said so."""
    from mnetcost.analysis.plot import draw_curves

    training = [(2.054, .2277), (1.781, .3240)]
    summary = {"variant": "mp3", "alpha": 0.25, "delta": 2, "dataset": "cifar10-jpeg-subset"}

    def curve(bn, tests):
        rows = [{"epoch": e + 1, "loss": loss, "train_acc": acc, "test_loss": 2.0 - e / 10, "test_acc": test}
                for e, ((loss, acc), test) in enumerate(zip(training, tests))]
        return {"name": f"mp3-a0.25-d2-{bn}", "summary": {**summary, "bn_stats": bn}, "rows": rows}

    fig = draw_curves([curve("running", [.10, .10]), curve("precise", [.2995, .3533])])
    text = " ".join(figure_text(fig).split())
    assert ("The training curves (dashed) of mp3-a0.25-d2-running and mp3-a0.25-d2-precise are identical point for "
            "point (same seed and recipe: the BatchNorm statistics used for evaluation do not change training): one "
            "line hides the other.") in text
    assert "test curves" not in text  # their test curves differ in accuracy
    apart = draw_curves([curve("running", [.10, .10]), {**curve("precise", [.2995, .3533]), "rows": [
        {**row, "loss": row["loss"] + 0.01} for row in curve("precise", [.2995, .3533])["rows"]]}])
    assert "identical" not in figure_text(apart)


def test_disturbed_latency_timings_are_noted_in_the_figure():
    """docs/latency_runtimes.png: the busy machine was said only in the page's text."""
    from mnetcost.analysis.plot import draw_latency, latency_noise_note

    def row(runtime, alpha, median, p10):
        return {"runtime": runtime, "variant": "base", "alpha": alpha, "delta": 1, "mult_adds": int(alpha * 4e6),
                "latency_ms": median, "latency_ms_p10": p10, "latency_ms_p90": median * 1.2,
                "images_per_s": 1000.0}

    results = [row("torch", 0.25, 3.0, 1.0), row("torch", 0.5, 1.1, 1.0), row("torch", 1.0, 4.0, 2.5),
               row("onnxruntime", 0.25, 1.05, 1.0), row("onnxruntime", 0.5, 1.1, 1.0)]
    bench = {"results": results, "batch_size": 64, "threads": 1, "device": "cpu", "load_average": [6.2, 5.0, 4.1]}
    note = latency_noise_note(bench)
    assert note == ("Disturbed timings: batch-1 medians at least 1.5× their 10th percentile in eager PyTorch 2 of 3 "
                    "(1.6–3.0×) configurations: other processes shared the machine; load average 6.2 when it started. "
                    "Read those medians as upper bounds.")
    assert note in figure_text(draw_latency(bench))
    quiet = {**bench, "results": [r for r in results if r["latency_ms"] < 1.5 * r["latency_ms_p10"]]}
    assert latency_noise_note(quiet) == "" and "Disturbed" not in figure_text(draw_latency(quiet))
