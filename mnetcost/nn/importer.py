"""A PyTorch module -> the calculator's resolved :class:`~mnetcost.calculator.resolver.Network`
(:func:`from_torch`), so that ``mnetcost.network_cost(net, convention)`` and the memory functions price a
user's own model as they price a spec.

The module is traced with ``torch.fx`` (``symbolic_trace``) and its shapes propagated on one zero image
(``ShapeProp``, in ``eval()``); each node becomes one :class:`~mnetcost.calculator.importers.nchw.Op`, and
:func:`mnetcost.calculator.importers.nchw.network` makes the layers (one rule per operator kind, shared with
the ONNX importer). Supported: ``Conv2d`` (groups included), ``BatchNorm2d`` after a conv, ``Linear``,
``ReLU``/``ReLU6``/``Hardswish``/``Hardsigmoid``/``Sigmoid``/``Tanh``/``LeakyReLU``/``SiLU``/``GELU`` (modules
or functions), ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d(1)`` and a mean over (2, 3), ``+``/``torch.add``,
``*``/``torch.mul``, ``flatten``/``view``/``reshape``, ``torch.cat``, ``F.pad``/``ZeroPad2d``/``ConstantPad2d``,
``softmax``, ``Dropout`` and ``Identity``. Any other node is named in one line.
"""
from __future__ import annotations

import operator

from mnetcost.calculator.importers.nchw import Op, network
from mnetcost.errors import ConfigError

_ACTIVATION_MODULES = {"ReLU": "relu", "ReLU6": "relu6", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid",
                       "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyReLU": "leaky_relu", "SiLU": "silu",
                       "GELU": "gelu"}
_IDENTITY_MODULES = ("Dropout", "Identity", "Dropout2d")


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _padding(module) -> tuple[int, int, int, int]:
    if isinstance(module.padding, str):
        raise ConfigError(f"padding={module.padding!r}: give explicit padding")
    ph, pw = _pair(module.padding)
    return ph, ph, pw, pw


def _functions():
    import torch
    import torch.nn.functional as F

    return {
        operator.add: "add", torch.add: "add", operator.iadd: "add",
        operator.mul: "mul", torch.mul: "mul", operator.imul: "mul",
        torch.flatten: "flatten", torch.reshape: "reshape", torch.cat: "concat", torch.concat: "concat",
        F.pad: "pad", F.softmax: "softmax", torch.softmax: "softmax",
        F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.hardswish: "hardswish",
        F.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh",
        F.silu: "silu", F.gelu: "gelu", F.leaky_relu: "leaky_relu",
        F.adaptive_avg_pool2d: "globalavgpool", F.dropout: "identity",
    }


_METHODS = {"flatten": "flatten", "view": "reshape", "reshape": "reshape", "relu": "relu", "sigmoid": "sigmoid",
            "softmax": "softmax", "add": "add", "mul": "mul", "contiguous": "identity"}


def _functional_conv(node, shape) -> dict:
    """The attributes of ``conv2d(input, weight, bias, stride, padding, dilation, groups)`` called as a function
    (a module with its own forward, such as a depthwise conv that repeats its input channels)."""
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    given = {**dict(zip(names, node.args)), **node.kwargs}
    padding = _pair(given.get("padding", 0))
    if isinstance(given.get("padding"), str) or _pair(given.get("dilation", 1)) != (1, 1):
        raise ConfigError(f"{node.name}: a conv2d with string padding or dilation is not priced yet")
    return {"weight": tuple(shape(given["weight"])), "stride": _pair(given.get("stride", 1)),
            "padding": (padding[0], padding[0], padding[1], padding[1]), "groups": int(given.get("groups", 1)),
            "bias": given.get("bias") is not None}


def from_torch(module, input_shape, name: str | None = None):
    """The resolved network of ``module`` for one image of ``input_shape`` = (C, H, W) (module docstring)."""
    import torch
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    if len(tuple(input_shape)) != 3:
        raise ConfigError(f"input_shape must be (channels, height, width), got {tuple(input_shape)!r}")
    name = name or type(module).__name__
    was_training = module.training
    module.eval()  # BatchNorm with its running statistics, dropout off: the traced graph shares the modules
    try:
        try:
            traced = symbolic_trace(module)
        except Exception as exc:  # noqa: BLE001 - fx raises many types for untraceable code
            raise ConfigError(f"{name}: torch.fx cannot trace the module ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        example = torch.zeros((1, *input_shape))
        with torch.no_grad():
            ShapeProp(traced).propagate(example)
    finally:
        module.train(was_training)
    functions = _functions()
    modules = dict(traced.named_modules())
    ops: list[Op] = []
    input_name = output_shape = None

    def shape(node) -> tuple:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else ()

    def tensors(args) -> tuple:
        found = []
        for arg in args:
            if isinstance(arg, (list, tuple)):
                found.extend(tensors(arg))
            elif hasattr(arg, "op") and shape(arg):
                found.append(arg.name)
        return tuple(found)

    for node in traced.graph.nodes:
        if node.op == "placeholder":
            input_name = node.name
            continue
        if node.op == "output":
            output_shape = shape(node.args[0]) if hasattr(node.args[0], "op") else ()
            continue
        if node.op == "get_attr":
            continue
        reads = tensors(node.args)
        first = next((a for a in node.args if hasattr(a, "op")), None)
        in_shape = shape(first) if first is not None else ()
        attrs: dict = {}
        if node.op == "call_module":
            sub = modules[node.target]
            kind_name = type(sub).__name__
            if kind_name == "Conv2d":
                kind = "conv"
                attrs = {"weight": tuple(sub.weight.shape), "stride": _pair(sub.stride), "padding": _padding(sub),
                         "groups": sub.groups, "bias": sub.bias is not None}
                if _pair(sub.dilation) != (1, 1):
                    raise ConfigError(f"{name}: {node.target}: dilated convolutions are not priced yet")
            elif kind_name == "BatchNorm2d":
                kind = "batchnorm"
            elif kind_name == "Linear":
                kind = "linear"
                attrs = {"in_features": sub.in_features, "out_features": sub.out_features,
                         "bias": sub.bias is not None}
            elif kind_name in _ACTIVATION_MODULES:
                kind = _ACTIVATION_MODULES[kind_name]
            elif kind_name in ("MaxPool2d", "AvgPool2d"):
                kind = "maxpool" if kind_name == "MaxPool2d" else "avgpool"
                kernel = _pair(sub.kernel_size)
                pad = _pair(sub.padding)
                attrs = {"kernel": kernel, "stride": _pair(sub.stride or sub.kernel_size),
                         "padding": (pad[0], pad[0], pad[1], pad[1])}
            elif kind_name == "AdaptiveAvgPool2d" and _pair(sub.output_size) == (1, 1):
                kind = "globalavgpool"
            elif kind_name == "Flatten":
                kind = "flatten"
            elif kind_name in ("ZeroPad2d", "ConstantPad2d"):
                kind = "pad"
            elif kind_name == "Softmax":
                kind = "softmax"
            elif kind_name in _IDENTITY_MODULES:
                kind = "identity"
            else:
                kind = kind_name
        elif node.op == "call_function" and node.target in (torch.conv2d, torch.nn.functional.conv2d):
            kind, attrs = "conv", _functional_conv(node, shape)
            reads = tensors(node.args[:1])
        elif node.op == "call_function":
            kind = functions.get(node.target, getattr(node.target, "__name__", str(node.target)))
            if node.target is torch.mean:
                kind = "globalavgpool" if len(shape(node)) == 2 or shape(node)[2:] == (1, 1) else "mean"
        else:  # call_method
            kind = _METHODS.get(node.target, node.target)
            if node.target == "mean":
                kind = "globalavgpool" if len(shape(node)) == 2 or shape(node)[2:] == (1, 1) else "mean"
        ops.append(Op(kind=kind, name=node.name, inputs=reads, output=node.name, input_shape=in_shape,
                      output_shape=shape(node), attrs=attrs))
    if input_name is None:
        raise ConfigError(f"{name}: the module takes no input")
    return network(name, ops, input_name, (1, *input_shape), output_shape or (), "a PyTorch module (torch.fx)")
