"""`mnetcost train` under torchrun: 2 CPU processes with gloo on tiny data, one run folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cifar_helpers import tiny_official_folder

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def torchrun(*args, timeout=180):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "mnetcost", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_two_gloo_processes_train_one_run(tmp_path):
    data = tiny_official_folder(tmp_path / "data", train=251, test=63)  # odd sizes: padded shards
    out = tmp_path / "run"
    common = ("train", "--variant", "base", "--alpha", "0.25", "--dataset", data, "--data-dir", tmp_path / "cache",
              "--batch-size", "32", "--device", "cpu", "--out", out)
    result = torchrun(*common, "--epochs", "2", "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    # only rank 0 printed the summary and wrote the folder
    summary = json.loads(result.stdout)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "best.pt", "config.json", "last.pt", "metrics.jsonl",
                                                      "summary.json"]
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["images"] == 252 for r in rows)  # 126 each: padded to equal shards, as DistributedSampler
    assert rows[1]["loss"] < rows[0]["loss"]
    # metrics are reduced over both ranks: accuracies are multiples of 1/63 (every test image once)
    assert all(abs(r["test_acc"] * 63 - round(r["test_acc"] * 63)) < 1e-9 for r in rows)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert len(checkpoint["rng"]) == 2  # both ranks' random states, for an exact resume

    # resume under torchrun with the same world size; a different one is refused
    result = torchrun(*common, "--epochs", "3", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    single = subprocess.run([sys.executable, "-m", "mnetcost", *map(str, common), "--epochs", "4", "--resume"],
                            capture_output=True, text=True, timeout=120)
    assert single.returncode == 2 and "world_size 2 (run) vs 1 (now)" in single.stderr


@pytest.mark.parametrize("case", ["bad option", "refused in the command", "locked"])
def test_an_error_under_torchrun_is_printed_once_without_a_traceback(tmp_path, case):
    """Every rank meets the same error: rank 0 prints it, once, and every rank exits 0, so that
    torchrun adds no ChildFailedError traceback of its own."""
    out = tmp_path / "run"
    args = ["train", "--alpha", "0.25", "--dataset", tmp_path / "no-such-data", "--out", out, "--device", "cpu"]
    expected = "no such file or folder"
    if case == "bad option":
        args += ["--lr", "nan"]
        expected = "lr must be a finite number"
    elif case == "locked":
        data = tiny_official_folder(tmp_path / "data", train=64, test=16)
        args[args.index(tmp_path / "no-such-data")] = data
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                                   "from mnetcost.files import run_lock\n"
                                   f"with run_lock({str(out)!r}, 'a test holder'):\n"
                                   "    print('held', flush=True); time.sleep(120)"],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        expected = "is in use by pid"
    try:
        result = torchrun(*args, timeout=120)
    finally:
        if case == "locked":
            holder.kill()
            holder.wait()
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnetcost: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == [".lock"]
