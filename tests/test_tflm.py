"""TensorFlow Lite Micro's arena and the .tflite file, predicted without TensorFlow.

The expected integers were read from tflite-micro 0.dev20261023182759's interpreter (print_allocations)
and from the files ``mnetcost export --format tflite`` wrote; ``tests/test_tflite.py`` re-measures them
whenever the ``[tflite]`` extra is installed."""
from pathlib import Path

import pytest

from mnetcost.calculator import lifetimes, memory, tflm
from mnetcost.calculator import tflite_model as TM
from mnetcost.calculator.resolver import resolve
from mnetcost.errors import ConfigError

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "custom_spec.toml")

# (variant, alpha, delta): (head, tail, "Persistent buffer data", file bytes), measured
MEASURED = {
    ("base", 0.25, 1): (8_192, 29_744, 24_304, 298_992),
    ("base", 0.25, 2): (10_240, 39_664, 34_224, None),
    ("mp3", 0.25, 1): (11_264, 30_544, 24_464, None),
    ("mp3", 0.25, 2): (11_264, 40_464, 34_384, 541_992),
    ("base", 0.5, 1): (12_288, 51_632, 46_192, None),
    ("fmp", 0.25, 1): (49_920, 32_992, 24_976, 304_712),
}


@pytest.mark.parametrize("config", sorted(MEASURED))
def test_arena_and_file_match_the_interpreter(config):
    head, tail, buffers, file_bytes = MEASURED[config]
    network = resolve(*config)
    arena = tflm.arena(network)
    assert (arena.head, arena.tail, arena.total) == (head, tail, head + tail)
    assert arena.tail_parts["Persistent buffer data"] == buffers
    assert arena.tail_parts["TfLiteEvalTensor data"] == 24 * arena.tensors
    assert arena.tail_parts["NodeAndRegistration struct"] == 64 * arena.ops
    if file_bytes is not None:
        assert TM.flash_bytes(network) == file_bytes


def test_the_head_is_the_greedy_plan_of_the_one_tensor_list():
    """base α=0.25 δ=1: the simple peak is conv_pw_1's 2,048 B in + 4,096 B out; TFLM's planner puts the
    2,048 B image-side buffer above them (the FACTS: one buffer more), 8,192 B."""
    network = resolve("base", 0.25, 1)
    peak = memory.network_memory(network, "int8").peak_activation_bytes
    arena = tflm.arena(network)
    assert peak == 6_144 and arena.head == 8_192
    names = [name for name, *_ in arena.head_tensors]
    graph = TM.lower(network)
    assert names[: len(graph.ops) + 1] == ["input", *(op.output for op in graph.ops)]
    assert names[-3:] == ["avgpool/scratch0", "avgpool/scratch1", "avgpool/scratch2"]
    placed = [lifetimes.Tensor(n, s, f, l) for n, s, f, l, _ in arena.head_tensors]
    offsets = [o for *_, o in arena.head_tensors]
    assert lifetimes.overlaps(placed, offsets, tflm.ARENA_ALIGNMENT) == []


def test_per_channel_data_grows_with_width_and_depth_multiplier():
    """8 B per output channel of every conv, depthwise and FC operator (16-byte aligned arrays)."""
    for alpha, delta in ((0.25, 1), (0.25, 2), (0.5, 1)):
        network = resolve("base", alpha, delta)
        channels = sum(layer.out_c for layer in network.layers if layer.kind in ("conv", "pw", "dw", "fc"))
        graph = TM.lower(network)
        arrays = sum(2 * lifetimes.align_up(4 * graph.tensor(op.output).shape[-1], 16)
                     for op in graph.ops if tflm.KERNELS[op.builtin].per_channel)
        assert arrays >= 8 * channels
    delta1, delta2 = (tflm.arena(resolve("base", 0.25, d)) for d in (1, 2))
    dw_channels = sum(layer.out_c for layer in resolve("base", 0.25, 1).layers if layer.kind == "dw")
    assert delta2.tail - delta1.tail == 8 * dw_channels == 9_920


def test_lowering_of_every_layer_kind():
    fmp = TM.lower(resolve("fmp", 0.25, 1))
    first = [op for op in fmp.ops if op.layer == "fmp_1"]
    assert [op.builtin for op in first] == ["GATHER", "GATHER", "MAX_POOL_2D"]
    # 32 -> 22 rows: windows of 1 or 2 positions, K = 2 candidates each
    assert fmp.tensor("fmp_1/rows").shape == (44,) and fmp.tensor("fmp_1/gathered").shape == (1, 44, 44, 8)
    assert dict(first[2].options)["stride_h"] == 2 and dict(first[2].options)["padding"] == TM.VALID
    custom = TM.lower(resolve(EXAMPLE, 0.5, 2, resolution=64))
    assert [op.builtin for op in custom.ops][:2] == ["CONV_2D", "MAX_POOL_2D"]
    base = TM.lower(resolve("base", 0.25, 1))
    assert [op.builtin for op in base.ops][-2:] == ["MEAN", "FULLY_CONNECTED"]
    assert len(base.tensors) == 87 and len(base.ops) == 29
    dw = next(op for op in base.ops if op.builtin == "DEPTHWISE_CONV_2D")
    assert base.tensor(dw.inputs[1]).axis == 3  # depthwise weights: per channel along the last axis


def test_a_classifier_without_global_pooling_is_flattened(tmp_path):
    spec = tmp_path / "flat.toml"
    spec.write_text('name = "flat"\nin_channels = 3\n[[layers]]\ntype = "conv"\nfilters = 8\nkernel = 3\n'
                    'stride = 2\n[[layers]]\ntype = "fc"\n')
    graph = TM.lower(resolve(str(spec), 1.0, 1, resolution=8))
    assert [op.builtin for op in graph.ops] == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    arena = tflm.arena(resolve(str(spec), 1.0, 1, resolution=8))
    # image 192 B [0, 1], conv 128 B [1, 2], its flattened copy 128 B [2, 3], logits 10 -> 16 B [3, 3]
    assert arena.head == 192 + 128


# (variant, alpha, delta, resolution): the smallest arena_size the interpreter accepted (probed in child
# processes), where loading the model needs more room than head + tail
LOADING_MINIMUM = {
    ("base", 1.0, 1, 1): 108_216,  # a conv's temporary tensors in Prepare (1,024-channel zero points)
    ("mp3", 1.0, 1, 1): 109_016,
    ("base", 0.75, 1, 2): 83_256,
    ("base", 0.5, 1, 8): 58_296,
    ("base", 0.25, 1, 1): 33_992,
    ("mp3", 0.25, 2, 16): 45_080,
    ("base", 0.1, 1, 32): 21_064,  # the memory planner's arrays: 40 B per planned buffer
    ("base", 0.04, 1, 2): 15_752,
    ("base", 0.04, 1, 32): 15_752,
    ("mp3", 0.05, 1, 3): 17_960,
    ("base", 0.25, 2, 32): 49_896,  # head + tail - 8: loading fits within the head
    ("fmp", 0.05, 1, 32): 25_176,
}


@pytest.mark.parametrize("config", sorted(LOADING_MINIMUM))
def test_the_smallest_arena_covers_what_loading_the_model_takes(config):
    """TFLM takes temporary space from the arena while kernels prepare (TfLiteTensor copies with their
    zero-point arrays) and while it makes the memory plan (allocation records and the planner's
    arrays); with small activations that exceeds the head, and the arena must grow."""
    variant, alpha, delta, resolution = config
    arena = tflm.arena(resolve(variant, alpha, delta, resolution=resolution))
    assert arena.minimum == LOADING_MINIMUM[config]


def test_budgets_judge_the_smallest_arena_accepted():
    import json

    data = json.loads(_cli("table", "-v", "base", "-a", "1", "-r", "1", "--runtime", "tflm", "--max-peak-memory",
                           "100KiB", "--format", "json").stdout)
    assert (data["arena_bytes"], data["minimum_arena_bytes"]) == (101_584, 108_216)
    assert data["fit"]["fits"] is False and data["fit"]["sram_margin_bytes"] == 102_400 - 108_216
    text = _cli("table", "-v", "base", "-a", "1", "-r", "1", "--runtime", "tflm", "--max-peak-memory",
                "106KiB").stdout
    assert "FITS your budget: TFLM arena needed 105.7 KiB" in text
    rows = json.loads(_cli("sweep", "-v", "base", "-a", "1", "-d", "1", "-r", "1,32", "--runtime", "tflm",
                           "--max-peak-memory", "110000", "--format", "json").stdout)
    # r=1 needs 108,216 B (fits 110,000); r=32 needs 119,976 B (head + tail - 8): left out
    assert [(r["resolution"], r["minimum_arena_bytes"]) for r in rows] == [(1, 108_216)]
    everything = json.loads(_cli("sweep", "-v", "base", "-a", "1", "-d", "1", "-r", "1,32", "--runtime", "tflm",
                                 "--format", "json").stdout)
    assert [r["minimum_arena_bytes"] for r in everything] == [108_216, 119_976]


def test_sweep_smallest_arena_equals_the_one_network_figure():
    import numpy as np

    from mnetcost.calculator.resolver import plan, resolve_arrays

    alphas = np.array([0.04, 0.1, 0.25, 0.5, 1.0, 0.04, 0.1, 0.25, 0.5, 1.0])
    deltas = np.array([1, 1, 2, 1, 1, 3, 2, 1, 4, 2])
    for variant in ("base", "mp3", "fmp"):
        for resolution in (1, 2, 32):
            try:
                the_plan = plan(variant, None, resolution)
            except ConfigError:
                continue
            found = tflm.sweep_memory(the_plan, resolve_arrays(the_plan, alphas, deltas), alphas, deltas)
            for k, (alpha, delta) in enumerate(zip(alphas, deltas)):
                arena = tflm.arena(resolve(variant, float(alpha), int(delta), resolution=resolution))
                assert int(found["minimum_arena_bytes"][k]) == arena.minimum, (variant, resolution, alpha, delta)


def test_fmp_candidates_are_the_longest_window():
    assert [TM.fmp_candidates(size, out) for size, out in ((32, 22), (22, 15), (15, 10), (4, 2), (3, 3))] == \
        [2, 2, 2, 2, 1]


def test_file_layout_parts_add_up_and_weights_are_the_deploy_params():
    network = resolve("base", 0.25, 1)
    layout = TM.file_layout(TM.lower(network))
    assert sum(layout.parts.values()) == layout.bytes
    # int8 weights + int32 biases = the deploy convention's bytes; + 8 B for MEAN's axes
    weights = sum(m.weight_elements + 4 * m.bias_elements for m in memory.network_memory(network, "int8").layers)
    assert layout.parts["weights"] == weights + 8
    assert layout.parts["quantization"] == sum(12 * t.channels for t in TM.lower(network).tensors
                                               if t.quantization != "none")


def test_padding_tf_cannot_express_is_refused():
    import dataclasses

    network = resolve("base", 0.25, 1)
    bad = dataclasses.replace(network.layers[0], padding=(1, 0, 1, 0))
    with pytest.raises(ConfigError, match="neither TF 'same' nor 'valid'.*--runtime simple"):
        TM.lower(dataclasses.replace(network, layers=(bad, *network.layers[1:])))


# --- the vectorised sweep and the command line ----------------------------------------------------
def test_the_sweep_gives_every_configuration_the_scalar_figures():
    """Arena and file bytes of a sweep (lockstep planner, offsets by difference) equal the scalar
    path's for every configuration, at widths where the size order of the tensors changes."""
    import numpy as np

    from mnetcost.calculator.resolver import plan, resolve_arrays

    for variant in ("base", "fmp", EXAMPLE):
        the_plan = plan(variant)
        alphas = np.repeat(np.round(np.arange(0.2, 1.01, 0.05), 2), 3)
        deltas = np.tile([1, 2, 3], len(alphas) // 3)
        for build in tflm.BUILDS:
            found = tflm.sweep_memory(the_plan, resolve_arrays(the_plan, alphas, deltas), alphas, deltas, build)
            for i in range(0, len(alphas), 1 if build == "host64" else 7):
                network = resolve(variant, float(alphas[i]), int(deltas[i]), network_plan=the_plan)
                arena = tflm.arena(network, build=build)
                assert (int(found["arena_activation_bytes"][i]), int(found["arena_persistent_bytes"][i]),
                        int(found["flash_bytes"][i])) == (arena.head, arena.tail, TM.flash_bytes(network))
                assert int(found["arena_bytes"][i]) == arena.total
                assert found["runtime_code_bytes"] == tflm.runtime_figures(network, build)["runtime_code_bytes"]


def _cli(*args):
    from click.testing import CliRunner

    from mnetcost.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_table_and_paper_print_the_tflm_figures():
    import json

    data = json.loads(_cli("table", "-v", "base", "-a", "0.25", "-d", "2", "--runtime", "tflm", "--format",
                           "json").stdout)
    assert data["dtype"] == "int8" and data["runtime"] == "tflm"
    assert (data["arena_bytes"], data["arena_activation_bytes"], data["arena_persistent_bytes"],
            data["flash_bytes"], data["minimum_arena_bytes"]) == (49_904, 10_240, 39_664, 541_096, 49_896)
    grid = json.loads(_cli("table", "-v", "mp3", "-a", "0.25,0.5", "-d", "1,2", "--target", "stm32f746",
                           "--format", "json").stdout)
    for row in grid:  # a board is 32-bit: the arm32 build's arena; the budget judges the smallest accepted
        arena = tflm.arena(resolve("mp3", row["alpha"], row["delta"]), build="arm32")
        assert row["runtime"] == "tflm" and row["tflm_build"] == "arm32" and row["arena_bytes"] == arena.total
        assert row["minimum_arena_bytes"] == arena.minimum
        assert row["fit"]["sram_margin_bytes"] == 320 * 1024 - arena.minimum
        assert row["fit"]["flash_need_parts"] == {"model": row["flash_bytes"], "runtime code": 33_514,
                                                  "reserve": 32_768}
        assert row["fit"]["flash_margin_bytes"] == 2**20 - row["flash_bytes"] - 33_514 - 32_768
    host = json.loads(_cli("table", "-v", "mp3", "-a", "0.25", "--target", "stm32f746", "--tflm-build", "host64",
                           "--flash-reserve", "0", "--format", "json").stdout)
    assert (host["tflm_build"], host["arena_bytes"]) == ("host64", tflm.arena(resolve("mp3", 0.25, 1)).total)
    assert host["fit"]["sram_margin_bytes"] == 320 * 1024 - tflm.arena(resolve("mp3", 0.25, 1)).minimum
    assert host["fit"]["flash_need_bytes"] == host["flash_bytes"] + 33_514
    plain = json.loads(_cli("table", "-v", "base", "-a", "0.25", "--dtype", "int8", "--format", "json").stdout)
    assert plain["runtime"] == "simple" and "arena_bytes" not in plain  # no target: the simple model
    paper = json.loads(_cli("paper", "--table", "5", "--runtime", "tflm", "--format", "json").stdout)
    row = next(r for r in paper if (r["alpha"], r["delta"], r["classes"]) == (0.25, 2, 10))
    assert row["dtype"] == "int8" and (row["arena_bytes"], row["flash_bytes"]) == (51_728, 541_992)
    text = _cli("table", "-v", "base", "-a", "0.25", "--target", "stm32f746").stdout
    assert "TensorFlow Lite Micro" in text and "FITS STMicroelectronics STM32F746" in text and "TFLM arena" in text


def test_sweep_budgets_apply_to_the_tflm_figures():
    import json

    rows = json.loads(_cli("sweep", "-a", "0.25:1.0:0.25", "-d", "1,2,4", "--target", "stm32f746", "--format",
                           "json").stdout)
    everything = json.loads(_cli("sweep", "-a", "0.25:1.0:0.25", "-d", "1,2,4", "--runtime", "tflm", "--tflm-build",
                                 "arm32", "--format", "json").stdout)
    # RAM judges the smallest arena accepted; Flash holds the file, TFLM's code for the operators and the
    # default 32 KiB reserve
    fits = [r for r in everything if r["minimum_arena_bytes"] <= 320 * 1024
            and r["flash_bytes"] + r["runtime_code_bytes"] + 32_768 <= 2**20]
    assert {r["runtime_code_bytes"] for r in everything} == {30_834, 33_514, 34_962}  # base, mp3, fmp
    assert any(r["flash_bytes"] <= 2**20 and r["minimum_arena_bytes"] <= 320 * 1024 for r in everything
               if r not in fits)
    assert [(r["variant"], r["alpha"], r["delta"]) for r in rows] == [(r["variant"], r["alpha"], r["delta"])
                                                                      for r in fits]
    # the simple model keeps fmp α=0.5 δ=1 (peak 61 KiB) where TFLM needs more than its 121 KiB
    simple = json.loads(_cli("sweep", "-a", "0.25:1.0:0.25", "-d", "1,2,4", "--target", "stm32f746", "--runtime",
                             "simple", "--format", "json").stdout)
    assert len(simple) >= len(rows)
    by_arena = json.loads(_cli("sweep", "--runtime", "tflm", "--sort", "arena_bytes", "--format", "json").stdout)
    assert [r["arena_bytes"] for r in by_arena] == sorted(r["arena_bytes"] for r in by_arena)
    for row in by_arena[::5]:
        assert row["flash_bytes"] == TM.flash_bytes(resolve(row["variant"], row["alpha"], row["delta"]))
    mixed = _cli("sweep", "-v", "base,mobilenet_v2", "-a", "0.35", "-d", "1", "--runtime", "tflm", "--format", "json")
    assert mixed.exit_code == 0 and sorted(r["variant"] for r in json.loads(mixed.stdout)) == ["base", "mobilenet_v2"]
    for row in json.loads(mixed.stdout):  # the family has figures too (residual adds lowered)
        network = resolve(row["variant"], row["alpha"], row["delta"])
        assert (row["arena_bytes"], row["flash_bytes"]) == (tflm.arena(network).total, TM.flash_bytes(network))


@pytest.mark.parametrize("args, words", [
    (("table", "--runtime", "coral"), "'coral' is not one of"),
    (("table", "--runtime", "tflm", "--dtype", "fp32"), "--runtime tflm runs the int8"),
    (("sweep", "--runtime", "tflm", "--dtype", "fp16"), "--runtime tflm runs the int8"),
    (("paper", "--runtime", "tflm", "--dtype", "fp32"), "--runtime tflm runs the int8"),
    (("sweep", "--sort", "arena_bytes"), "needs --runtime tflm"),
    (("crosscheck", "--runtime", "tflm", "--dtype", "fp32"), "does not apply"),
    (("crosscheck", "--runtime", "tflm", "--all"), "drop --all"),
    (("table", "--tflm-build", "arm32"), "--tflm-build arm32 sizes TensorFlow Lite Micro's arena; it needs --runtime"),
    (("sweep", "--target", "rp2040", "--runtime", "simple", "--tflm-build", "host64"), "it needs --runtime tflm"),
    (("table", "--runtime", "tflm", "--tflm-build", "arm64"), "'arm64' is not one of"),
    (("crosscheck", "--runtime", "tflm", "--tflm-build", "arm32"), "checks --tflm-build host64 only"),
    (("table", "--target", "rp2040", "--flash-reserve", "-1KiB"), "must not be negative"),
    (("export", "--variant", "base", "--format", "tflite", "--out", "{tmp}/m.onnx"), "--out must end in .tflite"),
    (("export", "--variant", "base", "--int8", "--out", "{tmp}/m.onnx"), "needs calibration images"),
    (("evaluate", "--run", "{tmp}", "--runtime", "tflm"), "pass --tflite FILE"),
    (("evaluate", "--run", "{tmp}", "--tflite", "{tmp}/none.tflite"), "--tflite"),
])
def test_bad_runtime_input_is_one_line_exit_2(tmp_path, args, words):
    result = _cli(*(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ("crosscheck", "--runtime", "tflm", "--alpha", "0.25"),
    ("export", "--variant", "base", "--alpha", "0.25", "--dataset", "cifar10", "--format", "tflite", "--out",
     "{tmp}/m.tflite"),
])
def test_without_the_tflite_extra_one_line_names_it(monkeypatch, tmp_path, args):
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now raises ImportError
    result = _cli(*(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "mnetcost[tflite]" in lines[0] and "tensorflow" in lines[0]
    assert list(tmp_path.iterdir()) == []


# --- the MobileNetV2/V3 family ----------------------------------------------------------------------
# (variant, alpha, classes, resolution): (file bytes, head, tail, smallest arena accepted), measured by
# tests/test_tflite_family.py on the family's own export in tflite-micro's interpreter
FAMILY_MEASURED = {
    ("mobilenet_v2", 0.35, 10, 96): (615_840, 138_240, 71_872, 210_112),
    ("mobilenet_v3_large", 0.35, 10, 128): (761_576, 131_072, 76_800, 207_864),
    ("mobilenet_v2_mp3", 0.35, 2, 96): (606_272, 184_320, 72_608, 256_928),
}


@pytest.mark.parametrize("config", list(FAMILY_MEASURED), ids=lambda c: f"{c[0]}-a{c[1]}-c{c[2]}-r{c[3]}")
def test_family_arena_and_file_match_the_interpreter(config):
    variant, alpha, classes, resolution = config
    network = resolve(variant, alpha, 1, classes, resolution)
    arena = tflm.arena(network)
    assert (TM.flash_bytes(network), arena.head, arena.tail, arena.minimum) == FAMILY_MEASURED[config]


def test_family_lowering_follows_the_converter():
    """What the TensorFlow Lite converter emits for the Keras form of each family layer (seen in its files)."""
    v2 = TM.lower(resolve("mobilenet_v2", 0.35, 1, 2, 96))
    counts = {}
    for op in v2.ops:
        counts[op.builtin] = counts.get(op.builtin, 0) + 1
    # a Keras MobileNetV2 converted by the user has these and a SOFTMAX
    assert counts == {"CONV_2D": 35, "DEPTHWISE_CONV_2D": 17, "ADD": 10, "MEAN": 1, "FULLY_CONNECTED": 1}
    add = next(op for op in v2.ops if op.layer == "block3_add")
    assert add.inputs == ("block3_project", "block2_project")  # the projection, then the block's input
    v3 = TM.lower(resolve("mobilenet_v3_small", 0.75, 1, 10, 96))

    def ops(layer):
        return [op for op in v3.ops if op.layer == layer]

    assert [op.builtin for op in ops("conv1")] == ["CONV_2D", "HARD_SWISH"]  # hard-swish: its own operator
    assert dict(ops("conv1")[0].options)["fused_activation_function"] == 0
    pool, = ops("block1_se_pool")
    assert pool.builtin == "MEAN" and pool.options == (("keep_dims", True),)
    assert v3.tensor("block1_se_pool").shape == (1, 1, 1, 16)
    reduce_, = ops("block1_se_reduce")
    assert reduce_.builtin == "CONV_2D" and dict(reduce_.options)["fused_activation_function"] == 1  # relu
    # hard-sigmoid relu6(x + 3) / 6: the + 3 in the bias, relu6 fused, then MUL by a constant int8 scalar
    conv, sixth = ops("block1_se_expand")
    assert (conv.builtin, dict(conv.options)["fused_activation_function"], sixth.builtin) == ("CONV_2D", 3, "MUL")
    assert v3.tensor(sixth.inputs[1]).shape == () and v3.tensor(sixth.inputs[1]).constant
    scale, = ops("block1_se_scale")
    assert scale.builtin == "MUL" and scale.inputs == ("block1_dw", "block1_se_expand")
    # the head: a 1x1 conv on the pooled vector is a FULLY_CONNECTED (2-D, as the classifier after it)
    assert [op.builtin for op in v3.ops[-4:]] == ["MEAN", "FULLY_CONNECTED", "HARD_SWISH", "FULLY_CONNECTED"]
    assert v3.tensor("avgpool").shape == (1, 432) and TM.flat_layers(resolve("mobilenet_v3_small").layers) == \
        {"avgpool", "conv3"}
    # on 1x1 maps (32 px): no MEAN for a squeeze-excite, a residual reshaped to (C,) right after its writer
    small = TM.lower(resolve("mobilenet_v3_small", 0.75, 1, 10, 32))
    assert not [op for op in small.ops if op.layer == "block11_se_pool"]
    builtins = [op.builtin for op in small.ops]
    reshape = builtins.index("RESHAPE")
    assert small.ops[reshape - 1].output == "block9_project" and small.ops[reshape].layer == "block10_add"
    assert small.ops[reshape + 1].layer == "block10_expand"  # before the block that reads the same tensor
    add = next(op for op in small.ops if op.layer == "block10_add" and op.builtin == "ADD")
    assert add.inputs == ("block10_project", "block10_add/residual")
    assert small.tensor("block10_add/residual").shape == (72,) and builtins.count("RESHAPE") == 2


def test_the_users_keras_mobilenet_v2_is_within_its_softmax():
    """A Keras MobileNetV2 α 0.35, 96 px, 2 classes, converted int8 by its user, measured 210,224 B of arena in
    tflite-micro; mnetcost's file has no SOFTMAX (the logits are the output), whose op data, output tensor and
    node take 176 B (tests/test_tflite_family.py converts keras.applications.MobileNetV2 and measures)."""
    arena = tflm.arena(resolve("mobilenet_v2", 0.35, 1, 2, 96))
    assert arena.total == 210_048 and 0 <= 210_224 - arena.total <= 176


def test_family_sweep_gives_every_configuration_the_scalar_figures():
    import numpy as np

    from mnetcost.calculator.resolver import plan, resolve_arrays, split

    for variant, resolution in (("mobilenet_v2", 96), ("mobilenet_v3_small", 96), ("mobilenet_v3_large_fmp", 96),
                                ("mobilenet_v2", 32), ("mobilenet_v3_small_mp3", 32)):  # 32: 1x1 maps
        the_plan = plan(variant, 2, resolution)
        alphas = np.round(np.arange(0.3, 1.01, 0.05), 2)
        deltas = np.ones(len(alphas), dtype=np.int64)
        groups = split(the_plan, alphas, deltas)  # points whose residual adds differ are priced apart
        assert sum(len(group.points) for group in groups) == len(alphas)
        for group in groups:
            at, ones = alphas[group.points], deltas[group.points]
            found = tflm.sweep_memory(group.plan, resolve_arrays(group.plan, at, ones), at, ones)
            for i, alpha in enumerate(at):
                network = resolve(variant, float(alpha), 1, network_plan=the_plan)
                arena = tflm.arena(network)
                assert (int(found["arena_activation_bytes"][i]), int(found["arena_persistent_bytes"][i]),
                        int(found["flash_bytes"][i])) == (arena.head, arena.tail, TM.flash_bytes(network))


def test_a_spec_file_with_family_layers_prices_on_the_microcontroller(tmp_path):
    import json

    spec = tmp_path / "tiny_v3.toml"
    spec.write_text('name = "tiny_v3"\nin_channels = 3\nrounding = "divisible8"\nclasses = 4\nresolution = 64\n'
                    '[[layers]]\ntype = "conv"\nfilters = 16\nstride = 2\nactivation = "hardswish"\n'
                    '[[layers]]\ntype = "inverted_residual"\nexpand = 64\nfilters = 16\nse = true\n'
                    'activation = "hardswish"\n'
                    '[[layers]]\ntype = "inverted_residual"\nexpansion = 4\nfilters = 24\nstride = 2\n'
                    'activation = "relu6"\n'
                    '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')
    network = resolve(str(spec))
    assert [layer.kind for layer in network.layers].count("add") == 1
    result = _cli("table", "-v", spec, "--target", "stm32f746", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    arena = tflm.arena(network, build="arm32")  # a board: the 32-bit build
    assert (data["runtime"], data["tflm_build"], data["arena_bytes"], data["flash_bytes"]) == (
        "tflm", "arm32", arena.total, TM.flash_bytes(network))
    assert arena.total < tflm.arena(network).total
    builtins = [op.builtin for op in TM.lower(network).ops]
    assert builtins.count("ADD") == 1 and builtins.count("HARD_SWISH") == 3 and builtins.count("MUL") == 2


def test_a_layer_kind_without_lowering_points_at_the_simple_runtime():
    import dataclasses

    network = resolve("mobilenet_v2", 0.35, 1, 2, 96)
    odd = dataclasses.replace(network.layers[3], kind="upsample")
    with pytest.raises(ConfigError, match="no TensorFlow Lite lowering for layer kind 'upsample'.*--runtime simple"):
        TM.lower(dataclasses.replace(network, layers=(*network.layers[:3], odd, *network.layers[4:])))
    odd = dataclasses.replace(network.layers[0], activation="gelu")
    with pytest.raises(ConfigError, match="activation gelu has no TensorFlow Lite lowering.*--runtime simple"):
        TM.lower(dataclasses.replace(network, layers=(odd, *network.layers[1:])))


def test_table_target_works_for_every_family_member():
    import json

    from mnetcost.calculator.spec import FAMILY_VARIANTS

    assert len(FAMILY_VARIANTS) == 9
    for variant in FAMILY_VARIANTS:
        result = _cli("table", "-v", variant, "-a", "0.5", "--resolution", "96", "--target", "stm32f746",
                      "--format", "json")
        assert result.exit_code == 0, (variant, result.output)
        data = json.loads(result.stdout)
        network = resolve(variant, 0.5, 1, resolution=96)
        found = tflm.arena(network, build="arm32")  # a board: the 32-bit build
        assert data["arena_bytes"] == found.total and data["fit"]["target"] == "stm32f746"
        assert data["minimum_arena_bytes"] == found.minimum and data["runtime_code_bytes"] > 0


def test_sweep_and_table_agree_on_the_arena_at_absurd_sizes(tmp_path):
    """Three 1x1 convs at 1,060,000,000 px: each tensor is 1.12e18 B, so the planner's order (size, then
    later-added first) must not be computed as size * count + index in int64 (that wraps and places the
    buffers in another order: 2,247,200,000,000,002,160 B instead of ...096)."""
    import json

    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\nin_channels = 1\n' + '[[layers]]\ntype = "conv"\nfilters = 1\nkernel = 1\n' * 3
                    + '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')
    args = ("-v", spec, "-a", "1", "-d", "1", "-r", "1060000000", "--runtime", "tflm", "--format", "json")
    table = json.loads(_cli("table", *args).stdout)
    rows = json.loads(_cli("sweep", *args).stdout)
    assert table["arena_bytes"] == 2_247_200_000_000_002_096
    assert [(r["arena_bytes"], r["minimum_arena_bytes"]) for r in rows] == [(table["arena_bytes"],
                                                                             table["minimum_arena_bytes"])]


@pytest.mark.parametrize("kernel", [1, 3])
def test_a_conv_after_global_pooling_is_lowered_alike_by_table_and_sweep(tmp_path, kernel):
    """Global average pooling gives a vector. A 1x1 conv on it (MobileNetV3's head) is lowered as the converter
    lowers Keras's form, FULLY_CONNECTED on the (1, C) MEAN; a 3x3 conv keeps the pooled map 4-D (MEAN with
    kept dimensions, CONV_2D). The calculator once printed an arena for a form the export could not build;
    now table, sweep and the lowering the export follows are one form (tests/test_tflite_family.py measures
    the head's form in the interpreter)."""
    import json

    spec = tmp_path / "after.toml"
    spec.write_text('name = "after"\n[[layers]]\ntype = "conv"\nfilters = 8\nstride = 2\n[[layers]]\ntype = "avgpool"\n'
                    f'[[layers]]\ntype = "conv"\nfilters = 16\nkernel = {kernel}\n[[layers]]\ntype = "fc"\n')
    graph = TM.lower(resolve(str(spec)))
    builtins = [op.builtin for op in graph.ops]
    if kernel == 1:
        assert builtins == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "FULLY_CONNECTED"]
        assert graph.tensor("avgpool").shape == (1, 8)
    else:
        assert builtins == ["CONV_2D", "MEAN", "CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
        assert graph.tensor("avgpool").shape == (1, 1, 1, 8)
    args = ("-v", spec, "-a", "1", "-d", "1", "--runtime", "tflm", "--format", "json")
    table = _cli("table", *args)
    assert table.exit_code == 0, table.output
    rows = json.loads(_cli("sweep", *args).stdout)
    figures = json.loads(table.stdout)
    assert [(r["arena_bytes"], r["minimum_arena_bytes"]) for r in rows] == [(figures["arena_bytes"],
                                                                             figures["minimum_arena_bytes"])]
