"""The full-CIFAR-10 reproduction rebuilds from git: its run records are committed (never checkpoints),
and the committed report and figure data are exactly what `mnetcost report` / `plot --runs` make of them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPRO = ROOT / "results" / "cifar10-repro"


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return set(out.stdout.split())


def _mnetcost(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mnetcost", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _run_folders(tracked: set[str]) -> set[str]:
    return {str(Path(p).parent) for p in tracked if p.startswith("results/cifar10-repro/runs/")}


def test_run_records_are_committed_and_checkpoints_are_not():
    tracked = _tracked()
    folders = _run_folders(tracked)
    assert folders, "results/cifar10-repro/runs/ holds no committed run"
    for folder in folders:
        assert f"{folder}/config.json" in tracked and f"{folder}/metrics.jsonl" in tracked, folder
    models = [p for p in tracked if p.endswith((".pt", ".pth", ".ckpt", ".onnx", ".tflite"))]
    # The only model files in git are other projects' published ones that the tests read as a user's own file
    # (tests/data/<source>/, each folder with a README naming where its files come from); never a checkpoint
    # or a model this project trained or exported.
    third_party = [p for p in models if p.startswith("tests/data/") and f"{Path(p).parent}/README.md" in tracked]
    assert models == third_party, sorted(set(models) - set(third_party))
    assert not [p for p in models if p.endswith((".pt", ".pth", ".ckpt"))]


def test_the_committed_report_is_what_report_makes_of_the_committed_runs():
    _tracked()
    expected = (REPRO / "report.md").read_text(encoding="utf-8")
    assert _mnetcost("report", "results/cifar10-repro/runs", "--format", "markdown") == expected
    expected_json = json.loads((REPRO / "report.json").read_text(encoding="utf-8"))
    assert json.loads(_mnetcost("report", "results/cifar10-repro/runs", "--format", "json")) == expected_json


def test_the_committed_figure_data_is_what_plot_makes_of_the_committed_runs(tmp_path):
    _tracked()
    expected = json.loads((REPRO / "pareto_cifar10.json").read_text(encoding="utf-8"))
    figure = tmp_path / "pareto.png"
    made = json.loads(_mnetcost("plot", "--runs", "results/cifar10-repro/runs", "--out", str(figure),
                                "--format", "json"))
    assert made == expected
    assert figure.stat().st_size > 0
    assert "results/cifar10-repro/pareto_cifar10.png" in _tracked()
