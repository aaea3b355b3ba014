"""The analytic cost model: one pure rule per layer kind, a named counting convention, totals.

Every rule reads a resolved :class:`~mnetcost.calculator.resolver.Layer` and returns the raw terms of its
cost (:class:`Terms`); a :class:`Convention` turns terms into the parameters and Mult-Adds that
are reported. The rules are written with plain arithmetic, so the same code prices one
configuration (ints) or a whole sweep at once (numpy arrays in the channel fields).

Equations (1)-(4) of the paper are the ``dw`` and ``pw`` rules: a depthwise conv with C inputs
and C*delta outputs has k*k*C*delta weights and k*k*C*delta*H*W Mult-Adds; a pointwise conv
has C*delta*N weights and C*delta*N*H*W Mult-Adds (H, W: the output size).

The MobileNetV2/V3 kinds: a squeeze-excite's two 1x1 convs (with bias) are ``pw`` layers on a 1x1
map and count as conv multiply-accumulates under every convention; its squeeze is a global average
pool (``pool_elements``); its gate multiply (``scale``: one multiply per element), the residual
``add`` (one add per element) and the hard-swish/hard-sigmoid activations (one multiply per output
element: ``x * relu6(x + 3) / 6`` with the 1/6 folded; the clamps, like ReLU's, are not counted)
are counted only by the ``elementwise`` convention.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, NamedTuple

from mnetcost.errors import ConfigError

if TYPE_CHECKING:  # the ratio command needs none of the resolver
    from fractions import Fraction

    from mnetcost.calculator.resolver import Layer, Network


class Terms(NamedTuple):
    """Raw cost terms of one layer, before a convention chooses what to count."""

    weights: object = 0  # conv kernels, FC weight matrix
    bias: object = 0  # FC bias, and the bias of a conv that has one (squeeze-excite, MobileNetV3's head)
    bn_channels: object = 0  # channels of the BatchNorm that follows the layer
    macs: object = 0  # multiply-accumulates of the weights
    bn_elements: object = 0  # elements the BatchNorm normalises (output numel)
    pool_elements: object = 0  # elements a global average pool reads
    elementwise: object = 0  # residual adds, squeeze-excite gate multiplies, hard-swish/-sigmoid multiplies


HARD_ACTIVATIONS = ("hardswish", "hardsigmoid")  # one multiply per element each (see the module docstring)


def conv_terms(layer: Layer) -> Terms:
    """Full, depthwise and pointwise convolutions: k*k*(C_in/groups)*C_out weights, a bias per
    output channel when the layer has one; a hard-swish/hard-sigmoid after it multiplies once per
    output element."""
    weights = layer.kernel * (layer.kernel_w or layer.kernel) * (layer.in_c // layer.groups) * layer.out_c
    spatial = layer.out_h * layer.out_w
    bn_channels = layer.out_c if layer.bn else 0
    if layer.bias or layer.activation in HARD_ACTIVATIONS:  # the family's layers; V1's never get here
        return Terms(weights=weights, bias=layer.out_c if layer.bias else 0, bn_channels=bn_channels,
                     macs=weights * spatial, bn_elements=bn_channels * spatial,
                     elementwise=layer.out_c * spatial if layer.activation in HARD_ACTIVATIONS else 0)
    return Terms(weights=weights, bn_channels=bn_channels, macs=weights * spatial,
                 bn_elements=bn_channels * spatial)


def elementwise_terms(layer: Layer) -> Terms:
    """A residual add (one add per output element) or a squeeze-excite gate multiply (one multiply
    per output element): no weights, no multiply-accumulates."""
    return Terms(elementwise=layer.out_h * layer.out_w * layer.out_c)


def max_pool_terms(layer: Layer) -> Terms:
    """Max pooling (3x3/2 or fractional): no weights; comparisons are not Mult-Adds."""
    return Terms()


def avg_pool_terms(layer: Layer) -> Terms:
    """Global average pooling: no weights; reads every input element once."""
    return Terms(pool_elements=layer.in_h * layer.in_w * layer.in_c)


def fc_terms(layer: Layer) -> Terms:
    """Fully connected classifier over the flattened input, with bias."""
    features = layer.in_h * layer.in_w * layer.in_c
    weights = features * layer.out_c
    return Terms(weights=weights, bias=layer.out_c, macs=weights)


def linear_terms(layer: Layer) -> Terms:
    """A fully connected layer with its weights and bias as a model file stores them (an imported
    ``FULLY_CONNECTED``): ``in_c`` features to ``out_c`` outputs for each of the ``in_h * in_w`` rows
    it reads; a bias only when the file has one."""
    weights = layer.in_c * layer.out_c
    return Terms(weights=weights, bias=layer.out_c if layer.bias else 0, macs=layer.in_h * layer.in_w * weights)


def window_pool_terms(layer: Layer) -> Terms:
    """An average pool over windows (not global): no weights; reads ``k_h * k_w`` elements per output."""
    return Terms(pool_elements=layer.out_h * layer.out_w * layer.out_c * layer.kernel * (layer.kernel_w or layer.kernel))


def activation_terms(layer: Layer) -> Terms:
    """A standalone activation: hard-swish/hard-sigmoid multiply once per element (module docstring);
    the clamps and table lookups of the others are not counted."""
    return Terms(elementwise=layer.out_h * layer.out_w * layer.out_c if layer.activation in HARD_ACTIVATIONS else 0)


def data_terms(layer: Layer) -> Terms:
    """Reshapes, pads, concatenations, softmax, (de)quantization: no weights, no Mult-Adds."""
    return Terms()


COST_RULES: dict[str, Callable[[Layer], Terms]] = {
    "conv": conv_terms,
    "dw": conv_terms,
    "pw": conv_terms,
    "maxpool": max_pool_terms,
    "fmp": max_pool_terms,
    "avgpool": avg_pool_terms,
    "fc": fc_terms,
    "add": elementwise_terms,
    "scale": elementwise_terms,
    # the kinds of imported model files (mnetcost.calculator.importers)
    "linear": linear_terms,
    "avgpool2d": window_pool_terms,
    "mean": avg_pool_terms,
    "mul": elementwise_terms,
    "act": activation_terms,
    "reshape": data_terms,
    "pad": data_terms,
    "concat": data_terms,
    "softmax": data_terms,
    "quantize": data_terms,
}


class Convention(NamedTuple):
    """What is counted. ``bn_params``: numbers per BatchNorm channel counted as parameters
    (4 = gamma, beta, moving mean, moving variance, as Keras ``count_params`` does; 2 = the
    trainable gamma and beta; 1 = the bias BatchNorm leaves when folded into its conv, as deployed;
    0 = none). ``count_bn_ops``/``count_pool_ops``: add BatchNorm
    (2 per element) and global-average-pool (1 per input element) operations to the Mult-Adds, as
    fvcore's default handles do. ``count_elementwise_ops``: add the residual adds, squeeze-excite
    gate multiplies and hard-swish/hard-sigmoid multiplies (1 per element each). ``ops_per_mac``:
    1 reports Mult-Adds, 2 reports FLOPs."""

    name: str
    description: str
    bn_params: int = 4
    count_bn_ops: bool = False
    count_pool_ops: bool = False
    ops_per_mac: int = 1
    count_elementwise_ops: bool = False

    @property
    def unit(self) -> str:
        return "FLOPs" if self.ops_per_mac == 2 else "Mult-Adds"

    def params(self, terms: Terms):
        return terms.weights + terms.bias + self.bn_params * terms.bn_channels

    def mult_adds(self, terms: Terms):
        total = terms.macs
        if self.count_bn_ops:
            total = total + 2 * terms.bn_elements
        if self.count_pool_ops:
            total = total + terms.pool_elements
        if self.count_elementwise_ops:
            total = total + terms.elementwise
        return total

    def as_dict(self) -> dict:
        data = {"name": self.name, "description": self.description, "bn_params_per_channel": self.bn_params,
                "count_bn_ops": self.count_bn_ops, "count_pool_ops": self.count_pool_ops, "unit": self.unit}
        if self.count_elementwise_ops:
            data["count_elementwise_ops"] = True
        return data


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("paper", "the paper's (Keras count_params): conv/FC multiply-accumulates; "
                            "params = weights + FC bias + 4 per BatchNorm channel"),
        Convention("trainable", "conv/FC multiply-accumulates; params = trainable only "
                                "(BatchNorm gamma and beta, 2 per channel)", bn_params=2),
        Convention("weights", "conv/FC multiply-accumulates; params = conv/FC weights and FC bias, "
                              "no BatchNorm", bn_params=0),
        Convention("flops", "as 'paper', but operations reported as FLOPs = 2 x Mult-Adds", ops_per_mac=2),
        Convention("fvcore", "what fvcore's FlopCountAnalysis counts by default: conv/FC "
                             "multiply-accumulates plus BatchNorm (2 per element) and global average "
                             "pool (1 per input element); params = trainable",
                   bn_params=2, count_bn_ops=True, count_pool_ops=True),
        Convention("deploy", "the deployed model, BatchNorm folded into the conv before it: conv/FC "
                             "multiply-accumulates; params = conv/FC weights + one bias per conv output "
                             "channel + FC bias", bn_params=1),
        Convention("elementwise", "as 'paper', plus one operation per element of every residual add, "
                                  "squeeze-excite gate multiply and hard-swish/hard-sigmoid multiply",
                   count_elementwise_ops=True),
    )
}
DEFAULT_CONVENTION = "paper"


def get_convention(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown convention {name!r} (one of {', '.join(CONVENTIONS)})") from None


class LayerCost(NamedTuple):
    """One row of a cost report: the layer and what it costs under a convention."""

    layer: Layer
    params: int
    mult_adds: int
    terms: Terms | None = None  # the raw terms, reused by the memory figures


@dataclass(frozen=True)
class NetworkCost:
    """Totals and per-layer rows under a convention, and the memory figures at ``dtype``
    (:mod:`mnetcost.calculator.memory`, computed from the same terms on first use)."""

    network: Network
    convention: Convention
    layers: tuple[LayerCost, ...]
    params: int
    mult_adds: int
    dtype: str = "fp32"
    fmp_mode: str = "tf"

    @cached_property
    def memory(self):
        """:class:`~mnetcost.calculator.memory.NetworkMemory` at this cost's ``dtype``."""
        from mnetcost.calculator.memory import network_memory

        terms = [row.terms for row in self.layers]
        return network_memory(self.network, self.dtype, self.fmp_mode,
                              terms=None if any(t is None for t in terms) else terms)

    @property
    def peak_activation_bytes(self) -> int:
        return self.memory.peak_activation_bytes

    @property
    def peak_layer(self) -> str:
        return self.memory.peak_layer

    @property
    def weight_bytes(self) -> int:
        return self.memory.weight_bytes

    @property
    def deploy_params(self) -> int:
        return self.memory.deploy_params

    @property
    def training_activation_bytes_per_image(self) -> int:
        return self.memory.training_activation_bytes_per_image


def layer_terms(layer: Layer) -> Terms:
    return COST_RULES[layer.kind](layer)


def network_cost(network: Network, convention: str | Convention = DEFAULT_CONVENTION, dtype: str = "fp32",
                 fmp_mode: str = "tf") -> NetworkCost:
    """Price every layer of a resolved network, then total (integers throughout). The memory
    figures (``.memory``, ``.peak_activation_bytes``, ``.weight_bytes``, ...) are at ``dtype``
    (fp32, fp16, int8); ``fmp_mode`` (tf, torch) names the FMP implementation for training memory."""
    from mnetcost.calculator.memory import _check_fmp_mode, get_dtype

    conv = get_convention(convention)
    precision = get_dtype(dtype)
    _check_fmp_mode(fmp_mode)
    rows = []
    for layer in network.layers:
        terms = layer_terms(layer)
        rows.append(LayerCost(layer=layer, params=int(conv.params(terms)), mult_adds=int(conv.mult_adds(terms)),
                              terms=terms))
    return NetworkCost(network=network, convention=conv, layers=tuple(rows),
                       params=sum(r.params for r in rows), mult_adds=sum(r.mult_adds for r in rows),
                       dtype=precision.name, fmp_mode=fmp_mode)


def sweep_totals(layers: tuple[Layer, ...], convention: str | Convention = DEFAULT_CONVENTION):
    """Total (params, mult_adds) as int64 arrays for layers from :func:`resolve_arrays`:
    one Python step per layer, every (alpha, delta) point at once."""
    import numpy as np

    conv = get_convention(convention)
    params = np.zeros((), dtype=np.int64)
    mult_adds = np.zeros((), dtype=np.int64)
    for layer in layers:
        terms = layer_terms(layer)
        params = params + conv.params(terms)
        mult_adds = mult_adds + conv.mult_adds(terms)
    return np.asarray(params, dtype=np.int64), np.asarray(mult_adds, dtype=np.int64)


# --- equations (1)-(4) and the ratios of section III.A ------------------------------------------
class SeparableCost(NamedTuple):
    """Eqs (1)-(4) for one depthwise separable conv with integer channels."""

    in_channels: int  # alpha*M as built (int(M * alpha))
    dw_channels: int  # alpha*M*delta
    out_channels: int  # alpha*N as built
    dw_params: int  # eq (1)
    pw_params: int  # eq (2)
    dw_mult_adds: int  # eq (3)
    pw_mult_adds: int  # eq (4)

    @property
    def params(self) -> int:
        return self.dw_params + self.pw_params

    @property
    def mult_adds(self) -> int:
        return self.dw_mult_adds + self.pw_mult_adds


def separable_cost(M: int, N: int, alpha: float, delta: int, kernel: int = 3, feature: int = 32,
                   rounding: Callable = int) -> SeparableCost:
    """Equations (1)-(4): a depthwise separable conv from M to N channels at width ``alpha``
    and depth multiplier ``delta``, kernel D_K = ``kernel``, feature map D_F = ``feature``."""
    in_channels = rounding(M * alpha)
    out_channels = rounding(N * alpha)
    dw_channels = in_channels * delta
    dw_params = kernel * kernel * dw_channels
    pw_params = dw_channels * out_channels
    area = feature * feature
    return SeparableCost(in_channels, dw_channels, out_channels, dw_params, pw_params,
                         dw_params * area, pw_params * area)


def ratio_formula(N: int, alpha: Fraction, delta: int, kernel: int = 3) -> Fraction:
    """The paper's closed form (alpha*D_K^2 + alpha^2*N)*delta / (D_K^2 + N); M and D_F cancel."""
    from fractions import Fraction

    alpha = Fraction(alpha)
    k2 = kernel * kernel
    return (alpha * k2 + alpha * alpha * N) * delta / (k2 + N)


def ratio_approx(alpha: Fraction, delta: int) -> Fraction:
    """The paper's approximation alpha^2 * delta."""
    from fractions import Fraction

    alpha = Fraction(alpha)
    return alpha * alpha * delta
