"""Cross-check of the analytic engine against fvcore, run on the real PyTorch model.

For one resolved :class:`~mnetcost.calculator.resolver.Network`, :func:`crosscheck` builds the model from
the same layers (:func:`mnetcost.nn.models.build_from_network`), traces it once in ``eval()`` with
fvcore's ``FlopCountAnalysis`` and reads, per layer (the module of the same name):

* Mult-Adds: fvcore's count with an explicit handle table that counts exactly what the
  convention counts (:func:`handle_table`): convolution and linear multiply-accumulates; plus
  BatchNorm and adaptive average pooling only for the ``fvcore`` convention, which uses fvcore's
  default table unchanged. Ops without a handle are listed as ``unsupported_ops`` (fvcore counts
  them as 0; for the model's pooling/padding ops that is what every convention does too).
* Parameters: fvcore's ``parameter_count`` (trainable tensors) plus, for the paper's
  4-per-channel convention, the BatchNorm running mean and variance read from the module's
  buffers (``num_batches_tracked`` excluded); for the ``weights`` convention, the BatchNorm
  affine parameters are taken out.

A layer agrees when both numbers are equal integers; the totals are compared too (over the whole
model, so a module outside the resolved layers that costs anything makes them disagree).
"""
from __future__ import annotations

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
}


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

    @property
    def disagreeing(self) -> list[LayerCheck]:
        return [layer for layer in self.layers if not layer.agree]

    @property
    def totals_agree(self) -> bool:
        return self.params == self.fvcore_params and self.mult_adds == self.fvcore_mult_adds

    @property
    def agree(self) -> bool:
        return self.totals_agree and not self.disagreeing

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
        return data

    def as_dict(self) -> dict:
        result = self.summary()
        del result["layers_checked"], result["layers_disagreeing"]
        unsupported = result.pop("unsupported_ops")
        result["layers"] = [layer.as_dict(self.convention.ops_per_mac) for layer in self.layers]
        result["unsupported_ops"] = unsupported
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
    raise ValueError(f"convention {convention.name}: cannot measure {convention.bn_params} "
                     "BatchNorm numbers per channel")


def _as_int(value, what: str) -> int:
    as_int = int(round(value))
    if as_int != value:
        raise ValueError(f"fvcore returned a non-integer {what}: {value!r}")
    return as_int


def crosscheck(network: Network, convention: str | Convention = "paper", *, model=None,
               fmp_mode: str = "tf") -> CrossCheck:
    """Compare the engine's per-layer parameters and Mult-Adds of ``network`` with fvcore's counts
    on the PyTorch model (built from ``network`` unless ``model`` is given), traced once."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one tiny forward pass: threads only add contention (10x slower on a busy machine)
    try:
        return _crosscheck(network, get_convention(convention), model, fmp_mode)
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
    height, width = network.resolution
    inputs = torch.zeros(1, network.spec.in_channels, height, width)
    with torch.no_grad():
        model(inputs)  # one plain pass first: per-shape constants (FMP's eval draws) are made outside the trace
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
