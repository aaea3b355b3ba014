"""The example scripts run as a user runs them, and learning curves are drawn from run folders."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mnetcost.errors import MnetcostError
from mnetcost.analysis.plot import draw_curves, load_curves, save_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def script(name, *args, cwd):
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**os.environ, "MPLBACKEND": "Agg"})


def valid_png(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 800


def test_budget_search_answers_with_the_paper_row(tmp_path):
    result = script("budget_search.py", "--max-mult-adds", "10M", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # CIFAR-10 under 10 M Mult-Adds: fmp α=0.25 δ=2 (82.1 %, 9,576,768 Mult-Adds by the engine)
    first = result.stdout.lower()
    assert "fmp" in first and "82.1" in first and "9,576,768" in result.stdout


SCRIPTS = sorted(path.name for path in EXAMPLES.iterdir() if path.suffix in (".py", ".sbatch"))


def test_every_example_script_is_covered():
    assert SCRIPTS == ["budget_search.py", "fmp_averaging.py", "grid_slurm.sbatch", "learning_curves.py",
                       "paper_tradeoffs.py", "runtime_predictors.py"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_example_has_a_help_that_creates_nothing(tmp_path, name):
    """`python examples/paper_tradeoffs.py --help` used to make a folder named `--help`."""
    if name.endswith(".sbatch"):
        result = subprocess.run(["bash", str(EXAMPLES / name), "--help"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=60)
        shown = "on a SLURM cluster: a job array of workers"  # its own header, not `mnetcost grid --help`
    else:
        result = script(name, "--help", cwd=tmp_path)
        shown = "usage:"
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout and len(result.stdout.splitlines()) > 3
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [n for n in SCRIPTS if n.endswith(".py")])
def test_an_unknown_option_is_a_usage_error_not_a_path(tmp_path, name):
    result = script(name, "--no-such-option", cwd=tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_paper_tradeoffs_writes_three_figures(tmp_path):
    result = script("paper_tradeoffs.py", tmp_path / "figs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "figs").iterdir())
    assert [f.name for f in files] == ["table4.png", "table5.png", "table6.png"]
    assert all(valid_png(f) for f in files)
    assert result.stdout.count("front = ") == 6  # three tables, two datasets


def write_run(folder, variant, losses, accuracies):
    folder.mkdir(parents=True)
    rows = [{"epoch": i + 1, "loss": loss, "train_acc": acc - 0.05, "test_loss": loss + 0.1, "test_acc": acc}
            for i, (loss, acc) in enumerate(zip(losses, accuracies))]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    (folder / "summary.json").write_text(json.dumps({"variant": variant, "alpha": 0.25, "delta": 2,
                                                     "mult_adds": 1777408, "dataset": "tiny"}))


def test_learning_curves_from_run_folders(tmp_path):
    write_run(tmp_path / "a", "mp3", [2.0, 1.5, 1.2], [0.3, 0.4, 0.38])
    write_run(tmp_path / "b", "fmp", [2.1, 1.6], [0.2, 0.5])
    curves = load_curves([tmp_path / "a", tmp_path / "b"])
    assert [c["name"] for c in curves] == ["a", "b"]
    assert [r["epoch"] for r in curves[0]["rows"]] == [1, 2, 3]  # sorted by epoch
    assert valid_png(save_figure(draw_curves(curves), tmp_path / "curves.png"))

    result = script("learning_curves.py", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert valid_png(tmp_path / "c.png")
    assert "40.00%" in result.stdout and "50.00%" in result.stdout


def test_learning_curves_refuse_a_folder_without_metrics(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnetcostError, match="no metrics.jsonl"):
        load_curves([tmp_path / "empty"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(MnetcostError, match="rows lack loss"):
        load_curves([tmp_path / "bad"])


def test_test_time_averaging_on_a_trained_run(tmp_path):
    """A 1-epoch fmp run on tiny official-format data, then its checkpoint at 1 and 3 draws:
    draws=1 reproduces the run's own test accuracy exactly."""
    from cifar_helpers import tiny_official_folder

    data = tiny_official_folder(tmp_path / "data", train=64, test=40)
    out = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "mnetcost", "train", "--variant", "fmp", "--alpha", "0.25",
                            "--dataset", data, "--data-dir", tmp_path / "cache", "--epochs", "1", "--batch-size", "32",
                            "--out", out, "--quiet"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert train.returncode == 0, train.stderr
    sys.path.insert(0, str(EXAMPLES))
    try:
        from fmp_averaging import evaluate_draws
    finally:
        sys.path.remove(str(EXAMPLES))
    rows = evaluate_draws(out, [1, 3], tmp_path / "cache")
    summary = json.loads((out / "summary.json").read_text())
    assert [r["draws"] for r in rows] == [1, 3]
    assert rows[0]["test_acc"] == summary["best_test_accuracy"]
    assert all(abs(r["test_acc"] * 40 - round(r["test_acc"] * 40)) < 1e-9 for r in rows)  # 40 test images


@pytest.mark.parametrize("variant", ["base", "mp3"])
def test_test_time_averaging_refuses_a_run_without_fmp(tmp_path, variant):
    """On a base or mp3 run every draw gives the same predictions: the script says so and exits 2
    (before loading data or a checkpoint), instead of printing identical rows."""
    from dataclasses import asdict

    from mnetcost.nn.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": asdict(TrainConfig(variant=variant, alpha=0.25))}))
    result = script("fmp_averaging.py", run, "--draws", "1,4", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert f"its model ({variant}) has no fractional max pooling layer" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
