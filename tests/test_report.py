"""`mnetcost report`: run folders read back (no torch), seeds aggregated, the paper beside them,
the paper's claims checked with verdicts; `plot --runs` averages seeds."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnetcost.analysis import runs as R
from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.resolver import resolve
from mnetcost.cli import main

RECIPE = {"batch_size": 128, "lr": 0.001, "augment": False, "dropout": 0.1, "fmp_mode": "tf", "test_draws": 1}


def write_run(root: Path, variant: str, alpha: float, delta: int, seed: int, accuracies: list[float], *,
              dataset="cifar10", classes=10, planned=None, summary=True, **recipe) -> Path:
    """A run folder as `mnetcost train` writes it (JSON files only; no checkpoints needed)."""
    folder = root / dataset / f"{variant}-a{alpha:g}-d{delta}-s{seed}"
    folder.mkdir(parents=True)
    options = {**RECIPE, **recipe, "variant": variant, "alpha": alpha, "delta": delta, "classes": classes,
               "resolution": [32, 32], "seed": seed, "epochs": planned or len(accuracies)}
    (folder / "config.json").write_text(json.dumps({**options, "config": options,
                                                    "dataset_info": {"name": dataset}}))
    rows = [{"epoch": i + 1, "loss": 1.0, "train_acc": a, "test_loss": 1.0, "test_acc": a, "seconds": 30.0}
            for i, a in enumerate(accuracies)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if summary and accuracies:
        (folder / "summary.json").write_text(json.dumps({
            **options, "name": folder.name, "dataset": dataset, "best_test_accuracy": max(accuracies),
            "final_test_accuracy": accuracies[-1], "epochs": len(accuracies),
            "epochs_planned": planned or len(accuracies), "complete": len(accuracies) >= (planned or len(accuracies)),
            "params": 1, "mult_adds": 1, "train_seconds": 20.0 * len(accuracies)}))
    return folder


def report_json(*args):
    result = CliRunner().invoke(main, ["report", *map(str, args), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result


@pytest.fixture
def grid(tmp_path):
    """fmp > mp3 clearly (2 seeds each); mp3 vs base within the seed range; δ=4 below δ=2 for fmp;
    the baseline with one seed; a partial run; a run with another recipe."""
    root = tmp_path / "grid"
    write_run(root, "fmp", 0.25, 2, 0, [0.70, 0.80])  # every run plans 2 epochs: one recipe, one cohort
    write_run(root, "fmp", 0.25, 2, 1, [0.78, 0.76])
    write_run(root, "mp3", 0.25, 2, 0, [0.68, 0.70])
    write_run(root, "mp3", 0.25, 2, 1, [0.72, 0.74])
    write_run(root, "base", 0.25, 2, 0, [0.69, 0.71])
    write_run(root, "base", 0.25, 2, 1, [0.71, 0.73])
    write_run(root, "fmp", 0.25, 4, 0, [0.65], planned=2)  # partial: 1 of 2 epochs
    write_run(root, "base", 1, 1, 0, [0.75, 0.76])
    write_run(root, "base", 0.25, 2, 0, [0.88, 0.90], dataset="cifar10-aug", augment=True)
    (root / "logs" / "cifar10").mkdir(parents=True)
    (root / "logs" / "cifar10" / "x.log").write_text("not a run")
    return root


def test_groups_aggregate_seeds_with_exact_statistics(grid):
    data, result = report_json(grid)
    rows = {(r["dataset"], r["variant"], r["alpha"], r["delta"]): r for r in data["runs"]}
    assert len(rows) == 6 and not result.stderr
    fmp = rows[("cifar10", "fmp", 0.25, 2)]
    assert fmp["seeds"] == [0, 1] and fmp["runs"] == ["cifar10/fmp-a0.25-d2-s0", "cifar10/fmp-a0.25-d2-s1"]
    best, final = fmp["best_test_accuracy"], fmp["final_test_accuracy"]
    assert best["mean"] == pytest.approx(0.79) and best["std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    assert (best["min"], best["max"], best["n"]) == (0.78, 0.80, 2)
    assert final["mean"] == pytest.approx(0.78) and final["std"] == pytest.approx(math.sqrt(2 * 0.02 ** 2))
    assert fmp["paper_accuracy"] == 0.821 and fmp["best_minus_paper"] == pytest.approx(0.79 - 0.821)
    cost = network_cost(resolve("fmp", alpha=0.25, delta=2, classes=10, resolution=32), "paper")
    assert (fmp["params"], fmp["mult_adds"]) == (cost.params, cost.mult_adds)  # computed, not the summary's 1
    assert fmp["epochs"] == [2] and fmp["seconds_per_run"] == 60.0 and fmp["complete"] == 2
    assert isinstance(fmp["training_activation_bytes"], int) and fmp["training_activation_bytes"] > 0
    partial = rows[("cifar10", "fmp", 0.25, 4)]
    assert (partial["epochs"], partial["epochs_planned"], partial["complete"]) == ([1], [2], 0)
    other = rows[("cifar10-aug", "base", 0.25, 2)]
    assert other["recipe"]["augment"] is True and other["best_test_accuracy"]["mean"] == 0.90
    single = rows[("cifar10", "base", 1.0, 1)]
    assert single["best_test_accuracy"]["std"] is None and single["paper_accuracy"] == 0.767


def test_claims_have_verdicts_backed_by_numbers(grid):
    data, _ = report_json(grid)
    claims = {(c["dataset"], c["a"], c["b"]): c for c in data["claims"]}
    fmp_mp3 = claims[("cifar10", "fmp α=0.25 δ=2", "mp3 α=0.25 δ=2")]
    # fmp 0.79 (0.78-0.80) vs mp3 0.72 (0.70-0.74): +7 points against a range of 4
    assert fmp_mp3["verdict"] == "holds" and fmp_mp3["difference"] == pytest.approx(0.07)
    assert fmp_mp3["margin"] == pytest.approx(0.04) and fmp_mp3["paper_difference"] == pytest.approx(0.821 - 0.712)
    assert "+7.0 points against a seed spread of 4.0" in fmp_mp3["evidence"]
    mp3_base = claims[("cifar10", "mp3 α=0.25 δ=2", "base α=0.25 δ=2")]
    assert mp3_base["verdict"] == "inconclusive" and mp3_base["difference"] == pytest.approx(0.0)
    deltas = claims[("cifar10", "fmp α=0.25 δ=4", "fmp α=0.25 δ=2")]
    # δ=4 (one partial seed, 0.65) vs δ=2 (0.79 ± range 0.02): -14 points, beyond the range
    assert deltas["verdict"] == "fails" and deltas["difference"] == pytest.approx(0.65 - 0.79)
    baseline = claims[("cifar10", "fmp α=0.25 δ=2", "base α=1 δ=1")]
    assert baseline["verdict"] == "holds" and baseline["difference"] == pytest.approx(0.79 - 0.76)
    fmp_cost = network_cost(resolve("fmp", alpha=0.25, delta=2, classes=10, resolution=32), "paper").mult_adds
    base_cost = network_cost(resolve("base", alpha=1, delta=1, classes=10, resolution=32), "paper").mult_adds
    assert (baseline["a_mult_adds"], baseline["b_mult_adds"]) == (fmp_cost, base_cost) and fmp_cost < base_cost
    unmeasured = claims[("cifar10", "mp3 α=1 δ=4", "mp3 α=1 δ=2")]
    assert unmeasured["verdict"] == "not measured" and unmeasured["difference"] is None
    # the run with another recipe is its own cohort: it is never compared with the others
    assert all(c["recipe"]["augment"] is False for c in data["claims"] if c["dataset"] == "cifar10")
    aug = [c for c in data["claims"] if c["dataset"] == "cifar10-aug" and c["verdict"] != "not measured"]
    assert aug == []
    assert {c["verdict"] for c in data["claims"]} <= set(R.VERDICTS)
    # every claim of the paper's CIFAR-10 rows is listed once per cohort: 9 + 12 + 1
    assert sum(1 for c in data["claims"] if c["dataset"] == "cifar10") == 22


def test_verdict_rule():
    two = R.stats([0.80, 0.78])
    assert R.verdict(two, R.stats([0.70, 0.74]))[0] == "holds"
    assert R.verdict(R.stats([0.70, 0.74]), two)[0] == "fails"
    assert R.verdict(two, R.stats([0.77, 0.79]))[0] == "inconclusive"
    assert R.verdict(R.stats([0.5]), R.stats([0.4])) == ("holds", pytest.approx(0.1), 0.0)
    assert R.verdict(None, two) == ("not measured", None, None)
    assert R.stats([]) is None


def test_final_metric_and_every_format(grid):
    data, _ = report_json(grid, "--metric", "final")
    claim = next(c for c in data["claims"] if (c["a"], c["b"]) == ("fmp α=0.25 δ=2", "mp3 α=0.25 δ=2"))
    assert claim["metric"] == "final" and claim["a_accuracy"]["mean"] == pytest.approx(0.78)
    for fmt, marker in (("table", "The paper's claims"), ("markdown", "| data |"), ("csv", "dataset,variant")):
        result = CliRunner().invoke(main, ["report", str(grid), "--format", fmt], catch_exceptions=False)
        assert result.exit_code == 0 and marker in result.stdout, result.output
    table = CliRunner().invoke(main, ["report", str(grid)], catch_exceptions=False).stdout
    assert "79.0 ± 1.4" in table and "82.1" in table and "-3.1" in table  # fmp: mean ± sd, paper, Δ
    assert "augment=True" in table  # recipes differ, so the column shows what differs


def test_unfinished_and_malformed_runs_are_noted(tmp_path):
    root = tmp_path / "g"
    write_run(root, "base", 0.25, 2, 0, [0.5])
    write_run(root, "mp3", 0.25, 2, 0, [], planned=5, summary=False)  # started, no epoch yet
    broken = root / "cifar10" / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    data, result = report_json(root)
    assert "warning: skipping" in result.stderr and "broken" in result.stderr
    assert "no finished epoch" in result.stderr and "mp3-a0.25-d2-s0" in result.stderr
    row = next(r for r in data["runs"] if r["variant"] == "mp3")
    assert row["best_test_accuracy"]["n"] == 0 and row["epochs"] == [0]


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no run folders"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
])
def test_bad_directory_is_one_line_exit_2(tmp_path, make, words):
    result = CliRunner().invoke(main, ["report", str(make(tmp_path))], catch_exceptions=False)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert words in result.stderr


def test_report_imports_no_torch(grid):
    code = ("import sys; from mnetcost.cli import main\n"
            f"try:\n    main(['report', {str(grid)!r}, '--format', 'json'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'fvcore', 'matplotlib') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


# --- plot --runs: the mean over seeds beside the paper ------------------------------------------------
def test_plot_runs_draws_the_mean_over_seeds(grid, tmp_path):
    from mnetcost.analysis.plot import collect_points, draw, front_of
    from mnetcost.analysis.sweep import load_runs

    runs, _ = load_runs(grid)  # the grid layout nests runs two folders deep
    assert len(runs) == 9
    merged, behind = R.mean_over_seeds(runs)
    assert behind == []  # the partial fmp δ=4 run is alone: its own point
    points, _ = collect_points("cifar10", runs=merged)
    fmp = [p for p in points if p["source"] != "paper" and (p["variant"], p["alpha"], p["delta"]) == ("fmp", 0.25, 2)]
    assert len(fmp) == 1
    assert fmp[0]["accuracy"] == pytest.approx(0.79) and fmp[0]["seeds"] == 2
    assert (fmp[0]["accuracy_min"], fmp[0]["accuracy_max"]) == (0.78, 0.80)
    assert fmp[0]["source"] == "fmp-a0.25-d2 (2 seeds)"
    # runs of another recipe are never averaged with these
    base = [p for p in points if p["source"] != "paper" and (p["variant"], p["alpha"], p["delta"]) == ("base", 0.25, 2)]
    assert sorted(p["accuracy"] for p in base) == pytest.approx([0.72, 0.90])
    figure = draw(points, front_of(points))
    bars = [c for c in figure.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 3  # fmp, mp3 and base at alpha 0.25 delta 2: two seeds each
    out = tmp_path / "runs.png"
    result = CliRunner().invoke(main, ["plot", "--runs", str(grid), "--out", str(out), "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    measured = [p for p in json.loads(result.stdout)["points"] if p["source"] != "paper"]
    assert len(measured) == 6 and sum(p.get("seeds", 1) for p in measured) == 9
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_verdict_resting_on_unfinished_runs_says_so(tmp_path):
    """A claim whose runs are still training is marked provisional (table and evidence), and the
    unfinished runs are named with their epochs; a claim on finished runs is not."""
    root = tmp_path / "grid"
    write_run(root, "fmp", 0.25, 2, 0, [0.60, 0.70], planned=30)  # 2 of 30 epochs
    write_run(root, "mp3", 0.25, 2, 0, [0.65] * 30)
    write_run(root, "base", 0.25, 2, 0, [0.60] * 30)
    data, _ = report_json(root)
    claims = {(c["a"], c["b"]): c for c in data["claims"]}
    fmp_mp3 = claims[("fmp α=0.25 δ=2", "mp3 α=0.25 δ=2")]
    assert fmp_mp3["verdict"] == "holds"
    assert fmp_mp3["unfinished"] == ["cifar10/fmp-a0.25-d2-s0 (2 of 30 epochs)"]
    assert "provisional, runs unfinished: cifar10/fmp-a0.25-d2-s0 (2 of 30 epochs)" in fmp_mp3["evidence"]
    mp3_base = claims[("mp3 α=0.25 δ=2", "base α=0.25 δ=2")]
    assert mp3_base["unfinished"] == [] and "provisional" not in mp3_base["evidence"]
    table = CliRunner().invoke(main, ["report", str(root), "--format", "markdown"], catch_exceptions=False).stdout
    assert "holds (unfinished)" in table and table.count("(unfinished)") == 1


def _seeds_behind(root):
    """fmp α=0.25 δ=2: seed 0 finished (best 0.76), seed 1 at 12 of 30 epochs (best 0.66); fmp δ=4:
    seed 0 at 18 of 30 (0.77), seed 1 at 9 of 30 (0.60); mp3 δ=2: both seeds finished."""
    write_run(root, "fmp", 0.25, 2, 0, [0.70] * 29 + [0.76])
    write_run(root, "fmp", 0.25, 2, 1, [0.60] * 11 + [0.66], planned=30)
    write_run(root, "fmp", 0.25, 4, 0, [0.70] * 17 + [0.77], planned=30)
    write_run(root, "fmp", 0.25, 4, 1, [0.55] * 8 + [0.60], planned=30)
    write_run(root, "mp3", 0.25, 2, 0, [0.62] * 30)
    write_run(root, "mp3", 0.25, 2, 1, [0.64] * 30)
    return root


def test_a_seed_behind_the_others_is_shown_apart_not_pooled(tmp_path):
    """A mean pools runs at one epoch count: a seed still training stays out of the mean of the
    seeds that finished (or, while none has, of those furthest on) and is listed with its figures."""
    root = _seeds_behind(tmp_path / "grid")
    data, _ = report_json(root)
    rows = {(r["variant"], r["delta"]): r for r in data["runs"]}
    fmp = rows[("fmp", 2)]
    assert fmp["best_test_accuracy"] == {"mean": 0.76, "std": None, "min": 0.76, "max": 0.76, "n": 1}
    assert fmp["runs"] == ["cifar10/fmp-a0.25-d2-s0", "cifar10/fmp-a0.25-d2-s1"] and fmp["epochs"] == [12, 30]
    assert fmp["not_in_means"] == [{"run": "cifar10/fmp-a0.25-d2-s1", "epochs": 12, "epochs_planned": 30,
                                    "best_test_accuracy": 0.66, "final_test_accuracy": 0.66}]
    assert fmp["seconds_per_run"] == pytest.approx(30 * 30.0)  # the finished seed's time, not a partial one's
    deeper = rows[("fmp", 4)]  # neither finished: the one furthest on counts, provisionally
    assert deeper["best_test_accuracy"]["mean"] == 0.77 and deeper["best_test_accuracy"]["n"] == 1
    assert [item["run"] for item in deeper["not_in_means"]] == ["cifar10/fmp-a0.25-d4-s1"]
    assert rows[("mp3", 2)]["not_in_means"] == [] and rows[("mp3", 2)]["best_test_accuracy"]["n"] == 2
    claims = {(c["a"], c["b"]): c for c in data["claims"]}
    fmp_mp3 = claims[("fmp α=0.25 δ=2", "mp3 α=0.25 δ=2")]
    assert fmp_mp3["verdict"] == "holds" and fmp_mp3["difference"] == pytest.approx(0.76 - 0.63)
    assert fmp_mp3["unfinished"] == [] and "provisional" not in fmp_mp3["evidence"]
    assert fmp_mp3["not_in_means"] == ["cifar10/fmp-a0.25-d2-s1 (12 of 30 epochs)"]
    assert "not in the means (behind the other seeds): cifar10/fmp-a0.25-d2-s1 (12 of 30 epochs)" \
        in fmp_mp3["evidence"]
    deeper_claim = claims[("fmp α=0.25 δ=4", "fmp α=0.25 δ=2")]
    assert deeper_claim["unfinished"] == ["cifar10/fmp-a0.25-d4-s0 (18 of 30 epochs)"]
    assert deeper_claim["difference"] == pytest.approx(0.77 - 0.76)
    table = CliRunner().invoke(main, ["report", str(root), "--format", "markdown"], catch_exceptions=False).stdout
    assert "not in the means, behind the other seeds: cifar10/fmp-a0.25-d2-s1 at 12 of 30 epochs " \
           "(best 66.0 % so far)" in table
    csv_text = CliRunner().invoke(main, ["report", str(root), "--format", "csv"], catch_exceptions=False).stdout
    assert "cifar10/fmp-a0.25-d2-s1 (12 epochs)" in csv_text


def test_plot_leaves_a_seed_behind_out_of_the_mean_and_marks_unfinished_points(tmp_path):
    from mnetcost.analysis.plot import point_label
    from mnetcost.analysis.sweep import load_runs

    root = _seeds_behind(tmp_path / "grid")
    runs, _ = load_runs(root)
    merged, behind = R.mean_over_seeds(runs)
    assert sorted(item.source for item in behind) == ["fmp-a0.25-d2-s1", "fmp-a0.25-d4-s1"]
    out = tmp_path / "runs.png"
    result = CliRunner().invoke(main, ["plot", "--runs", str(root), "--out", str(out), "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ("note: left out of the mean of their seeds, behind the others: fmp-a0.25-d2-s1 (12 of 30 epochs), "
            "fmp-a0.25-d4-s1 (9 of 30 epochs)") in result.stderr
    measured = {(p["variant"], p["delta"]): p for p in json.loads(result.stdout)["points"] if p["source"] != "paper"}
    assert measured[("fmp", 2)]["accuracy"] == 0.76 and "epochs" not in measured[("fmp", 2)]
    assert measured[("mp3", 2)]["seeds"] == 2 and measured[("mp3", 2)]["accuracy"] == pytest.approx(0.63)
    unfinished = measured[("fmp", 4)]
    assert (unfinished["accuracy"], unfinished["epochs"], unfinished["epochs_planned"]) == (0.77, 18, 30)
    assert point_label(unfinished) == "α=0.25 δ=4 (fmp-a0.25-d4-s0, 18 of 30 epochs)"


SPEC_ROWS = ('name = "p"\nin_channels = 3\n[[layers]]\ntype = "conv"\nfilters = {width}\nkernel = 3\nstride = 2\n'
             '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')


def test_a_spec_file_run_is_priced_and_matched_by_the_spec_it_trained(tmp_path, monkeypatch):
    """Train specs/p.toml, edit it, train again: each run is priced from the spec text its config.json
    stores (also once the file is gone), and `sweep --runs` attaches a run's accuracy to the variant
    whose content it trained, whatever path names it."""
    from mnetcost import identity as ID

    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "p.toml"
    root = tmp_path / "runs"
    folders = []
    for seed, width in ((0, 16), (1, 32)):
        text = SPEC_ROWS.format(width=width)
        spec.write_text(text)
        folder = write_run(root, "specs/p.toml", 1.0, 1, seed, [0.5 + seed / 10])
        config = json.loads((folder / "config.json").read_text())
        config["config"]["spec_toml"] = text  # as `mnetcost train` stores it
        config["identity"] = ID.new_identity(config["config"], ID.data_of("cifar10"), f"run{seed}",
                                             spec_toml=text).to_json()
        (folder / "config.json").write_text(json.dumps(config))
        folders.append(folder)
    # each run's own network: 3*16*9 + 4*16 + 16*10 + 10 = 666 and 3*32*9 + 4*32 + 32*10 + 10 = 1,322 params
    expected = {0.5: 666, 0.6: 1_322}
    for width, params in ((16, 666), (32, 1_322)):
        (tmp_path / "w.toml").write_text(SPEC_ROWS.format(width=width))
        assert network_cost(resolve(str(tmp_path / "w.toml"), 1.0, 1, 10, 32), "paper").params == params
    data, _ = report_json(root)
    assert {r["best_test_accuracy"]["mean"]: r["params"] for r in data["runs"]} == expected
    spec.unlink()  # moved away: still priced from the stored text
    data, _ = report_json(root)
    assert {r["best_test_accuracy"]["mean"]: r["params"] for r in data["runs"]} == expected
    # sweep --runs: by content, under any path; the edited file does not take the first run's accuracy
    (tmp_path / "elsewhere.toml").write_text(SPEC_ROWS.format(width=16))
    spec.write_text(SPEC_ROWS.format(width=32))
    for variant, accuracy in (("elsewhere.toml", 0.5), (str(tmp_path / "elsewhere.toml"), 0.5),
                              ("specs/p.toml", 0.6), (str(spec), 0.6)):
        result = CliRunner().invoke(main, ["sweep", "-v", variant, "-a", "1", "-d", "1", "--runs", str(root),
                                           "--format", "json"], catch_exceptions=False)
        rows = json.loads(result.stdout)
        assert [(r["accuracy"], r["params"]) for r in rows] == [(accuracy, expected[accuracy])], variant
