"""The arena TensorFlow Lite Micro needs to run the exported int8 file, predicted from the resolved layers.

The model follows **tflite-micro 0.dev20261023182759 (git 8f6596d)**, the ``tflite-micro`` Python package:
its ``MicroInterpreter`` with the ``RecordingMicroAllocator`` and the ``GreedyMemoryPlanner``, reference
kernels, on a 64-bit host (x86-64). It is checked to the byte against that interpreter by ``mnetcost
crosscheck --runtime tflm``. The arena is one block, filled from both ends:

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
   builtin-data allocator): :data:`ALLOCATOR_OBJECTS` bytes, and the subgraph's allocation record;
2. one ``TfLiteEvalTensor`` (24 B) per tensor of the file, constants included; one node with its
   registration (64 B) per operator;
3. each operator's parsed builtin options (``TfLiteConvParams`` ... :data:`KERNELS`);
4. each kernel's op data (``OpDataConv`` 80 B ...), 16-byte aligned ("Persistent buffer data");
5. per output channel of every conv, depthwise conv and fully connected operator, an int32 output
   multiplier and an int32 shift, each array 16-byte aligned ("Persistent buffer data");
6. a handle (8 B) per scratch buffer;
7. for the graph's input and output: a pointer array, a ``TfLiteTensor`` (64 B) and its quantization
   (24 B + a zero-point array).

**Loading** (:func:`minimum_arena`): besides head and tail, the interpreter takes temporary room from the
free middle while it loads the model, so the smallest ``arena_size`` it accepts can exceed head + tail
when the head is small. While each kernel prepares (the head then holds 16 B per scratch-buffer request,
12 slots ahead), it copies its tensors into temporary ``TfLiteTensor`` structs (64 B, with a 24 B
quantization struct and a zero-point array of 4 + 4 B per scale; which tensors, in which order, per
builtin: :data:`PREPARE_TEMPS`); the temporaries must stay below the tail of that moment. While it makes
the memory plan, it takes 8 B + 32 B per tensor and scratch buffer (``AllocationInfo``), and the greedy
planner needs 40 B per planned buffer of what is left between them and the tail (both 16-byte aligned).

Sizes are those of this 64-bit build, measured with the interpreter's own allocation records; a
32-bit microcontroller build has smaller structs (4-byte pointers) and no recording counters, so its
tail is somewhat smaller, while the per-channel data (the bulk) and the head are the same.

**A file made elsewhere** (:mod:`mnetcost.calculator.importers.tflite`, float32 or int8): the same arena
(:func:`planned_arena`) over the file's own graph, its head's lifetimes taken from the graph itself as TFLM's
``AllocationInfoBuilder`` takes them (:func:`graph_tensors`); per-channel data only where the kernel keeps it
(every conv and depthwise conv, a fully connected operator with per-channel weights), the input's and output's
quantization only when they are quantized. :data:`TFLM_BUILTINS` is what "will it run" checks operators
against; :data:`TFLM_BUILDS` names the builds whose figures this module gives (``host64``).

Standard library only (numpy arrays in a sweep are only added and compared).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from mnetcost.calculator import lifetimes
from mnetcost.calculator import tflite_model as TM

TFLM_VERSION = "tflite-micro 0.dev20261023182759 (git 8f6596d), 64-bit host build, RecordingMicroAllocator"
ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment()
ALLOCATOR_OBJECTS = 472  # allocator objects placed in the tail when the interpreter is made (measured)
SUBGRAPH_ALLOCATIONS = 16  # SubgraphAllocations (two pointers) per subgraph
EVAL_TENSOR = 24  # sizeof(TfLiteEvalTensor)
NODE_AND_REGISTRATION = 64  # sizeof(NodeAndRegistration)
TFLITE_TENSOR = 64  # sizeof(TfLiteTensor), for the graph's input and output
AFFINE_QUANTIZATION = 24  # sizeof(TfLiteAffineQuantization)
SCRATCH_HANDLE = 8  # sizeof(ScratchBufferHandle)
POINTER = 8
INT8_BYTES = 1  # bytes per activation element


class Kernel(NamedTuple):
    """What one builtin's kernel keeps in the tail: its parsed options (bytes, alignment), its op data
    (bytes; 16-byte aligned), and whether it stores a multiplier and a shift per output channel."""

    builtin_data: tuple[int, int]
    op_data: int
    per_channel: bool


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
    "HARD_SWISH": Kernel((0, 1), 20, False),  # no options; HardSwishParams
}
# Builtins met in files made elsewhere (mnetcost.calculator.importers.tflite), measured the same way; kernels
# without parsed options have builtin data (0, 0), kernels without op data 0.
KERNELS.update({
    "AVERAGE_POOL_2D": Kernel((40, 4), 32, False),  # TfLitePoolParams, OpDataPooling
    "SOFTMAX": Kernel((4, 4), 80, False),  # TfLiteSoftmaxParams, SoftmaxParams
    "ADD": Kernel((8, 4), 60, False),  # TfLiteAddParams, OpDataAdd
    "SUB": Kernel((8, 4), 52, False),  # TfLiteSubParams, OpDataSub
    "MUL": Kernel((4, 4), 36, False),  # TfLiteMulParams, OpDataMul
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
    "HARD_SWISH": Kernel((0, 0), 20, False),  # HardSwishParams
    "SQUEEZE": Kernel((36, 4), 0, False),  # TfLiteSqueezeParams (read in the source, not measured)
    "EXPAND_DIMS": Kernel((0, 0), 0, False),  # (read in the source, not measured)
    # the dynamic flatten Keras 3 models convert to (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE)
    "SHAPE": Kernel((4, 4), 0, False),  # TfLiteShapeParams
    "STRIDED_SLICE": Kernel((24, 4), 84, False),  # TfLiteStridedSliceParams, StridedSliceParams
    "PACK": Kernel((8, 4), 0, False),  # TfLitePackParams
    "TRANSPOSE": Kernel((0, 0), 0, False),  # the NCHW -> NHWC of files converted from PyTorch
})
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
TEMP_TENSOR = (64, 8)  # a TfLiteTensor (sizeof, alignof), allocated as a temporary in Prepare
TEMP_QUANTIZATION = (24, 8)  # its TfLiteAffineQuantization, for a quantized tensor
# ... and its zero-point TfLiteIntArray: 4 + 4 per scale (alignment 4)
SCRATCH_REQUEST = 16  # sizeof(internal::ScratchBufferRequest), kept at the head while kernels prepare
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp: request slots reserved ahead of each operator
ALLOCATION_INFO = 32  # sizeof(AllocationInfo), one per tensor and scratch buffer while the plan is made
PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(), per planned buffer
TEMP, PLANNER = "temp", "planner"  # the timeline's two checks (not tail allocations)


def _temp_tensor(pointer: int, tensor: TM.TensorSpec) -> int:
    """The head-side pointer after one temporary TfLiteTensor of ``tensor`` (with its quantization)."""
    for size, alignment in (TEMP_TENSOR, TEMP_QUANTIZATION) if tensor.quantization != "none" else (TEMP_TENSOR,):
        pointer = lifetimes.align_up(pointer, alignment) + size
    if tensor.quantization != "none":
        scales = tensor.channels if tensor.quantization == "channel" else 1
        pointer = lifetimes.align_up(pointer, 4) + 4 + 4 * scales
    return pointer


def _timeline(graph: TM.Graph) -> list[tuple]:
    """What the interpreter allocates, in its order, while it loads the model: the tail's allocations
    ``(category, bytes, alignment)``, and the points where the head side must still fit below the tail:
    ``(TEMP, head-side end, 0)`` after each temporary TfLiteTensor a kernel takes in Prepare (the head
    then holds the scratch-buffer requests), and ``(PLANNER, head-side end, buffers)`` when the memory
    plan is made (the allocation records taken, the planner needs :data:`PLANNER_PER_BUFFER` bytes per
    buffer of what is left below the tail, both 16-byte aligned). The arena starts 16-byte aligned at 0."""
    events = [("allocator objects", ALLOCATOR_OBJECTS, 8), ("allocator objects", SUBGRAPH_ALLOCATIONS, 8),
              ("TfLiteEvalTensor data", EVAL_TENSOR * len(graph.tensors), 8),
              ("NodeAndRegistration struct", NODE_AND_REGISTRATION * len(graph.ops), 8)]
    for op in graph.ops:
        if KERNELS[op.builtin].builtin_data[0]:
            events.append(("builtin data", *KERNELS[op.builtin].builtin_data))
    for op in graph.ops:  # Init: op data
        if KERNELS[op.builtin].op_data:
            events.append(("Persistent buffer data", KERNELS[op.builtin].op_data, ARENA_ALIGNMENT))
    requests = 0
    for op in graph.ops:  # Prepare: temporary tensors, per-channel output multipliers and shifts
        pointer = SCRATCH_REQUEST * (requests + MAX_SCRATCH_PER_OP)
        channels = per_channel(op, graph)
        for item in PREPARE_TEMPS.get(op.builtin, (*range(len(op.inputs)), OUT)):
            if item == PER_CHANNEL:
                if channels is not None:
                    events += [("Persistent buffer data", 4 * channels, ARENA_ALIGNMENT)] * 2
                    channels = None
                continue
            if item != OUT and (item >= len(op.inputs) or not op.inputs[item]):
                continue  # an optional input the file leaves out (a fully connected layer without bias): no temporary
            pointer = _temp_tensor(pointer, graph.tensor(op.output if item == OUT else op.inputs[item]))
            events.append((TEMP, pointer, 0))
        if channels is not None:
            events += [("Persistent buffer data", 4 * channels, ARENA_ALIGNMENT)] * 2
        requests += len(scratch_buffers(op, graph))
    if requests:
        events.append(("scratch buffer handles", SCRATCH_HANDLE * requests, 8))
    pointer = SCRATCH_REQUEST * (requests + MAX_SCRATCH_PER_OP)  # CommitStaticMemoryPlan
    pointer = lifetimes.align_up(pointer, 8) + 8  # the subgraph offsets
    pointer = lifetimes.align_up(pointer, 8) + ALLOCATION_INFO * (len(graph.tensors) + requests)
    events.append((TEMP, pointer, 0))
    buffers = sum(not tensor.constant for tensor in graph.tensors) + requests
    events.append((PLANNER, pointer, buffers))
    for name in (graph.input, graph.output):  # the interpreter's input and output TfLiteTensors
        events += [("Persistent buffer data", POINTER, ARENA_ALIGNMENT),
                   ("Persistent TfLiteTensor data", TFLITE_TENSOR, 8)]
        tensor = graph.tensor(name)
        if tensor.quantization != "none":  # a float tensor has no quantization to copy
            events += [("Persistent TfLiteTensor quantization data", AFFINE_QUANTIZATION, 8),
                       ("Persistent TfLiteTensor quantization data", 4 + 4 * tensor.channels, 4)]
    return events


def _allocations(graph: TM.Graph) -> list[tuple[str, int, int]]:
    """The tail's allocations in TFLM's order: (category, bytes, alignment)."""
    return [event for event in _timeline(graph) if event[0] not in (TEMP, PLANNER)]


def tail_parts(graph: TM.Graph, end: int = 0) -> dict[str, int]:
    """Bytes of the tail by category, alignment gaps included in the allocation that needed them (as the
    RecordingMicroAllocator counts), for an arena whose end address is ``end`` modulo 16 (0: aligned)."""
    parts = {part: 0 for part in TAIL_PARTS}
    top = ARENA_ALIGNMENT * 1024 + end  # any address with that remainder
    pointer = top
    for part, size, alignment in _allocations(graph):
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


def minimum_arena(graph: TM.Graph, head) -> int:
    """The smallest ``arena_size`` the interpreter accepts for an arena starting 16-byte aligned: the
    head from the start and the whole tail from the end, and at every point of :func:`_timeline` the
    head side of that moment below the tail of that moment (a kernel's temporary tensors in Prepare;
    the allocation records and the planner's arrays while the plan is made): with a small head these
    need more than the head. The tail's alignment gaps depend on the end's remainder modulo 16 (an
    end 8 bytes past alignment can save 8 bytes of gaps). An array for a sweep's graph."""
    events = _timeline(graph)
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

    @property
    def total(self) -> int:
        return self.head + self.tail

    def as_dict(self) -> dict:
        return {"runtime": "tflm", "tflm_version": TFLM_VERSION, "arena_bytes": self.total,
                "arena_activation_bytes": self.head, "arena_persistent_bytes": self.tail,
                "arena_persistent_parts": dict(self.tail_parts), "minimum_arena_bytes": self.minimum,
                "operators": self.ops, "tensors": self.tensors}


def arena(network, graph: TM.Graph | None = None) -> TflmArena:
    """TFLM's arena for the int8 file of ``network`` (module docstring)."""
    from mnetcost.calculator.memory import layer_tensors

    graph = graph or TM.lower(network)
    return planned_arena(graph, planned_tensors(graph, layer_tensors(network.layers, INT8_BYTES)))


def planned_arena(graph: TM.Graph, planned: list) -> TflmArena:
    """The arena of ``graph`` whose head holds the ``planned`` buffers (greedy planner) and whose tail is
    :func:`tail_parts`: the one computation for a spec's lowering and for a file's own graph."""
    offsets = lifetimes.greedy_offsets(planned, ARENA_ALIGNMENT)
    head = lifetimes.arena_size(planned, offsets, ARENA_ALIGNMENT)
    parts = tail_parts(graph)
    placed = tuple((t.name, int(t.size), t.first, t.last, offset) for t, offset in zip(planned, offsets))
    return TflmArena(head=head, tail=sum(parts.values()), tail_parts=parts, head_tensors=placed,
                     ops=len(graph.ops), tensors=len(graph.tensors), minimum=minimum_arena(graph, head))


def arena_bytes(network) -> int:
    return arena(network).total


def sweep_memory(network_plan, layers, alphas, deltas) -> dict:
    """TFLM's arena and the file's bytes for every configuration of a sweep at once (``layers`` from
    :func:`~mnetcost.calculator.resolver.resolve_arrays`): the same lowering, tensor list, greedy
    planner (in lockstep over the configurations), tail and file layout, on arrays. Keys:
    ``arena_bytes``, ``arena_activation_bytes``, ``arena_persistent_bytes``, ``minimum_arena_bytes`` (the
    smallest arena_size accepted), ``flash_bytes``."""
    from mnetcost.calculator.memory import layer_tensors

    graph = TM.lower(TM.sweep_network(network_plan, layers, alphas, deltas))
    planned = planned_tensors(graph, layer_tensors(layers, INT8_BYTES))
    head = lifetimes.arena_size(planned, alignment=ARENA_ALIGNMENT)
    tail = sum(tail_parts(graph).values())
    return {"arena_bytes": head + tail, "arena_activation_bytes": head, "arena_persistent_bytes": tail,
            "minimum_arena_bytes": minimum_arena(graph, head), "flash_bytes": TM.file_bytes(graph)}


RUNTIMES = ("simple", "tflm")
DEFAULT_RUNTIME = "simple"


def runtime_figures(network) -> dict:
    """The JSON figures of runtime ``tflm`` for one network: the arena (total, head, tail by part, the
    smallest arena the interpreter accepts) and the .tflite bytes (by part)."""
    graph = TM.lower(network)
    found = arena(network, graph)
    layout = TM.file_layout(graph)
    return {"runtime": "tflm", "tflm_version": TFLM_VERSION, "arena_bytes": found.total,
            "arena_activation_bytes": found.head, "arena_persistent_bytes": found.tail,
            "minimum_arena_bytes": found.minimum, "arena_persistent_parts": dict(found.tail_parts),
            "flash_bytes": layout.bytes, "flash_parts": dict(layout.parts),
            "tflite_operators": len(graph.ops), "tflite_tensors": len(graph.tensors)}


def needs(report: dict) -> tuple[int, int]:
    """(RAM, Flash) a report's runtime needs: the smallest arena TFLM accepts and the .tflite bytes, or
    the simple model's peak activation bytes and weight bytes."""
    if report.get("runtime") == "tflm":
        return report["minimum_arena_bytes"], report["flash_bytes"]
    return report["peak_activation_bytes"], report["weight_bytes"]


# --- a file's own graph (mnetcost.calculator.importers.tflite) ------------------------------------
# The builds whose figures this module gives: "host64" is the tflite-micro Python package's interpreter
# (x86-64, 8-byte pointers, RecordingMicroAllocator), the build every figure above was measured on.
TFLM_BUILDS = {"host64": TFLM_VERSION}
DEFAULT_BUILD = "host64"
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


def graph_arena(graph: TM.Graph) -> TflmArena:
    """TFLM's arena for a graph read from a file (:func:`graph_tensors`, the greedy planner, the tail)."""
    return planned_arena(graph, graph_tensors(graph))


def file_figures(graph: TM.Graph, file_bytes: int, file_parts: dict, build: str = DEFAULT_BUILD) -> dict:
    """The JSON figures of runtime ``tflm`` for a file read as it is: the arena TFLM's ``build`` needs for it
    and the file's own bytes (by part) as Flash."""
    if build not in TFLM_BUILDS:
        from mnetcost.errors import ConfigError

        raise ConfigError(f"TFLM build must be one of {', '.join(TFLM_BUILDS)}, got {build!r}")
    found = graph_arena(graph)
    return {"runtime": "tflm", "tflm_build": build, "tflm_version": TFLM_BUILDS[build], "arena_bytes": found.total,
            "arena_activation_bytes": found.head, "arena_persistent_bytes": found.tail,
            "minimum_arena_bytes": found.minimum, "arena_persistent_parts": dict(found.tail_parts),
            "flash_bytes": file_bytes, "flash_parts": dict(file_parts),
            "tflite_operators": len(graph.ops), "tflite_tensors": len(graph.tensors)}
