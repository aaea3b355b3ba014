"""The family at narrow widths: residual adds and V3's expansion layers are decided on the rounded
widths, as the reference implementations (torchvision, Keras applications, TF-slim) decide them;
and the Keras width rule (``rounding = "keras"``). Calculator only (no torch, no TensorFlow): the
check against Keras's own builds is tests/test_keras_reference.py."""
import numpy as np
import pytest

from mnetcost.analysis.sweep import evaluate
from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.resolver import resolve
from mnetcost.calculator.spec import parse_spec
from mnetcost.errors import SpecError

GRID = [round(0.10 + 0.01 * i, 2) for i in range(91)]  # 0.10 .. 1.00


def names(network) -> list[str]:
    return [layer.name for layer in network.layers]


def tv_divisible(value: float) -> int:
    """torchvision's ``_make_divisible(value, 8)``, written out here as the reference."""
    new = max(8, int(value + 4) // 8 * 8)
    return new + 8 if new < 0.9 * value else new


# --- MobileNetV2 block 1 (32 -> 16 channels at alpha 1, stride 1) ---------------------------------
def test_v2_block1_adds_where_its_rounded_widths_agree():
    # at alpha 0.25 both widths round to 8: 112 x 112 x 8 = 100,352 adds that were missing
    net = resolve("mobilenet_v2", 0.25)
    add = net.layer("block1_add")
    assert add.inputs == ("block1_project", "conv1") and (add.out_h, add.out_w, add.out_c) == (112, 112, 8)
    assert net.layer("block2_expand").inputs == ("block1_add",)
    assert network_cost(net, "elementwise").mult_adds == 37_261_680 + 100_352
    with_adds = [a for a in GRID if "block1_add" in names(resolve("mobilenet_v2", a))]
    assert with_adds == [a for a in GRID if a <= 0.27]
    assert with_adds == [a for a in GRID if tv_divisible(32 * a) == tv_divisible(16 * a)]


def test_v2_block1_peak_holds_the_residual_input():
    cost = network_cost(resolve("mobilenet_v2", 0.25), "paper", "int8")
    live = dict(zip([r.layer.name for r in cost.layers], cost.memory.live_bytes))
    block1 = max(live[name] for name in live if name.startswith("block1_"))
    assert block1 == 301_056  # conv1's output (the residual's input), the projection and the sum: 3 x 100,352


# --- MobileNetV3: the residual of V3-Small block 7 (40 -> 48) and V3-Large block 11 (80 -> 112) ------
SMALL_BLOCK7 = [(0.10, 0.18), (0.23, 0.37), (0.45, 0.55), (0.67, 0.74), (0.89, 0.91)]


def test_v3_small_block7_adds_at_the_alphas_where_40_and_48_round_alike():
    with_adds = [a for a in GRID if "block7_add" in names(resolve("mobilenet_v3_small", a))]
    assert with_adds == [a for a in GRID if any(lo <= a <= hi for lo, hi in SMALL_BLOCK7)]
    assert with_adds == [a for a in GRID if tv_divisible(40 * a) == tv_divisible(48 * a)]
    assert 0.35 in with_adds and 0.5 in with_adds
    net = resolve("mobilenet_v3_small", 0.5)
    assert net.layer("block7_add").inputs == ("block7_project", "block6_add")
    assert net.layer("block8_expand").inputs == ("block7_add",)
    assert net.layer("block8_add").inputs == ("block8_project", "block7_add")


def test_v3_large_block11_adds_at_alpha_012_to_015_and_023():
    with_adds = [a for a in GRID if "block11_add" in names(resolve("mobilenet_v3_large", a))]
    assert with_adds == [0.12, 0.13, 0.14, 0.15, 0.23]
    assert with_adds == [a for a in GRID if tv_divisible(80 * a) == tv_divisible(112 * a)]


# --- MobileNetV3's expansion layer: absent where the rounded expanded width is the input's ---------
def test_v3_large_drops_the_8_to_8_expansions_at_alpha_01():
    net = resolve("mobilenet_v3_large", 0.1)
    cost = network_cost(net, "paper")
    assert cost.mult_adds == 9_008_704
    # block 2 (16 -> 24, expansion 64) and block 4 (24 -> 40, expansion 72) both start from 8 channels
    # and expand to make_divisible(64 * 0.1) = 8 and make_divisible(72 * 0.1) = 8: no expansion conv
    present = names(net)
    assert "block1_expand" not in present and "block2_expand" not in present
    assert net.layer("block2_dw").inputs == ("block1_add",)
    assert net.layer("block2_dw").in_c == 8


def test_the_expansion_is_kept_where_the_rounded_widths_differ():
    net = resolve("mobilenet_v3_large", 1.0)
    assert "block1_expand" not in names(net) and "block2_expand" in names(net)
    assert network_cost(net, "paper").mult_adds == 216_589_760


# --- the same decisions in the vectorised sweep ---------------------------------------------------
@pytest.mark.parametrize("variant", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                                     "mobilenet_v3_small_mp3"])
def test_the_sweep_decides_per_point_as_the_scalar_engine(variant):
    alphas = [0.1, 0.14, 0.15, 0.2, 0.23, 0.25, 0.3, 0.35, 0.5, 0.75, 0.9, 1.0]
    result = evaluate([variant], alphas, [1], resolutions=[96], convention="elementwise", dtype="int8")
    assert list(result.alpha) == alphas
    for alpha, params, macs, peak in zip(result.alpha, result.params, result.mult_adds,
                                         result.peak_activation_bytes):
        cost = network_cost(resolve(variant, float(alpha), 1, resolution=96), "elementwise", "int8")
        assert (int(params), int(macs), int(peak)) == (cost.params, cost.mult_adds, cost.peak_activation_bytes)


def test_the_sweep_prices_v2_block1_add_and_v3_large_expansions():
    result = evaluate(["mobilenet_v2", "mobilenet_v3_large"], [0.1, 0.25], [1], convention="elementwise",
                      dtype="int8")
    v2 = {float(a): (int(m), int(p)) for v, a, m, p in zip(result.variant, result.alpha, result.mult_adds,
                                                           result.peak_activation_bytes) if v == 0}
    assert v2[0.25][0] == 37_261_680 + 100_352
    paper = evaluate(["mobilenet_v3_large"], [0.1], [1])
    assert int(paper.mult_adds[0]) == 9_008_704


# --- residual = true in a spec: allowed where the rounded shapes agree -----------------------------
HEAD = 'name = "tiny"\nclasses = 10\nresolution = 32\nrounding = "divisible8"\nactivation = "relu6"\n'
STEM = '[[layers]]\ntype = "conv"\nfilters = 16\nstride = 2\n'
FORCED = (HEAD + STEM + '[[layers]]\ntype = "inverted_residual"\nfilters = 24\nresidual = true\n'
          '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')


def test_residual_true_is_accepted_where_the_rounded_widths_agree():
    net = resolve(parse_spec(FORCED, "forced.toml"), 0.25)  # 16 and 24 both round to 8
    assert net.layer("block1_add").inputs == ("block1_project", "conv1")
    with pytest.raises(SpecError, match=r"block block1: residual = true cannot add its input \(16 channels\) to "
                                        r"its output \(24 channels\) at alpha 1: the shapes differ"):
        resolve(parse_spec(FORCED, "forced.toml"), 1.0)


def test_a_sweep_leaves_out_the_points_where_a_forced_residual_cannot_add(tmp_path):
    path = tmp_path / "forced.toml"
    path.write_text(FORCED)
    result = evaluate([str(path)], [0.25, 0.5, 1.0], [1])
    assert list(result.alpha) == [0.25]
    reasons = [item["reason"] for item in result.skipped]
    assert len(reasons) == 1 and "residual = true cannot add" in reasons[0] and "the shapes differ" in reasons[0]
    assert sum(item["count"] for item in result.skipped) == 2
    assert np.array_equal(result.mult_adds, [network_cost(resolve(str(path), 0.25)).mult_adds])


def test_crosscheck_reference_keras_without_keras_is_one_line(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['keras'] = None; "  # import keras -> ImportError
            "from mnetcost.cli import main; sys.argv = ['mnetcost'] + sys.argv[1:]; main()")
    result = subprocess.run([sys.executable, "-c", code, "crosscheck", "--reference", "keras", "-v", "mobilenet_v2"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "(keras is not installed)" in result.stderr and "pip install 'mnetcost[tflite]'" in result.stderr


# --- the Keras rule (rounding = "keras"); each figure was measured on keras.applications' own build
# (count_params and the Mult-Adds of its layers: tests/test_keras_reference.py does it at every alpha) ---
def test_keras_rule_v3_large_075_is_keras_and_tf_slim():
    keras = network_cost(resolve("mobilenet_v3_large", 0.75, rounding="keras"))
    assert (keras.params, keras.mult_adds) == (4_012_616, 154_560_624)  # TF-slim publishes 155 M and 4.0 M
    torchvision = network_cost(resolve("mobilenet_v3_large", 0.75))
    assert torchvision.mult_adds == 140_033_816
    keras_net, torch_net = (resolve("mobilenet_v3_large", 0.75, rounding=rule) for rule in ("keras", "divisible8"))
    widths = {name: (keras_net.layer(name).out_c, torch_net.layer(name).out_c)
              for name in ("conv1", "block2_expand", "block8_expand", "block9_expand", "conv3")}
    assert widths == {
        "conv1": (16, 16),  # Keras keeps the stem at 16; make_divisible(16 * 0.75) = 16 too
        "block2_expand": (64, 48),  # ratio 64/16 x the 16-channel stem; make_divisible(64 * 0.75)
        "block8_expand": (160, 152),  # 2.5 x 64; make_divisible(200 * 0.75)
        "block9_expand": (144, 136),  # make_divisible(2.3 x 64 = 147.2); make_divisible(184 * 0.75)
        "conv3": (1280, 960),  # the head keeps 1280 for alpha <= 1; torchvision scales it
    }
    wide = resolve("mobilenet_v3_large", 1.4, rounding="keras")
    assert (wide.layer("conv1").out_c, wide.layer("conv3").out_c) == (16, 1792)


def test_keras_rule_v2_rounds_the_truncated_width():
    # Keras's MobileNetV2 makes int(filters * alpha) divisible by 8: at alpha 0.28 the 32-wide blocks
    # get int(8.96) = 8 -> 8 channels, where make_divisible(8.96) = 16 (8 < 0.9 x 8.96)
    keras_net, torch_net = (resolve("mobilenet_v2", 0.28, rounding=rule) for rule in ("keras", "divisible8"))
    assert (keras_net.layer("block4_project").out_c, torch_net.layer("block4_project").out_c) == (8, 16)
    keras = network_cost(keras_net)
    assert (keras.params, keras.mult_adds) == (1_571_416, 43_574_448)
    assert keras_net.layer("conv1").out_c == 16  # the stem: make_divisible(32 * 0.28) without truncation


def test_keras_rule_is_truncation_for_mobilenet():
    for alpha in (0.25, 0.29, 0.5, 1.3):
        keras, truncate = (network_cost(resolve("base", alpha, 2, rounding=rule)) for rule in ("keras", "truncate"))
        assert (keras.params, keras.mult_adds) == (truncate.params, truncate.mult_adds)
    assert resolve("base", 0.29, rounding="keras").layer("conv_pw_2").out_c == 37  # int(128 * 0.29)


def test_keras_rule_in_the_sweep_and_a_spec_file(tmp_path):
    path = tmp_path / "v3k.toml"
    path.write_text('extends = "mobilenet_v3_large"\nrounding = "keras"\n')
    result = evaluate([str(path), "mobilenet_v3_large"], [0.75], [1], rounding=None)
    assert list(result.mult_adds) == [154_560_624, 140_033_816]
    swept = evaluate(["mobilenet_v3_small"], [0.1, 0.35, 0.75, 1.4], [1], rounding="keras", convention="elementwise")
    for alpha, macs in zip(swept.alpha, swept.mult_adds):
        assert macs == network_cost(resolve("mobilenet_v3_small", float(alpha), rounding="keras"), "elementwise").mult_adds
