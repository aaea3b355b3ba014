"""Run folders that cannot be mixed or lost (issue 11): one process per folder (the lock), resume
refusals that change nothing, checkpoints that name their run, a stored spec, what determinism
depends on, the command-line history, failed starts that leave a usable folder, non-finite
options, unwritable outputs, and precise BatchNorm statistics. Tiny generated data throughout."""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnetcost.files import lock_holder
from mnetcost.nn import training as T
from mnetcost.nn.datasets import load_dataset

from cifar_helpers import tiny_official_folder
from cli_helpers import cli_here

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tiny_official_folder(tmp_path_factory.mktemp("tiny"), train=128, test=32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def cli(*args, cwd=None, env=None, timeout=180, preexec_fn=None):
    return subprocess.run([sys.executable, "-m", "mnetcost", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=timeout,
                          preexec_fn=preexec_fn)


def train_args(data_root, cache, out, *extra, variant="base"):
    return ("train", "--variant", variant, "--alpha", "0.25", "--dataset", data_root, "--data-dir", cache,
            "--batch-size", "32", "--out", out, "--quiet", *extra)


def snapshot(folder: Path) -> dict:
    """Every file of a run (the lock file is no part of it) with its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.name != ".lock"}


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in T.TIMING_KEYS} for row in rows]


def one_error_line(result, code=2) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnetcost: error: "), lines[0]
    return lines[0]


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.fixture(scope="module")
def finished(data_root, cache, tmp_path_factory):
    """Two finished 2-epoch runs at the same alpha and delta: base and mp3 (same tensor shapes)."""
    root = tmp_path_factory.mktemp("finished")
    for variant in ("base", "mp3"):
        result = cli(*train_args(data_root, cache, root / variant, "--epochs", "2", variant=variant))
        assert result.returncode == 0, result.stderr
    return root


# --- 1. one process per run folder -----------------------------------------------------------------
def test_a_second_train_is_refused_while_one_runs_and_kill_9_leaves_no_stale_lock(data_root, cache, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "mnetcost", *map(str, train_args(data_root, cache, out,
                                                                                       "--epochs", "500"))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert (out / "last.pt").exists(), "the first run never saved an epoch"
        run_id = json.loads((out / "config.json").read_text())["run_id"]
        for extra in ((), ("--resume",), ("--resume", "--epochs", "600")):
            line = one_error_line(cli(*train_args(data_root, cache, out, *extra)))
            assert f"--out {out} is in use by pid {first.pid} on " in line and "mnetcost train" in line, line
        stored = json.loads((out / "config.json").read_text())
        assert stored["run_id"] == run_id and len(stored["commands"]) == 1  # the refused ones wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / ".lock").exists() and lock_holder(out) is None  # the kernel dropped the lock
    done = torch.load(out / "last.pt", weights_only=True)["epoch"]
    result = cli(*train_args(data_root, cache, out, "--epochs", str(done + 1), "--resume"))
    assert result.returncode == 0, result.stderr
    assert [row["epoch"] for row in metrics(out)] == list(range(1, done + 2))
    ids = {torch.load(out / name, weights_only=True)["run_id"] for name in ("last.pt", "best.pt")}
    assert ids == {run_id} and json.loads((out / "summary.json").read_text())["run_id"] == run_id


# --- 2. --resume with last.pt missing ---------------------------------------------------------------
def test_resume_without_last_pt_is_refused_and_changes_nothing(finished, data_root, cache, tmp_path):
    out = copy_run(finished / "base", tmp_path / "run")
    (out / "last.pt").unlink()
    before = snapshot(out)
    line = one_error_line(cli_here(*train_args(data_root, cache, out, "--resume", "--epochs", "3")))
    assert f"{out / 'last.pt'} is missing" in line and "metrics.jsonl records 2 epochs" in line
    assert snapshot(out) == before
    assert T.run_state(out) == "complete"  # summary.json still says so; a new run refuses it
    assert "is not empty" in one_error_line(cli_here(*train_args(data_root, cache, out)))


# --- 3. checkpoints name their run; the spec lives in the run ------------------------------------------
def test_a_foreign_checkpoint_with_the_same_shapes_is_refused(finished, data_root, cache, tmp_path):
    base = torch.load(finished / "base" / "last.pt", weights_only=True)
    mp3 = torch.load(finished / "mp3" / "last.pt", weights_only=True)
    assert {k: v.shape for k, v in base["model"].items()} == {k: v.shape for k, v in mp3["model"].items()}
    out = copy_run(finished / "base", tmp_path / "run")
    shutil.copy(finished / "mp3" / "last.pt", out / "last.pt")
    before = snapshot(out)
    line = one_error_line(cli_here(*train_args(data_root, cache, out, "--resume", "--epochs", "3")))
    assert f"{out / 'last.pt'} belongs to another run (run id {mp3['run_id']})" in line
    assert base["run_id"] in line and snapshot(out) == before


def test_a_checkpoint_that_does_not_fit_is_one_line(finished, data_root, cache, tmp_path):
    out = copy_run(finished / "base", tmp_path / "run")
    state = torch.load(out / "last.pt", weights_only=True)
    state["model"]["fc.weight"] = torch.zeros(3, 3)  # its own run id, a foreign shape
    torch.save(state, out / "last.pt")
    before = snapshot(out)
    line = one_error_line(cli_here(*train_args(data_root, cache, out, "--resume", "--epochs", "3")))
    assert f"{out / 'last.pt'} does not fit the model of the run in {out}" in line and "fc.weight" in line
    assert snapshot(out) == before


SPEC = """name = "tiny-test"
[[layers]]
type = "conv"
filters = 32
kernel = 3
stride = 2
[[layers]]
type = "dws"
filters = {width}
stride = 2
[[layers]]
type = "avgpool"
[[layers]]
type = "fc"
"""


def test_the_run_keeps_its_spec_and_resumes_from_anywhere(data_root, cache, tmp_path):
    """A relative spec path, then the file edited and moved and the working directory changed:
    --resume rebuilds the run's own model from the text stored in config.json."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "my.toml").write_text(SPEC.format(width=64))
    out = tmp_path / "run"
    (tmp_path / "tiny").symlink_to(data_root)
    result = cli(*train_args("../tiny", cache, out, "--epochs", "1", variant="my.toml"), cwd=specs)
    assert result.returncode == 0, result.stderr
    stored = json.loads((out / "config.json").read_text())
    assert stored["config"]["variant"] == str(specs / "my.toml")  # absolute, like the dataset
    assert stored["config"]["dataset"] == str(data_root.resolve())
    assert stored["config"]["spec_toml"] == SPEC.format(width=64)
    shapes = {k: v.shape for k, v in torch.load(out / "last.pt", weights_only=True)["model"].items()}

    (specs / "my.toml").write_text(SPEC.format(width=48))  # edited after training
    (specs / "my.toml").rename(specs / "moved.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("train", "--resume", "--out", out, "--epochs", "2", "--quiet", "--data-dir", cache, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    after = torch.load(out / "last.pt", weights_only=True)
    assert after["epoch"] == 2 and {k: v.shape for k, v in after["model"].items()} == shapes
    # the edited spec given explicitly is another model: refused, named as such
    before = snapshot(out)
    line = one_error_line(cli("train", "--resume", "--out", out, "--epochs", "3", "--variant", specs / "moved.toml",
                              "--data-dir", cache, cwd=elsewhere))
    assert "the spec's content differs: " in line and "(run, sha256:" in line and "moved.toml (now, sha256:" in line
    assert snapshot(out) == before


# --- 4 and 5. determinism and history ---------------------------------------------------------------
@pytest.fixture(scope="module")
def two_ways(data_root, cache, tmp_path_factory):
    """Two epochs with --threads 1 straight, and one epoch with --threads 1 then a --resume that
    does not repeat --threads, in an environment whose default is 2 threads (which can change the
    result's last bits); and a control resumed with --threads 2."""
    root = tmp_path_factory.mktemp("two_ways")
    straight = cli(*train_args(data_root, cache, root / "straight", "--epochs", "2", "--threads", "1"))
    assert straight.returncode == 0, straight.stderr
    for name in ("resumed", "control"):
        first = cli(*train_args(data_root, cache, root / name, "--epochs", "1", "--threads", "1"))
        assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", "--out", root / "resumed", "--epochs", "2", "--quiet", "--data-dir", cache,
                  env={"OMP_NUM_THREADS": "2"})
    assert resumed.returncode == 0, resumed.stderr
    control = cli("train", "--resume", "--out", root / "control", "--epochs", "2", "--quiet", "--data-dir", cache,
                  "--threads", "2")
    assert control.returncode == 0, control.stderr
    assert "note: resuming" in control.stderr and "threads 1 -> 2" in control.stderr
    return root


def test_a_resume_without_threads_is_bit_identical_to_an_uninterrupted_run(two_ways):
    a, b = two_ways / "straight", two_ways / "resumed"
    assert without_timing(metrics(a)) == without_timing(metrics(b))
    last_a = torch.load(a / "last.pt", weights_only=True)["model"]
    last_b = torch.load(b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(last_a[key], last_b[key]) for key in last_a)
    stored = json.loads((b / "config.json").read_text())
    assert [entry["threads"] for entry in stored["commands"]] == [1, 1]  # the run's threads, not the default 2
    assert stored["config"]["threads"] == 1
    # the control: a resume given --threads 2 runs and records 2 threads (whether that changes the
    # last bits depends on the CPU's kernels, so it is not asserted)
    control = json.loads((two_ways / "control" / "config.json").read_text())
    assert [entry["threads"] for entry in control["commands"]] == [1, 2]
    for key in ("threads", "torch", "numpy", "python", "machine", "device", "world_size"):
        assert key in stored["determinism"], key
    assert stored["determinism"]["torch"] == torch.__version__ and stored["determinism"]["threads"] == 1


def test_the_command_history_is_kept_and_fewer_epochs_than_done_are_refused(two_ways, data_root, cache):
    out = two_ways / "resumed"
    stored = json.loads((out / "config.json").read_text())
    first, second = stored["commands"]
    assert "--epochs 1" in first["command"] and "--threads 1" in first["command"] and "--resume" not in first["command"]
    assert "--resume" in second["command"] and second["from_epoch"] == 1 and second["epochs"] == 2
    assert stored["command"] == first["command"]  # the original command line stays
    before = snapshot(out)
    line = one_error_line(cli_here("train", "--resume", "--out", out, "--epochs", "1", "--data-dir", cache))
    assert f"--epochs 1: the run in {out} has already done 2 epochs; plan at least 2" in line
    assert snapshot(out) == before
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["epochs"], summary["epochs_planned"]) == (2, 2)


# --- 6. failed starts leave a folder a new run may take -----------------------------------------------
def test_kill_9_during_the_first_config_write_leaves_a_folder_a_new_run_takes(data_root, cache, tmp_path):
    out = tmp_path / "run"
    killer = ("import os, signal\n"
              "from mnetcost.files import atomic_write\n"
              "def write(stream):\n"
              "    stream.write(b'{\"format\": 2, \"con')\n"
              "    stream.flush()\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              f"atomic_write({str(out / 'config.json')!r}, write)\n")
    assert subprocess.run([sys.executable, "-c", killer]).returncode == -signal.SIGKILL
    left = [p.name for p in out.iterdir()]
    assert len(left) == 1 and left[0].startswith(".config.json.") and left[0].endswith(".tmp")
    assert T.run_state(out) == "empty"
    assert "no config.json" in one_error_line(cli_here(*train_args(data_root, cache, out, "--resume")))
    result = cli(*train_args(data_root, cache, out, "--epochs", "1"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted((*T.RUN_FILES, ".lock"))
    assert T.run_state(out) == "complete"


def test_the_leftovers_of_a_start_killed_in_epoch_1_are_taken_by_a_new_run(finished, data_root, cache, tmp_path):
    """kill -9 during epoch 1 leaves config.json (written first) and maybe best.pt, no last.pt."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", ".lock"):
        shutil.copy(finished / "base" / name, out / name)
    assert T.run_state(out) == "failed-start"
    line = one_error_line(cli_here(*train_args(data_root, cache, out, "--resume")))
    assert "no epoch of the run" in line and "start it again as a new run with the same --out" in line
    old_id = json.loads((out / "config.json").read_text())["run_id"]
    result = cli(*train_args(data_root, cache, out, "--epochs", "1"))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["run_id"] != old_id and T.run_state(out) == "complete"


@pytest.fixture(scope="module")
def dataset(data_root, tmp_path_factory):
    full = load_dataset(str(data_root), tmp_path_factory.mktemp("cache"))
    return dataclasses.replace(full, train_x=full.train_x[:64], train_y=full.train_y[:64], test_x=full.test_x[:32],
                               test_y=full.test_y[:32])


def config(**changes) -> T.TrainConfig:
    values = dict(variant="base", alpha=0.25, delta=1, classes=10, resolution=[32, 32], dataset="tiny", epochs=2,
                  batch_size=32, seed=3, device="cpu", bn_batches=2)
    values.update(changes)
    return T.TrainConfig(**values)


def test_failures_say_only_what_is_true(dataset, tmp_path, monkeypatch):
    # interrupted before any epoch ended: nothing kept, nothing left
    out = tmp_path / "fresh"
    with pytest.raises(T.Interrupted) as stopped:
        T.run(config(), dataset, out, quiet=True, stop_after=0)
    assert stopped.value.saved_epoch == 0 and list(out.iterdir()) == []
    # diverged in epoch 2 of a run whose epoch 1 is saved: it says so, and the epoch is there
    out = tmp_path / "run"
    with pytest.raises(T.Interrupted) as stopped:
        T.run(config(), dataset, out, quiet=True, stop_after=1)
    assert stopped.value.saved_epoch == 1
    stored = T.check_out_dir(out, resume=True)

    def diverge(self, **_):
        raise T.Diverged("the training loss became nan at step 6 (try a smaller --lr)")

    monkeypatch.setattr(T.Trainer, "train_epoch", diverge)
    with pytest.raises(T.Diverged) as failed:
        T.run(config(), dataset, out, resume_state=stored, quiet=True)
    assert str(failed.value).endswith(f"; {out} keeps epoch 1 (last.pt); --resume --out {out} continues from it")
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1 and T.run_state(out) == "partial"
    assert [row["epoch"] for row in metrics(out)] == [1]


# --- 7. non-finite numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("option,value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "-inf"), ("--lr", "1e400"),
                                          ("--dropout", "nan"), ("--dropout", "inf"), ("--lr", "NaN")])
def test_non_finite_options_are_refused(option, value, tmp_path):
    out = tmp_path / "run"
    line = one_error_line(cli_here("train", "--alpha", "0.25", option, value, "--out", out))
    assert f"'{option}'" in line and repr(value) in line
    assert not out.exists()


# --- 8. impossible outputs ------------------------------------------------------------------------------
def test_an_out_under_proc_is_one_line(data_root, cache):
    line = one_error_line(cli(*train_args(data_root, cache, "/proc/mnetcost-test/run")))
    assert "--out /proc/mnetcost-test/run: cannot create or lock the run folder" in line


def _file_size_limit(limit: int):
    """A process whose files cannot grow beyond ``limit`` bytes: every write past it fails with
    EFBIG, as a full disk fails with ENOSPC (Python ignores SIGXFSZ)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_keeps_what_is_true(data_root, cache, tmp_path):
    out = tmp_path / "run"
    limited = _file_size_limit(400_000)  # config.json fits, a checkpoint (about 2.7 MB) does not
    line = one_error_line(cli(*train_args(data_root, cache, out, "--epochs", "2"), preexec_fn=limited), code=1)
    assert f"cannot write {out}/best.pt: File too large" in line
    assert line.endswith("no epoch was completed, so nothing of the run was kept") and not out.exists()
    # after a saved epoch: the failing save of epoch 2 leaves epoch 1 as it was
    assert cli(*train_args(data_root, cache, out, "--epochs", "1")).returncode == 0
    line = one_error_line(cli(*train_args(data_root, cache, out, "--epochs", "2", "--resume"), preexec_fn=limited),
                          code=1)
    assert "cannot write" in line and "File too large" in line
    assert line.endswith(f"{out} keeps epoch 1 (last.pt); --resume --out {out} continues from it")
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1 and T.run_state(out) == "partial"
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    result = cli(*train_args(data_root, cache, out, "--epochs", "2", "--resume"))
    assert result.returncode == 0, result.stderr
    assert [row["epoch"] for row in metrics(out)] == [1, 2]


# --- 18. help and messages ------------------------------------------------------------------------------
def test_train_help_documents_epochs_and_seed():
    result = cli("train", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Epochs to train in all" in text and "Random seed of the initial weights" in text
    assert "--bn-stats" in text and "--bn-batches" in text


def test_the_no_runs_warning_names_the_folder(tmp_path):
    from mnetcost.analysis.sweep import load_runs

    runs, warnings = load_runs(tmp_path)
    assert runs == [] and len(warnings) == 1
    assert f"mnetcost train --out {tmp_path}/NAME" in warnings[0] and "{root}" not in warnings[0]


# --- 19. precise BatchNorm statistics ----------------------------------------------------------------------
def test_precise_bn_statistics_are_the_batch_statistics_of_the_current_weights(dataset):
    """With one batch covering the training set, the first BatchNorm layer's running mean and
    variance become exactly the (unbiased) statistics of conv1's output over those images; no
    global random state is consumed and the momentum is restored."""
    from mnetcost.nn.models import build_model

    n = len(dataset.train_y)
    cfg = config(bn_batches=1, batch_size=n)
    torch.manual_seed(0)
    model = build_model("base", alpha=0.25)
    data = T.DeviceData.from_dataset(dataset, torch.device("cpu"))
    trainer = T.Trainer(model, data, cfg, torch.device("cpu"))
    layers = [m for m in trainer.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    rng = torch.get_rng_state()
    assert trainer.recompute_bn_stats(epoch=1) == n
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(layer.momentum == 0.01 and int(layer.num_batches_tracked) == 1 for layer in layers)
    assert all(not torch.allclose(layer.running_var, torch.ones_like(layer.running_var)) for layer in layers)
    with torch.no_grad():
        block = trainer.net.conv1  # pad -> conv -> bn -> relu
        first = block.conv(block.pad(trainer.prepare(data.train_x, augment=False))).double()
    torch.testing.assert_close(layers[0].running_mean.double(), first.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layers[0].running_var.double(), first.var((0, 2, 3), unbiased=True), rtol=1e-4,
                               atol=1e-6)


def test_precise_and_running_runs_train_identically_and_evaluate_differently(dataset, tmp_path):
    precise = T.run(config(bn_stats="precise"), dataset, tmp_path / "precise", quiet=True)
    running = T.run(config(bn_stats="running"), dataset, tmp_path / "running", quiet=True)
    train_keys = ("loss", "train_acc")
    assert [[row[k] for k in train_keys] for row in precise.history] == \
           [[row[k] for k in train_keys] for row in running.history]
    assert [row["test_loss"] for row in precise.history] != [row["test_loss"] for row in running.history]
    a = torch.load(tmp_path / "precise" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "running" / "last.pt", weights_only=True)["model"]
    weights = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(a[k], b[k]) for k in weights)  # the same training, bit for bit
    assert not torch.equal(a["conv1.bn.running_mean"], b["conv1.bn.running_mean"])
    assert (precise.summary["bn_stats"], running.summary["bn_stats"]) == ("precise", "running")
    stored = json.loads((tmp_path / "precise" / "config.json").read_text())
    assert (stored["config"]["bn_stats"], stored["config"]["bn_batches"]) == ("precise", 2)


def test_a_run_of_the_previous_format_resumes_with_its_own_behaviour(finished, data_root, cache, tmp_path):
    """config.json and last.pt as mnetcost wrote them before run ids (format 1): --resume still
    works, keeps the paper's running statistics and grouped depthwise convolutions, and names the
    run from then on."""
    out = copy_run(finished / "base", tmp_path / "run")
    new_keys = ("bn_stats", "bn_batches", "threads", "spec_toml", "depthwise")
    stored = json.loads((out / "config.json").read_text())
    for key in ("run_id", "commands", "determinism", "identity", *new_keys):
        stored.pop(key, None)
        stored["config"].pop(key, None)
    stored["format"] = 1
    (out / "config.json").write_text(json.dumps(stored))
    state = torch.load(out / "last.pt", weights_only=True)
    state.pop("run_id")
    state["format"] = 1
    state["config"] = {k: v for k, v in state["config"].items() if k not in new_keys}
    torch.save(state, out / "last.pt")
    result = cli(*train_args(data_root, cache, out, "--resume", "--epochs", "3", "--format", "json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 3 and summary["bn_stats"] == "running"
    after = json.loads((out / "config.json").read_text())
    assert after["run_id"] == torch.load(out / "last.pt", weights_only=True)["run_id"]
    assert after["config"]["bn_stats"] == "running" and after["config"]["depthwise"] == "grouped"
    assert [entry["command"] for entry in after["commands"]][:1] == [stored["command"]]  # the original, kept
    assert len(after["commands"]) == 2 and "--resume" in after["commands"][1]["command"]
