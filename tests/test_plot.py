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
