"""The engine against fvcore, layer by layer: every paper configuration, random ones, every
convention, the CLI's output and exit status, and a deliberately wrong model that must fail."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fvcore")
from click.testing import CliRunner  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from mnetcost.nn import models  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.calculator.cost import CONVENTIONS, get_convention, network_cost  # noqa: E402
from mnetcost.nn.crosscheck import UNPRINTED, crosscheck, handle_table, paper_grid  # noqa: E402
from mnetcost.errors import ConfigError  # noqa: E402
from mnetcost.calculator.resolver import resolve  # noqa: E402

GRID = paper_grid()


def run(*args):
    return CliRunner().invoke(main, ["crosscheck", *args], catch_exceptions=False)


def _assert_exact(check):
    assert check.disagreeing == [], [(l.name, l.params, l.fvcore_params, l.mult_adds, l.fvcore_mult_adds)
                                     for l in check.disagreeing]
    assert check.totals_agree and check.agree
    assert check.unexpected_ops == {}
    cost = network_cost(check.network, check.convention)
    assert [l.name for l in check.layers] == [l.layer.name for l in cost.layers]
    assert (check.params, check.mult_adds) == (cost.params, cost.mult_adds)


def test_the_grid_is_every_printed_configuration():
    keys = {(c.variant, c.alpha, c.delta, c.classes) for c in GRID}
    assert len(GRID) == len(keys) == 38  # Tables 4-6, both datasets, the baseline once per dataset
    assert {c.classes for c in GRID} == {10, 100} and {c.variant for c in GRID} == {"base", "mp3", "fmp"}


@pytest.mark.parametrize("config", GRID, ids=lambda c: f"{c.variant}-a{c.alpha:g}-d{c.delta}-c{c.classes}")
def test_every_paper_configuration_agrees_layer_by_layer(config):
    network = resolve(config.variant, config.alpha, config.delta, config.classes, config.resolution)
    check = crosscheck(network, "paper")
    _assert_exact(check)
    # the paper convention counts BatchNorm with 4 numbers per channel: the running stats really exist
    layer = next(l for l in check.layers if l.name == "conv_pw_1")
    assert layer.bn_stats == 2 * network.layer("conv_pw_1").out_c
    assert layer.fvcore_params == layer.trainable_params + layer.bn_stats


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
def test_every_convention_agrees(variant, convention):
    _assert_exact(crosscheck(resolve(variant, 0.5, 2, 100), convention))


@pytest.mark.parametrize("config", UNPRINTED, ids=lambda c: f"{c.variant}-c{c.classes}-r{c.resolution}")
def test_unprinted_configurations_agree(config):
    check = crosscheck(resolve(config.variant, config.alpha, config.delta, config.classes, config.resolution))
    _assert_exact(check)


def test_mobilenet_at_imagenet_size_matches_howard_et_al():
    check = crosscheck(resolve("base", 1.0, 1, 1000, 224), "paper")
    _assert_exact(check)
    assert check.fvcore_mult_adds == 568_740_352  # "569 million Mult-Adds"
    trainable = crosscheck(resolve("base", 1.0, 1, 1000, 224), "trainable").fvcore_params
    assert trainable == 4_231_976  # "4.2 million parameters" (torchvision-style count, BN gamma/beta)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.sampled_from(["base", "mp3", "fmp"]),
       alpha=st.floats(min_value=0.05, max_value=1.3, allow_nan=False),
       delta=st.integers(min_value=1, max_value=5),
       classes=st.integers(min_value=1, max_value=300),
       resolution=st.integers(min_value=8, max_value=72),
       convention=st.sampled_from(sorted(CONVENTIONS)))
def test_random_configurations_agree(variant, alpha, delta, classes, resolution, convention):
    try:
        network = resolve(variant, alpha, delta, classes, resolution)
    except ConfigError:  # alpha too small for a layer, or an input too small for fmp's seven poolings
        return
    _assert_exact(crosscheck(network, convention))


def test_handle_tables_count_only_what_the_convention_counts():
    paper = handle_table(get_convention("paper"))
    assert "aten::_convolution" in paper and "aten::linear" in paper
    # set_op_handle(op, None) would NOT remove fvcore's default BatchNorm handle: the table leaves it out
    assert "aten::batch_norm" not in paper and "aten::adaptive_avg_pool2d" not in paper
    assert handle_table(get_convention("fvcore")) is None  # fvcore's own defaults
    check = crosscheck(resolve("mp3", 0.25, 2), "paper")
    assert check.unsupported_ops == {"aten::adaptive_avg_pool2d": 1, "aten::batch_norm": 27,
                                     "aten::max_pool2d": 5, "aten::pad": 5}
    assert "aten::batch_norm" not in crosscheck(resolve("mp3", 0.25, 2), "fvcore").unsupported_ops


def test_torch_fmp_mode_agrees_and_shows_its_op():
    check = crosscheck(resolve("fmp", 0.25, 2), "paper", fmp_mode="torch")
    _assert_exact(check)
    assert check.unsupported_ops["aten::fractional_max_pool2d"] == 7


# --- a deliberately wrong model --------------------------------------------------------------
def _dense_conv_dw_5(monkeypatch):
    """conv_dw_5 built as a dense conv (groups=1) instead of a depthwise one: same shapes, wrong cost."""
    real = models.conv_block

    def wrong(layer, activation="relu"):
        block = real(layer, activation)
        if layer.name == "conv_dw_5":
            conv = block.conv
            block.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                   conv.padding, groups=1, bias=False)
        return block

    monkeypatch.setattr(models, "conv_block", wrong)


def test_a_wrong_model_fails_the_library_check(monkeypatch):
    _dense_conv_dw_5(monkeypatch)
    check = crosscheck(resolve("base", 0.5, 2), "paper")
    assert not check.agree and not check.totals_agree
    assert [layer.name for layer in check.disagreeing] == ["conv_dw_5"]
    layer = check.disagreeing[0]
    channels = int(256 * 0.5)
    assert layer.fvcore_mult_adds == layer.mult_adds * channels  # a dense conv: C times the depthwise cost


def test_a_wrong_model_fails_the_command_loudly(monkeypatch):
    _dense_conv_dw_5(monkeypatch)
    result = run("--variant", "base", "--alpha", "0.5", "--delta", "2")
    assert result.exit_code == 1
    assert "mnetcost: error: crosscheck failed: 1 of 29 layers disagree with fvcore: conv_dw_5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DISAGREE: 1 of 29 layers (conv_dw_5)" in result.stdout
    data = json.loads(run("--variant", "base", "--alpha", "0.5", "--delta", "2", "--format", "json").stdout)
    assert data["agree"] is False
    assert [l["name"] for l in data["layers"] if not l["agree"]] == ["conv_dw_5"]


def test_missing_running_stats_break_the_paper_convention_only(monkeypatch):
    real = models.conv_block

    def no_stats(layer, activation="relu"):
        block = real(layer, activation)
        if layer.name == "conv_pw_3":
            block.bn = nn.BatchNorm2d(layer.out_c, track_running_stats=False)
        return block

    monkeypatch.setattr(models, "conv_block", no_stats)
    network = resolve("fmp", 0.25, 2)
    assert [l.name for l in crosscheck(network, "paper", memory=False).disagreeing] == ["conv_pw_3"]
    assert crosscheck(network, "trainable", memory=False).agree
    # a BatchNorm without running statistics cannot be folded: the deployed weights are not what the engine says
    assert [l.name for l in crosscheck(network, "trainable").memory.disagreeing] == ["conv_pw_3"]


# --- the command ------------------------------------------------------------------------------
def test_command_json_contract():
    result = run("--variant", "fmp", "--alpha", "0.25", "--delta", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("variant", "alpha", "delta", "classes", "resolution", "convention", "agree", "params",
                "mult_adds", "fvcore_params", "fvcore_mult_adds", "layers", "unsupported_ops"):
        assert key in data
    config = (data["variant"], data["alpha"], data["delta"], data["classes"], data["resolution"])
    assert config == ("fmp", 0.25, 2, 10, 32)
    assert data["agree"] is True and data["convention"] == "paper"
    assert len(data["layers"]) == 36 and all(layer["agree"] for layer in data["layers"])
    for layer in data["layers"]:
        assert {"name", "type", "params", "mult_adds", "fvcore_params", "fvcore_mult_adds", "agree"} <= set(layer)
        assert layer["params"] == layer["fvcore_params"] and layer["mult_adds"] == layer["fvcore_mult_adds"]
    assert data["params"] == sum(layer["params"] for layer in data["layers"]) == 433_458
    assert data["mult_adds"] == sum(layer["mult_adds"] for layer in data["layers"]) == 9_576_768
    assert data["unsupported_ops"]["aten::batch_norm"] == 27


def test_command_table_and_flops():
    result = run("--variant", "fmp", "--alpha", "0.25", "--delta", "2")
    assert result.exit_code == 0
    assert "all 36 layers agree" in result.stdout and "fmp_7" in result.stdout
    data = json.loads(run("--convention", "flops", "--alpha", "0.25", "--format", "json").stdout)
    assert data["flops"] == 2 * data["mult_adds"] == 2 * data["fvcore_mult_adds"]
    csv = run("--convention", "flops", "--alpha", "0.25", "--dtype", "int8", "--format", "csv").stdout.splitlines()
    # one table (before: two joined by a blank line): each layer's counts and its bytes beside the model's
    assert csv[0] == ("name,type,params,fvcore_params,flops,fvcore_flops,agree,input_bytes_int8,"
                      "model_input_bytes_int8,output_bytes_int8,model_output_bytes_int8,weight_bytes_int8,"
                      "folded_weight_bytes_int8,training_bytes_per_image_fp32,"
                      "measured_training_bytes_per_image_fp32,memory_agree")
    assert "" not in csv and len(csv) == 1 + 29
    assert csv[1] == "conv1,conv,248,248,110592,110592,true,3072,3072,2048,2048,280,280,29452,29452,true"


def test_command_all_covers_the_grid_and_the_unprinted(monkeypatch):
    # the real --all on a shortened grid (the full grid is checked above, configuration by configuration)
    import mnetcost.nn.crosscheck as cc

    monkeypatch.setattr(cc, "all_configurations", lambda: GRID[:2] + GRID[-1:] + list(UNPRINTED[:2]))
    result = run("--all", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 5
    assert all(row["agree"] and row["layers_disagreeing"] == [] for row in data)
    assert [row["source"] for row in data][-2:] == ["unprinted", "unprinted"]
    assert data[0]["params"] == data[0]["fvcore_params"] == 3_239_114  # Table 4's 3.23M
    table = run("--all").stdout
    assert "5 of 5 configurations agree on every layer" in table


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "No such option"),
    (["--alpha", "0"], "alpha"),
    (["--all", "--variant", "mp3"], "drop --variant"),
    (["--fmp-mode", "keras"], "fmp-mode"),
    (["--variant", "nope"], "unknown variant"),
    (["--variant", "fmp", "--resolution", "8"], "too small"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_non_square_input_and_other_roundings_agree():
    _assert_exact(crosscheck(resolve("fmp", 0.5, 2, 10, (48, 40), rounding="divisible8"), "paper"))
    _assert_exact(crosscheck(resolve("base", 0.35, 3, 10, (33, 65), rounding="nearest"), "fvcore", fmp_mode="torch"))
