"""A model to ONNX with evaluation semantics, checked against PyTorch in ONNX Runtime.

What the file computes is what ``model.eval()`` computes:

* **BatchNorm folded** into the convolution before it (:func:`eval_copy`, before the exporter
  runs; where the exporter's optimizer drops an all-zero bias, as a freshly initialised BatchNorm
  gives, :func:`tidy` puts a zero bias back: every conv of the file has one bias per output
  channel, the ``deploy`` counting convention, whatever the weights' values).
* **No dropout** (eval mode).
* **Fractional max pooling with its fixed evaluation draw** (``eval_draw`` of
  :class:`mnetcost.nn.fmp.FractionalMaxPool2d`) as standard operators: the draw's row and column
  windows become constant index vectors, one per candidate position of a window, and each FMP
  layer becomes one ``Gather`` per candidate and a ``Max`` over rows, then the same over columns
  (:class:`FixedDrawFMP`). No custom operator. ``nn.FractionalMaxPool2d``-style layers
  (``fmp_mode="torch"``) draw per image and channel and have no such form: they are refused.

The exporter is PyTorch's ``torch.export``-based one (``torch.onnx.export(..., dynamo=True)``,
which needs ``onnxscript``), at opset :data:`OPSET`, with a dynamic batch dimension. The file is one
self-contained ``.onnx`` (weights inside, no ``.data`` side file), its conv nodes named after the
layers (``conv1``, ``conv_dw_1`` ...), the exporter's per-node stack traces removed, and the
configuration recorded in the model's metadata (``mnetcost.*`` keys).

:func:`check_outputs` runs the file in ONNX Runtime and compares with PyTorch's eval output:
``max |ORT - PyTorch| <= tolerance * max(1, max |PyTorch|)`` (:data:`DEFAULT_TOLERANCE`).
"""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mnetcost.errors import MnetcostError

OPSET = 18
DEFAULT_TOLERANCE = 1e-4
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# Operators whose presence means the file does not have evaluation semantics.
TRAINING_OPS = ("BatchNormalization", "Dropout")


class ExportError(MnetcostError):
    """A model that cannot be exported as asked (exit 2)."""


class ToleranceError(Exception):
    """ONNX Runtime's output differs from PyTorch's beyond the tolerance (exit 1, nothing written)."""

    def __init__(self, check: "OutputCheck"):
        self.check = check
        super().__init__(f"ONNX Runtime differs from PyTorch by {check.max_abs_diff:.3g} (max |logit| "
                         f"{check.max_abs_reference:.3g}), beyond the tolerance {check.tolerance:g} x "
                         f"max(1, max |logit|) = {check.allowed:.3g}")


# --- evaluation-mode model -------------------------------------------------------------------
class FixedDrawFMP(nn.Module):
    """One fixed draw of TensorFlow-style fractional max pooling as gathers and maxima.

    ``rows`` (out_h x K) and ``cols`` (out_w x K) list each window's input positions (padded by
    repeating the last one, harmless for a max): the output is the element-wise max of the K row
    gathers, then of the K column gathers (exact: a max only selects). Exports as one ``Gather``
    per candidate and one ``Max`` per axis, no reshapes (cheaper to export and to run than a
    gather of all candidates, a reshape and a ``ReduceMax``)."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor):
        super().__init__()
        self.out_h, self.k_h = (int(v) for v in rows.shape)
        self.out_w, self.k_w = (int(v) for v in cols.shape)
        for axis, table in (("rows", rows), ("cols", cols)):
            for j in range(table.shape[1]):  # one index vector per candidate: no slicing in the graph
                self.register_buffer(f"{axis}_{j}", table[:, j].clone(), persistent=False)

    def extra_repr(self) -> str:
        return f"out=({self.out_h}, {self.out_w}), window=({self.k_h}, {self.k_w})"

    def _max(self, x: torch.Tensor, dim: int, axis: str, k: int) -> torch.Tensor:
        best = x.index_select(dim, getattr(self, f"{axis}_0"))
        for j in range(1, k):
            best = torch.maximum(best, x.index_select(dim, getattr(self, f"{axis}_{j}")))
        return best

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._max(self._max(x, 2, "rows", self.k_h), 3, "cols", self.k_w)


def _input_sizes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """The (height, width) each child module receives for input ``x`` (one forward pass)."""
    sizes, hooks = {}, []
    for name, module in model.named_children():
        hooks.append(module.register_forward_pre_hook(
            lambda module, args, name=name: sizes.__setitem__(name, tuple(int(v) for v in args[0].shape[-2:]))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def eval_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode, BatchNorm folded into the conv before it
    (:func:`mnetcost.nn.models.fold_batchnorm`), whose FMP layers are :class:`FixedDrawFMP` modules
    holding the draw each layer uses in ``eval()``: the copy computes what ``model.eval()`` does
    (the fold up to float rounding). Raises :class:`ExportError` for layers without a
    standard-operator form."""
    from mnetcost.nn.fmp import FractionalMaxPool2d, TorchFractionalMaxPool2d, window_index
    from mnetcost.nn.models import fold_batchnorm

    for name, module in model.named_modules():
        if isinstance(module, TorchFractionalMaxPool2d):
            raise ExportError(f"layer {name}: fmp_mode 'torch' (nn.FractionalMaxPool2d) draws its windows per image "
                              "and channel and has no ONNX form; export a model built with fmp_mode 'tf'")
    # folded here, not by the exporter: the exporter then has a third fewer operators to trace and
    # decompose (about a third of its time)
    copy_ = fold_batchnorm(model).to("cpu", memory_format=torch.contiguous_format)
    network = getattr(model, "network", None)
    fmp = [name for name, module in copy_.named_children() if isinstance(module, FractionalMaxPool2d)]
    if not fmp:
        return copy_
    if network is None:
        raise ExportError("a model with fractional max pooling needs its resolved network (build_model's model)")
    shape = (1, network.spec.in_channels, *network.resolution)
    sizes = _input_sizes(copy_, torch.zeros(shape))
    for name in fmp:
        layer = getattr(copy_, name)
        height, width = sizes[name]
        row_cum, col_cum = layer.sequences(height, width, layer.eval_draw)
        setattr(copy_, name, FixedDrawFMP(window_index(row_cum, height, layer.overlapping),
                                          window_index(col_cum, width, layer.overlapping)))
    return copy_


# --- export ------------------------------------------------------------------------------------
def _quiet_export(model: nn.Module, x: torch.Tensor):
    """``torch.onnx.export`` (torch.export-based) without its progress lines and warnings."""
    import contextlib
    import io
    import logging

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                model, (x,), None, dynamo=True, opset_version=OPSET, optimize=True, verbose=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            )
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def fold_pads_into_max_pools(proto) -> int:
    """Replace each ``Pad`` with value -inf that only feeds a ``MaxPool`` by that MaxPool's own
    ``pads`` attribute (ONNX max pooling ignores padded positions: the same result), in place;
    returns how many. TF-'same' max pooling pads asymmetrically, which PyTorch's ``MaxPool2d``
    cannot, so the model pads explicitly with -inf; a quantizer would turn that -inf into NaN
    scales."""
    from onnx import helper, numpy_helper

    initializers = {init.name: init for init in proto.graph.initializer}
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in proto.graph.output}
    folded = []
    for pad in proto.graph.node:
        if pad.op_type != "Pad" or len(pad.input) not in (2, 3) or pad.output[0] in outputs:
            continue
        mode = [a.s for a in pad.attribute if a.name == "mode"]
        if mode and mode[0] != b"constant":
            continue
        if pad.input[1] not in initializers or len(pad.input) < 3 or pad.input[2] not in initializers:
            continue
        pads = numpy_helper.to_array(initializers[pad.input[1]]).tolist()
        value = numpy_helper.to_array(initializers[pad.input[2]])
        users = consumers.get(pad.output[0], [])
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or value.size != 1 or not np.isneginf(value).all():
            continue
        if len(users) != 1 or users[0].op_type != "MaxPool":
            continue
        pool = users[0]
        old = [list(a.ints) for a in pool.attribute if a.name == "pads"]
        old = old[0] if old else [0, 0, 0, 0]
        new = [pads[2] + old[0], pads[3] + old[1], pads[6] + old[2], pads[7] + old[3]]
        for attribute in list(pool.attribute):
            if attribute.name == "pads":
                pool.attribute.remove(attribute)
        pool.attribute.append(helper.make_attribute("pads", new))
        pool.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        proto.graph.node.remove(pad)
    used = {name for node in proto.graph.node for name in node.input}
    for init in list(proto.graph.initializer):
        if init.name not in used and any(init.name in pad.input for pad in folded):
            proto.graph.initializer.remove(init)
    return len(folded)


def tidy(proto, metadata: dict | None = None):
    """Make the exported graph a clean deployment file (in place; returns ``proto``): -inf pads
    folded into their max pooling (:func:`fold_pads_into_max_pools`), conv nodes named after
    their layer, a zero bias for every conv whose folded bias the optimizer dropped, no per-node
    metadata (stack traces with local paths), ``metadata`` as ``mnetcost.*`` props."""
    from onnx import numpy_helper

    fold_pads_into_max_pools(proto)
    initializers = {init.name: init for init in proto.graph.initializer}
    used = {node.name for node in proto.graph.node}
    for node in proto.graph.node:
        del node.metadata_props[:]
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        weight_name = node.input[1]
        layer = weight_name.split(".")[0]
        if layer and layer not in used:
            used.discard(node.name)
            node.name = layer
            used.add(layer)
        if node.op_type == "Conv" and len(node.input) == 2:
            out_channels = int(initializers[weight_name].dims[0])
            stem = weight_name[: -len("weight")] if weight_name.endswith("weight") else weight_name + "."
            bias_name = stem + "bias"
            bias = numpy_helper.from_array(np.zeros(out_channels, dtype=np.float32), bias_name)
            proto.graph.initializer.append(bias)
            initializers[bias_name] = bias
            node.input.append(bias_name)
    for value in (*proto.graph.input, *proto.graph.output):
        del value.metadata_props[:]
    del proto.metadata_props[:]
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"mnetcost.{key}", value if isinstance(value, str) else json.dumps(value)
    return proto


def export_proto(model: nn.Module, *, metadata: dict | None = None, example_batch: int = 2):
    """``model`` (eval semantics, see the module docstring) as an ``onnx.ModelProto``."""
    network = getattr(model, "network", None)
    exportable = eval_copy(model)
    if network is None:
        raise ExportError("export needs a model built by mnetcost (build_model), which knows its input shape")
    x = torch.zeros((example_batch, network.spec.in_channels, *network.resolution))
    try:
        program = _quiet_export(exportable, x)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; say which and where
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {first})") from None
    proto = program.model_proto
    tidy(proto, {"opset": OPSET, "dtype": "fp32", **(metadata or {})})
    ops = op_counts(proto)
    left = [op for op in TRAINING_OPS if op in ops]
    if left:
        raise ExportError(f"the exported graph still has {', '.join(left)} nodes (no evaluation semantics)")
    return proto


def serialize(proto) -> bytes:
    """The whole model, weights included, as the bytes of one ``.onnx`` file."""
    data = proto.SerializeToString()
    if not data:
        raise ExportError("the exported model is empty")
    return data


def metadata_of(proto) -> dict:
    """The ``mnetcost.*`` metadata of a file, JSON values decoded."""
    found = {}
    for entry in proto.metadata_props:
        if entry.key.startswith("mnetcost."):
            try:
                found[entry.key[len("mnetcost."):]] = json.loads(entry.value)
            except ValueError:
                found[entry.key[len("mnetcost."):]] = entry.value
    return found


def op_counts(proto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


# --- what the file stores ----------------------------------------------------------------------
@dataclass
class WeightCensus:
    """The weights of a file as stored: per role (conv/FC weight, bias), element counts by dtype,
    bytes, and the quantization parameters (scales, zero points) of a QDQ file."""

    float_weight_elements: int = 0  # float32 elements of conv/FC weights and biases
    int8_weight_elements: int = 0  # int8 elements of conv/FC weights
    int32_bias_elements: int = 0
    weight_bytes: int = 0  # conv/FC weights and biases as stored (any dtype)
    scale_bytes: int = 0  # quantization scales of weights and biases
    zero_point_bytes: int = 0
    other_float_elements: int = 0  # float initializers that are not weights, quantization params or pad values
    tensors: list = field(default_factory=list)  # (layer input name, role, dtype, elements)

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.scale_bytes + self.zero_point_bytes

    def as_dict(self) -> dict:
        return {"float_weight_elements": self.float_weight_elements,
                "int8_weight_elements": self.int8_weight_elements,
                "int32_bias_elements": self.int32_bias_elements,
                "weight_bytes": self.weight_bytes, "scale_bytes": self.scale_bytes,
                "zero_point_bytes": self.zero_point_bytes, "weight_storage_bytes": self.total_bytes,
                "other_float_elements": self.other_float_elements}


def weight_census(proto) -> WeightCensus:
    """Count what the Conv and Gemm nodes read as weight and bias: initializers fed directly
    (fp32 file) or through ``DequantizeLinear`` (QDQ int8 file), with that node's scale and
    zero point."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in proto.graph.initializer}
    producers = {out: node for node in proto.graph.node for out in node.output}
    census = WeightCensus()
    counted: set[str] = set()

    def array(name):
        return numpy_helper.to_array(initializers[name])

    def take(name: str, role: str, layer: str):
        if name in initializers and name not in counted:
            counted.add(name)
            values = array(name)
            census.tensors.append((layer, role, str(values.dtype), int(values.size)))
            census.weight_bytes += int(values.nbytes)
            if values.dtype == np.float32:
                census.float_weight_elements += int(values.size)
            elif values.dtype == np.int8 and role == "weight":
                census.int8_weight_elements += int(values.size)
            elif values.dtype == np.int32 and role == "bias":
                census.int32_bias_elements += int(values.size)
            return
        node = producers.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            take(node.input[0], role, layer)
            for position, attr in ((1, "scale_bytes"), (2, "zero_point_bytes")):
                if len(node.input) > position and node.input[position] in initializers \
                        and node.input[position] not in counted:
                    counted.add(node.input[position])
                    setattr(census, attr, getattr(census, attr) + int(array(node.input[position]).nbytes))

    for node in proto.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            take(node.input[1], "weight", node.name)
            if len(node.input) > 2 and node.input[2]:
                take(node.input[2], "bias", node.name)
    not_weights = {name for node in proto.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
                   for name in node.input[1:]}  # scales and zero points
    not_weights |= {node.input[2] for node in proto.graph.node if node.op_type == "Pad" and len(node.input) > 2}
    census.other_float_elements = sum(  # pad values (max pooling pads with -inf) are not weights either
        int(np.prod(init.dims)) for name, init in initializers.items()
        if name not in counted and name not in not_weights and init.data_type == 1)  # 1 = FLOAT
    return census


# --- ONNX Runtime against PyTorch ----------------------------------------------------------------
@dataclass(frozen=True)
class OutputCheck:
    images: int
    max_abs_diff: float
    max_abs_reference: float
    tolerance: float
    top1_agreement: float  # share of images whose argmax agrees
    top1_differing: int = 0  # images whose argmax differs
    # the largest gap, in the reference, between its top logit and that of the class the output
    # picked, over the images whose argmax differs: at most 2 x max_abs_diff (a near tie)
    top1_differing_gap: float = 0.0

    @property
    def allowed(self) -> float:
        return self.tolerance * max(1.0, self.max_abs_reference)

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff)) and self.max_abs_diff <= self.allowed

    def as_dict(self) -> dict:
        return {"images": self.images, "max_abs_diff": self.max_abs_diff,
                "max_abs_logit": self.max_abs_reference, "tolerance": self.tolerance,
                "allowed_abs_diff": self.allowed, "top1_agreement": self.top1_agreement,
                "top1_differing": self.top1_differing, "top1_differing_gap": self.top1_differing_gap,
                "passed": self.passed}


def torch_reference(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """PyTorch's eval-mode output for ``x`` (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().cpu().numpy()
    finally:
        model.train(was_training)


def compare(reference: np.ndarray, output: np.ndarray, tolerance: float) -> OutputCheck:
    """``output`` against ``reference`` (both images x logits): the largest difference, and where
    the top-1 class differs, how close the reference's logits of the two classes were (a class
    can change only where they are within twice the largest difference)."""
    diff = float(np.max(np.abs(output.astype(np.float64) - reference.astype(np.float64)))) if reference.size else 0.0
    ours, theirs = reference.argmax(1), output.argmax(1)
    differing = np.flatnonzero(ours != theirs)
    gaps = reference[differing, ours[differing]].astype(np.float64) - reference[differing, theirs[differing]]
    return OutputCheck(images=int(reference.shape[0]), max_abs_diff=diff,
                       max_abs_reference=float(np.max(np.abs(reference))) if reference.size else 0.0,
                       tolerance=float(tolerance),
                       top1_agreement=float(np.mean(ours == theirs)) if reference.size else 1.0,
                       top1_differing=int(differing.size), top1_differing_gap=float(gaps.max(initial=0.0)))


def check_outputs(model: nn.Module, session, x: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> OutputCheck:
    """Run ``x`` through the ONNX Runtime ``session`` and through ``model`` in eval mode."""
    from mnetcost.deploy.runtime import run

    return compare(torch_reference(model, x), run(session, x), tolerance)


def check_batch(network, images: int = 16, seed: int = 0) -> np.ndarray:
    """Standard-normal inputs of the model's shape (what a normalised image looks like)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((images, network.spec.in_channels, *network.resolution)).astype(np.float32)
