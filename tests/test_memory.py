"""Memory as a cost: exact byte counts from the engine, checked against the real model's tensors
(forward hooks, a BatchNorm-folded copy, autograd's saved tensors), the vectorised sweep, targets,
budgets with binary suffixes, and every view of the command line."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnetcost.calculator import memory
from mnetcost.calculator.cost import network_cost, sweep_totals
from mnetcost.calculator.params import parse_bytes
from mnetcost.calculator.resolver import plan, resolve, resolve_arrays
from mnetcost.calculator.targets import TARGETS, fit, get_target
from mnetcost.cli import main
from mnetcost.errors import ConfigError

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "custom_spec.toml")


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- the engine, by hand -------------------------------------------------------------------------
def test_mobilenet_224_anchor():
    """Howard et al.'s MobileNet (Table 1 at 224x224, 1000 classes): the largest layer is conv_pw_1,
    112x112x32 in and 112x112x64 out; BatchNorm folded leaves one bias per conv output channel."""
    net = resolve("base", 1.0, 1, 1000, 224)
    cost = network_cost(net, "paper", "fp32")
    assert (cost.peak_activation_bytes, cost.peak_layer) == ((112 * 112 * 32 + 112 * 112 * 64) * 4, "conv_pw_1")
    bn_channels = sum(layer.out_c for layer in net.layers if layer.bn)
    assert bn_channels == 10_944
    assert cost.deploy_params == 4_253_864 - 3 * bn_channels == 4_221_032 == network_cost(net, "deploy").params
    assert cost.weight_bytes == 4 * 4_221_032 == 16_884_128  # fp32: every number 4 bytes
    int8 = network_cost(net, "paper", "int8")
    weights = 4_221_032 - bn_channels - 1000  # conv/FC weights only
    scales = bn_channels + 1000  # one per output channel of every conv and of the FC
    assert int8.weight_bytes == weights + 4 * (bn_channels + 1000) + 4 * scales == 4_304_640
    assert int8.peak_activation_bytes == cost.peak_activation_bytes // 4
    assert network_cost(net, "paper", "fp16").weight_bytes == 2 * 4_221_032


def test_layer_bytes_follow_the_resolved_shapes():
    net = resolve("fmp", 0.5, 3, 37, 45)
    mem = memory.network_memory(net, "fp16")
    for layer, row in zip(net.layers, mem.layers):
        assert row.input_bytes == 2 * layer.in_h * layer.in_w * layer.in_c
        assert row.output_bytes == 2 * layer.out_h * layer.out_w * layer.out_c
    assert mem.peak_activation_bytes == max(r.input_bytes + r.output_bytes for r in mem.layers)
    first_peak = next(r for r in mem.layers if r.input_bytes + r.output_bytes == mem.peak_activation_bytes)
    assert mem.peak_layer == first_peak.name
    assert mem.deploy_params == network_cost(net, "deploy").params


def test_training_rule_by_hand_for_mp3():
    """mp3 at α=0.25 δ=2: conv1 keeps the image, its output and the ReLU output; maxpool_1 (3x3/2,
    'same' padding (0, 1, 0, 1) as an explicit pad) keeps the 33x33 padded copy and int64 indices."""
    net = resolve("mp3", 0.25, 2)
    rows = {r.name: r for r in memory.network_memory(net).layers}
    assert rows["conv1"].training_bytes == 4 * (32 * 32 * 3 + 2 * 32 * 32 * 8)
    assert rows["maxpool_1"].training_bytes == 4 * 33 * 33 * 8 + 8 * 16 * 16 * 8
    assert rows["conv_dw_1"].training_bytes == 4 * (16 * 16 * 8 + 2 * 16 * 16 * 16)  # its input: the pool's output
    assert rows["conv_pw_1"].training_bytes == 4 * 2 * 16 * 16 * 16  # its input was kept by conv_dw_1's ReLU
    assert rows["avgpool"].training_bytes == 0
    assert rows["fc"].training_bytes == 2 * 4 * 256  # dropout's noise and the linear layer's input


def test_fmp_keeps_uint8_winners():
    net = resolve("fmp", 0.25, 2)
    fmp_1 = next(r for r in memory.network_memory(net).layers if r.name == "fmp_1")
    assert fmp_1.training_bytes == 8 * 22 * 32 + 8 * 22 * 22  # rows stage C x 22 x 32, columns stage C x 22 x 22
    torch_mode = next(r for r in memory.network_memory(net, fmp_mode="torch").layers if r.name == "fmp_1")
    assert torch_mode.training_bytes == 8 * 8 * 22 * 22  # its input was kept by conv1's ReLU; int64 indices


def test_named_api_for_the_deploy_side():
    net = resolve("base", 0.25, 2, 100)
    mem = memory.network_memory(net, "int8")
    assert memory.weight_bytes(net, "int8") == mem.weight_bytes
    assert memory.deploy_params(net) == mem.deploy_params
    assert memory.peak_activation(net, "int8") == (mem.peak_activation_bytes, mem.peak_layer)
    assert memory.training_activation_bytes(net) == mem.training_activation_bytes_per_image
    assert sum(r.weight_bytes for r in mem.layers) == mem.weight_bytes
    assert set(mem.as_dict()) == {"dtype", "peak_activation_bytes", "peak_layer", "weight_bytes", "deploy_params",
                                  "training_activation_bytes_per_image"}


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("variant", ["base", "mp3", "fmp", EXAMPLE])
def test_vectorised_sweep_equals_one_by_one(variant, dtype):
    alphas = np.array([0.25, 0.29, 0.5, 0.75, 1.0, 1.3, 0.33])
    deltas = np.array([1, 2, 3, 4, 1, 2, 5])
    layers = resolve_arrays(plan(variant, 37, 64), alphas, deltas)
    params, mult_adds, peak, stored = memory.sweep_costs(layers, "paper", dtype)
    assert (params == sweep_totals(layers, "paper")[0]).all() and (mult_adds == sweep_totals(layers, "paper")[1]).all()
    for i, (alpha, delta) in enumerate(zip(alphas, deltas)):
        cost = network_cost(resolve(variant, float(alpha), int(delta), 37, 64), "paper", dtype)
        assert (int(peak[i]), int(stored[i])) == (cost.peak_activation_bytes, cost.weight_bytes)


def test_bad_dtype_and_fmp_mode():
    with pytest.raises(ConfigError, match="unknown dtype 'int4'"):
        network_cost(resolve("base", 0.5, 1), "paper", "int4")
    with pytest.raises(ConfigError, match="fmp_mode"):
        memory.network_memory(resolve("base", 0.5, 1), fmp_mode="keras")


def test_format_bytes():
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(320 * 1024) == "320.0 KiB"
    assert memory.format_bytes(4_816_896) == "4.59 MiB"


# --- budgets and targets -----------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("256KiB", 262_144), ("1MiB", 1_048_576), ("1.5kib", 1536), ("2GiB", 2**31),
                                        ("256K", 256_000), ("1M", 10**6), ("1000", 1000), ("0.5KiB", 512)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text,message", [("256KB", "unknown suffix 'KB'"), ("12Q", "unknown suffix"),
                                          ("-1KiB", "must not be negative"), ("KiB", "no number"),
                                          ("1,5K", "not a number")])
def test_parse_bytes_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_bytes(text)


def test_targets_and_fit():
    assert set(TARGETS) == {"stm32f746", "stm32h743", "nrf52840", "rp2040", "esp32s3"}
    board = get_target("STM32-F746")
    assert (board.sram_bytes, board.flash_bytes) == (320 * 1024, 1024 * 1024)
    assert get_target("nrf52840").sram_bytes == 256 * 1024
    with pytest.raises(ConfigError, match="unknown target 'stm32'"):
        get_target("stm32")
    result = fit(300 * 1024, 2 * 1024 * 1024, "stm32f746")
    assert result.fits_sram and not result.fits_flash and not result.fits
    assert result.sram_margin_bytes == 20 * 1024 and result.flash_margin_bytes == -1024 * 1024
    assert result.binding == "flash"
    own = fit(300 * 1024, 10, "stm32f746", max_peak_memory=256 * 1024)  # an explicit budget overrides the board's
    assert not own.fits_sram and own.sram_bytes == 256 * 1024 and own.flash_bytes == 1024 * 1024
    with pytest.raises(ConfigError, match="must not be negative"):
        fit(1, 1, max_weight_bytes=-5)


# --- against the model's own tensors ---------------------------------------------------------------
torch = pytest.importorskip("torch")
from mnetcost.nn import models  # noqa: E402
from mnetcost.nn.crosscheck import memory_check  # noqa: E402
from mnetcost.nn.models import fold_batchnorm  # noqa: E402

CONFIGS = [  # printed in Tables 4-6 ...
    ("base", 0.25, 2, 10, 32), ("mp3", 0.5, 4, 100, 32), ("fmp", 0.25, 2, 10, 32), ("fmp", 1.0, 4, 100, 32),
    # ... and not printed: other alpha, delta, classes, resolutions (odd, non-square), a custom spec
    ("base", 0.75, 3, 37, 33), ("mp3", 0.35, 5, 1, 64), ("fmp", 0.6, 1, 200, 47), ("base", 0.4, 2, 10, (40, 24)),
    (EXAMPLE, 0.5, 2, 10, 64), (EXAMPLE, 1.2, 3, 5, 50),
]


@pytest.mark.parametrize("config,dtype", [(c, "fp32") for c in CONFIGS] + [(c, "int8") for c in CONFIGS[2::3]],
                         ids=lambda c: "-".join(map(str, c)).replace("/", "_")[-40:] if isinstance(c, tuple) else c)
def test_every_figure_equals_the_model_tensors(config, dtype):
    net = resolve(*config)
    check = memory_check(net, dtype)
    assert check.disagreeing == [], [layer.as_dict() for layer in check.disagreeing]
    assert check.totals_agree and check.agree
    mem = memory.network_memory(net, dtype)
    width = 4 if dtype == "fp32" else 1
    for layer, row in zip(net.layers, check.layers):  # the real tensors: (C, H, W), or (features,) into the FC
        flat = layer.kind == "fc"
        assert row.model_input_shape == ((layer.in_c * layer.in_h * layer.in_w,) if flat
                                         else (layer.in_c, layer.in_h, layer.in_w))
        assert row.model_output_shape == ((layer.out_c,) if flat else (layer.out_c, layer.out_h, layer.out_w))
        assert math.prod(row.model_input_shape) * width == row.input_bytes
        assert math.prod(row.model_output_shape) * width == row.output_bytes
    assert check.measured_peak_bytes == mem.peak_activation_bytes and check.measured_peak_layer == mem.peak_layer
    assert check.folded_params == mem.deploy_params and check.folded_weight_bytes == mem.weight_bytes
    assert check.measured_training_bytes_per_image == mem.training_activation_bytes_per_image
    assert check.per_batch_bytes > 0  # BatchNorm's batch statistics: they do not grow with the batch


def test_torch_fmp_mode_has_its_own_exact_rule():
    net = resolve("fmp", 0.5, 2, 10, 40)
    model = models.build_from_network(net, fmp_mode="torch")
    check = memory_check(net, model=model, fmp_mode="torch")
    assert check.agree
    assert check.measured_training_bytes_per_image == memory.training_activation_bytes(net, "torch") \
        != memory.training_activation_bytes(net, "tf")


@pytest.mark.parametrize("rows,expected", [
    # the image (3 x 30 x 30 = 2,700 numbers) does not require a gradient: dropout keeps no noise
    # tensor, only the linear layer keeps its input (4 bytes per feature) for its weight gradient
    ('type = "fc"', {"fc": 2_700 * 4}),
    # a pool before the first layer with weights records nothing either (no argmax, no copy)
    ('type = "maxpool"\n[[layers]]\ntype = "fc"', {"maxpool_1": 0, "fc": 15 * 15 * 3 * 4}),
    ('type = "fmp"\nratio = 1.5\n[[layers]]\ntype = "conv"\nfilters = 8\n[[layers]]\ntype = "avgpool"\n'
     '[[layers]]\ntype = "fc"',
     # conv1 keeps its input (20 x 20 x 3), BatchNorm's input and ReLU's output (20 x 20 x 8 each);
     # then dropout's noise and the linear input (8 features each)
     {"fmp_1": 0, "conv1": (20 * 20 * 3 + 2 * 20 * 20 * 8) * 4, "avgpool": 0, "fc": 2 * 8 * 4}),
], ids=["fc-first", "maxpool-first", "fmp-first"])
def test_layers_before_the_first_weights_keep_no_gradient_state(tmp_path, rows, expected):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'name = "first"\n[[layers]]\n{rows}\n')
    net = resolve(str(spec), 1.0, 1, 10, 30)
    for fmp_mode in memory.FMP_MODES:
        mem = memory.network_memory(net, fmp_mode=fmp_mode)
        assert {row.name: row.training_bytes for row in mem.layers} == expected
        model = models.build_from_network(net, fmp_mode=fmp_mode)
        check = memory_check(net, model=model, fmp_mode=fmp_mode)
        assert check.agree and check.measured_training_bytes_per_image == sum(expected.values())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.sampled_from(["base", "mp3", "fmp"]), alpha=st.floats(min_value=0.05, max_value=1.2),
       delta=st.integers(min_value=1, max_value=4), classes=st.integers(min_value=1, max_value=300),
       resolution=st.integers(min_value=8, max_value=70), dtype=st.sampled_from(["fp32", "fp16", "int8"]))
def test_random_configurations_are_exact(variant, alpha, delta, classes, resolution, dtype):
    try:
        net = resolve(variant, alpha, delta, classes, resolution)
    except ConfigError:
        return
    assert memory_check(net, dtype).agree


def test_folding_keeps_the_function_and_counts_the_deploy_params():
    net = resolve("mp3", 0.5, 2, 100)
    model = models.build_from_network(net).eval()
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    assert sum(p.numel() for p in folded.parameters()) == network_cost(net, "deploy").params
    # the same function: compared in float64, where folding's rounding (one product per weight, a
    # different summation order) is ~1e-16 of the values, and through the model's layers stays
    # many orders below 1e-10, on any CPU; a wrong fold (a missing shift, a scale on the wrong
    # axis) is of the order of the values themselves
    images = torch.rand(3, 3, 32, 32, generator=generator, dtype=torch.float64)
    model64 = model.double()
    with torch.no_grad():
        expected, got = model64(images), fold_batchnorm(model64)(images)
    assert expected.abs().max() > 1e-3  # a real signal, not vanished activations
    assert (got - expected).abs().max() <= 1e-10 * expected.abs().max()


def test_a_model_that_differs_is_caught():
    net = resolve("base", 0.25, 2)
    no_dropout = memory_check(net, model=models.build_from_network(net, dropout=0.0))
    assert [layer.name for layer in no_dropout.disagreeing] == ["fc"]  # no noise tensor: 1,024 B less per image
    layer = no_dropout.disagreeing[0]
    assert layer.training_bytes - layer.measured_training_bytes == 4 * 256
    # ReLU6 in place needs its input for the backward pass: autograd keeps a copy per block, not modelled
    assert not memory_check(net, model=models.build_from_network(net, activation="relu6")).agree


def test_crosscheck_command_shows_memory_and_fails_loudly(monkeypatch):
    result = run("crosscheck", "--variant", "fmp", "--alpha", "0.25", "--delta", "2", "--dtype", "int8",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    mem = data["memory"]
    assert mem["agree"] and mem["dtype"] == "int8" and len(mem["layers"]) == 36
    assert mem["peak_activation_bytes"] == mem["measured_peak_bytes"] == 30_976
    assert mem["weight_bytes"] == mem["folded_weight_bytes"]
    table = run("crosscheck", "--variant", "base", "--alpha", "0.25", "--delta", "2").stdout
    assert "memory: all 29 layers agree" in table and "all 29 layers agree" in table

    real = models.build_from_network
    monkeypatch.setattr(models, "build_from_network", lambda network, **kw: real(network, **{**kw, "dropout": 0.0}))
    failed = run("crosscheck", "--variant", "base", "--alpha", "0.25", "--delta", "2")
    assert failed.exit_code == 1
    assert failed.stderr.strip() == ("mnetcost: error: crosscheck failed: memory of 1 of 29 layers disagrees with "
                                     "the model's tensors: fc; memory totals differ")
    assert "memory DISAGREES: 1 of 29 layers (fc)" in failed.stdout


def test_deploy_convention_in_crosscheck():
    result = run("crosscheck", "--variant", "mp3", "--alpha", "0.5", "--delta", "2", "--convention", "deploy",
                 "--format", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["agree"]
    assert data["params"] == data["fvcore_params"] == data["memory"]["deploy_params"]


# --- every view --------------------------------------------------------------------------------------
def test_table_json_contract():
    data = json.loads(run("table", "--variant", "fmp", "--alpha", "0.5", "--delta", "2", "--dtype", "int8",
                          "--format", "json").stdout)
    cost = network_cost(resolve("fmp", 0.5, 2), "paper", "int8")
    assert (data["dtype"], data["peak_activation_bytes"], data["peak_layer"], data["weight_bytes"],
            data["deploy_params"], data["training_activation_bytes_per_image"]) == (
        "int8", cost.peak_activation_bytes, cost.peak_layer, cost.weight_bytes, cost.deploy_params,
        cost.training_activation_bytes_per_image)
    for layer, row in zip(data["layers"], cost.memory.layers):
        assert (layer["input_bytes"], layer["output_bytes"], layer["weight_bytes"]) == (
            row.input_bytes, row.output_bytes, row.weight_bytes)
    assert [layer["name"] for layer in data["layers"] if layer["peak"]] == [cost.peak_layer]
    assert "fit" not in data


def test_table_target_says_whether_and_by_how_much():
    result = run("table", "--variant", "fmp", "--alpha", "1", "--delta", "2", "--target", "stm32f746")
    assert result.exit_code == 0
    assert "DOES NOT FIT STMicroelectronics STM32F746" in result.stdout and "memory (int8)" in result.stdout
    args = ("table", "--variant", "fmp", "--alpha", "1", "--delta", "2", "--target", "stm32f746", "--format", "json")
    cost = network_cost(resolve("fmp", 1.0, 2), "paper", "int8")
    simple = json.loads(run(*args, "--runtime", "simple").stdout)
    fit_ = simple["fit"]
    assert simple["runtime"] == "simple" and "arena_bytes" not in simple
    assert fit_["target"] == "stm32f746" and fit_["fits_sram"] and not fit_["fits_flash"]
    # Flash keeps the default 32 KiB for the application beside the weights
    assert fit_["flash_margin_bytes"] == 1024 * 1024 - cost.weight_bytes - 32_768
    assert fit_["flash_need_parts"] == {"model": cost.weight_bytes, "reserve": 32_768}
    assert fit_["sram_margin_bytes"] == 320 * 1024 - cost.peak_activation_bytes
    # a target's verdict is TensorFlow Lite Micro's by default, in its 32-bit build: its 326 KiB arena does not
    # fit the 320 KiB the simple peak (121 KiB) fits; Flash holds the file, TFLM's code (fmp's operators)
    # and the reserve
    data = json.loads(run(*args).stdout)
    assert data["runtime"] == "tflm" and data["arena_bytes"] == 334_108 and data["flash_bytes"] == 6_842_808
    assert data["minimum_arena_bytes"] == 334_108  # the smallest arena accepted: what the budget judges
    assert not data["fit"]["fits_sram"] and data["fit"]["sram_margin_bytes"] == 320 * 1024 - 334_108
    assert data["fit"]["flash_margin_bytes"] == 1024 * 1024 - 6_842_808 - 34_962 - 32_768
    none = json.loads(run(*args, "--runtime", "simple", "--flash-reserve", "0").stdout)["fit"]
    assert none["flash_margin_bytes"] == 1024 * 1024 - cost.weight_bytes
    own = json.loads(run("table", "--variant", "fmp", "--alpha", "0.25", "--delta", "2", "--max-peak-memory", "16KiB",
                         "--format", "json").stdout)
    assert own["dtype"] == "fp32" and own["fit"]["sram_bytes"] == 16384 and not own["fit"]["fits"]


def test_grid_and_paper_views_carry_the_totals():
    rows = json.loads(run("table", "--variant", "mp3", "--alpha", "0.25,0.5", "--delta", "2,4", "--target",
                          "nrf52840", "--format", "json").stdout)
    for row in rows:
        cost = network_cost(resolve("mp3", row["alpha"], row["delta"]), "paper", "int8")
        assert (row["peak_activation_bytes"], row["weight_bytes"]) == (cost.peak_activation_bytes, cost.weight_bytes)
        # with a target the verdict is TFLM's: its arena; the file, TFLM's code and the 32 KiB reserve in Flash
        flash = row["flash_bytes"] + row["runtime_code_bytes"] + 32_768
        assert row["fit"]["flash_need_bytes"] == flash
        assert row["fit"]["fits"] == (flash <= 2**20 and row["arena_bytes"] <= 2**18)
    assert "fits" in run("table", "--variant", "mp3", "--alpha", "0.25,0.5", "--target", "nrf52840").stdout
    paper = json.loads(run("paper", "--table", "6", "--dtype", "int8", "--format", "json").stdout)
    for row in paper:
        cost = network_cost(resolve(row["variant"], row["alpha"], row["delta"], row["classes"]), "paper", "int8")
        assert (row["dtype"], row["peak_activation_bytes"], row["weight_bytes"], row["deploy_params"]) == (
            "int8", cost.peak_activation_bytes, cost.weight_bytes, cost.deploy_params)


def test_sweep_keeps_what_fits():
    args = ("sweep", "-a", "0.1:1.5:0.01", "-d", "1,2,3,4", "--format", "json")
    rows = json.loads(run(*args, "--target", "stm32f746", "--runtime", "simple").stdout)
    everything = json.loads(run(*args, "--dtype", "int8").stdout)
    # Flash holds the weights and the application's default 32 KiB reserve
    fits = [r for r in everything if r["peak_activation_bytes"] <= 320 * 1024 and r["weight_bytes"] + 32_768 <= 2**20]
    assert len(rows) == len(fits) > 100 and len(everything) > len(rows)
    assert any(r["weight_bytes"] <= 2**20 and r["peak_activation_bytes"] <= 320 * 1024 for r in everything
               if r not in fits)
    for row in rows[:: max(1, len(rows) // 25)]:
        cost = network_cost(resolve(row["variant"], row["alpha"], row["delta"]), "paper", "int8")
        assert (row["peak_activation_bytes"], row["weight_bytes"]) == (cost.peak_activation_bytes, cost.weight_bytes)
    budget = json.loads(run("sweep", "--max-peak-memory", "64KiB", "--max-weight-bytes", "1MiB", "--dtype", "fp16",
                            "--format", "json").stdout)
    assert budget and all(r["peak_activation_bytes"] <= 65536 and r["weight_bytes"] + 32_768 <= 2**20 for r in budget)
    by_peak = json.loads(run("sweep", "--sort", "peak_activation_bytes", "--format", "json").stdout)
    assert [r["peak_activation_bytes"] for r in by_peak] == sorted(r["peak_activation_bytes"] for r in by_peak)


def test_plot_against_peak_memory(tmp_path):
    out = tmp_path / "peak.png"
    result = run("plot", "--x", "peak_memory", "--dtype", "int8", "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    data = json.loads(result.stdout)
    for point in data["points"]:
        cost = network_cost(resolve(point["variant"], point["alpha"], point["delta"], point["classes"]), "paper",
                            "int8")
        assert point["peak_activation_bytes"] == cost.peak_activation_bytes and point["dtype"] == "int8"
    front = [p["peak_activation_bytes"] for p in data["front"]]
    assert front == sorted(front)


@pytest.mark.parametrize("args,message", [
    (["table", "--target", "esp32"], "'esp32' is not one of"),
    (["sweep", "--target", "arduino"], "'arduino' is not one of"),
    (["table", "--dtype", "int4"], "'int4' is not one of"),
    (["sweep", "--dtype", "bf16"], "'bf16' is not one of"),
    (["sweep", "--max-peak-memory", "256KB"], "unknown suffix 'KB'"),
    (["table", "--max-weight-bytes", "1Mb"], "unknown suffix 'Mb'"),
    (["sweep", "--max-peak-memory", "-1"], "must not be negative"),
    (["table", "--max-weight-bytes", "-2MiB"], "must not be negative"),
    (["plot", "--x", "peak_memory", "--dtype", "fp64", "--out", "x.png"], "'fp64' is not one of"),
    (["plot", "--x", "params", "--dtype", "int8", "--out", "x.png"], "--dtype is only used with"),
    (["crosscheck", "--dtype", "int3"], "'int3' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


# --- budgets as the user gave them: zero, overriding a board, huge ---------------------------------
def test_a_zero_budget_is_a_budget():
    """0 bytes is a budget that nothing with a need fits (a script's "no RAM left"), not "no budget"."""
    zero = fit(24_576, 3_282_960, max_peak_memory=0)
    assert (zero.sram_bytes, zero.fits, zero.sram_margin_bytes, zero.binding) == (0, False, -24_576, "sram")
    both = fit(24_576, 3_282_960, "stm32f746", max_weight_bytes=0)  # Flash 0 binds before SRAM at 7.5 %
    assert (both.binding, both.fits_sram, both.fits_flash) == ("flash", True, False)
    assert fit(0, 0, max_peak_memory=0, max_weight_bytes=0).fits  # a need of 0 fits a budget of 0
    data = json.loads(run("table", "--max-peak-memory", "0", "--format", "json").stdout)["fit"]
    assert (data["sram_bytes"], data["binding"], data["sram_source"], data["fits"]) == (
        0, "sram", "max_peak_memory", False)
    line = run("table", "--target", "nrf52840", "--max-peak-memory", "0", "--runtime", "simple").stdout.splitlines()[-1]
    assert line.startswith("DOES NOT FIT ") and line.endswith("binding: sram")
    assert "peak RAM 24.0 KiB against your --max-peak-memory budget 0 B instead of the nrf52840's 256.0 KiB SRAM: " \
           "does NOT fit, 24,576 B (24.0 KiB) over" in line


def test_a_budget_that_overrides_a_board_is_shown_as_the_users():
    table = run("table", "--target", "stm32f746", "--max-peak-memory", "1GiB", "--runtime", "simple").stdout
    line = table.splitlines()[-1]
    assert line.startswith("DOES NOT FIT STMicroelectronics STM32F746 (Cortex-M7, 216 MHz; the MCU of MCUNet) with "
                           "your own SRAM budget: ")
    # 24,576 B of 2^30 is 0.0023 %, not "0 %"; the budget is the user's, and the board's SRAM is named as replaced
    assert ("peak RAM 24.0 KiB = 0.0023% of your --max-peak-memory budget 1,073,741,824 B (1.00 GiB) instead of "
            "the stm32f746's 320.0 KiB SRAM: fits") in line
    assert ("Flash (weights 3.13 MiB + reserve 32.0 KiB) 3.16 MiB = 316% of the stm32f746's 1.00 MiB Flash: "
            "does NOT fit") in line
    data = json.loads(run("table", "--target", "stm32f746", "--max-peak-memory", "1GiB", "--format", "json").stdout)
    assert (data["fit"]["sram_bytes"], data["fit"]["sram_source"], data["fit"]["flash_source"]) == (
        2**30, "max_peak_memory", "target")
    sweep = run("sweep", "-v", "base", "-a", "0.25", "-d", "1", "--target", "stm32f746", "--max-peak-memory",
                "1GiB", "--runtime", "simple").stdout
    assert sweep.startswith("1 of 1 configurations with peak RAM ≤ 1,073,741,824 B (1.00 GiB) and weights + reserve "
                            "32,768 B ≤ 1,048,576 B (1.00 MiB) ")
    assert ("; RAM budget, against the peak RAM int8 column: your --max-peak-memory budget 1,073,741,824 B "
            "(1.00 GiB) instead of the stm32f746's 320.0 KiB SRAM; Flash budget, against the weights int8 column + "
            "reserve 32,768 B: the stm32f746's 1.00 MiB Flash.") in sweep
    assert "320.0 KiB SRAM," not in sweep
    grid = run("table", "-a", "0.25,0.5", "--target", "stm32f746", "--max-weight-bytes", "2M", "--runtime",
               "simple").stdout
    assert grid.splitlines()[-1] == ("fits: RAM ≤ the stm32f746's 320.0 KiB SRAM and Flash ≤ your --max-weight-bytes "
                                     "budget 2,000,000 B (1.91 MiB) instead of the stm32f746's 1.00 MiB Flash; Flash "
                                     "holds the weights and a reserve of 32,768 B")


def test_a_huge_budget_is_printed_exactly_or_visibly_rounded():
    budget = 123456789012345678 * 2**30  # a float printed it as 123456789012345680.00 GiB
    assert memory.format_bytes(budget) == "1.235e+17 GiB"
    assert memory.format_bytes(123456789012345 * 2**30 + 3 * 2**27) == "123456789012345.38 GiB"  # 0.375: half to even
    assert memory.exact_bytes(budget) == f"{budget:,} B (1.235e+17 GiB)"
    out = run("sweep", "-v", "base", "-a", "1", "-d", "1", "--max-peak-memory", "123456789012345678GiB").stdout
    assert out.startswith(f"1 of 1 configurations with peak RAM ≤ {budget:,} B (1.235e+17 GiB) ")


def test_a_byte_figure_is_not_printed_next_to_itself(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\n[[layers]]\ntype = "fc"\n')
    out = run("table", "-v", str(spec), "-r", "8", "-c", "2", "--max-weight-bytes", "100", "--flash-reserve", "0").stdout
    assert "training keeps 768 B of activations" in out and "weights 1,544 B (1.5 KiB) for 386 " in out
    assert "peak activations 776 B at fc" in out and "does NOT fit, 1,444 B (1.4 KiB) over" in out
    import re

    assert not re.search(r"\b([\d,.]+ (?:B|KiB|MiB|GiB)) \(\1\)", out), out


# --- the totals made at once equal the rows made on first use ------------------------------------
@pytest.mark.parametrize("variant", ["base", "mp3", "fmp", "mobilenet_v2", "mobilenet_v3_small_fmp",
                                     "mobilenet_v3_large"])
@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_the_totals_equal_the_per_layer_rows(variant, dtype):
    from mnetcost.calculator import lifetimes

    network = resolve(variant, 0.5, 2 if variant in ("base", "mp3", "fmp") else 1)
    figures = memory.network_memory(network, dtype)
    assert "layers" not in vars(figures)  # the rows wait until asked for
    rows = figures.layers
    assert [row.name for row in rows] == [layer.name for layer in network.layers]
    assert figures.weight_bytes == sum(row.weight_bytes for row in rows) > 0
    assert figures.deploy_params == sum(row.deploy_params for row in rows)
    assert figures.training_activation_bytes_per_image == sum(row.training_bytes for row in rows) > 0
    reads = [layer.inputs for layer in network.layers]
    live = lifetimes.live_sizes(memory.activation_tensors(rows, reads))  # the graph of every tensor, from the rows
    assert list(figures.live_bytes) == live
    assert (figures.peak_activation_bytes, figures.peak_layer) == (max(live), rows[live.index(max(live))].name)
