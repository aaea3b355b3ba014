"""`mnetcost bench`: contract and plumbing only (one tiny configuration, few passes; timings are
never asserted)."""
import json

import pytest
from click.testing import CliRunner

from mnetcost.cli import main
from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.resolver import resolve

torch = pytest.importorskip("torch")
TINY = ["--variant", "base", "--alpha", "0.25", "--delta", "1", "--warmup", "1", "--repeats", "2",
        "--batch-size", "4", "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_json_out_and_plot_use_it(tmp_path, keep_threads):
    out, figure = tmp_path / "latency.json", tmp_path / "latency.png"
    result = run(*TINY, "--threads", "1", "--out", str(out), "--plot", str(figure), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(out.read_text())
    assert data["threads"] == 1 and data["device"] == "cpu" and data["batch_size"] == 4 and data["repeats"] == 2
    (record,) = data["results"]
    cost = network_cost(resolve("base", 0.25, 1))
    assert (record["variant"], record["alpha"], record["delta"], record["classes"], record["resolution"]) == \
        ("base", 0.25, 1, 10, 32)
    assert (record["params"], record["mult_adds"]) == (cost.params, cost.mult_adds)
    for key in ("latency_ms", "latency_ms_p10", "latency_ms_p90", "images_per_s", "batch_ms", "gmacs_per_s"):
        assert record[key] > 0
    assert record["latency_ms_p10"] <= record["latency_ms"] <= record["latency_ms_p90"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latency.json", "latency.png"]
    plotted = CliRunner().invoke(main, ["plot", "--x", "latency", "--latency", str(out), "--out",
                                        str(tmp_path / "acc.png"), "--format", "json"], catch_exceptions=False)
    # base α=0.25 δ=1 has no accuracy in the paper: nothing to plot, said in one line
    assert plotted.exit_code == 2 and "nothing to plot" in plotted.stderr


def test_bench_without_threads_uses_trains_thread_policy_and_records_it(monkeypatch, keep_threads):
    """On a machine whose other processes keep cores busy, torch's default (every core) stalls at
    each OpenMP barrier: bench uses the idle cores, as train does, and says so."""
    from mnetcost.nn import threads as P

    for name in P.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(P, "usable_cpus", lambda: [0, 1, 2, 3, 4])
    monkeypatch.setattr(P, "cgroup_cpu_limit", lambda: None)
    monkeypatch.setattr(P, "busy_cores", lambda cpus, seconds=P.SAMPLE_SECONDS: 2.2)  # 2.8 idle: 3 threads
    result = run(*TINY, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["threads"] == 3 and data["thread_policy"] == {"threads": 3, "source": "idle-cores", "cores": 5,
                                                              "busy_cores": 2.2}
    table = run(*TINY, "--batch-size", "0")
    assert "3 (of 5 cores, 2.2 kept busy by other processes) threads" in table.stdout
    given = json.loads(run(*TINY, "--threads", "1", "--format", "json").stdout)
    assert given["threads"] == 1 and given["thread_policy"]["source"] == "given"


def test_bench_table_without_batch(keep_threads):
    result = run(*TINY[:-4], "--batch-size", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "ms/img" in result.stdout and "img/s@" not in result.stdout


@pytest.mark.parametrize("args, words", [
    (("--alpha", "0.01"), "0 channels"),
    (("--out", "{tmp}/missing/latency.json"), "does not exist"),
    (("--plot", "{tmp}/latency.gif"), "unknown image type"),
    (("--device", "tpu"), "--device tpu"),
    (("--repeats", "0"), "--repeats"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, words):
    result = run(*TINY, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_missing_is_a_clear_error():
    result = run(*TINY, "--device", "cuda")
    assert result.exit_code == 2 and "CUDA is not available" in result.stderr
