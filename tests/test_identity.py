"""One judge for "what is this run?" (mnetcost/identity.py): the identity a run records once, and
every command that asks about a run (train --resume, grid, report, export, evaluate) comparing
through it. Tiny generated data and tiny real training runs throughout; legacy run configs
(format 1 and 2, as the committed pilot and the reproduction wrote them) keep working."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnetcost import identity as I
from mnetcost.cli import main

from cifar_helpers import learnable_images, official_files, write_official_archive

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, code=2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def strict_json(text: str):
    """JSON as the standard defines it: NaN and Infinity are not numbers there."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON output"))


def archive(path: Path, seed: int = 0, names=None, rotate: int = 0) -> Path:
    """A tiny official-layout CIFAR-10 archive; ``rotate``: the same images with every label
    moved by ``rotate`` and the class names rotated with it (the same data in another order)."""
    train, test = learnable_images(96, 10, seed), learnable_images(40, 10, seed + 1)
    names = list(names or NAMES)
    if rotate:
        train, test = (train[0], (train[1] + rotate) % 10), (test[0], (test[1] + rotate) % 10)
        names = names[-rotate:] + names[:-rotate]
    return write_official_archive(path, official_files(train, test, class_names=names))


def train(data: Path, out: Path, cache: Path, **options):
    from mnetcost.nn import training as T
    from mnetcost.nn.datasets import load_dataset

    config = T.TrainConfig(**{"variant": "base", "alpha": 0.25, "delta": 1, "dataset": str(data), "epochs": 1,
                              "batch_size": 32, "device": "cpu", "bn_batches": 2, **options})
    T.run(config, load_dataset(str(data), cache), out, quiet=True)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs of one recipe on one archive, seeds 0 and 1 (the same tensor shapes)."""
    pytest.importorskip("torch")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("identity")
    data = archive(root / "data" / "tiny.tar.gz")
    cache = root / "cache"
    try:
        first = train(data, root / "runs" / "s0", cache, epochs=3, lr=3e-3)  # about 40 % on the test images
        second = train(data, root / "runs" / "s1", cache, epochs=3, lr=3e-3, seed=1)
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "data": data, "cache": cache, "s0": first, "s1": second}


def legacy(folder: Path, fmt: int = 2) -> Path:
    """A run folder as mnetcost wrote it before identities: format 2 (the reproduction's runs) or
    format 1 (the committed pilot: no run id, no BatchNorm or spec keys)."""
    stored = json.loads((folder / "config.json").read_text())
    stored.pop("identity", None)
    stored["format"] = fmt
    if fmt == 1:
        for key in ("run_id", "commands", "determinism", "bn_stats", "bn_batches", "threads", "spec_toml", "depthwise"):
            stored.pop(key, None)
            stored["config"].pop(key, None)
    (folder / "config.json").write_text(json.dumps(stored, indent=2))
    if fmt == 1:  # its checkpoints named no run either: they carried the run's options
        import torch

        for name in ("best.pt", "last.pt"):
            state = torch.load(folder / name, weights_only=True)
            state.pop("run_id")
            state["format"] = 1
            state["config"] = {k: v for k, v in state["config"].items()
                               if k not in ("bn_stats", "bn_batches", "spec_toml")}
            torch.save(state, folder / name)
    return folder


# --- the judge itself -------------------------------------------------------------------------------
def test_the_pilot_and_the_reproduction_configs_give_identities():
    pilot = json.loads((ROOT / "results/cifar10-repro/pilot/base-a0.25-d2-running/config.json").read_text())
    identity = I.from_config(pilot)
    assert identity.legacy and identity.run_id is None and identity.seed == 0
    assert identity.recipe == {"variant": "base", "spec": None, "alpha": 0.25, "delta": 2, "classes": 10,
                               "resolution": [32, 32], "epochs": 30, "batch_size": 128, "lr": 0.001,
                               "augment": False, "dropout": 0.1, "fmp_mode": "tf", "test_draws": 1,
                               "bn_stats": "running", "bn_batches": 0, "world_size": 1}
    assert identity.data["source"] == "/work/shared/data/cifar10-jpeg.tar.xz"
    assert identity.data["class_names"] == NAMES and identity.data["fingerprint"] is None
    # the same recipe recorded by a new run: the same recipe, with the gaps said
    new = I.new_identity({**pilot["config"], "bn_stats": "running", "bn_batches": 20},
                         I.data_of(pilot["config"]["dataset"], fingerprint="sha256:" + "0" * 64, class_names=NAMES),
                         run_id="abc")
    check = I.compare(identity, new, "same-recipe")
    assert check.same and "the data's fingerprint (not recorded by the run)" in check.unchecked
    other = I.new_identity({**pilot["config"], "bn_stats": "running", "lr": 0.01}, new.data, run_id="abc")
    assert I.compare(identity, other, "same-recipe").differences == ("lr 0.001 (run) vs 0.01 (now)",)


def test_the_fingerprint_is_the_content_and_cheap(tmp_path):
    one = archive(tmp_path / "a" / "tiny.tar.gz")
    same = tmp_path / "b" / "tiny.tar.gz"
    same.parent.mkdir()
    shutil.copyfile(one, same)
    other = archive(tmp_path / "c" / "tiny.tar.gz", seed=5)
    assert I.data_fingerprint(str(one)) == I.data_fingerprint(str(same)) != I.data_fingerprint(str(other))
    assert I.data_fingerprint(str(one)) == "sha256:" + __import__("hashlib").sha256(one.read_bytes()).hexdigest()
    assert I.data_fingerprint("cifar10") == "official:cifar10" and I.data_fingerprint(str(tmp_path / "no")) is None
    folder = tmp_path / "tree"
    (folder / "train" / "cat").mkdir(parents=True)
    (folder / "train" / "cat" / "1.png").write_bytes(b"12345")
    before = I.data_fingerprint(str(folder))
    assert before.startswith("tree-sha256:")
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    assert I.data_fingerprint(str(moved)) == before
    (moved / "train" / "cat" / "1.png").write_bytes(b"123456")
    assert I.data_fingerprint(str(moved)) != before


def test_class_mapping():
    assert I.class_mapping(NAMES, NAMES, "x") is None
    rotated = NAMES[-1:] + NAMES[:-1]
    assert I.class_mapping(NAMES, rotated, "x") == [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(I.MnetcostError, match="its classes are not the run's"):
        I.class_mapping(NAMES, NAMES[:9] + ["zebra"], "--dataset d")


# --- 1. an output never overwrites a run's own files ------------------------------------------------
@pytest.mark.parametrize("name", ["best.pt", "metrics.jsonl", "config.json"])
def test_export_refuses_an_out_inside_the_runs_own_files(runs, name, tmp_path):
    pytest.importorskip("onnx")
    run = shutil.copytree(runs["s0"], tmp_path / "run")
    before = (run / name).read_bytes()
    line = one_line(cli("export", "--run", run, "--out", run / name, "--data-dir", runs["cache"]))
    assert f"is {name} of the run in" in line
    assert (run / name).read_bytes() == before
    # a fresh model may not overwrite another run's files either
    line = one_line(cli("export", "--variant", "base", "--alpha", "0.25", "--out", run / name))
    assert f"is {name} of the run in" in line and (run / name).read_bytes() == before


def test_no_output_of_any_command_overwrites_a_run_file(runs, tmp_path):
    run = shutil.copytree(runs["s0"], tmp_path / "run")
    before = (run / "summary.json").read_bytes()
    line = one_line(cli("bench", "--variant", "base", "--out", run / "summary.json"))  # before any timing
    assert "is summary.json of the run in" in line and (run / "summary.json").read_bytes() == before


# --- 3. grid: a run of another recipe or data is not "done" -----------------------------------------
@pytest.fixture(scope="module")
def grid_root(runs):
    """A grid folder whose one run is runs["s0"] under the name the grid gives it."""
    root = runs["root"] / "grid"
    shutil.copytree(runs["s0"], root / "tiny" / "base-a0.25-d1-s0")
    return root


def grid_state(root, data, *extra):
    result = CliRunner().invoke(main, ["grid", "--variant", "base", "--alpha", "0.25", "--delta", "1", "--dataset",
                                       str(data), "--batch-size", "32", "--bn-batches", "2", "--epochs", "2",
                                       "--lr", "0.003", "--out", str(root), "--dry-run", "--format", "json",
                                       *map(str, extra)])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    return item


def test_grid_calls_a_run_done_only_for_its_recipe_and_data(runs, grid_root, tmp_path):
    assert grid_state(grid_root, runs["data"])["state"] == "done"
    for extra, words in ((("--lr", "0.01"), "lr 0.003 (run) vs 0.01 (grid)"),
                         (("--augment",), "augment False (run) vs True (grid)"),
                         (("--resolution", "64"), "resolution [32, 32] (run) vs [64, 64] (grid)"),
                         (("--dropout", "0.2"), "dropout 0.1 (run) vs 0.2 (grid)")):
        item = grid_state(grid_root, runs["data"], *extra)
        assert item["state"] == "blocked" and words in item["reason"], item
    # another archive with the same name: the same run folder name, other data
    other = archive(tmp_path / "elsewhere" / "tiny.tar.gz", seed=7)
    item = grid_state(grid_root, other)
    assert item["state"] == "blocked" and "the data:" in item["reason"], item
    # a grid that trains it reports the mismatch as a failure, never as skipped
    result = CliRunner().invoke(main, ["grid", "--variant", "base", "--alpha", "0.25", "--delta", "1", "--dataset",
                                       str(runs["data"]), "--batch-size", "32", "--bn-batches", "2", "--epochs", "2",
                                       "--lr", "0.01", "--out", str(grid_root), "--format", "json"])
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)
    assert outcome["result"] == "failed" and "lr 0.003 (run) vs 0.01 (grid)" in outcome["message"]


def test_grid_counts_a_legacy_run_done(runs, tmp_path):
    root = tmp_path / "grid"
    shutil.copytree(runs["s0"], root / "tiny" / "base-a0.25-d1-s0")
    legacy(root / "tiny" / "base-a0.25-d1-s0", fmt=2)
    assert grid_state(root, runs["data"])["state"] == "done"
    assert "lr" in grid_state(root, runs["data"], "--lr", "0.01")["reason"]


# --- 4. report pools identical recipes only; one seed counts once --------------------------------------
def report(root, *extra, fmt="json"):
    result = CliRunner().invoke(main, ["report", str(root), "--format", fmt, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_report_pools_identical_recipes_and_counts_a_seed_once(runs, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(runs["s0"], root / "a" / "s0")
    shutil.copytree(runs["s1"], root / "a" / "s1")
    shutil.copytree(runs["s0"], root / "a" / "s0-copy")  # a copied folder: the same run
    data = strict_json(report(root).stdout)
    (row,) = data["runs"]
    assert row["seeds"] == [0, 1] and row["runs"] == ["a/s0", "a/s1"]
    assert row["left_out"] == [{"run": "a/s0-copy", "reason": f"a copy of a/s0 (run id "
                                f"{json.loads((runs['s0'] / 'config.json').read_text())['run_id']})"}]
    assert row["best_test_accuracy"]["n"] == 2
    for fmt in ("table", "markdown"):
        assert "left out: a/s0-copy (a copy of a/s0" in report(root, fmt=fmt).stdout
    csv_rows = list(csv.DictReader(io.StringIO(report(root, fmt="csv").stdout)))
    assert csv_rows[0]["left_out"].startswith("a/s0-copy (a copy of a/s0")


def test_report_never_pools_other_data_or_epochs(tmp_path):
    """JSON-only run folders as the reproduction wrote them (format 2): the same configuration
    and seeds on two data files with one name, and with other planned epochs."""
    root = tmp_path / "r"
    for folder, source, epochs, seed in (("a", "/data/one/cifar10-jpeg.tar.xz", 30, 0),
                                         ("b", "/data/two/cifar10-jpeg.tar.xz", 30, 1),
                                         ("c", "/data/one/cifar10-jpeg.tar.xz", 10, 2),
                                         ("d", "/data/one/cifar10-jpeg.tar.xz", 30, 3)):
        write_json_run(root / folder, source=source, epochs=epochs, seed=seed, accuracy=0.5 + seed / 100)
    rows = strict_json(report(root).stdout)["runs"]
    assert sorted(row["runs"] for row in rows) == [["a", "d"], ["b"], ["c"]]
    table = report(root, fmt="markdown").stdout
    assert "/data/two/cifar10-jpeg.tar.xz" in table  # the two data files are told apart


def write_json_run(folder: Path, *, source, epochs, seed, accuracy, seconds=30.0, fmt=2, **options):
    config = {"variant": "base", "alpha": 0.25, "delta": 2, "classes": 10, "resolution": [32, 32],
              "dataset": source, "epochs": epochs, "batch_size": 128, "lr": 0.001, "seed": seed, "augment": False,
              "dropout": 0.1, "world_size": 1, "fmp_mode": "tf", "test_draws": 1, "bn_stats": "precise",
              "bn_batches": 20, **options}
    folder.mkdir(parents=True)
    name = I.archive_stem(source)
    (folder / "config.json").write_text(json.dumps({"format": fmt, **config, "config": config, "class_names": NAMES,
                                                    "dataset_info": {"name": name, "source": source}}))
    rows = [{"epoch": e + 1, "test_acc": accuracy, "seconds": seconds} for e in range(epochs)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "summary.json").write_text(json.dumps({**config, "dataset": name, "best_test_accuracy": accuracy,
                                                     "final_test_accuracy": accuracy, "epochs": epochs,
                                                     "epochs_planned": epochs}))
    return folder


def test_a_new_run_and_a_legacy_run_of_one_recipe_pool(runs, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(runs["s0"], root / "s0")
    legacy(root / "s0", fmt=2)  # as the reproduction's runs are
    shutil.copytree(runs["s1"], root / "s1")
    (row,) = strict_json(report(root).stdout)["runs"]
    assert row["seeds"] == [0, 1]
    assert row["identity_notes"] == [{"note": "pooled by the data's path, not its content (no data fingerprint "
                                              "recorded)", "runs": ["s0"]}]
    assert "no data fingerprint recorded): s0" in report(root, fmt="markdown").stdout


def test_a_legacy_run_resumes_and_records_what_it_lacked(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["s0"], run)
    legacy(run, fmt=2)
    result = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--epochs", "4", "--data-dir",
                                       str(runs["cache"]), "--threads", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "the data's fingerprint (not recorded by the run)" in result.stderr
    stored = json.loads((run / "config.json").read_text())
    identity = I.from_config(stored)
    assert not identity.legacy and identity.data["fingerprint"] == I.data_fingerprint(str(runs["data"]))
    assert "measured when the run was resumed after epoch 3" in identity.note
    assert identity.data["mean"] == I.from_config(json.loads((runs["s0"] / "config.json").read_text())).data["mean"]
    # another dataset under the run's name is refused, and nothing changes
    before = (run / "config.json").read_bytes()
    other = archive(tmp_path / "tiny.tar.gz", seed=9)
    result = CliRunner().invoke(main, ["train", "--resume", "--out", str(run), "--epochs", "5", "--dataset", str(other),
                                       "--data-dir", str(runs["cache"]), "--threads", "1"])
    assert result.exit_code == 2 and "the data:" in result.stderr, result.output
    assert (run / "config.json").read_bytes() == before


def test_the_committed_report_is_deterministic():
    first = report(ROOT / "results/cifar10-repro/pilot", fmt="markdown").stdout
    assert first == report(ROOT / "results/cifar10-repro/pilot", fmt="markdown").stdout


# --- 5, 6, 7, 12: evaluate and export check what they are given against the run ------------------------
def evaluate_json(*args):
    result = cli("evaluate", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_evaluate_maps_classes_in_another_order_and_refuses_other_classes(runs, tmp_path):
    pytest.importorskip("onnx")
    run, cache = runs["s0"], runs["cache"]
    own = evaluate_json("--run", run, "--data-dir", cache)
    rotated = archive(tmp_path / "rotated.tar.gz", rotate=1)
    result = cli("evaluate", "--run", run, "--dataset", rotated, "--data-dir", cache, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["correct"] == own["correct"]  # the same images, labels mapped by name
    assert "another order" in result.stderr
    other = archive(tmp_path / "other.tar.gz", names=NAMES[:9] + ["zebra"])
    line = one_line(cli("evaluate", "--run", run, "--dataset", other, "--data-dir", cache))
    assert "its classes are not the run's" in line and "zebra" in line


def test_a_checkpoint_of_another_run_is_refused(runs, tmp_path):
    pytest.importorskip("onnx")
    run = tmp_path / "run"
    shutil.copytree(runs["s0"], run)
    shutil.copyfile(runs["s1"] / "best.pt", run / "best.pt")
    line = one_line(cli("evaluate", "--run", run, "--data-dir", runs["cache"]))
    assert "belongs to another run" in line
    line = one_line(cli("export", "--run", run, "--out", tmp_path / "m.onnx", "--data-dir", runs["cache"]))
    assert "belongs to another run" in line and not (tmp_path / "m.onnx").exists()


def test_an_onnx_file_of_another_model_or_run_is_refused(runs, tmp_path):
    pytest.importorskip("onnx")
    run, cache = runs["s0"], runs["cache"]
    mp3 = tmp_path / "mp3.onnx"  # the same input and output shapes as the run's base model
    assert cli("export", "--variant", "mp3", "--alpha", "0.25", "--delta", "1", "--out", mp3,
               "--check-images", "2").exit_code == 0
    line = one_line(cli("evaluate", "--run", run, "--onnx", mp3, "--data-dir", cache))
    assert "variant 'base' (run) vs 'mp3' (file)" in line
    theirs = tmp_path / "s1.onnx"
    exported = cli("export", "--run", runs["s1"], "--out", theirs, "--data-dir", cache, "--check-images", "2")
    assert exported.exit_code == 0, exported.output
    line = one_line(cli("evaluate", "--run", run, "--onnx", theirs, "--data-dir", cache))
    assert "run id" in line
    rows = evaluate_json("--run", runs["s1"], "--torch", "--onnx", theirs, "--data-dir", cache)  # its own run's
    assert rows[0]["correct"] == rows[1]["correct"]


def test_a_run_whose_data_moved_evaluates_and_exports_with_dataset(runs, tmp_path):
    pytest.importorskip("onnx")
    cache = runs["cache"]
    data = tmp_path / "data" / "tiny.tar.gz"
    data.parent.mkdir()
    shutil.copyfile(runs["data"], data)
    run = train(data, tmp_path / "run", cache, epochs=1)
    before = evaluate_json("--run", run, "--data-dir", cache)
    moved = tmp_path / "moved.tar.gz"
    data.rename(moved)
    after = evaluate_json("--run", run, "--dataset", moved, "--data-dir", cache)
    assert after["correct"] == before["correct"]
    result = cli("export", "--run", run, "--dataset", moved, "--out", tmp_path / "m.onnx", "--data-dir", cache,
                 "--check-images", "2")
    assert result.exit_code == 0, result.output
    # without --dataset: what is missing, and how to give it
    line = one_line(cli("evaluate", "--run", run, "--data-dir", cache))
    assert "pass --dataset" in line and str(data) in line


def test_a_legacy_run_evaluates_and_exports(runs, tmp_path):
    pytest.importorskip("onnx")
    run = tmp_path / "run"
    shutil.copytree(runs["s0"], run)
    legacy(run, fmt=1)
    own = evaluate_json("--run", runs["s0"], "--data-dir", runs["cache"])
    assert evaluate_json("--run", run, "--data-dir", runs["cache"])["correct"] == own["correct"]
    result = cli("export", "--run", run, "--out", tmp_path / "m.onnx", "--data-dir", runs["cache"],
                 "--check-images", "2")
    assert result.exit_code == 0, result.output


# --- 13. non-finite numbers never leak into JSON ------------------------------------------------------------
def test_report_copes_with_nan_in_run_files(tmp_path):
    root = tmp_path / "r"
    for seed in (0, 1, 2):
        write_json_run(root / f"s{seed}", source="/d/x.tar.gz", epochs=2, seed=seed, accuracy=0.5 + seed / 100,
                       seconds=float("nan") if seed == 1 else 30.0)
    summary = json.loads((root / "s2" / "summary.json").read_text())
    (root / "s2" / "summary.json").write_text(json.dumps({**summary, "best_test_accuracy": float("nan"),
                                                          "final_test_accuracy": float("nan")}))
    (root / "s2" / "metrics.jsonl").write_text('{"epoch": 1, "test_acc": NaN, "seconds": NaN}\n')
    data = strict_json(report(root).stdout)
    (row,) = data["runs"]
    assert row["best_test_accuracy"]["n"] == 2 and row["seconds_per_run"] == 60.0
    table = report(root, fmt="table").stdout
    assert not __import__("re").search(r"\bnan\b", table, flags=__import__("re").I), table
    line = next(line for line in table.splitlines() if line.strip().startswith("x "))
    assert line.split()[4] == "2", line  # the seeds column counts the runs in the mean
    assert "s2 has no finite test accuracy" in table


def test_train_writes_valid_json_when_the_test_loss_is_not_finite(runs, tmp_path):
    """--lr 1000 on the tiny data: the test loss overflows to NaN in epoch 3 (the training loss
    stays finite, so the run goes on)."""
    pytest.importorskip("torch")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = train(runs["data"], tmp_path / "run", runs["cache"], epochs=4, lr=1000.0, bn_batches=20)
    finally:
        torch.set_num_threads(threads)
    rows = [strict_json(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    bad = [row for row in rows if row["test_loss"] is None]
    assert bad and all(row["nonfinite"]["test_loss"] in ("nan", "inf", "-inf") for row in bad)
    assert all(math.isfinite(row["test_loss"]) for row in rows if row["test_loss"] is not None)
    strict_json((out / "summary.json").read_text())
    assert strict_json(report(out).stdout)["runs"][0]["best_test_accuracy"]["n"] == 1


# --- 16. report's CSV is one table of exact numbers -------------------------------------------------------
def test_report_csv_is_one_table_of_exact_numbers(tmp_path):
    root = tmp_path / "r"
    write_json_run(root / "s0", source="/d/x.tar.gz", epochs=2, seed=0, accuracy=0.123456789, seconds=1000.0)
    write_json_run(root / "s1", source="/d/x.tar.gz", epochs=2, seed=1, accuracy=0.5)
    text = report(root, fmt="csv").stdout
    assert "\n\n" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    (row,) = rows
    assert float(row["best_acc_mean"]) == (0.123456789 + 0.5) / 2
    assert float(row["best_acc_min"]) == 0.123456789
    assert int(row["params"]) > 0 and int(row["mult_adds"]) > 0 and int(row["train_activation_bytes"]) > 0
    assert float(row["time_per_run_s"]) == (2000.0 + 60.0) / 2 and row["seeds"] == "0;1"
    assert float(row["paper_acc"]) == 0.702
    claims = list(csv.DictReader(io.StringIO(report(root, "--what", "claims", fmt="csv").stdout)))
    assert claims and {"claim", "a", "b", "difference", "verdict"} <= set(claims[0])


def test_report_json_runs_in_a_fresh_interpreter_without_torch(tmp_path):
    root = tmp_path / "r"
    write_json_run(root / "s0", source="/d/x.tar.gz", epochs=2, seed=0, accuracy=0.5)
    code = ("import sys; from mnetcost.cli import main\n"
            f"try:\n    main(['report', {str(root)!r}, '--format', 'json'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] in ("[]", "['numpy']"), result.stderr
    strict_json(result.stdout)
