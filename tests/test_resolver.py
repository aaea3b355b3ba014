"""The resolved layers reproduce every row of the paper's Tables 1-3 for any alpha and delta.

The tables below are transcribed from the paper (α written for the paper's α or a), with each
"5 ×"/"2 ×" group expanded by a ``[N]`` line. The only deliberate departures are marked.
"""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnetcost.errors import ConfigError
from mnetcost.calculator.report import filter_shape, input_size, type_stride
from mnetcost.calculator.resolver import parse_resolution, plan, resolve, same_padding
from mnetcost.calculator.spec import parse_spec

TABLE_1 = """
Conv / s2 | 3 × 3 × 3 × 32α | 32 × 32 × 3
Conv dw / s1 | 3 × 3 × (32α × δ) | 16 × 16 × 32α
Conv / s1 | 1 × 1 × (32α × δ) × 64α | 16 × 16 × (32α × δ)
Conv dw / s2 | 3 × 3 × (64α × δ) | 16 × 16 × 64α
Conv / s1 | 1 × 1 × (64α × δ) × 128α | 8 × 8 × (64α × δ)
Conv dw / s1 | 3 × 3 × (128α × δ) | 8 × 8 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 128α | 8 × 8 × (128α × δ)
Conv dw / s2 | 3 × 3 × (128α × δ) | 8 × 8 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 256α | 4 × 4 × (128α × δ)
Conv dw / s1 | 3 × 3 × (256α × δ) | 4 × 4 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 256α | 4 × 4 × (256α × δ)
Conv dw / s2 | 3 × 3 × (256α × δ) | 4 × 4 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 512α | 2 × 2 × (256α × δ)
[5]
Conv dw / s1 | 3 × 3 × (512α × δ) | 2 × 2 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 512α | 2 × 2 × (512α × δ)
[1]
Conv dw / s2 | 3 × 3 × (512α × δ) | 2 × 2 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 1024α | 1 × 1 × (512α × δ)
Conv dw / s1 | 3 × 3 × (1024α × δ) | 1 × 1 × 1024α
Conv / s1 | 1 × 1 × (1024α × δ) × 1024α | 1 × 1 × (1024α × δ)
Avg Pool / s1 | Global average pooling | 1 × 1 × 1024α
FC / s1 | 1 × 1 × 1024α × classnum | 1 × 1 × 1024α
"""

TABLE_2 = """
Conv / s1 | 3 × 3 × 3 × 32α | 32 × 32 × 3
Maxpool / s2 | Max pooling kernel 3×3 stride2 | 32 × 32 × 32α
Conv dw / s1 | 3 × 3 × (32α × δ) | 16 × 16 × 32α
Conv / s1 | 1 × 1 × (32α × δ) × 64α | 16 × 16 × (32α × δ)
Maxpool / s2 | Max pooling kernel 3×3 stride2 | 16 × 16 × 64α
Conv dw / s1 | 3 × 3 × (64α × δ) | 8 × 8 × 64α
Conv / s1 | 1 × 1 × (64α × δ) × 128α | 8 × 8 × (64α × δ)
Conv dw / s1 | 3 × 3 × (128α × δ) | 8 × 8 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 128α | 8 × 8 × (128α × δ)
Maxpool / s2 | Max pooling kernel 3×3 stride2 | 8 × 8 × 128α
Conv dw / s1 | 3 × 3 × (128α × δ) | 4 × 4 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 256α | 4 × 4 × (128α × δ)
Conv dw / s1 | 3 × 3 × (256α × δ) | 4 × 4 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 256α | 4 × 4 × (256α × δ)
Maxpool / s2 | Max pooling kernel 3×3 stride2 | 4 × 4 × 256α
Conv dw / s1 | 3 × 3 × (256α × δ) | 2 × 2 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 512α | 2 × 2 × (256α × δ)
[5]
Conv dw / s1 | 3 × 3 × (512α × δ) | 2 × 2 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 512α | 2 × 2 × (512α × δ)
[1]
Maxpool / s2 | Max pooling kernel 3×3 stride2 | 2 × 2 × 512α
Conv dw / s1 | 3 × 3 × (512α × δ) | 1 × 1 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 1024α | 1 × 1 × (512α × δ)
Conv dw / s1 | 3 × 3 × (1024α × δ) | 1 × 1 × 1024α
Conv / s1 | 1 × 1 × (1024α × δ) × 1024α | 1 × 1 × (1024α × δ)
Avg pool / s1 | Global average pooling | 1 × 1 × 1024α
FC / s1 | 1 × 1 × 1024α × classnum | 1 × 1 × 1024α
"""

# Table 3 as printed, with two departures: the paper's "s1.4" is 1.44 here (floor(10 / 1.4) = 7,
# but the table's own Input Size column says 6; 1.44 reproduces every size), and the misprinted
# input "10 × 10 × (128α × δ)" of the pointwise conv whose filter is 1×1×(256α×δ)×256α is read
# as (256α × δ) (marked MISPRINT below).
TABLE_3 = """
Conv / s1 | 3 × 3 × 3 × 32α | 32 × 32 × 3
FMP / s1.44 | Fractional Max Pooling s1.44 | 32 × 32 × 32α
Conv dw / s1 | 3 × 3 × (32α × δ) | 22 × 22 × 32α
Conv / s1 | 1 × 1 × (32α × δ) × 64α | 22 × 22 × (32α × δ)
Conv dw / s1 | 3 × 3 × (64α × δ) | 22 × 22 × 64α
Conv / s1 | 1 × 1 × (64α × δ) × 128α | 22 × 22 × (64α × δ)
FMP / s1.44 | Fractional Max Pooling s1.44 | 22 × 22 × 128α
Conv dw / s1 | 3 × 3 × (128α × δ) | 15 × 15 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 128α | 15 × 15 × (128α × δ)
Conv dw / s1 | 3 × 3 × (128α × δ) | 15 × 15 × 128α
Conv / s1 | 1 × 1 × (128α × δ) × 256α | 15 × 15 × (128α × δ)
FMP / s1.44 | Fractional Max Pooling s1.44 | 15 × 15 × 256α
Conv dw / s1 | 3 × 3 × (256α × δ) | 10 × 10 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 256α | 10 × 10 × (256α × δ) MISPRINT (128α × δ)
Conv dw / s1 | 3 × 3 × (256α × δ) | 10 × 10 × 256α
Conv / s1 | 1 × 1 × (256α × δ) × 512α | 10 × 10 × (256α × δ)
FMP / s1.44 | Fractional Max Pooling s1.44 | 10 × 10 × 512α
[2]
Conv dw / s1 | 3 × 3 × (512α × δ) | 6 × 6 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 512α | 6 × 6 × (512α × δ)
[1]
FMP / s1.44 | Fractional Max Pooling s1.44 | 6 × 6 × 512α
[2]
Conv dw / s1 | 3 × 3 × (512α × δ) | 4 × 4 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 512α | 4 × 4 × (512α × δ)
[1]
FMP / s1.44 | Fractional Max Pooling s1.44 | 4 × 4 × 512α
Conv dw / s1 | 3 × 3 × (512α × δ) | 2 × 2 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 512α | 2 × 2 × (512α × δ)
Conv dw / s1 | 3 × 3 × (512α × δ) | 2 × 2 × 512α
Conv / s1 | 1 × 1 × (512α × δ) × 1024α | 2 × 2 × (512α × δ)
FMP / s1.44 | Fractional Max Pooling s1.44 | 2 × 2 × 1024α
Conv dw / s1 | 3 × 3 × (1024α × δ) | 1 × 1 × 1024α
Conv / s1 | 1 × 1 × (1024α × δ) × 1024α | 1 × 1 × (1024α × δ)
Avg Pool / s1 | Global average pooling | 1 × 1 × 1024α
FC / s1 | 1 × 1 × 1024α × classnum | 1 × 1 × 1024α
"""

TABLES = {"base": TABLE_1, "mp3": TABLE_2, "fmp": TABLE_3}


def expand(table: str) -> list[list[str]]:
    """Rows of the transcription, with [N] groups (up to the next [1]) repeated N times."""
    rows, group, repeat = [], [], 1
    for line in table.strip().splitlines():
        marker = re.fullmatch(r"\[(\d+)\]", line.strip())
        if marker:
            rows.extend(group * repeat)
            group, repeat = [], int(marker.group(1))
            continue
        group.append([cell.split(" MISPRINT")[0].strip() for cell in line.split("|")])
    rows.extend(group * repeat)
    return rows


def substitute(text: str, alpha: float, delta: int, classes: int) -> str:
    """Evaluate the paper's notation: Nα -> int(N * α) (Keras), (X × δ) -> (X × δ) or X at δ = 1."""
    text = re.sub(r"(\d+)α", lambda m: str(int(int(m.group(1)) * alpha)), text)
    text = text.replace("classnum", str(classes))
    if delta == 1:
        text = re.sub(r"\((\d+) × δ\)", r"\1", text)
    return text.replace("δ", str(delta))


def normal(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def check_table(variant: str, alpha: float, delta: int, classes: int):
    expected = expand(TABLES[variant])
    layers = resolve(variant, alpha, delta, classes).layers
    assert len(layers) == len(expected), (variant, len(layers), len(expected))
    for layer, (kind, shape, size) in zip(layers, expected):
        assert normal(type_stride(layer)) == normal(kind), (layer.name, type_stride(layer), kind)
        assert normal(filter_shape(layer)) == normal(substitute(shape, alpha, delta, classes)), layer.name
        assert normal(input_size(layer)) == normal(substitute(size, alpha, delta, classes)), layer.name


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("alpha,delta", [(1, 1), (1, 2), (0.5, 2), (0.25, 2), (1, 4), (0.5, 4), (0.25, 4)])
@pytest.mark.parametrize("classes", [10, 100])
def test_paper_tables_at_paper_configs(variant, alpha, delta, classes):
    check_table(variant, alpha, delta, classes)


@settings(max_examples=60, deadline=None)
@given(variant=st.sampled_from(["base", "mp3", "fmp"]),
       alpha=st.floats(min_value=0.04, max_value=3.0, allow_nan=False),
       delta=st.integers(min_value=1, max_value=8), classes=st.integers(min_value=1, max_value=1000))
def test_paper_tables_for_any_alpha_and_delta(variant, alpha, delta, classes):
    check_table(variant, alpha, delta, classes)


def test_spatial_sizes_of_each_variant():
    def sizes(variant):
        out = [32]
        for layer in resolve(variant).layers:
            if layer.out_h != out[-1]:
                out.append(layer.out_h)
        return out

    assert sizes("base") == [32, 16, 8, 4, 2, 1]
    assert sizes("mp3") == [32, 16, 8, 4, 2, 1]
    assert sizes("fmp") == [32, 22, 15, 10, 6, 4, 2, 1]


def test_names_are_stable_and_keras_like():
    names = [layer.name for layer in resolve("mp3").layers]
    assert names[:6] == ["conv1", "maxpool_1", "conv_dw_1", "conv_pw_1", "maxpool_2", "conv_dw_2"]
    assert names[-4:] == ["conv_dw_13", "conv_pw_13", "avgpool", "fc"]
    assert len(set(names)) == len(names)


def test_keras_width_truncation_in_binary_floating_point():
    spec = parse_spec('[[layers]]\ntype = "conv"\nfilters = 100\n[[layers]]\ntype = "fc"\n', "t.toml")
    assert resolve(spec, 0.29).layers[0].out_c == 28  # int(100 * 0.29) == 28, not 29
    assert resolve(spec, 0.29, rounding="nearest").layers[0].out_c == 29
    assert resolve(spec, 0.29, rounding="divisible8").layers[0].out_c == 32


def test_depthwise_multiplier_and_groups():
    dw = resolve("base", 0.5, 4).layer("conv_dw_2")
    assert (dw.in_c, dw.out_c, dw.groups, dw.delta) == (32, 128, 32, 4)
    pw = resolve("base", 0.5, 4).layer("conv_pw_2")
    assert (pw.in_c, pw.out_c, pw.groups, pw.in_delta) == (128, 64, 1, 4)


def test_tensorflow_same_padding():
    assert same_padding(32, 3, 2) == (16, 0, 1)  # Keras pads (0, 1) before a stride-2 conv
    assert same_padding(32, 3, 1) == (32, 1, 1)
    assert same_padding(1, 3, 2) == (1, 1, 1)
    assert same_padding(7, 3, 2) == (4, 1, 1)


def test_other_resolutions_and_classes():
    net = resolve("base", 1.0, 1, 1000, 224)
    assert [l.out_h for l in net.layers if l.kind == "pw"][-1] == 7
    assert net.layer("fc").out_c == 1000
    assert resolve("fmp", 1, 1, 10, 64).layer("conv_dw_1").in_h == 44
    assert parse_resolution((40, 30)) == (40, 30)
    assert resolve("base", resolution=(40, 30)).layer("conv_dw_1").input_shape == (20, 15, 32)


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": 0}, "alpha must be a number greater than 0"),
    ({"alpha": -0.5}, "alpha must be a number greater than 0"),
    ({"alpha": float("nan")}, "alpha must be a number greater than 0"),
    ({"delta": 0}, "delta must be a positive integer"),
    ({"delta": 1.5}, "delta must be a positive integer"),
    ({"classes": 0}, "classes must be a positive integer"),
    ({"alpha": 0.01}, "alpha is too small"),
    ({"resolution": 1, "spec": "fmp"}, "the input resolution is too small"),
    ({"rounding": "up"}, "rounding must be one of"),
])
def test_bad_configurations(kwargs, message):
    spec = kwargs.pop("spec", "base")
    with pytest.raises(ConfigError, match=message):
        resolve(spec, **kwargs)


def test_plan_does_not_depend_on_alpha_or_delta():
    the_plan = plan("fmp", 100, 32)
    for alpha, delta in [(1, 1), (0.3, 3)]:
        direct = resolve("fmp", alpha, delta, 100)
        via_plan = resolve("fmp", alpha, delta, 100, network_plan=the_plan)
        assert direct.layers == via_plan.layers


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": np.nan}, "alpha must be a number greater than 0, got nan"),
    ({"alpha": "0.5"}, "alpha must be a number greater than 0, got '0.5'"),
    ({"alpha": 10**400}, "alpha must be a number greater than 0 within a float's range, got 10000000000000000000"
                         r"\.\.\.00000000 \(401 characters\)"),
    ({"delta": np.float64(1.5)}, "delta must be a positive integer"),
    ({"delta": np.bool_(True)}, "delta must be a positive integer"),
    ({"classes": np.int64(0)}, "classes must be a positive integer"),
    ({"resolution": (32, 32, 3)}, "resolution must be a positive integer or a"),
])
def test_numpy_and_other_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve("base", **kwargs)


def test_numpy_scalars_are_numbers():
    """Before: resolve('base', delta=np.int64(2)) raised 'delta must be a positive integer'."""
    reference = resolve("base", 0.5, 2, 100, 40)
    for values in [(np.float64(0.5), np.int64(2), np.int64(100), np.int64(40)),
                   (np.float32(0.5), np.int32(2), np.uint8(100), (np.int16(40), 40)),
                   (0.5, 2.0, 100.0, 40.0)]:
        net = resolve("base", *values)
        assert net.layers == reference.layers and (net.alpha, net.delta, net.classes, net.resolution) == (
            0.5, 2, 100, (40, 40))
        assert (type(net.alpha), type(net.delta), type(net.classes)) == (float, int, int)


def test_a_network_has_at_most_max_layers(tmp_path):
    """`repeat` is bounded through the network's layer count: conv + 2 per dws block + avgpool + fc."""
    from mnetcost.calculator.resolver import MAX_LAYERS

    def spec(repeat):
        path = tmp_path / f"r{repeat}.toml"
        path.write_text(f'name = "r"\n[[layers]]\ntype = "conv"\nfilters = 8\nstride = 2\n[[layers]]\ntype = "dws"\n'
                        f'filters = 8\nrepeat = {repeat}\n[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')
        return str(path)

    assert MAX_LAYERS == 10_000
    assert len(resolve(spec(4_998)).layers) == 9_999
    with pytest.raises(ConfigError, match=r"row 4 \(fc\): the network would have more than 10,000 layers"):
        resolve(spec(4_999))
    with pytest.raises(ConfigError, match=r"row 2 \(dws\): the network would have more than 10,000 layers"):
        resolve(spec(5_000))
    with pytest.raises(ConfigError, match="more than 10,000 layers"):
        resolve(spec(10**12))  # refused at once, not after building a trillion layers
