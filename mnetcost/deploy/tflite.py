"""A model to an int8 TensorFlow Lite file, run in the TensorFlow Lite interpreter and in TensorFlow Lite Micro.

**The Keras model** (:func:`keras_model`) is built by walking ``network.layers``, the same resolved layers
the PyTorch model and the calculator read (no second architecture definition), with the PyTorch
weights copied in NHWC layouts and BatchNorm folded into each conv's bias (the fold the ONNX export uses):

* ``conv``/``pw``: ``Conv2D`` (kernel ``(out, in, kh, kw)`` -> ``(kh, kw, in, out)``), the layer's
  activation (relu or relu6) fused;
* ``dw``: ``DepthwiseConv2D`` with ``depth_multiplier = δ`` (output channel ``c δ + m`` reads input
  channel ``c`` in both frameworks: ``(c δ + m, 1, kh, kw)`` -> ``(kh, kw, c, m)``);
* ``maxpool``: ``MaxPooling2D``; every conv and pool uses TF 'same' padding, which is what the resolver
  computed (checked per layer: :func:`mnetcost.calculator.tflite_model.lower` refuses anything else);
* ``fmp``: its fixed evaluation draw (:func:`mnetcost.deploy.export.eval_copy`) as two ``tf.gather`` of
  constant int32 window positions (rows, then columns; ``K`` candidates per window) and a ``K x K``
  'valid' max pool with stride ``K``: builtins TFLite Micro runs (``GATHER``, ``MAX_POOL_2D``);
* ``avgpool``: ``GlobalAveragePooling2D`` (``MEAN``; ``keepdims`` in a squeeze-excite); ``fc``: ``Dense``
  (after ``Flatten`` when the input is not flat, the weight's columns reordered from PyTorch's C-H-W to
  Keras's H-W-C); a 1x1 conv on the pooled vector (MobileNetV3's head): ``Dense``;
* activations: relu, relu6, ``hard_swish`` and ``hard_sigmoid`` (PyTorch's ``Hardswish``/``Hardsigmoid``:
  ``x * relu6(x + 3) / 6`` and ``relu6(x + 3) / 6``), as the layer's own;
* ``add``: ``Add`` of the projection and the block's input; ``scale``: ``Multiply`` of the feature map and
  the squeeze-excite's gate.

**The conversion** (:func:`convert`) is ``tf.lite.TFLiteConverter.from_keras_model`` with
``Optimize.DEFAULT``, a representative dataset (normalised training images), ``TFLITE_BUILTINS_INT8``
and int8 input and output: full-integer, per-channel int8 weights, int32 biases. Without calibration
images it converts in float32 (the check of the graph against PyTorch). :func:`canonical` then renames
the converter's tensors after the layers, orders them, puts back a zero bias the converter dropped and
writes the file with the FlatBuffers object API (the layout :mod:`mnetcost.calculator.tflite_model`
predicts byte for byte); it refuses a converted graph whose operators or shapes differ from the
calculator's lowering.

TensorFlow, Keras and ``tflite-micro`` come from the ``[tflite]`` extra and are imported only here.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from mnetcost.calculator import tflite_model as TM
from mnetcost.errors import MnetcostError

EXTRA = "tflite"
MODULES = ("tensorflow", "keras", "tflite_micro")


class TfliteError(MnetcostError):
    """A model that cannot be exported to TensorFlow Lite as asked (exit 2)."""


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ and Python logging off the terminal (set before importing it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def versions() -> dict:
    import keras
    import tensorflow as tf
    import tflite_micro

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tflite_micro": tflite_micro.__version__}


# --- PyTorch weights in TensorFlow layouts ------------------------------------------------------------
def conv_weights(block) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of a conv block of :func:`mnetcost.deploy.export.eval_copy`'s model, whose
    BatchNorm :func:`mnetcost.nn.models.fold_batchnorm` has already folded into the conv (the one
    fold ONNX and TensorFlow Lite exports share)."""
    from torch import nn

    conv = block.conv
    bn = getattr(block, "bn", None)
    if bn is not None and not isinstance(bn, nn.Identity):
        raise TfliteError(f"a BatchNorm without running statistics cannot be folded into {type(conv).__name__}")
    weight = conv.weight.detach().float().numpy()
    bias = conv.bias.detach().float().numpy() if conv.bias is not None else np.zeros(weight.shape[0], np.float32)
    return weight, bias


def _fmp_tables(module) -> tuple[np.ndarray, np.ndarray]:
    """The (out x K) window positions of a :class:`mnetcost.deploy.export.FixedDrawFMP` (one index
    vector per candidate), as int32 (TFLM's GATHER takes int32 positions, not int64)."""
    rows = np.stack([getattr(module, f"rows_{j}").numpy() for j in range(module.k_h)], axis=1)
    cols = np.stack([getattr(module, f"cols_{j}").numpy() for j in range(module.k_w)], axis=1)
    return rows.astype(np.int32), cols.astype(np.int32)


def keras_model(model):
    """The Keras model of ``model`` (a ``build_model`` model; eval semantics) on NHWC inputs."""
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    from mnetcost.deploy.export import ExportError, eval_copy

    network = getattr(model, "network", None)
    if network is None:
        raise TfliteError("the TensorFlow Lite export needs a model built by mnetcost (build_model)")
    try:
        exportable = eval_copy(model)
    except ExportError as exc:
        raise TfliteError(str(exc).replace("ONNX", "TensorFlow Lite")) from None
    TM.lower(network)  # refuses what has no lowering (padding, activations, layer kinds) before any work
    _check_activations(exportable, network)
    height, width = network.resolution
    x = inputs = keras.Input((height, width, network.spec.in_channels), batch_size=1, name=TM.INPUT_NAME)
    flat = TM.flat_layers(network.layers)
    written = {TM.IMAGE: x}  # layer name -> its Keras output
    for layer in network.layers:
        module = getattr(exportable, layer.name)
        x = written[layer.inputs[0]]
        if layer.kind in ("conv", "pw", "dw"):
            weight, bias = conv_weights(module)
            act = KERAS_ACTIVATIONS[layer.activation or ""]
            if layer.kind == "dw":
                kernel = weight.reshape(layer.in_c, layer.delta, layer.kernel, layer.kernel).transpose(2, 3, 0, 1)
                keras_layer = keras.layers.DepthwiseConv2D(layer.kernel, layer.stride, padding="same",
                                                           depth_multiplier=layer.delta, activation=act,
                                                           name=layer.name)
            elif layer.name in flat:  # a 1x1 conv on the pooled vector (lower's FULLY_CONNECTED)
                kernel = weight.reshape(layer.out_c, layer.in_c).T
                keras_layer = keras.layers.Dense(layer.out_c, activation=act, name=layer.name)
            else:
                kernel = weight.transpose(2, 3, 1, 0)
                keras_layer = keras.layers.Conv2D(layer.out_c, layer.kernel, layer.stride, padding="same",
                                                  activation=act, name=layer.name)
            x = keras_layer(x)
            keras_layer.set_weights([kernel, bias])
        elif layer.kind == "maxpool":
            x = keras.layers.MaxPooling2D(layer.kernel, layer.stride, padding="same", name=layer.name)(x)
        elif layer.kind == "fmp":
            rows, cols = _fmp_tables(module)
            x = keras.layers.Lambda(_fmp_function(tf, rows, cols), name=layer.name)(x)
        elif layer.kind == "avgpool":
            x = keras.layers.GlobalAveragePooling2D(keepdims=layer.name not in flat, name=layer.name)(x)
        elif layer.kind == "fc":
            weight = module.weight.detach().numpy()
            if len(x.shape) != 2:  # PyTorch flattens C, H, W; Keras flattens H, W, C
                x = keras.layers.Flatten(name=f"{layer.name}_flatten")(x)
                weight = weight.reshape(layer.out_c, layer.in_c, layer.in_h, layer.in_w).transpose(0, 2, 3, 1)
                weight = weight.reshape(layer.out_c, -1)
            keras_layer = keras.layers.Dense(layer.out_c, name=layer.name)
            x = keras_layer(x)
            keras_layer.set_weights([weight.T, module.bias.detach().numpy()])
        elif layer.kind == "add":  # the residual: the tensors in the layer's order (the file's ADD inputs)
            x = keras.layers.Add(name=layer.name)([written[source] for source in layer.inputs])
        elif layer.kind == "scale":  # squeeze-excite: the feature map times the (1, 1, 1, C) gate
            x = keras.layers.Multiply(name=layer.name)([written[source] for source in layer.inputs])
        else:
            raise TfliteError(f"layer {layer.name}: no Keras layer for layer kind {layer.kind!r}")
        written[layer.name] = x
    return keras.Model(inputs, x, name="mnetcost")


# The resolved layers' activations as Keras names them (the same functions as PyTorch's: hard-swish
# x * relu6(x + 3) / 6, hard-sigmoid relu6(x + 3) / 6).
KERAS_ACTIVATIONS = {"": None, "relu": "relu", "relu6": "relu6", "hardswish": "hard_swish",
                     "hardsigmoid": "hard_sigmoid"}


def _fmp_function(tf, rows: np.ndarray, cols: np.ndarray):
    (out_h, k_h), (out_w, k_w) = rows.shape, cols.shape
    row_index = tf.constant(rows.reshape(-1))
    col_index = tf.constant(cols.reshape(-1))

    def fmp(t):
        t = tf.gather(t, row_index, axis=1)
        t = tf.gather(t, col_index, axis=2)
        return tf.nn.max_pool2d(t, (k_h, k_w), (k_h, k_w), "VALID")

    return fmp


def _check_activations(model, network) -> None:
    """Each conv block's activation module is the one its layer names (a model built with another
    activation than its spec's, build_from_network(activation=...), is refused)."""
    from torch import nn

    modules = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid}
    for layer in network.layers:
        if layer.kind not in ("conv", "pw", "dw"):
            continue
        block = getattr(model, layer.name)
        found = [type(m) for m in block.children() if isinstance(m, tuple(modules.values()))]
        wanted = [modules[layer.activation]] if layer.activation in modules else []
        if found != wanted:
            raise TfliteError(f"layer {layer.name}: the model applies {found[0].__name__ if found else 'no'} "
                              f"activation, its resolved layer says {layer.activation or 'none'}")


def keras_outputs(keras_model, x_nhwc: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(keras_model(x_nhwc[i:i + 1], training=False)) for i in range(len(x_nhwc))])


# --- conversion ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def silenced():
    """Run TensorFlow quietly: its C++ code writes to file descriptors 1 and 2 directly (the converter's
    ``fully_quantize: ...`` line, absl warnings, the XNNPACK notice), so the descriptors themselves
    point at a temporary file meanwhile; Python's own streams (Keras's "Saved artifact ..."), warnings
    and logging are muted too."""
    import io
    import logging
    import tempfile
    import warnings

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    logger = logging.getLogger("tensorflow")
    level = logger.level
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            logger.setLevel(level)


def convert(keras_model, calibration: np.ndarray | None = None) -> bytes:
    """The converter's file for ``keras_model``: full-integer int8 calibrated on ``calibration`` (NHWC
    float32, normalised), or float32 without it."""
    quiet_tensorflow()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if calibration is not None:
        if len(calibration) == 0:
            raise TfliteError("int8 calibration needs at least one image")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with silenced():
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TfliteError(f"the TensorFlow Lite converter failed ({type(exc).__name__}: {first})") from None


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def read_model(data: bytes):
    """A ``ModelT`` (the FlatBuffers object API of the TFLite schema) of a file's bytes."""
    fb = _schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def write_model(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def builtin_name(model, op) -> str:
    fb = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)
    return {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}.get(number, str(number))


def canonical(data: bytes, network, identity: bytes | None = None) -> bytes:
    """The converter's int8 file laid out as the calculator predicts (module docstring): tensors named
    and ordered after the layers, one buffer each, a zero bias put back where the converter dropped
    one, no CONVERSION_METADATA; with ``identity`` (what the model is and where its weights came from,
    as :func:`identity_bytes` writes it), a ``mnetcost`` metadata buffer holding it (:func:`identity_of`).
    Refuses (:class:`TfliteError`) a graph whose operators or tensor shapes are not the calculator's
    lowering."""
    fb = _schema()
    graph = TM.lower(network)
    source = read_model(data)
    if len(source.subgraphs) != 1:
        raise TfliteError(f"the converter made {len(source.subgraphs)} subgraphs, expected 1")
    sub = source.subgraphs[0]
    got = [builtin_name(source, op) for op in sub.operators]
    want = [op.builtin for op in graph.ops]
    if got != want:
        raise TfliteError(f"the converter's operators differ from the calculator's lowering: {got} vs {want}")
    old_of: dict[str, int] = {}
    source_op_of: dict[str, object] = {}
    for op, spec in zip(sub.operators, graph.ops):
        for position, name in enumerate((*spec.inputs, spec.output)):
            index = int(op.outputs[0]) if position == len(spec.inputs) else \
                (int(op.inputs[position]) if position < len(op.inputs) else -1)
            if name in old_of and old_of[name] != index:
                raise TfliteError(f"tensor {name}: the converter's graph does not follow the lowering")
            old_of[name] = index
        source_op_of[spec.output] = op
    tensors, buffers = [], [fb.BufferT()]
    for number, spec in enumerate(graph.tensors):
        old = old_of.get(spec.name, -1)
        tensor = fb.TensorT()
        tensor.name = spec.name.encode()
        tensor.shape = np.asarray(spec.shape, dtype=np.int32)
        tensor.type = spec.dtype
        tensor.buffer = number + 1
        tensor.hasRank = True
        buffer = fb.BufferT()
        if old >= 0:
            source_tensor = sub.tensors[old]
            if tuple(int(v) for v in source_tensor.shape) != spec.shape or source_tensor.type != spec.dtype:
                raise TfliteError(f"tensor {spec.name}: the converter made {list(source_tensor.shape)} of type "
                                  f"{source_tensor.type}, the lowering {list(spec.shape)} of type {spec.dtype}")
            tensor.quantization = _quantization(fb, source_tensor.quantization, spec)
            stored = source.buffers[source_tensor.buffer].data
            if spec.constant:
                if stored is None or len(stored) != spec.nbytes:
                    raise TfliteError(f"tensor {spec.name}: {0 if stored is None else len(stored)} bytes in the "
                                      f"converter's file, {spec.nbytes} expected")
                buffer.data = np.asarray(stored, dtype=np.uint8)
        elif spec.name.endswith("/bias"):  # a zero bias the converter dropped: put it back
            tensor.quantization = _zero_bias_quantization(fb, sub, graph, spec, old_of)
            buffer.data = np.zeros(spec.nbytes, dtype=np.uint8)
        else:
            raise TfliteError(f"tensor {spec.name}: missing from the converter's graph")
        tensors.append(tensor)
        buffers.append(buffer)
    index = {spec.name: number for number, spec in enumerate(graph.tensors)}
    codes = TM.operator_codes(graph)
    versions = {builtin_name(source, op): source.operatorCodes[op.opcodeIndex].version for op in sub.operators}
    operator_codes = []
    for builtin in codes:
        code = fb.OperatorCodeT()
        number = TM.BUILTINS[builtin][0]
        code.builtinCode, code.deprecatedBuiltinCode, code.version = number, min(number, 127), versions[builtin]
        operator_codes.append(code)
    operators = []
    for spec in graph.ops:
        old = source_op_of[spec.output]
        op = fb.OperatorT()
        op.opcodeIndex = codes.index(spec.builtin)
        op.inputs = np.asarray([index[name] for name in spec.inputs], dtype=np.int32)
        op.outputs = np.asarray([index[spec.output]], dtype=np.int32)
        op.builtinOptionsType, op.builtinOptions = old.builtinOptionsType, old.builtinOptions
        operators.append(op)
    subgraph = fb.SubGraphT()
    subgraph.tensors, subgraph.operators, subgraph.name = tensors, operators, TM.SUBGRAPH_NAME.encode()
    subgraph.inputs = np.asarray([index[graph.input]], dtype=np.int32)
    subgraph.outputs = np.asarray([index[graph.output]], dtype=np.int32)
    runtime = [m for m in source.metadata or [] if m.name == b"min_runtime_version"]
    version_buffer = fb.BufferT()
    version_buffer.data = np.asarray(source.buffers[runtime[0].buffer].data, dtype=np.uint8) if runtime \
        else np.zeros(TM.MIN_RUNTIME_VERSION_BYTES, dtype=np.uint8)
    buffers.append(version_buffer)
    metadata = fb.MetadataT()
    metadata.name, metadata.buffer = b"min_runtime_version", len(buffers) - 1
    entries = [metadata]
    if identity is not None:
        identity_buffer = fb.BufferT()
        identity_buffer.data = np.frombuffer(identity, dtype=np.uint8)
        buffers.append(identity_buffer)
        entry = fb.MetadataT()
        entry.name, entry.buffer = TM.IDENTITY_METADATA.encode(), len(buffers) - 1
        entries.append(entry)
    signature = fb.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = TM.SIGNATURE_KEY.encode(), 0
    signature.inputs = [_tensor_map(fb, TM.INPUT_NAME, index[graph.input])]
    signature.outputs = [_tensor_map(fb, TM.OUTPUT_NAME, index[graph.output])]
    model = fb.ModelT()
    model.version, model.description = TM.MODEL_VERSION, graph.description.encode()
    model.operatorCodes, model.subgraphs, model.buffers = operator_codes, [subgraph], buffers
    model.metadata, model.signatureDefs = entries, [signature]
    return write_model(model)


def identity_bytes(identity: dict) -> bytes:
    """The ``mnetcost`` metadata buffer: ``identity`` as compact JSON with sorted keys (ASCII)."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":")).encode("ascii")


def identity_of(data: bytes) -> dict:
    """The ``mnetcost`` metadata of a file (:func:`canonical`), or {} for a file without it."""
    model = read_model(data)
    for entry in model.metadata or []:
        if entry.name == TM.IDENTITY_METADATA.encode():
            try:
                stored = model.buffers[entry.buffer].data
                found = json.loads(bytes(np.asarray(stored if stored is not None else [], dtype=np.uint8)))
            except (IndexError, ValueError):  # a damaged entry ties the file to nothing
                return {}
            return found if isinstance(found, dict) else {}
    return {}


def _tensor_map(fb, name: str, index: int):
    entry = fb.TensorMapT()
    entry.name, entry.tensorIndex = name.encode(), index
    return entry


def _quantization(fb, source, spec):
    params = fb.QuantizationParametersT()
    if spec.quantization == "none":
        return params  # the converter's empty table for int32 tensors
    if source is None or source.scale is None or source.zeroPoint is None:
        raise TfliteError(f"tensor {spec.name}: not quantized by the converter")
    count = spec.channels if spec.quantization == "channel" else 1
    if len(source.scale) != count or len(source.zeroPoint) != count:
        raise TfliteError(f"tensor {spec.name}: {len(source.scale)} quantization scales, {count} expected")
    params.scale = np.asarray(source.scale, dtype=np.float32)
    params.zeroPoint = np.asarray(source.zeroPoint, dtype=np.int64)
    params.quantizedDimension = int(source.quantizedDimension)
    if params.quantizedDimension != spec.axis:
        raise TfliteError(f"tensor {spec.name}: quantized along axis {params.quantizedDimension}, "
                          f"{spec.axis} expected")
    return params


def _zero_bias_quantization(fb, sub, graph, spec, old_of):
    """A dropped bias's scales: input scale x each weight scale (TFLite's int32 bias rule)."""
    layer = spec.name[: -len("/bias")]
    op = next(o for o in graph.ops if o.layer == layer and f"{layer}/bias" in o.inputs)
    input_q = sub.tensors[old_of[op.inputs[0]]].quantization
    weight_q = sub.tensors[old_of[f"{layer}/weights"]].quantization
    params = fb.QuantizationParametersT()
    params.scale = (np.float32(input_q.scale[0]) * np.asarray(weight_q.scale, dtype=np.float32)).astype(np.float32)
    params.zeroPoint = np.zeros(spec.channels, dtype=np.int64)
    params.quantizedDimension = 0
    return params


# --- running the file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantization:
    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x / self.scale) + self.zero_point, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * np.float32(self.scale)


def io_quantization(data: bytes) -> tuple[Quantization | None, Quantization | None]:
    """The input's and output's int8 quantization (None for a float file)."""
    model = read_model(data)
    sub = model.subgraphs[0]
    found = []
    for index in (sub.inputs[0], sub.outputs[0]):
        tensor = sub.tensors[index]
        q = tensor.quantization
        if tensor.type == TM.INT8 and q is not None and q.scale is not None:
            found.append(Quantization(float(q.scale[0]), int(q.zeroPoint[0])))
        else:
            found.append(None)
    return found[0], found[1]


def tflite_interpreter(data: bytes, threads: int | None = None, reference: bool = False):
    """TensorFlow Lite's interpreter: its default optimized kernels (XNNPACK; what an application gets),
    or with ``reference`` its reference kernels, whose int8 results are TensorFlow Lite Micro's but for a
    rare last rounding step (XNNPACK's requantization rounds otherwise and differs by more)."""
    quiet_tensorflow()
    import tensorflow as tf

    resolver = tf.lite.experimental.OpResolverType
    with silenced():
        interpreter = tf.lite.Interpreter(model_content=data, num_threads=threads or 1,
                                          experimental_op_resolver_type=resolver.BUILTIN_REF if reference
                                          else resolver.AUTO)
        interpreter.allocate_tensors()
        interpreter.invoke()  # the first invoke prints the XNNPACK notice
    return interpreter


def run_tflite(data: bytes, x_nhwc: np.ndarray, threads: int | None = None, interpreter=None) -> np.ndarray:
    """Float logits of the file for a float NHWC batch, one image per invoke (the file has batch 1);
    an int8 file quantizes the input and dequantizes the output with the file's own parameters."""
    interpreter = interpreter or tflite_interpreter(data, threads)
    q_in, q_out = io_quantization(data)
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    results = []
    for image in x_nhwc:
        x = image[None]
        interpreter.set_tensor(inp, q_in.quantize(x) if q_in else x.astype(np.float32))
        interpreter.invoke()
        y = interpreter.get_tensor(out)
        results.append(q_out.dequantize(y) if q_out else y.astype(np.float32))
    return np.concatenate(results)


def tflm_interpreter(data: bytes, arena_size: int):
    import tflite_micro

    return tflite_micro.runtime.Interpreter.from_bytes(data, arena_size=int(arena_size))


def run_tflm(data: bytes, x_nhwc: np.ndarray, arena_size: int, interpreter=None) -> np.ndarray:
    """As :func:`run_tflite`, in TensorFlow Lite Micro's interpreter."""
    interpreter = interpreter or tflm_interpreter(data, arena_size)
    q_in, q_out = io_quantization(data)
    results = []
    for image in x_nhwc:
        x = image[None]
        interpreter.set_input(q_in.quantize(x) if q_in else x.astype(np.float32), 0)
        interpreter.invoke()
        y = interpreter.get_output(0)
        results.append(q_out.dequantize(y) if q_out else np.asarray(y, dtype=np.float32))
    return np.concatenate(results)


def nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))


def require(command: str) -> None:
    """One line and exit 2 without the ``[tflite]`` extra; TensorFlow's import (slow, and noisy on
    file descriptor 2) happens here, silenced."""
    from mnetcost.cli.options import require_extra

    quiet_tensorflow()
    with silenced():
        require_extra(command, ("torch", *MODULES), EXTRA)


# --- the export, checked -------------------------------------------------------------------------------
class ToleranceError(Exception):
    """The float TensorFlow Lite path differs from PyTorch beyond the tolerance (exit 1, nothing written)."""

    def __init__(self, what: str, check):
        self.check = check
        super().__init__(f"{what} differs from PyTorch by {check.max_abs_diff:.3g} (max |logit| "
                         f"{check.max_abs_reference:.3g}), beyond the tolerance {check.tolerance:g} x "
                         f"max(1, max |logit|) = {check.allowed:.3g}")


def op_counts(data: bytes) -> dict[str, int]:
    model = read_model(data)
    counts: dict[str, int] = {}
    for op in model.subgraphs[0].operators:
        name = builtin_name(model, op)
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def export_source(source, *, calibration_images: int = 512, tolerance: float = 1e-4, check_images: int = 64,
                  threads: int | None = None):
    """Export ``source`` (:class:`mnetcost.deploy.pipeline.Source`) to the int8 file and check it:
    the Keras model and the float32 conversion against PyTorch (:class:`ToleranceError` beyond
    ``tolerance``), the int8 file in the TensorFlow Lite interpreter against both. Returns a
    :class:`mnetcost.deploy.pipeline.Exported` (``proto`` None) with the file's bytes and its record."""
    import time

    from mnetcost.calculator import tflm
    from mnetcost.deploy import evaluate as EV
    from mnetcost.deploy import export as EX
    from mnetcost.deploy.pipeline import Exported, check_inputs

    if source.train_images is None or source.normalization is None:
        raise TfliteError("the int8 TensorFlow Lite file needs calibration images: pass --dataset (or export a --run)")
    network = source.network
    began = time.perf_counter()
    with silenced():
        model = keras_model(source.model)
    x, labels, inputs = check_inputs(source, check_images)
    x_nhwc = nhwc(x)
    reference = EX.torch_reference(source.model, x)
    with silenced():
        keras_check = EX.compare(reference, keras_outputs(model, x_nhwc), tolerance)
    if not keras_check.passed:
        raise ToleranceError("the Keras model", keras_check)
    float_file = convert(model)
    float_check = EX.compare(reference, run_tflite(float_file, x_nhwc, threads), tolerance)
    if not float_check.passed:
        raise ToleranceError("the float32 TensorFlow Lite file", float_check)
    calibration = EV.calibration_images(source.train_images, calibration_images)
    quantize_began = time.perf_counter()
    raw = convert(model, nhwc(source.normalization.apply(calibration)))
    identity = identity_bytes(source.metadata)
    data = canonical(raw, network, identity)
    quantize_s = time.perf_counter() - quantize_began
    int8_out = run_tflite(data, x_nhwc, threads)
    against_torch = EX.compare(reference, int8_out, tolerance)
    accuracy = None
    if labels is not None:  # what the int8 file costs in accuracy on the check images
        torch_correct, int8_correct = (int(np.sum(out.argmax(1) == labels)) for out in (reference, int8_out))
        accuracy = {"images": int(len(labels)), "torch": torch_correct / len(labels),
                    "int8": int8_correct / len(labels),
                    "difference_points": 100 * (int8_correct - torch_correct) / len(labels)}
    graph = TM.lower(network)
    layout = TM.file_layout(graph, len(identity))
    arena = tflm.arena(network, graph)
    q_in, q_out = io_quantization(data)
    record = {
        "format": "tflite", "dtype": "int8", **versions(),
        "converter": "tf.lite.TFLiteConverter.from_keras_model",
        "check": {"keras": keras_check.as_dict(), "tflite_fp32": float_check.as_dict(), "inputs": inputs},
        "quantization": {
            "method": "TFLiteConverter, Optimize.DEFAULT, representative dataset, TFLITE_BUILTINS_INT8",
            "weights": "int8, per channel, symmetric", "activations": "int8, per tensor, asymmetric",
            "biases": "int32, per channel", "input": {"scale": q_in.scale, "zero_point": q_in.zero_point},
            "output": {"scale": q_out.scale, "zero_point": q_out.zero_point},
            "calibration_images": int(len(calibration)), "calibration_dataset": source.calibration_source,
            "calibration": (SYNTHETIC_NOTE if source.calibration_source == SYNTHETIC
                            else "training images drawn by a seeded generator (seed 0)"),
            "seconds": round(quantize_s, 2),
            "max_abs_diff_vs_torch": against_torch.max_abs_diff,
            "max_abs_logit_torch": against_torch.max_abs_reference,
            "top1_agreement_vs_torch": against_torch.top1_agreement,
            "check_accuracy": accuracy},
        "ops": op_counts(data),
        "operators": len(graph.ops), "tensors": len(graph.tensors),
        "converter_bytes": len(raw),
        "predicted": {"flash_bytes": layout.bytes, "file_parts": layout.parts, **arena.as_dict()},
        "metadata": source.metadata,
        "export_seconds": round(time.perf_counter() - began, 2),
        "bytes": len(data),
        "identity_bytes": len(identity),  # the mnetcost metadata buffer
    }
    return Exported(proto=None, data=data, record=record)


# --- TensorFlow Lite Micro, in child processes ------------------------------------------------------
WORKER = "mnetcost.deploy.tflm_worker"


def _signal_name(code: int) -> str:
    import signal

    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _child_env() -> dict:
    """The environment of a worker: this process's, with this mnetcost first on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH"))
                                                        if p)}


def _worker(args: list, timeout: float = 600):
    import subprocess

    try:
        return subprocess.run([sys.executable, "-m", WORKER, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=_child_env())
    except subprocess.TimeoutExpired:
        raise TfliteError(f"TensorFlow Lite Micro did not finish within {timeout:g} s") from None


def _package_root() -> str:
    import mnetcost

    return os.path.dirname(os.path.dirname(os.path.abspath(mnetcost.__file__)))


def _failure(result) -> str:
    if result.returncode < 0:
        return f"TensorFlow Lite Micro crashed ({_signal_name(result.returncode)})"
    lines = [line for line in (result.stderr or "").strip().splitlines() if line.strip()]
    return "TensorFlow Lite Micro refused the model" + (f" ({lines[-1][:200]})" if lines else "")


def tflm_allocations(path, arena_size: int) -> dict:
    """The RecordingMicroAllocator's records after one invoke in an arena of ``arena_size`` bytes."""
    import json

    result = _worker(["allocations", path, int(arena_size)])
    if result.returncode != 0:
        raise TfliteError(f"{_failure(result)} with a {int(arena_size):,} B arena")
    return json.loads(result.stdout)


def tflm_accepts(path, arena_size: int) -> bool:
    """Whether the interpreter allocates and invokes the model in ``arena_size`` bytes (a crash counts
    as no)."""
    return _worker(["accepts", path, int(arena_size)]).returncode == 0


def tflm_minimum_arena(path, low: int, high: int) -> int:
    """The smallest arena the interpreter accepts, between ``low`` (refused) and ``high`` (accepted),
    by bisection, one child process per probe."""
    while high - low > 1:
        middle = (low + high) // 2
        if tflm_accepts(path, middle):
            high = middle
        else:
            low = middle
    return high


def tflm_outputs(path, images_int8: np.ndarray, arena_size: int | None = None, workers: int = 1) -> np.ndarray:
    """The int8 outputs of TFLM for int8 NHWC images, in ``workers`` child processes at once."""
    import tempfile

    if arena_size is None:
        arena_size = 10 * os.path.getsize(path)  # the tflite_micro package's own default
    chunks = [chunk for chunk in np.array_split(images_int8, max(1, min(workers, len(images_int8)))) if len(chunk)]
    with tempfile.TemporaryDirectory(prefix="mnetcost-tflm-") as folder:
        import subprocess

        running = []
        for number, chunk in enumerate(chunks):
            inputs, outputs = os.path.join(folder, f"in{number}.npy"), os.path.join(folder, f"out{number}.npy")
            np.save(inputs, chunk)
            running.append((subprocess.Popen([sys.executable, "-m", WORKER, "predict", str(path), str(arena_size),
                                              inputs, outputs], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True, env=_child_env()), outputs))
        results = []
        for process, outputs in running:
            _, stderr = process.communicate()
            if process.returncode != 0:
                raise TfliteError(_failure(subprocess.CompletedProcess([], process.returncode, "", stderr)))
            results.append(np.load(outputs))
    return np.concatenate(results) if results else np.zeros((0, 0), dtype=np.int8)


def _int8_outputs(interpreter, images_int8: np.ndarray) -> np.ndarray:
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    results = []
    for image in images_int8:
        interpreter.set_tensor(inp, image[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out).reshape(-1))
    return np.stack(results)


def accuracy(data: bytes, path, runtime: str, images: np.ndarray, labels: np.ndarray, normalization,
             threads: int | None = None, batch: int = 1000):
    """Test accuracy of the int8 file in ``runtime`` (``tflite`` or ``tflm``): images normalised as
    training did, quantized with the file's input scale and zero point; the class is the argmax of the
    int8 output (the scale is positive, so it is the argmax of the dequantized logits)."""
    import time

    from mnetcost.deploy.evaluate import Accuracy

    q_in, _ = io_quantization(data)
    began = time.perf_counter()
    quantized = np.concatenate([q_in.quantize(nhwc(normalization.apply(images[start:start + batch])))
                                for start in range(0, len(images), batch)]) if len(images) else \
        np.zeros((0,), dtype=np.int8)
    if runtime == "tflite":
        outputs = _int8_outputs(tflite_interpreter(data, threads), quantized)
        name = "tflite"
    elif runtime == "tflm":
        outputs = tflm_outputs(path, quantized, workers=threads or os.cpu_count() or 1)
        name = "tflm"
    else:
        raise TfliteError(f"unknown TensorFlow Lite runtime {runtime!r}")
    correct = int(np.sum(outputs.argmax(1) == labels)) if len(labels) else 0
    return Accuracy(name, "int8", correct, int(len(labels)), time.perf_counter() - began)


# --- predicted against measured --------------------------------------------------------------------
SYNTHETIC = "synthetic images"  # the calibration source of a model exported without a dataset
SYNTHETIC_NOTE = ("random uint8 images (seed 0), no dataset given: the arena and the file's size do not depend on "
                  "calibration, its accuracy does")


def synthetic_source(network, images: int = 16, seed: int = 0):
    """A model of ``network`` whose BatchNorm statistics come from standard-normal images, with random
    calibration images (:func:`synthetic_calibration`). The arena and the file do not depend on the
    weights' values."""
    import torch

    from mnetcost.deploy.pipeline import Source
    from mnetcost.nn.models import build_from_network

    torch.manual_seed(seed)
    model = build_from_network(network)
    metadata = {"variant": network.variant, "alpha": network.alpha, "delta": network.delta,
                "classes": network.classes, "resolution": list(network.resolution), "weights": "initial (seed 0)"}
    return synthetic_calibration(Source(model=model.eval(), metadata=metadata), images, seed)


def synthetic_calibration(source, images: int = 16, seed: int = 0):
    """``source`` (a fresh model, no dataset) made ready for int8: BatchNorm statistics measured on
    standard-normal images (with initial statistics the activations shrink towards zero through the
    layers and the int8 calibration degenerates) and ``images`` random calibration images whose
    normalisation gives standard-normal-like inputs. Returns ``source``, changed in place."""
    import torch

    from mnetcost.deploy.evaluate import Normalization

    model, network = source.model, source.network
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the batches below
    generator = torch.Generator().manual_seed(seed)
    shape = (images, network.spec.in_channels, *network.resolution)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(shape, generator=generator))
    model.eval()
    rng = np.random.default_rng(seed)
    # uint8 "images" whose normalisation (mean 127.5, std 1/255 scale) gives standard-normal-like inputs
    source.train_images = rng.integers(0, 256, size=(images, *shape[1:]), dtype=np.uint8)
    source.normalization = Normalization(np.full(shape[1], 0.5), np.full(shape[1], 0.25))
    source.calibration_source = SYNTHETIC
    source.metadata = {**source.metadata, "weights": f"{source.metadata.get('weights', 'initial (seed 0)')}, "
                                                     "BatchNorm statistics from standard-normal images",
                       "calibration": SYNTHETIC}
    return source


def file_parts(data: bytes) -> dict[str, int]:
    """What a file's bytes are, read back with the object API: weights and biases (constant buffers),
    quantization scales and zero points, tensor names, metadata (description, min_runtime_version,
    subgraph and signature names) and the rest (FlatBuffers structure and padding)."""
    model = read_model(data)
    sub = model.subgraphs[0]
    constant = {t.buffer for t in sub.tensors}
    weights = sum(len(b.data) for number, b in enumerate(model.buffers)
                  if b.data is not None and number in constant)
    quantization = sum(4 * len(t.quantization.scale) + 8 * len(t.quantization.zeroPoint) for t in sub.tensors
                       if t.quantization is not None and t.quantization.scale is not None)
    names = sum(len(t.name) + 1 for t in sub.tensors)
    metadata_buffers = {m.buffer for m in model.metadata or []}
    metadata = (len(model.description or b"") + 1 + len(sub.name or b"") + 1
                + sum(len(m.name) + 1 for m in model.metadata or [])
                + sum(len(b.data) for number, b in enumerate(model.buffers) if number in metadata_buffers
                      and b.data is not None)
                + sum(len(s.signatureKey) + 1 + sum(len(m.name) + 1 for m in (*s.inputs, *s.outputs))
                      for s in model.signatureDefs or []))
    known = weights + quantization + names + metadata
    return {"weights": weights, "quantization": quantization, "names": names, "metadata": metadata,
            "structure and padding": len(data) - known}


@dataclass
class Comparison:
    quantity: str
    predicted: int
    measured: int
    note: str = ""

    @property
    def agree(self) -> bool:
        return self.predicted == self.measured

    def as_dict(self) -> dict:
        return {"quantity": self.quantity, "predicted": self.predicted, "measured": self.measured,
                "difference": self.measured - self.predicted, "agree": self.agree, "note": self.note}


def crosscheck_tflm(network, folder, *, probe_minimum: bool = True, calibration_images: int = 16) -> dict:
    """Export ``network`` (a synthetic model, :func:`synthetic_source`) to the int8 file, load it in
    TensorFlow Lite Micro (child processes) and compare the calculator's file bytes, head, tail (by
    the interpreter's recorded categories) and minimum arena with the interpreter's."""
    from pathlib import Path

    from mnetcost.calculator import lifetimes, tflm

    source = synthetic_source(network, images=calibration_images)
    with silenced():
        model = keras_model(source.model)
    raw = convert(model, nhwc(source.normalization.apply(source.train_images)))
    data = canonical(raw, network)
    path = Path(folder) / "model.tflite"
    path.write_bytes(data)
    graph = TM.lower(network)
    layout = TM.file_layout(graph)
    arena = tflm.arena(network, graph)
    generous = lifetimes.align_up(2 * arena.total + 65_536, tflm.ARENA_ALIGNMENT)
    measured = tflm_allocations(path, generous)
    rows = [Comparison("file bytes", layout.bytes, len(data), f"the converter's own file: {len(raw):,} B")]
    got_parts = file_parts(data)
    for part in ("weights", "quantization", "names", "metadata"):
        rows.append(Comparison(f"  {part}", layout.parts[part], got_parts[part]))
    rows.append(Comparison("  structure and padding", layout.parts["structure"] + layout.parts["padding"],
                           got_parts["structure and padding"],
                           f"tables, vtables, offsets {layout.parts['structure']:,} B + alignment padding "
                           f"{layout.parts['padding']:,} B"))
    rows += arena_rows(arena, measured, path, generous, probe_minimum)
    return {"network": {"variant": network.variant, "alpha": network.alpha, "delta": network.delta,
                        "classes": network.classes, "resolution": list(network.resolution)},
            "tflm_version": tflm.TFLM_VERSION, **versions(), "converter": TM.CONVERTER,
            "operators": op_counts(data), "tensors": len(graph.tensors),
            "rows": [row.as_dict() for row in rows], "agree": all(row.agree for row in rows),
            "printed": measured.get("printed", "")}


def arena_rows(arena, measured: dict, path, generous: int, probe_minimum: bool = True) -> list:
    """The predicted arena (head, tail by the interpreter's recorded categories, total, smallest arena
    accepted) beside the interpreter's records for the file at ``path``."""
    from mnetcost.calculator import tflm

    records = measured["records"]
    rows = []
    rows.append(Comparison("arena head (activations)", arena.head, measured.get("head", -1),
                           f"{len(arena.head_tensors)} buffers placed by the greedy planner, 16-byte aligned"))
    rows.append(Comparison("arena tail (persistent)", arena.tail, measured.get("tail", -1)))
    for part in tflm.RECORDED:
        got = records.get(part, {}).get("used", 0)
        rows.append(Comparison(f"  {part}", arena.tail_parts[part], got))
    unrecorded = sum(arena.tail_parts[part] for part in tflm.UNRECORDED)
    recorded = sum(records.get(part, {}).get("used", 0) for part in tflm.RECORDED)
    rows.append(Comparison("  not recorded", unrecorded, measured.get("tail", -1) - recorded,
                           ", ".join(f"{part} {arena.tail_parts[part]:,} B" for part in tflm.UNRECORDED)))
    rows.append(Comparison("arena total", arena.total, measured.get("total", -1),
                           f"for an arena whose end is 16-byte aligned ({generous:,} B given)"))
    if probe_minimum:
        minimum = arena.minimum
        accepted, refused = tflm_accepts(path, minimum), not tflm_accepts(path, minimum - 1)
        if accepted and refused:
            measured_minimum = minimum
        else:  # find the real one
            measured_minimum = tflm_minimum_arena(path, 0 if accepted else minimum, minimum if accepted else generous)
        rows.append(Comparison("smallest arena accepted", minimum, measured_minimum,
                               "arena_size probed in child processes: the tail's gaps depend on where the arena "
                               "ends"))
    return rows


def crosscheck_file(path, *, probe_minimum: bool = True) -> dict:
    """A model file made elsewhere, as it is: the arena predicted from the file
    (:func:`mnetcost.calculator.tflm.graph_arena`) against TensorFlow Lite Micro's interpreter running it
    (child processes)."""
    from mnetcost.calculator import lifetimes, tflm
    from mnetcost.calculator.importers import tflite as IT

    found = IT.read(path)
    found.require_priced()
    arena = tflm.graph_arena(found.graph)
    generous = lifetimes.align_up(2 * arena.total + 65_536, tflm.ARENA_ALIGNMENT)
    measured = tflm_allocations(path, generous)
    rows = arena_rows(arena, measured, path, generous, probe_minimum)
    counts: dict[str, int] = {}
    for op in found.operators:
        counts[op.builtin] = counts.get(op.builtin, 0) + 1
    return {"file": str(path), "file_bytes": found.size, "tflm_build": tflm.DEFAULT_BUILD,
            "tflm_version": tflm.TFLM_VERSION, "operators": counts, "tensors": len(found.graph.tensors),
            "rows": [row.as_dict() for row in rows], "agree": all(row.agree for row in rows),
            "printed": measured.get("printed", "")}
