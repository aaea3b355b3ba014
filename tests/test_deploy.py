"""Deployment: ONNX export (every variant and a custom spec), the check against PyTorch and its
refusal, int8 quantization, evaluation of a trained run, the [deploy] extra, bad paths. Real
exports, real ONNX Runtime sessions, a real (tiny) training run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from click.testing import CliRunner  # noqa: E402

from mnetcost.calculator import memory  # noqa: E402
from mnetcost.calculator.cost import network_cost  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.deploy import export as EX  # noqa: E402
from mnetcost.deploy import runtime as R  # noqa: E402
from mnetcost.nn.models import build_model  # noqa: E402

from cifar_helpers import (image_files, learnable_images, official_files, train_tiny_fmp_run,  # noqa: E402
                           write_official_archive, write_tar)

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent
CUSTOM = str(ROOT / "examples" / "custom_spec.toml")
VARIANTS = {  # name -> (variant, resolution)
    "base": ("base", 32), "mp3": ("mp3", 32), "fmp": ("fmp", 32), "custom": (CUSTOM, 64),
}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fresh_model(variant, resolution, alpha=0.25, delta=2):
    torch.manual_seed(0)  # what `mnetcost export` does for initial weights
    return build_model(variant, alpha=alpha, delta=delta, resolution=resolution).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`mnetcost export --format json` of each variant at α=0.25 δ=2: (file, record)."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name, (variant, resolution) in VARIANTS.items():
        out = folder / f"{name}.onnx"
        result = cli("export", "--variant", variant, "--alpha", "0.25", "--delta", "2", "--resolution", resolution,
                     "--out", out, "--check-images", "8", "--format", "json")
        assert result.exit_code == 0, result.output
        files[name] = (out, json.loads(result.stdout))
    return files


# --- the exported file ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_onnx_runtime_computes_what_pytorch_eval_computes(exported, name):
    path, record = exported[name]
    variant, resolution = VARIANTS[name]
    model = fresh_model(variant, resolution)
    sess = R.session(R.load_onnx(path), threads=1)
    x = np.random.default_rng(7).standard_normal((5, 3, resolution, resolution)).astype(np.float32)  # batch != export's
    reference = EX.torch_reference(model, x)
    assert np.max(np.abs(R.run(sess, x) - reference)) <= 1e-4 * max(1.0, np.abs(reference).max())
    assert record["check"]["passed"] and record["check"]["max_abs_diff"] <= record["check"]["allowed_abs_diff"]
    proto = onnx.load(str(path))
    assert {(o.domain, o.version) for o in proto.opset_import} == {("", EX.OPSET)} and record["opset"] == 18
    ops = EX.op_counts(proto)
    assert "BatchNormalization" not in ops and "Dropout" not in ops
    assert all(node.domain == "" for node in proto.graph.node)  # standard operators only
    network = model.network
    assert ops["Conv"] == sum(layer.kind in ("conv", "dw", "pw") for layer in network.layers)
    # each FMP layer: one Gather per candidate position of a window and one Max, over rows then columns
    fixed = [m for m in EX.eval_copy(model).modules() if isinstance(m, EX.FixedDrawFMP)]
    assert len(fixed) == sum(layer.kind == "fmp" for layer in network.layers)
    candidates = [k for m in fixed for k in (m.k_h, m.k_w)]
    assert ops.get("Gather", 0) == sum(candidates) and ops.get("Max", 0) == sum(k > 1 for k in candidates)
    assert "ReduceMax" not in ops and ops.get("Reshape", 0) <= 1  # the classifier's flatten at most
    assert ops.get("MaxPool", 0) == sum(layer.kind == "maxpool" for layer in network.layers)
    assert "Pad" not in ops  # TF-'same' max pooling's -inf padding is the MaxPool's own pads
    assert len(proto.graph.input) == 1 and proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    meta = EX.metadata_of(proto)
    assert (meta["variant"], meta["alpha"], meta["delta"], meta["dtype"], meta["opset"]) == \
        (variant, 0.25, 2, "fp32", 18)


@pytest.mark.parametrize("name", VARIANTS)
def test_float_weights_in_the_file_are_the_deploy_convention_params(exported, name):
    path, record = exported[name]
    variant, resolution = VARIANTS[name]
    from mnetcost.calculator.resolver import resolve

    network = resolve(variant, 0.25, 2, 10, resolution)
    proto = onnx.load(str(path))
    census = EX.weight_census(proto)
    deploy = network_cost(network, "deploy").params
    assert census.float_weight_elements == deploy == memory.deploy_params(network) == record["deploy_params"]
    assert census.other_float_elements == 0 and census.int8_weight_elements == 0
    assert census.weight_bytes == 4 * deploy == memory.weight_bytes(network, "fp32")
    # layer by layer, joined on the layer's name: weight + bias elements of each Conv/Gemm node
    layers = {row.name: row for row in memory.network_memory(network).layers}
    per_node = {}
    for layer, role, dtype, elements in census.tensors:
        per_node[layer] = per_node.get(layer, 0) + elements
        assert dtype == "float32"
    weighted = {name: row.deploy_params for name, row in layers.items() if row.deploy_params}
    assert per_node == weighted
    # every conv has its folded bias (a fresh BatchNorm folds to zeros, which the file keeps)
    for node in proto.graph.node:
        if node.op_type == "Conv":
            assert len(node.input) == 3


def test_the_fixed_draw_module_equals_the_fmp_layer_exactly():
    from mnetcost.nn.fmp import FractionalMaxPool2d, window_index

    for overlapping in (False, True):
        for draw in range(4):
            layer = FractionalMaxPool2d(1.44, overlapping=overlapping, seed=5, eval_draw=draw).eval()
            x = torch.randn(3, 4, 22, 15)
            rows, cols = layer.sequences(22, 15, draw)
            fixed = EX.FixedDrawFMP(window_index(rows, 22, overlapping), window_index(cols, 15, overlapping))
            assert torch.equal(fixed(x), layer(x))


def test_torch_mode_fmp_is_refused():
    model = build_model("fmp", alpha=0.25, delta=1, fmp_mode="torch")
    with pytest.raises(EX.ExportError, match="fmp_mode 'torch'"):
        EX.eval_copy(model)


# --- int8 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fmp", "mp3"])
def test_int8_stores_every_conv_and_fc_weight_as_int8(exported, name):
    from mnetcost.calculator.resolver import resolve
    from mnetcost.deploy.quantize import quantize_int8

    path, _ = exported[name]
    fp32 = onnx.load(str(path))
    network = resolve(name, 0.25, 2, 10, 32)
    calibration = EX.check_batch(network, 32, seed=1)
    int8 = quantize_int8(fp32, calibration)
    from onnx import numpy_helper

    initializers = {i.name: numpy_helper.to_array(i) for i in int8.graph.initializer}
    producers = {out: node for node in int8.graph.node for out in node.output}
    weighted = [node for node in int8.graph.node if node.op_type in ("Conv", "Gemm")]
    assert len(weighted) == sum(layer.kind in ("conv", "dw", "pw", "fc") for layer in network.layers)
    for node in weighted:
        dequantize = producers[node.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        weight, scale = initializers[dequantize.input[0]], initializers[dequantize.input[1]]
        assert weight.dtype == np.int8 and scale.dtype == np.float32
        outputs = weight.shape[0] if node.op_type == "Conv" else 10  # one scale per output channel / class
        assert scale.shape == (outputs,)
        bias = initializers[producers[node.input[2]].input[0]]
        assert bias.dtype == np.int32
    census = EX.weight_census(int8)
    rows = memory.network_memory(network, "int8").layers
    weights = sum(r.weight_elements for r in rows)
    biases = sum(r.bias_elements for r in rows)
    scales = sum(r.scale_elements for r in rows)
    assert census.float_weight_elements == 0 and census.other_float_elements == 0
    assert (census.int8_weight_elements, census.int32_bias_elements) == (weights, biases)
    assert census.weight_bytes == weights + 4 * biases
    assert memory.weight_bytes(network, "int8") == weights + 4 * biases + 4 * scales
    assert census.scale_bytes == 2 * 4 * scales  # weight scales + bias scales, fp32, per output channel
    assert EX.metadata_of(int8)["dtype"] == "int8" and EX.metadata_of(int8)["calibration_images"] == 32
    # it runs, and on inputs like its calibration it mostly agrees with fp32
    x = EX.check_batch(network, 64, seed=2)
    fp32_out, int8_out = R.run(R.session(fp32, 1), x), R.run(R.session(int8, 1), x)
    assert int8_out.shape == fp32_out.shape and np.isfinite(int8_out).all()
    assert np.max(np.abs(int8_out - fp32_out)) < 0.25 * np.abs(fp32_out).max()


# --- a trained run ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny fmp run (seed 3: its FMP draws are not the default's) on a tiny CIFAR-10 archive."""
    return train_tiny_fmp_run(tmp_path_factory.mktemp("run"))


def test_a_run_exports_to_fp32_and_int8_and_evaluate_reports_all_three(trained_run, tmp_path):
    run, archive, cache, dataset = trained_run
    fp32, int8 = tmp_path / "run.onnx", tmp_path / "run.int8.onnx"
    result = cli("export", "--run", run, "--out", fp32, "--data-dir", cache, "--check-images", "10", "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["check"]["passed"] and record["check"]["images"] == 10
    assert record["check"]["inputs"] == f"the first 10 test images of {dataset.name}"
    meta = record["metadata"]
    from mnetcost.nn.training import channel_stats

    mean, std = channel_stats(dataset.train_x)
    assert np.allclose(meta["mean"], mean) and np.allclose(meta["std"], std)
    assert (meta["run"], meta["checkpoint"], meta["fmp_seed"], meta["variant"]) == ("fmp-run", "best", 3, "fmp")
    result = cli("export", "--run", run, "--int8", "--calibration-images", "48", "--out", int8, "--data-dir", cache,
                 "--check-images", "100", "--format", "json")
    assert result.exit_code == 0, result.output
    q = json.loads(result.stdout)
    assert q["dtype"] == "int8" and q["quantization"]["calibration_images"] == 48
    assert q["check"]["images"] == 64 and q["check"]["inputs"] == f"all 64 test images of {dataset.name} (100 asked for)"
    assert q["file_weights"]["int8_weight_elements"] > 0 and q["file_weights"]["float_weight_elements"] == 0
    assert q["engine_weight_bytes"]["int8"] == memory.weight_bytes(build_model("fmp", 0.25, 1).network, "int8")

    result = cli("evaluate", "--run", run, "--torch", "--onnx", fp32, "--onnx", int8, "--data-dir", cache,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["runtime"], r["dtype"]) for r in rows] == [("torch", "fp32"), ("onnxruntime", "fp32"),
                                                         ("onnxruntime", "int8")]
    assert all(r["images"] == 64 and 0 <= r["accuracy"] <= 1 for r in rows)
    # the thread policy of train (OMP_NUM_THREADS, else the idle cores), recorded
    assert all(r["threads"] == r["thread_policy"]["threads"] >= 1 and r["thread_policy"]["source"] in
               ("environment", "idle-cores") for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    # the same images, preprocessing and FMP draw as training's own evaluation of best.pt
    assert rows[0]["correct"] == round(summary["best_test_accuracy"] * 64)
    assert rows[1]["correct"] == rows[0]["correct"]
    # export --int8 reports what int8 costs in accuracy on its check images (here the whole test
    # set): the same figures as evaluate's, file for file
    assert q["quantization"]["check_accuracy"] == {
        "images": 64, "fp32": rows[1]["correct"] / 64, "int8": rows[2]["correct"] / 64,
        "difference_points": 100 * (rows[2]["correct"] - rows[1]["correct"]) / 64}
    # one evaluation: one object; --limit; --last
    result = cli("evaluate", "--run", run, "--checkpoint", "last", "--limit", "10", "--data-dir", cache,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    single = json.loads(result.stdout)
    assert single["runtime"] == "torch" and single["images"] == 10 and single["checkpoint"] == "last"


def test_the_export_table_says_what_int8_costs_and_explains_a_changed_top1():
    from mnetcost.cli.commands.export import _int8_effect, _top1

    quantization = {"max_abs_diff_vs_fp32": 0.31, "max_abs_logit_fp32": 2.5, "top1_agreement_vs_fp32": 0.531,
                    "check_accuracy": {"images": 64, "fp32": 0.25, "int8": 0.234375, "difference_points": -1.5625}}
    text = _int8_effect(quantization, "the first 64 test images of cifar10")
    assert text.startswith("accuracy on the first 64 test images of cifar10: fp32 25.0 %, int8 23.4 % (-1.6 points;")
    assert "agreement" not in text and "53.1" not in text  # near-uniform logits: agreement means nothing
    assert _int8_effect({**quantization, "check_accuracy": None}, "x") == "max |int8 − fp32| 0.31 (max |logit| 2.5)"
    same = EX.compare(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.1], [0.0, 2.0]]), 1e-4)
    assert _top1(same.as_dict()) == "the same top-1 class on every input"
    # a changed class within the check's difference is a near tie, and said to be one
    tie = EX.compare(np.array([[1.0, 0.99995], [0.0, 2.0]]), np.array([[1.0, 1.00001], [0.0, 2.0]]), 1e-4)
    assert (tie.top1_differing, tie.top1_agreement) == (1, 0.5) and tie.top1_differing_gap <= 2 * tie.max_abs_diff
    assert _top1(tie.as_dict()) == "top-1 class differs on 1 of 2 inputs, near ties (their two logits within 5e-05)"


def test_export_refuses_beyond_the_tolerance_and_writes_nothing(monkeypatch, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an older file")
    real = EX.torch_reference
    monkeypatch.setattr(EX, "torch_reference", lambda model, x: real(model, x) + 0.5)  # PyTorch says otherwise
    result = cli("export", "--variant", "base", "--alpha", "0.25", "--out", out, "--check-images", "4")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "export refused, nothing written" in lines[0] and "tolerance" in lines[0]
    assert out.read_bytes() == b"an older file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file either


# --- bad input -----------------------------------------------------------------------------------
@pytest.fixture
def paths(tmp_path):
    (tmp_path / "empty-run").mkdir()
    no_checkpoint = tmp_path / "no-checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text(json.dumps({"config": {"variant": "base", "alpha": 0.25}}))
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not a model")
    (tmp_path / "afile").write_text("x")
    return tmp_path


@pytest.mark.parametrize("args, words", [
    (("export", "--variant", "base", "--out", "{tmp}/missing/m.onnx"), "does not exist"),
    (("export", "--variant", "base", "--out", "{tmp}"), "is a directory"),
    (("export", "--run", "{tmp}/nowhere", "--out", "{tmp}/m.onnx"), "no such folder"),
    (("export", "--run", "{tmp}/afile", "--out", "{tmp}/m.onnx"), "not a folder"),
    (("export", "--run", "{tmp}/empty-run", "--out", "{tmp}/m.onnx"), "no config.json"),
    (("export", "--run", "{tmp}/no-checkpoint", "--out", "{tmp}/m.onnx"), "no best.pt"),
    (("export", "--run", "{tmp}/empty-run", "--alpha", "0.5", "--out", "{tmp}/m.onnx"), "drop --alpha"),
    (("export", "--variant", "base", "--int8", "--out", "{tmp}/m.onnx"), "--int8 needs calibration images"),
    (("export", "--variant", "base", "--dataset", "{tmp}/nodata", "--out", "{tmp}/m.onnx"), "no such file"),
    (("export", "--variant", "base", "--alpha", "0.01", "--out", "{tmp}/m.onnx"), "0 channels"),
    (("evaluate", "--run", "{tmp}/nowhere"), "no such folder"),
    (("evaluate", "--run", "{tmp}/empty-run", "--onnx", "{tmp}/none.onnx"), "--onnx"),
    (("evaluate", "--run", "{tmp}/empty-run"), "no config.json"),
    (("evaluate", "--run", "{tmp}/empty-run", "--no-torch"), "nothing to evaluate"),
    (("bench", "--runtime", "tensorrt"), "unknown runtime tensorrt"),
    (("bench", "--variant", "fmp", "--alpha", "0.25", "--runtime", "onnxruntime", "--fmp-mode", "torch"),
     "--fmp-mode tf"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(paths, args, words):
    before = sorted(p.name for p in paths.iterdir())
    result = cli(*(a.replace("{tmp}", str(paths)) for a in args))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in paths.iterdir()) == before


def test_a_file_that_is_not_onnx_is_one_line(trained_run, paths):
    run = trained_run[0]
    result = cli("evaluate", "--run", run, "--onnx", paths / "garbage.onnx")
    assert result.exit_code == 2 and "not an ONNX model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_onnx_file_of_another_model_is_refused(trained_run, exported):
    run = trained_run[0]
    path, _ = exported["custom"]  # 64x64 input; the run's model takes 32x32
    result = cli("evaluate", "--run", run, "--onnx", path)
    assert result.exit_code == 2 and "its input is" in result.stderr


def test_a_dataset_with_other_classes_is_refused(trained_run, tmp_path):
    run, _, cache, _ = trained_run
    names = [f"c{i}" for i in range(5)]  # an image-folder archive of 5 classes
    archive = write_tar(tmp_path / "five.tar.gz", image_files({"train": learnable_images(20, 5, 0),
                                                               "test": learnable_images(10, 5, 1)}, names))
    result = cli("evaluate", "--run", run, "--dataset", archive, "--data-dir", cache)
    assert result.exit_code == 2 and "5 classes, the model 10" in result.stderr


@pytest.mark.parametrize("command", [
    ["export", "--variant", "base", "--out", "m.onnx"],
    ["evaluate", "--run", ".", "--onnx", "m.onnx"],
    ["bench", "--runtime", "onnxruntime"],
])
@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_without_the_deploy_extra_one_line_names_it(tmp_path, command, missing):
    (tmp_path / "m.onnx").write_bytes(b"")
    code = (f"import sys; sys.modules[{missing!r}] = None; "  # import onnx -> ImportError
            "from mnetcost.cli import main; sys.argv = ['mnetcost'] + sys.argv[1:]; main()")
    result = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"({missing} is not installed)" in result.stderr and "pip install 'mnetcost[deploy]'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# --- bench ----------------------------------------------------------------------------------------
def test_bench_times_every_runtime_in_one_run(tmp_path):
    out = tmp_path / "latency.json"
    result = cli("bench", "--variant", "fmp", "--alpha", "0.25", "--delta", "1", "--runtime", "all", "--warmup", "1",
                 "--repeats", "2", "--batch-size", "4", "--device", "cpu", "--threads", "1", "--out", out,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["runtimes"] == ["torch", "onnxruntime", "onnxruntime-int8"] and data["onnx_opset"] == 18
    assert data["onnxruntime_threads"] == data["threads"] == 1
    rows = {r["runtime"]: r for r in data["results"]}
    cost = network_cost(build_model("fmp", 0.25, 1).network)
    for runtime, row in rows.items():
        assert (row["variant"], row["alpha"], row["delta"], row["mult_adds"]) == ("fmp", 0.25, 1, cost.mult_adds)
        assert row["latency_ms"] > 0 and row["images_per_s"] > 0 and len(row) >= 10
    assert rows["onnxruntime-int8"]["weight_bytes"] == memory.weight_bytes(cost.network, "int8")
    assert rows["torch"]["weight_bytes"] == memory.weight_bytes(cost.network, "fp32")
    # plot --x latency per runtime: a file of several runtimes needs --runtime
    figure = tmp_path / "acc.png"
    plotted = cli("plot", "--x", "latency", "--latency", out, "--out", figure)
    assert plotted.exit_code == 2 and "choose one with --runtime" in plotted.stderr
    from mnetcost.analysis.plot import load_latency

    for runtime in rows:
        (item,) = load_latency(out, runtime).values()
        assert item["runtime"] == runtime and item["latency_ms"] == rows[runtime]["latency_ms"]
    from mnetcost.analysis.plot import draw_latency

    assert len(draw_latency(data).axes) >= 6  # a row of panels per runtime (+ nothing else)


def test_runtime_predictors_example_reads_a_bench_file(tmp_path):
    """examples/runtime_predictors.py: Spearman rho per runtime and the time ratios, on a file
    whose answers are known (time falls as Mult-Adds rise; ONNX Runtime exactly 2x faster)."""
    results = []
    for number, mult_adds in enumerate((1_000_000, 4_000_000, 9_000_000)):
        common = {"variant": "base", "alpha": 0.25 * (number + 1), "delta": 1, "classes": 10, "resolution": 32,
                  "mult_adds": mult_adds, "params": 1000 * (number + 1), "peak_activation_bytes": 5000,
                  "weight_bytes": 4000 * (number + 1)}
        torch_ms = 3.0 - number  # the most Mult-Adds the fastest
        results.append({**common, "runtime": "torch", "latency_ms": torch_ms, "images_per_s": 1000 / torch_ms})
        results.append({**common, "runtime": "onnxruntime", "latency_ms": torch_ms / 2,
                        "images_per_s": 2000 / torch_ms})
    bench = tmp_path / "latency.json"
    bench.write_text(json.dumps({"threads": 1, "batch_size": 64, "results": results}))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "runtime_predictors.py"), str(bench)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import runtime_predictors as RP
    finally:
        sys.path.remove(str(ROOT / "examples"))
    result = RP.analyse(json.loads(bench.read_text()))
    assert result["spearman"]["torch"]["latency_ms"]["mult_adds"] == pytest.approx(-1.0)
    assert result["spearman"]["onnxruntime"]["per_image_ms"]["weight_bytes"] == pytest.approx(-1.0)
    assert np.isnan(result["spearman"]["torch"]["latency_ms"]["peak_activation_bytes"])  # all tied: undefined
    assert result["speedups"][("torch", "onnxruntime", "latency_ms")] == pytest.approx((2.0, 2.0, 2.0))
    assert RP.ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert "torch / onnxruntime, batch 1 latency: 2.00x [2.00, 2.00]" in done.stdout


def test_a_dataset_of_another_size_is_resized_for_a_fresh_model(tmp_path):
    """A fresh 48x48 model given 32x32 CIFAR-style images (what export --format tflite does): the images it
    keeps are resized to the model's size, and the source says so; without resize, refused as before."""
    from cifar_helpers import tiny_official_folder

    from mnetcost.deploy import pipeline as P
    from mnetcost.errors import MnetcostError

    folder = tiny_official_folder(tmp_path / "data", train=40, test=12)
    source = P.fresh_source("mobilenet_v3_small", 0.35, 1, 10, 48, dataset=str(folder),
                            data_dir=tmp_path / "cache", resize=True)
    assert source.train_images.shape == (40, 3, 48, 48) and source.test_images.shape == (12, 3, 48, 48)
    assert source.train_images.dtype == np.uint8
    assert "resized from 32x32 to 48x48" in source.calibration_source
    assert source.metadata["dataset_resized"] == source.calibration_source
    # a flat field stays flat through the bilinear, antialiased resize
    flat = np.full((1, 3, 32, 32), 77, dtype=np.uint8)
    assert (P.resize_images(flat, (48, 48)) == 77).all()
    with pytest.raises(MnetcostError, match="has 32x32 images, the model expects 48x48"):
        P.fresh_source("mobilenet_v3_small", 0.35, 1, 10, 48, dataset=str(folder), data_dir=tmp_path / "cache")


def _train(out, archive, cache, epochs, *extra):
    result = cli("train", "-v", "base", "-a", "0.25", "-d", "1", "--dataset", archive, "--data-dir", cache,
                 "--epochs", epochs, "--batch-size", "32", "--out", out, "--quiet", *extra)
    assert result.exit_code == 0, result.output
    return out


def test_evaluate_names_each_models_weights_and_checks_a_files_fingerprint(tmp_path):
    """An ONNX file of epoch 1 beside last.pt of epoch 2: evaluate says which weights each row holds
    and that they differ. A file of run A whose metadata was edited to name run B is refused by its
    weights' fingerprint (run B never held those weights)."""
    import onnx

    archive = write_official_archive(tmp_path / "tiny.tar.gz",
                                     official_files(learnable_images(96, 10, 0), learnable_images(32, 10, 1)))
    cache = tmp_path / "cache"
    run_a = _train(tmp_path / "a", archive, cache, "1")
    early = tmp_path / "a-epoch1.onnx"
    result = cli("export", "--run", run_a, "--checkpoint", "last", "--out", early, "--data-dir", cache,
                 "--check-images", "8")
    assert result.exit_code == 0, result.output
    from mnetcost.nn.training import load_checkpoint, weights_fingerprint

    epoch1 = weights_fingerprint(load_checkpoint(run_a / "last.pt")["model"])
    assert EX.metadata_of(onnx.load(str(early)))["weights_sha256"] == epoch1
    assert json.loads((run_a / "metrics.jsonl").read_text().splitlines()[0])["weights_sha256"] == epoch1
    _train(run_a, archive, cache, "2", "--resume")
    result = cli("evaluate", "--run", run_a, "--checkpoint", "last", "--torch", "--onnx", early, "--data-dir", cache,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["checkpoint"], r["epoch"]) for r in rows] == [("last", 2), ("last", 1)]
    assert "note: these models come from different checkpoints (last.pt: last.pt, epoch 2; " in result.stderr
    table = cli("evaluate", "--run", run_a, "--checkpoint", "last", "--torch", "--onnx", early, "--data-dir", cache)
    assert "NOT the same weights" in table.stdout and "last.pt, epoch 1" in table.stdout
    # run B; A's file with B's name and id in its metadata
    run_b = _train(tmp_path / "b", archive, cache, "1", "--seed", "5")
    forged = onnx.load(str(early))
    identity = json.loads((run_b / "config.json").read_text())["identity"]
    for entry in forged.metadata_props:
        if entry.key == "mnetcost.run":
            entry.value = json.dumps("b")
        elif entry.key == "mnetcost.run_id":
            entry.value = json.dumps(identity["run_id"])
        elif entry.key == "mnetcost.fmp_seed":
            entry.value = json.dumps(5)
    onnx.save(forged, str(tmp_path / "forged.onnx"))
    result = cli("evaluate", "--run", run_b, "--onnx", tmp_path / "forged.onnx", "--data-dir", cache)
    assert result.exit_code == 2
    assert f"made from weights {epoch1[:15]}, which the run in {run_b} never held" in result.stderr
