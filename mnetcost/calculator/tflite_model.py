"""The int8 ``.tflite`` file ``mnetcost export --format tflite`` writes, predicted from the resolved layers.

**Lowering.** Each resolved layer becomes TensorFlow Lite builtin operators (:func:`lower`), exactly as the
export builds them (the Keras layers of :mod:`mnetcost.deploy.tflite`, converted by the TensorFlow Lite
converter, full-integer int8, per-channel weights):

* ``conv``/``pw`` -> ``CONV_2D`` (BatchNorm folded into an int32 bias, the layer's relu or relu6
  fused), ``dw`` -> ``DEPTHWISE_CONV_2D`` (depth multiplier δ), TF 'same' padding; a 1x1 conv on a
  pooled vector (MobileNetV3's head, :func:`flat_layers`) -> ``FULLY_CONNECTED``;
* activations a conv cannot fuse, as the converter lowers Keras's: hard-swish -> the conv, then
  ``HARD_SWISH``; hard-sigmoid ``relu6(x + 3) / 6`` -> the conv with its ``+ 3`` folded into the bias and
  relu6 fused, then ``MUL`` by a constant int8 scalar (1/6);
* ``maxpool`` -> ``MAX_POOL_2D`` ('same');
* ``fmp`` (its fixed evaluation draw) -> ``GATHER`` of the rows (axis 1) and of the columns (axis 2) each
  window reads, ``K`` candidates per window (``K = ceil(in / out)``: windows of ``k`` or ``k + 1``
  positions, the shorter ones padded by repeating a position), then ``MAX_POOL_2D`` ``K x K``, stride
  ``K``, 'valid': the window maxima. All three are builtins TensorFlow Lite Micro runs;
* ``avgpool`` -> ``MEAN`` over axes (1, 2) (a constant int32 axes tensor): 2-D ``(1, C)`` before a
  classifier, dimensions kept ``(1, 1, 1, C)`` in a squeeze-excite (none at all when the map is 1x1: the
  converter drops that mean);
* ``fc`` -> ``FULLY_CONNECTED`` (per-channel int8 weights, int32 bias), after a ``RESHAPE`` when its
  input is not already flat (no global pooling before it);
* ``add`` (a residual) -> ``ADD`` of the projection and the block's input; on a 1x1 map the converter
  makes it a bias add: a ``RESHAPE`` of the block's input to ``(C,)`` right after the operator that
  writes it, then ``ADD``;
* ``scale`` (a squeeze-excite's gate) -> ``MUL`` of the feature map by the ``(1, 1, 1, C)`` gate.

These are what the TensorFlow Lite converter emits for the Keras layers the export builds (read from its
files). A layer without a lowering is refused with the reason and a pointer to ``--runtime simple``.

Every weight and bias tensor is quantized per output channel (a float32 scale and an int64 zero point
each), every activation per tensor (one of each); the int32 index, axes and shape tensors carry an
empty quantization table, as the converter writes them.

**The file.** The export renames the converter's tensors after the layers (``conv_pw_3``,
``conv_pw_3/weights``, ``conv_pw_3/bias``, ``fmp_1/rows`` ...), orders them (input, then each
operator's constant inputs and its output, in operator order; each tensor with its own buffer, the
converter's convention), drops the converter's ``CONVERSION_METADATA`` record (its ``min_runtime_version``
stays) and writes the model with the FlatBuffers Python builder (the ``tflite_micro`` schema's object
API). :func:`file_layout` lays out the same tables, vectors and strings with the builder's own rules
(back-to-front, alignment padding, vtables shared when equal) and so predicts the file's size to the
byte, and says what the bytes are: weights and biases, quantization scales and zero points, tensor
names, and the FlatBuffers structure (tables, vtables, offsets, padding).

Standard library only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from mnetcost.calculator.resolver import IMAGE
from mnetcost.errors import ConfigError

CONVERTER = "tensorflow 2.21.0 TFLiteConverter (full-integer int8, per-channel weights)"
INT8, INT32 = 9, 2  # TensorType codes
TYPE_BYTES = {INT8: 1, INT32: 4}
# the other TensorType codes a file read from elsewhere holds (mnetcost.calculator.importers.tflite):
# float32, float16, uint8, int64, bool, int16, float64, uint32, uint16
TYPE_BYTES.update({0: 4, 1: 2, 3: 1, 4: 8, 6: 1, 7: 2, 10: 8, 15: 4, 16: 2})
# BuiltinOperator codes and the operator versions the converter writes for these int8 operators.
BUILTINS = {"CONV_2D": (3, 3), "DEPTHWISE_CONV_2D": (4, 3), "MAX_POOL_2D": (17, 2), "MEAN": (40, 2),
            "FULLY_CONNECTED": (9, 4), "GATHER": (36, 2), "RESHAPE": (22, 1), "ADD": (0, 2), "MUL": (18, 2),
            "HARD_SWISH": (117, 1)}
SAME, VALID = 0, 1  # Padding
FUSED_ACTIVATIONS = {"": 0, "relu": 1, "relu6": 3}  # what a TFLite conv can fuse
# Activations a conv cannot fuse, as the converter lowers Keras's: the conv's fused activation, then the
# operator that follows it. hard-swish x * relu6(x + 3) / 6 -> HARD_SWISH; hard-sigmoid relu6(x + 3) / 6 ->
# the + 3 folded into the conv's bias, relu6 fused, then MUL by a constant int8 scalar (1/6).
UNFUSED_ACTIVATIONS = {"hardswish": ("", "HARD_SWISH"), "hardsigmoid": ("relu6", "MUL")}
INPUT_NAME, OUTPUT_NAME = "input", "logits"  # signature names
SIGNATURE_KEY = "serving_default"
SUBGRAPH_NAME = "main"
MIN_RUNTIME_VERSION_BYTES = 16  # the converter's min_runtime_version metadata buffer
IDENTITY_METADATA = "mnetcost"  # the exported file's own metadata: configuration and run, as JSON
MODEL_VERSION = 3


class TensorSpec(NamedTuple):
    """One tensor of the file. ``quantization``: ``channel`` (one scale and zero point per output
    channel, ``channels`` of them, along ``axis``), ``tensor`` (one of each: an activation) or ``none``
    (an empty quantization table: the int32 index, axes and shape tensors). Shapes and ``channels``
    are integers, or numpy arrays in a vectorised sweep."""

    name: str
    shape: tuple
    dtype: int
    constant: bool
    quantization: str = "tensor"
    channels: object = 1
    axis: int = 0

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * TYPE_BYTES[self.dtype]


class OpSpec(NamedTuple):
    """One operator: its builtin, the layer it implements, its input and output tensor names and its
    builtin options ``((field, value), ...)`` as the converter writes them (None: no options table)."""

    builtin: str
    layer: str
    inputs: tuple
    output: str
    options: tuple | None


@dataclass(frozen=True)
class Graph:
    """The lowered network: tensors in file order, operators in execution order."""

    tensors: tuple[TensorSpec, ...]
    ops: tuple[OpSpec, ...]
    input: str
    output: str
    description: str
    layer_ops: tuple[tuple[str, int], ...]  # (layer name, number of operators), in order

    def tensor(self, name: str) -> TensorSpec:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict:  # built once: lookups stay linear in the graph's size
        return {t.name: t for t in self.tensors}

    @cached_property
    def _numbers(self) -> dict:
        return {t.name: number for number, t in enumerate(self.tensors)}

    def index(self, name: str) -> int:
        return self._numbers[name]


def fmp_candidates(size: int, out: int) -> int:
    """Positions per window of disjoint fractional max pooling (TF's default): ``ceil(size / out)``."""
    return -(-size // out)


def _padding(layer) -> int:
    """SAME when the resolved padding is TF 'same' (always, for the resolver's conv and pool layers)."""
    from mnetcost.calculator.resolver import same_padding

    top, bottom, left, right = layer.padding
    _, want_top, want_bottom = same_padding(layer.in_h, layer.kernel, layer.stride)
    _, want_left, want_right = same_padding(layer.in_w, layer.kernel, layer.stride)
    if (top, bottom, left, right) == (want_top, want_bottom, want_left, want_right):
        return SAME
    if layer.padding == (0, 0, 0, 0):
        return VALID
    raise ConfigError(f"layer {layer.name}: padding {layer.padding} is neither TF 'same' nor 'valid', so it has no "
                      "TensorFlow Lite lowering; --runtime simple prices it without one")


def description(network):
    """The file's description string (ASCII): what was exported. For a sweep (``alpha``/``delta``
    arrays) its length in bytes, per configuration."""
    height, width = network.resolution
    alpha, delta = network.alpha, network.delta
    if hasattr(alpha, "shape") or hasattr(delta, "shape"):
        import numpy as np

        text = description(_Config(network.variant, 1.0, 1, network.classes, network.resolution))
        fixed = len(text.encode()) - len("1") - len("1")
        alphas, inverse = np.unique(np.asarray(alpha, dtype=np.float64), return_inverse=True)
        alpha_bytes = np.array([len(f"{a:g}") for a in alphas], dtype=np.int64)[inverse.reshape(np.shape(alpha))]
        delta_bytes = np.char.str_len(np.asarray(delta).astype(str)).astype(np.int64)
        return fixed + alpha_bytes + delta_bytes
    return (f"mnetcost {network.variant} alpha={alpha:g} delta={delta} classes={network.classes} "
            f"input={height}x{width} int8")


class _Config(NamedTuple):
    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: tuple


def fused_activation(layer) -> int:
    """The conv's fused activation code (NONE, RELU, RELU6): its own activation when TFLite can fuse it,
    else the part of it the converter fuses (:data:`UNFUSED_ACTIVATIONS`)."""
    activation = layer.activation or ""
    if activation in UNFUSED_ACTIVATIONS:
        activation = UNFUSED_ACTIVATIONS[activation][0]
    try:
        return FUSED_ACTIVATIONS[activation]
    except KeyError:
        raise ConfigError(f"layer {layer.name}: activation {layer.activation} has no TensorFlow Lite lowering "
                          f"(lowered: {', '.join([*(a for a in FUSED_ACTIVATIONS if a), *UNFUSED_ACTIVATIONS])}); "
                          "--runtime simple prices it without one") from None


def flat_layers(layers) -> frozenset:
    """The layers whose output the lowering keeps 2-D, ``(1, C)``: a global average pool (``MEAN`` without
    kept dimensions) and the 1x1 convs on its 1x1 output (``FULLY_CONNECTED``, a classifier head such as
    MobileNetV3's) when everything reading them is a classifier or such a conv. A squeeze-excite's pool
    and convs, whose gate multiplies a feature map, stay 4-D, ``(1, 1, 1, C)`` (``MEAN`` with kept
    dimensions, ``CONV_2D``), as Keras applications build them."""
    readers: dict[str, list] = {}
    for layer in layers:
        for source in layer.inputs:
            readers.setdefault(source, []).append(layer)
    flat: set[str] = set()
    for layer in layers:
        if layer.kind != "avgpool":
            continue
        group, frontier, keeps_flat = [layer.name], [layer.name], True
        while frontier:
            for reader in readers.get(frontier.pop(), ()):
                if reader.kind == "fc":
                    continue
                if reader.kind in ("conv", "pw") and reader.kernel == 1 and reader.in_h == reader.in_w == 1 \
                        and len(reader.inputs) == 1:
                    group.append(reader.name)
                    frontier.append(reader.name)
                else:
                    keeps_flat = False
        if keeps_flat:
            flat.update(group)
    return frozenset(flat)


def lower(network) -> Graph:
    """The TensorFlow Lite graph of ``network`` at int8 (see the module docstring)."""
    channels = network.spec.in_channels
    height, width = network.resolution
    tensors = [TensorSpec(INPUT_NAME, (1, height, width, channels), INT8, False)]
    ops: list[OpSpec] = []
    layer_ops = []
    written = {IMAGE: (INPUT_NAME, tensors[0].shape)}  # layer name -> (its output tensor, shape)
    flat = flat_layers(network.layers)
    current = INPUT_NAME
    shape = tensors[0].shape

    def const(name, shape_, dtype, channels_=None, axis=0, quantization=None):
        quantization = quantization or ("none" if channels_ is None else "channel")
        tensors.append(TensorSpec(name, tuple(shape_), dtype, True, quantization,
                                  1 if channels_ is None else channels_, axis))
        return name

    def emit(builtin, layer, inputs, out_name, out_shape, options):
        nonlocal current, shape
        tensors.append(TensorSpec(out_name, tuple(out_shape), INT8, False))
        ops.append(OpSpec(builtin, layer.name, tuple(inputs), out_name, options))
        current, shape = out_name, tuple(out_shape)

    def activate(layer, builtin, inputs, out_shape, options):
        """The conv's operator, then the operator of an activation it cannot fuse."""
        name = layer.name
        follow = UNFUSED_ACTIVATIONS.get(layer.activation or "", (None, None))[1]
        emit(builtin, layer, inputs, f"{name}/linear" if follow == "HARD_SWISH" else
             f"{name}/relu6" if follow == "MUL" else name, out_shape, options)
        if follow == "HARD_SWISH":
            emit("HARD_SWISH", layer, (current,), name, out_shape, None)
        elif follow == "MUL":
            sixth = const(f"{name}/sixth", (), INT8, quantization="tensor")
            emit("MUL", layer, (current, sixth), name, out_shape, (("fused_activation_function", 0),))

    for layer in network.layers:
        before = len(ops)
        name, kind = layer.name, layer.kind
        if kind not in LOWERED:
            raise ConfigError(f"layer {name}: no TensorFlow Lite lowering for layer kind {kind!r} "
                              f"(lowered: {', '.join(LOWERED)}); --runtime simple prices it without one")
        reads = []
        for source in layer.inputs or ((IMAGE,) if not layer_ops else (layer_ops[-1][0],)):
            if source not in written:
                raise ConfigError(f"layer {name} reads {source}, which no earlier layer writes")
            reads.append(written[source])
        current, shape = reads[0]
        fused = fused_activation(layer) if kind in ("conv", "pw", "dw") else 0
        out4 = (1, layer.out_h, layer.out_w, layer.out_c)
        if kind in IMAGE_KINDS and len(shape) != 4 and name not in flat:  # conv and pooling take NHWC images
            raise ConfigError(f"layer {name} ({kind}) reads {current}, a vector of features (global average pooling "
                              "keeps no height and width): the TensorFlow Lite lowering has no convolution or "
                              "pooling of a pooled vector")
        if kind in ("conv", "pw") and name in flat:  # a 1x1 conv on a pooled vector: a dense layer
            weights = const(f"{name}/weights", (layer.out_c, layer.in_c), INT8, layer.out_c, 0)
            bias = const(f"{name}/bias", (layer.out_c,), INT32, layer.out_c, 0)
            activate(layer, "FULLY_CONNECTED", (current, weights, bias), (1, layer.out_c),
                     (("fused_activation_function", fused),))
        elif kind in ("conv", "pw"):
            weights = const(f"{name}/weights", (layer.out_c, layer.kernel, layer.kernel, layer.in_c), INT8,
                            layer.out_c, 0)
            bias = const(f"{name}/bias", (layer.out_c,), INT32, layer.out_c, 0)
            options = (("padding", _padding(layer)), ("stride_w", layer.stride), ("stride_h", layer.stride),
                       ("fused_activation_function", fused))
            activate(layer, "CONV_2D", (current, weights, bias), out4, options)
        elif kind == "dw":
            weights = const(f"{name}/weights", (1, layer.kernel, layer.kernel, layer.out_c), INT8, layer.out_c, 3)
            bias = const(f"{name}/bias", (layer.out_c,), INT32, layer.out_c, 0)
            options = (("padding", _padding(layer)), ("stride_w", layer.stride), ("stride_h", layer.stride),
                       ("depth_multiplier", layer.delta), ("fused_activation_function", fused))
            activate(layer, "DEPTHWISE_CONV_2D", (current, weights, bias), out4, options)
        elif kind == "maxpool":
            options = (("padding", _padding(layer)), ("stride_w", layer.stride), ("stride_h", layer.stride),
                       ("filter_width", layer.kernel), ("filter_height", layer.kernel))
            emit("MAX_POOL_2D", layer, (current,), name, out4, options)
        elif kind == "fmp":
            k_h, k_w = fmp_candidates(layer.in_h, layer.out_h), fmp_candidates(layer.in_w, layer.out_w)
            rows = const(f"{name}/rows", (layer.out_h * k_h,), INT32)
            emit("GATHER", layer, (current, rows), f"{name}/gathered_rows",
                 (1, layer.out_h * k_h, layer.in_w, layer.in_c), (("axis", 1),))
            cols = const(f"{name}/cols", (layer.out_w * k_w,), INT32)
            emit("GATHER", layer, (current, cols), f"{name}/gathered", (1, layer.out_h * k_h, layer.out_w * k_w,
                                                                        layer.in_c), (("axis", 2),))
            options = (("padding", VALID), ("stride_w", k_w), ("stride_h", k_h), ("filter_width", k_w),
                       ("filter_height", k_h))
            emit("MAX_POOL_2D", layer, (current,), name, out4, options)
        elif kind == "avgpool" and name not in flat and layer.in_h == layer.in_w == 1:
            pass  # the mean of a 1x1 map, dimensions kept: the converter drops it (the output is the input)
        elif kind == "avgpool":
            axes = const(f"{name}/axes", (2,), INT32)
            if name in flat:
                emit("MEAN", layer, (current, axes), name, (1, layer.out_c), ())
            else:
                emit("MEAN", layer, (current, axes), name, (1, 1, 1, layer.out_c), (("keep_dims", True),))
        elif kind == "fc":
            features = layer.in_h * layer.in_w * layer.in_c
            if len(shape) != 2:
                new_shape = const(f"{name}/shape", (2,), INT32)
                emit("RESHAPE", layer, (current, new_shape), f"{name}/flatten", (1, features), None)
            weights = const(f"{name}/weights", (layer.out_c, features), INT8, layer.out_c, 0)
            bias = const(f"{name}/bias", (layer.out_c,), INT32, layer.out_c, 0)
            emit("FULLY_CONNECTED", layer, (current, weights, bias), name, (1, layer.out_c), ())
        elif kind in ("add", "scale"):  # a residual add; a squeeze-excite's gate times the feature map
            if len(reads) != 2:
                raise ConfigError(f"layer {name}: a {kind} reads two tensors, not {len(reads)}")
            options = (("fused_activation_function", 0),)
            inputs = [tensor for tensor, _ in reads]
            if kind == "add" and layer.out_h == layer.out_w == 1:
                # on a 1x1 map the converter makes the residual a bias: the block's input, reshaped to (C,)
                # right after the operator that writes it, added to the projection
                inputs[1] = _squeeze_after_writer(ops, tensors, layer, inputs[1])
            emit("ADD" if kind == "add" else "MUL", layer, tuple(inputs), name,
                 reads[0][1] if kind == "scale" else out4, options)
        written[name] = (current, shape)
        layer_ops.append((name, len(ops) - before))
    return Graph(tensors=tuple(tensors), ops=tuple(ops), input=INPUT_NAME, output=current,
                 description=description(network), layer_ops=tuple(layer_ops))


LOWERED = ("conv", "pw", "dw", "maxpool", "fmp", "avgpool", "fc", "add", "scale")
IMAGE_KINDS = ("conv", "pw", "dw", "maxpool", "fmp", "avgpool")  # layers whose operator reads an NHWC image


def _squeeze_after_writer(ops: list, tensors: list, layer, source: str) -> str:
    """Insert ``RESHAPE(source) -> (C,)`` right after the operator that writes ``source`` (the converter's
    form of a residual add on a 1x1 map); returns the reshaped tensor's name."""
    shape = f"{layer.name}/shape"
    squeezed = f"{layer.name}/residual"
    tensors.append(TensorSpec(shape, (1,), INT32, True, "none"))
    tensors.append(TensorSpec(squeezed, (layer.out_c,), INT8, False))
    writer = next(number for number, op in enumerate(ops) if op.output == source)
    ops.insert(writer + 1, OpSpec("RESHAPE", layer.name, (source, shape), squeezed, None))
    return squeezed


def operator_codes(graph: Graph) -> list[str]:
    """The builtins in order of first use (the converter's operator-code table)."""
    seen: list[str] = []
    for op in graph.ops:
        if op.builtin not in seen:
            seen.append(op.builtin)
    return seen


# --- the FlatBuffers layout ----------------------------------------------------------------------
class _Layout:
    """The FlatBuffers Python ``Builder`` (flatbuffers 25.x) reduced to what decides sizes: it builds
    back to front, tracking the offset from the end, the largest alignment, the vtables written so far
    (an equal vtable is shared), and the current table's field offsets. Each method mirrors the
    builder call of the same name; ``parts`` counts the bytes by what they are.

    A sweep (array sizes) follows its first configuration in ``offset`` and the others by how far they
    are from it, ``delta``. Every vector and string leaves the offset 4-aligned and tables hold only
    fixed-size fields, so ``delta`` is a multiple of 4 wherever a table starts or a field is placed:
    the padding before 1-, 2- and 4-byte items and every table's vtable are the first configuration's,
    and only the 8-byte alignment of the int64 zero-point vectors, the variable-length vectors and
    the file's end pad each configuration on its own."""

    def __init__(self):
        self.offset = 0
        self.delta = 0
        self.minalign = 1
        self.vtables: set = set()
        self.vtable: list | None = None
        self.object_end = 0
        self.parts: dict[str, object] = {}

    def _count(self, part: str, size) -> None:
        self.parts[part] = self.parts.get(part, 0) + size

    def _add(self, part: str, size) -> None:
        first = _first(size)
        self.offset += first
        if first is not size:  # an array: the others move by their difference
            self.delta = self.delta + (size - first)
        self._count(part, size)

    def prep(self, size: int, additional) -> None:
        self.minalign = max(self.minalign, size)
        first = _first(additional)
        pad = (-(self.offset + first)) % size
        # delta is a multiple of 4 (class docstring): 1-, 2- and 4-byte alignment pads every
        # configuration alike unless the length that follows differs between them
        if first is not additional or (size > 4 and hasattr(self.delta, "shape")):
            pads = (-(self.offset + self.delta + additional)) % size
            self.delta = self.delta + (pads - pad)
            self._count("padding", pads)
        else:
            self._count("padding", pad)
        self.offset += pad

    def scalar(self, size: int, part: str = "structure") -> None:
        self.prep(size, 0)
        self._add(part, size)

    def string(self, text, part: str = "names") -> int:
        """A string (or, for a sweep, its length in bytes per configuration)."""
        data = len(text.encode("utf-8")) if isinstance(text, str) else text
        self.prep(4, data + 1)
        self._add(part, data + 1)  # the bytes and their NUL
        self._add("structure", 4)  # the length
        return self.offset

    def vector(self, element: int, count, alignment: int, part: str) -> int:
        self.prep(4, element * count)
        self.prep(alignment, element * count)
        self._add(part, element * count)
        self._add("structure", 4)
        return self.offset

    def offsets(self, count: int) -> int:
        """A vector of ``count`` table offsets."""
        self.prep(4, 4 * count)
        for _ in range(count):
            self.scalar(4)
        self._add("structure", 4)
        return self.offset

    def start(self, fields: int) -> None:
        self.vtable = [0] * fields
        self.object_end = self.offset

    def field(self, slot: int, size: int, value, default=0) -> None:
        written = value != default
        if hasattr(written, "shape"):  # a sweep: the field must be written in every configuration or none
            if written.all() != written.any():
                raise ValueError(f"a field is default in some configurations only (slot {slot})")
            written = bool(written.all())
        if written:
            self.scalar(size)
            self.vtable[slot] = self.offset

    def ref(self, slot: int) -> None:
        self.scalar(4)
        self.vtable[slot] = self.offset

    def end(self) -> int:
        self.scalar(4)  # the table's offset to its vtable
        table = self.offset
        entries = list(self.vtable)
        while entries and entries[-1] == 0:
            entries.pop()
        key = tuple(table - e if e else 0 for e in reversed(entries)) + (table - self.object_end,)
        if key not in self.vtables:
            for _ in range(len(entries) + 2):
                self.scalar(2)
            self.vtables.add(key)
        self.vtable = None
        return table

    def finish(self) -> None:
        self.prep(self.minalign, 8)
        self.prep(4, 4)
        self._add("structure", 4)  # the file identifier "TFL3"
        self.scalar(4)  # the root table offset

    @property
    def size(self):
        return self.offset + self.delta


def _first(value):
    """A sweep's first configuration's value (the value itself when it is a plain integer)."""
    if hasattr(value, "shape") and value.ndim:
        return int(value.reshape(-1)[0])
    return value


def _tensor(b: _Layout, tensor: TensorSpec, buffer: int) -> None:
    b.vector(4, len(tensor.shape), 4, "structure")
    b.string(tensor.name)
    if tensor.quantization != "none":  # QuantizationParameters: scale (float32), zero_point (int64)
        count = tensor.channels if tensor.quantization == "channel" else 1
        b.vector(4, count, 4, "quantization")
        b.vector(8, count, 8, "quantization")
        b.start(7)
        b.ref(2)
        b.ref(3)
        b.field(6, 4, tensor.axis)  # quantized_dimension
    else:
        b.start(7)
    b.end()
    b.start(11)
    b.ref(0)  # shape
    b.field(1, 1, tensor.dtype)  # type
    b.field(2, 4, buffer)  # buffer
    b.ref(3)  # name
    b.ref(4)  # quantization
    b.field(8, 1, 1)  # has_rank
    b.end()


_OPTION_TABLES = {  # builtin -> (BuiltinOptions type, fields, {field: (slot, bytes, default)})
    "CONV_2D": (1, 7, {"padding": (0, 1, 0), "stride_w": (1, 4, 0), "stride_h": (2, 4, 0),
                       "fused_activation_function": (3, 1, 0)}),
    "DEPTHWISE_CONV_2D": (2, 7, {"padding": (0, 1, 0), "stride_w": (1, 4, 0), "stride_h": (2, 4, 0),
                                 "depth_multiplier": (3, 4, 0), "fused_activation_function": (4, 1, 0)}),
    "MAX_POOL_2D": (5, 6, {"padding": (0, 1, 0), "stride_w": (1, 4, 0), "stride_h": (2, 4, 0),
                           "filter_width": (3, 4, 0), "filter_height": (4, 4, 0)}),
    "FULLY_CONNECTED": (8, 6, {"fused_activation_function": (0, 1, 0)}),
    "GATHER": (23, 2, {"axis": (0, 4, 0)}),
    "MEAN": (27, 1, {"keep_dims": (0, 1, 0)}),
    "ADD": (11, 2, {"fused_activation_function": (0, 1, 0), "pot_scale_int16": (1, 1, 1)}),
    "MUL": (21, 1, {"fused_activation_function": (0, 1, 0)}),
}


def _operator(b: _Layout, op: OpSpec, opcode: int, index: dict) -> None:
    b.vector(4, len(op.inputs), 4, "structure")
    b.vector(4, 1, 4, "structure")
    if op.options is not None:
        _, fields, slots = _OPTION_TABLES[op.builtin]
        b.start(fields)
        for name, value in op.options:
            slot, size, default = slots[name]
            b.field(slot, size, value, default)
        b.end()
    b.start(14)
    b.field(0, 4, opcode)
    b.ref(1)
    b.ref(2)
    if op.options is not None:
        b.field(3, 1, _OPTION_TABLES[op.builtin][0])
        b.ref(4)
    b.end()


@dataclass(frozen=True)
class FileLayout:
    """The predicted file: its size and what its bytes are."""

    bytes: int
    parts: dict = field(default_factory=dict)  # weights, quantization, names, structure, padding, metadata

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, **{f"{part}_bytes": value for part, value in self.parts.items()}}


FILE_PARTS = ("weights", "quantization", "names", "metadata", "structure", "padding")


def file_layout(graph: Graph, identity_bytes: int = 0) -> FileLayout:
    """Lay out the file of ``graph`` as ``ModelT.Pack`` + ``Builder.Finish(..., b"TFL3")`` do.
    ``identity_bytes``: the length of the ``mnetcost`` metadata buffer (:data:`IDENTITY_METADATA`,
    what ``mnetcost export`` writes: the configuration and the run) or 0 for a file without it."""
    b = _Layout()
    codes = operator_codes(graph)
    for builtin in codes:  # OperatorCode tables
        code, version = BUILTINS[builtin]
        b.start(4)
        b.field(0, 1, min(code, 127))  # deprecated_builtin_code
        b.field(2, 4, version, 1)
        b.field(3, 4, code)
        b.end()
    b.offsets(len(codes))
    # the subgraph: tensors, inputs, outputs, operators, name
    for number, tensor in enumerate(graph.tensors):
        _tensor(b, tensor, number + 1)
    b.offsets(len(graph.tensors))
    b.vector(4, 1, 4, "structure")
    b.vector(4, 1, 4, "structure")
    index = {t.name: i for i, t in enumerate(graph.tensors)}
    for op in graph.ops:
        _operator(b, op, codes.index(op.builtin), index)
    b.offsets(len(graph.ops))
    b.string(SUBGRAPH_NAME, "metadata")
    b.start(6)
    for slot in range(5):
        b.ref(slot)
    b.end()
    b.offsets(1)
    b.string(graph.description, "metadata")
    # buffers: the empty sentinel, one per tensor, the min_runtime_version buffer (and the identity's)
    metadata = [("min_runtime_version", MIN_RUNTIME_VERSION_BYTES)]
    if identity_bytes:
        metadata.append((IDENTITY_METADATA, identity_bytes))
    buffers = [None] + [t.nbytes if t.constant else None for t in graph.tensors] + [size for _, size in metadata]
    first_metadata = len(buffers) - len(metadata)
    for number, data in enumerate(buffers):
        if data is not None:
            b.vector(1, data, 1, "metadata" if number >= first_metadata else "weights")
            b.start(3)
            b.ref(0)
        else:
            b.start(3)
        b.end()
    b.offsets(len(buffers))
    for number, (name, _) in enumerate(metadata):  # Metadata tables
        b.string(name, "metadata")
        b.start(2)
        b.ref(0)
        b.field(1, 4, first_metadata + number)
        b.end()
    b.offsets(len(metadata))
    maps = []
    for name, tensor_index in ((INPUT_NAME, index[graph.input]), (OUTPUT_NAME, index[graph.output])):
        b.string(name, "metadata")  # TensorMap
        b.start(2)
        b.ref(0)
        b.field(1, 4, tensor_index)
        maps.append(b.end())
        b.offsets(1)
    b.string(SIGNATURE_KEY, "metadata")
    b.start(5)
    b.ref(0)
    b.ref(1)
    b.ref(2)
    b.end()
    b.offsets(1)
    b.start(10)  # Model
    b.field(0, 4, MODEL_VERSION)
    for slot in (1, 2, 3, 4, 6, 7):
        b.ref(slot)
    b.end()
    b.finish()
    parts = {part: b.parts.get(part, 0) for part in FILE_PARTS}
    return FileLayout(bytes=b.size, parts=parts)


def sweep_flash_bytes(network_plan, layers, alphas, deltas):
    """The file bytes of every configuration of a sweep (``layers`` from
    :func:`~mnetcost.calculator.resolver.resolve_arrays`)."""
    return file_bytes(lower(sweep_network(network_plan, layers, alphas, deltas)))


def file_bytes(graph: Graph):
    """The file's bytes (an array for a sweep's graph): :func:`file_layout`'s total."""
    return file_layout(graph).bytes


def sweep_network(network_plan, layers, alphas, deltas):
    """A :class:`~mnetcost.calculator.resolver.Network` whose channel fields, alpha and delta are a
    sweep's arrays."""
    from mnetcost.calculator.resolver import Network

    return Network(variant=network_plan.spec.name, alpha=alphas, delta=deltas, classes=network_plan.classes,
                   resolution=network_plan.resolution, rounding="", layers=tuple(layers), spec=network_plan.spec)


def flash_bytes(network) -> int:
    """Bytes of the exported int8 ``.tflite`` file of ``network``."""
    return file_layout(lower(network)).bytes
