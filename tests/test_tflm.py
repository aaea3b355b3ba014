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
    with pytest.raises(ConfigError, match="neither TF 'same' nor 'valid'"):
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
    for row in grid:  # a board is 32-bit: the arm32 build's arena
        arena = tflm.arena(resolve("mp3", row["alpha"], row["delta"]), build="arm32")
        assert row["runtime"] == "tflm" and row["tflm_build"] == "arm32" and row["arena_bytes"] == arena.total
        assert row["fit"]["sram_margin_bytes"] == 320 * 1024 - arena.total
        assert row["fit"]["flash_need_parts"] == {"model": row["flash_bytes"], "runtime code": 33_514,
                                                  "reserve": 32_768}
        assert row["fit"]["flash_margin_bytes"] == 2**20 - row["flash_bytes"] - 33_514 - 32_768
    host = json.loads(_cli("table", "-v", "mp3", "-a", "0.25", "--target", "stm32f746", "--tflm-build", "host64",
                           "--flash-reserve", "0", "--format", "json").stdout)
    assert (host["tflm_build"], host["arena_bytes"]) == ("host64", tflm.arena(resolve("mp3", 0.25, 1)).total)
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
    # Flash holds the file, TFLM's code for the operators and the default 32 KiB reserve
    fits = [r for r in everything if r["arena_bytes"] <= 320 * 1024
            and r["flash_bytes"] + r["runtime_code_bytes"] + 32_768 <= 2**20]
    assert {r["runtime_code_bytes"] for r in everything} == {30_834, 33_514, 34_962}  # base, mp3, fmp
    assert any(r["flash_bytes"] <= 2**20 and r["arena_bytes"] <= 320 * 1024 for r in everything if r not in fits)
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
    mixed = _cli("sweep", "-v", "base,mobilenet_v2", "-a", "0.25", "-d", "1", "--runtime", "tflm", "--format", "json")
    assert mixed.exit_code == 0 and [r["variant"] for r in json.loads(mixed.stdout)] == ["base"]
    assert "no TensorFlow Lite Micro figures" in mixed.stderr


@pytest.mark.parametrize("args, words", [
    (("table", "--runtime", "coral"), "'coral' is not one of"),
    (("table", "--runtime", "tflm", "--dtype", "fp32"), "--runtime tflm runs the int8"),
    (("sweep", "--runtime", "tflm", "--dtype", "fp16"), "--runtime tflm runs the int8"),
    (("paper", "--runtime", "tflm", "--dtype", "fp32"), "--runtime tflm runs the int8"),
    (("sweep", "--sort", "arena_bytes"), "needs --runtime tflm"),
    (("table", "-v", "mobilenet_v2", "--runtime", "tflm"), "no TensorFlow Lite lowering for layer kind 'add'"),
    (("table", "-v", "mobilenet_v3_small", "--runtime", "tflm"), "activation hardswish is not lowered"),
    (("crosscheck", "--runtime", "tflm", "--dtype", "fp32"), "does not apply"),
    (("crosscheck", "--runtime", "tflm", "--all"), "drop --all"),
    (("table", "--tflm-build", "arm32"), "--tflm-build arm32 sizes TensorFlow Lite Micro's arena; it needs --runtime"),
    (("sweep", "--target", "rp2040", "--runtime", "simple", "--tflm-build", "host64"), "it needs --runtime tflm"),
    (("table", "--runtime", "tflm", "--tflm-build", "arm64"), "'arm64' is not one of"),
    (("crosscheck", "--runtime", "tflm", "--tflm-build", "arm32"), "checks --tflm-build host64 only"),
    (("table", "--target", "rp2040", "--flash-reserve", "-1KiB"), "must not be negative"),
    (("export", "--variant", "base", "--format", "tflite", "--out", "{tmp}/m.onnx"), "--out must end in .tflite"),
    (("export", "--variant", "base", "--out", "{tmp}/m.tflite"), "needs calibration images"),
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
