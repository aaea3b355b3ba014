"""A trained run's model in PyTorch and in ONNX Runtime, on the same test images with the same
preprocessing.

A run folder (``mnetcost train --out``) holds ``config.json`` (the run's configuration),
``best.pt`` and ``last.pt`` (checkpoints with the model's ``state_dict``) and ``summary.json``.
:func:`open_run` reads them through :mod:`mnetcost.nn.training`'s own loaders, :func:`run_model`
rebuilds the model exactly as training built it (variant, α, δ, classes, resolution, dropout,
FMP mode and seed) and loads the weights.

Preprocessing is training's: ``x * scale + shift`` per channel in float32 with ``scale = 1 / (255
std)`` and ``shift = -mean / std``, where mean and std are the per-channel statistics of the run's
**training** images (:func:`mnetcost.nn.training.channel_stats`), also when another ``--dataset``
is evaluated. Fractional max pooling uses its fixed evaluation draw (draw 0), in PyTorch and in the
exported file alike; a run trained with ``--test-draws N`` reports the N-draw average in its
summary instead.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnetcost.errors import MnetcostError

CHECKPOINTS = ("best", "last")
DEFAULT_BATCH = 500


@dataclass
class Run:
    path: Path
    stored: dict  # config.json as written by training
    config: object  # mnetcost.nn.training.TrainConfig
    checkpoint: str  # "best" or "last"
    epoch: int
    state: dict  # the model's state_dict

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> dict:
        return {"run": str(self.path), "checkpoint": self.checkpoint, "epoch": self.epoch,
                "variant": self.config.variant, "alpha": self.config.alpha, "delta": self.config.delta,
                "classes": self.config.classes, "resolution": list(self.config.resolution)}


def open_run(path: Path | str, checkpoint: str = "best", option: str = "--run") -> Run:
    """Read a run folder's config and one checkpoint; one-line errors for anything missing."""
    from mnetcost.nn import training as T

    path = Path(path)
    if checkpoint not in CHECKPOINTS:
        raise MnetcostError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    if not path.exists():
        raise MnetcostError(f"{option} {path}: no such folder")
    if not path.is_dir():
        raise MnetcostError(f"{option} {path}: not a folder (a `mnetcost train --out` run folder)")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise MnetcostError(f"{option} {path}: not a run folder (no config.json)")
    try:
        stored = json.loads(config_path.read_text())
        known = set(T.TrainConfig.__dataclass_fields__)
        config = T.TrainConfig(**{k: v for k, v in stored["config"].items() if k in known})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MnetcostError(f"{option} {path}: {config_path.name} is not a run config ({exc})") from None
    checkpoint_path = path / f"{checkpoint}.pt"
    if not checkpoint_path.is_file():
        raise MnetcostError(f"{option} {path}: no {checkpoint_path.name} (has the run finished an epoch?)")
    state = T.load_checkpoint(checkpoint_path)
    if not isinstance(state, dict) or "model" not in state:
        raise MnetcostError(f"{checkpoint_path}: not a mnetcost checkpoint (no model weights)")
    return Run(path=path, stored=stored, config=config, checkpoint=checkpoint, epoch=int(state.get("epoch", 0)),
               state=state["model"])


def run_model(run: Run):
    """The run's model as training built it, with the checkpoint's weights, in eval mode (CPU):
    its depthwise mode (``expand`` runs a depthwise layer with delta > 1 as the fast multiplier-1
    kernel) and memory format (channels-last, several times faster on CPU) too, so PyTorch
    computes what training's own evaluation computed."""
    import torch

    from mnetcost.nn.models import build_model, set_depthwise

    c = run.config
    model = build_model(c.variant, alpha=c.alpha, delta=c.delta, classes=c.classes, resolution=tuple(c.resolution),
                        dropout=c.dropout, fmp_seed=c.seed, fmp_mode=c.fmp_mode)
    try:
        model.load_state_dict(run.state)
    except RuntimeError as exc:
        raise MnetcostError(f"{run.path / (run.checkpoint + '.pt')}: the weights do not fit the run's model "
                            f"({str(exc).splitlines()[0][:160]})") from None
    set_depthwise(model, c.depthwise)
    return model.to(memory_format=torch.channels_last if c.channels_last else torch.contiguous_format).eval()


def run_metadata(run: Run, normalization: "Normalization | None" = None) -> dict:
    """What an exported file records about the run it came from."""
    c = run.config
    meta = {"run": run.name, "checkpoint": run.checkpoint, "epoch": run.epoch, "variant": c.variant,
            "alpha": c.alpha, "delta": c.delta, "classes": c.classes, "resolution": list(c.resolution),
            "dataset": run.stored.get("dataset_info", {}).get("name", c.dataset), "fmp_mode": c.fmp_mode,
            "fmp_seed": c.seed, "fmp_draw": 0}
    if normalization is not None:
        meta.update(mean=normalization.mean.tolist(), std=normalization.std.tolist())
    return meta


# --- data and preprocessing ----------------------------------------------------------------------
@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of the training images (0-1 scale), applied as training does."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) -> float32, ``x * scale + shift`` in float32 (training's arithmetic)."""
        scale = (1.0 / (255.0 * self.std)).astype(np.float32).reshape(1, -1, 1, 1)
        shift = (-self.mean / self.std).astype(np.float32).reshape(1, -1, 1, 1)
        return images.astype(np.float32) * scale + shift


def load_data(dataset: str, data_dir=None, option: str = "--dataset"):
    """A dataset (``cifar10``, ``cifar100`` or a PATH) through mnetcost's loader and cache."""
    from mnetcost.nn import datasets

    if dataset not in datasets.OFFICIAL and not Path(dataset).expanduser().exists():
        raise MnetcostError(f"{option} {dataset}: no such file or folder")
    return datasets.load_dataset(dataset, data_dir)


def normalization_of(train_images: np.ndarray) -> Normalization:
    from mnetcost.nn.training import channel_stats

    mean, std = channel_stats(train_images)
    return Normalization(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))


def run_dataset(run: Run, data_dir=None):
    """The dataset the run trained on (its ``config.json`` names it)."""
    source = run.config.dataset
    try:
        return load_data(source, data_dir)
    except MnetcostError as exc:
        raise MnetcostError(f"the run's dataset is not available ({exc}); pass --dataset") from None


def check_fits(data, classes: int, resolution, what: str) -> None:
    """The data's classes and image size must be the model's."""
    if data.classes != classes:
        raise MnetcostError(f"{what}: the dataset {data.name} has {data.classes} classes, the model {classes}")
    if tuple(data.resolution) != tuple(resolution):
        raise MnetcostError(f"{what}: the dataset {data.name} has {data.resolution[0]}x{data.resolution[1]} images, "
                            f"the model expects {resolution[0]}x{resolution[1]}")


def calibration_images(train_images: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` training images drawn without replacement by a seeded generator (all of them when
    fewer), in their stored order: an image folder's first images would all be one class."""
    count = min(int(count), len(train_images))
    picked = np.sort(np.random.default_rng(seed).choice(len(train_images), size=count, replace=False))
    return train_images[picked]


# --- accuracy ----------------------------------------------------------------------------------------
@dataclass
class Accuracy:
    runtime: str  # "torch" or "onnxruntime"
    dtype: str  # "fp32" or "int8"
    correct: int
    images: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0


def _count(predict, images: np.ndarray, labels: np.ndarray, normalization: Normalization, batch: int) -> int:
    correct = 0
    for start in range(0, len(images), batch):
        x = normalization.apply(images[start:start + batch])
        correct += int(np.sum(predict(x).argmax(1) == labels[start:start + batch]))
    return correct


def accuracy_torch(model, images, labels, normalization: Normalization, batch: int = DEFAULT_BATCH) -> Accuracy:
    """The model's accuracy in PyTorch, each batch in the model's memory format."""
    import torch

    model.eval()
    # the first weight whose layout tells (a 1x1 kernel's is both): channels-last or not
    weight = next((p for p in model.parameters()
                   if p.dim() == 4 and p.is_contiguous() != p.is_contiguous(memory_format=torch.channels_last)), None)
    channels_last = weight is not None and weight.is_contiguous(memory_format=torch.channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def predict(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x).contiguous(memory_format=memory_format)).float().numpy()

    began = time.perf_counter()
    correct = _count(predict, images, labels, normalization, batch)
    return Accuracy("torch", "fp32", correct, int(len(labels)), time.perf_counter() - began)


def accuracy_onnx(sess, dtype: str, images, labels, normalization: Normalization,
                  batch: int = DEFAULT_BATCH) -> Accuracy:
    from mnetcost.deploy.runtime import run

    began = time.perf_counter()
    correct = _count(lambda x: run(sess, x), images, labels, normalization, batch)
    return Accuracy("onnxruntime", dtype, correct, int(len(labels)), time.perf_counter() - began)


def file_dtype(proto) -> str:
    """``int8`` for a quantized (QDQ or QOperator) file, else ``fp32``."""
    from mnetcost.deploy.export import metadata_of

    stated = metadata_of(proto).get("dtype")
    if stated in ("fp32", "int8"):
        return stated
    quantized = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger"}
    return "int8" if any(node.op_type in quantized for node in proto.graph.node) else "fp32"
