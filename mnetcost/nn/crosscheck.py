"""Cross-check of the analytic engine against fvcore, run on the real PyTorch model.

For one resolved :class:`~mnetcost.calculator.resolver.Network`, :func:`crosscheck` builds the model from
the same layers (:func:`mnetcost.nn.models.build_from_network`), traces it once in ``eval()`` with
fvcore's ``FlopCountAnalysis`` and reads, per layer (the module of the same name):

* Mult-Adds: fvcore's count with an explicit handle table that counts exactly what the
  convention counts (:func:`handle_table`): convolution and linear multiply-accumulates; plus
  BatchNorm and adaptive average pooling only for the ``fvcore`` convention, which uses fvcore's
  default table unchanged; plus one per output element of ``aten::add`` (residual), ``aten::mul``
  (squeeze-excite gate), ``aten::hardswish`` and ``aten::hardsigmoid`` for the ``elementwise``
  convention. Ops without a handle are listed as ``unsupported_ops`` (fvcore counts them as 0; for
  the model's pooling/padding ops that is what every convention does too; fvcore's default table
  has no handle for add, mul, hard-swish, hard-sigmoid or ReLU6 either).
* Parameters: fvcore's ``parameter_count`` (trainable tensors) plus, for the paper's
  4-per-channel convention, the BatchNorm running mean and variance read from the module's
  buffers (``num_batches_tracked`` excluded); for the ``weights`` convention, the BatchNorm
  affine parameters are taken out.

A layer agrees when both numbers are equal integers; the totals are compared too (over the whole
model, so a module outside the resolved layers that costs anything makes them disagree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from mnetcost.calculator.cost import Convention, get_convention, network_cost
from mnetcost.calculator.resolver import Network

BN_STAT_BUFFERS = ("running_mean", "running_var")

# ops that the model uses and every convention prices at 0 (comparisons, padding, reshaping)
ZERO_COST_OPS = {
    "aten::max_pool2d": "max pooling",
    "aten::fractional_max_pool2d": "torch FMP",
    "aten::index": "FMP window gather",
    "aten::index_select": "FMP window gather",
    "aten::where": "FMP window max",
    "aten::pad": "'same' padding",
    "aten::constant_pad_nd": "'same' padding",
    "aten::batch_norm": "BatchNorm",
    "aten::adaptive_avg_pool2d": "global average pooling",
    "aten::add": "residual add (counted by the elementwise convention only)",
    "aten::mul": "squeeze-excite gate multiply (counted by the elementwise convention only)",
    "aten::hardswish": "hard-swish (its multiply counted by the elementwise convention only)",
    "aten::hardsigmoid": "hard-sigmoid (its multiply counted by the elementwise convention only)",
    "aten::hardtanh": "ReLU6",
    "aten::hardtanh_": "ReLU6",
}
ELEMENTWISE_OPS = ("aten::add", "aten::mul", "aten::hardswish", "aten::hardsigmoid")  # 1 per output element


def handle_table(convention: Convention) -> dict | None:
    """fvcore op handles that count what ``convention`` counts; None means fvcore's defaults."""
    _fvcore()
    from fvcore.nn import jit_handles as h

    if convention.name == "fvcore":
        return None
    table = {
        "aten::_convolution": h.conv_flop_jit,
        "aten::linear": h.linear_flop_jit,
        "aten::addmm": h.addmm_flop_jit,
        "aten::matmul": h.matmul_flop_jit,
        "aten::mm": h.matmul_flop_jit,
    }
    if convention.count_bn_ops:
        table["aten::batch_norm"] = h.batchnorm_flop_jit
    if convention.count_pool_ops:
        table["aten::adaptive_avg_pool2d"] = h.elementwise_flop_counter(1, 0)
    if convention.count_elementwise_ops:
        for op in ELEMENTWISE_OPS:
            table[op] = h.elementwise_flop_counter(0, 1)
    return table


@dataclass(frozen=True)
class LayerCheck:
    name: str
    kind: str
    params: int
    mult_adds: int
    fvcore_params: int
    fvcore_mult_adds: int
    trainable_params: int  # fvcore parameter_count of the layer's module
    bn_stats: int  # BatchNorm running mean + variance elements (module buffers)

    @property
    def agree(self) -> bool:
        return self.params == self.fvcore_params and self.mult_adds == self.fvcore_mult_adds

    def as_dict(self, ops_per_mac: int = 1) -> dict:
        data = {"name": self.name, "type": self.kind, "params": self.params, "mult_adds": self.mult_adds,
                "fvcore_params": self.fvcore_params, "fvcore_mult_adds": self.fvcore_mult_adds,
                "trainable_params": self.trainable_params, "bn_stats": self.bn_stats, "agree": self.agree}
        if ops_per_mac != 1:
            data["flops"] = self.mult_adds * ops_per_mac
            data["fvcore_flops"] = self.fvcore_mult_adds * ops_per_mac
        return data


@dataclass(frozen=True)
class CrossCheck:
    network: Network
    convention: Convention
    fmp_mode: str
    layers: tuple[LayerCheck, ...]
    params: int
    mult_adds: int
    fvcore_params: int
    fvcore_mult_adds: int
    unsupported_ops: dict = field(default_factory=dict)
    memory: "MemoryCheck | None" = None  # activation, weight and training bytes against the model's tensors

    @property
    def disagreeing(self) -> list[LayerCheck]:
        return [layer for layer in self.layers if not layer.agree]

    @property
    def memory_agree(self) -> bool:
        return self.memory is None or self.memory.agree

    @property
    def totals_agree(self) -> bool:
        return self.params == self.fvcore_params and self.mult_adds == self.fvcore_mult_adds

    @property
    def agree(self) -> bool:
        return self.totals_agree and not self.disagreeing and self.memory_agree

    @property
    def unexpected_ops(self) -> dict:
        """Unsupported ops that are not pooling/padding/normalisation the convention prices at 0."""
        return {op: n for op, n in self.unsupported_ops.items() if op not in ZERO_COST_OPS}

    def summary(self) -> dict:
        net = self.network
        height, width = net.resolution
        data = {
            "variant": net.variant, "spec": net.spec.source, "alpha": net.alpha, "delta": net.delta,
            "classes": net.classes, "resolution": height if height == width else [height, width],
            "rounding": net.rounding, "convention": self.convention.name, "unit": self.convention.unit,
            "fmp_mode": self.fmp_mode, "agree": self.agree,
            "params": self.params, "mult_adds": self.mult_adds,
            "fvcore_params": self.fvcore_params, "fvcore_mult_adds": self.fvcore_mult_adds,
        }
        ops = self.convention.ops_per_mac
        if ops != 1:
            data["flops"] = self.mult_adds * ops
            data["fvcore_flops"] = self.fvcore_mult_adds * ops
        data.update({"layers_checked": len(self.layers),
                     "layers_disagreeing": [layer.name for layer in self.disagreeing],
                     "unsupported_ops": dict(self.unsupported_ops)})
        if self.memory is not None:
            data["memory"] = self.memory.summary()
        return data

    def as_dict(self) -> dict:
        result = self.summary()
        del result["layers_checked"], result["layers_disagreeing"]
        unsupported = result.pop("unsupported_ops")
        result["layers"] = [layer.as_dict(self.convention.ops_per_mac) for layer in self.layers]
        result["unsupported_ops"] = unsupported
        if self.memory is not None:
            result["memory"] = self.memory.as_dict()
        return result


def _bn_numbers(module) -> tuple[int, int]:
    """(affine parameters, running-statistic elements) of the BatchNorms inside ``module``."""
    from torch import nn

    affine = stats = 0
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            affine += sum(p.numel() for p in sub.parameters(recurse=False))
            stats += sum(b.numel() for name, b in sub.named_buffers(recurse=False) if name in BN_STAT_BUFFERS)
    return affine, stats


def _measured_params(convention: Convention, trainable: int, bn_affine: int, bn_stats: int) -> int:
    if convention.bn_params == 4:
        return trainable + bn_stats
    if convention.bn_params == 2:
        return trainable
    if convention.bn_params == 0:
        return trainable - bn_affine
    if convention.bn_params == 1 and not bn_affine and not bn_stats:
        return trainable  # counted on the BatchNorm-folded copy: each BatchNorm is one bias per channel
    raise ValueError(f"convention {convention.name}: cannot measure {convention.bn_params} "
                     "BatchNorm numbers per channel")


def _as_int(value, what: str) -> int:
    as_int = int(round(value))
    if as_int != value:
        raise ValueError(f"fvcore returned a non-integer {what}: {value!r}")
    return as_int


def crosscheck(network: Network, convention: str | Convention = "paper", *, model=None,
               fmp_mode: str = "tf", dtype: str = "fp32", memory: bool = True) -> CrossCheck:
    """Compare the engine's per-layer parameters and Mult-Adds of ``network`` with fvcore's counts
    on the PyTorch model (built from ``network`` unless ``model`` is given), traced once; and,
    unless ``memory`` is False, its memory figures at ``dtype`` with the model's own tensors
    (:func:`memory_check`). The ``deploy`` convention is counted on a BatchNorm-folded copy."""
    import torch

    from mnetcost.calculator.memory import get_dtype

    from mnetcost.nn import models

    get_dtype(dtype)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one tiny forward pass: threads only add contention (10x slower on a busy machine)
    try:
        own = model is None
        if own:  # one model for both checks (fvcore's counts do not depend on the values)
            model = models.build_from_network(network, fmp_mode=fmp_mode)
            if memory:
                _random_batchnorm(model)  # an untrained model's BatchNorms are near identities: folding proves little
        check = _crosscheck(network, get_convention(convention), model, fmp_mode)
        if memory:
            from dataclasses import replace

            check = replace(check, memory=_memory_check(network, dtype, model, fmp_mode, own))
        return check
    finally:
        torch.set_num_threads(threads)


def _fvcore():
    """fvcore's counters; importing fvcore makes torch warn that ``torch.jit.script`` is deprecated."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        from fvcore.nn import FlopCountAnalysis, parameter_count
    return FlopCountAnalysis, parameter_count


def _crosscheck(network: Network, conv: Convention, model, fmp_mode: str) -> CrossCheck:
    import torch

    FlopCountAnalysis, parameter_count = _fvcore()

    from mnetcost.nn import models

    cost = network_cost(network, conv)
    if model is None:
        model = models.build_from_network(network, fmp_mode=fmp_mode)
    model.eval()
    if conv.bn_params == 1:  # the deploy convention: count the deployed (BatchNorm-folded) model
        model = models.fold_batchnorm(model)
    height, width = network.resolution
    inputs = torch.zeros(1, network.spec.in_channels, height, width)
    analysis = FlopCountAnalysis(model, inputs)
    table = handle_table(conv)
    if table is not None:
        analysis.clear_op_handles().set_op_handle(**table)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        by_module = analysis.by_module()
        unsupported = dict(sorted(analysis.unsupported_ops().items()))
    counts = parameter_count(model)
    modules = dict(model.named_modules())
    rows = []
    for row in cost.layers:
        name = row.layer.name
        if name not in modules:
            raise ValueError(f"the model has no module named {name!r} (resolved layer {row.layer.kind})")
        trainable = int(counts.get(name, 0))
        bn_affine, bn_stats = _bn_numbers(modules[name])
        rows.append(LayerCheck(
            name=name, kind=row.layer.kind, params=row.params, mult_adds=row.mult_adds,
            fvcore_params=_measured_params(conv, trainable, bn_affine, bn_stats),
            fvcore_mult_adds=_as_int(by_module.get(name, 0), f"count for {name}"),
            trainable_params=trainable, bn_stats=bn_stats,
        ))
    bn_affine, bn_stats = _bn_numbers(model)
    return CrossCheck(
        network=network, convention=conv, fmp_mode=fmp_mode, layers=tuple(rows),
        params=cost.params, mult_adds=cost.mult_adds,
        fvcore_params=_measured_params(conv, int(counts[""]), bn_affine, bn_stats),
        fvcore_mult_adds=_as_int(analysis.total(), "total"),
        unsupported_ops=unsupported,
    )


# --- the configurations of --all ---------------------------------------------------------------
@dataclass(frozen=True)
class Configuration:
    variant: str
    alpha: float
    delta: int
    classes: int
    resolution: int
    source: str  # "table 4 cifar10" or "unprinted"


UNPRINTED = (
    Configuration("base", 0.75, 3, 10, 32, "unprinted"),
    Configuration("fmp", 0.75, 3, 37, 32, "unprinted"),
    Configuration("mp3", 0.35, 5, 37, 64, "unprinted"),
    Configuration("fmp", 0.5, 1, 100, 64, "unprinted"),
    Configuration("base", 1.0, 1, 1000, 224, "unprinted (MobileNet, ImageNet size)"),
)


def paper_grid() -> list[Configuration]:
    """Every configuration printed in Tables 4-6 (both datasets, the baseline once)."""
    from mnetcost.calculator.paper import load_paper_results, unique_configurations

    return [Configuration(r.variant, r.alpha, r.delta, r.classes, 32, f"table {r.table} {r.dataset}")
            for r in unique_configurations(load_paper_results())]


def all_configurations() -> list[Configuration]:
    return paper_grid() + list(UNPRINTED)


# --- memory against the model's own tensors ----------------------------------------------------
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}
TRAIN_BATCHES = (2, 4)  # training memory is measured at two batch sizes: per image = the slope


def _random_batchnorm(model, seed: int = 0) -> None:
    """Give every BatchNorm of ``model`` seeded random statistics and affine parameters, so that
    folding it is a real test (at initialisation they are 0, 1, 1, 0)."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                channels = module.num_features
                module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(channels, generator=generator) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
                    module.bias.copy_(torch.randn(channels, generator=generator) * 0.2)


def _layer_owner(model, names: list[str]) -> dict[str, str]:
    """Top-level module name -> resolved layer it belongs to (``flatten``/``dropout`` -> ``fc``)."""
    owner, pending = {}, []
    for child, _ in model.named_children():
        if child in names:
            for waiting in pending:
                owner[waiting] = child
            owner[child], pending = child, []
        else:
            pending.append(child)
    for waiting in pending:
        owner[waiting] = names[-1]
    return owner


def activation_shapes(model, network) -> dict[str, tuple]:
    """Per layer: (input shape, output shape) of the module's real tensors, batch 1, ``eval()``."""
    return {name: (trace.input_shape, trace.output_shape) for name, trace in activation_trace(model, network).items()}


@dataclass(frozen=True)
class LayerTrace:
    """What one layer's module did in a real forward pass: the shapes of its first input and its
    output, and which earlier layer wrote each tensor it read (``"input"``: the image)."""

    input_shape: tuple
    output_shape: tuple
    read_from: tuple[str, ...]
    output_elements: int


def activation_trace(model, network) -> dict[str, LayerTrace]:
    """Per layer, in order: :class:`LayerTrace` of its module in one ``eval()`` pass of batch 1.
    Tensors are told apart by their storage (every tensor is kept alive during the pass, so no
    address is reused); a view (``flatten``) or a module that returns its input (``dropout`` in
    eval) is the same tensor."""
    import torch

    from mnetcost.calculator.resolver import IMAGE

    writer: dict[int, str] = {}
    traces, reads, hooks, kept = {}, {}, [], []
    modules = dict(model.named_children())

    def before(module, inputs, name):
        names = []
        for tensor in inputs:
            kept.append(tensor)
            names.append(writer.get(tensor.untyped_storage().data_ptr(), "?"))
        reads[name] = (tuple(names), tuple(inputs[0].shape))

    def after(module, inputs, output, name):
        kept.append(output)
        writer[output.untyped_storage().data_ptr()] = name
        read_from, input_shape = reads[name]
        traces[name] = LayerTrace(input_shape, tuple(output.shape), read_from, output.numel())

    for layer in network.layers:
        module = modules[layer.name]
        hooks.append(module.register_forward_pre_hook(lambda m, i, name=layer.name: before(m, i, name)))
        hooks.append(module.register_forward_hook(lambda m, i, o, name=layer.name: after(m, i, o, name)))
    height, width = network.resolution
    image = torch.zeros(1, network.spec.in_channels, height, width)
    writer[image.untyped_storage().data_ptr()] = IMAGE
    try:
        model.eval()
        with torch.no_grad():
            model(image)
    finally:
        for hook in hooks:
            hook.remove()
    return {layer.name: traces[layer.name] for layer in network.layers}


def measured_tensors(network, trace: dict[str, LayerTrace], itemsize: int) -> list:
    """The model's activation tensors with the lifetimes its forward pass gave them (each alive from
    the layer that wrote it to the last layer that read it, per :func:`activation_trace`), at
    ``itemsize`` bytes per element: the list :func:`mnetcost.calculator.memory.activation_tensors`
    builds from the resolved layers, measured."""
    import math

    from mnetcost.calculator import lifetimes

    names = [layer.name for layer in network.layers]
    image = math.prod(trace[names[0]].input_shape) * itemsize if names else 0
    return lifetimes.graph(names, image, [trace[name].output_elements * itemsize for name in names],
                           [trace[name].read_from for name in names])


def saved_bytes(model, network, batch: int) -> dict[str, int]:
    """Per layer: bytes of the distinct tensors autograd saves for the backward pass during one
    ``train()`` forward pass of ``batch`` images (``torch.autograd.graph.saved_tensors_hooks``),
    each tensor charged to the first layer that saves it; parameters and buffers left out."""
    import torch

    names = [layer.name for layer in network.layers]
    owner = _layer_owner(model, names)
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    current = [names[0]]
    by_layer = dict.fromkeys(names, 0)
    seen: set[int] = set()
    kept = []  # keep every saved tensor alive so no storage address is reused during the pass

    def pack(tensor):
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in weights and pointer not in seen and storage.nbytes():
            seen.add(pointer)
            by_layer[current[0]] += storage.nbytes()
        kept.append(tensor)
        return tensor

    hooks = [module.register_forward_pre_hook(lambda module, inputs, name=owner[child]: current.__setitem__(0, name))
             for child, module in model.named_children()]
    height, width = network.resolution
    generator = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, network.spec.in_channels, height, width, generator=generator)
    try:
        model.train()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            output = model(images)
        del output, kept[:]
    finally:
        for hook in hooks:
            hook.remove()
    return by_layer


@dataclass(frozen=True)
class LayerMemoryCheck:
    name: str
    kind: str
    input_shape: tuple  # the engine's (C, H, W)
    output_shape: tuple
    model_input_shape: tuple  # the module's real tensors, batch dimension dropped
    model_output_shape: tuple
    input_bytes: int
    output_bytes: int
    model_input_bytes: int  # real tensor elements x bytes of the dtype
    model_output_bytes: int
    weight_bytes: int
    folded_weight_bytes: int  # the BatchNorm-folded model's tensors of this layer at the dtype
    training_bytes: int  # per image
    measured_training_bytes: int  # slope over the batch of what autograd saved for this layer
    per_batch_bytes: int  # what autograd saved for this layer that does not grow with the batch
    inputs: tuple = ()  # the tensors the resolved layer reads (layer names, "input" = the image)
    model_inputs: tuple = ()  # the layers that wrote the tensors its module read in the forward pass
    live_bytes: int = 0  # the engine's bytes alive while it runs
    measured_live_bytes: int = 0  # the same from the model's tensors and the lifetimes of its forward pass

    @property
    def agree(self) -> bool:
        return (self.input_bytes == self.model_input_bytes and self.output_bytes == self.model_output_bytes
                and self.weight_bytes == self.folded_weight_bytes
                and self.training_bytes == self.measured_training_bytes
                and _same_shape(self.input_shape, self.model_input_shape)
                and _same_shape(self.output_shape, self.model_output_shape)
                and tuple(self.inputs) == tuple(self.model_inputs) and self.live_bytes == self.measured_live_bytes)

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.kind, "input": list(self.input_shape),
                "model_input": list(self.model_input_shape), "output": list(self.output_shape),
                "model_output": list(self.model_output_shape), "input_bytes": self.input_bytes,
                "model_input_bytes": self.model_input_bytes, "output_bytes": self.output_bytes,
                "model_output_bytes": self.model_output_bytes, "weight_bytes": self.weight_bytes,
                "folded_weight_bytes": self.folded_weight_bytes, "training_bytes": self.training_bytes,
                "measured_training_bytes": self.measured_training_bytes, "per_batch_bytes": self.per_batch_bytes,
                "inputs": list(self.inputs), "model_inputs": list(self.model_inputs), "live_bytes": self.live_bytes,
                "measured_live_bytes": self.measured_live_bytes, "agree": self.agree}


def _same_shape(engine: tuple, model: tuple) -> bool:
    """(C, H, W) against a module's tensor shape without the batch: (C, H, W), or (F,) flattened."""
    if len(model) == 1:
        return engine[0] * engine[1] * engine[2] == model[0]
    return tuple(engine) == tuple(model)


@dataclass(frozen=True)
class MemoryCheck:
    network: Network
    dtype: str
    fmp_mode: str
    layers: tuple[LayerMemoryCheck, ...]
    peak_activation_bytes: int
    peak_layer: str
    measured_peak_bytes: int
    measured_peak_layer: str
    weight_bytes: int
    folded_weight_bytes: int  # over every parameter of the folded model
    deploy_params: int
    folded_params: int
    training_activation_bytes_per_image: int
    measured_training_bytes_per_image: int  # over the whole model
    per_batch_bytes: int
    fold_max_diff: float  # max |folded(x) - model(x)| / max(1, max |model(x)|) in eval: the same function

    @property
    def disagreeing(self) -> list[LayerMemoryCheck]:
        return [layer for layer in self.layers if not layer.agree]

    @property
    def totals_agree(self) -> bool:
        return (self.peak_activation_bytes == self.measured_peak_bytes and self.peak_layer == self.measured_peak_layer
                and self.weight_bytes == self.folded_weight_bytes and self.deploy_params == self.folded_params
                and self.training_activation_bytes_per_image == self.measured_training_bytes_per_image
                and self.fold_max_diff <= FOLD_TOLERANCE)

    @property
    def agree(self) -> bool:
        return self.totals_agree and not self.disagreeing

    def summary(self) -> dict:
        return {"dtype": self.dtype, "agree": self.agree,
                "peak_activation_bytes": self.peak_activation_bytes, "peak_layer": self.peak_layer,
                "measured_peak_bytes": self.measured_peak_bytes, "measured_peak_layer": self.measured_peak_layer,
                "weight_bytes": self.weight_bytes, "folded_weight_bytes": self.folded_weight_bytes,
                "deploy_params": self.deploy_params, "folded_params": self.folded_params,
                "training_activation_bytes_per_image": self.training_activation_bytes_per_image,
                "measured_training_bytes_per_image": self.measured_training_bytes_per_image,
                "per_batch_bytes": self.per_batch_bytes, "fold_max_diff": self.fold_max_diff,
                "layers_disagreeing": [layer.name for layer in self.disagreeing]}

    def as_dict(self) -> dict:
        data = self.summary()
        del data["layers_disagreeing"]
        data["layers"] = [layer.as_dict() for layer in self.layers]
        return data


FOLD_TOLERANCE = 1e-4  # relative logit difference accepted between folded and original (float32 rounding)


def _stored_bytes(module, precision) -> int:
    """Bytes of a module's parameters at ``precision``: conv/linear weights, biases (+ one scale per
    output channel at int8); any other parameter is counted at the weight width."""
    from torch import nn

    total = 0
    for sub in module.modules():
        for name, tensor in sub.named_parameters(recurse=False):
            if isinstance(sub, (nn.Conv2d, nn.Linear)) and name == "weight":
                total += tensor.numel() * precision.weight_bytes + tensor.shape[0] * precision.scale_bytes
            elif isinstance(sub, (nn.Conv2d, nn.Linear)) and name == "bias":
                total += tensor.numel() * precision.bias_bytes
            else:
                total += tensor.numel() * precision.weight_bytes
    return total


def memory_check(network: Network, dtype: str = "fp32", *, model=None, fmp_mode: str = "tf") -> MemoryCheck:
    """Compare the engine's memory figures of ``network`` at ``dtype`` with the model's own tensors:
    every layer's input/output shapes and bytes (forward hooks, batch 1, eval), which layers wrote
    the tensors it read, the bytes alive at each layer and the peak (the lifetimes the forward pass
    gave the model's tensors, :func:`measured_tensors`), the deployed weight
    bytes and params (a BatchNorm-folded copy), and the training activation bytes per image (what
    ``saved_tensors_hooks`` sees at two batch sizes, in ``train()`` on a copy of the model)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few tiny passes: threads only add contention
    try:
        own = model is None
        if own:
            from mnetcost.nn import models

            model = models.build_from_network(network, fmp_mode=fmp_mode)
            _random_batchnorm(model)  # an untrained model's BatchNorms are near identities: folding proves little
        return _memory_check(network, dtype, model, fmp_mode, own)
    finally:
        torch.set_num_threads(threads)


def _memory_check(network: Network, dtype: str, model, fmp_mode: str, own: bool) -> MemoryCheck:
    """``own``: the model is this check's to change (its training passes update BatchNorm statistics)."""
    import copy

    import torch

    from mnetcost.calculator import lifetimes
    from mnetcost.calculator.memory import get_dtype, network_memory
    from mnetcost.nn import models

    precision = get_dtype(dtype)
    memory = network_memory(network, precision, fmp_mode)
    itemsize = getattr(torch, TORCH_DTYPES[precision.name]).itemsize
    trace = activation_trace(model, network)
    measured_live = lifetimes.live_sizes(measured_tensors(network, trace, itemsize))
    folded = models.fold_batchnorm(model)
    height, width = network.resolution
    probe = torch.rand(2, network.spec.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model.eval()(probe)
        fold_diff = float((folded(probe) - reference).abs().max() / max(1.0, float(reference.abs().max())))
    trainee = model if own else copy.deepcopy(model)  # train() passes update BatchNorm statistics
    small, large = (saved_bytes(trainee, network, batch) for batch in TRAIN_BATCHES)
    span = TRAIN_BATCHES[1] - TRAIN_BATCHES[0]
    folded_modules = dict(folded.named_children())
    rows = []
    for step, (layer, row) in enumerate(zip(network.layers, memory.layers)):
        model_in, model_out = trace[layer.name].input_shape[1:], trace[layer.name].output_shape[1:]
        slope, remainder = divmod(large[layer.name] - small[layer.name], span)
        measured = slope if not remainder else (large[layer.name] - small[layer.name]) / span
        rows.append(LayerMemoryCheck(
            name=layer.name, kind=layer.kind, input_shape=(layer.in_c, layer.in_h, layer.in_w),
            output_shape=(layer.out_c, layer.out_h, layer.out_w), model_input_shape=tuple(model_in),
            model_output_shape=tuple(model_out), input_bytes=row.input_bytes, output_bytes=row.output_bytes,
            model_input_bytes=math.prod(model_in) * itemsize, model_output_bytes=math.prod(model_out) * itemsize,
            weight_bytes=row.weight_bytes, folded_weight_bytes=_stored_bytes(folded_modules[layer.name], precision),
            training_bytes=row.training_bytes, measured_training_bytes=measured,
            per_batch_bytes=int(small[layer.name] - TRAIN_BATCHES[0] * measured),
            inputs=layer.inputs, model_inputs=trace[layer.name].read_from, live_bytes=memory.live_bytes[step],
            measured_live_bytes=measured_live[step],
        ))
    peak_bytes, peak_step = lifetimes.largest(measured_live)  # the model's live tensors, first of the largest
    measured_total = sum(r.measured_training_bytes for r in rows)
    return MemoryCheck(
        network=network, dtype=precision.name, fmp_mode=fmp_mode, layers=tuple(rows),
        peak_activation_bytes=memory.peak_activation_bytes, peak_layer=memory.peak_layer,
        measured_peak_bytes=peak_bytes, measured_peak_layer=rows[peak_step].name if rows else "",
        weight_bytes=memory.weight_bytes, folded_weight_bytes=_stored_bytes(folded, precision),
        deploy_params=memory.deploy_params, folded_params=sum(p.numel() for p in folded.parameters()),
        training_activation_bytes_per_image=memory.training_activation_bytes_per_image,
        measured_training_bytes_per_image=measured_total,
        per_batch_bytes=sum(r.per_batch_bytes for r in rows), fold_max_diff=fold_diff,
    )
