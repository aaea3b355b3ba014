"""The arena of a 32-bit (Cortex-M) build of TensorFlow Lite Micro and the Flash its code takes, against a
tflite-micro build made from its public sources (``tools/tflm_build/build.py``; the figures it measured are
committed in ``benchmarks/results/tflm_build.json``): its struct sizes compiled for Cortex-M7, its recorded
arena when built as a 32-bit program, its code compiled for Cortex-M7."""
import json
import re
from pathlib import Path

import pytest

from mnetcost.calculator import tflm
from mnetcost.calculator import tflite_model as TM
from mnetcost.calculator.resolver import resolve
from mnetcost.errors import ConfigError

RESULTS = json.loads((Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "tflm_build.json")
                     .read_text())
X86 = RESULTS["arena"]["x86"]
CORTEX_M7 = RESULTS["cortex_m7_structs"]["structs"]
SPEC_FILE = re.compile(r"^(base|mp3|fmp)-a([\d.]+)-d(\d+)\.tflite$")
SPEC_MODELS = sorted(name for name in X86["models"] if SPEC_FILE.match(name))


def config(name):
    variant, alpha, delta = SPEC_FILE.match(name).groups()
    return variant, float(alpha), int(delta)


def test_the_build_measured_is_named():
    assert RESULTS["sources"]["tflite_micro_commit"] == tflm.TFLM_COMMIT_ARM32
    assert tflm.TFLM_COMMIT_ARM32[:7] in tflm.BUILDS["arm32"].version
    assert X86["pointer_bytes"] == 4 and len(SPEC_MODELS) >= 4


def test_arm32_struct_sizes_are_the_cortex_m7_layouts():
    """Every size the arm32 build uses is sizeof (and alignof) of tflite-micro's struct compiled for
    -mcpu=cortex_m7 (ARM EABI)."""
    build = tflm.BUILDS["arm32"]
    assert (build.pointer, build.struct_alignment) == tuple(CORTEX_M7["void*"])
    assert build.eval_tensor == CORTEX_M7["TfLiteEvalTensor"][0] == 12
    assert build.node_and_registration == CORTEX_M7["tflite::NodeAndRegistration"][0] == 32
    assert build.tflite_tensor == CORTEX_M7["TfLiteTensor"][0]
    assert build.affine_quantization == CORTEX_M7["TfLiteAffineQuantization"][0]
    assert build.scratch_handle == CORTEX_M7["tflite::ScratchBufferHandle"][0]
    assert build.subgraph_allocations == CORTEX_M7["tflite::SubgraphAllocations"][0]
    # the allocator objects: recording arena allocator, recording micro allocator, builtin-data allocator
    # (a vtable pointer and one pointer), greedy planner
    assert build.allocator_objects == (CORTEX_M7["tflite::RecordingSingleArenaBufferAllocator"][0]
                                       + CORTEX_M7["tflite::RecordingMicroAllocator"][0] + 2 * build.pointer
                                       + CORTEX_M7["tflite::GreedyMemoryPlanner"][0])
    options = {"CONV_2D": "TfLiteConvParams", "DEPTHWISE_CONV_2D": "TfLiteDepthwiseConvParams",
               "MAX_POOL_2D": "TfLitePoolParams", "AVERAGE_POOL_2D": "TfLitePoolParams", "MEAN": "TfLiteReducerParams",
               "FULLY_CONNECTED": "TfLiteFullyConnectedParams", "GATHER": "TfLiteGatherParams",
               "RESHAPE": "TfLiteReshapeParams", "ADD": "TfLiteAddParams", "MUL": "TfLiteMulParams",
               "SOFTMAX": "TfLiteSoftmaxParams", "CONCATENATION": "TfLiteConcatenationParams"}
    op_data = {"CONV_2D": "tflite::OpDataConv", "DEPTHWISE_CONV_2D": "tflite::OpDataConv",
               "MAX_POOL_2D": "tflite::OpDataPooling", "AVERAGE_POOL_2D": "tflite::OpDataPooling",
               "MEAN": "tflite::OpDataReduce", "FULLY_CONNECTED": "tflite::OpDataFullyConnected",
               "ADD": "tflite::OpDataAdd", "MUL": "tflite::OpDataMul", "SOFTMAX": "tflite::SoftmaxParams"}
    for builtin, kernel in build.kernels.items():
        if builtin in options:
            assert kernel.builtin_data == tuple(CORTEX_M7[options[builtin]]), builtin
        if builtin in op_data:
            assert kernel.op_data == CORTEX_M7[op_data[builtin]][0], builtin
    # the kernels whose structs were read in the source: only those holding pointers (or compression's
    # fields in the host64 package) differ from host64's
    host = tflm.BUILDS["host64"].kernels
    differ = {builtin for builtin in build.kernels if build.kernels[builtin] != host[builtin]}
    assert differ == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "CONCATENATION"}
    assert build.kernels["CONCATENATION"].op_data == 6 * 4  # ConcatenationParams: 4 ints and 2 pointers
    assert set(build.kernels) == set(tflm.BUILDS["host64"].kernels)
    # what RecordingMicroAllocator::GetDefaultTailUsage says, and what the interpreter's constructor takes
    assert build.allocator_objects + build.subgraph_allocations == X86["default_tail_usage"]
    for measured in X86["models"].values():
        assert measured["tail_after_create_bytes"] == (CORTEX_M7["tflite::RecordingSingleArenaBufferAllocator"][0]
                                                      + CORTEX_M7["tflite::RecordingMicroAllocator"][0]
                                                      + CORTEX_M7["tflite::GreedyMemoryPlanner"][0])


def test_the_32bit_x86_build_lays_the_tail_out_as_cortex_m7():
    """i386 aligns int64 and double to 4 inside structs, ARM EABI to 8: the structs holding them differ, but
    none of those the tail of these models holds, so the 32-bit x86 program measures the Cortex-M arena."""
    layout = RESULTS["cortex_m7_structs"]["primitive_layout"]
    assert layout["thumb-freestanding-eabi"] == layout["thumb-linux-musleabihf"]
    assert layout["thumb-freestanding-eabi"]["alignof(int64_t)"] == 8 == 2 * layout["x86-linux-musl"]["alignof(int64_t)"]
    differ = {name for name, size in X86["structs"].items() if CORTEX_M7[name] != size}
    assert differ <= {"int64_t", "double", "tflite::SoftmaxParams"}, differ
    assert "int64_t" in differ  # the check can disagree


@pytest.mark.parametrize("name", SPEC_MODELS)
def test_arm32_prediction_equals_the_32bit_build(name):
    """Head, tail, each recorded category, total and the smallest arena_size accepted, to the byte."""
    measured = X86["models"][name]
    network = resolve(*config(name))
    arena = tflm.arena(network, build="arm32")
    assert measured["file_bytes"] == TM.flash_bytes(network)
    assert (arena.ops, arena.tensors) == (measured["operators"], measured["tensors"])
    assert (arena.head, arena.tail, arena.total) == (measured["head_bytes"], measured["tail_bytes"],
                                                      measured["arena_bytes"])
    for part in tflm.RECORDED:
        assert arena.tail_parts[part] == measured["recorded"][part]["used"], part
    assert arena.minimum == measured["minimum_arena_bytes"]


def test_the_options_offer_every_build():
    from mnetcost.calculator.targets import TARGETS, TFLM_BUILD_NAMES

    assert TFLM_BUILD_NAMES == tuple(tflm.BUILDS)
    assert {target.tflm_build for target in TARGETS.values()} <= set(tflm.BUILDS)


def test_the_loading_structs_hold_size_t_and_pointers():
    """What the interpreter borrows while it loads (ScratchBufferRequest {size_t, int, int}, AllocationInfo
    {size_t, void**, int, int, int32_t, bool}, a size_t per subgraph) shrinks with the pointer; the smallest
    arena_size accepted of the 32-bit build's files checks them (a small head makes loading bind)."""
    for build in tflm.BUILDS.values():
        assert build.scratch_request == build.pointer + 8
        assert build.allocation_info == -(-(2 * build.pointer + 13) // build.struct_alignment) * build.struct_alignment
    assert (tflm.BUILDS["host64"].allocation_info, tflm.BUILDS["arm32"].allocation_info) == (32, 24)


# tflite-micro's own example models (tests/data/tflite_micro), measured by the 32-bit build
FILES = {name: name for name in ("person_detect.tflite", "micro_speech_quantized.tflite", "hello_world_int8.tflite")}


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_read_as_it_is_on_the_arm32_build_equals_the_32bit_build(name):
    """The file path (a graph read from a .tflite made elsewhere) in the arm32 build: head, tail, each recorded
    category and the smallest arena accepted, to the byte. hello_world's 32 B head makes loading bind: its
    smallest arena (1,204 B) is 376 B above head + tail."""
    from mnetcost.calculator.importers import tflite as IT

    measured = X86["models"][FILES[name]]
    found = IT.read(Path(__file__).resolve().parent / "data" / "tflite_micro" / name)
    assert found.size == measured["file_bytes"] and not found.problems
    arena = tflm.graph_arena(found.graph, "arm32")
    assert (arena.head, arena.tail, arena.total, arena.minimum) == (
        measured["head_bytes"], measured["tail_bytes"], measured["arena_bytes"], measured["minimum_arena_bytes"])
    for part in tflm.RECORDED:
        assert arena.tail_parts[part] == measured["recorded"][part]["used"], part
    if name == "hello_world_int8.tflite":
        assert arena.minimum - arena.total == 376


def test_the_32bit_tail_is_smaller_by_the_pointer_sized_structs():
    network = resolve("base", 0.25, 1)
    host, arm = tflm.arena(network, build="host64"), tflm.arena(network, build="arm32")
    assert host.head == arm.head
    assert host.tail_parts["TfLiteEvalTensor data"] - arm.tail_parts["TfLiteEvalTensor data"] == 12 * host.tensors
    assert host.tail_parts["NodeAndRegistration struct"] - arm.tail_parts["NodeAndRegistration struct"] == 32 * host.ops
    assert arm.tail < host.tail


def test_runtime_code_is_the_measured_link():
    code = RESULTS["cortex_m7_code"]
    assert tflm.FRAMEWORK_CODE_BYTES == code["framework_bytes"]
    assert tflm.OPERATOR_CODE_BYTES == code["operator_bytes"]
    assert tflm.OPERATOR_SET_CODE_BYTES == {frozenset(s["operators"]): s["bytes"]
                                           for s in code["operator_set_bytes"].values()}
    for variant in ("base", "mp3", "fmp"):  # the paper's models: their operator sets were linked whole
        builtins = TM.operator_codes(TM.lower(resolve(variant, 0.25, 1)))
        found = tflm.runtime_code(builtins)
        assert found["exact"] and found["total"] == code["operator_set_bytes"][variant]["bytes"]
        assert found["total"] == tflm.runtime_figures(resolve(variant, 0.5, 2))["runtime_code_bytes"]
    # a set not linked whole: the framework plus each operator's increment, above every linked set it covers
    other = tflm.runtime_code(["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "ADD"])
    assert not other["exact"]
    assert other["total"] == code["framework_bytes"] + sum(code["operator_bytes"][op] for op in (
        "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "ADD"))
    for linked in code["operator_set_bytes"].values():  # the increments overlap: their sum bounds a link
        bound = code["framework_bytes"] + sum(code["operator_bytes"][op] for op in linked["operators"])
        assert linked["bytes"] < bound < 1.2 * linked["bytes"]


def test_an_operator_without_a_measured_kernel_is_named():
    with pytest.raises(ConfigError, match="no code size measured for TFLM's LSTM kernel"):
        tflm.runtime_code(["CONV_2D", "LSTM"])


# tflite-micro's tools/benchmarking/README.md (its example output: person_detect.tflite on a Cortex-M4,
# Corstone-300, CMSIS-NN kernels, tflite-micro git aa47932): the recorded arena by category.
PERSON_DETECT_CORTEX_M4 = {"total": 84_436, "non_persistent": 55_296, "persistent": 29_140,
                           "TfLiteEvalTensor data": (1_068, 89), "NodeAndRegistration struct": (992, 31),
                           "Persistent TfLiteTensor quantization data": (40, 4),
                           "Persistent TfLiteTensor data": (64, 2), "Persistent buffer data": (25_872, 90)}


def test_person_detection_on_a_cortex_m4_has_the_arm32_structs():
    """A model nobody here made, measured by tflite-micro's own authors on a Cortex-M4: its eval tensors and
    nodes take arm32's 12 B and 32 B (the host's 24 B and 64 B would not), and the 32-bit build measured
    here plans the same head and records the same struct bytes; the per-op buffers differ by the kernel
    library (CMSIS-NN there, reference kernels here) and the commit (TfLiteTensor grew by 8 B since)."""
    published = PERSON_DETECT_CORTEX_M4
    measured = X86["models"]["person_detect.tflite"]
    arm32, host64 = tflm.BUILDS["arm32"], tflm.BUILDS["host64"]
    for part, size in (("TfLiteEvalTensor data", arm32.eval_tensor), ("NodeAndRegistration struct",
                                                                      arm32.node_and_registration)):
        used, count = published[part]
        assert used == size * count == measured["recorded"][part]["used"]
        assert used != count * (host64.eval_tensor if part.startswith("TfLiteEval") else host64.node_and_registration)
    assert (measured["operators"], measured["tensors"]) == (31, 89)
    assert measured["head_bytes"] == published["non_persistent"]
    assert measured["recorded"]["Persistent TfLiteTensor quantization data"]["used"] == 40
    assert measured["recorded"]["Persistent TfLiteTensor data"]["used"] == 2 * arm32.tflite_tensor == 64 + 2 * 8
    assert measured["tail_bytes"] < published["persistent"]


@pytest.mark.parametrize("name", SPEC_MODELS)
def test_the_same_sources_on_the_64_bit_host_differ_from_the_python_package_by_compression(name):
    """host64 follows the tflite-micro Python package (git 8f6596d), which is built with compression support
    (USE_TFLM_COMPRESSION: two more scratch indices in OpDataConv and OpDataFullyConnected, a compressed-tensor
    list per subgraph). The sources measured here (90b983c), built for x86-64 without it, record 80 B less on
    every model: 32 B of "Persistent buffer data" (OpDataConv 72 B instead of 80 B, OpDataFullyConnected 64 B
    instead of 72 B, each allocation 16-byte aligned) and 48 B the recorder does not categorize (allocator
    objects and options); the head and every other category are the same."""
    measured = RESULTS["arena"]["x86_64"]["models"][name]
    structs = RESULTS["arena"]["x86_64"]["structs"]
    assert (structs["tflite::OpDataConv"][0], structs["tflite::OpDataFullyConnected"][0]) == (72, 64)
    assert (tflm.KERNELS["CONV_2D"].op_data, tflm.KERNELS["FULLY_CONNECTED"].op_data) == (80, 72)
    arena = tflm.arena(resolve(*config(name)), build="host64")
    assert measured["head_bytes"] == arena.head
    assert arena.tail - measured["tail_bytes"] == 80
    for part in tflm.RECORDED:
        less = 32 if part == "Persistent buffer data" else 0
        assert arena.tail_parts[part] - measured["recorded"][part]["used"] == less, part


@pytest.mark.parametrize("name", SPEC_MODELS)
def test_built_as_the_python_package_is_the_same_sources_record_what_host64_predicts(name):
    """Built with compression support, as the package is, the sources measured here record every category
    host64 predicts from the package's interpreter, byte for byte; the tail is 16 B smaller only in what the
    recorder does not categorize: the fully connected operator's options (16 B here, 32 B in the package's
    tail)."""
    measured = RESULTS["arena"]["x86_64+compression"]["models"][name]
    structs = RESULTS["arena"]["x86_64+compression"]["structs"]
    assert (structs["tflite::OpDataConv"][0], structs["tflite::OpDataFullyConnected"][0]) == (80, 72)
    assert structs["TfLiteFullyConnectedParams"] == [16, 4] and tflm.KERNELS["FULLY_CONNECTED"].builtin_data == (32, 8)
    arena = tflm.arena(resolve(*config(name)), build="host64")
    assert measured["head_bytes"] == arena.head
    for part in tflm.RECORDED:
        assert arena.tail_parts[part] == measured["recorded"][part]["used"], part
    assert arena.tail - measured["tail_bytes"] == 16
