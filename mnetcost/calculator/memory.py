"""Memory as a cost: activation bytes, peak RAM, weight storage by precision, training memory.

Everything here is computed from the same resolved :class:`~mnetcost.calculator.resolver.Layer`
records and the same per-layer cost terms (:func:`mnetcost.calculator.cost.layer_terms`) that price
parameters and Mult-Adds: one source of truth, exact Python integers (numpy int64 arrays in a
vectorised sweep).

**Precision** (``dtype``): ``fp32`` and ``fp16`` store weights, biases and activations at 4 and 2
bytes. ``int8`` stores weights and activations at 1 byte, biases as int32 (4 bytes) and one fp32
scale (4 bytes) per output channel of every conv and FC layer (per-channel quantization; the few
bytes of per-tensor activation scales/zero points are not counted).

**Deployed weights**: BatchNorm is folded into the conv before it, which then has one bias per
output channel (the ``deploy`` convention): deploy params = conv/FC weights + one bias per output
channel of every conv followed by BatchNorm + FC bias. Weight bytes (Flash) = weights x weight
bytes + biases x bias bytes + scales x 4 (int8).

**Inference execution model** (peak RAM): layers run one after another; BatchNorm and the
activation are fused into their conv; each layer holds its whole inputs and its whole output buffer
at once (the image is conv1's input; max/fractional/average pools, the classifier, a residual add
and a squeeze-excite's gate multiply are layers too). Each activation tensor is alive from the layer
that writes it to the last layer that reads it (:mod:`mnetcost.calculator.lifetimes`; a residual's
input stays alive across its block, a squeeze-excite's input beside the squeeze); the peak is the
largest total alive at one layer (``live_bytes``), which for a chain is a layer's ``input_bytes +
output_bytes``, and the first layer that reaches it is the ``peak_layer``. Per block (``blocks``):
the largest total alive at a layer of the block.

**Training activation memory per image**: what PyTorch's autograd keeps for the backward pass of
mnetcost's model (:mod:`mnetcost.nn.models`, fp32, in ``train()``), counted once per distinct
tensor and charged to the first layer that saves it, per image (the slope in the batch size):

* conv / depthwise / pointwise block (conv -> BatchNorm -> activation): the conv saves its
  input (a new tensor when TF-'same' padding is asymmetric and an explicit pad makes a padded
  copy, or when no layer before saved it, e.g. the image or a pool's output);
  BatchNorm saves its input (the conv output); an in-place ReLU saves its output (which later
  layers reading it then share); ReLU6 (in place too), hard-swish and hard-sigmoid keep a tensor of
  their input's size that no other layer shares (``hardtanh_``'s backward reads the input as it was
  before the in-place write, so autograd keeps a copy of it; hard-swish and hard-sigmoid run out of
  place and save their input: the BatchNorm output, or the conv output without BatchNorm), and the
  next layer saves their output itself. 4 bytes per element.
* residual add: nothing. Squeeze-excite gate multiply: both its inputs (the depthwise output, unless
  an in-place ReLU already saved it, and the gate); its squeeze is a global average pool.
* max pooling: its input (the padded copy when padded explicitly) and its argmax indices (int64,
  8 bytes per output element); the output is saved by the next layer.
* fractional max pooling, ``fmp_mode="tf"``: which candidate won in the row stage (uint8,
  C x out_h x in_w) and in the column stage (uint8, C x out_h x out_w); input and output are not
  kept. ``fmp_mode="torch"`` (``F.fractional_max_pool2d``): its input and int64 indices.
* global average pooling: nothing (its backward needs only the input's shape).
* classifier: dropout's noise tensor (4 bytes per feature on CPU; a CUDA fused dropout keeps a
  1-byte mask instead, 3 bytes per feature less) and the linear layer's input (4 per feature).
* layers before the first layer with weights (a spec that starts with a pool or with ``fc``): the
  image does not require a gradient, so autograd records nothing for a pool or dropout there; a
  first ``fc`` keeps only the linear layer's input (for its weight gradient).

A tensor that several layers save is counted once, for the first. Before the first layer with
weights (a spec that starts with a pool or with ``fc``) the image carries no gradient, so autograd
records nothing for a pool or dropout there; a first ``fc`` keeps only the linear layer's input. Parameters, BatchNorm running statistics and what does not grow with the batch (BatchNorm's
per-channel batch mean and inverse std, FMP's window index tables) are not per-image activations
and are not counted. The loss's own buffers (log-softmax of the logits) are outside the model.

Nothing here imports torch; :mod:`mnetcost.nn.crosscheck` checks every figure against the real
model's tensors (forward hooks, a BatchNorm-folded copy, ``torch.autograd.graph.saved_tensors_hooks``).
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from mnetcost.calculator import lifetimes
from mnetcost.calculator.resolver import is_branched
from mnetcost.errors import ConfigError

if TYPE_CHECKING:
    from mnetcost.calculator.cost import Terms
    from mnetcost.calculator.resolver import Layer, Network


class Precision(NamedTuple):
    """Bytes per stored number at one deployment precision."""

    name: str
    activation_bytes: int
    weight_bytes: int
    bias_bytes: int
    scale_bytes: int  # per output channel of every conv/FC; 0 for float precisions
    description: str

    def as_dict(self) -> dict:
        return {"name": self.name, "activation_bytes": self.activation_bytes, "weight_bytes": self.weight_bytes,
                "bias_bytes": self.bias_bytes, "scale_bytes_per_output_channel": self.scale_bytes,
                "description": self.description}


DTYPES: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", 4, 4, 4, 0, "float32 weights, biases and activations (4 bytes each)"),
        Precision("fp16", 2, 2, 2, 0, "float16 weights, biases and activations (2 bytes each)"),
        Precision("int8", 1, 1, 4, 4, "int8 weights and activations (1 byte), int32 biases (4 bytes), "
                                      "one fp32 scale (4 bytes) per output channel of every conv/FC"),
    )
}
DEFAULT_DTYPE = "fp32"
TARGET_DTYPE = "int8"  # what --target assumes unless --dtype says otherwise
WEIGHTED_KINDS = ("conv", "dw", "pw", "fc", "linear")
CONV_KINDS = ("conv", "dw", "pw")
SAVES_OUTPUT = ("relu",)  # in-place activations whose backward reads their output (see the module docstring)
FMP_MODES = ("tf", "torch")
TRAIN_FLOAT_BYTES = 4  # training runs in fp32
INDEX_BYTES = 8  # int64 argmax indices of max pooling
WINNER_BYTES = 1  # uint8 winners of the TF-style FMP


def get_dtype(name: str | Precision) -> Precision:
    if isinstance(name, Precision):
        return name
    try:
        return DTYPES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown dtype {name!r} (one of {', '.join(DTYPES)})") from None


def _check_fmp_mode(fmp_mode: str) -> None:
    if fmp_mode not in FMP_MODES:
        raise ConfigError(f"fmp_mode must be one of {', '.join(FMP_MODES)}, got {fmp_mode!r}")


# --- per-layer rules ---------------------------------------------------------------------------
def explicit_padding(layer: Layer) -> bool:
    """Whether mnetcost's PyTorch model pads this layer with a separate pad module (a padded copy
    of the input exists): convs with asymmetric TF-'same' padding; max pools with asymmetric
    padding or padding wider than half the kernel (what ``nn.MaxPool2d`` refuses)."""
    top, bottom, left, right = layer.padding
    symmetric = top == bottom and left == right
    if layer.kind in CONV_KINDS:
        return not symmetric
    if layer.kind == "maxpool":
        return not symmetric or 2 * max(top, left) > layer.kernel
    return False


def _padded_elements(layer: Layer):
    top, bottom, left, right = layer.padding
    return (layer.in_h + top + bottom) * (layer.in_w + left + right) * layer.in_c


def autograd_saves(layer: Layer, fmp_mode: str = "tf"):
    """What autograd keeps for ``layer`` in training (the rule in the module docstring), per image:
    ``(shared, private_bytes)``. ``shared`` lists ``(tensor name, elements)`` of fp32 tensors other
    layers may save too (the inputs it reads, by the name of the layer that wrote them, and its own
    output when an in-place ReLU saves it); ``private_bytes`` counts what only this layer keeps."""
    kind = layer.kind
    in_elements = layer.in_h * layer.in_w * layer.in_c
    out_elements = layer.out_h * layer.out_w * layer.out_c
    source = layer.inputs[0] if layer.inputs else "input"
    if kind in CONV_KINDS:
        if explicit_padding(layer):
            shared, private = [], _padded_elements(layer)
        else:
            shared, private = [(source, in_elements)], 0
        if layer.bn:
            private = private + out_elements
        if layer.activation in SAVES_OUTPUT:
            shared.append((layer.name, out_elements))
        elif layer.activation:
            private = private + out_elements
        return shared, private * TRAIN_FLOAT_BYTES
    if kind == "maxpool":
        if explicit_padding(layer):
            return [], _padded_elements(layer) * TRAIN_FLOAT_BYTES + out_elements * INDEX_BYTES
        return [(source, in_elements)], out_elements * INDEX_BYTES
    if kind == "fmp":
        if fmp_mode == "torch":
            return [(source, in_elements)], out_elements * INDEX_BYTES
        rows = layer.out_h * layer.in_w * layer.in_c if layer.in_h > layer.out_h else 0
        cols = out_elements if layer.in_w > layer.out_w else 0
        return [], (rows + cols) * WINNER_BYTES
    if kind in ("avgpool", "add", "avgpool2d", "mean", "mul", "act", "reshape", "pad", "concat", "softmax",
                "quantize"):  # the imported kinds keep no training record: a file is deployed, not trained
        return [], 0
    if kind == "scale":  # x * gate: both factors
        return [(source, in_elements), (layer.inputs[1], layer.out_c)], 0
    if kind == "linear":  # an imported fully connected layer: its input
        return [], in_elements * TRAIN_FLOAT_BYTES
    if kind == "fc":  # dropout's noise + the linear layer's input, both over the flattened features
        return [], 2 * in_elements * TRAIN_FLOAT_BYTES
    raise ConfigError(f"layer {layer.name}: no memory rule for layer kind {kind!r}")


def autograd_saves_without_grad(layer: Layer):
    """What autograd keeps for ``layer`` when no input carries a gradient (no layer with weights ran
    before it: the image or a pool of it): nothing for a layer without weights; a first ``fc``
    keeps only the linear layer's input (for its weight gradient); a conv is unchanged (it keeps
    its input for its weight gradient)."""
    if layer.kind == "fc":
        return [], layer.in_h * layer.in_w * layer.in_c * TRAIN_FLOAT_BYTES
    return [], 0


def training_bytes(layer: Layer, previous_saved_output: bool, fmp_mode: str = "tf",
                   input_requires_grad: bool = True):
    """(bytes per image autograd newly keeps for ``layer`` in a chain, whether it keeps the layer's
    output) under the rule in the module docstring. ``previous_saved_output``: the layer before
    kept its output (so this layer's unpadded input is already counted). ``input_requires_grad``:
    a layer with weights ran before this one."""
    if not input_requires_grad and layer.kind not in CONV_KINDS:
        return autograd_saves_without_grad(layer)[1], False
    shared, private = autograd_saves(layer, fmp_mode)
    saved = {layer.inputs[0]} if previous_saved_output and layer.inputs else set()
    new = sum(elements for name, elements in shared if name not in saved) * TRAIN_FLOAT_BYTES
    return private + new, any(name == layer.name for name, _ in shared)


def weight_counts(layer: Layer, terms: Terms) -> tuple:
    """(weights, biases, per-channel scales) of the deployed layer: BatchNorm folded into a bias
    per output channel; scales (used at int8) per output channel of every conv/FC."""
    biases = terms.bias + terms.bn_channels
    scales = layer.out_c if layer.kind in WEIGHTED_KINDS else 0
    return terms.weights, biases, scales


def stored_bytes(precision: Precision, weights, biases, scales):
    return weights * precision.weight_bytes + biases * precision.bias_bytes + scales * precision.scale_bytes


class LayerMemory(NamedTuple):
    """Memory of one layer: activation elements and bytes (at the precision), deployed weights.
    (A named tuple: built once per layer on every priced configuration, so it is kept cheap.)"""

    name: str
    kind: str
    input_elements: int
    output_elements: int
    weight_elements: int  # conv/FC weights
    bias_elements: int  # folded BatchNorm biases + FC bias
    scale_elements: int  # per-output-channel scales (stored only at int8)
    input_bytes: int
    output_bytes: int
    weight_bytes: int
    training_bytes: int  # per image, fp32, what autograd newly keeps for this layer

    @property
    def activation_bytes(self) -> int:
        """Input + output bytes: what the layer needs at once under the execution model."""
        return self.input_bytes + self.output_bytes

    @property
    def deploy_params(self) -> int:
        return self.weight_elements + self.bias_elements


class BlockMemory(NamedTuple):
    """The inference peak within one block (the largest total of tensors alive at one of its layers)."""

    name: str
    first_layer: str
    last_layer: str
    peak_activation_bytes: int
    peak_layer: str

    def as_dict(self) -> dict:
        return {"block": self.name, "first_layer": self.first_layer, "last_layer": self.last_layer,
                "peak_activation_bytes": self.peak_activation_bytes, "peak_layer": self.peak_layer}


class NetworkMemory:
    """The memory figures of one resolved network at one precision. The inference figures (the peak of
    the tensors alive at once, the deployed weight bytes and params) are computed when it is made; the
    per-layer rows (``layers``) and the training figure, from the same rules, on first use: pricing one
    configuration after another (``paper``, ``plot``, a scalar sweep) mostly reads the totals."""

    def __init__(self, network: Network, dtype: Precision, fmp_mode: str, terms, peak_activation_bytes: int,
                 peak_layer: str, weight_bytes: int, deploy_params: int, live_bytes: tuple, block_names: tuple):
        self.network, self.dtype, self.fmp_mode, self._terms = network, dtype, fmp_mode, terms
        self.peak_activation_bytes, self.peak_layer = peak_activation_bytes, peak_layer
        self.weight_bytes, self.deploy_params = weight_bytes, deploy_params
        self.live_bytes = live_bytes  # per layer: bytes of the tensors alive while it runs
        self.block_names = block_names  # per layer: its block's name ("" outside a block)

    def __repr__(self) -> str:
        return (f"NetworkMemory({self.network.variant!r}, dtype={self.dtype.name!r}, "
                f"peak_activation_bytes={self.peak_activation_bytes}, weight_bytes={self.weight_bytes})")

    @cached_property
    def layers(self) -> tuple[LayerMemory, ...]:
        return memory_rows(self.network, self.dtype, self.fmp_mode, self._terms)

    @cached_property
    def training_activation_bytes_per_image(self) -> int:
        return sum(row.training_bytes for row in self.layers)

    @property
    def blocks(self) -> tuple[BlockMemory, ...]:
        """Per block, in order: its layers and the largest total alive at one of them."""
        found: dict[str, list] = {}
        for layer, live, block in zip(self.network.layers, self.live_bytes, self.block_names):
            if block:
                found.setdefault(block, []).append((layer.name, live))
        blocks = []
        for name, members in found.items():
            best, step = lifetimes.largest([live for _, live in members])
            blocks.append(BlockMemory(name, members[0][0], members[-1][0], best, members[step][0]))
        return tuple(blocks)

    def as_dict(self) -> dict:
        """The top-level memory keys of the JSON contract (exact integers, bytes)."""
        return {"dtype": self.dtype.name, "peak_activation_bytes": self.peak_activation_bytes,
                "peak_layer": self.peak_layer, "weight_bytes": self.weight_bytes,
                "deploy_params": self.deploy_params,
                "training_activation_bytes_per_image": self.training_activation_bytes_per_image}


def activation_tensors(rows, reads=None) -> list:
    """The activation tensors (bytes at the rows' precision) with their lifetimes: the image, then
    each layer's output, alive from the layer that writes it to the last layer that reads it.
    ``reads``: per row the names of the tensors it reads (``Layer.inputs``); None for a chain,
    where each output is alive until the next layer has read it."""
    names = [row.name for row in rows]
    image = rows[0].input_bytes if rows else 0
    outputs = [row.output_bytes for row in rows]
    if reads is None:
        return lifetimes.chain(names, image, outputs)
    return lifetimes.graph(names, image, outputs, reads)


def layer_tensors(layers, element_bytes: int = 1) -> list:
    """The activation tensors of resolved ``layers`` (integers, or arrays from
    :func:`~mnetcost.calculator.resolver.resolve_arrays`) at ``element_bytes`` per element, with their
    lifetimes: the same list :func:`activation_tensors` makes from memory rows (a chain, or the graph
    of ``Layer.inputs`` when some layer reads another tensor than its predecessor's)."""
    if not layers:
        return []
    names = [layer.name for layer in layers]
    image, outputs = activation_sizes(layers, element_bytes)
    if is_branched(layers):
        return lifetimes.graph(names, image, outputs, [layer.inputs for layer in layers])
    return lifetimes.chain(names, image, outputs)


def activation_sizes(layers, element_bytes: int = 1) -> tuple:
    """(the image's size, each layer's output size) of resolved ``layers`` at ``element_bytes`` per
    element (0 and [] without layers)."""
    if not layers:
        return 0, []
    # the spatial factors (integers) first: one array product per layer in a sweep, not two
    image = layers[0].in_h * layers[0].in_w * element_bytes * layers[0].in_c
    return image, [layer.out_h * layer.out_w * element_bytes * layer.out_c for layer in layers]


def network_memory(network: Network, dtype: str | Precision = DEFAULT_DTYPE, fmp_mode: str = "tf",
                   terms=None) -> NetworkMemory:
    """The memory figures of ``network`` at ``dtype`` (:class:`NetworkMemory`): the inference peak
    (execution model above) and the deployed weight bytes and params now, every layer's activation,
    weight and training bytes (:func:`memory_rows`) and the training total on first use. ``terms``
    (one :class:`~mnetcost.calculator.cost.Terms` per layer) saves recomputing them."""
    from mnetcost.calculator.cost import layer_terms

    precision = get_dtype(dtype)
    _check_fmp_mode(fmp_mode)
    layers = network.layers
    if terms is None:
        terms = [layer_terms(layer) for layer in layers]
    weight_width, bias_width, scale_width = precision.weight_bytes, precision.bias_bytes, precision.scale_bytes
    weighted = WEIGHTED_KINDS
    weight_total = params_total = 0
    for layer, term in zip(layers, terms):  # weight_counts and stored_bytes inlined: this runs per configuration
        biases = term.bias + term.bn_channels
        scales = layer.out_c if layer.kind in weighted else 0
        weight_total += term.weights * weight_width + biases * bias_width + scales * scale_width
        params_total += term.weights + biases
    if is_branched(layers):
        live = lifetimes.live_sizes(layer_tensors(layers, precision.activation_bytes))
    else:  # a chain's live sizes, without building its tensors
        live = lifetimes.chain_live_sizes(*activation_sizes(layers, precision.activation_bytes))
    peak, peak_step = lifetimes.largest(live)
    return NetworkMemory(network, precision, fmp_mode, terms, peak, layers[peak_step].name if layers else "",
                         weight_total, params_total, tuple(live), tuple([layer.block_name for layer in layers]))


def memory_rows(network: Network, dtype: str | Precision = DEFAULT_DTYPE, fmp_mode: str = "tf",
                terms=None) -> tuple[LayerMemory, ...]:
    """Every layer's activation elements and bytes at ``dtype``, its deployed weights, and what autograd
    newly keeps for it in training (fp32, per image; the rule in the module docstring)."""
    from mnetcost.calculator.cost import layer_terms

    precision = get_dtype(dtype)
    _check_fmp_mode(fmp_mode)
    act = precision.activation_bytes
    rows = []
    saved: set[str] = set()  # tensors autograd already keeps (by the name of the layer that wrote them)
    with_grad: set[str] = set()  # tensors that carry a gradient (a layer with weights ran before them)
    for number, layer in enumerate(network.layers):
        weights, biases, scales = weight_counts(layer, terms[number] if terms is not None else layer_terms(layer))
        in_elements = layer.in_h * layer.in_w * layer.in_c
        out_elements = layer.out_h * layer.out_w * layer.out_c
        grad = not with_grad.isdisjoint(layer.inputs)
        if grad or layer.kind in WEIGHTED_KINDS:
            with_grad.add(layer.name)
        shared, train = (autograd_saves(layer, fmp_mode) if grad or layer.kind in CONV_KINDS
                         else autograd_saves_without_grad(layer))
        for name, elements in shared:
            if name not in saved:
                saved.add(name)
                train += elements * TRAIN_FLOAT_BYTES
        rows.append(LayerMemory(layer.name, layer.kind, in_elements, out_elements, weights, biases, scales,
                                in_elements * act, out_elements * act,
                                stored_bytes(precision, weights, biases, scales), train))
    return tuple(rows)


# --- the named API (read by the deploy side, issue 9) --------------------------------------------
def weight_bytes(network: Network, dtype: str | Precision = DEFAULT_DTYPE) -> int:
    """Bytes of the deployed weights (BatchNorm folded) of ``network`` at ``dtype``."""
    return network_memory(network, dtype).weight_bytes


def deploy_params(network: Network) -> int:
    """Numbers in the deployed model: conv/FC weights + one bias per conv output channel (BatchNorm
    folded) + FC bias. Equals ``network_cost(network, "deploy").params``."""
    return network_memory(network).deploy_params


def peak_activation(network: Network, dtype: str | Precision = DEFAULT_DTYPE) -> tuple[int, str]:
    """(peak activation bytes, the layer that sets it) under the execution model."""
    memory = network_memory(network, dtype)
    return memory.peak_activation_bytes, memory.peak_layer


def training_activation_bytes(network: Network, fmp_mode: str = "tf") -> int:
    """Bytes per image that autograd keeps for the backward pass (fp32; see the module docstring)."""
    return network_memory(network, fmp_mode=fmp_mode).training_activation_bytes_per_image


# --- the vectorised sweep ------------------------------------------------------------------------
def _plus(total, term):
    """``total + term`` for a sweep's running totals: a term that is the integer 0 (most layers have no
    bias) is skipped, and once the total is an array it is added to in place (its first array is copied
    into a new int64 array, which the total then owns): no array is allocated per layer."""
    if isinstance(term, int) and term == 0:
        return total
    if getattr(total, "ndim", 0):
        total += term
        return total
    if getattr(term, "ndim", 0):
        import numpy as np

        return np.add(term, total, dtype=np.int64)  # a new array, owned by the total from here on
    return total + term


def sweep_costs(layers, convention="paper", dtype: str | Precision = DEFAULT_DTYPE):
    """(params, mult_adds, peak_activation_bytes, weight_bytes) as int64 arrays for layers from
    :func:`~mnetcost.calculator.resolver.resolve_arrays`: the cost terms of each layer are computed
    once and priced for all four; one Python step per layer, every (alpha, delta) point at once."""
    import numpy as np

    from mnetcost.calculator.cost import get_convention, layer_terms

    conv = get_convention(convention)
    precision = get_dtype(dtype)
    params = mult_adds = weights = biases = scales = 0
    for layer in layers:
        terms = layer_terms(layer)
        params = params + conv.params(terms)
        mult_adds = mult_adds + conv.mult_adds(terms)
        weights = _plus(weights, terms.weights)
        biases = _plus(_plus(biases, terms.bias), terms.bn_channels)
        if layer.kind in WEIGHTED_KINDS:
            scales = _plus(scales, layer.out_c)
    peak = lifetimes.peak_array(layer_tensors(layers)) if layers else 0
    stored = stored_bytes(precision, np.asarray(weights, dtype=np.int64), np.asarray(biases, dtype=np.int64),
                          np.asarray(scales, dtype=np.int64))
    return (np.asarray(params, dtype=np.int64), np.asarray(mult_adds, dtype=np.int64),
            np.asarray(peak, dtype=np.int64) * precision.activation_bytes, np.asarray(stored, dtype=np.int64))


# --- formatting helper -----------------------------------------------------------------------------
def format_bytes(value: int) -> str:
    """Bytes for people, binary units: ``512 B``, ``320.0 KiB``, ``4.59 MiB``, ``1.20 GiB``;
    rounded exactly (half to even) from the integer, never through a float (a float turned
    123456789012345 GiB into ``123456789012345.05 GiB``... and 123456789012345678 GiB into
    ``123456789012345680.00 GiB``); from 10^15 units on in scientific notation, ``1.235e+17 GiB``,
    visibly rounded (:func:`exact_bytes` gives the exact count)."""
    from decimal import ROUND_HALF_EVEN, Decimal, localcontext

    value = int(value)
    for factor, unit, digits in ((2**30, "GiB", 2), (2**20, "MiB", 2), (2**10, "KiB", 1)):
        if abs(value) >= factor:
            with localcontext() as context:
                context.prec = len(str(abs(value))) + 40  # value / 2^k has at most k decimals: exact
                exact = Decimal(value) / factor
                if abs(exact) >= 10**15:  # a count in scientific notation, visibly rounded (as millions())
                    return f"{exact:.3e} {unit}".replace("E", "e")
                scaled = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
            return f"{scaled:f} {unit}"
    return f"{value} B"


def exact_bytes(value: int) -> str:
    """The exact count with, from 1 KiB on, its size in binary units: ``24,576 B (24.0 KiB)``;
    below 1 KiB just ``704 B`` (not ``704 B (704 B)``)."""
    value = int(value)
    exact = f"{value:,} B"
    rounded = format_bytes(value)
    return exact if rounded == f"{value} B" else f"{exact} ({rounded})"
