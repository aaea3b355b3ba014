"""A .tflite file nobody here made, priced and judged like a spec: tflite-micro's own example models
(tests/data/tflite_micro, see its README).

The arena figures were recorded from tflite-micro 0.dev20261023182759's Python interpreter (print_allocations
after one invoke); ``test_the_interpreter_still_records_them`` re-measures them in a child process. Mult-Adds
and parameters are checked against the files' weight shapes read through the schema's object API, a reading
path the importer does not use."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("flatbuffers")
pytest.importorskip("tflite_micro")

from click.testing import CliRunner  # noqa: E402

from mnetcost.calculator import tflm  # noqa: E402
from mnetcost.calculator import tflite_model as TM  # noqa: E402
from mnetcost.calculator.cost import network_cost  # noqa: E402
from mnetcost.calculator.importers import tflite as IT  # noqa: E402
from mnetcost.calculator.resolver import resolve  # noqa: E402
from mnetcost.cli import main  # noqa: E402

from model_file_helpers import object_model, weight_counts  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "tflite_micro"
# file: (arena head, arena tail) as the interpreter recorded them ("Arena allocation head/tail")
RECORDED = {
    "hello_world_float.tflite": (128, 1_408),
    "hello_world_int8.tflite": (32, 1_472),
    "micro_speech_quantized.tflite": (5_968, 1_616),
    "person_detect.tflite": (55_296, 29_968),
}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_arena_is_the_interpreters_to_the_byte(name):
    found = IT.read(DATA / name)
    assert found.problems == ()
    arena = tflm.graph_arena(found.graph)
    head, tail = RECORDED[name]
    assert (arena.head, arena.tail) == (head, tail)
    assert arena.tail_parts["TfLiteEvalTensor data"] == 24 * len(found.graph.tensors)
    assert arena.tail_parts["NodeAndRegistration struct"] == 64 * len(found.graph.ops)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_mult_adds_and_params_are_the_files_weights(name):
    found = IT.read(DATA / name)
    macs, params = weight_counts(DATA / name)
    for convention in ("deploy", "paper", "weights"):  # a file's BatchNorm is folded: every convention agrees
        cost = network_cost(found.network, convention)
        assert (cost.mult_adds, cost.params) == (macs, params)


def test_known_models_priced_exactly():
    """person_detect: 7,157,888 multiply-accumulates; micro_speech's 10 x 8 depthwise conv (a kernel that is
    not square) and its 4,000 x 4 classifier."""
    person = network_cost(IT.read(DATA / "person_detect.tflite").network, "deploy")
    assert (person.mult_adds, person.params) == (7_157_888, 210_706)
    speech = IT.read(DATA / "micro_speech_quantized.tflite").network
    dw = speech.layer("depthwise_conv_2d_1")
    assert (dw.kind, dw.kernel_size, dw.stride, dw.in_c, dw.out_c) == ("dw", (10, 8), 2, 1, 8)
    fc = speech.layer("fully_connected_1")
    assert (fc.kind, fc.in_c, fc.out_c, fc.bias) == ("linear", 4_000, 4, True)
    assert [layer.kind for layer in speech.layers] == ["reshape", "dw", "linear", "softmax"]
    assert [layer.inputs for layer in speech.layers][1:] == [("reshape_1",), ("depthwise_conv_2d_1",),
                                                             ("fully_connected_1",)]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_flash_is_the_file_and_its_parts_add_up(name):
    found = IT.read(DATA / name)
    size = os.path.getsize(DATA / name)
    assert found.size == size and sum(found.parts.values()) == size
    fb, model = object_model(DATA / name)
    sub = model.subgraphs[0]
    constant = {t.buffer for t in sub.tensors}
    stored = sum(len(model.buffers[i].data) for i in constant if model.buffers[i].data is not None)
    assert found.parts["weights"] == stored
    scales = sum(len(t.quantization.scale) for t in sub.tensors if t.quantization is not None
                 and t.quantization.scale is not None)
    assert found.parts["quantization"] >= 12 * scales  # a float32 scale and an int64 zero point each
    assert found.parts["structure"] > 0


def test_the_graph_lifetimes_agree_with_the_calculators_tensor_list():
    """For a spec's own lowering the arena from the file-side lifetimes (the graph alone) equals the arena
    from the calculator's layer tensors."""
    for config in (("base", 0.25, 1), ("fmp", 0.25, 1), ("mp3", 0.25, 2)):
        network = resolve(*config)
        graph = TM.lower(network)
        assert tflm.graph_arena(graph).total == tflm.arena(network).total


def test_table_json_gives_the_interpreters_arena_the_file_and_its_macs():
    path = DATA / "person_detect.tflite"
    result = cli("table", "--variant", path, "--runtime", "tflm", "--tflm-build", "host64", "--convention",
                 "deploy", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    head, tail = RECORDED["person_detect.tflite"]
    assert report["arena_bytes"] == head + tail == 85_264
    assert report["flash_bytes"] == os.path.getsize(path)
    assert report["mult_adds"] == weight_counts(path)[0]
    assert report["tflm_build"] == "host64" and report["dtype"] == "int8"
    assert [op["builtin"] for op in report["model_file"]["operators"]][-3:] == ["CONV_2D", "RESHAPE", "SOFTMAX"]
    assert report["model_file"]["unsupported_operators"] == []


def test_table_of_a_float_file_with_a_board():
    result = cli("table", "--variant", DATA / "hello_world_float.tflite", "--target", "stm32f746", "--format",
                 "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dtype"] == "fp32" and report["runtime"] == "tflm"
    # a board is 32-bit: the arm32 build's tail (tflite-micro's 32-bit build measured 760 B for hello_world_int8's
    # graph, the same operators and tensors); loading needs more than head + tail on so small a head
    assert (report["tflm_build"], report["arena_bytes"], report["minimum_arena_bytes"]) == ("arm32", 128 + 760, 1_204)
    assert report["fit"]["fits"] is True and report["fit"]["ram_need_bytes"] == 1_204
    assert report["fit"]["flash_need_parts"] == {"model": 3_164, "runtime code": 17_624, "reserve": 32_768}
    host = json.loads(cli("table", "--variant", DATA / "hello_world_float.tflite", "--target", "stm32f746",
                          "--tflm-build", "host64", "--format", "json").output)
    assert (host["tflm_build"], host["arena_bytes"]) == ("host64", 128 + 1_408)
    text = cli("table", "--variant", DATA / "hello_world_float.tflite", "--target", "stm32f746").output
    assert "Flash (.tflite 3.1 KiB + TFLM code 17.2 KiB + reserve 32.0 KiB) 52.3 KiB" in text
    for fmt in ("table", "csv", "markdown"):
        shown = cli("table", "--variant", DATA / "hello_world_float.tflite", "--runtime", "tflm", "--format", fmt)
        assert shown.exit_code == 0 and "fully_connected_3" in shown.output


def test_an_operator_it_cannot_price_is_named_in_one_line():
    path = DATA / "keyword_scrambled_8bit.tflite"
    result = CliRunner().invoke(main, ["table", "--variant", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "SVDF (operators 1, 3, 5, 7, 9, 10, 11)" in lines[0] and "Traceback" not in lines[0]
    listed = CliRunner().invoke(main, ["table", "--variant", str(path), "--format", "json"])
    assert listed.exit_code == 2
    data = json.loads(listed.stdout)
    assert [op["index"] for op in data["unsupported_operators"]] == [1, 3, 5, 7, 9, 10, 11]
    assert {op["builtin"] for op in data["unsupported_operators"]} == {"SVDF"}


def test_an_operator_tflm_has_no_kernel_for_is_named(tmp_path):
    """hello_world with its second FULLY_CONNECTED turned into an LSH_PROJECTION (a builtin TFLM lacks)."""
    import flatbuffers

    fb, model = object_model(DATA / "hello_world_int8.tflite")
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.LSH_PROJECTION
    code.version = 1
    model.operatorCodes.append(code)
    model.subgraphs[0].operators[1].opcodeIndex = len(model.operatorCodes) - 1
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "changed.tflite"
    path.write_bytes(bytes(builder.Output()))
    found = IT.read(path)
    assert found.network is None
    assert found.problems == ("operator 1 LSH_PROJECTION: TensorFlow Lite Micro has no kernel for it",)
    result = cli("table", "--variant", path)
    assert result.exit_code == 2 and "LSH_PROJECTION (operator 1): TensorFlow Lite Micro has no kernel" in result.output


def test_spec_options_with_a_file_are_refused():
    path = DATA / "hello_world_int8.tflite"
    for args in (("--alpha", "0.5"), ("--delta", "2"), ("--resolution", "64")):
        result = cli("table", "--variant", path, *args)
        assert result.exit_code == 2 and "a model file has no alpha/delta" in result.output
    wrong = cli("table", "--variant", path, "--dtype", "fp32")
    assert wrong.exit_code == 2 and "the file stores int8" in wrong.output
    bad = cli("table", "--variant", path, "--tflm-build", "arm7")
    assert bad.exit_code == 2


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x8c not a flatbuffer at all")
    result = cli("table", "--variant", path)
    assert result.exit_code == 2 and "is not a TensorFlow Lite file" in result.output
    missing = cli("table", "--variant", tmp_path / "none.tflite")
    assert missing.exit_code == 2 and "cannot read model file" in missing.output


def test_the_interpreter_still_records_them():
    """The recorded figures, measured again (tflite-micro's interpreter in a child process)."""
    from mnetcost.deploy.tflite import tflm_allocations

    for name, (head, tail) in RECORDED.items():
        measured = tflm_allocations(DATA / name, 1 << 20)
        assert (measured["head"], measured["tail"]) == (head, tail), name


def test_crosscheck_runs_the_file_in_the_interpreter():
    path = DATA / "micro_speech_quantized.tflite"
    result = cli("crosscheck", "--runtime", "tflm", "--variant", path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {row["quantity"].strip(): row for row in report["rows"]}
    assert rows["arena total"]["measured"] == rows["arena total"]["predicted"] == 5_968 + 1_616
    assert rows["smallest arena accepted"]["agree"] and report["agree"]
    assert report["operators"] == {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    fvcore = cli("crosscheck", "--variant", path)
    assert fvcore.exit_code == 2 and "--runtime tflm" in fvcore.output


def test_sweep_and_spec_commands_say_a_file_is_not_a_spec():
    result = cli("sweep", "--variant", DATA / "person_detect.tflite")
    assert result.exit_code == 2
    assert "a model file, not a spec: it has no alpha/delta" in result.output


def test_a_softmax_tflm_cannot_quantize_is_named_and_the_interpreter_agrees(tmp_path):
    """person_detect with its softmax's input scale set to 7.8e-9 (what an untrained Keras classifier converts
    to): TFLM's softmax needs beta * scale * 2^26 > 1 and aborts otherwise."""
    import flatbuffers

    from mnetcost.deploy.tflite import tflm_accepts

    fb, model = object_model(DATA / "person_detect.tflite")
    sub = model.subgraphs[0]
    softmax = sub.operators[-1]
    sub.tensors[softmax.inputs[0]].quantization.scale = [7.8e-9]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "tiny_logits.tflite"
    path.write_bytes(bytes(builder.Output()))
    found = IT.read(path)
    assert len(found.problems) == 1 and "operator 30 SOFTMAX: its input scale 7.8e-09" in found.problems[0]
    assert not tflm_accepts(path, 1 << 20)  # the interpreter aborts on it
    assert tflm_accepts(DATA / "person_detect.tflite", 1 << 20)  # and runs the file as it was


def test_kernel_limits_are_named(tmp_path):
    """hello_world float with int8 weights in its first layer (a hybrid model), and with a float16 constant
    dequantized (a float16-quantized file): TFLM runs neither."""
    import flatbuffers

    fb, model = object_model(DATA / "hello_world_float.tflite")
    sub = model.subgraphs[0]
    sub.tensors[sub.operators[0].inputs[1]].type = fb.TensorType.INT8
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(bytes(builder.Output()))
    problems = IT.read(path).problems
    assert problems == ("operator 0 FULLY_CONNECTED: int8 weights with float32 activations (a hybrid model); "
                        "TensorFlow Lite Micro does not run hybrid models",)

    fb, model = object_model(DATA / "hello_world_float.tflite")
    sub = model.subgraphs[0]
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.DEQUANTIZE
    code.version = 1
    model.operatorCodes.append(code)
    weights = sub.operators[0].inputs[1]
    half = fb.TensorT()
    half.shape, half.type, half.buffer, half.name = sub.tensors[weights].shape, fb.TensorType.FLOAT16, \
        sub.tensors[weights].buffer, b"weights_fp16"
    sub.tensors.append(half)
    dequantize = fb.OperatorT()
    dequantize.opcodeIndex, dequantize.inputs, dequantize.outputs = len(model.operatorCodes) - 1, \
        [len(sub.tensors) - 1], [weights]
    sub.tensors[weights].buffer = 0  # the float32 weights are now computed at run time
    sub.operators.insert(0, dequantize)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "float16.tflite"
    path.write_bytes(bytes(builder.Output()))
    problems = IT.read(path).problems
    assert problems[0].startswith("operator 0 DEQUANTIZE: of float16; TensorFlow Lite Micro dequantizes int8")


def test_a_file_on_the_arm32_build_and_a_kernel_without_a_measured_code_size(monkeypatch):
    """A file takes --tflm-build like a spec (arm32: what a 32-bit build records, see test_tflm_builds); a Flash
    verdict needs TFLM's code for every operator, so a kernel whose code was not measured is named in one line
    (exit 2) instead of being counted as 0 B, while the arena alone is still given."""
    path = DATA / "hello_world_int8.tflite"
    report = json.loads(cli("table", "--variant", path, "--runtime", "tflm", "--tflm-build", "arm32", "--format",
                            "json").output)
    assert (report["tflm_build"], report["arena_bytes"], report["minimum_arena_bytes"]) == ("arm32", 828, 1_204)
    monkeypatch.delitem(tflm.OPERATOR_CODE_BYTES, "FULLY_CONNECTED")
    shown = cli("table", "--variant", path, "--runtime", "tflm", "--format", "json")
    assert shown.exit_code == 0 and json.loads(shown.output)["runtime_code_bytes"] is None
    assert "TFLM's code for its operators not measured" in cli("table", "--variant", path, "--runtime", "tflm").output
    result = cli("table", "--variant", path, "--target", "stm32f746")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1
    assert "no Cortex-M7 code size measured for TFLM's FULLY_CONNECTED kernel of hello_world_int8.tflite" in lines[0]
