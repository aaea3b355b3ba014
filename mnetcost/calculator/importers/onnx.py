"""An ONNX file -> the calculator's resolved :class:`~mnetcost.calculator.resolver.Network`.

The file is read with the ``onnx`` package (the ``[deploy]`` extra; imported when a file is read, never at
import time) and its shapes inferred with ``onnx.shape_inference``; each node becomes one
:class:`~mnetcost.calculator.importers.nchw.Op` and :func:`mnetcost.calculator.importers.nchw.network` makes
the layers (one rule per operator kind, shared with the PyTorch importer). Weights are the initializers as
stored: a file exported in ``eval()`` has its BatchNorm folded into the conv (a conv with a bias), one
exported in training mode keeps ``BatchNormalization`` (the conv's ``bn``).

Supported: Conv (groups included), BatchNormalization after a conv, Gemm, MatMul (with an Add of a constant:
its bias), Relu, Clip(0, 6), HardSwish, HardSigmoid, Sigmoid, Tanh, LeakyRelu, Add, Mul, MaxPool,
AveragePool, GlobalAveragePool, ReduceMean over (2, 3), Flatten, Reshape, Squeeze, Unsqueeze, Concat, Pad,
Softmax, Identity, Dropout. Any other node is named in one line.
"""
from __future__ import annotations

import os

from mnetcost.calculator.importers.nchw import Op, network
from mnetcost.errors import ConfigError

SIMPLE = {"Relu": "relu", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Sigmoid": "sigmoid",
          "Tanh": "tanh", "LeakyRelu": "leaky_relu", "Add": "add", "Mul": "mul", "GlobalAveragePool": "globalavgpool",
          "Flatten": "flatten", "Reshape": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
          "Concat": "concat", "Pad": "pad", "Softmax": "softmax", "Identity": "identity", "Dropout": "identity",
          "BatchNormalization": "batchnorm"}


def read(path):
    """The resolved network of the ONNX file at ``path`` (module docstring)."""
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        from mnetcost.cli.options import install_hint

        raise ConfigError(f"reading an .onnx file needs the onnx package: {install_hint('deploy')}") from None
    path = str(path)
    name = os.path.basename(path)
    try:
        model = onnx.load(path)
        model = shape_inference.infer_shapes(model)
    except FileNotFoundError:
        raise ConfigError(f"cannot read model file {path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - a damaged protobuf raises DecodeError and others
        raise ConfigError(f"{name} is not a readable ONNX file ({type(exc).__name__})") from None
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    shapes = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise ConfigError(f"{name}: the file has {len(inputs)} inputs; files with one input are priced")
    readers: dict[str, list] = {}
    for node in graph.node:
        for tensor in node.input:
            readers.setdefault(tensor, []).append(node)
    bias_adds = {}  # an Add of a constant right after a MatMul: the linear layer's bias
    for node in graph.node:
        if node.op_type == "MatMul" and len(readers.get(node.output[0], [])) == 1:
            after = readers[node.output[0]][0]
            if after.op_type == "Add" and any(t in constants for t in after.input):
                bias_adds[after.name or after.output[0]] = node.output[0]
    ops: list[Op] = []
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        reads = tuple(t for t in node.input if t and t not in constants)
        first = reads[0] if reads else ""
        kind, extra = _kind(node, attrs, constants, bias_adds, readers)
        ops.append(Op(kind=kind, name=node.name or node.output[0], inputs=reads, output=node.output[0],
                      input_shape=shapes.get(first, ()), output_shape=shapes.get(node.output[0], ()), attrs=extra))
    output = graph.output[0].name if graph.output else ""
    return network(name, ops, inputs[0].name, shapes.get(inputs[0].name, ()), shapes.get(output, ()),
                   "an ONNX file")


def _kind(node, attrs, constants, bias_adds, readers):
    op = node.op_type
    if op == "Conv":
        weight = constants.get(node.input[1])
        if weight is None or weight.ndim != 4:
            return "Conv (weights not a constant 4-D tensor)", {}
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return "Conv (auto_pad)", {}
        pads = list(attrs.get("pads", [0, 0, 0, 0]))  # [top, left, bottom, right]
        strides = tuple(attrs.get("strides", [1, 1]))
        if tuple(attrs.get("dilations", [1, 1])) != (1, 1):
            return "Conv (dilated)", {}
        return "conv", {"weight": tuple(int(d) for d in weight.shape), "stride": strides,
                        "padding": (pads[0], pads[2], pads[1], pads[3]), "groups": int(attrs.get("group", 1)),
                        "bias": len(node.input) > 2 and bool(node.input[2])}
    if op in ("Gemm", "MatMul"):
        weight = constants.get(node.input[1])
        if weight is None or weight.ndim != 2:
            return f"{op} (weights not a constant matrix)", {}
        out_features, in_features = weight.shape if attrs.get("transB", 0) else weight.shape[::-1]
        bias = (op == "Gemm" and len(node.input) > 2 and bool(node.input[2])) or \
            (op == "MatMul" and any(bias_adds.get(a.name or a.output[0]) == node.output[0]
                                    for a in readers.get(node.output[0], [])))
        return "linear", {"in_features": int(in_features), "out_features": int(out_features), "bias": bias}
    if op == "Add" and (node.name or node.output[0]) in bias_adds:
        return "identity", {}
    if op == "Clip":
        low, high = (constants.get(t) for t in (list(node.input) + ["", ""])[1:3])
        low = attrs.get("min", low if low is None else float(low))
        high = attrs.get("max", high if high is None else float(high))
        if low is not None and high is not None and float(low) == 0 and float(high) == 6:
            return "relu6", {}
        return "Clip (not 0..6)", {}
    if op in ("MaxPool", "AveragePool"):
        kernel = tuple(attrs["kernel_shape"])
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        return ("maxpool" if op == "MaxPool" else "avgpool"), {
            "kernel": kernel, "stride": tuple(attrs.get("strides", kernel)),
            "padding": (pads[0], pads[2], pads[1], pads[3])}
    if op == "ReduceMean":
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in constants:
            axes = [int(a) for a in constants[node.input[1]].reshape(-1)]
        return ("globalavgpool", {}) if axes is not None and sorted(axes) in ([2, 3], [-2, -1]) else \
            ("ReduceMean (not over height and width)", {})
    return SIMPLE.get(op, op), {}
