"""Resolution: a spec plus alpha, delta, classes and input size -> concrete layers.

This is the only place where alpha, delta, width rounding and spatial shapes are applied. It
works in two steps so that sweeps can be vectorised without a second copy of the rules:

1. :func:`plan` fixes everything that does not depend on alpha and delta (layer order, names,
   kernels, strides, padding, spatial sizes); channel counts stay symbolic (:class:`Channels`).
2. :func:`resolve` turns the symbolic channels into integers for one (alpha, delta), and
   :func:`resolve_arrays` into numpy arrays for many points at once.

Both the analytic cost model and the torch builder read the :class:`Layer` records made here.

Every layer names the tensors it reads (``inputs``: earlier layers' names, ``"input"`` for the
image), so a residual add reads the block's input and the projection, and a squeeze-excite's gate
multiply reads the depthwise output and the gate: the memory model builds the tensor lifetimes
from these names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from mnetcost.errors import ConfigError, SpecError
from mnetcost.calculator.spec import Spec, load_spec

LAYER_KINDS = ("conv", "dw", "pw", "maxpool", "fmp", "avgpool", "fc", "add", "scale")
# the kinds an imported model file adds (mnetcost.calculator.importers): a fully connected layer with the
# weights and bias as stored, a non-global average pool, a mean over other axes, an elementwise multiply,
# shape and data-movement operators, and a standalone activation
IMPORTED_KINDS = ("linear", "avgpool2d", "mean", "mul", "reshape", "pad", "concat", "softmax", "quantize", "act")
IMAGE = "input"  # the name of the network's input tensor in ``Layer.inputs``


# --- width rounding: one policy, injected once, used by every layer -------------------------
# Each rule takes an alpha = 1 width and alpha (a float, or a numpy array in a vectorised sweep)
# and returns the channel count. The scalar path never imports numpy.
def round_truncate(width: int, alpha):
    """Keras's rule, ``int(filters * alpha)`` (binary floating point: int(100 * 0.29) == 28)."""
    product = width * alpha
    return int(product) if isinstance(product, (int, float)) else product.astype("int64")


def round_nearest(width: int, alpha):
    """Round half to even, ``round(filters * alpha)``."""
    product = width * alpha
    return round(product) if isinstance(product, (int, float)) else product.round().astype("int64")


def round_divisible8(width: int, alpha):
    """MobileNetV2/timm ``_make_divisible(filters * alpha, 8)``: nearest multiple of 8, at least 8,
    and never more than 10 % below the unrounded width."""
    return make_divisible(width * alpha, 8)


def make_divisible(value, divisor: int = 8):
    """torchvision's/timm's ``_make_divisible(value, divisor)``: the nearest multiple of ``divisor``
    (halves up), at least ``divisor``, and never more than 10 % below ``value`` (an int, a float or a
    numpy array; integers stay exact)."""
    if isinstance(value, int):
        rounded = max(divisor, (value + divisor // 2) // divisor * divisor)  # = int(value + divisor / 2) // ...
        return rounded + divisor if 10 * rounded < 9 * value else rounded
    if isinstance(value, float):
        rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
        return rounded + divisor if rounded < 0.9 * value else rounded
    import numpy as np

    rounded = np.maximum(divisor, (value + divisor / 2).astype("int64") // divisor * divisor)
    return np.where(rounded < 0.9 * value, rounded + divisor, rounded)


class KerasRule:
    """Keras applications' widths (``rounding = "keras"``). Keras sizes each application its own way,
    so the rule reads the role the plan gave each width (:attr:`Channels.keras`):

    - MobileNet (a spec without inverted residuals): ``int(filters * alpha)`` everywhere (= truncate);
    - MobileNetV2's blocks (rows with an expansion factor ``t``): ``make_divisible(int(filters * alpha), 8)``,
      the expansion ``t`` times the rounded input, its first conv ``make_divisible(32 * alpha, 8)``, its
      last conv 1280 unless alpha > 1;
    - MobileNetV3's blocks (rows with an ``expand`` width): ``make_divisible(filters * alpha, 8)``, the
      expansion ``make_divisible(ratio * rounded input, 8)`` with ratio = expand / input width at alpha 1,
      the squeeze ``make_divisible(C / se_reduction, 8)``, the head conv ``make_divisible(6 * input, 8)``,
      and the widths a row marks with ``keras_width`` (the stem's fixed 16, the head's 1024/1280 widened
      only for alpha > 1).

    Called as a plain rule (width, alpha) it is ``make_divisible(width * alpha, 8)``."""

    name = "keras"

    def __call__(self, width: int, alpha):
        return make_divisible(width * alpha, 8)

    @staticmethod
    def scale(role: str, width: int, alpha):
        if role == "fixed":
            return width
        if role == "truncate":
            return round_truncate(width, alpha)
        if role == "truncate8":
            return make_divisible(round_truncate(width, alpha), 8)
        return make_divisible(width * alpha, 8)


round_keras = KerasRule()

ROUNDINGS: dict[str, Callable] = {
    "truncate": round_truncate,
    "nearest": round_nearest,
    "divisible8": round_divisible8,
    "keras": round_keras,
}


class Channels(NamedTuple):
    """A symbolic channel count: ``rounding(width * alpha)`` (times delta when ``times_delta``),
    or a constant (the image's channels, the number of classes) when ``width`` is None.
    ``widen_only``: alpha scales the width only upwards, ``rounding(width * max(alpha, 1))`` (the
    last conv of MobileNetV2, as its references build it)."""

    width: int | None = None
    const: int = 0
    times_delta: bool = False
    widen_only: bool = False
    keras: str = ""  # the width's role under the Keras rule (see KerasRule): "", truncate, truncate8, fixed
    keras_widen_only: bool = False  # under the Keras rule alpha only widens it (MobileNetV3's 1024/1280 head)

    def evaluate(self, alpha, delta, rounding: Callable):
        if self.width is None:
            base = self.const
        elif isinstance(rounding, KerasRule):
            widen = self.widen_only or self.keras_widen_only
            base = rounding.scale(self.keras, self.width, _at_least_one(alpha) if widen else alpha)
        elif self.widen_only:
            base = rounding(self.width, _at_least_one(alpha))
        else:
            base = rounding(self.width, alpha)
        return base * delta if self.times_delta else base

    def reference(self) -> int:
        """The width at alpha = 1 (before delta)."""
        return self.const if self.width is None else self.width

    def symbol(self) -> str:
        """The paper's notation: ``32α``, ``(32α × δ)``, ``3``."""
        text = str(self.const) if self.width is None else f"{self.width}α" + ("⁺" if self.widen_only else "")
        return f"({text} × δ)" if self.times_delta else text


def _at_least_one(alpha):
    if isinstance(alpha, (int, float)):
        return max(alpha, 1.0) if alpha < 1 else alpha
    import numpy as np

    return np.maximum(alpha, 1.0)


class Expanded(NamedTuple):
    """``source`` channels times an expansion factor: ``source * factor`` (rounded half to even
    for a fractional factor, as torchvision's ``round(inp * expand_ratio)``), times delta when
    ``times_delta``."""

    source: "Channels | Expanded | Squeezed"
    factor: int | float
    times_delta: bool = False
    keras_divisible: bool = False  # under the Keras rule made divisible by 8 (MobileNetV3's head conv)

    def evaluate(self, alpha, delta, rounding: Callable):
        base = self.source.evaluate(alpha, delta, rounding)
        if isinstance(rounding, KerasRule) and self.keras_divisible:
            base = make_divisible(base * self.factor, 8)
        elif isinstance(self.factor, int) or float(self.factor).is_integer():
            base = base * int(self.factor)
        elif isinstance(base, int):
            base = round(base * self.factor)
        else:
            base = (base * self.factor).round().astype("int64")
        return base * delta if self.times_delta else base

    def reference(self) -> int:
        return self.evaluate(1.0, 1, round_truncate)

    def symbol(self) -> str:
        text = f"{self.source.symbol()} × {self.factor:g}"
        return f"({text} × δ)" if self.times_delta else text


class ExpandedWidth(NamedTuple):
    """An inverted residual's expansion given as a width (MobileNetV3's "exp size"): ``rounding(width
    * alpha)``; under the Keras rule ``make_divisible(source * ratio, 8)``, ratio = ``width`` / the
    source's width at alpha = 1 (Keras's ``_depth(infilters * expansion)``)."""

    source: "Channels | Expanded | Squeezed | ExpandedWidth"
    width: int
    times_delta: bool = False

    def evaluate(self, alpha, delta, rounding: Callable):
        if isinstance(rounding, KerasRule):
            base = make_divisible(self.source.evaluate(alpha, 1, rounding) * (self.width / self.source.reference()), 8)
        else:
            base = rounding(self.width, alpha)
        return base * delta if self.times_delta else base

    def reference(self) -> int:
        return self.width

    def symbol(self) -> str:
        return f"({self.width}α × δ)" if self.times_delta else f"{self.width}α"


class Squeezed(NamedTuple):
    """A squeeze-excite's reduced width: ``make_divisible(source // reduction, divisor)``."""

    source: "Channels | Expanded | Squeezed"
    reduction: int
    divisor: int
    times_delta: bool = False

    def evaluate(self, alpha, delta, rounding: Callable):
        source = self.source.evaluate(alpha, delta, rounding)
        if isinstance(rounding, KerasRule):  # Keras's _depth(filters * se_ratio): the quotient unfloored
            base = make_divisible(source / self.reduction, self.divisor)
        else:
            base = make_divisible(source // self.reduction, self.divisor)
        return base * delta if self.times_delta else base

    def reference(self) -> int:
        return self.evaluate(1.0, 1, round_truncate)

    def symbol(self) -> str:
        return f"÷{self.reduction}({self.source.symbol()})"


@dataclass(frozen=True)
class Layer:
    """One concrete operation. Channel fields are ints (or numpy arrays in a vectorised sweep).

    ``padding`` is (top, bottom, left, right) as TensorFlow's 'same' padding computes it, so the
    spatial sizes equal Keras's. ``groups`` equals ``in_c`` for a depthwise conv. ``row`` is the
    1-based spec row the layer came from, ``block`` the block number (depthwise separable or
    inverted residual) and ``block_name`` the block's name (``dws_3``, ``block3``; "" outside one).
    ``activation`` follows the conv (after its BatchNorm when ``bn``): relu, relu6, hardswish,
    hardsigmoid, or "" (linear). ``bias``: the conv has a bias. ``inputs``: the tensors the layer
    reads (earlier layers' names, ``"input"`` for the image); the input fields describe the first.
    """

    name: str
    kind: str
    kernel: int
    stride: int | float
    padding: tuple[int, int, int, int]
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    in_c: object
    out_c: object
    groups: object
    bn: bool
    activation: str
    row: int
    block: int = 0
    ratio: float | None = None
    delta: int = 1  # a depthwise conv's depth multiplier: out_c = in_c * delta
    in_delta: int = 1  # delta when the input channels are (C x delta), i.e. after a depthwise conv
    bias: bool = False
    inputs: tuple[str, ...] = ()
    block_name: str = ""
    kernel_w: int = 0  # the kernel's width when it differs from its height (an imported file's 10x8 conv)

    @property
    def kernel_size(self) -> tuple[int, int]:
        """(height, width) of the kernel: ``kernel`` square unless ``kernel_w`` says otherwise."""
        return self.kernel, self.kernel_w or self.kernel

    @property
    def input_shape(self) -> tuple:
        return (self.in_h, self.in_w, self.in_c)

    @property
    def output_shape(self) -> tuple:
        return (self.out_h, self.out_w, self.out_c)


class Condition(NamedTuple):
    """Whether a layer of a plan exists, decided on the concrete widths ``a`` and ``b`` of a
    configuration, as the reference implementations decide it (after rounding, never on the
    alpha = 1 widths): ``differ`` - the layer exists where they differ (MobileNetV3's expansion conv);
    ``equal`` - where they are equal (the residual add); ``require`` - always, and a configuration
    where they differ is refused with a SpecError (``residual = true``; ``where`` names the block)."""

    kind: str
    a: object
    b: object
    where: str = ""

    def holds(self, alpha, delta, rounding: Callable):
        """Whether the layer exists (a bool, or a bool array in a vectorised sweep); for ``require``,
        whether the configuration can be built."""
        a, b = self.a.evaluate(alpha, delta, rounding), self.b.evaluate(alpha, delta, rounding)
        return a != b if self.kind == "differ" else a == b

    def refusal(self, alpha, delta, rounding: Callable) -> str:
        a, b = self.a.evaluate(alpha, delta, rounding), self.b.evaluate(alpha, delta, rounding)
        return (f"{self.where}: residual = true cannot add its input ({a} channels) to its output ({b} channels) "
                f"at alpha {alpha:g}: the shapes differ")


class LayerPlan(NamedTuple):
    """A layer whose channels are still symbolic (see :func:`plan`); ``when``: the condition under
    which it exists (None: always)."""

    layer: Layer  # with in_c/out_c/groups left as placeholders
    in_ch: "Channels | Expanded | ExpandedWidth | Squeezed"
    out_ch: "Channels | Expanded | ExpandedWidth | Squeezed"
    depthwise: bool
    when: Condition | None = None


class NetworkPlan(NamedTuple):
    spec: Spec
    classes: int
    resolution: tuple[int, int]
    layers: tuple[LayerPlan, ...]


@dataclass(frozen=True)
class Network:
    """A spec resolved at one configuration: the single source both cost model and builder read."""

    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: tuple[int, int]
    rounding: str
    layers: tuple[Layer, ...]
    spec: Spec

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def branched(self) -> bool:
        """Whether some layer reads a tensor other than the one the layer before it wrote (a
        residual add, a squeeze-excite's gate multiply): the network is no longer a chain."""
        return is_branched(self.layers)


def is_branched(layers) -> bool:
    previous = IMAGE
    for layer in layers:
        if layer.inputs != (previous,):
            return True
        previous = layer.name
    return False


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow 'same': output ceil(size / stride); padding (before, after), after >= before."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


# --- the values of a configuration: one check for every entry point -------------------------
# resolve, plan and the vectorised sweep all take alpha, delta, classes and resolution through
# these, so a value one accepts the others accept, and one refuses the others refuse with the same
# ConfigError. Numpy scalars (a sweep's own values, a DataFrame's cells) are accepted and become
# Python numbers; bools, strings, NaN and infinities are refused.
def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_, without importing numpy


def _shown(value) -> str:
    """``repr(value)``, cut to a readable length (a 400-digit integer is not one line)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def as_alpha(value) -> float:
    """A width multiplier as a Python float: a finite real number greater than 0 (an int, a
    float, a numpy integer or floating scalar)."""
    if type(value) is float and 0 < value < math.inf:  # the common case first: a sweep checks every alpha
        return value
    from numbers import Real

    if not _is_bool(value) and isinstance(value, Real):
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(f"alpha must be a number greater than 0 within a float's range, got "
                              f"{_shown(value)}") from None
        if math.isfinite(number) and number > 0:
            return number
    raise ConfigError(f"alpha must be a number greater than 0, got {_shown(value)}")


def as_count(value, what: str) -> int:
    """A positive integer as a Python int: an int, a numpy integer, or a float that is a whole
    number (``2.0``, ``np.float64(2)``); ``2.5``, NaN, bools and strings are refused."""
    if type(value) is int and value >= 1:
        return value
    from numbers import Integral, Real

    number = None
    if _is_bool(value):
        pass
    elif isinstance(value, Integral):
        number = int(value)
    elif isinstance(value, Real):
        try:
            number = int(value) if float(value).is_integer() else None
        except (OverflowError, ValueError):
            number = None
    if number is None or number < 1:
        raise ConfigError(f"{what} must be a positive integer, got {_shown(value)}")
    return number


def parse_resolution(resolution) -> tuple[int, int]:
    """(height, width) from one size or a (height, width) pair, each a positive integer."""
    if isinstance(resolution, (tuple, list)) and len(resolution) == 2:
        height, width = resolution
    elif isinstance(resolution, (tuple, list)):
        raise ConfigError(f"resolution must be a positive integer or a (height, width) pair, got {resolution!r}")
    else:
        height = width = resolution
    try:
        return as_count(height, "resolution"), as_count(width, "resolution")
    except ConfigError:
        raise ConfigError(f"resolution must be a positive integer, got {resolution!r}") from None


def check_config(alpha, delta, classes) -> tuple[float, int, int | None]:
    """(alpha, delta, classes) checked and as Python numbers; a ConfigError names the first bad one
    (``classes`` None: the spec's own, checked by :func:`plan`)."""
    return as_alpha(alpha), as_count(delta, "delta"), None if classes is None else as_count(classes, "classes")


MAX_LAYERS = 10_000  # resolved layers a network may have (MobileNetV3-Large has about 140)


def plan(spec: Spec | str, classes: int | None = None, resolution=None) -> NetworkPlan:
    """Fix the layer sequence, names and spatial sizes of ``spec`` for an input size and classes
    (None: the spec's own defaults, 10 classes and 32x32 unless it says otherwise)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    classes = as_count(spec.classes if classes is None else classes, "classes")
    resolution = spec.resolution if resolution is None else resolution
    height, width = parse_resolution(resolution)
    channels = Channels(const=spec.in_channels)
    current = IMAGE  # the tensor the next layer reads
    layers: list[LayerPlan] = []
    counters = {"conv": 0, "dws": 0, "block": 0, "maxpool": 0, "fmp": 0, "avgpool": 0}
    pooling = spec.downsample if spec.downsample != "stride" else None

    def add(name, kind, row, out_h, out_w, out_ch, *, kernel=1, stride=1, padding=(0, 0, 0, 0),
            bn=False, activation="", bias=False, block=0, block_name="", ratio=None, depthwise=False,
            source=None, also=(), when=None):
        """Append a layer reading ``source`` ((name, height, width, channels); default: the tensor
        the layer before wrote) and the tensors named in ``also``; its output becomes the current one."""
        nonlocal height, width, channels, current
        if len(layers) >= MAX_LAYERS:
            raise ConfigError(f"{spec.source}: row {row.index} ({row.type}): the network would have more than "
                              f"{MAX_LAYERS:,} layers (lower 'repeat' or the rows); mnetcost builds at most "
                              f"{MAX_LAYERS:,}")
        if source is not None:
            current, height, width, channels = source
        if out_h < 1 or out_w < 1:
            raise ConfigError(
                f"{spec.source}: row {row.index} ({row.type}): layer {name} would map "
                f"{height}×{width} to {out_h}×{out_w}; the input resolution is too small"
            )
        layer = Layer(
            name=name, kind=kind, kernel=kernel, stride=stride, padding=padding,
            in_h=height, in_w=width, out_h=out_h, out_w=out_w, in_c=None, out_c=None, groups=None,
            bn=bn, activation=activation, row=row.index, block=block, ratio=ratio, bias=bias,
            inputs=(current, *also), block_name=block_name,
        )
        layers.append(LayerPlan(layer=layer, in_ch=channels, out_ch=out_ch, depthwise=depthwise, when=when))
        height, width, channels, current = out_h, out_w, out_ch, name

    def state():
        return current, height, width, channels

    def conv_geometry(kernel, stride):
        out_h, top, bottom = same_padding(height, kernel, stride)
        out_w, left, right = same_padding(width, kernel, stride)
        return out_h, out_w, (top, bottom, left, right)

    def pool(row, stride):
        """The pool that replaces a stride when the spec downsamples by pooling."""
        if pooling == "maxpool":
            counters["maxpool"] += 1
            out_h, out_w, pad = conv_geometry(3, stride)
            add(f"maxpool_{counters['maxpool']}", "maxpool", row, out_h, out_w, channels, kernel=3, stride=stride,
                padding=pad)
        else:
            counters["fmp"] += 1
            ratio = spec.fmp_ratio
            add(f"fmp_{counters['fmp']}", "fmp", row, math.floor(height / ratio), math.floor(width / ratio),
                channels, stride=ratio, ratio=ratio)

    # The Keras rule's roles (KerasRule): a spec of inverted residuals follows Keras's MobileNetV2/V3,
    # any other Keras's MobileNet (int(filters * alpha) everywhere).
    inverted = any(row.type == "inverted_residual" for row in spec.rows)
    plain_role = "" if inverted else "truncate"
    for row in spec.rows:
        activation = row.get("activation") or spec.activation
        if row.type == "conv":
            counters["conv"] += 1
            stride = row["stride"]
            pooled = pooling is not None and stride > 1
            out_h, out_w, pad = conv_geometry(row["kernel"], 1 if pooled else stride)
            if row["filters"] is not None:
                keras_width = row["keras_width"]
                out_ch = Channels(width=row["filters"], widen_only=row["widen_only"],
                                  keras="fixed" if keras_width == "fixed" else plain_role,
                                  keras_widen_only=keras_width == "widen_only")
            else:
                out_ch = Expanded(channels, row["expansion"], keras_divisible=inverted)
            add(f"conv{counters['conv']}", "conv", row, out_h, out_w, out_ch, kernel=row["kernel"],
                stride=1 if pooled else stride, padding=pad, bn=row["bn"], activation=activation,
                bias=row["bias"])
            if pooled:  # the paper's Table 2: conv1 keeps its size and a pool follows it
                pool(row, stride)
        elif row.type == "dws":
            for _ in range(row["repeat"]):
                counters["dws"] += 1
                block = counters["dws"]
                stride = row["stride"]
                if pooling is not None and stride > 1:  # Table 2: the pool comes before the block
                    pool(row, stride)
                    stride = 1
                out_h, out_w, pad = conv_geometry(row["kernel"], stride)
                dw_out = channels._replace(times_delta=True)
                if channels.times_delta:
                    raise ConfigError(f"{spec.source}: row {row.index}: a depthwise conv cannot follow a depthwise conv")
                add(f"conv_dw_{block}", "dw", row, out_h, out_w, dw_out, kernel=row["kernel"],
                    stride=stride, padding=pad, bn=True, activation=activation, block=block,
                    block_name=f"dws_{block}", depthwise=True)
                add(f"conv_pw_{block}", "pw", row, height, width, Channels(width=row["filters"], keras=plain_role),
                    bn=True, activation=activation, block=block, block_name=f"dws_{block}")
        elif row.type == "inverted_residual":
            for repeat in range(row["repeat"]):
                counters["block"] += 1
                _inverted_residual(spec, row, counters["block"], row["stride"] if repeat == 0 else 1, activation,
                                   state, add, conv_geometry, pool if pooling is not None else None)
        elif row.type == "maxpool":
            counters["maxpool"] += 1
            out_h, out_w, pad = conv_geometry(row["kernel"], row["stride"])
            add(f"maxpool_{counters['maxpool']}", "maxpool", row, out_h, out_w, channels,
                kernel=row["kernel"], stride=row["stride"], padding=pad)
        elif row.type == "fmp":
            counters["fmp"] += 1
            ratio = row["ratio"]
            add(f"fmp_{counters['fmp']}", "fmp", row, math.floor(height / ratio), math.floor(width / ratio),
                channels, stride=ratio, ratio=ratio)
        elif row.type == "avgpool":
            counters["avgpool"] += 1
            suffix = "" if counters["avgpool"] == 1 else f"_{counters['avgpool']}"
            add(f"avgpool{suffix}", "avgpool", row, 1, 1, channels, kernel=max(height, width))
        elif row.type == "fc":
            add("fc", "fc", row, 1, 1, Channels(const=classes))
    return NetworkPlan(spec=spec, classes=classes, resolution=parse_resolution(resolution), layers=tuple(layers))


def _inverted_residual(spec: Spec, row, number: int, stride: int, activation: str, state, add, conv_geometry,
                       pool) -> None:
    """The layers of one inverted-residual block (MobileNetV2, with V3's squeeze-excite):
    ``blockN_expand`` (1x1, BN, activation), ``blockN_dw`` (kxk depthwise, BN, activation),
    ``blockN_se_pool``/``_se_reduce``/``_se_expand``/``_se_scale`` (squeeze-excite), ``blockN_project``
    (1x1, BN, linear), ``blockN_add`` (residual).

    As the reference implementations build them: a block with an expansion factor t has its
    expansion conv when t != 1 (MobileNetV2); a block with an ``expand`` width has it where the
    rounded expanded width differs from the rounded input width (MobileNetV3); the residual is added
    at stride 1 where the rounded input and output widths are equal. Those two depend on alpha, so
    they are :class:`Condition` s that :func:`resolve` decides per configuration."""
    name = f"block{number}"
    where = f"{spec.source}: row {row.index} (inverted_residual), block {name}"
    source, in_h, in_w, in_ch = state()
    by_factor = row["expand"] is None  # MobileNetV2's t (Keras: int(filters * alpha) made divisible)
    out_ch = Channels(width=row["filters"], keras="truncate8" if by_factor else "")
    if row["residual"] is None:  # the references' rule: stride 1 and the same rounded width in and out
        residual = Condition("equal", in_ch, out_ch) if stride == 1 else None
    elif row["residual"]:
        residual = Condition("require", in_ch, out_ch, where)
    else:
        residual = None
    common = {"block": number, "block_name": name}
    if pool is not None and stride > 1:  # the paper's Table 2: the pool comes before the block
        pool(row, stride)
        stride = 1
    expand_when = None
    if not by_factor:
        expanded = ExpandedWidth(in_ch, row["expand"])
        # a depthwise conv cannot follow a depthwise conv: after one, the expansion always stays
        expand_when = None if in_ch.times_delta else Condition("differ", in_ch, expanded)
    elif row["expansion"] == 1:
        expanded = in_ch
    else:
        expanded = Expanded(in_ch, row["expansion"])
    _, height, width, _ = state()
    if expanded is not in_ch:
        add(f"{name}_expand", "pw", row, height, width, expanded, bn=True, activation=activation, when=expand_when,
            **common)
    elif in_ch.times_delta:
        raise SpecError(f"{where}: a depthwise conv cannot follow a depthwise conv (give the block an expansion)")
    out_h, out_w, pad = conv_geometry(row["kernel"], stride)
    dw_out = expanded._replace(times_delta=True)
    add(f"{name}_dw", "dw", row, out_h, out_w, dw_out, kernel=row["kernel"], stride=stride, padding=pad, bn=True,
        activation=activation, depthwise=True, **common)
    if row["se"]:
        dw_state = state()
        add(f"{name}_se_pool", "avgpool", row, 1, 1, dw_out, kernel=max(out_h, out_w), **common)
        squeezed = Squeezed(dw_out, row["se_reduction"], row["se_divisor"])
        add(f"{name}_se_reduce", "pw", row, 1, 1, squeezed, bias=True, activation="relu", **common)
        add(f"{name}_se_expand", "pw", row, 1, 1, dw_out, bias=True, activation="hardsigmoid", **common)
        gate = f"{name}_se_expand"
        add(f"{name}_se_scale", "scale", row, out_h, out_w, dw_out, source=dw_state, also=(gate,), **common)
    add(f"{name}_project", "pw", row, out_h, out_w, out_ch, bn=True, activation="", **common)
    if residual is not None:
        if (out_h, out_w) != (in_h, in_w):  # cannot happen with stride 1 and 'same' padding; kept as a guard
            raise SpecError(f"{where}: the residual cannot add {in_h}×{in_w} to {out_h}×{out_w}")
        add(f"{name}_add", "add", row, out_h, out_w, out_ch, also=(source,), when=residual, **common)


def specialise(network_plan: NetworkPlan, present) -> NetworkPlan:
    """The plan with its conditional layers decided: ``present`` holds one bool per layer with a
    condition, in order. An absent layer passes its first input on (an absent expansion: the block's
    input; an absent add: the projection), so whatever read it reads that tensor instead. The result
    has no conditions left."""
    present = iter(present)
    renamed: dict[str, str] = {}
    layers = []
    for item in network_plan.layers:
        inputs = tuple(renamed.get(name, name) for name in item.layer.inputs)
        if item.when is not None and not next(present):
            renamed[item.layer.name] = inputs[0]
            continue
        layer = item.layer if inputs == item.layer.inputs else replace(item.layer, inputs=inputs)
        layers.append(item._replace(layer=layer, when=None))
    return network_plan._replace(layers=tuple(layers))


def conditions(network_plan: NetworkPlan) -> tuple[Condition, ...]:
    return tuple(item.when for item in network_plan.layers if item.when is not None)


def _rule(network_plan: NetworkPlan, rounding: str | None) -> tuple[str, Callable]:
    rounding = network_plan.spec.rounding if rounding is None else rounding
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    return rounding, ROUNDINGS[rounding]


def decide(network_plan: NetworkPlan, alpha: float, delta: int, rounding: str | None = None) -> NetworkPlan:
    """The plan of one configuration: its conditional layers decided on the concrete widths
    (a SpecError where ``residual = true`` meets widths that differ)."""
    rule = _rule(network_plan, rounding)[1]
    whens = conditions(network_plan)
    if not whens:
        return network_plan
    for when in whens:
        if when.kind == "require" and not when.holds(alpha, delta, rule):
            raise SpecError(when.refusal(alpha, delta, rule))
    return specialise(network_plan, [when.holds(alpha, delta, rule) for when in whens])


class PlanGroup(NamedTuple):
    """Points of a vectorised sweep that share one structure: their indices, and the plan they share
    (conditions decided), or why they cannot be built (``refusal``; ``plan`` None)."""

    points: object  # numpy int array of indices
    plan: NetworkPlan | None
    refusal: str = ""


def split(network_plan: NetworkPlan, alphas, deltas, rounding: str | None = None) -> list[PlanGroup]:
    """Group (alpha, delta) points by the layers they have (each condition decided per point), so
    that each group is resolved with :func:`resolve_arrays` on its own plan."""
    import numpy as np

    alphas = np.asarray(alphas, dtype=np.float64)
    deltas = np.asarray(deltas, dtype=np.int64)
    size = np.broadcast(alphas, deltas).size
    whens = conditions(network_plan)
    if not whens:
        return [PlanGroup(np.arange(size), network_plan)]
    rule = _rule(network_plan, rounding)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        decided = np.stack([np.broadcast_to(when.holds(alphas, deltas, rule), (size,)) for when in whens], axis=1)
    groups = []
    refused = np.zeros(size, dtype=bool)
    for number, when in enumerate(whens):
        if when.kind == "require":
            bad = ~decided[:, number] & ~refused
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                a, d = float(np.broadcast_to(alphas, (size,))[first]), int(np.broadcast_to(deltas, (size,))[first])
                groups.append(PlanGroup(np.flatnonzero(bad), None, when.refusal(a, d, rule)))
                refused |= bad
    keep = np.flatnonzero(~refused)
    if keep.size:
        patterns, inverse = np.unique(decided[keep], axis=0, return_inverse=True)
        for number, pattern in enumerate(patterns):
            groups.append(PlanGroup(keep[inverse.ravel() == number], specialise(network_plan, pattern.tolist())))
    return groups


def _concrete_layers(the_plan: NetworkPlan, alpha, delta, rounding: Callable) -> tuple[Layer, ...]:
    """Every layer of ``the_plan`` at ``alpha`` and ``delta``; a width that no float can scale (a
    400-digit ``filters``) is a ConfigError naming its layer, not an OverflowError."""
    layers = []
    for item in the_plan.layers:
        try:
            layers.append(_concrete(item, alpha, delta, rounding))
        except OverflowError:
            raise ConfigError(f"{the_plan.spec.source}: row {item.layer.row}: layer {item.layer.name}: its width "
                              "times alpha is beyond a floating-point number's range") from None
    return tuple(layers)


def _concrete(item: LayerPlan, alpha, delta, rounding: Callable) -> Layer:
    in_c = item.in_ch.evaluate(alpha, delta, rounding)
    out_c = item.out_ch.evaluate(alpha, delta, rounding)
    return _with_channels(item.layer, in_c, out_c, in_c if item.depthwise else 1, delta if item.depthwise else 1,
                          delta if item.in_ch.times_delta else 1)


def _with_channels(layer: Layer, in_c, out_c, groups, delta, in_delta) -> Layer:
    """``dataclasses.replace(layer, in_c=..., ...)`` without its per-call field walk and keyword
    binding (a Layer has no ``__post_init__`` to run): resolving prices every layer of every
    configuration through here, and ``replace`` was a sixth of a sweep's time."""
    concrete = object.__new__(Layer)
    fields = concrete.__dict__
    fields.update(layer.__dict__)
    fields["in_c"], fields["out_c"], fields["groups"], fields["delta"], fields["in_delta"] = (
        in_c, out_c, groups, delta, in_delta)
    return concrete


def resolve(spec: Spec | str, alpha: float = 1.0, delta: int = 1, classes: int | None = None, resolution=None,
            rounding: str | None = None, network_plan: NetworkPlan | None = None) -> Network:
    """Concrete layers of ``spec`` at width multiplier ``alpha`` and depth multiplier ``delta``.
    ``classes``, ``resolution`` and ``rounding`` default to the spec's own (10 classes, 32x32 and
    Keras's truncation for the paper's variants; 1,000, 224x224 and make-divisible-by-8 for the
    MobileNetV2/V3 specs)."""
    alpha, delta, classes = check_config(alpha, delta, classes)
    the_plan = network_plan or plan(spec, classes, resolution)
    rounding, round_width = _rule(the_plan, rounding)
    the_plan = decide(the_plan, alpha, delta, rounding)
    layers = _concrete_layers(the_plan, alpha, delta, round_width)
    for layer in layers:
        if layer.out_c < 1:
            raise ConfigError(
                f"alpha={alpha}: layer {layer.name} would have {layer.out_c} channels; "
                f"alpha is too small for {the_plan.spec.name}"
            )
    return Network(variant=the_plan.spec.name, alpha=alpha, delta=delta, classes=the_plan.classes,
                   resolution=the_plan.resolution, rounding=rounding, layers=layers, spec=the_plan.spec)


def resolve_arrays(network_plan: NetworkPlan, alphas, deltas, rounding: str | None = None) -> tuple[Layer, ...]:
    """The plan's layers with channel fields as numpy arrays, one entry per (alpha, delta) point
    (``rounding`` None: the spec's own). Every point must have the same layers: a plan whose
    conditional layers (residual adds, V3's expansions) differ between the points is first cut
    into groups by :func:`split`."""
    import numpy as np

    alphas = np.asarray(alphas, dtype=np.float64)
    deltas = np.asarray(deltas, dtype=np.int64)
    rounding, rule = _rule(network_plan, rounding)
    if conditions(network_plan):
        groups = split(network_plan, alphas, deltas, rounding)
        if len(groups) != 1 or groups[0].plan is None:
            raise ConfigError("these points do not share one structure (residual adds or expansions differ); "
                              "split them with mnetcost.calculator.resolver.split first")
        network_plan = groups[0].plan
    return _concrete_layers(network_plan, alphas, deltas, rule)
