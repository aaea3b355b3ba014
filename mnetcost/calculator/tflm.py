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
The tensors come from the calculator's one tensor list (:func:`mnetcost.calculator.memory.layer_tensors`,
one tensor per layer output), each layer's steps spread over the operators it lowers to
(:func:`mnetcost.calculator.tflite_model.lower`), plus the tensors between the operators of one layer
(fractional max pooling's gathered rows and columns, a flatten before the classifier). Scratch
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
}
# A 32-bit build for Cortex-M (ARM EABI: 4-byte pointers; int64 and double 8-byte aligned), from the
# struct sizes of tflite-micro compiled for -mcpu=cortex_m7 and the arena of a 32-bit build
# (tools/tflm_build), without compression support (a microcontroller build's default). The op data that
# holds pointers shrinks (OpDataConv 56 B, OpDataFullyConnected 48 B); so do the options the host64 table
# takes from the Python package, which is built with compression support (TfLiteFullyConnectedParams
# 16 B, 4-byte aligned, as on x86-64 without it).
KERNELS_ARM32 = {
    "CONV_2D": Kernel((28, 4), 56, True),
    "DEPTHWISE_CONV_2D": Kernel((28, 4), 56, True),
    "MAX_POOL_2D": Kernel((40, 4), 32, False),
    "MEAN": Kernel((1, 1), 44, False),
    "FULLY_CONNECTED": Kernel((16, 4), 48, True),
    "GATHER": Kernel((8, 4), 20, False),
    "RESHAPE": Kernel((36, 4), 0, False),
}
TFLM_COMMIT_ARM32 = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
BUILDS = {
    "host64": Build("host64", TFLM_VERSION, pointer=8, struct_alignment=8, allocator_objects=472,
                    subgraph_allocations=16, eval_tensor=24, node_and_registration=64, tflite_tensor=64,
                    affine_quantization=24, scratch_handle=8, kernels=KERNELS),
    "arm32": Build("arm32", f"tflite-micro git {TFLM_COMMIT_ARM32[:7]}, 32-bit Cortex-M build (ARM EABI), "
                            "RecordingMicroAllocator", pointer=4, struct_alignment=4, allocator_objects=228,
                   subgraph_allocations=8, eval_tensor=12, node_and_registration=32, tflite_tensor=40,
                   affine_quantization=12, scratch_handle=4, kernels=KERNELS_ARM32),
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
    """Bytes of each scratch buffer ``op``'s kernel requests in Prepare."""
    if op.builtin == "MEAN":
        output = graph.tensor(op.output)
        return (4 * output.elements, 4 * len(graph.tensor(op.inputs[0]).shape), 4 * graph.tensor(op.inputs[1]).elements)
    return ()


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
    :class:`~mnetcost.calculator.lifetimes.Tensor` with TFLM's steps. ``layer_tensors``: the calculator's
    layer-level tensors (:func:`~mnetcost.calculator.memory.layer_tensors` at int8); a tensor not
    written by a layer is a graph input, alive from step 0."""
    starts, ends = operator_steps(graph)
    layers = [name for name, _ in graph.layer_ops]
    position = {name: number for number, name in enumerate(layers)}
    lifetime = {}
    for tensor in layer_tensors:
        first = 0 if tensor.name not in position else ends[tensor.first]
        read = starts[tensor.last] if tensor.name not in position or tensor.last > tensor.first else first
        lifetime[tensor.name] = (tensor.size, first, read)
    op_step = {}
    for number, op in enumerate(graph.ops):
        op_step[op.output] = number + 1
    planned = []
    for tensor in graph.tensors:
        if tensor.constant:
            continue
        if tensor.name in lifetime:
            size, first, last = lifetime[tensor.name]
        else:  # between two operators of one layer: written by one, read by the next
            size, first = tensor.nbytes, op_step[tensor.name]
            last = first + 1
        planned.append(lifetimes.Tensor(tensor.name, size, first, last))
    for number, op in enumerate(graph.ops):
        for k, size in enumerate(scratch_buffers(op, graph)):
            planned.append(lifetimes.Tensor(f"{op.output}/scratch{k}", size, number + 1, number + 1))
    return planned


def _allocations(graph: TM.Graph, build: str | Build = DEFAULT_BUILD) -> list[tuple[str, int, int]]:
    """The tail's allocations in TFLM's order: (category, bytes, alignment), with ``build``'s struct sizes."""
    b = get_build(build)
    kernels = b.kernels
    align = b.struct_alignment
    allocs = [("allocator objects", b.allocator_objects, align), ("allocator objects", b.subgraph_allocations, align),
              ("TfLiteEvalTensor data", b.eval_tensor * len(graph.tensors), align),
              ("NodeAndRegistration struct", b.node_and_registration * len(graph.ops), align)]
    for op in graph.ops:
        allocs.append(("builtin data", *kernels[op.builtin].builtin_data))
    for op in graph.ops:  # Init: op data
        if kernels[op.builtin].op_data:
            allocs.append(("Persistent buffer data", kernels[op.builtin].op_data, ARENA_ALIGNMENT))
    for op in graph.ops:  # Prepare: per-channel output multipliers and shifts
        if kernels[op.builtin].per_channel:
            channels = graph.tensor(op.output).shape[-1]
            allocs += [("Persistent buffer data", 4 * channels, ARENA_ALIGNMENT)] * 2
    handles = sum(len(scratch_buffers(op, graph)) for op in graph.ops)
    if handles:
        allocs.append(("scratch buffer handles", b.scratch_handle * handles, align))
    for name in (graph.input, graph.output):  # the interpreter's input and output TfLiteTensors
        allocs += [("Persistent buffer data", b.pointer, ARENA_ALIGNMENT),
                   ("Persistent TfLiteTensor data", b.tflite_tensor, align),
                   ("Persistent TfLiteTensor quantization data", b.affine_quantization, align),
                   ("Persistent TfLiteTensor quantization data", 4 + 4 * 1, 4)]
    return allocs


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


def minimum_arena(graph: TM.Graph, head: int, build: str | Build = DEFAULT_BUILD) -> int:
    """The smallest ``arena_size`` the interpreter accepts for an arena starting 16-byte aligned: the
    head from the start, the tail from the end, whose alignment gaps depend on the end's remainder
    modulo 16 (an end 8 bytes past alignment can save 8 bytes of gaps)."""
    best = None
    for end in range(ARENA_ALIGNMENT):
        need = head + sum(tail_parts(graph, end, build).values())
        size = need + (end - need) % ARENA_ALIGNMENT  # the first size >= need whose end has that remainder
        best = size if best is None else min(best, size)
    return best


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
    planned = planned_tensors(graph, layer_tensors(network.layers, INT8_BYTES))
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
    ``arena_bytes``, ``arena_activation_bytes``, ``arena_persistent_bytes``, ``flash_bytes`` and
    ``runtime_code_bytes`` (one figure: the operators are those of every configuration)."""
    from mnetcost.calculator.memory import layer_tensors

    graph = TM.lower(TM.sweep_network(network_plan, layers, alphas, deltas))
    planned = planned_tensors(graph, layer_tensors(layers, INT8_BYTES))
    head = lifetimes.arena_size(planned, alignment=ARENA_ALIGNMENT)
    tail = sum(tail_parts(graph, build=build).values())
    return {"arena_bytes": head + tail, "arena_activation_bytes": head, "arena_persistent_bytes": tail,
            "flash_bytes": TM.file_bytes(graph), "runtime_code_bytes": runtime_code(TM.operator_codes(graph))["total"]}


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
    """(RAM, Flash) a report's runtime needs: TFLM's arena and the .tflite bytes + TFLM's code, or the
    simple model's peak activation bytes and weight bytes; Flash with the application's ``reserve``."""
    ram = report["arena_bytes"] if report.get("runtime") == "tflm" else report["peak_activation_bytes"]
    return ram, sum(flash_parts(report, reserve).values())
