"""One graph of NCHW operators -> the resolved :class:`~mnetcost.calculator.resolver.Network`: what the ONNX
importer (:mod:`mnetcost.calculator.importers.onnx`) and the PyTorch importer (:mod:`mnetcost.nn.importer`)
both produce, so that a new operator is one rule here, read by both.

Each source turns its graph into :class:`Op` records, in execution order: an operator kind (below), the
tensors it reads and writes (by name), their NCHW shapes, and the attributes the kind needs. A BatchNorm
right after the conv that alone reads its output becomes that conv's ``bn`` (priced by every convention as
the family's own convs: 4, 2, 1 or 0 numbers per channel, its operations under ``fvcore``); an ``identity``
(dropout in eval, a no-op view) is skipped, its readers reading its input.

===============  ======================================================  ====================
op kind          attributes                                              layer kind
===============  ======================================================  ====================
conv             weight (O, I/groups, kh, kw), stride, padding, groups,  conv / pw / dw
                 bias
batchnorm        (after a conv)                                          the conv's ``bn``
linear           in_features, out_features, bias                         linear
relu, relu6,     (after a conv or linear with no activation yet: its     the layer's
hardswish,       ``activation``; else a layer of its own)                ``activation`` / act
sigmoid, ...
add / mul        (elementwise)                                           add / mul
maxpool,         kernel (kh, kw), stride, padding                        maxpool / avgpool2d
avgpool
globalavgpool    (a mean over height and width)                          avgpool
flatten,         (no arithmetic)                                         reshape, concat, pad,
concat, pad,                                                             softmax
softmax
identity         (dropped)                                               -
===============  ======================================================  ====================
Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mnetcost.errors import ConfigError

ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh", "leaky_relu", "gelu", "silu")
DATA_KINDS = {"flatten": "reshape", "reshape": "reshape", "concat": "concat", "pad": "pad", "softmax": "softmax"}
KINDS = ("conv", "batchnorm", "linear", "add", "mul", "maxpool", "avgpool", "globalavgpool", "identity",
         *ACTIVATIONS, *DATA_KINDS)


@dataclass(frozen=True)
class Op:
    """One operator of a source graph: ``kind`` (module docstring), the activation tensors it reads, the
    one it writes, their NCHW shapes, and its attributes."""

    kind: str
    name: str
    inputs: tuple[str, ...]
    output: str
    input_shape: tuple
    output_shape: tuple
    attrs: dict = field(default_factory=dict)


def hwc(shape) -> tuple[int, int, int]:
    """An NCHW (or N x C, or N x C x L) shape as (height, width, channels), the batch folded into the height."""
    dims = [int(d) for d in shape]
    if len(dims) >= 4:
        batch = 1
        for d in dims[:-3]:
            batch *= d
        return batch * dims[-2], dims[-1], dims[-3]
    if len(dims) == 3:
        return dims[0], dims[2], dims[1]
    if len(dims) == 2:
        return dims[0], 1, dims[1]
    return 1, 1, dims[0] if dims else 1


def network(name: str, ops: list[Op], input_name: str, input_shape, output_shape, source: str):
    """The resolved network of ``ops`` (module docstring); an op kind it does not know raises one line."""
    from mnetcost.calculator.resolver import Layer, Network
    from mnetcost.calculator.spec import Spec

    unknown: dict[str, list[str]] = {}
    for op in ops:
        if op.kind not in KINDS:
            unknown.setdefault(op.kind, []).append(op.name)
    if unknown:
        raise ConfigError(f"{name}: " + "; ".join(f"{kind} ({', '.join(names[:3])}"
                                                   + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                                                   + "): mnetcost cannot price it yet"
                                                   for kind, names in unknown.items()))
    readers: dict[str, int] = {}
    for op in ops:
        for tensor in op.inputs:
            readers[tensor] = readers.get(tensor, 0) + 1
    writer = {input_name: "input"}  # tensor -> layer name
    layers: list = []
    index: dict[str, int] = {}  # layer name -> position in layers
    counters: dict[str, int] = {}

    def reads(op) -> tuple:
        missing = [t for t in op.inputs if t not in writer]
        if missing:
            raise ConfigError(f"{name}: {op.name} reads {missing[0]}, which no earlier operator writes")
        return tuple(writer[t] for t in op.inputs)

    def add(op, kind, **fields):
        counters[kind] = counters.get(kind, 0) + 1
        layer_name = f"{kind}_{counters[kind]}"
        in_h, in_w, in_c = hwc(op.input_shape)
        out_h, out_w, out_c = hwc(op.output_shape)
        values = dict(name=layer_name, kind=kind, kernel=1, stride=1, padding=(0, 0, 0, 0), in_h=in_h, in_w=in_w,
                      in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, groups=1, bn=False, activation="",
                      row=len(layers) + 1, inputs=reads(op))
        values.update(fields)
        layers.append(Layer(**values))
        index[layer_name] = len(layers) - 1
        writer[op.output] = layer_name

    def fuse(op, **changes) -> bool:
        """Fold ``op`` into the layer that wrote its only input when nothing else reads that tensor."""
        if len(op.inputs) != 1 or readers.get(op.inputs[0], 0) != 1 or writer.get(op.inputs[0]) in (None, "input"):
            return False
        position = index[writer[op.inputs[0]]]
        from dataclasses import replace

        layers[position] = replace(layers[position], **changes)
        writer[op.output] = layers[position].name
        return True

    for op in ops:
        a = op.attrs
        if op.kind == "identity":
            writer[op.output] = reads(op)[0] if op.inputs else "input"
            continue
        if op.kind == "conv":
            out_c, per_group, kh, kw = a["weight"]
            groups = a.get("groups", 1)
            in_c = per_group * groups
            stride = a.get("stride", (1, 1))[0]
            if groups == in_c and groups > 1 and out_c % in_c == 0:
                add(op, "dw", kernel=kh, kernel_w=kw, stride=stride, padding=a.get("padding", (0, 0, 0, 0)),
                    groups=in_c, delta=out_c // in_c, bias=a.get("bias", False))
            else:
                pointwise = kh == kw == 1 and stride == 1 and groups == 1
                add(op, "pw" if pointwise else "conv", kernel=kh, kernel_w=kw, stride=stride,
                    padding=a.get("padding", (0, 0, 0, 0)), groups=groups, bias=a.get("bias", False))
        elif op.kind == "batchnorm":
            source = writer.get(op.inputs[0]) if op.inputs else None
            layer = layers[index[source]] if source in index else None
            if layer is None or layer.kind not in ("conv", "pw", "dw") or layer.bn or layer.activation \
                    or not fuse(op, bn=True):
                raise ConfigError(f"{name}: {op.name}: a BatchNorm that does not follow a conv it can fold into")
        elif op.kind == "linear":
            features = a["in_features"]
            in_h, in_w, in_c = hwc(op.input_shape)
            rows = in_h * in_w * in_c // features
            counters["linear"] = counters.get("linear", 0) + 1
            layer_name = f"linear_{counters['linear']}"
            layers.append(Layer(name=layer_name, kind="linear", kernel=1, stride=1, padding=(0, 0, 0, 0),
                                in_h=rows, in_w=1, in_c=features, out_h=rows, out_w=1, out_c=a["out_features"],
                                groups=1, bn=False, activation="", row=len(layers) + 1, inputs=reads(op),
                                bias=a.get("bias", False)))
            index[layer_name] = len(layers) - 1
            writer[op.output] = layer_name
        elif op.kind in ACTIVATIONS:
            source = writer.get(op.inputs[0]) if op.inputs else None
            layer = layers[index[source]] if source in index else None
            if layer is not None and layer.kind in ("conv", "pw", "dw", "linear") and not layer.activation \
                    and fuse(op, activation=op.kind):
                continue
            add(op, "act", activation=op.kind)
        elif op.kind in ("add", "mul"):
            add(op, op.kind)
        elif op.kind in ("maxpool", "avgpool"):
            kh, kw = a["kernel"]
            add(op, "maxpool" if op.kind == "maxpool" else "avgpool2d", kernel=kh, kernel_w=kw,
                stride=a.get("stride", (kh, kw))[0], padding=a.get("padding", (0, 0, 0, 0)))
        elif op.kind == "globalavgpool":
            in_h, in_w, _ = hwc(op.input_shape)
            add(op, "avgpool", kernel=max(in_h, in_w))
        else:
            add(op, DATA_KINDS[op.kind])
    height, width, channels = hwc(input_shape)
    classes = hwc(output_shape)[2]
    spec = Spec(name=name, source=source, rows=(), title=f"{name} ({source})", in_channels=channels, classes=classes,
                resolution=height, rounding="", description=source)
    return Network(variant=name, alpha=1.0, delta=1, classes=classes, resolution=(height, width), rounding="",
                   layers=tuple(layers), spec=spec)
