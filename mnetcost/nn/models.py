"""PyTorch models built from the resolved layers (the records the cost model prices).

:func:`build_model` resolves a variant and hands the :class:`~mnetcost.calculator.resolver.Network` to
:func:`build_from_network`, which makes one module per resolved layer, in order, named after the
layer (``conv1``, ``conv_dw_1``, ``conv_pw_1``, ``maxpool_1``, ``fmp_1``, ``avgpool``, ``fc``), so
fvcore's per-module counts and the analytic rows join on name. There is no second copy of the
architecture here: every width, kernel, stride, padding and group count is read from a layer.

Blocks, as in Keras's MobileNet: a conv (full, depthwise with ``groups = C`` and ``C * delta``
outputs, or pointwise 1x1), no bias, then BatchNorm, then the layer's activation (ReLU for the
paper's specs). Padding is TensorFlow's 'same'
(``layer.padding``): symmetric padding goes into the conv, asymmetric padding (a stride-2 conv
on an even size) is an explicit zero-pad module; max pooling pads with -inf. Then global average
pooling, dropout and a linear classifier with bias (``fc``); the softmax belongs to the loss.

A network that is a chain of layers (the paper's) is an ``nn.Sequential``; one with residual adds or
squeeze-excite (MobileNetV2/V3) is a :class:`GraphNet`, whose forward pass runs the same named
modules in order and feeds each the tensors its layer reads (``Layer.inputs``): ``blockN_add`` adds
two, ``blockN_se_scale`` multiplies the depthwise output by the gate. Activations: ReLU and ReLU6
in place, hard-swish and hard-sigmoid out of place (``nn.Hardswish()``, ``nn.Hardsigmoid()``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mnetcost.errors import ConfigError
from mnetcost.nn.fmp import FMP_MODES, make_fmp, predict_averaged
from mnetcost.calculator.resolver import IMAGE, Layer, Network, resolve

# Keras's BatchNormalization defaults (momentum 0.99 = PyTorch momentum 0.01, epsilon 1e-3).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True),
               "hardswish": lambda: nn.Hardswish(), "hardsigmoid": lambda: nn.Hardsigmoid()}
REPLACEABLE = ("relu", "relu6")  # what build_from_network's ``activation`` may put in place of ReLU


class MobileNet(nn.Sequential):
    """An ``nn.Sequential`` of the resolved layers (plus ``dropout`` before ``fc``), holding the
    :class:`~mnetcost.calculator.resolver.Network` it was built from as ``network``."""

    def __init__(self, modules: OrderedDict, network: Network | None = None):
        super().__init__(modules)
        self.network = network  # None only for a slice such as ``model[:5]``

    def predict_averaged(self, x: torch.Tensor, draws: int = 1) -> torch.Tensor:
        """Class probabilities in eval mode, averaged over ``draws`` fixed FMP draws."""
        return predict_averaged(self, x, draws)


DEPTHWISE_MODES = ("expand", "grouped")


def repeat_channels(x: torch.Tensor, times: int) -> torch.Tensor:
    """``x`` with every channel repeated ``times`` times in place (channels ``c0 c0 c1 c1 ...``),
    in ``x``'s memory format (channels-last stays channels-last). Its backward pass adds the
    ``times`` gradient slices elementwise: a sum over a trailing dimension of size 2 runs ~15x
    slower on CPU than one add of two strided views."""
    return _RepeatChannels.apply(x, times)


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class _RepeatChannels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, times: int) -> torch.Tensor:
        ctx.times = times
        n, c, h, w = x.shape
        index = torch.arange(c, device=x.device).repeat_interleave(times)  # 3-4x faster than expand + copy
        if _channels_last(x):
            rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: channels-last is NHWC in memory
            return rows.index_select(1, index).view(n, h, w, c * times).permute(0, 3, 1, 2)
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        times = ctx.times
        n, ct, h, w = grad.shape
        c = ct // times
        if _channels_last(grad):
            return _sum_slices(grad.permute(0, 2, 3, 1).reshape(n, h, w, c, times).unbind(-1)).permute(0, 3, 1, 2), None
        return _sum_slices(grad.reshape(n, c, times, h, w).unbind(2)), None


def _sum_slices(parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The elementwise sum of ``parts`` (strided views), one in-place add at a time."""
    total = parts[0].clone()
    for part in parts[1:]:
        total.add_(part)
    return total


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution with channel multiplier ``delta = out_channels / in_channels > 1``
    (``groups = in_channels``): an ``nn.Conv2d`` with the same weights, state and counts.

    With ``expand_input`` set (:func:`set_depthwise`, which ``mnetcost train`` uses) it computes
    the same thing as a multiplier-1 depthwise convolution over the input with each channel
    repeated ``delta`` times: output channel ``o`` reads input channel ``o // delta`` either way,
    so the outputs and gradients are equal up to float summation order (the two paths run
    different kernels: equal bits on one CPU are not promised on another; tested against float64
    and float32 rounding bounds).
    oneDNN (PyTorch's CPU convolutions) has fast depthwise kernels only for multiplier 1; for
    multiplier 2 it falls back to its generic grouped kernel, several times slower (README,
    *Speed*). Off by default; tracing (fvcore, ONNX export) always sees the plain grouped layer."""

    expand_input = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        times = self.out_channels // self.in_channels
        if not self.expand_input or times == 1 or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return super().forward(x)  # tracers (fvcore, ONNX export) see the plain grouped layer
        return nn.functional.conv2d(repeat_channels(x, times), self.weight, self.bias, self.stride, self.padding,
                                    self.dilation, self.out_channels)


def set_depthwise(model: nn.Module, mode: str) -> nn.Module:
    """``mode`` ``expand`` (multiplier-1 kernels over repeated channels) or ``grouped`` (the plain
    grouped convolution) for every :class:`DepthwiseConv2d` in ``model``; returns ``model``."""
    if mode not in DEPTHWISE_MODES:
        raise ConfigError(f"depthwise must be one of {', '.join(DEPTHWISE_MODES)}, got {mode!r}")
    for module in model.modules():
        if isinstance(module, DepthwiseConv2d):
            module.expand_input = mode == "expand"
    return model


def _symmetric(padding: tuple[int, int, int, int]) -> bool:
    top, bottom, left, right = padding
    return top == bottom and left == right


def _pad_module(padding: tuple[int, int, int, int], value: float = 0.0) -> nn.Module:
    top, bottom, left, right = padding
    return nn.ConstantPad2d((left, right, top, bottom), value)  # torch order: left, right, top, bottom


def conv_block(layer: Layer, activation: str | None = None) -> nn.Sequential:
    """conv (full, depthwise or pointwise) -> BatchNorm -> activation, as named sub-modules
    ``pad`` (only for asymmetric padding), ``conv``, ``bn`` (when the layer has one), and ``relu``
    (ReLU, ReLU6), ``hardswish`` or ``hardsigmoid``. ``activation`` replaces a ReLU of the layer."""
    parts = OrderedDict()
    top, _, left, _ = layer.padding
    if _symmetric(layer.padding):
        conv_padding = (top, left)
    else:
        parts["pad"] = _pad_module(layer.padding)
        conv_padding = (0, 0)
    multiplied = layer.groups == layer.in_c > 1 and layer.out_c > layer.in_c and layer.out_c % layer.in_c == 0
    conv = DepthwiseConv2d if multiplied else nn.Conv2d
    parts["conv"] = conv(layer.in_c, layer.out_c, layer.kernel, stride=layer.stride, padding=conv_padding,
                         groups=layer.groups, bias=layer.bias)
    if layer.bn:
        parts["bn"] = nn.BatchNorm2d(layer.out_c, eps=BN_EPS, momentum=BN_MOMENTUM)
    kind = activation if activation is not None and layer.activation == "relu" else layer.activation
    if kind:
        parts["relu" if kind in REPLACEABLE else kind] = ACTIVATIONS[kind]()
    return nn.Sequential(parts)


class Add(nn.Module):
    """A residual connection: the sum of the layer's two input tensors (out of place)."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return x + residual


class Scale(nn.Module):
    """A squeeze-excite's gate: ``x`` (N, C, H, W) times ``gate`` (N, C, 1, 1), channel by channel."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return x * gate


class GraphNet(nn.Module):
    """The resolved layers of a network with branches (residual adds, squeeze-excite), one module per
    layer named after it (plus ``flatten`` and ``dropout`` before ``fc``), run in order; each module
    gets the tensors its layer reads (``Layer.inputs``). Holds the :class:`~mnetcost.calculator.resolver.Network`
    as ``network``."""

    def __init__(self, modules: OrderedDict, network: Network):
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)
        self.network = network
        names = list(modules)
        reads = {layer.name: layer.inputs for layer in network.layers}
        # (module name, the tensors it reads; None: the output of the module before it), in order
        self._steps = [(name, reads.get(name)) for name in names]
        last_use: dict[str, int] = {}
        for number, (_, inputs) in enumerate(self._steps):
            for source in inputs or ():
                last_use[source] = number
        self._last_use = last_use  # drop each tensor after its last reader, as the memory model does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = {IMAGE: x}
        previous = IMAGE
        for number, (name, inputs) in enumerate(self._steps):
            module = self._modules[name]
            if inputs is None:  # flatten, dropout: they transform what the next layer (fc) reads
                tensors[previous] = x = module(tensors[previous])
                continue
            x = module(*(tensors[source] for source in inputs))
            previous = name
            tensors[name] = x
            for source in inputs:
                if self._last_use.get(source) == number:
                    tensors.pop(source, None)
        return x

    def predict_averaged(self, x: torch.Tensor, draws: int = 1) -> torch.Tensor:
        """Class probabilities in eval mode, averaged over ``draws`` fixed FMP draws."""
        return predict_averaged(self, x, draws)


def max_pool_block(layer: Layer) -> nn.Module:
    """Max pooling with TF 'same' padding: padded positions never win (pad value -inf)."""
    top, _, left, _ = layer.padding
    if _symmetric(layer.padding) and 2 * max(top, left) <= layer.kernel:
        return nn.MaxPool2d(layer.kernel, layer.stride, padding=(top, left))
    return nn.Sequential(OrderedDict(pad=_pad_module(layer.padding, float("-inf")),
                                     pool=nn.MaxPool2d(layer.kernel, layer.stride)))


MAX_TENSOR_ELEMENTS = 2**31 - 1  # per tensor: TensorFlow Lite's int32 sizes, and far beyond any MobileNet
MAX_MODEL_PARAMS = 2**30  # 4 GiB of float32 weights


def check_buildable(network: Network) -> None:
    """Refuse, in one line, a network too large to build as tensors (a weight or activation tensor of
    more than :data:`MAX_TENSOR_ELEMENTS` elements, more than :data:`MAX_MODEL_PARAMS` weights),
    before PyTorch tries to allocate it; the calculator still prices it exactly."""
    from mnetcost.calculator.memory import network_memory

    layers = network_memory(network, "fp32").layers
    for layer in layers:
        for what, elements in (("input", layer.input_elements), ("weights", layer.weight_elements),
                               ("output", layer.output_elements)):
            if elements > MAX_TENSOR_ELEMENTS:
                raise ConfigError(f"layer {layer.name}: its {what} would have {elements:,} elements, more than the "
                                  f"{MAX_TENSOR_ELEMENTS:,} a tensor may have here; `mnetcost table` prices it")
    total = sum(layer.deploy_params for layer in layers)
    if total > MAX_MODEL_PARAMS:
        raise ConfigError(f"the network would have {total:,} weights, more than the {MAX_MODEL_PARAMS:,} a model "
                          "may have here; `mnetcost table` prices it")


def build_from_network(network: Network, *, dropout: float = 0.1, fmp_mode: str = "tf", fmp_seed: int = 0,
                       fmp_overlapping: bool = False, fmp_pseudo_random: bool = False,
                       activation: str | None = None) -> MobileNet | GraphNet:
    """One module per layer of an already-resolved ``network``, named after the layer: a
    :class:`MobileNet` (``nn.Sequential``) for a chain of layers, a :class:`GraphNet` for a network
    with residual adds or squeeze-excite.

    ``dropout`` (the paper's 10 %) is applied before the classifier; ``fmp_mode`` picks the
    fractional max pooling: ``tf`` (TensorFlow's algorithm, :class:`mnetcost.nn.fmp.FractionalMaxPool2d`)
    or ``torch`` (``nn.FractionalMaxPool2d``-style, for comparison); ``fmp_seed`` seeds the fixed
    draws used in ``eval()``; ``fmp_overlapping``/``fmp_pseudo_random`` are TF's options;
    ``activation`` (relu or relu6) replaces every ReLU (``relu6``: Keras's MobileNet); None keeps
    each layer's own.
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be a number in [0, 1), got {dropout!r}")
    check_buildable(network)
    if fmp_mode not in FMP_MODES:
        raise ConfigError(f"fmp_mode must be one of {', '.join(FMP_MODES)}, got {fmp_mode!r}")
    if activation is not None and activation not in REPLACEABLE:
        raise ConfigError(f"activation must be one of {', '.join(REPLACEABLE)}, got {activation!r}")
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    fmp_count = 0
    for layer in network.layers:
        if layer.kind in ("conv", "dw", "pw"):
            modules[layer.name] = conv_block(layer, activation)
        elif layer.kind == "maxpool":
            modules[layer.name] = max_pool_block(layer)
        elif layer.kind == "fmp":
            modules[layer.name] = make_fmp(layer.ratio, fmp_mode, seed=fmp_seed * 1000 + fmp_count,
                                           overlapping=fmp_overlapping, pseudo_random=fmp_pseudo_random)
            fmp_count += 1
        elif layer.kind == "avgpool":
            modules[layer.name] = nn.AdaptiveAvgPool2d(1)
        elif layer.kind == "fc":
            modules["flatten"] = nn.Flatten(1)
            modules["dropout"] = nn.Dropout(dropout)
            modules[layer.name] = nn.Linear(layer.in_h * layer.in_w * layer.in_c, layer.out_c, bias=True)
        elif layer.kind == "add":
            modules[layer.name] = Add()
        elif layer.kind == "scale":
            modules[layer.name] = Scale()
        else:  # a new kind in resolve.LAYER_KINDS needs a module here
            raise ConfigError(f"layer {layer.name}: no PyTorch module for layer kind {layer.kind!r}")
    if network.branched:
        return GraphNet(modules, network)
    return MobileNet(modules, network)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in ``eval()``) with every conv -> BatchNorm pair folded into one conv
    with a bias, the deployed form: ``W' = W * g / sqrt(v + eps)``, ``b' = beta - m * g / sqrt(v +
    eps)`` per output channel (g, beta: the affine parameters; m, v: the running statistics). A
    BatchNorm without running statistics cannot be folded and stays. Each ``bn`` becomes
    ``nn.Identity``, so module names stay the layers' names (``conv1.conv.weight``)."""
    import copy

    replacements: dict[int, nn.Module] = {}  # id(original module) -> its replacement in the copy
    for block in model.modules():
        names = list(block._modules) if isinstance(block, nn.Sequential) else []
        for first, second in zip(names, names[1:]):
            conv, bn = block._modules[first], block._modules[second]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.modules.batchnorm._BatchNorm)):
                continue
            if bn.running_mean is None or bn.running_var is None:
                continue  # normalises by batch statistics even in eval(): cannot be folded, stays as it is
            with torch.no_grad():
                gain = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
                scale = gain / torch.sqrt(bn.running_var + bn.eps)
                # no initialisation (skip_init): every value is written below
                fused = nn.utils.skip_init(nn.Conv2d, conv.in_channels, conv.out_channels, conv.kernel_size,
                                           conv.stride, conv.padding, conv.dilation, conv.groups, bias=True,
                                           padding_mode=conv.padding_mode, device=conv.weight.device,
                                           dtype=conv.weight.dtype)
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.copy_((bias - bn.running_mean) * scale + shift)
            replacements[id(conv)], replacements[id(bn)] = fused, nn.Identity()
    # the copy takes the replacements where the pairs were (deepcopy's memo), so the folded
    # layers' weights and statistics are never copied only to be thrown away
    return copy.deepcopy(model, memo=dict(replacements)).eval()


def build_model(variant="base", alpha: float = 1.0, delta: int = 1, classes: int | None = None, resolution=None, *,
                dropout: float = 0.1, fmp_mode: str = "tf", fmp_seed: int = 0, fmp_overlapping: bool = False,
                fmp_pseudo_random: bool = False, activation: str | None = None,
                rounding: str | None = None) -> MobileNet | GraphNet:
    """A ``torch.nn.Module`` for ``variant`` (``base``, ``mp3``, ``fmp`` or a spec path) at width
    multiplier ``alpha``, depth multiplier ``delta``, ``classes`` outputs and a square (or
    ``(h, w)``) input of ``resolution`` pixels (``classes``, ``resolution`` and ``rounding`` default to
    the spec's: 10, 32 and truncate for the paper's variants, 1,000, 224 and divisible8 for
    MobileNetV2/V3). Input: (N, channels, h, w) float; output: logits.
    The resolved network is ``model.network``. See :func:`build_from_network` for the options."""
    network = resolve(variant, alpha=alpha, delta=delta, classes=classes, resolution=resolution, rounding=rounding)
    return build_from_network(network, dropout=dropout, fmp_mode=fmp_mode, fmp_seed=fmp_seed,
                              fmp_overlapping=fmp_overlapping, fmp_pseudo_random=fmp_pseudo_random,
                              activation=activation)


__all__ = ["DEPTHWISE_MODES", "Add", "DepthwiseConv2d", "GraphNet", "MobileNet", "Scale", "build_from_network",
           "build_model", "conv_block", "fold_batchnorm", "max_pool_block", "repeat_channels", "set_depthwise"]
