"""Reports as plain data: per-layer records in the paper's notation, totals, summary grids.

Nothing here prints; :mod:`mnetcost.cli.render` formats what these functions return.
"""
from __future__ import annotations

from mnetcost.calculator.cost import NetworkCost, network_cost
from mnetcost.calculator.resolver import Layer, resolve
from mnetcost.errors import ConfigError

TIMES = " × "


def _channels(count: int, delta: int) -> str:
    """``(16 × 2)`` for channels that are C·δ after a depthwise conv, else ``16``."""
    return f"({count // delta}{TIMES}{delta})" if delta > 1 else str(count)


def type_stride(layer: Layer) -> str:
    """The paper's "Type / Stride" column."""
    stride = f"s{layer.stride:g}"
    return {
        "conv": f"Conv / {stride}",
        "dw": f"Conv dw / {stride}",
        "pw": f"Conv / {stride}",
        "maxpool": f"Maxpool / {stride}",
        "fmp": f"FMP / {stride}",
        "avgpool": "Avg Pool / s1",
        "fc": "FC / s1",
        "add": "Add / s1",
        "scale": "Scale / s1",
        # an imported model file's kinds
        "linear": "FC / s1",
        "avgpool2d": f"Avg Pool / {stride}",
        "mean": "Mean / s1",
        "mul": "Mul / s1",
        "act": f"{layer.activation} / s1",
        "reshape": "Reshape",
        "pad": "Pad",
        "concat": "Concat",
        "softmax": "Softmax",
        "quantize": "(De)quantize",
    }[layer.kind]


def filter_shape(layer: Layer) -> str:
    """The paper's "Filter Shape" column, with alpha and delta applied."""
    k = f"{layer.kernel}{TIMES}{layer.kernel_w or layer.kernel}"
    if layer.kind == "conv":
        return f"{k}{TIMES}{_channels(layer.in_c, layer.in_delta)}{TIMES}{layer.out_c}"
    if layer.kind == "dw":
        return f"{k}{TIMES}{_channels(layer.out_c, layer.delta)}"
    if layer.kind == "pw":
        return f"1{TIMES}1{TIMES}{_channels(layer.in_c, layer.in_delta)}{TIMES}{layer.out_c}"
    if layer.kind == "maxpool":
        return f"Max pooling kernel {k} stride{layer.stride}"
    if layer.kind == "fmp":
        return f"Fractional Max Pooling s{layer.ratio:g}"
    if layer.kind == "avgpool":
        return "Global average pooling"
    if layer.kind in ("add", "mul") and len(layer.inputs) < 2:  # an imported one with a constant operand
        return f"{'+' if layer.kind == 'add' else '×'} a constant"
    if layer.kind == "add":
        return f"Residual: + {layer.inputs[1]}"
    if layer.kind in ("scale", "mul"):
        return f"Per channel: × {layer.inputs[1]}" if layer.kind == "scale" else f"× {layer.inputs[1]}"
    if layer.kind == "linear":
        return f"{layer.in_c}{TIMES}{layer.out_c}" + (" + bias" if layer.bias else "")
    if layer.kind == "avgpool2d":
        return f"Average pooling kernel {k} stride{layer.stride}"
    if layer.kind == "concat":
        return "Concatenation of " + ", ".join(layer.inputs)
    if layer.kind in ("mean", "act", "reshape", "pad", "softmax", "quantize"):
        return ""
    features = layer.in_h * layer.in_w * layer.in_c
    return f"1{TIMES}1{TIMES}{features}{TIMES}{layer.out_c}"


def input_size(layer: Layer) -> str:
    """The paper's "Input Size" column."""
    return f"{layer.in_h}{TIMES}{layer.in_w}{TIMES}{_channels(layer.in_c, layer.in_delta)}"


def output_size(layer: Layer) -> str:
    delta = layer.delta if layer.kind == "dw" else 1
    return f"{layer.out_h}{TIMES}{layer.out_w}{TIMES}{_channels(layer.out_c, delta)}"


def config_dict(cost: NetworkCost) -> dict:
    net = cost.network
    data = {
        "variant": net.variant,
        "spec": net.spec.source,
        "alpha": net.alpha,
        "delta": net.delta,
        "classes": net.classes,
        "resolution": net.resolution[0] if net.resolution[0] == net.resolution[1] else list(net.resolution),
        "rounding": net.rounding,
        "convention": cost.convention.name,
        "unit": cost.convention.unit,
        "params": cost.params,
        "mult_adds": cost.mult_adds,
    }
    if cost.convention.ops_per_mac != 1:
        data["flops"] = cost.mult_adds * cost.convention.ops_per_mac
    data.update(cost.memory.as_dict())  # dtype, peak_activation_bytes, peak_layer, weight_bytes, ...
    return data


def layer_dicts(cost: NetworkCost) -> list[dict]:
    rows = []
    memory = cost.memory
    for row, bytes_, live in zip(cost.layers, memory.layers, memory.live_bytes):
        layer = row.layer
        item = {
            "name": layer.name,
            "type": layer.kind,
            "type_stride": type_stride(layer),
            "filter_shape": filter_shape(layer),
            "input": [layer.in_h, layer.in_w, layer.in_c],
            "output": [layer.out_h, layer.out_w, layer.out_c],
            "kernel": layer.kernel,
            "stride": layer.stride,
            "groups": layer.groups,
            "params": row.params,
            "mult_adds": row.mult_adds,
        }
        if cost.convention.ops_per_mac != 1:
            item["flops"] = row.mult_adds * cost.convention.ops_per_mac
        item.update({"input_bytes": bytes_.input_bytes, "output_bytes": bytes_.output_bytes,
                     "live_bytes": live, "weight_bytes": bytes_.weight_bytes,
                     "training_bytes": bytes_.training_bytes, "peak": layer.name == memory.peak_layer,
                     "activation": layer.activation, "inputs": list(layer.inputs), "block": layer.block_name})
        rows.append(item)
    return rows


def network_report(cost: NetworkCost, with_layers: bool = True, fit=None) -> dict:
    """The documented JSON object of ``mnetcost table`` for one configuration; ``fit`` (a
    :class:`~mnetcost.calculator.targets.Fit`) adds whether it fits a board or budgets."""
    data = config_dict(cost)
    data["title"] = cost.network.spec.title
    data["paper_table"] = cost.network.spec.paper_table
    data["convention_detail"] = cost.convention.as_dict()
    data["dtype_detail"] = cost.memory.dtype.as_dict()
    if fit is not None:
        data["fit"] = fit.as_dict()
    if with_layers:
        data["branched"] = cost.network.branched
        data["layers"] = layer_dicts(cost)
        data["blocks"] = [block.as_dict() for block in cost.memory.blocks]
    return data


def runtime_dict(cost: NetworkCost, runtime: str = "simple", tflm_build: str | None = None) -> dict:
    """``{"runtime": ...}`` and, for ``tflm``, TensorFlow Lite Micro's arena and the .tflite bytes
    (:func:`mnetcost.calculator.tflm.runtime_figures`) of ``cost``'s network in ``tflm_build``
    (``host64`` unless given)."""
    if runtime == "simple":
        return {"runtime": "simple"}
    from mnetcost.calculator import tflm

    if runtime not in tflm.RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(tflm.RUNTIMES)}, got {runtime!r}")
    if cost.memory.dtype.name != "int8":
        raise ConfigError(f"runtime tflm runs the int8 file; dtype {cost.memory.dtype.name} does not apply")
    return tflm.runtime_figures(cost.network, tflm_build or tflm.DEFAULT_BUILD)


def fit_dict(cost: NetworkCost, target=None, max_peak_memory=None, max_weight_bytes=None, figures=None,
             flash_reserve: int | None = None):
    """The :class:`~mnetcost.calculator.targets.Fit` of ``cost`` against a board and/or budgets, or
    None when neither is given. RAM and Flash are the runtime's (``figures`` from
    :func:`runtime_dict`): the simple model's peak and weight bytes, or TFLM's arena and the file plus
    TFLM's code; Flash also keeps ``flash_reserve`` bytes for the application
    (:data:`~mnetcost.calculator.targets.DEFAULT_FLASH_RESERVE` when None)."""
    if target is None and max_peak_memory is None and max_weight_bytes is None:
        return None
    from mnetcost.calculator.targets import DEFAULT_FLASH_RESERVE, fit
    from mnetcost.calculator.tflm import flash_parts, needs

    reserve = DEFAULT_FLASH_RESERVE if flash_reserve is None else int(flash_reserve)
    report = {**config_dict(cost), **(figures or {})}
    ram, flash = needs(report, reserve)
    return fit(ram, flash, target, max_peak_memory, max_weight_bytes, flash_parts(report, reserve))


def change(value: int, reference: int) -> float:
    """Relative change of ``value`` against ``reference`` (0.021 = +2.1 %)."""
    return (value - reference) / reference


def grid_report(spec, alphas, deltas, classes, resolution, convention, rounding, baseline_spec="base",
                dtype: str = "fp32", target=None, max_peak_memory=None, max_weight_bytes=None,
                runtime: str = "simple", tflm_build: str | None = None, flash_reserve: int | None = None
                ) -> list[dict]:
    """Totals per (alpha, delta) and the change against the original MobileNet (Table 1, alpha =
    delta = 1) at the same classes, resolution, convention and rounding, as in Tables 4-6; memory
    totals at ``dtype``, and whether each fits a board/budgets when given."""
    from mnetcost.calculator.resolver import plan

    network_plan = plan(spec, classes, resolution)  # classes, resolution None: the spec's own
    baseline = network_cost(resolve(baseline_spec, 1.0, 1, network_plan.classes, network_plan.resolution, rounding),
                            convention)
    rows = []
    for alpha in alphas:
        for delta in deltas:
            cost = network_cost(resolve(spec, alpha, delta, classes, resolution, rounding, network_plan), convention,
                                dtype)
            data = config_dict(cost)
            figures = runtime_dict(cost, runtime, tflm_build)
            data.update(figures)
            fitted = fit_dict(cost, target, max_peak_memory, max_weight_bytes, figures, flash_reserve)
            if fitted is not None:
                data["fit"] = fitted.as_dict()
            data["baseline_params"] = baseline.params
            data["baseline_mult_adds"] = baseline.mult_adds
            data["params_change"] = change(cost.params, baseline.params)
            data["mult_adds_change"] = change(cost.mult_adds, baseline.mult_adds)
            rows.append(data)
    return rows
