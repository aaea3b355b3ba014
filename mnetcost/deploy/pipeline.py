"""``mnetcost export`` and ``mnetcost evaluate`` as library calls: what to export (a fresh model or a
trained run), the export with its check against PyTorch, int8 quantization, and the record that
the commands print. Nothing here writes a file: the caller writes :attr:`Exported.data`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mnetcost.deploy import evaluate as EV
from mnetcost.deploy import export as EX
from mnetcost.errors import MnetcostError

DEFAULT_CHECK_IMAGES = 64


@dataclass
class Source:
    """A model to export and what goes with it."""

    model: object  # mnetcost.nn.models.MobileNet
    metadata: dict
    run: EV.Run | None = None
    normalization: EV.Normalization | None = None
    test_images: np.ndarray | None = None  # uint8 (N, C, H, W), the check's images; None: standard-normal inputs
    test_labels: np.ndarray | None = None
    data_name: str | None = None
    train_images: np.ndarray | None = None  # uint8, for calibration
    calibration_source: str | None = None

    @property
    def network(self):
        return self.model.network


def fresh_source(variant, alpha, delta, classes, resolution, *, dataset: str | None = None, data_dir=None,
                 resize: bool = False) -> Source:
    """A freshly initialised model (``build_model``'s weights, seed 0); with ``dataset``, its test
    images check the export and its training images calibrate int8 (normalised by its own
    training statistics). ``resize``: a dataset whose images are not the model's size is resized
    to it (:func:`resize_images`; said in ``calibration_source`` and the metadata) instead of refused."""
    import torch

    from mnetcost.nn.models import build_model

    torch.manual_seed(0)
    model = build_model(variant, alpha=alpha, delta=delta, classes=classes, resolution=resolution).eval()
    network = model.network
    metadata = {"variant": str(variant), "alpha": alpha, "delta": delta, "classes": classes,
                "resolution": list(network.resolution), "spec": network.variant, "weights": "initial (seed 0)",
                "fmp_mode": "tf", "fmp_draw": 0}
    source = Source(model=model, metadata=metadata)
    if dataset is not None:
        from mnetcost.nn.datasets import check_channels

        check_channels(network.spec.in_channels, f"--dataset {dataset}")  # before any download: every source is RGB
        data = EV.load_data(dataset, data_dir)
        stored = tuple(data.resolution)
        if resize and stored != tuple(network.resolution):
            data = resized_data(data, network.resolution)
        EV.check_fits(data, network.classes, network.resolution, f"--dataset {dataset}", network.spec.in_channels)
        _attach_data(source, data, EV.normalization_of(data.train_x))
        source.metadata.update(mean=source.normalization.mean.tolist(), std=source.normalization.std.tolist())
        if stored != tuple(network.resolution):
            source.calibration_source = (f"{data.name}, resized from {stored[0]}x{stored[1]} to "
                                         f"{network.resolution[0]}x{network.resolution[1]} (bilinear, antialiased)")
            source.metadata["dataset_resized"] = source.calibration_source
    return source


def resize_images(images: np.ndarray, resolution) -> np.ndarray:
    """uint8 (N, C, H, W) images resized to ``resolution`` (height, width): bilinear, antialiased when
    shrinking, rounded back to uint8; in batches, so a whole dataset never exists as floats at once."""
    import torch
    import torch.nn.functional as F

    height, width = (int(v) for v in resolution)
    out = np.empty((len(images), images.shape[1], height, width), dtype=np.uint8)
    for start in range(0, len(images), 1000):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + 1000])).float()
        scaled = F.interpolate(batch, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + len(batch)] = scaled.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


RESIZED_TRAIN, RESIZED_TEST = 4096, 1000  # the images a resized dataset keeps (calibration draws, checks)


def resized_data(data, resolution, train: int = RESIZED_TRAIN, test: int = RESIZED_TEST):
    """``data`` (:func:`mnetcost.deploy.evaluate.load_data`'s) with ``train`` of its training images
    (drawn as :func:`~mnetcost.deploy.evaluate.calibration_images` draws, seed 0) and its first ``test``
    test images resized to ``resolution`` (:func:`resize_images`): what calibration and the check
    read, without a whole dataset at the larger size in memory."""
    import dataclasses

    count = min(int(train), len(data.train_x))
    picked = np.sort(np.random.default_rng(0).choice(len(data.train_x), size=count, replace=False))
    return dataclasses.replace(data, train_x=resize_images(data.train_x[picked], resolution),
                               train_y=data.train_y[picked], test_x=resize_images(data.test_x[:test], resolution),
                               test_y=data.test_y[:test])


def run_source(run_dir, checkpoint: str = "best", *, dataset: str | None = None, data_dir=None) -> Source:
    """A trained run's checkpoint; its dataset (or ``dataset``) gives the check and calibration
    images, normalised by the run's training statistics."""
    run = EV.open_run(run_dir, checkpoint)
    model = EV.run_model(run)
    data = EV.run_dataset(run, data_dir) if dataset is None else EV.load_data(dataset, data_dir)
    EV.check_fits(data, run.config.classes, model.network.resolution, f"--dataset {dataset or run.config.dataset}",
                  model.network.spec.in_channels)
    # the run's own statistics (recorded, or measured on its training data), even for another dataset
    normalization, _ = EV.run_normalization(run, data_dir, given=data if dataset is not None else None)
    source = Source(model=model, metadata=EV.run_metadata(run, normalization), run=run)
    _attach_data(source, data, normalization)
    return source


def _attach_data(source: Source, data, normalization: EV.Normalization) -> None:
    source.normalization = normalization
    source.test_images, source.test_labels, source.data_name = data.test_x, data.test_y, data.name
    source.train_images = data.train_x
    source.calibration_source = data.name


def check_inputs(source: Source, count: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The check's inputs (normalised float32), their labels (None for standard-normal inputs) and
    what they are, in words: the first ``count`` test images of the source's data (all of them
    when it has fewer, and said so), else ``count`` standard-normal inputs."""
    if source.test_images is None:
        return EX.check_batch(source.network, count), None, f"{count} standard-normal inputs (seed 0)"
    taken = min(int(count), len(source.test_images))
    inputs = f"the first {taken} test images of {source.data_name}"
    if taken < count:
        inputs = f"all {taken} test images of {source.data_name} ({count} asked for)"
    return source.normalization.apply(source.test_images[:taken]), source.test_labels[:taken], inputs


@dataclass
class Exported:
    proto: object
    data: bytes
    record: dict = field(default_factory=dict)


def export_source(source: Source, *, int8: bool = False, calibration_images: int = 512,
                  tolerance: float = EX.DEFAULT_TOLERANCE, check_images: int = DEFAULT_CHECK_IMAGES,
                  threads: int | None = None) -> Exported:
    """Export, run in ONNX Runtime, compare with PyTorch (raises :class:`ToleranceError` beyond
    ``tolerance``), quantize when ``int8``; return the file's bytes and its record."""
    from mnetcost.calculator import memory
    from mnetcost.deploy import quantize as Q
    from mnetcost.deploy import runtime as R

    if int8 and source.train_images is None:
        raise MnetcostError("--int8 needs calibration images: pass --dataset (or export a --run)")
    began = time.perf_counter()
    proto = EX.export_proto(source.model, metadata=source.metadata)
    exported_s = time.perf_counter() - began
    x, labels, inputs = check_inputs(source, check_images)
    fp32_session = R.session(proto, threads)
    check = EX.check_outputs(source.model, fp32_session, x, tolerance)
    if not check.passed:
        raise EX.ToleranceError(check)
    record = {"dtype": "fp32", "opset": EX.OPSET, "exporter": "torch.onnx.export(dynamo=True)",
              **R.versions(), "check": {**check.as_dict(), "inputs": inputs},
              "export_seconds": round(exported_s, 2)}
    final = proto
    if int8:
        calibration = EV.calibration_images(source.train_images, calibration_images)
        began = time.perf_counter()
        final = Q.quantize_int8(proto, source.normalization.apply(calibration))
        int8_session = R.session(final, threads)
        fp32_out = R.run(fp32_session, x)
        int8_out = R.run(int8_session, x)
        against_fp32 = EX.compare(fp32_out, int8_out, tolerance)
        accuracy = None
        if labels is not None:  # what the int8 file costs in accuracy, the figure that matters
            fp32_correct, int8_correct = (int(np.sum(out.argmax(1) == labels)) for out in (fp32_out, int8_out))
            accuracy = {"images": int(len(labels)), "fp32": fp32_correct / len(labels),
                        "int8": int8_correct / len(labels),
                        "difference_points": 100 * (int8_correct - fp32_correct) / len(labels)}
        record.update(dtype="int8", quantization={
            "method": "onnxruntime.quantization.quantize_static", "format": "QDQ", "weights": "int8, per channel, "
            "symmetric", "activations": "int8, per tensor, min/max calibration", "biases": "int32",
            "calibration_images": int(len(calibration)), "calibration_dataset": source.calibration_source,
            "calibration": "training images drawn by a seeded generator (seed 0)",
            "seconds": round(time.perf_counter() - began, 2),
            "max_abs_diff_vs_fp32": against_fp32.max_abs_diff,
            "max_abs_logit_fp32": against_fp32.max_abs_reference,
            "top1_agreement_vs_fp32": against_fp32.top1_agreement,
            "check_accuracy": accuracy})
    census = EX.weight_census(final)
    network = source.network
    record.update({
        "ops": EX.op_counts(final),
        "nodes": len(final.graph.node),
        "file_weights": census.as_dict(),
        "deploy_params": memory.deploy_params(network),
        "engine_weight_bytes": {dtype: memory.weight_bytes(network, dtype) for dtype in ("fp32", "int8")},
        "metadata": EX.metadata_of(final),
    })
    data = EX.serialize(final)
    record["bytes"] = len(data)
    return Exported(proto=final, data=data, record=record)
