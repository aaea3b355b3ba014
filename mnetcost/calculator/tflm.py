"""The arena TensorFlow Lite Micro needs to run the exported int8 file, predicted from the resolved layers.

The model follows tflite-micro's ``MicroInterpreter`` with the ``RecordingMicroAllocator`` and the
``GreedyMemoryPlanner``, reference kernels, in one of two builds (:data:`BUILDS`, the struct sizes of
each): ``host64``, **tflite-micro 0.dev20261023182759 (git 8f6596d)**, the ``tflite-micro`` Python
package on x86-64, checked to the byte against that interpreter by ``mnetcost crosscheck --runtime
tflm``; ``arm32``, a 32-bit Cortex-M build of tflite-micro git 90b983c (ARM EABI struct layouts),
checked to the byte against a 32-bit build of those sources (``tools/tflm_build``; figures in
``benchmarks/results/tflm_build.json``). The arena is one block, filled from both ends:

**Head** (non-persistent, the activations): every tensor that has no data in the file (the image, each
operator's output) and every scratch buffer a kernel asks for, placed by TFLM's greedy planner
(:func:`mnetcost.calculator.lifetimes.greedy_offsets`) with sizes rounded up to 16 bytes. Lifetimes
are TFLM's: operator ``i`` runs at step ``i + 1``, the image exists from step 0, a tensor lives from
the operator that writes it to the last one that reads it, a scratch buffer for its operator's step.
The tensors are the calculator's one tensor list (:func:`mnetcost.calculator.memory.layer_tensors`,
one tensor per layer output) as the operators it lowers to read and write them
(:func:`mnetcost.calculator.tflite_model.lower`), plus the tensors between the operators of one layer
(fractional max pooling's gathered rows and columns, a flatten before the classifier, a conv's output
before its hard-swish or hard-sigmoid, a residual the converter reshapes). Scratch
buffers: ``MEAN`` asks for its int32 sums (4 bytes per output element), 4 bytes per input dimension
and 4 per reduced axis; the other kernels used here ask for none.

**Tail** (persistent), allocated downwards from the arena's end, each allocation aligned down to its
own alignment (so small ones leave gaps before 16-byte-aligned ones), in TFLM's order:

1. the allocator objects (recording buffer allocator, greedy planner, recording micro allocator,
   builtin-data allocator) and the subgraph's allocation record;
2. one ``TfLiteEvalTensor`` (host64 24 B, arm32 12 B) per tensor of the file, constants included; one
   node with its registration (64 B, 32 B) per operator;
3. each operator's parsed builtin options (``TfLiteConvParams`` ... :class:`Kernel`);
4. each kernel's op data (``OpDataConv`` 80 B, 56 B ...), 16-byte aligned ("Persistent buffer data");
5. per output channel of every conv, depthwise conv and fully connected operator, an int32 output
   multiplier and an int32 shift, each array 16-byte aligned ("Persistent buffer data");
6. a handle (one pointer) per scratch buffer;
7. for the graph's input and output: a pointer array, a ``TfLiteTensor`` (64 B, 40 B) and its
   quantization (24 B, 12 B + a zero-point array).

The structs that hold pointers are the only difference between the builds: the per-channel data (the
bulk of the tail) and the head are the same. The Flash TFLM's own code takes for the model's operators
(:func:`runtime_code`) was measured by linking tflite-micro for Cortex-M7.

**Loading** (:func:`minimum_arena`): besides head and tail, the interpreter takes temporary room from the
free middle while it loads the model, so the smallest ``arena_size`` it accepts can exceed head + tail
when the head is small. While each kernel prepares (the head then holds one ``ScratchBufferRequest``,
host64 16 B, arm32 12 B, per scratch-buffer request, 12 slots ahead), it copies its tensors into temporary
``TfLiteTensor`` structs (64 B, 40 B, with a ``TfLiteAffineQuantization`` of 24 B, 12 B and a zero-point
array of 4 + 4 B per scale; which tensors, in which order, per builtin: :data:`PREPARE_TEMPS`); the
temporaries must stay below the tail of that moment. While it makes the memory plan, it takes a
``size_t`` per subgraph and one ``AllocationInfo`` (32 B, 24 B) per tensor and scratch buffer, and the
greedy planner needs 40 B per planned buffer (ints only: both builds) of what is left between them and
the tail (both 16-byte aligned). The host64 sizes were measured with the interpreter's own allocation
records; the arm32 ones are the same structs with 4-byte pointers and ``size_t``, checked against the
smallest arena a 32-bit build accepts.

**A file made elsewhere** (:mod:`mnetcost.calculator.importers.tflite`, float32 or int8): the same arena
(:func:`planned_arena`) over the file's own graph, its head's lifetimes taken from the graph itself as TFLM's
``AllocationInfoBuilder`` takes them (:func:`graph_tensors`); per-channel data only where the kernel keeps it
(every conv and depthwise conv, a fully connected operator with per-channel weights), the input's and output's
quantization only when they are quantized. :data:`TFLM_BUILTINS` is what "will it run" checks operators
against; :data:`BUILDS` names the builds whose figures this module gives (``host64``, ``arm32``), for a spec and a
file alike.

Standard library only (numpy arrays in a sweep are only added and compared).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from mnetcost.calculator import lifetimes
from mnetcost.calculator import tflite_model as TM
from mnetcost.errors import ConfigError

TFLM_VERSION = "tflite-micro 0.dev20261023182759 (git 8f6596d), 64-bit host build, RecordingMicroAllocator"
ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment()
INT8_BYTES = 1  # bytes per activation element


class Kernel(NamedTuple):
    """What one builtin's kernel keeps in the tail: its parsed options (bytes, alignment), its op data
    (bytes; 16-byte aligned), and whether it stores a multiplier and a shift per output channel."""

    builtin_data: tuple[int, int]
    op_data: int
    per_channel: bool


class Build(NamedTuple):
    """The sizes a tflite-micro build gives the structs of the persistent tail (``sizeof``; the
    alignment of the pointer-holding ones is ``struct_alignment``). Pointer width sets them: a 64-bit
    host build and a 32-bit microcontroller build of the same sources differ in every struct that holds
    a pointer; the per-channel data and the head do not change."""

    name: str
    version: str  # the build measured (tflite-micro commit, target)
    pointer: int
    struct_alignment: int  # alignof the pointer-holding structs: TfLiteEvalTensor, TfLiteTensor, ...
    allocator_objects: int  # the allocator objects the interpreter places in the tail when it is made
    subgraph_allocations: int  # SubgraphAllocations (two pointers) per subgraph
    eval_tensor: int  # TfLiteEvalTensor
    node_and_registration: int  # NodeAndRegistration: TfLiteNode + a TFLMRegistration pointer
    tflite_tensor: int  # TfLiteTensor (TF_LITE_STATIC_MEMORY), for the graph's input and output
    affine_quantization: int  # TfLiteAffineQuantization
    scratch_handle: int  # ScratchBufferHandle (one pointer)
    scratch_request: int  # internal::ScratchBufferRequest (size_t, int, int), at the head while loading
    allocation_info: int  # AllocationInfo (size_t, void**, 3 int32, bool), per tensor while planning
    kernels: dict  # builtin -> Kernel: the options struct and op data of this build


# The 64-bit host build, measured with the interpreter of the tflite-micro Python package.
KERNELS = {
    "CONV_2D": Kernel((28, 4), 80, True),  # TfLiteConvParams, OpDataConv
    "DEPTHWISE_CONV_2D": Kernel((28, 4), 80, True),  # TfLiteDepthwiseConvParams, OpDataConv
    "MAX_POOL_2D": Kernel((40, 4), 32, False),  # TfLitePoolParams, OpDataPooling
    "MEAN": Kernel((1, 1), 44, False),  # TfLiteReducerParams, OpDataReduce
    "FULLY_CONNECTED": Kernel((32, 8), 72, True),  # TfLiteFullyConnectedParams, OpDataFullyConnected
    "GATHER": Kernel((8, 4), 20, False),  # TfLiteGatherParams
    "RESHAPE": Kernel((36, 4), 0, False),  # TfLiteReshapeParams
    "ADD": Kernel((8, 4), 60, False),  # TfLiteAddParams, OpDataAdd
    "MUL": Kernel((4, 4), 36, False),  # TfLiteMulParams, OpDataMul
    "HARD_SWISH": Kernel((0, 0), 20, False),  # no options; HardSwishParams
}
# Builtins met in files made elsewhere (mnetcost.calculator.importers.tflite), measured the same way; kernels
# without parsed options have builtin data (0, 0), kernels without op data 0.
KERNELS.update({
    "AVERAGE_POOL_2D": Kernel((40, 4), 32, False),  # TfLitePoolParams, OpDataPooling
    "SOFTMAX": Kernel((4, 4), 80, False),  # TfLiteSoftmaxParams, SoftmaxParams
    "SUB": Kernel((8, 4), 52, False),  # TfLiteSubParams, OpDataSub
    "PAD": Kernel((0, 0), 56, False),  # OpData
    "PADV2": Kernel((0, 0), 56, False),  # PAD's kernel (read in the source, not measured)
    "CONCATENATION": Kernel((8, 4), 80, False),  # TfLiteConcatenationParams, OpData (with compression's indices)
    "QUANTIZE": Kernel((0, 0), 32, False),  # OpDataQuantizeReference
    "DEQUANTIZE": Kernel((0, 0), 32, False),  # DequantizeOpData
    "RELU": Kernel((0, 0), 28, False),  # ReluOpData (ReluParams)
    "RELU6": Kernel((0, 0), 8, False),  # Relu6OpData
    "LOGISTIC": Kernel((0, 0), 16, False),  # OpDataLogistic
    "TANH": Kernel((0, 0), 16, False),  # OpData
    "LEAKY_RELU": Kernel((4, 4), 24, False),  # TfLiteLeakyReluParams, LeakyReluOpData
    "SQUEEZE": Kernel((36, 4), 0, False),  # TfLiteSqueezeParams (read in the source, not measured)
    "EXPAND_DIMS": Kernel((0, 0), 0, False),  # (read in the source, not measured)
    # the dynamic flatten Keras 3 models convert to (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE)
    "SHAPE": Kernel((4, 4), 0, False),  # TfLiteShapeParams
    "STRIDED_SLICE": Kernel((24, 4), 84, False),  # TfLiteStridedSliceParams, StridedSliceParams
    "PACK": Kernel((8, 4), 0, False),  # TfLitePackParams
    "TRANSPOSE": Kernel((0, 0), 0, False),  # the NCHW -> NHWC of files converted from PyTorch
})
# A 32-bit build for Cortex-M (ARM EABI: 4-byte pointers; int64 and double 8-byte aligned), from the
# struct sizes of tflite-micro compiled for -mcpu=cortex_m7 and the arena of a 32-bit build
# (tools/tflm_build), without compression support (a microcontroller build's default). The op data that
# holds pointers shrinks (OpDataConv 56 B, OpDataFullyConnected 48 B, SoftmaxParams 56 B, concatenation's
# OpData 24 B); so do the options the host64 table takes from the Python package, which is built with
# compression support (TfLiteFullyConnectedParams 16 B, 4-byte aligned, as on x86-64 without it). The
# structs without a pointer, a size_t or compression's fields (the options, OpDataAdd, OpDataMul,
# OpDataPooling, OpDataReduce, ...) are those of host64; the ones marked "source" were read in
# tflite-micro's source at that commit, the others compiled for Cortex-M7 (benchmarks/results/tflm_build.json).
KERNELS_ARM32 = {
    "CONV_2D": Kernel((28, 4), 56, True),
    "DEPTHWISE_CONV_2D": Kernel((28, 4), 56, True),
    "MAX_POOL_2D": Kernel((40, 4), 32, False),
    "MEAN": Kernel((1, 1), 44, False),
    "FULLY_CONNECTED": Kernel((16, 4), 48, True),
    "GATHER": Kernel((8, 4), 20, False),  # source: OpData of ints
    "RESHAPE": Kernel((36, 4), 0, False),
    "ADD": Kernel((8, 4), 60, False),
    "MUL": Kernel((4, 4), 36, False),
    "HARD_SWISH": Kernel((0, 0), 20, False),  # source: HardSwishParams, ints
    "AVERAGE_POOL_2D": Kernel((40, 4), 32, False),
    "SOFTMAX": Kernel((4, 4), 56, False),
    "SUB": Kernel((8, 4), 52, False),  # source: OpDataSub, ints
    "PAD": Kernel((0, 0), 56, False),  # source: PadParams + an int32
    "PADV2": Kernel((0, 0), 56, False),  # source: PAD's kernel
    "CONCATENATION": Kernel((8, 4), 24, False),  # source: ConcatenationParams (two pointers), no compression
    "QUANTIZE": Kernel((0, 0), 32, False),  # source: QuantizationParams {int32, double} (double 8-aligned)
    "DEQUANTIZE": Kernel((0, 0), 32, False),  # source: DequantizationParams {double, int32}
    "RELU": Kernel((0, 0), 28, False),  # source: ReluParams, ints
    "RELU6": Kernel((0, 0), 8, False),  # source
    "LOGISTIC": Kernel((0, 0), 16, False),  # source
    "TANH": Kernel((0, 0), 16, False),  # source
    "LEAKY_RELU": Kernel((4, 4), 24, False),  # source
    "SQUEEZE": Kernel((36, 4), 0, False),  # source
    "EXPAND_DIMS": Kernel((0, 0), 0, False),
    "SHAPE": Kernel((4, 4), 0, False),  # source
    "STRIDED_SLICE": Kernel((24, 4), 84, False),  # source: StridedSliceParams, int8/int32 arrays
    "PACK": Kernel((8, 4), 0, False),  # source
    "TRANSPOSE": Kernel((0, 0), 0, False),
}
TFLM_COMMIT_ARM32 = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
BUILDS = {
    "host64": Build("host64", TFLM_VERSION, pointer=8, struct_alignment=8, allocator_objects=472,
                    subgraph_allocations=16, eval_tensor=24, node_and_registration=64, tflite_tensor=64,
                    affine_quantization=24, scratch_handle=8, scratch_request=16, allocation_info=32,
                    kernels=KERNELS),
    "arm32": Build("arm32", f"tflite-micro git {TFLM_COMMIT_ARM32[:7]}, 32-bit Cortex-M build (ARM EABI), "
                            "RecordingMicroAllocator", pointer=4, struct_alignment=4, allocator_objects=228,
                   subgraph_allocations=8, eval_tensor=12, node_and_registration=32, tflite_tensor=40,
                   affine_quantization=12, scratch_handle=4, scratch_request=12, allocation_info=24,
                   kernels=KERNELS_ARM32),
}
DEFAULT_BUILD = "host64"


def get_build(build: str | Build = DEFAULT_BUILD) -> Build:
    """A :class:`Build` by name (``host64``, ``arm32``)."""
    if isinstance(build, Build):
        return build
    if build not in BUILDS:
        raise ConfigError(f"unknown TFLM build {build!r} (one of {', '.join(BUILDS)})")
    return BUILDS[build]


# The RecordingMicroAllocator's categories (its print_allocations lines), and what it does not record.
RECORDED = ("TfLiteEvalTensor data", "Persistent TfLiteTensor data", "Persistent TfLiteTensor quantization data",
            "Persistent buffer data", "NodeAndRegistration struct")
UNRECORDED = ("allocator objects", "builtin data", "scratch buffer handles")
TAIL_PARTS = RECORDED + UNRECORDED


def scratch_buffers(op: TM.OpSpec, graph: TM.Graph) -> tuple:
    """Bytes of each scratch buffer ``op``'s kernel requests in Prepare: ``MEAN`` its int32 sums (int8 and
    int16 inputs only), 4 bytes per input dimension and 4 per reduced axis."""
    if op.builtin == "MEAN":
        output = graph.tensor(op.output)
        data = graph.tensor(op.inputs[0])
        sums = (4 * output.elements,) if data.dtype in QUANTIZED_TYPES else ()
        return (*sums, 4 * len(data.shape), 4 * graph.tensor(op.inputs[1]).elements)
    return ()


QUANTIZED_TYPES = (9, 7)  # int8, int16: the kernels' quantized paths


def per_channel(op: TM.OpSpec, graph: TM.Graph):
    """Output channels for which ``op``'s kernel stores an int32 multiplier and shift (None: none; an array
    in a sweep). A conv and a depthwise conv always do (float ones too: one per filter), a fully connected
    operator only when its weights are quantized per channel (more than one scale)."""
    if not KERNELS[op.builtin].per_channel:
        return None
    if op.builtin == "FULLY_CONNECTED":
        weights = graph.tensor(op.inputs[1])
        if weights.quantization != "channel" or (isinstance(weights.channels, int) and weights.channels < 2):
            return None
        return weights.channels
    return graph.tensor(op.output).shape[-1]


def operator_steps(graph: TM.Graph) -> tuple[list[int], list[int]]:
    """(first step, last step) of each layer's operators, TFLM's numbering (operator i at step i + 1)."""
    starts, ends, step = [], [], 1
    for _, count in graph.layer_ops:
        starts.append(step)
        ends.append(step + count - 1)
        step += count
    return starts, ends


def planned_tensors(graph: TM.Graph, layer_tensors) -> list:
    """The head's buffers in TFLM's order (tensors in file order, then scratch buffers), as
    :class:`~mnetcost.calculator.lifetimes.Tensor` with TFLM's steps: each tensor lives from the operator
    that writes it (the graph's input from step 0) to the last operator that reads it. ``layer_tensors``:
    the calculator's layer-level tensors (:func:`~mnetcost.calculator.memory.layer_tensors` at int8), whose
    sizes the layers' outputs take; the tensors between the operators of one layer (and a residual the
    converter reshapes) take their own."""
    written = {graph.input: 0}
    last_read: dict[str, int] = {}
    for number, op in enumerate(graph.ops):
        for name in op.inputs:
            last_read[name] = number + 1
        written[op.output] = number + 1
    sizes = {tensor.name: tensor.size for tensor in layer_tensors}
    planned = []
    for tensor in graph.tensors:
        if tensor.constant:
            continue
        first = written[tensor.name]
        planned.append(lifetimes.Tensor(tensor.name, sizes.get(tensor.name, tensor.nbytes), first,
                                        last_read.get(tensor.name, first)))
    for number, op in enumerate(graph.ops):
        for k, size in enumerate(scratch_buffers(op, graph)):
            planned.append(lifetimes.Tensor(f"{op.output}/scratch{k}", size, number + 1, number + 1))
    return planned


# Prepare's temporary TfLiteTensors, per builtin: the operator's inputs (by position) and ``OUT`` in the order
# its kernel asks for them, and ``PER_CHANNEL`` where it allocates its per-channel multipliers and shifts
# (conv_common.cc, depthwise_conv_common.cc, fully_connected.cc, pooling_common.cc, reduce_common.cc,
# gather.cc, reshape_common.cc). A builtin not listed asks for each input, then its output, once.
OUT, PER_CHANNEL = "output", "per-channel"
PREPARE_TEMPS = {
    "CONV_2D": (OUT, 0, 1, PER_CHANNEL, 0, 1, 2, OUT),
    "DEPTHWISE_CONV_2D": (OUT, 0, 1, PER_CHANNEL, 0, 1, 2, OUT),
    "FULLY_CONNECTED": (0, 1, 2, OUT, PER_CHANNEL),
    "MAX_POOL_2D": (0, OUT),
    "MEAN": (0, OUT, 1, 0, 1, OUT),  # PrepareMeanOrSumHelper, then PrepareSimple
    "GATHER": (0, 1, OUT),
    "RESHAPE": (0, OUT),
}
# The loading model's struct sizes per build are in :class:`Build` (a temporary TfLiteTensor is the build's
# ``tflite_tensor``, its quantization ``affine_quantization``, both aligned to ``struct_alignment``; its
# zero-point TfLiteIntArray 4 + 4 per scale, alignment 4; ``scratch_request`` per ScratchBufferRequest kept at
# the head while kernels prepare; a size_t (``pointer``) per subgraph and ``allocation_info`` per tensor and
# scratch buffer while the plan is made). The planner's per-buffer arrays are ints on every build.
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp: request slots reserved ahead of each operator
PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(): 16 + 4 + 4 + 12 + 4, per planned buffer
TEMP, PLANNER = "temp", "planner"  # the timeline's two checks (not tail allocations)


def _temp_tensor(pointer: int, tensor: TM.TensorSpec, b: Build) -> int:
    """The head-side pointer after one temporary TfLiteTensor of ``tensor`` (with its quantization)."""
    quantized = tensor.quantization != "none"
    for size in (b.tflite_tensor, b.affine_quantization) if quantized else (b.tflite_tensor,):
        pointer = lifetimes.align_up(pointer, b.struct_alignment) + size
    if quantized:
        scales = tensor.channels if tensor.quantization == "channel" else 1
        pointer = lifetimes.align_up(pointer, 4) + 4 + 4 * scales
    return pointer


def _timeline(graph: TM.Graph, build: str | Build = DEFAULT_BUILD) -> list[tuple]:
    """What the interpreter allocates, in its order, while it loads the model, with ``build``'s struct
    sizes: the tail's allocations ``(category, bytes, alignment)``, and the points where the head side must
    still fit below the tail: ``(TEMP, head-side end, 0)`` after each temporary TfLiteTensor a kernel takes
    in Prepare (the head then holds the scratch-buffer requests), and ``(PLANNER, head-side end, buffers)``
    when the memory plan is made (the allocation records taken, the planner needs
    :data:`PLANNER_PER_BUFFER` bytes per buffer of what is left below the tail, both 16-byte aligned). The
    arena starts 16-byte aligned at 0."""
    b = get_build(build)
    kernels, align = b.kernels, b.struct_alignment
    events = [("allocator objects", b.allocator_objects, align), ("allocator objects", b.subgraph_allocations, align),
              ("TfLiteEvalTensor data", b.eval_tensor * len(graph.tensors), align),
              ("NodeAndRegistration struct", b.node_and_registration * len(graph.ops), align)]
    for op in graph.ops:
        if kernels[op.builtin].builtin_data[0]:
            events.append(("builtin data", *kernels[op.builtin].builtin_data))
    for op in graph.ops:  # Init: op data
        if kernels[op.builtin].op_data:
            events.append(("Persistent buffer data", kernels[op.builtin].op_data, ARENA_ALIGNMENT))
    requests = 0
    for op in graph.ops:  # Prepare: temporary tensors, per-channel output multipliers and shifts
        pointer = b.scratch_request * (requests + MAX_SCRATCH_PER_OP)
        channels = per_channel(op, graph)
        for item in PREPARE_TEMPS.get(op.builtin, (*range(len(op.inputs)), OUT)):
            if item == PER_CHANNEL:
                if channels is not None:
                    events += [("Persistent buffer data", 4 * channels, ARENA_ALIGNMENT)] * 2
                    channels = None
                continue
            if item != OUT and (item >= len(op.inputs) or not op.inputs[item]):
                continue  # an optional input the file leaves out (a fully connected layer without bias): no temporary
            pointer = _temp_tensor(pointer, graph.tensor(op.output if item == OUT else op.inputs[item]), b)
            events.append((TEMP, pointer, 0))
        if channels is not None:
            events += [("Persistent buffer data", 4 * channels, ARENA_ALIGNMENT)] * 2
        requests += len(scratch_buffers(op, graph))
    if requests:
        events.append(("scratch buffer handles", b.scratch_handle * requests, align))
    pointer = b.scratch_request * (requests + MAX_SCRATCH_PER_OP)  # CommitStaticMemoryPlan
    pointer = lifetimes.align_up(pointer, b.pointer) + b.pointer  # the subgraph offsets (a size_t each)
    pointer = lifetimes.align_up(pointer, align) + b.allocation_info * (len(graph.tensors) + requests)
    events.append((TEMP, pointer, 0))
    buffers = sum(not tensor.constant for tensor in graph.tensors) + requests
    events.append((PLANNER, pointer, buffers))
    for name in (graph.input, graph.output):  # the interpreter's input and output TfLiteTensors
        events += [("Persistent buffer data", b.pointer, ARENA_ALIGNMENT),
                   ("Persistent TfLiteTensor data", b.tflite_tensor, align)]
        tensor = graph.tensor(name)
        if tensor.quantization != "none":  # a float tensor has no quantization to copy
            events += [("Persistent TfLiteTensor quantization data", b.affine_quantization, align),
                       ("Persistent TfLiteTensor quantization data", 4 + 4 * tensor.channels, 4)]
    return events


def _allocations(graph: TM.Graph, build: str | Build = DEFAULT_BUILD) -> list[tuple[str, int, int]]:
    """The tail's allocations in TFLM's order: (category, bytes, alignment), with ``build``'s struct sizes."""
    return [event for event in _timeline(graph, build) if event[0] not in (TEMP, PLANNER)]


def tail_parts(graph: TM.Graph, end: int = 0, build: str | Build = DEFAULT_BUILD) -> dict[str, int]:
    """Bytes of the tail by category, alignment gaps included in the allocation that needed them (as the
    RecordingMicroAllocator counts), for an arena whose end address is ``end`` modulo 16 (0: aligned),
    with ``build``'s struct sizes."""
    parts = {part: 0 for part in TAIL_PARTS}
    top = ARENA_ALIGNMENT * 1024 + end  # any address with that remainder
    pointer = top
    for part, size, alignment in _allocations(graph, build):
        before = pointer
        pointer = (pointer - size) // alignment * alignment
        parts[part] += before - pointer
    return parts


def _need(events, head, end, larger=max):
    """The smallest arena that satisfies every check of ``events`` (:func:`_timeline`) and holds ``head``
    and the whole tail, for an arena whose end is ``end`` modulo 16; not yet rounded to that remainder.
    ``larger``: ``max``, or ``numpy.maximum`` for a sweep's arrays."""
    _larger = larger
    top = ARENA_ALIGNMENT * 1024 + end  # any address with that remainder
    pointer, need = top, 0
    for part, size, alignment in events:
        if part == TEMP:  # the head side ends at ``size``: the tail may not start below it
            need = _larger(need, size + top - pointer)
        elif part == PLANNER:  # (tail aligned down - head side aligned up) // per buffer >= buffers
            need = _larger(need, lifetimes.align_up(size, ARENA_ALIGNMENT) + PLANNER_PER_BUFFER * alignment
                           + top - pointer // ARENA_ALIGNMENT * ARENA_ALIGNMENT)
        else:
            pointer = (pointer - size) // alignment * alignment
    return _larger(need, head + top - pointer)


def minimum_arena(graph: TM.Graph, head, build: str | Build = DEFAULT_BUILD) -> int:
    """The smallest ``arena_size`` the interpreter accepts for an arena starting 16-byte aligned: the
    head from the start and the whole tail from the end, and at every point of :func:`_timeline` the
    head side of that moment below the tail of that moment (a kernel's temporary tensors in Prepare;
    the allocation records and the planner's arrays while the plan is made): with a small head these
    need more than the head. The tail's alignment gaps depend on the end's remainder modulo 16 (an
    end 8 bytes past alignment can save 8 bytes of gaps). An array for a sweep's graph."""
    events = _timeline(graph, build)
    arrays = hasattr(head, "shape") or any(hasattr(size, "shape") for _, size, _ in events)
    if arrays:  # the 16 remainders at once, on a leading axis
        import numpy as np  # only reached with numpy sizes

        ndim = max(np.ndim(value) for value in (head, *(size for _, size, _ in events)))
        ends = np.arange(ARENA_ALIGNMENT).reshape((ARENA_ALIGNMENT,) + (1,) * ndim)
        need = _need(events, head, ends, np.maximum)
        return np.min(need + (ends - need) % ARENA_ALIGNMENT, axis=0)
    sizes = []
    for end in range(ARENA_ALIGNMENT):
        need = _need(events, head, end)
        sizes.append(need + (end - need) % ARENA_ALIGNMENT)  # the first size >= need with that remainder
    return min(sizes)


@dataclass(frozen=True)
class TflmArena:
    """The arena for one network: head (activations), tail (persistent), total, and how they divide."""

    head: int
    tail: int
    tail_parts: dict = field(default_factory=dict)
    head_tensors: tuple = ()  # (name, bytes, first step, last step, offset)
    ops: int = 0
    tensors: int = 0
    minimum: int = 0  # the smallest arena_size the interpreter accepts (16-byte aligned start)
    build: str = DEFAULT_BUILD  # the tflite-micro build whose struct sizes the tail has (BUILDS)

    @property
    def total(self) -> int:
        return self.head + self.tail

    def as_dict(self) -> dict:
        return {"runtime": "tflm", "tflm_build": self.build, "tflm_version": get_build(self.build).version,
                "arena_bytes": self.total,
                "arena_activation_bytes": self.head, "arena_persistent_bytes": self.tail,
                "arena_persistent_parts": dict(self.tail_parts), "minimum_arena_bytes": self.minimum,
                "operators": self.ops, "tensors": self.tensors}


def arena(network, graph: TM.Graph | None = None, build: str | Build = DEFAULT_BUILD) -> TflmArena:
    """TFLM's arena for the int8 file of ``network`` (module docstring) in a ``build`` of tflite-micro
    (:data:`BUILDS`: ``host64``, the Python package's interpreter; ``arm32``, a Cortex-M build)."""
    from mnetcost.calculator.memory import layer_tensors

    graph = graph or TM.lower(network)
    return planned_arena(graph, planned_tensors(graph, layer_tensors(network.layers, INT8_BYTES)), build)


def planned_arena(graph: TM.Graph, planned: list, build: str | Build = DEFAULT_BUILD) -> TflmArena:
    """The arena of ``graph`` whose head holds the ``planned`` buffers (greedy planner) and whose tail is
    :func:`tail_parts`: the one computation for a spec's lowering and for a file's own graph."""
    offsets = lifetimes.greedy_offsets(planned, ARENA_ALIGNMENT)
    head = lifetimes.arena_size(planned, offsets, ARENA_ALIGNMENT)
    name = get_build(build).name
    parts = tail_parts(graph, build=name)
    placed = tuple((t.name, int(t.size), t.first, t.last, offset) for t, offset in zip(planned, offsets))
    return TflmArena(head=head, tail=sum(parts.values()), tail_parts=parts, head_tensors=placed,
                     ops=len(graph.ops), tensors=len(graph.tensors), minimum=minimum_arena(graph, head, name),
                     build=name)


def arena_bytes(network, build: str | Build = DEFAULT_BUILD) -> int:
    return arena(network, build=build).total


def sweep_memory(network_plan, layers, alphas, deltas, build: str | Build = DEFAULT_BUILD) -> dict:
    """TFLM's arena and the file's bytes for every configuration of a sweep at once (``layers`` from
    :func:`~mnetcost.calculator.resolver.resolve_arrays`): the same lowering, tensor list, greedy
    planner (in lockstep over the configurations), tail and file layout, on arrays. Keys:
    ``arena_bytes``, ``arena_activation_bytes``, ``arena_persistent_bytes``, ``minimum_arena_bytes`` (the
    smallest arena_size accepted), ``flash_bytes`` and ``runtime_code_bytes`` (one figure: the operators are
    those of every configuration)."""
    from mnetcost.calculator.memory import layer_tensors

    graph = TM.lower(TM.sweep_network(network_plan, layers, alphas, deltas))
    planned = planned_tensors(graph, layer_tensors(layers, INT8_BYTES))
    head = lifetimes.arena_size(planned, alignment=ARENA_ALIGNMENT)
    tail = sum(tail_parts(graph, build=build).values())
    return {"arena_bytes": head + tail, "arena_activation_bytes": head, "arena_persistent_bytes": tail,
            "minimum_arena_bytes": minimum_arena(graph, head, build), "flash_bytes": TM.file_bytes(graph),
            "runtime_code_bytes": runtime_code(TM.operator_codes(graph))["total"]}



# The code TensorFlow Lite Micro adds to Flash, measured for Cortex-M7 (tools/tflm_build, step codesize):
# tflite-micro's framework and reference kernels compiled with -Os -ffunction-sections -fdata-sections and
# linked with --gc-sections from a MicroInterpreter that registers the operators, allocates and invokes; the
# bytes of code and read-only data of the link (the C library's functions, which the application brings,
# are not counted; an optimized kernel library such as CMSIS-NN links its own kernels instead).
CODE_TARGET = "Cortex-M7, -Os, reference kernels, tflite-micro git 90b983c"
FRAMEWORK_CODE_BYTES = 12054  # interpreter, allocator, planner, model parsing: no operator
OPERATOR_CODE_BYTES = {  # what linking each operator's kernel (and its option parser) alone adds
    "ADD": 7426,
    "AVERAGE_POOL_2D": 3606,
    "CONCATENATION": 3694,
    "CONV_2D": 6900,
    "DEPTHWISE_CONV_2D": 6062,
    "DEQUANTIZE": 1178,
    "FULLY_CONNECTED": 5570,
    "GATHER": 1992,
    "HARD_SWISH": 1656,
    "LOGISTIC": 3448,
    "MAX_POOL_2D": 3542,
    "MEAN": 4532,
    "MUL": 6342,
    "PAD": 3530,
    "QUANTIZE": 2298,
    "RELU": 1718,
    "RELU6": 1192,
    "RESHAPE": 980,
    "SOFTMAX": 5530,
    "SVDF": 4120,
    "TRANSPOSE": 2054,
}
OPERATOR_SET_CODE_BYTES = {  # whole operator sets, linked: the increments above overlap (shared helpers)
    frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"}): 30834,  # base
    frozenset({"CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"}): 33514,  # mp3
    frozenset({"CONV_2D", "GATHER", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"}): 34962,  # fmp
    frozenset({"AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "SOFTMAX"}): 30936,  # person_detect
    frozenset({"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "PAD", "RESHAPE",
               "TRANSPOSE"}): 42320,  # a MobileNetV2 from PyTorch
}


def runtime_code(builtins) -> dict:
    """Bytes of Flash TensorFlow Lite Micro's code takes for a model using ``builtins`` on Cortex-M7: the
    linked size of that operator set where it was measured (``exact``), else the framework plus each
    operator's increment (an upper bound: kernels share helpers, which each increment counts; by 14-16 %
    on the sets measured). Keys ``framework``, ``kernels``, ``total``, ``exact``."""
    wanted = frozenset(builtins)
    unknown = sorted(wanted - set(OPERATOR_CODE_BYTES))
    if unknown:
        raise ConfigError(f"no code size measured for TFLM's {', '.join(unknown)} kernel")
    exact = wanted in OPERATOR_SET_CODE_BYTES
    total = (OPERATOR_SET_CODE_BYTES[wanted] if exact
             else FRAMEWORK_CODE_BYTES + sum(OPERATOR_CODE_BYTES[op] for op in wanted))
    return {"framework": FRAMEWORK_CODE_BYTES, "kernels": total - FRAMEWORK_CODE_BYTES, "total": total,
            "exact": exact}


RUNTIMES = ("simple", "tflm")
DEFAULT_RUNTIME = "simple"


def runtime_figures(network, build: str | Build = DEFAULT_BUILD) -> dict:
    """The JSON figures of runtime ``tflm`` for one network in a ``build`` of tflite-micro: the arena
    (total, head, tail by part, the smallest arena the interpreter accepts) and the .tflite bytes (by
    part)."""
    graph = TM.lower(network)
    found = arena(network, graph, build)
    layout = TM.file_layout(graph)
    return {"runtime": "tflm", "tflm_build": found.build, "tflm_version": get_build(found.build).version,
            "arena_bytes": found.total,
            "arena_activation_bytes": found.head, "arena_persistent_bytes": found.tail,
            "minimum_arena_bytes": found.minimum, "arena_persistent_parts": dict(found.tail_parts),
            "flash_bytes": layout.bytes, "flash_parts": dict(layout.parts),
            "runtime_code_bytes": runtime_code(TM.operator_codes(graph))["total"], "runtime_code_target": CODE_TARGET,
            "tflite_operators": len(graph.ops), "tflite_tensors": len(graph.tensors)}


def flash_parts(report: dict, reserve: int = 0) -> dict[str, int]:
    """What a report's runtime needs in Flash, by part: for TFLM the .tflite file, TFLM's code for the
    file's operators (:func:`runtime_code`) and the application's ``reserve``; for the simple model
    the weight bytes and the reserve."""
    if report.get("runtime") == "tflm":
        return {"model": report["flash_bytes"], "runtime code": report["runtime_code_bytes"], "reserve": reserve}
    return {"model": report["weight_bytes"], "reserve": reserve}


def needs(report: dict, reserve: int = 0) -> tuple[int, int]:
    """(RAM, Flash) a report's runtime needs: the smallest arena TFLM accepts and the .tflite bytes + TFLM's
    code, or the simple model's peak activation bytes and weight bytes; Flash with the application's
    ``reserve``."""
    ram = report["minimum_arena_bytes"] if report.get("runtime") == "tflm" else report["peak_activation_bytes"]
    return ram, sum(flash_parts(report, reserve).values())


# --- a file's own graph (mnetcost.calculator.importers.tflite) ------------------------------------
# The builtins tflite-micro's Python interpreter registers (python/tflite_micro/python_ops_resolver.cc at
# git 8f6596d; its custom signal ops left out): what "will it run" checks a file's operators against.
TFLM_BUILTINS = frozenset((
    "ABS", "ADD", "ADD_N", "ARG_MAX", "ARG_MIN", "ASSIGN_VARIABLE", "AVERAGE_POOL_2D", "BATCH_MATMUL",
    "BATCH_TO_SPACE_ND", "BROADCAST_ARGS", "BROADCAST_TO", "CALL_ONCE", "CAST", "CEIL", "CONCATENATION", "CONV_2D",
    "COS", "CUMSUM", "DEPTH_TO_SPACE", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "DYNAMIC_UPDATE_SLICE", "ELU",
    "EMBEDDING_LOOKUP", "EQUAL", "EXP", "EXPAND_DIMS", "FILL", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "FULLY_CONNECTED",
    "GATHER", "GATHER_ND", "GREATER", "GREATER_EQUAL", "HARD_SWISH", "IF", "L2_NORMALIZATION", "L2_POOL_2D",
    "LEAKY_RELU", "LESS", "LESS_EQUAL", "LOG", "LOG_SOFTMAX", "LOGICAL_AND", "LOGICAL_NOT", "LOGICAL_OR", "LOGISTIC",
    "MAX_POOL_2D", "MAXIMUM", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "NOT_EQUAL", "PACK", "PAD", "PADV2",
    "PRELU", "QUANTIZE", "READ_VARIABLE", "REDUCE_ALL", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "REVERSE_V2", "ROUND", "RSQRT", "SELECT_V2", "SHAPE", "SIN",
    "SLICE", "SOFTMAX", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE",
    "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SVDF", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNPACK", "VAR_HANDLE", "WHILE", "ZEROS_LIKE",
))


def graph_tensors(graph: TM.Graph) -> list:
    """The head's buffers of a graph read from a file, in TFLM's order, with the lifetimes TFLM's
    ``AllocationInfoBuilder`` gives them from the graph itself: the input from step 0, operator ``i`` at step
    ``i + 1`` creating its output and last using its inputs, the output kept to the last step; every tensor
    without data in the file and of non-zero size, then each operator's scratch buffers at its step."""
    first: dict[str, int] = {graph.input: 0}
    last: dict[str, int] = {graph.input: 0}
    for number, op in enumerate(graph.ops):
        step = number + 1
        first.setdefault(op.output, step)
        last[op.output] = max(last.get(op.output, step), step)
        for name in op.inputs:
            if name in first:
                last[name] = max(last.get(name, step), step)
    steps = len(graph.ops)
    if graph.output in first:
        last[graph.output] = max(last[graph.output], steps)
    planned = [lifetimes.Tensor(t.name, t.nbytes, first[t.name], last[t.name]) for t in graph.tensors
               if not t.constant and t.name in first and t.nbytes]
    for number, op in enumerate(graph.ops):
        for k, size in enumerate(scratch_buffers(op, graph)):
            planned.append(lifetimes.Tensor(f"{op.output}/scratch{k}", size, number + 1, number + 1))
    return planned


def graph_arena(graph: TM.Graph, build: str | Build = DEFAULT_BUILD) -> TflmArena:
    """TFLM's arena for a graph read from a file (:func:`graph_tensors`, the greedy planner, the tail) in a
    ``build`` of tflite-micro."""
    return planned_arena(graph, graph_tensors(graph), build)


def file_figures(graph: TM.Graph, file_bytes: int, file_parts: dict, build: str = DEFAULT_BUILD) -> dict:
    """The JSON figures of runtime ``tflm`` for a file read as it is: the arena TFLM's ``build`` needs for it,
    the file's own bytes (by part) as Flash, and TFLM's code for its operators where it was measured
    (``runtime_code_bytes`` None otherwise)."""
    found = graph_arena(graph, get_build(build).name)
    builtins = TM.operator_codes(graph)
    code = runtime_code(builtins)["total"] if set(builtins) <= set(OPERATOR_CODE_BYTES) else None
    return {"runtime": "tflm", "tflm_build": found.build, "tflm_version": get_build(found.build).version,
            "arena_bytes": found.total,
            "arena_activation_bytes": found.head, "arena_persistent_bytes": found.tail,
            "minimum_arena_bytes": found.minimum, "arena_persistent_parts": dict(found.tail_parts),
            "flash_bytes": file_bytes, "flash_parts": dict(file_parts),
            "runtime_code_bytes": code, "runtime_code_target": CODE_TARGET,
            "tflite_operators": len(graph.ops), "tflite_tensors": len(graph.tensors)}
