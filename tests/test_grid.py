"""`mnetcost grid` on tiny generated CIFAR-format data: it trains the paper's rows, skips what is
done, resumes what a kill interrupted, splits disjointly into shards (also from SLURM's array
variables), runs on Ray, never lets two workers train one run, and refuses bad input in one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from mnetcost import identity as ID
from mnetcost.analysis import grid as G
from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.resolver import resolve
from mnetcost.cli import main
from mnetcost.errors import MnetcostError
from mnetcost.files import lock_holder, run_lock

from cifar_helpers import tiny_official_folder

ROOT = Path(__file__).resolve().parent.parent
LABEL = "cifar-10-batches-py"  # the tiny data's folder name: the first part of every run's name


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tiny_official_folder(tmp_path_factory.mktemp("tiny"), train=64, test=32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update({"OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def grid(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "mnetcost", "grid", *map(str, args)], capture_output=True, text=True,
                          env=environment(**(env or {})), timeout=timeout)


def common(data_root, cache):
    return ("--dataset", data_root, "--data-dir", cache, "--batch-size", 32, "--threads", 1)


def outcomes(result) -> dict:
    assert result.stdout, result.stderr
    return {item["name"]: item for item in json.loads(result.stdout)}


def invoke(*args, env=None):
    """In-process (no training): dry runs and refusals."""
    return CliRunner(env=env).invoke(main, ["grid", *map(str, args)], catch_exceptions=False)


def dry_run(*args, env=None) -> list[dict]:
    result = invoke(*args, "--dry-run", "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def no_slurm():
    return {name: None for name in os.environ if name.startswith("SLURM_")}


# --- the done-when command: trains, then skips -------------------------------------------------------
@pytest.fixture(scope="module")
def table4(data_root, cache, tmp_path_factory):
    """`grid --paper-tables 4 --dataset PATH --epochs 1`, kept small by --alpha 0.25 (2 runs)."""
    out = tmp_path_factory.mktemp("table4") / "grid"
    result = grid("--paper-tables", 4, "--alpha", 0.25, *common(data_root, cache), "--epochs", 1, "--out", out,
                  "--format", "json")
    assert result.returncode == 0, result.stderr
    return out, outcomes(result), result


def test_paper_table_grid_trains_each_run_into_its_named_folder(table4):
    out, first, result = table4
    names = [f"{LABEL}/base-a0.25-d2-s0", f"{LABEL}/base-a0.25-d4-s0"]
    assert list(first) == names
    for name, delta in zip(names, (2, 4)):
        item = first[name]
        assert (item["result"], item["state"], item["returncode"], item["epochs_done"]) == ("trained", "todo", 0, 1)
        assert (item["variant"], item["alpha"], item["delta"], item["classes"], item["seed"]) == ("base", 0.25, delta,
                                                                                                 10, 0)
        assert item["tables"] == [4] and item["paper_accuracy"] == {2: 0.702, 4: 0.738}[delta]
        summary = json.loads((out / name / "summary.json").read_text())
        assert (summary["epochs"], summary["epochs_planned"], summary["seed"], summary["batch_size"]) == (1, 1, 0, 32)
        cost = network_cost(resolve("base", alpha=0.25, delta=delta, classes=10, resolution=32), "paper")
        assert (summary["params"], summary["mult_adds"]) == (cost.params, cost.mult_adds)
        log = (out / "logs" / f"{name}.log").read_text()
        assert log.startswith("=== ") and "new run:" in log and "exit status 0" in log and "epoch 1/1" in log
    assert "[2/2]" in result.stderr and "trained" in result.stderr


def test_a_second_call_skips_every_complete_run_and_touches_nothing(table4, data_root, cache):
    out, _, _ = table4
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "logs" not in p.parts}
    began = time.perf_counter()
    again = grid("--paper-tables", 4, "--alpha", 0.25, *common(data_root, cache), "--epochs", 1, "--out", out,
                 "--format", "json")
    assert again.returncode == 0, again.stderr
    assert {n: (o["result"], o["state"], o["returncode"]) for n, o in outcomes(again).items()} == {
        f"{LABEL}/base-a0.25-d2-s0": ("skipped", "done", None), f"{LABEL}/base-a0.25-d4-s0": ("skipped", "done", None)}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "logs" not in p.parts} == before
    assert time.perf_counter() - began < 30  # no training subprocess was started


def test_dry_run_lists_configurations_with_their_state(table4, data_root):
    out, _, _ = table4
    listing = dry_run("--paper-tables", 4, "--dataset", data_root, "--batch-size", 32, "--epochs", 1, "--out", out)
    assert len(listing) == 7  # Table 4 of CIFAR-10 has 7 rows (the baseline included)
    assert all({"variant", "alpha", "delta", "classes", "seed", "state"} <= set(item) for item in listing)
    states = {(i["variant"], i["alpha"], i["delta"]): i["state"] for i in listing}
    assert states == {("base", 1.0, 1): "todo", ("base", 1.0, 2): "todo", ("base", 0.5, 2): "todo",
                      ("base", 0.25, 2): "done", ("base", 1.0, 4): "todo", ("base", 0.5, 4): "todo",
                      ("base", 0.25, 4): "done"}
    # asking for more epochs than a complete run has makes it partial again (to be extended)
    more = dry_run("--paper-tables", 4, "--alpha", 0.25, "--dataset", data_root, "--batch-size", 32, "--epochs", 3,
                   "--out", out)
    assert [(i["state"], i["epochs_done"], i["epochs_planned"]) for i in more] == [("partial", 1, 3)] * 2
    # the same grid with another batch size: those runs are not its runs (never "done")
    other = dry_run("--paper-tables", 4, "--alpha", 0.25, "--dataset", data_root, "--epochs", 1, "--out", out)
    assert [i["state"] for i in other] == ["blocked"] * 2
    assert "batch_size 32 (run) vs 128 (grid)" in other[0]["reason"]
    # nothing written by a dry run, even for a new folder
    assert not (out.parent / "fresh").exists()
    dry_run("--paper-tables", 4, "--out", out.parent / "fresh")
    assert not (out.parent / "fresh").exists()


def test_report_reads_the_grid(table4):
    out, first, _ = table4
    result = CliRunner().invoke(main, ["report", str(out), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {(r["variant"], r["alpha"], r["delta"]): r for r in json.loads(result.stdout)["runs"]}
    assert set(rows) == {("base", 0.25, 2), ("base", 0.25, 4)}
    for (variant, alpha, delta), row in rows.items():
        summary = json.loads((out / f"{LABEL}/base-a0.25-d{delta}-s0" / "summary.json").read_text())
        assert row["best_test_accuracy"]["mean"] == summary["best_test_accuracy"]
        assert row["runs"] == [f"{LABEL}/base-a0.25-d{delta}-s0"] and row["seeds"] == [0]
        assert row["paper_accuracy"] == {2: 0.702, 4: 0.738}[delta]


# --- a run killed half-way is resumed ---------------------------------------------------------------
def test_a_killed_grid_resumes_its_partial_run(data_root, cache, tmp_path):
    out = tmp_path / "grid"
    run = out / LABEL / "base-a0.25-d1-s0"
    args = ("--variant", "base", "--alpha", 0.25, "--delta", 1, *common(data_root, cache), "--out", out,
            "--format", "json")
    worker = subprocess.Popen([sys.executable, "-m", "mnetcost", "grid", *map(str, args), "--epochs", "500"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(),
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text().strip():
            assert worker.poll() is None and time.monotonic() < deadline, "the run never finished an epoch"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the grid and its train, as a scheduler's kill would
        worker.wait()
    deadline = time.monotonic() + 30  # the orphaned train dies a moment after the grid is reaped
    while lock_holder(run) is not None:
        assert time.monotonic() < deadline, lock_holder(run)
        time.sleep(0.1)
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 500
    listing = dry_run(*args[:-2], "--epochs", done + 2)
    assert [(i["state"], i["holder"]) for i in listing] == [("partial", None)], listing  # no stale lock
    result = grid(*args, "--epochs", done + 2)
    assert result.returncode == 0, result.stderr
    item = outcomes(result)[f"{LABEL}/base-a0.25-d1-s0"]
    assert (item["state"], item["result"]) == ("partial", "resumed")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, done + 3))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == summary["epochs_planned"] == done + 2
    log = (out / "logs" / LABEL / "base-a0.25-d1-s0.log").read_text()
    assert log.count("=== ") >= 3 and "resume:" in log and "--resume" in log


# --- failures are reported, the rest goes on; runs held by others are left alone -------------------
def test_a_failing_run_is_reported_and_the_others_go_on(data_root, cache, tmp_path):
    out = tmp_path / "grid"
    junk = out / LABEL / "base-a0.25-d1-s0"
    junk.mkdir(parents=True)
    (junk / "notes.txt").write_text("mine")
    result = grid("--variant", "base,mp3", "--alpha", 0.25, "--delta", 1, *common(data_root, cache), "--epochs", 1,
                  "--out", out, "--format", "json")
    assert result.returncode == 1
    found = outcomes(result)
    blocked = found[f"{LABEL}/base-a0.25-d1-s0"]
    assert (blocked["state"], blocked["result"]) == ("blocked", "failed") and "no config.json" in blocked["message"]
    assert found[f"{LABEL}/mp3-a0.25-d1-s0"]["result"] == "trained"
    assert (junk / "notes.txt").read_text() == "mine" and sorted(p.name for p in junk.iterdir()) == ["notes.txt"]
    assert "1 of 2 runs failed" in result.stderr.splitlines()[-1]
    # a run whose train exits with an error: its one-line message is the outcome's
    bad = grid("--variant", "base", "--alpha", 0.25, "--delta", 2, *common(data_root, cache), "--epochs", 1,
               "--resolution", 16, "--out", out, "--format", "json")
    assert bad.returncode == 1
    item = outcomes(bad)[f"{LABEL}/base-a0.25-d2-s0"]
    assert item["result"] == "failed" and item["returncode"] == 2 and "--resolution 16" in item["message"]


def test_a_run_killed_by_a_signal_is_reported_with_the_signal(tmp_path):
    """A train killed by SIGKILL (the kernel out of memory, a scheduler's limit) is reported as
    killed, by which signal, not with its last progress line."""
    fake = tmp_path / "python"  # stands in for `python -m mnetcost train`: one progress line, then killed
    fake.write_text("#!/bin/sh\necho 'epoch 3/30: loss 1.2041, train 55.00%' >&2\nkill -9 $$\n")
    fake.chmod(0o755)
    task = G.make_task(G.Run(G.Configuration("base", 0.25, 2), 0, 10, "cifar10"), tmp_path / "grid", "cifar10", [], 1)
    task.python = str(fake)
    outcome = G.run_one(task)
    assert (outcome["result"], outcome["returncode"]) == ("failed", -9)
    assert outcome["message"].startswith("killed by signal 9 (SIGKILL)") and "epoch 3/30" not in outcome["message"]
    assert "epoch 3/30" in (tmp_path / "grid" / "logs" / "cifar10" / "base-a0.25-d2-s0.log").read_text()


def test_a_run_held_by_another_process_is_taken_not_failed(tmp_path):
    out = tmp_path / "grid"
    folder = out / "cifar10" / "fmp-a0.25-d2-s0"
    with run_lock(folder, purpose="another worker"):
        listing = dry_run("--variant", "fmp", "--alpha", 0.25, "--delta", 2, "--out", out)
        assert listing[0]["state"] == "running" and "another worker" in listing[0]["holder"]
        result = invoke("--variant", "fmp", "--alpha", 0.25, "--delta", 2, "--out", out, "--format", "json")
        assert result.exit_code == 0, result.output
        [item] = json.loads(result.stdout)
        assert (item["state"], item["result"], item["returncode"]) == ("running", "taken", None)
        assert "another worker" in item["message"]
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert not (out / "logs").exists()


def test_two_concurrent_workers_never_train_the_same_run(data_root, cache, tmp_path):
    out = tmp_path / "grid"
    args = ["--variant", "base", "--alpha", 0.25, "--delta", 1, "--seeds", "0,1", *common(data_root, cache),
            "--epochs", 2, "--out", out, "--format", "json", "--quiet"]
    workers = [subprocess.Popen([sys.executable, "-m", "mnetcost", "grid", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=environment()) for _ in range(2)]
    results = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in results]
    names = [f"{LABEL}/base-a0.25-d1-s0", f"{LABEL}/base-a0.25-d1-s1"]
    for name in names:
        seen = [o["result"] for stdout, _ in results for o in json.loads(stdout) if o["name"] == name]
        assert sorted(seen) in (["skipped", "trained"], ["taken", "trained"]), (name, seen)
        rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        assert [row["epoch"] for row in rows] == [1, 2]
        config = json.loads((out / name / "config.json").read_text())
        assert len(config.get("commands", [config.get("command")])) == 1  # one train ever wrote this run


# --- shards ----------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 80), count=st.integers(1, 12))
def test_shards_are_disjoint_complete_balanced_and_deterministic(size, count):
    items = [f"run{i}" for i in range(size)]
    shards = [G.select_shard(items, index, count) for index in range(count)]
    assert sorted(x for shard in shards for x in shard) == sorted(items)  # union = all, nothing twice
    assert sum(len(shard) for shard in shards) == size
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards == [G.select_shard(list(items), index, count) for index in range(count)]


def test_cli_shards_split_the_paper_grid(tmp_path):
    every = dry_run("--paper-tables", "4,5,6", "--seeds", "0,1", "--out", tmp_path / "g", env=no_slurm())
    assert len(every) == 2 * 19 and len({i["name"] for i in every}) == 38
    names = [[i["name"] for i in dry_run("--paper-tables", "4,5,6", "--seeds", "0,1", "--shard", f"{k}/3",
                                         "--out", tmp_path / "g", env=no_slurm())] for k in range(3)]
    assert [len(n) for n in names] == [13, 13, 12]
    assert sorted(sum(names, [])) == sorted(i["name"] for i in every)
    assert not set(names[0]) & set(names[1]) and not set(names[1]) & set(names[2])
    assert names[0] == [i["name"] for i in every][0::3]


@pytest.mark.parametrize("env, shard", [
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "4"}, (1, 4)),  # --array=4-7
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "8"}, (0, 8)),  # MIN absent: 0
    ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2",
      "SLURM_ARRAY_TASK_STEP": "2"}, (2, 4)),  # --array=2-8:2
])
def test_slurm_array_variables_choose_the_shard(env, shard, tmp_path):
    assert G.shard_from_env(env) == shard
    assert G.shard_from_env({}) is None
    with pytest.raises(MnetcostError, match="in ASCII digits"):  # fullwidth or Arabic-Indic digits are refused
        G.shard_from_env({**env, "SLURM_ARRAY_TASK_ID": "５"})
    args = ("--paper-tables", "4,5,6", "--out", tmp_path / "g")
    from_env = dry_run(*args, env={**no_slurm(), **env})
    explicit = dry_run(*args, "--shard", f"{shard[0]}/{shard[1]}", env=no_slurm())
    assert [i["name"] for i in from_env] == [i["name"] for i in explicit]
    # --shard wins over the environment
    assert [i["name"] for i in dry_run(*args, "--shard", "0/1", env={**no_slurm(), **env})] == \
        [i["name"] for i in dry_run(*args, env=no_slurm())]


def test_the_sbatch_example_runs_a_share(tmp_path):
    script = ROOT / "examples" / "grid_slurm.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=" in text and "mnetcost grid --paper-tables 4,5,6" in text
    env = environment(DATA="cifar10", OUT=tmp_path / "g", SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=8,
                      SLURM_ARRAY_TASK_MIN=0, SLURM_CPUS_PER_TASK=2)
    result = subprocess.run(["bash", str(script), "--dry-run", "--format", "json"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    every = dry_run("--paper-tables", "4,5,6", "--seeds", "0,1", "--out", tmp_path / "g", env=no_slurm())
    assert [i["name"] for i in json.loads(result.stdout)] == [i["name"] for i in every][1::8]
    assert not (tmp_path / "g").exists()


# --- Ray ------------------------------------------------------------------------------------------------
def test_ray_executor_trains_on_a_local_instance(data_root, cache, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "grid"
    result = grid("--variant", "mp3", "--alpha", 0.25, "--delta", 1, *common(data_root, cache), "--epochs", 1,
                  "--out", out, "--executor", "ray", "--ray-cpus", 1, "--format", "json")
    assert result.returncode == 0, result.stderr
    item = outcomes(result)[f"{LABEL}/mp3-a0.25-d1-s0"]
    assert (item["result"], item["returncode"], item["epochs_done"]) == ("trained", 0, 1)
    assert "Ray: 1 CPUs" in result.stderr
    summary = json.loads((out / LABEL / "mp3-a0.25-d1-s0" / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["variant"] == "mp3"


def test_ray_executor_without_ray_is_one_line(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from mnetcost.cli import main\n"
            f"main(['grid', '--variant', 'base', '--out', {str(tmp_path / 'g')!r}, '--executor', 'ray'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=environment())
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "needs ray" in result.stderr and "mnetcost[ray]" in result.stderr
    assert not (tmp_path / "g").exists()


# --- states, from the files alone -------------------------------------------------------------------
def write(folder: Path, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name.replace("_", ".", 1) if name != "last_pt" else folder / "last.pt").write_text(
            content if isinstance(content, str) else json.dumps(content))
    return folder


CONFIG = {"config": {"variant": "base", "alpha": 0.25, "delta": 2, "seed": 0, "epochs": 3}}


def test_folder_states(tmp_path):
    assert G.folder_state(tmp_path / "missing").state == "todo"
    scratch = write(tmp_path / "scratch", **{".lock": "", ".summary.json.abc.tmp": "x"})
    assert G.folder_state(scratch).state == "todo"
    started = write(tmp_path / "started", config_json=CONFIG)
    assert (G.folder_state(started).state, G.folder_state(started).epochs_planned) == ("todo", 3)
    partial = write(tmp_path / "partial", config_json=CONFIG, last_pt="x", metrics_jsonl='{"epoch": 1}\n',
                    summary_json={"epochs": 1, "epochs_planned": 3})
    assert G.folder_state(partial) == G.FolderState("partial", 1, 3)
    done = write(tmp_path / "done", config_json=CONFIG, last_pt="x", summary_json={"epochs": 3, "epochs_planned": 3})
    assert G.folder_state(done).state == "done"
    assert G.folder_state(done, epochs=2).state == "done"
    assert G.folder_state(done, epochs=5).state == "partial"  # to be extended
    results_only = write(tmp_path / "results", config_json=CONFIG, summary_json={"epochs": 3, "epochs_planned": 3})
    assert G.folder_state(results_only).state == "done"  # checkpoints removed after the run: still done
    assert G.folder_state(results_only, epochs=5).state == "blocked"  # but it cannot be extended
    junk = write(tmp_path / "junk", notes_txt="x")
    assert G.folder_state(junk).state == "blocked"
    run = G.Run(G.Configuration("base", 0.25, 2), 0, 10, "cifar10")
    expected = G.expected_identity(run, {}, ID.data_of(None))
    assert G.folder_state(partial, expected=expected).state == "partial"
    other = G.folder_state(partial, expected=G.expected_identity(G.Run(run.config, 1, 10, "cifar10"), {},
                                                                 ID.data_of(None)))
    assert other.state == "blocked" and "seed 0 (run) vs 1 (grid)" in other.reason
    wider = G.folder_state(partial, expected=G.expected_identity(run, {"lr": 0.01}, ID.data_of(None)))
    assert wider.state == "partial"  # a config.json that does not record lr: not compared
    (tmp_path / "afile").write_text("x")
    assert G.folder_state(tmp_path / "afile").state == "blocked"


def test_names_and_parsers():
    configs = G.paper_configurations([4, 5, 6], 10)
    assert len(configs) == 19 and configs[0].tables == (4, 5, 6)  # the baseline, listed by all three tables
    runs = G.plan_runs(configs, [0, 1], 10, "cifar10")
    assert runs[0].name == "cifar10/base-a1-d1-s0" and runs[19].name == "cifar10/base-a1-d1-s1"
    assert {r.name for r in runs} >= {"cifar10/fmp-a0.25-d2-s0", "cifar10/mp3-a0.5-d4-s1"}
    assert len(G.paper_configurations([6], 100)) == 7
    assert G.parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    assert G.parse_shard("2/5") == (2, 5)
    assert G.alpha_text(0.25) == "0.25" and G.alpha_text(1.0) == "1" and G.alpha_text(0.1234567) == "0.1234567"
    with pytest.raises(Exception, match="share the run folder"):
        G.plan_runs(G.product_configurations(["a/x.toml", "b/x.toml"], [1.0], [1]), [0], 10, "d")


# --- bad input: one line, exit 2, nothing written ------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (("--paper-tables", "7"), "4, 5 and 6"),
    (("--paper-tables", "4", "--shard", "3/3"), "INDEX must be below COUNT"),
    (("--paper-tables", "4", "--shard", "a/b"), "INDEX/COUNT"),
    (("--paper-tables", "4", "--shard", "１/2"), "INDEX/COUNT in ASCII digits"),  # fullwidth: was shard 1 of 2
    (("--paper-tables", "4", "--shard", "0/٢"), "INDEX/COUNT in ASCII digits"),
    (("--paper-tables", "4", "--shard", "0/2/3"), "INDEX/COUNT"),
    (("--paper-tables", "4", "--seeds", "3-1"), "ends before it starts"),
    (("--paper-tables", "4", "--seeds", "x"), "seed"),
    ((), "which runs?"),
    (("--paper-tables", "4", "--alpha", "0.3"), "no configuration of Table 4"),
    (("--paper-tables", "5", "--variant", "fmp"), "no configuration of Table 5"),
    (("--variant", "nope"), "not one of base, mp3, fmp, mobilenet_v2, mobilenet_v2_mp3, mobilenet_v2_fmp, "
                            "mobilenet_v3_large, mobilenet_v3_large_mp3, mobilenet_v3_large_fmp, mobilenet_v3_small, "
                            "mobilenet_v3_small_mp3, mobilenet_v3_small_fmp and no such spec file"),
    (("--variant", "base", "--dataset", "/no/such/data"), "no such file"),
    (("--variant", "base", "--address", "auto"), "--address is for --executor ray"),
    (("--variant", "base", "--cpus-per-run", "2"), "--cpus-per-run is for --executor ray"),
    (("--paper-tables", "4", "--dataset", "cifar10", "--classes", "100"), "contradicts"),
    (("--variant", "fmp", "--resolution", "8"), "fmp α=1 δ=1: fmp (built-in): row 13"),
    (("--variant", "base", "--epochs", "0"), "--epochs"),
])
def test_bad_input_is_one_line_exit_2(args, words, tmp_path):
    result = invoke(*args, "--out", tmp_path / "g", env=no_slurm())
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert not (tmp_path / "g").exists()


def test_bad_slurm_variables_and_out_file_are_one_line(tmp_path):
    env = {**no_slurm(), "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0"}
    result = invoke("--paper-tables", "4", "--out", tmp_path / "g", env=env)
    assert result.exit_code == 2 and "SLURM_ARRAY_TASK_ID=3" in result.stderr and result.stderr.count("\n") == 1
    (tmp_path / "file").write_text("keep")
    result = invoke("--paper-tables", "4", "--out", tmp_path / "file", env=no_slurm())
    assert result.exit_code == 2 and "is a file" in result.stderr and (tmp_path / "file").read_text() == "keep"
    path_data = tmp_path / "images"
    path_data.mkdir()
    result = invoke("--paper-tables", "4", "--dataset", path_data, "--classes", "7", "--out", tmp_path / "g",
                    env=no_slurm())
    assert result.exit_code == 2 and "10 (CIFAR-10) or 100" in result.stderr
    assert not (tmp_path / "g").exists()


def test_a_run_of_an_edited_spec_is_blocked_naming_the_file_and_the_runs_record(tmp_path):
    """The grid reads specs/p.toml now; the run in the folder stored an older copy: the reason names the
    spec file once, the run's config.json, and both contents (it named the same path twice)."""
    spec = str(tmp_path / "p.toml")
    old, new = ('name = "p"\n[[layers]]\ntype = "fc"\n', 'name = "p"\nclasses = 5\n[[layers]]\ntype = "fc"\n')
    options = {"variant": spec, "alpha": 1.0, "delta": 1, "classes": 10, "resolution": [32, 32], "epochs": 1,
               "batch_size": 32, "lr": 0.001, "augment": False, "dropout": 0.1, "seed": 0, "spec_toml": old}
    folder = tmp_path / "out" / "p-a1-d1-s0"
    folder.mkdir(parents=True)
    data = ID.data_of("cifar10")
    stored = ID.new_identity(options, data, "abc123", spec_toml=old)
    (folder / "config.json").write_text(json.dumps({"config": options, "identity": stored.to_json()}))
    (folder / "last.pt").write_bytes(b"x")
    expected = ID.new_identity(options, data, None, spec_toml=new).to_json()
    state = G.folder_state(folder, expected=expected)
    assert state.state == "blocked"
    assert state.reason == (f"a run of another recipe or data (its record: {folder / 'config.json'}): the spec's "
                            f"content differs: {spec} (grid, {ID.short(ID.spec_digest(new))}) is not the copy the "
                            f"run stored ({ID.short(ID.spec_digest(old))})")
    assert state.reason.count(spec) == 1
