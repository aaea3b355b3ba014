"""The MobileNet family as PyTorch models: parameter counts of the reference implementations, the
crosscheck against fvcore and the model's own tensors (shapes, bytes, which tensors each layer reads,
the live-tensor peak, training memory), and one epoch of `mnetcost train` on tiny data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from mnetcost.calculator.resolver import resolve
from mnetcost.calculator.spec import parse_spec
from mnetcost.nn import crosscheck as C
from mnetcost.nn.models import GraphNet, MobileNet, build_model

from cifar_helpers import tiny_official_folder
from test_family import EVERY_KIND, TINY, TINY_LIVE, TINY_TRAINING, TORCHVISION_PARAMS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("variant", list(TORCHVISION_PARAMS))
def test_models_have_the_reference_implementations_parameter_counts(variant):
    model = build_model(variant)  # 224 x 224, 1,000 classes, as torchvision's
    assert isinstance(model, GraphNet)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[variant]
    names = dict(model.named_children())
    assert [layer.name for layer in model.network.layers] == [n for n in names if n not in ("flatten", "dropout")]
    if variant != "mobilenet_v2":  # squeeze-excite's 1x1 convs with bias, hard-sigmoid gate
        assert isinstance(names["block4_se_expand"].hardsigmoid, torch.nn.Hardsigmoid)
        assert names["block4_se_reduce"].conv.bias is not None
    assert isinstance(build_model("base"), MobileNet)


def test_the_residual_and_the_gate_are_computed():
    torch.manual_seed(0)
    spec = parse_spec(EVERY_KIND, "every.toml")
    model = build_model(spec, 1.0, 2).eval()
    seen = {}
    for name in ("block1_add", "block4_se_scale"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, (i, o)))
    with torch.no_grad():
        model(torch.rand(2, 3, 32, 32))
    (projection, block_input), added = seen["block1_add"]
    assert torch.equal(added, projection + block_input)
    (features, gate), scaled = seen["block4_se_scale"]
    assert gate.shape == (2, 144, 1, 1) and bool(((gate >= 0) & (gate <= 1)).all())
    assert torch.equal(scaled, features * gate)


# The three published networks (small alpha at CIFAR size for speed, V3-Small as published), the
# paper's downsampling on them, and a custom spec with every new kind, under several conventions.
CONFIGS = [
    ("mobilenet_v2", 0.35, 2, 10, 32, "paper", "fp32"),
    ("mobilenet_v3_large", 0.35, 1, 10, 32, "elementwise", "int8"),
    ("mobilenet_v3_small", 1.0, 1, 1000, 224, "paper", "fp32"),
    ("mobilenet_v3_small_fmp", 0.5, 2, 10, 32, "fvcore", "fp32"),
    ("mobilenet_v2_mp3", 0.25, 1, 100, 32, "deploy", "fp16"),
    ("every", 0.5, 2, 10, 32, "elementwise", "fp32"),
]


@pytest.mark.parametrize("variant,alpha,delta,classes,resolution,convention,dtype", CONFIGS)
def test_crosscheck_agrees_on_every_layer_and_every_byte(variant, alpha, delta, classes, resolution, convention,
                                                         dtype):
    spec = parse_spec(EVERY_KIND, "every.toml") if variant == "every" else variant
    network = resolve(spec, alpha, delta, classes, resolution)
    check = C.crosscheck(network, convention, dtype=dtype)
    assert check.disagreeing == [] and check.totals_agree
    assert (check.params, check.mult_adds) == (check.fvcore_params, check.fvcore_mult_adds)
    memory = check.memory
    assert memory.disagreeing == [] and memory.totals_agree and check.agree
    assert (memory.peak_activation_bytes, memory.peak_layer) == (memory.measured_peak_bytes,
                                                                  memory.measured_peak_layer)
    assert memory.training_activation_bytes_per_image == memory.measured_training_bytes_per_image > 0
    for row in memory.layers:  # the graph the model ran is the resolved one
        assert tuple(row.inputs) == tuple(row.model_inputs) and row.live_bytes == row.measured_live_bytes
    assert set(check.unexpected_ops) == set()


def test_the_models_tensors_have_the_hand_counted_lifetimes_and_saves():
    check = C.memory_check(resolve(parse_spec(TINY, "tiny.toml")))
    assert [row.measured_live_bytes for row in check.layers] == [4 * n for n in TINY_LIVE]
    assert [row.measured_training_bytes for row in check.layers] == [4 * n for n in TINY_TRAINING]
    assert (check.measured_peak_bytes, check.measured_peak_layer) == (4 * 656, "block1_se_scale")
    assert check.agree


def test_fvcore_counts_no_add_mul_or_hard_activation_by_default():
    network = resolve("mobilenet_v3_small", 0.5, 1, 10, 32)
    check = C.crosscheck(network, "fvcore", memory=False)
    assert check.agree
    for op in ("aten::add", "aten::mul", "aten::hardswish", "aten::hardsigmoid"):
        assert check.unsupported_ops[op] > 0  # listed as unsupported: counted as 0 by fvcore's defaults
    adds = sum(l.kind == "add" for l in network.layers)
    gates = sum(l.kind == "scale" for l in network.layers)
    assert (check.unsupported_ops["aten::add"], check.unsupported_ops["aten::mul"]) == (adds, gates)
    elementwise = C.crosscheck(network, "elementwise", memory=False)
    assert elementwise.agree and elementwise.mult_adds - C.crosscheck(network, "paper", memory=False).mult_adds \
        == sum(l.out_h * l.out_w * l.out_c for l in network.layers
               if l.kind in ("add", "scale") or l.activation in ("hardswish", "hardsigmoid"))


def test_a_model_without_its_residual_fails_the_check(monkeypatch):
    network = resolve("mobilenet_v2", 0.35, 1, 10, 32)
    model = build_model("mobilenet_v2", 0.35, 1, 10, 32)
    model._steps = [(name, ("block3_project", "block3_project") if name == "block3_add" else reads)
                    for name, reads in model._steps]  # adds the projection to itself
    check = C.memory_check(network, model=model)
    bad = {row.name: row for row in check.disagreeing}
    assert "block3_add" in bad and bad["block3_add"].model_inputs == ("block3_project", "block3_project")
    assert not check.agree


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mnetcost", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def test_crosscheck_command_on_a_family_network():
    result = cli("crosscheck", "-v", "mobilenet_v3_small", "-a", "0.5", "-r", "32", "-c", "10", "--convention",
                 "elementwise", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["agree"] and data["memory"]["agree"] and data["rounding"] == "divisible8"
    assert any(layer["name"] == "block1_se_scale" for layer in data["layers"])


def test_train_one_epoch_on_tiny_data(tmp_path):
    data = tiny_official_folder(tmp_path / "data", train=64, test=32)
    out = tmp_path / "run"
    result = cli("train", "-v", "mobilenet_v3_small", "-a", "0.25", "--dataset", data, "--data-dir",
                 tmp_path / "cache", "--epochs", "1", "--batch-size", "32", "--bn-batches", "1", "--out", out,
                 "--quiet", "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    from mnetcost.calculator.cost import network_cost

    cost = network_cost(resolve("mobilenet_v3_small", 0.25, 1, 10, 32), "paper")
    assert (summary["variant"], summary["classes"], summary["resolution"]) == ("mobilenet_v3_small", 10, [32, 32])
    assert (summary["params"], summary["mult_adds"]) == (cost.params, cost.mult_adds)
    assert summary["epochs"] == 1 and 0 <= summary["final_test_accuracy"] <= 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["loss"] == rows[0]["loss"]  # finite, not NaN
    state = torch.load(out / "last.pt", weights_only=True)["model"]
    assert set(state) == set(build_model("mobilenet_v3_small", 0.25, 1, 10, 32).state_dict())


@pytest.mark.parametrize("text,expected", [
    ('[[layers]]\ntype = "maxpool"\n[[layers]]\ntype = "conv"\nfilters = 8\n' + '[[layers]]\ntype = "avgpool"\n'
     '[[layers]]\ntype = "fc"\n', [0, 17_100, 0, 64]),  # the pool before any weights keeps nothing
    ('[[layers]]\ntype = "fc"\n', [10_800]),  # a first fc: only the linear layer's input, 30 x 30 x 3 x 4 B
])
def test_layers_before_the_first_weights_keep_nothing(text, expected):
    network = resolve(parse_spec(text, "first.toml"), 1.0, 1, 10, 30)
    check = C.memory_check(network)
    assert [row.training_bytes for row in check.layers] == expected
    assert [row.measured_training_bytes for row in check.layers] == expected and check.agree
