"""A ``.tflite`` file (float32 or int8) -> the calculator's resolved :class:`Network` and its own TFLite graph.

The file is read with the ``flatbuffers`` package and the TensorFlow Lite schema (the generated Python
module the ``tflite-micro`` package ships; neither needs TensorFlow). Two things come out of it:

* **the resolved network**: one :class:`~mnetcost.calculator.resolver.Layer` per operator, in the file's
  own order, named ``<builtin>_<n>`` (``conv_2d_3``), each reading the layers that wrote its
  activation inputs (``inputs``; ``"input"`` for the file's input). Parameters and Mult-Adds are the
  calculator's one cost-rule registry (:mod:`mnetcost.calculator.cost`) applied to the weights as
  stored: BatchNorm is already folded, so a conv with a bias tensor is a conv with a bias and no
  BatchNorm, and every convention counts the bias the file holds. The layer kinds:

  ========================================================  ===============================================
  operator                                                  layer kind (cost rule)
  ========================================================  ===============================================
  CONV_2D                                                   ``conv`` (``pw`` when 1x1, stride 1)
  DEPTHWISE_CONV_2D                                         ``dw`` (depth multiplier = out / in channels)
  FULLY_CONNECTED                                           ``linear`` (weights as stored, bias if present)
  MAX_POOL_2D                                               ``maxpool``
  AVERAGE_POOL_2D, MEAN over height and width to 1x1        ``avgpool`` (global); else ``avgpool2d``/``mean``
  ADD, SUB / MUL                                            ``add`` / ``mul`` (one operation per element)
  RESHAPE, SQUEEZE, EXPAND_DIMS, SHAPE, STRIDED_SLICE, PACK,
  TRANSPOSE, PAD, PADV2, CONCATENATION, SOFTMAX, QUANTIZE,
  DEQUANTIZE                                                ``reshape``, ``pad``, ``concat``, ``softmax``,
                                                            ``quantize`` (no weights, no Mult-Adds)
  RELU, RELU6, LOGISTIC, TANH, LEAKY_RELU, HARD_SWISH       ``act`` (hard-swish: one multiply per element)
  ========================================================  ===============================================

  Any other operator is named in :attr:`TfliteFile.problems` (one line each) and never priced as zero.

* **the TFLite graph** (:class:`~mnetcost.calculator.tflite_model.Graph`): the file's tensors in file
  order (shape, type, constant or not, per-tensor or per-channel quantization) and its operators in file
  order, so that :mod:`mnetcost.calculator.tflm` plans the file's own tensors in the file's own operator
  order; and the file's bytes by what they are (:func:`file_parts`).

"Will it run": every operator is checked against the builtins TensorFlow Lite Micro implements
(:data:`mnetcost.calculator.tflm.TFLM_BUILTINS`) and against its known kernel limits (no hybrid
float-input/int8-weight convolutions; a quantized softmax whose input scale is below 2^-26 aborts).

Standard library, ``flatbuffers`` and the schema module only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from mnetcost.calculator import tflite_model as TM
from mnetcost.errors import ConfigError

# TensorType codes of the schema and their names
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
              9: "int8", 10: "float64", 15: "uint32", 16: "uint16", 17: "int4"}
FUSED = {0: "", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
ACTIVATION_OPS = {"RELU": "relu", "RELU6": "relu6", "LOGISTIC": "sigmoid", "TANH": "tanh", "LEAKY_RELU": "leaky_relu",
                  "HARD_SWISH": "hardswish"}
SHAPE_OPS = {"RESHAPE": "reshape", "SQUEEZE": "reshape", "EXPAND_DIMS": "reshape", "PAD": "pad", "PADV2": "pad",
             "CONCATENATION": "concat", "SOFTMAX": "softmax", "QUANTIZE": "quantize", "DEQUANTIZE": "quantize",
             # the dynamic flatten of Keras 3 models: the shape of a tensor, a slice of it, the new shape packed
             "SHAPE": "reshape", "STRIDED_SLICE": "reshape", "PACK": "reshape",
             "TRANSPOSE": "reshape"}  # a layout change (NCHW -> NHWC in files converted from PyTorch)
ELEMENTWISE_OPS = {"ADD": "add", "SUB": "add", "MUL": "mul"}
PRICED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN",
          *ELEMENTWISE_OPS, *SHAPE_OPS, *ACTIVATION_OPS)


def schema():
    """The TensorFlow Lite schema's generated Python module (shipped by ``tflite-micro``; no TensorFlow)."""
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    except ImportError:
        from mnetcost.cli.options import install_hint

        raise ConfigError("reading a .tflite file needs the flatbuffers package and the TensorFlow Lite schema of "
                          f"the tflite-micro package: {install_hint('tflite')}") from None
    return fb


@dataclass(frozen=True)
class Operator:
    """One operator of the file: its builtin, the layer it became ("" when it could not be priced), and
    what stops it (``problem``: "" when nothing does)."""

    index: int
    builtin: str
    layer: str
    output: str
    problem: str = ""

    def as_dict(self) -> dict:
        return {"index": self.index, "builtin": self.builtin, "layer": self.layer, "output": self.output,
                **({"problem": self.problem} if self.problem else {})}


@dataclass(frozen=True)
class TfliteFile:
    """A ``.tflite`` file read: its resolved network (None when an operator cannot be priced), its TFLite
    graph, its operators, its bytes by part, and the one-line problems that stop pricing or running it."""

    path: str
    size: int
    graph: TM.Graph | None
    network: object
    operators: tuple[Operator, ...]
    parts: dict = field(default_factory=dict)
    dtype: str = "fp32"
    problems: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def require_priced(self) -> None:
        """Raise one :class:`ConfigError` line naming every operator that stops the file."""
        if self.problems:
            raise ConfigError(f"{self.name}: " + problem_line(self.operators, self.problems))

    def as_dict(self) -> dict:
        graph = self.graph
        shapes = {"input_shape": list(graph.tensor(graph.input).shape) if graph and graph.input else [],
                  "output_shape": list(graph.tensor(graph.output).shape) if graph and graph.output else []}
        return {"file": self.path, "file_bytes": self.size, "dtype": self.dtype, **shapes,
                "operators": [op.as_dict() for op in self.operators],
                "unsupported_operators": [op.as_dict() for op in self.operators if op.problem]}


def problem_line(operators, problems) -> str:
    """The problems in one line, the operators that share a reason grouped: ``SVDF (operators 1, 3, 5):
    mnetcost cannot price it yet``."""
    grouped: dict[str, list] = {}
    for op in operators:
        if op.problem:
            reason = op.problem.split(": ", 1)[1]
            grouped.setdefault((op.builtin, reason), []).append(op.index)
    parts = [p for p in problems if not p.startswith("operator ")]
    for (builtin, reason), indices in grouped.items():
        where = f"operator{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))}"
        parts.append(f"{builtin} ({where}): {reason}")
    return "; ".join(parts)


def builtin_names(fb) -> dict[int, str]:
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


def _hwc(shape) -> tuple[int, int, int]:
    """A tensor's shape as (height, width, channels): NHWC with the batch folded into the height; a
    vector (1, C) is 1 x 1 x C."""
    dims = [int(d) for d in shape]
    if not dims:
        return 1, 1, 1
    channels = dims[-1]
    width = dims[-2] if len(dims) >= 2 else 1
    height = math.prod(dims[:-2]) if len(dims) >= 3 else 1
    if len(dims) == 2:
        height, width = dims[0], 1
    return height, width, channels


def _options(op, fb, cls):
    table = op.BuiltinOptions()
    if table is None:
        return None
    options = cls()
    options.Init(table.Bytes, table.Pos)
    return options


def _vector(obj, name: str) -> list:
    length = getattr(obj, f"{name}Length")()
    getter = getattr(obj, name)
    return [getter(i) for i in range(length)]


def read(path) -> TfliteFile:
    """Read a ``.tflite`` file (see the module docstring); a file that is not one raises ConfigError."""
    path = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    return parse(data, path)


def parse(data: bytes, path: str = "model.tflite") -> TfliteFile:
    fb = schema()
    name = os.path.basename(path)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{name} is not a TensorFlow Lite file (no 'TFL3' identifier)")
    try:
        model = fb.Model.GetRootAsModel(data, 0)
        subgraphs = model.SubgraphsLength()
    except Exception as exc:  # noqa: BLE001 - a damaged FlatBuffer raises struct/index errors
        raise ConfigError(f"{name}: damaged TensorFlow Lite file ({type(exc).__name__})") from None
    if subgraphs < 1:
        raise ConfigError(f"{name}: the file has no subgraph")
    names = builtin_names(fb)
    sub = model.Subgraphs(0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]

    def buffer_bytes(index: int) -> int:
        if index <= 0 or index >= len(buffers):
            return 0
        buffer = buffers[index]
        return int(buffer.Size()) if buffer.Offset() > 1 else buffer.DataLength()

    tensors, raw_names, seen = [], [], {}
    for number in range(sub.TensorsLength()):
        tensor = sub.Tensors(number)
        raw = (tensor.Name() or b"").decode("utf-8", "replace")
        raw_names.append(raw)
        unique = raw or f"tensor_{number}"
        if unique in seen:
            unique = f"{unique}#{number}"
        seen[unique] = number
        quant = tensor.Quantization()
        scales = quant.ScaleLength() if quant is not None else 0
        quantization = "none" if scales == 0 else ("channel" if scales > 1 else "tensor")
        shape = tuple(int(d) for d in _vector(tensor, "Shape")) if tensor.ShapeLength() else ()
        tensors.append(TM.TensorSpec(unique, shape, tensor.Type(), buffer_bytes(tensor.Buffer()) > 0, quantization,
                                     scales or 1, quant.QuantizedDimension() if quant is not None else 0))
    graph_inputs = [int(i) for i in _vector(sub, "Inputs")]
    graph_outputs = [int(i) for i in _vector(sub, "Outputs")]

    operators: list[Operator] = []
    ops: list[TM.OpSpec] = []
    layers = []
    problems: list[str] = []
    writer = {i: "input" if k == 0 else f"input_{k + 1}" for k, i in enumerate(graph_inputs)}
    counters: dict[str, int] = {}
    if subgraphs > 1:
        problems.append(f"the file has {subgraphs} subgraphs (control flow); only one is priced")
    if len(graph_inputs) != 1:
        problems.append(f"the file has {len(graph_inputs)} inputs; files with one input are priced")
    if len(graph_outputs) != 1:
        problems.append(f"the file has {len(graph_outputs)} outputs; files with one output are priced")
    variables = [t.name for number, t in enumerate(tensors) if sub.Tensors(number).IsVariable()]
    if variables:  # TFLM keeps them out of the planned head; their allocation is not modelled
        problems.append(f"the file has {len(variables)} variable tensor{'s' if len(variables) > 1 else ''} "
                        f"(operator state, {variables[0]}{', ...' if len(variables) > 1 else ''}); they are not "
                        "modelled")
    from mnetcost.calculator.tflm import TFLM_BUILTINS

    for index in range(sub.OperatorsLength()):
        op = sub.Operators(index)
        code = model.OperatorCodes(op.OpcodeIndex())
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        builtin = names.get(number, str(number))
        if builtin == "CUSTOM":
            builtin = f"CUSTOM ({(code.CustomCode() or b'?').decode('utf-8', 'replace')})"
        inputs = [int(i) for i in _vector(op, "Inputs")]
        outputs = [int(i) for i in _vector(op, "Outputs")]
        out_name = tensors[outputs[0]].name if outputs else ""
        problem = ""
        if builtin not in TFLM_BUILTINS:
            problem = f"operator {index} {builtin}: TensorFlow Lite Micro has no kernel for it"
        elif builtin not in PRICED:
            problem = f"operator {index} {builtin}: mnetcost cannot price it yet"
        elif len(outputs) != 1:
            problem = f"operator {index} {builtin}: {len(outputs)} outputs"
        else:
            problem = _kernel_limit(builtin, [tensors[i] for i in inputs if i >= 0], tensors[outputs[0]], index)
            if not problem and builtin == "SOFTMAX" and tensors[inputs[0]].dtype in (9, 7):
                problem = _softmax_limit(fb, op, sub.Tensors(inputs[0]), index)
        layer_name = ""
        if not problem:
            counters[builtin] = counters.get(builtin, 0) + 1
            layer_name = f"{builtin.lower()}_{counters[builtin]}"
            activations = [i for i in inputs if i >= 0 and not tensors[i].constant]
            missing = [tensors[i].name for i in activations if i not in writer]
            if missing:
                problem = f"operator {index} {builtin}: reads {missing[0]}, which no earlier operator writes"
            else:
                try:
                    layers.append(_layer(fb, builtin, op, index, layer_name, inputs, outputs[0], tensors, writer))
                except ConfigError as exc:
                    problem = f"operator {index} {builtin}: {exc}"
        if problem:
            problems.append(problem)
            layer_name = ""
        for output in outputs:  # an unpriced operator's outputs too: its readers are not blamed for it
            writer[output] = layer_name or f"operator_{index}"
        operators.append(Operator(index, builtin, layer_name, out_name, problem))
        ops.append(TM.OpSpec(builtin, layer_name or out_name, tuple(tensors[i].name for i in inputs if i >= 0),
                             out_name, None))
    graph = TM.Graph(tensors=tuple(tensors), ops=tuple(ops),
                     input=tensors[graph_inputs[0]].name if graph_inputs else "",
                     output=tensors[graph_outputs[0]].name if graph_outputs else "",
                     description=(model.Description() or b"").decode("utf-8", "replace"),
                     layer_ops=tuple((op.layer, 1) for op in ops))
    weighted = [t for t in tensors if t.constant and t.dtype in (9, 17) and len(t.shape) >= 2]
    dtype = "int8" if weighted or (graph_inputs and tensors[graph_inputs[0]].dtype == 9) else "fp32"
    network = None if problems else _network(name, layers, tensors, graph_inputs, graph_outputs)
    return TfliteFile(path=path, size=len(data), graph=graph, network=network, operators=tuple(operators),
                      parts=file_parts(data, model, sub, buffers, raw_names), dtype=dtype, problems=tuple(problems))


def _kernel_limit(builtin: str, inputs: list, output, index: int) -> str:
    """A known TFLM kernel limit the operator breaks ("" when none): hybrid convolutions, and a DEQUANTIZE of
    anything but int8, int16 or uint8 (a float16-quantized file's weights)."""
    if builtin == "DEQUANTIZE" and inputs and inputs[0].dtype not in (9, 7, 3):
        return (f"operator {index} DEQUANTIZE: of {TYPE_NAMES.get(inputs[0].dtype, inputs[0].dtype)}; TensorFlow "
                "Lite Micro dequantizes int8, int16 and uint8 only (a float16-quantized file does not run)")
    if builtin in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(inputs) >= 2:
        data, weights = inputs[0], inputs[1]
        if data.dtype == 0 and weights.dtype != 0:
            return (f"operator {index} {builtin}: {TYPE_NAMES.get(weights.dtype, weights.dtype)} weights with "
                    "float32 activations (a hybrid model); TensorFlow Lite Micro does not run hybrid models")
    return ""


SOFTMAX_INTEGER_BITS = 5  # TFLM's softmax kernel: kScaledDiffIntegerBits


def _softmax_limit(fb, op, tensor, index: int) -> str:
    """TFLM's quantized softmax turns ``beta * input_scale * 2**26`` into a fixed-point multiplier that must
    exceed 1 (``QuantizeMultiplierGreaterThanOne``, a check that aborts the process): logits quantized with a
    smaller scale (a nearly constant output, as an untrained classifier gives) cannot run."""
    options = _options(op, fb, fb.SoftmaxOptions)
    beta = options.Beta() if options is not None else 1.0
    quant = tensor.Quantization()
    scale = quant.Scale(0) if quant is not None and quant.ScaleLength() else 0.0
    if beta * scale * (1 << (31 - SOFTMAX_INTEGER_BITS)) <= 1.0:
        return (f"operator {index} SOFTMAX: its input scale {scale:.3g} (beta {beta:g}) is below 2^-26, which "
                "TensorFlow Lite Micro's softmax cannot represent (the interpreter aborts)")
    return ""


def _layer(fb, builtin, op, index, name, inputs, output, tensors, writer):
    """The :class:`Layer` of one operator (module docstring)."""
    from mnetcost.calculator.resolver import Layer, same_padding

    data = [i for i in inputs if i >= 0 and not tensors[i].constant]
    first = tensors[data[0]] if data else tensors[inputs[0]]
    in_h, in_w, in_c = _hwc(first.shape)
    out_h, out_w, out_c = _hwc(tensors[output].shape)
    reads = tuple(writer[i] for i in data)
    common = dict(name=name, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, bn=False,
                  row=index + 1, inputs=reads)

    def geometry(options, kernel_h, kernel_w):
        stride_h, stride_w = options.StrideH(), options.StrideW()
        if options.Padding() == fb.Padding.SAME:
            _, top, bottom = same_padding(in_h, kernel_h, stride_h)
            _, left, right = same_padding(in_w, kernel_w, stride_w)
            return stride_h, (top, bottom, left, right)
        return stride_h, (0, 0, 0, 0)

    if builtin in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        weights = tensors[inputs[1]]
        bias = len(inputs) > 2 and inputs[2] >= 0
        depthwise = builtin == "DEPTHWISE_CONV_2D"
        cls = fb.DepthwiseConv2DOptions if depthwise else fb.Conv2DOptions
        options = _options(op, fb, cls)
        if options is None:
            raise ConfigError("no options table")
        _, kernel_h, kernel_w, _ = weights.shape
        dilation = (options.DilationHFactor(), options.DilationWFactor())
        if dilation != (1, 1):
            kernel_h, kernel_w = (kernel_h - 1) * dilation[0] + 1, (kernel_w - 1) * dilation[1] + 1
        stride, padding = geometry(options, kernel_h, kernel_w)
        _, kernel_h, kernel_w, _ = weights.shape
        activation = FUSED.get(options.FusedActivationFunction(), "")
        if depthwise:
            if out_c % in_c:
                raise ConfigError(f"{out_c} output channels are not a multiple of {in_c} input channels")
            return Layer(kind="dw", kernel=kernel_h, kernel_w=kernel_w, stride=stride, padding=padding, groups=in_c,
                         activation=activation, delta=out_c // in_c, bias=bias, **common)
        groups = in_c // weights.shape[3] if weights.shape[3] else 1
        pointwise = kernel_h == kernel_w == 1 and stride == 1 and groups == 1
        return Layer(kind="pw" if pointwise else "conv", kernel=kernel_h, kernel_w=kernel_w, stride=stride,
                     padding=padding, groups=groups, activation=activation, bias=bias, **common)
    if builtin == "FULLY_CONNECTED":
        weights = tensors[inputs[1]]
        bias = len(inputs) > 2 and inputs[2] >= 0
        features = weights.shape[-1]
        elements = in_h * in_w * in_c
        if elements % features:
            raise ConfigError(f"{elements} input elements are not rows of {features} features")
        options = _options(op, fb, fb.FullyConnectedOptions)
        activation = FUSED.get(options.FusedActivationFunction(), "") if options is not None else ""
        common.update(in_h=elements // features, in_w=1, in_c=features, out_h=elements // features, out_w=1,
                      out_c=weights.shape[0])
        return Layer(kind="linear", kernel=1, stride=1, padding=(0, 0, 0, 0), groups=1, activation=activation,
                     bias=bias, **common)
    if builtin in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        options = _options(op, fb, fb.Pool2DOptions)
        kernel_h, kernel_w = options.FilterHeight(), options.FilterWidth()
        stride, padding = geometry(options, kernel_h, kernel_w)
        activation = FUSED.get(options.FusedActivationFunction(), "")
        if builtin == "MAX_POOL_2D":
            kind = "maxpool"
        else:
            kind = "avgpool" if (out_h, out_w) == (1, 1) and (kernel_h, kernel_w) == (in_h, in_w) else "avgpool2d"
        return Layer(kind=kind, kernel=kernel_h, kernel_w=kernel_w, stride=stride, padding=padding, groups=1,
                     activation=activation, **common)
    if builtin == "MEAN":
        rank = len(first.shape)
        axes = tensors[inputs[1]]
        spatial = rank == 4 and axes.elements == 2 and (out_h, out_w) in ((1, 1),) and out_c == in_c
        return Layer(kind="avgpool" if spatial else "mean", kernel=max(in_h, in_w), stride=1, padding=(0, 0, 0, 0),
                     groups=1, activation="", **common)
    if builtin in ELEMENTWISE_OPS:
        return Layer(kind=ELEMENTWISE_OPS[builtin], kernel=1, stride=1, padding=(0, 0, 0, 0), groups=1,
                     activation="", **common)
    if builtin in ACTIVATION_OPS:
        return Layer(kind="act", kernel=1, stride=1, padding=(0, 0, 0, 0), groups=1,
                     activation=ACTIVATION_OPS[builtin], **common)
    return Layer(kind=SHAPE_OPS[builtin], kernel=1, stride=1, padding=(0, 0, 0, 0), groups=1, activation="",
                 **common)


def _network(name, layers, tensors, graph_inputs, graph_outputs):
    from mnetcost.calculator.resolver import Network
    from mnetcost.calculator.spec import Spec

    height, width, channels = _hwc(tensors[graph_inputs[0]].shape)
    classes = _hwc(tensors[graph_outputs[0]].shape)[2] if graph_outputs else 0
    spec = Spec(name=name, source=name, rows=(), title=f"{name} (a .tflite file)", in_channels=channels,
                classes=classes, resolution=height, rounding="", description="a .tflite file, operators in file order")
    return Network(variant=name, alpha=1.0, delta=1, classes=classes, resolution=(height, width), rounding="",
                   layers=tuple(layers), spec=spec)


# --- the file's bytes by part ------------------------------------------------------------------
def file_parts(data: bytes, model, sub, buffers, raw_names) -> dict:
    """The file's bytes by what they are, summing to its size: ``weights`` (the constant tensors' buffers),
    ``quantization`` (scales, zero points, min/max), ``names`` (tensor names, each with its NUL),
    ``metadata`` (metadata buffers, description, signature and metadata strings) and ``structure`` (the
    FlatBuffers tables, vtables, offsets, shapes and alignment padding: the rest)."""
    used = set()
    for number in range(sub.TensorsLength()):
        used.add(sub.Tensors(number).Buffer())
    meta = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}

    def size(buffer) -> int:
        return int(buffer.Size()) if buffer.Offset() > 1 else buffer.DataLength()

    weights = sum(size(buffers[i]) for i in used if 0 < i < len(buffers) and i not in meta)
    metadata = sum(size(buffers[i]) for i in meta if 0 < i < len(buffers))
    quantization = 0
    for number in range(sub.TensorsLength()):
        quant = sub.Tensors(number).Quantization()
        if quant is not None:
            quantization += 4 * (quant.ScaleLength() + quant.MinLength() + quant.MaxLength())
            quantization += 8 * quant.ZeroPointLength()
    names = sum(len(n.encode("utf-8")) + 1 for n in raw_names if n)
    strings = [model.Description()] + [model.Subgraphs(i).Name() for i in range(model.SubgraphsLength())]
    strings += [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        strings.append(signature.SignatureKey())
        strings += [signature.Inputs(j).Name() for j in range(signature.InputsLength())]
        strings += [signature.Outputs(j).Name() for j in range(signature.OutputsLength())]
    metadata += sum(len(s) + 1 for s in strings if s)
    structure = len(data) - weights - quantization - names - metadata
    return {"weights": weights, "quantization": quantization, "names": names, "metadata": metadata,
            "structure": structure}
