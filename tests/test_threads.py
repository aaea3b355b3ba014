"""The thread policy of `mnetcost train`: an explicit count, then OMP_NUM_THREADS, then the cores other
processes leave idle (sampled from /proc/stat), within the affinity mask and a cgroup quota."""
import os
import subprocess
import sys
import time

import pytest

from mnetcost.nn import threads as P


@pytest.mark.parametrize("cores,busy,processes,expected", [
    (2, 0.0, 1, 2), (2, 1.0, 1, 1), (2, 2.0, 1, 1), (2, 0.4, 1, 2), (2, 0.6, 1, 1), (2, None, 1, 2),
    (16, 3.2, 1, 13), (16, 3.2, 4, 3), (4, 0.0, 8, 1), (1, 0.9, 1, 1), (8, 9.5, 1, 1),
])
def test_threads_for_rounds_the_idle_cores(cores, busy, processes, expected):
    assert P.threads_for(cores, busy, processes) == expected


@pytest.fixture
def no_thread_env(monkeypatch):
    for name in (*P.THREAD_ENV, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(P, "cgroup_cpu_limit", lambda: None)
    monkeypatch.setattr(P, "usable_cpus", lambda: [0, 1, 2, 3])
    return monkeypatch


def test_choice_order_given_then_environment_then_idle_cores(no_thread_env):
    sampled = []
    no_thread_env.setattr(P, "busy_cores", lambda cpus, seconds: sampled.append(cpus) or 1.2)
    assert P.choose_threads(3) == P.ThreadChoice(3, "given", 4)
    no_thread_env.setenv("OMP_NUM_THREADS", "2")
    choice = P.choose_threads()
    assert (choice.threads, choice.source) == (2, "environment") and "OMP_NUM_THREADS" in choice.describe()
    assert not sampled  # neither samples the load
    no_thread_env.delenv("OMP_NUM_THREADS")
    choice = P.choose_threads()
    assert choice == P.ThreadChoice(3, "idle-cores", 4, 1.2) and sampled == [[0, 1, 2, 3]]
    assert choice.describe() == "3 (of 4 cores, 1.2 kept busy by other processes)"
    assert choice.as_dict() == {"threads": 3, "source": "idle-cores", "cores": 4, "busy_cores": 1.2}
    no_thread_env.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: the idle cores are shared by the node's ranks
    assert P.choose_threads().threads == 1
    no_thread_env.setattr(P, "cgroup_cpu_limit", lambda: 2.5)
    no_thread_env.delenv("LOCAL_WORLD_SIZE")
    assert P.choose_threads() == P.ThreadChoice(1, "idle-cores", 2, 1.2)  # 2 cores of quota, 1.2 busy


def test_cgroup_quota_v2_v1_and_unlimited(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert P.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert P.cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert P.cgroup_cpu_limit(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert P.cgroup_cpu_limit(v1) is None
    assert P.cgroup_cpu_limit(tmp_path / "missing") is None


def test_proc_stat_parsing_counts_iowait_as_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 100 5 0 0 0 0 0\n"
                    "cpu0 4 1 2 50 3 0 1 0 0 0\n"
                    "cpu1 6 0 8 50 2 1 0 1 0 0\n"
                    "intr 12345\nctxt 99\n")
    assert P._cpu_times(stat) == {0: (8, 61), 1: (16, 68)}
    assert P.busy_cores([0, 1], 0.0, stat) == 0.0  # nothing changed in between: no busy time
    assert P.busy_cores([0], 0.0, tmp_path / "missing") is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not os.path.exists("/proc/stat"), reason="Linux only")
def test_a_spinning_process_is_seen_as_a_busy_core():
    cpu = P.usable_cpus()[0]
    spinner = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\n"
                                "while True:\n    pass\n"])
    try:
        time.sleep(0.3)
        busy = P.busy_cores([cpu], 0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and 0.5 <= busy <= 1.0
    assert 0.0 <= P.busy_cores(P.usable_cpus(), 0.1) <= len(P.usable_cpus())


def test_apply_sets_torch_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert P.apply(P.ThreadChoice(1, "given", 2)).threads == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_train_without_threads_uses_the_policy_says_so_and_records_it(tmp_path):
    pytest.importorskip("torch")
    import json
    import re

    from cifar_helpers import tiny_official_folder

    data = tiny_official_folder(tmp_path / "data", train=64, test=16)
    env = {key: value for key, value in os.environ.items() if key not in (*P.THREAD_ENV, "LOCAL_WORLD_SIZE")}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "mnetcost", "train", "--variant", "base", "--alpha", "0.25",
                             "--dataset", str(data), "--data-dir", str(tmp_path / "cache"), "--epochs", "1",
                             "--batch-size", "32", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    said = re.search(r"mnetcost train: (\d+) \(of (\d+) cores, ([\d.]+) kept busy by other processes\) CPU threads; "
                     r"--threads N to choose", result.stderr)
    assert said, result.stderr
    threads, cores, busy = int(said[1]), int(said[2]), float(said[3])
    assert threads == P.threads_for(cores, busy) and 1 <= threads <= cores <= len(P.usable_cpus())
    stored = json.loads((out / "config.json").read_text())
    assert stored["config"]["threads"] == stored["determinism"]["threads"] == threads


def test_crosscheck_uses_the_thread_policy(no_thread_env):
    """crosscheck ran torch on every core however busy the machine was (44 s instead of 13.5 s for
    --all at load 6): it uses the cores other processes leave idle, as train, export and bench do."""
    import torch
    from click.testing import CliRunner

    from mnetcost.cli import main

    no_thread_env.setattr(P, "usable_cpus", lambda: [0, 1, 2, 3, 4])
    no_thread_env.setattr(P, "busy_cores", lambda cpus, seconds=P.SAMPLE_SECONDS: 3.2)  # 1.8 idle: 2 threads
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(5)
        result = CliRunner().invoke(main, ["crosscheck", "-v", "base", "-a", "0.25", "--format", "json"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
