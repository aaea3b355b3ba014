"""The MobileNet family in the specs: inverted residuals, squeeze-excite, the new activations, width
rounding, downsampling by pooling, the built-in MobileNetV2/V3 specs and their published costs
(no torch here; the model side is tests/test_family_models.py)."""
import json
import subprocess
import sys

import pytest

from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.resolver import make_divisible, plan, resolve
from mnetcost.calculator.spec import FAMILY_VARIANTS, load_spec, parse_spec
from mnetcost.errors import ConfigError, MnetcostError, SpecError

HEAD = 'name = "tiny"\nclasses = 10\nresolution = 32\nrounding = "divisible8"\nactivation = "relu6"\n'
STEM = '[[layers]]\ntype = "conv"\nfilters = 16\nstride = 2\nactivation = "hardswish"\n'
TAIL = '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n'


def block(**fields) -> str:
    lines = ['[[layers]]', 'type = "inverted_residual"']
    for key, value in fields.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


# Every new kind in one small network: t = 1 (no expansion), t = 6 with a residual, an absolute
# expansion with kernel 5, squeeze-excite and hard-swish, a fractional t, the V3 head.
EVERY_KIND = (HEAD + STEM + block(expansion=1, filters=16) + block(expansion=6, filters=24, stride=2, repeat=2)
              + block(expand=72, filters=24, kernel=5, se=True, activation="hardswish")
              + block(expansion=2.5, filters=40, stride=2, activation="hardsigmoid")
              + '[[layers]]\ntype = "conv"\nexpansion = 6\nkernel = 1\nactivation = "hardswish"\n'
              + '[[layers]]\ntype = "avgpool"\n'
              + '[[layers]]\ntype = "conv"\nfilters = 64\nkernel = 1\nbn = false\nbias = true\n'
                'activation = "hardswish"\n'
              + '[[layers]]\ntype = "fc"\n')


def every_kind(alpha=1.0, delta=1, **kwargs):
    return resolve(parse_spec(EVERY_KIND, "every.toml"), alpha, delta, **kwargs)


def test_block_layers_names_and_what_each_reads():
    net = every_kind()
    names = [layer.name for layer in net.layers]
    assert names == [
        "conv1",
        "block1_dw", "block1_project",  # t = 1: no expansion; 16 -> 16 at stride 1: a residual
        "block1_add",
        "block2_expand", "block2_dw", "block2_project",  # 16 -> 24, stride 2: no residual
        "block3_expand", "block3_dw", "block3_project", "block3_add",  # the repeat: stride 1, 24 -> 24
        "block4_expand", "block4_dw", "block4_se_pool", "block4_se_reduce", "block4_se_expand", "block4_se_scale",
        "block4_project", "block4_add",
        "block5_expand", "block5_dw", "block5_project",
        "conv2", "avgpool", "conv3", "fc",
    ]
    layer = net.layer
    assert layer("block1_add").inputs == ("block1_project", "conv1")
    assert layer("block3_add").inputs == ("block3_project", "block2_project")
    assert layer("block4_se_pool").inputs == ("block4_dw",)
    assert layer("block4_se_scale").inputs == ("block4_dw", "block4_se_expand")
    assert layer("block4_project").inputs == ("block4_se_scale",)
    assert layer("block4_add").inputs == ("block4_project", "block3_add")
    assert layer("block5_expand").inputs == ("block4_add",)
    assert net.branched and not resolve("base").branched


def test_block_channels_kernels_activations_and_squeeze_excite():
    net = every_kind()
    layer = net.layer
    assert (layer("conv1").out_c, layer("conv1").activation) == (16, "hardswish")
    assert (layer("block1_dw").groups, layer("block1_dw").out_c, layer("block1_dw").activation) == (16, 16, "relu6")
    assert (layer("block1_project").out_c, layer("block1_project").activation, layer("block1_project").bn) == (16, "", True)
    assert layer("block2_expand").out_c == 96 and layer("block2_dw").output_shape == (8, 8, 96)
    assert (layer("block4_dw").kernel, layer("block4_dw").padding, layer("block4_dw").out_c) == (5, (2, 2, 2, 2), 72)
    assert layer("block4_dw").activation == "hardswish"
    # squeeze-excite: make_divisible(72 // 4, 8) = 24 channels, 1x1 convs with bias, ReLU then hard-sigmoid
    reduce, expand = layer("block4_se_reduce"), layer("block4_se_expand")
    assert (reduce.in_c, reduce.out_c, reduce.bias, reduce.bn, reduce.activation) == (72, 24, True, False, "relu")
    assert (expand.in_c, expand.out_c, expand.bias, expand.bn, expand.activation) == (24, 72, True, False, "hardsigmoid")
    assert layer("block4_se_pool").output_shape == (1, 1, 72) and layer("block4_se_scale").output_shape == (8, 8, 72)
    assert layer("block5_expand").out_c == 60  # round(24 * 2.5), as torchvision's round(inp * t)
    assert layer("block5_dw").activation == "hardsigmoid"
    assert layer("conv2").out_c == 6 * 40  # "expansion" on a conv row: times its input channels
    head = layer("conv3")
    assert (head.out_c, head.bias, head.bn, head.activation, head.input_shape) == (64, True, False, "hardswish", (1, 1, 240))


def test_delta_multiplies_every_depthwise_conv_and_the_squeeze_reads_it():
    net = every_kind(delta=2)
    layer = net.layer
    assert (layer("block1_dw").in_c, layer("block1_dw").out_c, layer("block1_dw").groups) == (16, 32, 16)
    assert (layer("block1_project").in_c, layer("block1_project").in_delta) == (32, 2)
    assert layer("block4_dw").out_c == 144
    assert (layer("block4_se_reduce").in_c, layer("block4_se_reduce").out_c) == (144, 40)  # make_divisible(36, 8)
    assert layer("block4_se_scale").output_shape == (8, 8, 144)


def test_width_rounding_follows_torchvision_at_any_alpha():
    # make_divisible: nearest multiple of 8, at least 8, at most 10 % below
    assert [make_divisible(v) for v in (4, 11.2, 12, 18, 18.0, 20, 27.9, 100)] == [8, 16, 16, 24, 24, 24, 32, 104]
    v2 = resolve("mobilenet_v2", 0.35)
    assert v2.layer("conv1").out_c == 16 and v2.layer("block1_project").out_c == 8
    assert v2.layer("conv2").out_c == 1280  # the last conv keeps 1280 for alpha < 1 ...
    assert resolve("mobilenet_v2", 1.4).layer("conv2").out_c == 1792  # ... and widens with alpha > 1
    v3 = resolve("mobilenet_v3_large", 0.75)
    assert (v3.layer("conv1").out_c, v3.layer("block2_expand").out_c, v3.layer("conv3").out_c) == (16, 48, 960)
    assert v3.layer("conv2").out_c == 6 * v3.layer("block15_project").out_c  # 6 x the last width, as torchvision
    assert resolve("mobilenet_v3_small", 1.0, rounding="truncate").rounding == "truncate"


def test_family_specs_carry_their_published_defaults():
    for variant in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"):
        net = resolve(variant)
        assert (net.classes, net.resolution, net.rounding) == (1000, (224, 224), "divisible8")
        assert net.layers[-1].input_shape == (1, 1, {"mobilenet_v2": 1280, "mobilenet_v3_large": 1280,
                                                     "mobilenet_v3_small": 1024}[variant])
    cifar = resolve("mobilenet_v2", 0.5, 2, 10, 32)
    assert (cifar.classes, cifar.resolution, cifar.layer("conv2").output_shape) == (10, (32, 32), (1, 1, 1280))
    assert resolve("base").classes == 10 and plan("base").resolution == (32, 32)


def test_block_counts_match_the_papers_tables():
    def blocks(variant):
        return len({layer.block_name for layer in resolve(variant).layers if layer.block_name})

    def count(variant, suffix):
        return sum(layer.name.endswith(suffix) for layer in resolve(variant).layers)

    assert (blocks("mobilenet_v2"), count("mobilenet_v2", "_add"), count("mobilenet_v2", "_expand")) == (17, 10, 16)
    assert (blocks("mobilenet_v3_large"), count("mobilenet_v3_large", "_add"), count("mobilenet_v3_large", "_se_scale")) \
        == (15, 10, 8)
    assert (blocks("mobilenet_v3_small"), count("mobilenet_v3_small", "_add"), count("mobilenet_v3_small", "_se_scale")) \
        == (11, 6, 9)


def test_downsampling_by_max_pooling_on_base_is_table_2():
    derived = parse_spec('extends = "base"\ndownsample = "maxpool"\n', "base_mp3.toml")
    ours, table_2 = resolve(derived, 0.5, 2), resolve("mp3", 0.5, 2)
    strip = lambda net: [(l.name, l.kind, l.input_shape, l.output_shape, l.stride, l.padding, l.inputs)
                         for l in net.layers]
    assert strip(ours) == strip(table_2)


def test_family_downsampling_variants():
    mp3 = resolve("mobilenet_v2_mp3", 1.0, 1, 10, 32)
    assert [l.name for l in mp3.layers][:4] == ["conv1", "maxpool_1", "block1_dw", "block1_project"]
    assert mp3.layer("conv1").output_shape == (32, 32, 32) and mp3.layer("maxpool_1").output_shape == (16, 16, 32)
    assert all(l.stride == 1 for l in mp3.layers if l.kind in ("conv", "dw", "pw"))
    assert mp3.layer("maxpool_2").inputs == ("block1_project",)
    assert mp3.layer("block2_dw").output_shape[:2] == (8, 8) and "block2_add" not in [l.name for l in mp3.layers]
    assert sum(l.kind == "maxpool" for l in mp3.layers) == 5
    fmp = resolve("mobilenet_v3_small_fmp", 0.5, 2, 10, 32)
    sizes = [l.output_shape[0] for l in fmp.layers if l.kind == "fmp"]
    assert sizes == [22, 15, 10, 6, 4] and all(l.ratio == 1.44 for l in fmp.layers if l.kind == "fmp")
    assert fmp.spec.extends == "mobilenet_v3_small" and fmp.spec.downsample == "fmp"
    assert {spec: load_spec(spec).name for spec in FAMILY_VARIANTS} == {spec: spec for spec in FAMILY_VARIANTS}


GOOD = HEAD + STEM


@pytest.mark.parametrize("text,message", [
    (GOOD + block(filters=24, activation="swish") + TAIL,
     "row 2 (inverted_residual): field 'activation': unknown activation 'swish' (one of relu, relu6, hardswish, "
     "hardsigmoid)"),
    (GOOD + block(filters=24, kernel=7) + TAIL, "field 'kernel' must be 3 or 5"),
    (GOOD + block(filters=24, se=True, se_reduction=1) + TAIL, "field 'se_reduction' must be an integer >= 2"),
    (GOOD + block(filters=24, se=True, se_reduction=2.5) + TAIL, "field 'se_reduction' must be an integer, got 2.5"),
    (GOOD + block(filters=24, se_reduction=4) + TAIL, "field 'se_reduction' needs se = true"),
    (GOOD + block(filters=24, se="yes") + TAIL, "field 'se' must be true or false, got 'yes'"),
    (GOOD + block(filters=24, expansion=0.5) + TAIL, "field 'expansion' must be a number >= 1"),
    (GOOD + block(filters=24, expansion=6, expand=96) + TAIL, "give at most one of 'expansion'"),
    (GOOD + block(filters=16, stride=2, residual=True) + TAIL,
     "residual = true cannot add the block's input to its output: stride 2 changes the spatial size"),
    (GOOD + '[[layers]]\ntype = "conv"\nfilters = 8\nexpansion = 2\n' + TAIL, "not both"),
    ('activation = "gelu"\n' + STEM + TAIL, "top-level field 'activation' must be one of relu, relu6"),
    ('downsample = "avgpool"\n' + STEM + TAIL, "top-level field 'downsample' must be one of stride, maxpool, fmp"),
    ('fmp_ratio = 1.0\n' + STEM + TAIL, "top-level field 'fmp_ratio' must be greater than 1"),
    ('extends = "mobilenet_v5"\n', "'extends' must name a built-in variant"),
    ('extends = "base"\n' + TAIL, "a spec that extends 'base' takes its rows"),
])
def test_bad_family_specs_are_one_line(text, message):
    with pytest.raises(SpecError) as info:
        parse_spec(text, "bad.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_residual_whose_shapes_cannot_add():
    text = GOOD + block(filters=24, residual=True) + TAIL  # 16 channels in, 24 out
    with pytest.raises(SpecError, match=r"block block1: residual = true cannot add its input \(16 channels\) "
                                        r"to its output \(24 channels\) at alpha 1: the shapes differ"):
        resolve(parse_spec(text, "bad.toml"))
    assert "block1_add" not in [l.name for l in resolve(parse_spec(GOOD + block(filters=16, residual=False) + TAIL,
                                                                   "x.toml")).layers]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mnetcost", *args], capture_output=True, text=True, timeout=120)


def test_bad_specs_on_the_command_line_exit_2_with_one_line(tmp_path):
    cases = {
        "activation.toml": GOOD + block(filters=24, activation="mish") + TAIL,
        "residual.toml": GOOD + block(filters=24, residual=True) + TAIL,
        "se.toml": GOOD + block(filters=24, se=True, se_reduction=0) + TAIL,
        "kernel.toml": GOOD + block(filters=24, kernel=4) + TAIL,
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = cli("table", "-v", str(path))
        assert result.returncode == 2, (name, result.stderr)
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr


# --- the published figures ----------------------------------------------------------------------
# (variant: exact counts under the conventions that give each printed figure). The papers print
# params to 0.1 M and Mult-Adds to 1 M, truncated: Sandler et al. 2018 (Table 4) MobileNetV2 3.4 M
# and 300 M; Howard et al. 2019 (Table 3) V3-Large 5.4 M and 219 M, V3-Small 2.5 M and 56 M.
# 'trainable' is torchvision's parameter count (sum of numel over model.parameters()).
EXACT = {
    "mobilenet_v2": {"weights": 3_470_760, "trainable": 3_504_872, "paper": 3_538_984,
                     "macs": 300_774_272, "elementwise": 300_990_656},
    "mobilenet_v3_large": {"weights": 5_458_632, "trainable": 5_483_032, "paper": 5_507_432,
                           "macs": 216_589_760, "elementwise": 219_125_848},
    "mobilenet_v3_small": {"weights": 2_530_744, "trainable": 2_542_856, "paper": 2_554_968,
                           "macs": 56_510_400, "elementwise": 57_650_520},
}
PUBLISHED = {"mobilenet_v2": (3.4, 300), "mobilenet_v3_large": (5.4, 219), "mobilenet_v3_small": (2.5, 56)}
TORCHVISION_PARAMS = {"mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032, "mobilenet_v3_small": 2_542_856}


def printed(value: int, unit: int, digits: int) -> float:
    """``value`` in ``unit``s truncated to ``digits`` decimals, as the papers print it."""
    scale = 10 ** digits
    return (value * scale // unit) / scale


@pytest.mark.parametrize("variant", list(EXACT))
def test_exact_params_and_mult_adds_of_the_family(variant):
    net = resolve(variant)  # 224 x 224, 1,000 classes, alpha 1, make-divisible-by-8
    exact = EXACT[variant]
    for convention in ("weights", "trainable", "paper"):
        assert network_cost(net, convention).params == exact[convention]
    for convention in ("paper", "trainable", "weights", "deploy"):
        assert network_cost(net, convention).mult_adds == exact["macs"]
    assert network_cost(net, "elementwise").mult_adds == exact["elementwise"]
    assert network_cost(net, "trainable").params == TORCHVISION_PARAMS[variant]
    # deploy: BatchNorm folded to one bias per channel = weights + BN channels
    bn_channels = sum(l.out_c for l in net.layers if l.bn)
    assert network_cost(net, "deploy").params == exact["weights"] + bn_channels


def test_which_convention_gives_each_published_figure():
    params = {v: printed(EXACT[v]["weights"], 10**6, 1) for v in EXACT}
    assert params == {v: published[0] for v, published in PUBLISHED.items()}  # all three: 'weights'
    macs = {v: printed(EXACT[v]["macs"], 10**6, 0) for v in EXACT}
    elementwise = {v: printed(EXACT[v]["elementwise"], 10**6, 0) for v in EXACT}
    assert macs == {"mobilenet_v2": 300, "mobilenet_v3_large": 216, "mobilenet_v3_small": 56}
    assert elementwise == {"mobilenet_v2": 300, "mobilenet_v3_large": 219, "mobilenet_v3_small": 57}
    # V2 and V3-Small: conv/FC multiply-accumulates ('paper'); V3-Large: plus the element-wise
    # multiplies and adds ('elementwise'); no one convention gives both V3 figures.
    assert (macs["mobilenet_v2"], elementwise["mobilenet_v3_large"], macs["mobilenet_v3_small"]) == (300, 219, 56)


def test_elementwise_terms_are_the_adds_gates_and_hard_activations():
    net = resolve("mobilenet_v3_large")
    adds = sum(l.out_h * l.out_w * l.out_c for l in net.layers if l.kind == "add")
    gates = sum(l.out_h * l.out_w * l.out_c for l in net.layers if l.kind == "scale")
    hard = sum(l.out_h * l.out_w * l.out_c for l in net.layers if l.activation in ("hardswish", "hardsigmoid"))
    assert (adds, gates, hard) == (423_360, 597_408, 1_515_320)
    assert EXACT["mobilenet_v3_large"]["elementwise"] == EXACT["mobilenet_v3_large"]["macs"] + adds + gates + hard
    squeezes = sum(l.in_h * l.in_w * l.in_c for l in net.layers if l.name.endswith("_se_pool"))
    pooled = net.layer("avgpool").in_h * net.layer("avgpool").in_w * net.layer("avgpool").in_c
    bn_elements = sum(l.out_h * l.out_w * l.out_c for l in net.layers if l.bn)
    assert network_cost(net, "fvcore").mult_adds == EXACT["mobilenet_v3_large"]["macs"] + 2 * bn_elements + pooled \
        + squeezes


def test_table_json_gives_the_published_counts():
    result = cli("table", "--variant", "mobilenet_v2", "--convention", "weights", "--format", "json")
    data = json.loads(result.stdout)
    assert (data["params"], data["mult_adds"], data["classes"], data["resolution"], data["rounding"]) == \
        (3_470_760, 300_774_272, 1000, 224, "divisible8")
    data = json.loads(cli("table", "-v", "mobilenet_v3_large", "--convention", "elementwise", "--format",
                          "json").stdout)
    assert (data["mult_adds"], data["convention_detail"]["count_elementwise_ops"]) == (219_125_848, True)
    data = json.loads(cli("table", "-v", "mobilenet_v3_small", "--convention", "trainable", "--format", "json").stdout)
    assert (data["params"], data["mult_adds"]) == (2_542_856, 56_510_400)


# --- memory with lifetimes ------------------------------------------------------------------------
# One block with everything, small enough to follow by hand: 4x4x3 image, conv to 8 (ReLU), an
# inverted residual to 16 channels and back to 8 with hard-swish, squeeze-excite (16 // 4 -> 8) and
# the residual, then pool and a 2-class classifier.
TINY = ('classes = 2\nresolution = 4\nrounding = "divisible8"\n[[layers]]\ntype = "conv"\nfilters = 8\n'
        + block(expand=16, filters=8, se=True, activation="hardswish") + TAIL)
TINY_LIVE = [176, 384, 640, 400, 408, 408, 656, 512, 384, 136, 10]  # elements alive at each layer, by hand
TINY_TRAINING = [304, 512, 768, 0, 24, 16, 272, 384, 0, 0, 16]  # elements autograd newly keeps per layer


def test_live_tensors_of_a_residual_block_with_squeeze_excite():
    from mnetcost.calculator import lifetimes, memory

    net = resolve(parse_spec(TINY, "tiny.toml"))
    assert [l.name for l in net.layers] == ["conv1", "block1_expand", "block1_dw", "block1_se_pool",
                                            "block1_se_reduce", "block1_se_expand", "block1_se_scale",
                                            "block1_project", "block1_add", "avgpool", "fc"]
    mem = memory.network_memory(net)
    tensors = memory.activation_tensors(mem.layers, [l.inputs for l in net.layers])
    spans = {t.name: (t.first, t.last) for t in tensors}
    assert spans["conv1"] == (0, 8)  # the residual's input: alive until the add
    assert spans["block1_dw"] == (2, 6)  # the squeeze-excite's input: alive until the gate multiply
    assert spans["block1_se_expand"] == (5, 6) and spans["fc"] == (10, 10)
    assert list(mem.live_bytes) == [4 * n for n in TINY_LIVE]
    assert (mem.peak_activation_bytes, mem.peak_layer) == (4 * 656, "block1_se_scale")
    # the old rule (one layer's input + output) would say 2 x 256 elements at the dw or the scale
    assert max(r.input_bytes + r.output_bytes for r in mem.layers) == 4 * 512 < mem.peak_activation_bytes
    assert [b.as_dict() for b in mem.blocks] == [{"block": "block1", "first_layer": "block1_expand",
                                                  "last_layer": "block1_add", "peak_activation_bytes": 4 * 656,
                                                  "peak_layer": "block1_se_scale"}]
    assert [r.training_bytes for r in mem.layers] == [4 * n for n in TINY_TRAINING]
    assert mem.training_activation_bytes_per_image == 4 * sum(TINY_TRAINING)
    int8 = memory.network_memory(net, "int8")
    assert int8.peak_activation_bytes == 656 and list(int8.live_bytes) == TINY_LIVE
    assert lifetimes.peak(tensors) == (4 * 656, 6)


@pytest.mark.parametrize("variant", ["mobilenet_v2", "mobilenet_v3_large_fmp", "mobilenet_v3_small_mp3"])
def test_the_vectorised_sweep_prices_the_family_as_the_scalar_engine(variant):
    import numpy as np

    from mnetcost.calculator.memory import sweep_costs
    from mnetcost.calculator.resolver import resolve_arrays, split

    the_plan = plan(variant, 10, 32)
    alphas, deltas = np.array([0.25, 0.35, 0.5, 0.75, 1.0, 1.3]), np.array([1, 2, 3, 1, 4, 2])
    groups = split(the_plan, alphas, deltas)  # points whose residual adds or expansions differ are apart
    assert sorted(i for group in groups for i in group.points) == list(range(6))
    for convention in ("paper", "elementwise"):
        for group in groups:
            layers = resolve_arrays(group.plan, alphas[group.points], deltas[group.points])
            params, mult_adds, peak, stored = sweep_costs(layers, convention, "int8")
            for j, i in enumerate(group.points):
                cost = network_cost(resolve(variant, float(alphas[i]), int(deltas[i]), 10, 32), convention, "int8")
                assert (params[j], mult_adds[j], peak[j], stored[j]) == (
                    cost.params, cost.mult_adds, cost.peak_activation_bytes, cost.weight_bytes)


def test_sweep_and_table_of_family_and_hybrids_at_cifar_size():
    result = cli("sweep", "-v", "base,fmp,mobilenet_v2,mobilenet_v3_small", "-a", "0.25,1", "-d", "1,2", "-c", "10",
                 "-r", "32", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["variant"] for r in rows} == {"base", "fmp", "mobilenet_v2", "mobilenet_v3_small"} and len(rows) == 16
    for row in rows:
        cost = network_cost(resolve(row["variant"], row["alpha"], row["delta"], 10, 32))
        assert (row["params"], row["mult_adds"], row["peak_activation_bytes"]) == (cost.params, cost.mult_adds,
                                                                                  cost.peak_activation_bytes)
    own = json.loads(cli("sweep", "-v", "mobilenet_v3_large", "-a", "1", "-d", "1", "--format", "json").stdout)
    assert [(r["classes"], r["resolution"], r["mult_adds"]) for r in own] == [(1000, 224, 216_589_760)]
