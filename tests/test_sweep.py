"""`mnetcost sweep` and the vectorised sweep: exact values, budgets, ranges, known accuracy, errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from mnetcost.cli import main
from mnetcost.calculator.cost import CONVENTIONS, network_cost
from mnetcost.calculator.params import parse_alpha_list, parse_si
from mnetcost.calculator.resolver import resolve
from mnetcost.analysis.sweep import evaluate, load_runs, parse_variants
from mnetcost.errors import ConfigError

KEYS = {"variant", "alpha", "delta", "classes", "resolution", "params", "mult_adds", "peak_activation_bytes",
        "weight_bytes", "accuracy", "accuracy_source", "paper_accuracy", "on_front"}


def run(*args):
    return CliRunner().invoke(main, ["sweep", *args], catch_exceptions=False)


def sweep_json(*args):
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_summary(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": folder.name, "variant": "base", "alpha": 0.25, "delta": 2, "classes": 10,
            "resolution": [32, 32], "dataset": "cifar10", "convention": "paper", "params": 1, "mult_adds": 1,
            "best_test_accuracy": 0.5, "final_test_accuracy": 0.5, "epochs": 1}
    data.update(fields)
    (folder / "summary.json").write_text(json.dumps(data))


# --- parsing: ranges and SI suffixes --------------------------------------------------------------
def test_alpha_range_is_exact():
    values = parse_alpha_list("0.25:1.0:0.01")
    assert len(values) == 76 and values[0] == 0.25 and values[-1] == 1.0
    assert values[4] == 0.29 and values[5] == 0.3  # no 0.29000000000000004
    assert parse_alpha_list("0.25:1.0:0.05")[-1] == 1.0 and len(parse_alpha_list("0.25:1.0:0.05")) == 16
    assert parse_alpha_list("0.5,0.25:0.5:0.25,1") == [0.5, 0.25, 1.0]  # order kept, duplicates removed


def test_si_suffixes():
    assert parse_si("10M") == 10_000_000 and parse_si("1M") == 10**6
    assert parse_si("250K") == 250_000 and parse_si("250k") == 250_000
    assert parse_si("1.5G") == 1_500_000_000 and parse_si("1000") == 1000
    for bad in ("10X", "M", "-1M", "ten"):
        with pytest.raises(ValueError):
            parse_si(bad)


def test_range_values_in_json_are_the_computed_ones():
    rows = sweep_json("-v", "base", "-a", "0.25:0.3:0.01", "-d", "1", "--sort", "alpha")
    assert [r["alpha"] for r in rows] == [0.25, 0.26, 0.27, 0.28, 0.29, 0.3]
    # ... and priced at exactly that alpha: int(100 * 0.29) == 28 (Keras's truncation) and all
    for row in rows:
        cost = network_cost(resolve("base", row["alpha"], 1))
        assert (row["params"], row["mult_adds"]) == (cost.params, cost.mult_adds)


# --- the engine -----------------------------------------------------------------------------------
@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_vectorised_equals_scalar(convention):
    alphas, deltas = [0.25, 0.29, 0.5, 0.75, 1.0, 1.3], [1, 2, 3]
    result = evaluate(["base", "mp3", "fmp"], alphas, deltas, [10, 100], [32, 64], convention)
    assert len(result) == 3 * 6 * 3 * 2 * 2 and result.evaluated == len(result) and not result.skipped
    for i in range(0, len(result), 7):
        variant = result.variants[result.variant[i]]
        cost = network_cost(resolve(variant, float(result.alpha[i]), int(result.delta[i]), int(result.classes[i]),
                                    int(result.resolution[i])), convention)
        assert (int(result.params[i]), int(result.mult_adds[i])) == (cost.params, cost.mult_adds)


def test_zero_channel_alphas_are_skipped_not_crashed():
    result = evaluate(["base"], [0.01, 0.03, 0.04, 0.5], [1, 2])
    assert sorted(set(result.alpha.tolist())) == [0.04, 0.5]  # int(32 * 0.04) = 1
    assert {s["alpha"] for s in result.skipped} == {0.01, 0.03}
    assert all(s["layer"] == "conv1" and s["count"] == 2 for s in result.skipped)


def test_zero_channel_cli_note_and_exit_codes():
    result = run("-v", "base", "-a", "0.01,0.5", "-d", "1", "--format", "json")
    assert result.exit_code == 0
    assert "skipped 1 base configuration" in result.stderr and "conv1 would have 0 channels" in result.stderr
    assert [r["alpha"] for r in json.loads(result.stdout)] == [0.5]
    nothing = run("-v", "base", "-a", "0.01,0.02")
    assert nothing.exit_code == 2 and nothing.stderr.count("\n") == 2  # the note, then one error line
    assert "no configuration in this sweep can be built" in nothing.stderr


def test_parse_variants():
    assert parse_variants("all") == ["base", "mp3", "fmp"]
    assert parse_variants("fmp,base,fmp") == ["fmp", "base"]


# --- the command ----------------------------------------------------------------------------------
def test_default_sweep_is_the_paper_grid_with_known_accuracy():
    rows = sweep_json()
    assert len(rows) == 27 and all(set(r) == KEYS for r in rows)
    assert [r["mult_adds"] for r in rows] == sorted(r["mult_adds"] for r in rows)
    base = next(r for r in rows if (r["variant"], r["alpha"], r["delta"]) == ("base", 1.0, 1))
    assert base["accuracy"] == 0.767 and base["accuracy_source"] == "paper" and not base["on_front"]
    assert sum(r["accuracy"] is not None for r in rows) == 19  # Tables 4-6, baseline once
    assert sum(r["on_front"] for r in rows) == 12


def test_budget_question():
    rows = sweep_json("--max-mult-adds", "10M", "--known-only", "--sort", "accuracy")
    assert all(r["mult_adds"] <= 10_000_000 and r["accuracy"] is not None for r in rows)
    best = rows[0]
    assert (best["variant"], best["alpha"], best["delta"], best["accuracy"]) == ("fmp", 0.25, 2, 0.821)
    assert [r["accuracy"] for r in rows] == sorted((r["accuracy"] for r in rows), reverse=True)
    under = sweep_json("--max-params", "1M", "--max-mult-adds", "1.7M")
    assert {(r["variant"], r["alpha"], r["delta"]) for r in under} == {("base", 0.25, 1), ("mp3", 0.25, 1),
                                                                      ("base", 0.25, 2)}


def test_front_is_recomputed_within_the_budget():
    rows = sweep_json("-v", "base", "--max-params", "1M")
    front = {(r["alpha"], r["delta"]) for r in rows if r["on_front"]}
    assert front == {(0.25, 2), (0.25, 4)}


def test_runs_add_accuracy_and_malformed_summaries_warn(tmp_path):
    write_summary(tmp_path / "good", best_test_accuracy=0.95)
    write_summary(tmp_path / "other", variant="mp3", alpha=0.5, delta=1, best_test_accuracy=0.6)
    write_summary(tmp_path / "bad", alpha="wide")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    result = run("--runs", str(tmp_path), "--format", "json")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and any("bad" in w and "'alpha'" in w for w in warnings)
    rows = {(r["variant"], r["alpha"], r["delta"]): r for r in json.loads(result.stdout)}
    good = rows[("base", 0.25, 2)]
    assert (good["accuracy"], good["accuracy_source"], good["paper_accuracy"]) == (0.95, "good", 0.702)
    assert rows[("mp3", 0.5, 1)]["accuracy"] == 0.6 and rows[("mp3", 0.5, 1)]["paper_accuracy"] is None
    runs, warnings = load_runs(tmp_path / "good")  # a single run folder works too
    assert [r.source for r in runs] == ["good"] and not warnings


def test_limit_and_table_output():
    result = run("-v", "base", "-a", "0.25:1.0:0.05", "-d", "1,2,3,4")
    assert result.exit_code == 0 and "showing 40 of 64 rows" in result.stdout
    assert "★" in result.stdout
    assert len(sweep_json("-v", "base", "-a", "0.25:1.0:0.05", "-d", "1,2,3,4")) == 64
    assert len(sweep_json("--limit", "5")) == 5
    csv = run("--format", "csv", "--limit", "3").stdout.splitlines()
    assert csv[0].startswith("variant,alpha,delta") and len(csv) == 4


def test_flops_convention_adds_flops():
    rows = sweep_json("-v", "base", "-a", "1", "-d", "1", "--convention", "flops")
    assert rows[0]["flops"] == 2 * rows[0]["mult_adds"]


@pytest.mark.parametrize("args, words", [
    (("--max-mult-adds", "10X"), "unknown suffix"),
    (("--max-params", "-1M"), "must not be negative"),
    (("--alpha", "1:0.5:0.1"), "stop must not be below start"),
    (("--alpha", "0"), "greater than 0"),
    (("--delta", "1.5"), "positive integer"),
    (("--variant", "nope"), "unknown variant"),
    (("--variant", "base,,fmp"), "empty item"),
    (("--classes", "0"), "positive integer"),
    (("--sort", "speed"), "speed"),
    (("--runs", "/no/such/dir"), "no such file"),
])
def test_bad_input_is_one_line_exit_2(args, words):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_thousands_of_configurations_priced_at_once():
    # 3 variants x 76 alphas x 8 deltas x 2 classes = 3,648 configurations in one call; values checked.
    result = evaluate(["base", "mp3", "fmp"], parse_alpha_list("0.25:1.0:0.01"), list(range(1, 9)), [10, 100])
    assert len(result) == 3648
    i = int(np.flatnonzero((result.alpha == 0.29) & (result.delta == 8) & (result.classes == 100))[-1])
    cost = network_cost(resolve(result.variants[result.variant[i]], 0.29, 8, 100))
    assert (int(result.params[i]), int(result.mult_adds[i])) == (cost.params, cost.mult_adds)


def test_to_frame_keeps_exact_values():
    alphas = parse_alpha_list("0.25:0.35:0.02")
    table = evaluate(["base", "fmp"], alphas, [1, 2], [10, 100])
    frame = table.to_frame()
    assert len(frame) == len(table) == 2 * 6 * 2 * 2 and frame.attrs["convention"] == "paper"
    assert sorted(frame["alpha"].unique()) == [0.25, 0.27, 0.29, 0.31, 0.33, 0.35]  # no drift: 0.29 is 0.29
    row = frame[(frame.variant == "fmp") & (frame.alpha == 0.29) & (frame.delta == 2) & (frame.classes == 100)]
    cost = network_cost(resolve("fmp", 0.29, 2, 100, 32))
    assert (int(row.params.iloc[0]), int(row.mult_adds.iloc[0])) == (cost.params, cost.mult_adds)


def test_a_sweeps_own_values_feed_back_into_resolve():
    """A sweep's rows (numpy scalars, from the arrays or from to_frame) resolve as they are."""
    table = evaluate(["mp3"], [0.25, 0.5], [2, 4], [100])
    frame = table.to_frame()
    for i in range(len(table)):
        net = resolve("mp3", alpha=table.alpha[i], delta=table.delta[i], classes=table.classes[i],
                      resolution=table.resolution[i])
        assert (type(net.alpha), type(net.delta), type(net.classes)) == (float, int, int)
        assert network_cost(net).params == int(table.params[i])
        row = frame.iloc[i]
        assert network_cost(resolve("mp3", row.alpha, row.delta, row.classes, row.resolution)).mult_adds \
            == int(table.mult_adds[i])
    # whole-number floats are integers; numpy integers and floats of any width are numbers
    assert resolve("base", np.float32(0.5), np.float64(2.0), np.int8(10), np.uint16(32)).layers \
        == resolve("base", 0.5, 2, 10, 32).layers
    assert len(evaluate(["base"], np.array([0.5]), np.array([2.0]), np.array([10]), np.array([32]))) == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"alphas": [-0.5]}, "alpha must be a number greater than 0, got -0.5"),
    ({"alphas": [float("nan")]}, "alpha must be a number greater than 0, got nan"),
    ({"alphas": [np.inf]}, "alpha must be a number greater than 0, got inf"),
    ({"alphas": [True]}, "alpha must be a number greater than 0, got True"),
    ({"deltas": [0]}, "delta must be a positive integer, got 0"),
    ({"deltas": [2.5]}, "delta must be a positive integer, got 2.5"),  # was priced as delta 2
    ({"deltas": [np.float64(2.5)]}, "delta must be a positive integer, got "),
    ({"classes_list": [0]}, "classes must be a positive integer, got 0"),
    ({"resolutions": [np.bool_(True)]}, "resolution must be a positive integer, got "),
])
def test_bad_sweep_input_raises_what_resolve_raises(kwargs, message):
    """Before: an empty frame (or delta 2.5 priced as 2) where resolve raised."""
    args = {"variants": ["base"], "alphas": [0.5], "deltas": [1], "classes_list": [10], "resolutions": [32], **kwargs}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as from_sweep:
        evaluate(**args)
    with pytest.raises(ConfigError) as from_resolve:
        resolve("base", args["alphas"][0], args["deltas"][0], args["classes_list"][0], args["resolutions"][0])
    assert str(from_sweep.value) == str(from_resolve.value)


def test_a_budget_sweep_loads_only_what_it_uses():
    """Start-up is most of a sweep's time: the command must not pull in numpy's masked arrays
    (``np.unique`` checks for them), ``importlib.resources``' tempfile/shutil/zipfile (to read one CSV),
    json (no --runs, csv output), the TensorFlow Lite modules (--runtime simple) or the table command
    (its budget wording: no memory budget here)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mnetcost.cli import main\n"
        "try:\n"
        "    main(['sweep', '-v', 'all', '-a', '0.25:1:0.25', '-d', '1,2', '--classes', '10,100',\n"
        "          '--max-mult-adds', '10M', '--max-params', '500K', '--format', 'csv'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "loaded = sorted(m for m in ('numpy.ma', 'tempfile', 'zipfile', 'json', 'mnetcost.calculator.tflm',\n"
        "                            'mnetcost.calculator.tflite_model', 'mnetcost.cli.commands.table')\n"
        "                if m in sys.modules)\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr
    assert result.stdout.splitlines()[0].startswith("variant,alpha,delta,classes")


def test_distinct_is_np_unique():
    from mnetcost.analysis.sweep import distinct

    values = np.array([3, 1, 3, 2, 1, 100, -5], dtype=np.int64)
    assert distinct(values).tolist() == np.unique(values).tolist() == [-5, 1, 2, 3, 100]
    assert distinct(np.array([], dtype=np.int64)).size == 0
    assert distinct(np.array([0.5, 0.25, 0.5])).tolist() == [0.25, 0.5]


# --- the sweep's int64 guard: a cheap bound clears a grid before any exact pricing ----------------
def _figures(network):
    from mnetcost.calculator.memory import DTYPES

    yield from (network_cost(network, convention).mult_adds for convention in CONVENTIONS)
    yield from (network_cost(network, convention).params for convention in CONVENTIONS)
    for dtype in DTYPES:
        cost = network_cost(network, "paper", dtype)
        yield from (cost.peak_activation_bytes, cost.weight_bytes, cost.deploy_params)


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp", "mobilenet_v2", "mobilenet_v2_fmp",
                                     "mobilenet_v3_small", "mobilenet_v3_large_mp3"])
@pytest.mark.parametrize("alpha, delta, resolution", [(0.25, 1, None), (1.0, 4, None), (1.4, 8, 64)])
def test_figures_bound_is_above_every_figure_of_the_network(variant, alpha, delta, resolution):
    from mnetcost.analysis.sweep import figures_bound

    network = resolve(variant, alpha, delta, resolution=resolution)
    bound = figures_bound(network)
    figures = list(_figures(network))
    assert len(figures) == 2 * len(CONVENTIONS) + 9 and max(figures) <= bound
    assert bound < 10**6 * max(figures)  # a bound, not a refusal of every grid


def test_figures_bound_is_above_the_figures_of_files_nobody_here_made():
    from pathlib import Path

    from mnetcost.analysis.sweep import figures_bound
    from mnetcost.calculator.importers.tflite import read

    folder = Path(__file__).parent / "data" / "tflite_micro"
    networks = [read(path).network for path in sorted(folder.glob("*.tflite"))]
    assert sum(network is not None for network in networks) >= 3
    for network in filter(None, networks):
        assert max(_figures(network)) <= figures_bound(network)


def test_sweep_near_the_int64_edge_keeps_exactly_what_fits(monkeypatch):
    """The bound only clears; where it cannot, the exact figures decide, point by point."""
    from mnetcost.analysis import sweep as S

    exact_calls = []
    original = S._exact_totals
    monkeypatch.setattr(S, "_exact_totals", lambda *a: exact_calls.append(a) or original(*a))
    small = evaluate(["base"], [0.5, 1.0], [1, 2])
    assert small.skipped == [] and exact_calls == []  # cleared by the bound alone
    # alpha 2**20: 1,048,576x the widths; Mult-Adds ~ alpha^2 = 10^12 x 10^7 ~ 10^19 > 2^63 at delta 8
    edge = evaluate(["base"], [2.0**18, 2.0**20], [1, 8])
    assert exact_calls  # the bound could not clear it: the exact figures decided
    kept = {(float(a), int(d)) for a, d in zip(edge.alpha, edge.delta)}
    verdicts = {}
    for alpha, delta in [(2.0**18, 1), (2.0**18, 8), (2.0**20, 1), (2.0**20, 8)]:
        exact = network_cost(resolve("base", alpha, delta))
        verdicts[alpha, delta] = max(exact.params, exact.mult_adds, exact.peak_activation_bytes,
                                     exact.weight_bytes) <= 2**63 - 1
        assert ((alpha, delta) in kept) == verdicts[alpha, delta]
    assert True in verdicts.values() and False in verdicts.values()  # the grid straddles the edge
