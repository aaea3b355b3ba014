"""`mnetcost train` end to end on tiny generated CIFAR-format data: learning, the run folder,
exact resume, refusals that leave runs untouched, NaN, interrupts, augmentation."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnetcost.nn import training as T
from mnetcost.calculator.cost import network_cost
from mnetcost.nn.datasets import load_dataset
from mnetcost.calculator.resolver import resolve

from cifar_helpers import tiny_official_folder
from cli_helpers import cli_here

SUMMARY_KEYS = {"name", "variant", "alpha", "delta", "classes", "resolution", "dataset", "convention", "params",
                "mult_adds", "best_test_accuracy", "final_test_accuracy", "epochs"}
METRIC_KEYS = {"epoch", "loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tiny_official_folder(tmp_path_factory.mktemp("tiny"), train=256, test=64)


@pytest.fixture(scope="module")
def dataset(data_root, tmp_path_factory):
    """A smaller in-process copy (96 train, 32 test images) for the library-level tests."""
    full = load_dataset(str(data_root), tmp_path_factory.mktemp("cache"))
    return dataclasses.replace(full, train_x=full.train_x[:96], train_y=full.train_y[:96], test_x=full.test_x[:32],
                               test_y=full.test_y[:32])


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args, cwd=None, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "mnetcost", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=timeout)


def base_args(data_root, tmp_path, out, *extra):
    return ("train", "--variant", "base", "--alpha", "0.25", "--dataset", data_root, "--data-dir", tmp_path / "cache",
            "--batch-size", "32", "--out", out, "--quiet", *extra)


def snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in T.TIMING_KEYS} for row in rows]


def config(**changes) -> T.TrainConfig:
    values = dict(variant="base", alpha=0.25, delta=1, classes=10, resolution=[32, 32], dataset="tiny", epochs=2,
                  batch_size=32, seed=3, device="cpu")
    values.update(changes)
    return T.TrainConfig(**values)


# --- end to end through the CLI -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    """One 3-epoch CLI run shared by several tests (json summary on stdout)."""
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "run"
    result = cli(*base_args(data_root, tmp, out, "--epochs", "3", "--format", "json"))
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), tmp


def test_cli_run_learns_and_writes_a_complete_folder(trained):
    out, printed, _ = trained
    assert sorted(p.name for p in out.iterdir()) == sorted((*T.RUN_FILES, ".lock"))  # the lock file is no part of it
    assert T.run_state(out) == "complete"
    rows = metrics(out)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(METRIC_KEYS <= set(row) for row in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]  # it learns
    assert rows[-1]["train_acc"] > max(0.2, rows[0]["train_acc"])  # 10 classes: chance is 0.1
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and summary == printed
    cost = network_cost(resolve("base", alpha=0.25, delta=1, classes=10, resolution=32), "paper")
    assert (summary["params"], summary["mult_adds"]) == (cost.params, cost.mult_adds)
    assert isinstance(summary["params"], int) and isinstance(summary["mult_adds"], int)
    assert summary["epochs"] == 3 and summary["convention"] == "paper" and summary["name"] == "run"
    assert summary["best_test_accuracy"] == max(row["test_acc"] for row in rows)
    assert summary["final_test_accuracy"] == rows[-1]["test_acc"]
    assert 0 <= summary["final_test_accuracy"] <= 1
    stored = json.loads((out / "config.json").read_text())
    assert stored["config"]["lr"] == 1e-3 and stored["config"]["dropout"] == 0.1
    assert stored["config"]["augment"] is False and stored["config"]["batch_size"] == 32
    assert stored["config"]["bn_stats"] == "precise" and summary["bn_stats"] == "precise"
    assert summary["bn_batches"] == 20 and summary["run_id"] == stored["run_id"] and len(stored["run_id"]) == 32
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["history"][-1]["test_acc"] == summary["best_test_accuracy"]
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and set(last["model"]) == set(resolve_model_keys())
    assert last["run_id"] == best["run_id"] == stored["run_id"]


def resolve_model_keys():
    from mnetcost.nn.models import build_model

    return build_model("base", alpha=0.25).state_dict().keys()


def test_refusals_leave_the_run_untouched(trained, data_root):
    out, _, tmp = trained
    before = snapshot(out)
    cases = [
        (base_args(data_root, tmp, out), "is not empty"),  # a new run into a used folder
        (base_args(data_root, tmp, out, "--resume", "--alpha", "0.5"), "alpha 0.25 (run) vs 0.5 (now)"),
        (base_args(data_root, tmp, out, "--resume", "--lr", "0.01"), "lr"),
        (base_args(data_root, tmp, out, "--classes", "100"), "is not empty"),
        (base_args(data_root, tmp, out, "--alpha", "0.001"), "alpha is too small"),  # the option, not --out
        (base_args(data_root, tmp, tmp / "new", "--classes", "100"), "--classes 100 contradicts the dataset"),
        (base_args(data_root, tmp, tmp / "new", "--alpha", "0.001"), "alpha is too small"),
        (base_args(tmp / "nothing-here", tmp, tmp / "new"), "no such file or folder"),
        (base_args(data_root, tmp, tmp / "new", "--resume"), "nothing to resume"),
        (("train", "--resume"), "--resume needs --out"),
    ]
    for number, (args, message) in enumerate(cases):
        result = cli(*args) if number == 0 else cli_here(*args)  # one through the real entry point
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert snapshot(out) == before
    assert not (tmp / "new").exists()


def test_resume_continues_and_extends(trained, data_root, tmp_path):
    out, _, tmp = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in out.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    # a finished run: --resume with no new epochs says so in one line and writes nothing
    before = snapshot(copy)
    result = cli("train", "--resume", "--out", copy, "--quiet", "--data-dir", tmp / "nowhere", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"mnetcost train: {copy} is complete (3 of 3 epochs); nothing to train " \
                                    "(raise --epochs to continue it)"
    assert json.loads(result.stdout) == json.loads((out / "summary.json").read_text())
    assert snapshot(copy) == before and not (tmp / "nowhere").exists()  # no data was even looked for
    # more epochs: picks up from epoch 3, options come from config.json
    result = cli("train", "--resume", "--out", copy, "--epochs", "4", "--quiet", "--data-dir", tmp / "cache",
                 "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = metrics(copy)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and without_timing(rows[:3]) == without_timing(metrics(out))
    assert json.loads(result.stdout)["epochs"] == 4


# --- exact resume --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant,augment", [("base", False), ("fmp", True)])
def test_interrupted_and_resumed_equals_uninterrupted(dataset, tmp_path, variant, augment):
    """On CPU with one seed: 2 epochs straight == 1 epoch, Ctrl-C, resume 1 epoch (weights bit for
    bit, optimizer state, metrics), with dropout, FMP draws and augmentation all in play."""
    cfg = config(variant=variant, augment=augment, epochs=2)
    straight = T.run(cfg, dataset, tmp_path / "a", quiet=True)
    with pytest.raises(KeyboardInterrupt):
        T.run(cfg, dataset, tmp_path / "b", quiet=True, stop_after=1)
    assert [r["epoch"] for r in metrics(tmp_path / "b")] == [1]
    stored = T.check_out_dir(tmp_path / "b", resume=True)
    resumed = T.run(cfg, dataset, tmp_path / "b", resume_state=stored, quiet=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert without_timing(straight.history) == without_timing(resumed.history)
    assert without_timing(metrics(tmp_path / "a")) == without_timing(metrics(tmp_path / "b"))


def test_kill_9_mid_epoch_then_resume(data_root, tmp_path):
    """A process killed with SIGKILL leaves a loadable last.pt; --resume finishes the run."""
    out = tmp_path / "run"
    args = base_args(data_root, tmp_path, out, "--epochs", "40")
    process = subprocess.Popen([sys.executable, "-m", "mnetcost", *map(str, args)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 90
    while not (out / "last.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done < 40
    assert [r["epoch"] for r in metrics(out)][-1] in (done, done - 1)  # killed between the two writes at worst
    result = cli(*base_args(data_root, tmp_path, out, "--epochs", str(done + 1), "--resume"))
    assert result.returncode == 0, result.stderr
    assert [r["epoch"] for r in metrics(out)] == list(range(1, done + 2))
    assert json.loads((out / "summary.json").read_text())["epochs"] == done + 1


# --- failures --------------------------------------------------------------------------------------
def test_nan_loss_stops_with_a_clear_message(data_root, tmp_path):
    out = tmp_path / "run"
    result = cli(*base_args(data_root, tmp_path, out, "--lr", "1e30", "--epochs", "3"))
    assert result.returncode == 1, result.stderr
    assert "training loss became nan" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # only what is true: no checkpoint exists, and the folder this run created is gone again
    assert "no epoch was completed, so nothing of the run was kept" in result.stderr
    assert "intact" not in result.stderr and "keeps epoch" not in result.stderr
    assert not out.exists()
    retry = cli(*base_args(data_root, tmp_path, out, "--epochs", "1"))  # the same --out works at once
    assert retry.returncode == 0, retry.stderr


def test_diverged_is_raised_by_the_loop(dataset, tmp_path):
    cfg = config(lr=float("inf"), epochs=1)
    with pytest.raises(T.Diverged, match="nan"):
        T.run(cfg, dataset, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "last.pt").exists()


# --- pieces ----------------------------------------------------------------------------------------
def test_augment_batch_matches_a_loop():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    gen = torch.Generator().manual_seed(11)
    state = gen.get_state()
    out = T.augment_batch(x, gen, pad=2)
    gen.set_state(state)
    dy = torch.randint(0, 5, (2,), generator=gen)
    dx = torch.randint(0, 5, (2,), generator=gen)
    flip = torch.rand((2,), generator=gen) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        crop = padded[i, :, dy[i]:dy[i] + 5, dx[i]:dx[i] + 6]
        expected = crop.flip(2) if flip[i] else crop
        assert torch.equal(out[i], expected)


def test_channel_stats_are_exact():
    images = np.random.default_rng(0).integers(0, 256, size=(5000, 3, 4, 4), dtype=np.uint8)
    mean, std = T.channel_stats(images)
    as_float = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 2, 3)), rtol=1e-9)


def test_shards_cover_the_permutation_once():
    data = T.DeviceData(torch.zeros(10, 3, 2, 2, dtype=torch.uint8), torch.arange(10), torch.zeros(1, 3, 2, 2),
                        torch.zeros(1, dtype=torch.long), torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1))
    shards = []
    for rank in range(3):
        trainer = T.Trainer.__new__(T.Trainer)
        trainer.data, trainer.device = data, torch.device("cpu")
        trainer.dist = T.D.Dist(rank=rank, world=3)
        trainer.order = torch.Generator().manual_seed(5)
        shards.append(trainer.shard())
    assert all(len(s) == 4 for s in shards)  # 10 padded to 12, as DistributedSampler does
    together = torch.cat(shards)
    assert set(together.tolist()) == set(range(10)) and len(together) == 12


# --- FMP options ------------------------------------------------------------------------------------
def test_test_time_averaging_is_the_mean_of_fixed_draws(dataset):
    """evaluate() with test_draws=3 scores the average of 3 fixed FMP draws' probabilities."""
    from mnetcost.nn.fmp import predict_averaged
    from mnetcost.nn.models import build_model

    cfg = config(variant="fmp", test_draws=3)
    torch.manual_seed(0)
    model = build_model("fmp", alpha=0.25, delta=1, fmp_seed=cfg.seed)
    data = T.DeviceData.from_dataset(dataset, torch.device("cpu"))
    trainer = T.Trainer(model, data, cfg, torch.device("cpu"))
    for module in trainer.net.modules():  # BatchNorm statistics of real batches: eval outputs depend on x
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    with torch.no_grad():
        trainer.net.train()(trainer.prepare(data.train_x, augment=False))
    result = trainer.evaluate(batch=7)
    x = trainer.prepare(data.test_x, augment=False)
    with torch.inference_mode():
        # in evaluate()'s batches of 7: the same kernel calls on the same data, so the same argmax
        # (another batch size may run other kernels, whose last bits could break a near tie)
        probs = torch.cat([predict_averaged(trainer.net, x[start:start + 7], 3) for start in range(0, len(x), 7)])
        single = trainer.net(x).softmax(1)
    expected_acc = (probs.argmax(1) == data.test_y).double().mean().item()
    expected_loss = torch.nn.functional.nll_loss(probs.log(), data.test_y).item()
    assert result["test_acc"] == pytest.approx(expected_acc, abs=1e-12)
    assert result["test_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert not torch.allclose(probs, single)  # three draws really differ from the one fixed draw


def test_fmp_options_through_the_cli(data_root, tmp_path):
    out = tmp_path / "run"
    args = ("train", "--variant", "fmp", "--alpha", "0.25", "--dataset", data_root, "--data-dir", tmp_path / "cache",
            "--batch-size", "32", "--out", out, "--quiet", "--epochs", "1")
    result = cli(*args, "--fmp-mode", "torch", "--test-draws", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["fmp_mode"], summary["test_draws"]) == ("torch", 2)
    before = snapshot(out)
    refused = cli_here(*args, "--epochs", "2", "--resume", "--fmp-mode", "tf")
    assert refused.returncode == 2 and "fmp_mode 'torch' (run) vs 'tf' (now)" in refused.stderr
    assert snapshot(out) == before
    assert cli(*args, "--epochs", "2", "--resume").returncode == 0  # the run's own options are kept
    assert json.loads((out / "summary.json").read_text())["fmp_mode"] == "torch"
    no_fmp = cli_here(*base_args(data_root, tmp_path, tmp_path / "other", "--test-draws", "4"))
    assert no_fmp.returncode == 2 and "no fractional max pooling layer" in no_fmp.stderr
    assert not (tmp_path / "other").exists()
