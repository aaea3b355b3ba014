"""Resolution: a spec plus alpha, delta, classes and input size -> concrete layers.

This is the only place where alpha, delta, width rounding and spatial shapes are applied. It
works in two steps so that sweeps can be vectorised without a second copy of the rules:

1. :func:`plan` fixes everything that does not depend on alpha and delta (layer order, names,
   kernels, strides, padding, spatial sizes); channel counts stay symbolic (:class:`Channels`).
2. :func:`resolve` turns the symbolic channels into integers for one (alpha, delta), and
   :func:`resolve_arrays` into numpy arrays for many points at once.

Both the analytic cost model and the torch builder read the :class:`Layer` records made here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from mnetcost.errors import ConfigError
from mnetcost.calculator.spec import Spec, load_spec

LAYER_KINDS = ("conv", "dw", "pw", "maxpool", "fmp", "avgpool", "fc")


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
    product = width * alpha
    if isinstance(product, (int, float)):
        rounded = max(8, int(product + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * product else rounded
    import numpy as np

    rounded = np.maximum(8, (product + 4).astype("int64") // 8 * 8)
    return np.where(rounded < 0.9 * product, rounded + 8, rounded)


ROUNDINGS: dict[str, Callable] = {
    "truncate": round_truncate,
    "nearest": round_nearest,
    "divisible8": round_divisible8,
}


@dataclass(frozen=True)
class Channels:
    """A symbolic channel count: ``rounding(width * alpha)`` (times delta when ``times_delta``),
    or a constant (the image's channels, the number of classes) when ``width`` is None."""

    width: int | None = None
    const: int = 0
    times_delta: bool = False

    def evaluate(self, alpha, delta, rounding: Callable):
        base = self.const if self.width is None else rounding(self.width, alpha)
        return base * delta if self.times_delta else base

    def symbol(self) -> str:
        """The paper's notation: ``32α``, ``(32α × δ)``, ``3``."""
        text = str(self.const) if self.width is None else f"{self.width}α"
        return f"({text} × δ)" if self.times_delta else text


@dataclass(frozen=True)
class Layer:
    """One concrete operation. Channel fields are ints (or numpy arrays in a vectorised sweep).

    ``padding`` is (top, bottom, left, right) as TensorFlow's 'same' padding computes it, so the
    spatial sizes equal Keras's. ``groups`` equals ``in_c`` for a depthwise conv. ``row`` is the
    1-based spec row the layer came from and ``block`` the depthwise separable block number.
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
    relu: bool
    row: int
    block: int = 0
    ratio: float | None = None
    delta: int = 1  # a depthwise conv's depth multiplier: out_c = in_c * delta
    in_delta: int = 1  # delta when the input channels are (C x delta), i.e. after a depthwise conv

    @property
    def input_shape(self) -> tuple:
        return (self.in_h, self.in_w, self.in_c)

    @property
    def output_shape(self) -> tuple:
        return (self.out_h, self.out_w, self.out_c)


@dataclass(frozen=True)
class LayerPlan:
    """A layer whose channels are still symbolic (see :func:`plan`)."""

    layer: Layer  # with in_c/out_c/groups left as placeholders
    in_ch: Channels
    out_ch: Channels
    depthwise: bool


@dataclass(frozen=True)
class NetworkPlan:
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


def check_config(alpha, delta, classes) -> tuple[float, int, int]:
    """(alpha, delta, classes) checked and as Python numbers; a ConfigError names the first bad one."""
    return as_alpha(alpha), as_count(delta, "delta"), as_count(classes, "classes")


def plan(spec: Spec | str, classes: int = 10, resolution=32) -> NetworkPlan:
    """Fix the layer sequence, names and spatial sizes of ``spec`` for an input size and classes."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    classes = as_count(classes, "classes")
    height, width = parse_resolution(resolution)
    channels = Channels(const=spec.in_channels)
    layers: list[LayerPlan] = []
    counters = {"conv": 0, "dws": 0, "maxpool": 0, "fmp": 0, "avgpool": 0}

    def add(name, kind, row, out_h, out_w, out_ch, *, kernel=1, stride=1, padding=(0, 0, 0, 0),
            bn=False, relu=False, block=0, ratio=None, depthwise=False):
        nonlocal height, width, channels
        if out_h < 1 or out_w < 1:
            raise ConfigError(
                f"{spec.source}: row {row.index} ({row.type}): layer {name} would map "
                f"{height}×{width} to {out_h}×{out_w}; the input resolution is too small"
            )
        layer = Layer(
            name=name, kind=kind, kernel=kernel, stride=stride, padding=padding,
            in_h=height, in_w=width, out_h=out_h, out_w=out_w, in_c=None, out_c=None, groups=None,
            bn=bn, relu=relu, row=row.index, block=block, ratio=ratio,
        )
        layers.append(LayerPlan(layer=layer, in_ch=channels, out_ch=out_ch, depthwise=depthwise))
        height, width, channels = out_h, out_w, out_ch

    def conv_geometry(kernel, stride):
        out_h, top, bottom = same_padding(height, kernel, stride)
        out_w, left, right = same_padding(width, kernel, stride)
        return out_h, out_w, (top, bottom, left, right)

    for row in spec.rows:
        if row.type == "conv":
            counters["conv"] += 1
            out_h, out_w, pad = conv_geometry(row["kernel"], row["stride"])
            add(f"conv{counters['conv']}", "conv", row, out_h, out_w, Channels(width=row["filters"]),
                kernel=row["kernel"], stride=row["stride"], padding=pad, bn=True, relu=True)
        elif row.type == "dws":
            for _ in range(row["repeat"]):
                counters["dws"] += 1
                block = counters["dws"]
                out_h, out_w, pad = conv_geometry(row["kernel"], row["stride"])
                dw_out = replace(channels, times_delta=True)
                if channels.times_delta:
                    raise ConfigError(f"{spec.source}: row {row.index}: a depthwise conv cannot follow a depthwise conv")
                add(f"conv_dw_{block}", "dw", row, out_h, out_w, dw_out, kernel=row["kernel"],
                    stride=row["stride"], padding=pad, bn=True, relu=True, block=block, depthwise=True)
                add(f"conv_pw_{block}", "pw", row, height, width, Channels(width=row["filters"]),
                    bn=True, relu=True, block=block)
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


def _concrete(item: LayerPlan, alpha, delta, rounding: Callable) -> Layer:
    in_c = item.in_ch.evaluate(alpha, delta, rounding)
    out_c = item.out_ch.evaluate(alpha, delta, rounding)
    return replace(item.layer, in_c=in_c, out_c=out_c, groups=in_c if item.depthwise else 1,
                   delta=delta if item.depthwise else 1, in_delta=delta if item.in_ch.times_delta else 1)


def resolve(spec: Spec | str, alpha: float = 1.0, delta: int = 1, classes: int = 10, resolution=32,
            rounding: str = "truncate", network_plan: NetworkPlan | None = None) -> Network:
    """Concrete layers of ``spec`` at width multiplier ``alpha`` and depth multiplier ``delta``."""
    alpha, delta, classes = check_config(alpha, delta, classes)
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    the_plan = network_plan or plan(spec, classes, resolution)
    round_width = ROUNDINGS[rounding]
    layers = tuple(_concrete(item, alpha, delta, round_width) for item in the_plan.layers)
    for layer in layers:
        if layer.out_c < 1:
            raise ConfigError(
                f"alpha={alpha}: layer {layer.name} would have {layer.out_c} channels; "
                f"alpha is too small for {the_plan.spec.name}"
            )
    return Network(variant=the_plan.spec.name, alpha=alpha, delta=delta, classes=the_plan.classes,
                   resolution=the_plan.resolution, rounding=rounding, layers=layers, spec=the_plan.spec)


def resolve_arrays(network_plan: NetworkPlan, alphas, deltas, rounding: str = "truncate") -> tuple[Layer, ...]:
    """The plan's layers with channel fields as numpy arrays, one entry per (alpha, delta) point."""
    import numpy as np

    alphas = np.asarray(alphas, dtype=np.float64)
    deltas = np.asarray(deltas, dtype=np.int64)
    return tuple(_concrete(item, alphas, deltas, ROUNDINGS[rounding]) for item in network_plan.layers)
