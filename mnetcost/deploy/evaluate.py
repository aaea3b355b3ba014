"""A trained run's model in PyTorch and in ONNX Runtime, on the same test images with the same
preprocessing.

A run folder (``mnetcost train --out``) holds ``config.json`` (the run's configuration and
identity), ``best.pt`` and ``last.pt`` (checkpoints with the model's ``state_dict``) and
``summary.json``. :func:`open_run` reads them through :mod:`mnetcost.nn.training`'s own loaders and
refuses a checkpoint of another run (its run id, as ``train --resume`` does); :func:`run_model`
rebuilds the model exactly as training built it (the run's spec, α, δ, classes, resolution,
dropout, FMP mode and seed) and loads the weights. Everything that is checked against the run
(a checkpoint, an ONNX file's metadata, a dataset's class names) is checked against its identity
(:mod:`mnetcost.identity`).

Preprocessing is training's: ``x * scale + shift`` per channel in float32 with ``scale = 1 / (255
std)`` and ``shift = -mean / std``, where mean and std are the per-channel statistics of the run's
**training** images (:func:`mnetcost.nn.training.channel_stats`), also when another ``--dataset``
is evaluated: the ones the run recorded (:func:`run_normalization`; runs written before mnetcost
recorded them are measured on the run's training data). Fractional max pooling uses its fixed
evaluation draw (draw 0), in PyTorch and in the exported file alike; a run trained with
``--test-draws N`` reports the N-draw average in its summary instead.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnetcost import identity as ID
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
    identity: ID.RunIdentity | None = None

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
    T.check_checkpoint(state, stored, checkpoint_path, purpose="use it")  # the run's own, as train --resume asks
    return Run(path=path, stored=stored, config=config, checkpoint=checkpoint, epoch=int(state.get("epoch", 0)),
               state=state["model"], identity=ID.from_config(stored))


def run_model(run: Run):
    """The run's model as training built it, with the checkpoint's weights, in eval mode (CPU):
    its depthwise mode (``expand`` runs a depthwise layer with delta > 1 as the fast multiplier-1
    kernel) and memory format (channels-last, several times faster on CPU) too, so PyTorch
    computes what training's own evaluation computed."""
    import torch

    from mnetcost.nn.models import build_model, set_depthwise
    from mnetcost.nn.training import model_spec

    c = run.config
    model = build_model(model_spec(c), alpha=c.alpha, delta=c.delta, classes=c.classes, resolution=tuple(c.resolution),
                        dropout=c.dropout, fmp_seed=c.seed, fmp_mode=c.fmp_mode)
    from mnetcost.nn.training import state_mismatch

    mismatch = state_mismatch(model, run.state)
    if mismatch:
        raise MnetcostError(f"{run.path / (run.checkpoint + '.pt')}: the weights do not fit the run's model "
                            f"({c.variant} α={c.alpha:g} δ={c.delta}, {c.classes} classes): {mismatch}")
    model.load_state_dict(run.state)
    set_depthwise(model, c.depthwise)
    return model.to(memory_format=torch.channels_last if c.channels_last else torch.contiguous_format).eval()


def run_metadata(run: Run, normalization: "Normalization | None" = None) -> dict:
    """What an exported file records about the run it came from."""
    c = run.config
    meta = {"run": run.name, "run_id": run.identity.run_id if run.identity else None,
            "checkpoint": run.checkpoint, "epoch": run.epoch, "variant": c.variant,
            "alpha": c.alpha, "delta": c.delta, "classes": c.classes, "resolution": list(c.resolution),
            "dataset": run.stored.get("dataset_info", {}).get("name", c.dataset), "fmp_mode": c.fmp_mode,
            "fmp_seed": c.seed, "fmp_draw": 0, "weights_sha256": run_weights(run)}
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
    """The dataset the run trained on (its ``config.json`` names it); refused when it is gone or
    is no longer the data the run recorded (its fingerprint)."""
    source = run.config.dataset
    try:
        data = load_data(source, data_dir, option="the run's dataset")
    except MnetcostError as exc:
        raise MnetcostError(f"{exc}; pass --dataset with the run's data (or other images of its classes)") from None
    recorded = run.identity.data.get("fingerprint") if run.identity else None
    now = ID.data_fingerprint(source)
    if recorded and now and recorded != now:
        raise MnetcostError(f"the run's dataset {source} is not the data it trained on any more ({ID.short(now)} now, "
                            f"{ID.short(recorded)} then); pass --dataset {source} to use it all the same")
    return data


def run_normalization(run: Run, data_dir=None, given=None) -> tuple[Normalization, str | None]:
    """The normalisation the run trained with, and a note when it had to be taken from elsewhere:
    the statistics the run recorded; for a run written before mnetcost recorded them, those of
    its training data (where it trained, or ``given``, a dataset passed with --dataset, when that
    is the same data as far as the run records it: name, classes and sizes)."""
    data = run.identity.data if run.identity else {}
    if data.get("mean") is not None and data.get("std") is not None:
        recorded = Normalization(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))
        return recorded, None
    try:
        return normalization_of(run_dataset(run, data_dir).train_x), None
    except MnetcostError as exc:
        missing = str(exc)
    why = (f"the run does not record the mean and std it was trained with (it was written by an earlier mnetcost), "
           f"and {missing.split('; pass --dataset')[0]}")
    if given is None:
        raise MnetcostError(f"{why}; pass --dataset with a copy of the run's training data")
    described = ID.data_of(None, name=given.name, class_names=given.class_names, train_images=len(given.train_y),
                           test_images=len(given.test_y))
    check = ID.compare(ID.RunIdentity(recipe={}, data={**data, "source": None}),
                       ID.RunIdentity(recipe={}, data=described), "same-cohort", ("run", "--dataset"))
    if not check.same or data.get("train_images") is None:
        detail = check.text() or "the run does not record its training images"
        raise MnetcostError(f"{why}; the --dataset given is not the run's training data as far as the run tells "
                            f"({detail}): restore the run's data at {run.config.dataset}")
    return normalization_of(given.train_x), (f"the run does not record its normalisation statistics; they were "
                                             f"measured on the training images of {given.name}, which has the "
                                             "run's name, classes and sizes")


def test_labels(run: Run, data, what: str) -> tuple[np.ndarray, str | None]:
    """The data's test labels in the run's class order (mapped by name when the dataset lists the
    same classes in another order; refused when its classes are other ones), and a note saying
    what was done."""
    names = run.identity.data.get("class_names") if run.identity else None
    if names is None:
        return data.test_y, f"note: {run.path} does not record its class names; {what}'s labels are used as they are"
    mapping = ID.class_mapping(names, data.class_names, what)
    if mapping is None:
        return data.test_y, None
    return np.asarray(mapping, dtype=np.int64)[data.test_y], (f"note: {what} lists the run's classes in another order; "
                                                              "its labels were mapped to the run's by class name")


FILE_FORMATS = {"--onnx": "ONNX", "--tflite": "TensorFlow Lite"}  # the option naming an exported file -> its format


def run_weights(run: Run) -> str:
    """The fingerprint of the weights of the run's opened checkpoint."""
    from mnetcost.nn.training import weights_fingerprint

    return weights_fingerprint(run.state)


def recorded_weights(run: Run) -> dict[str, int]:
    """Fingerprint -> epoch of the weights the run held after each epoch (its metrics.jsonl), with its
    opened checkpoint's; empty for runs trained before fingerprints were recorded."""
    found = {}
    try:
        lines = (run.path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("weights_sha256"), str) and isinstance(row.get("epoch"), int):
            found[row["weights_sha256"]] = row["epoch"]
    if found:
        found.setdefault(run_weights(run), run.epoch)
    return found


def check_file_weights(run: Run, meta: dict, path, option: str = "--onnx") -> None:
    """A file's recorded source weights must be weights this run held (at the epoch its metadata
    names): its run name and id alone can be edited. Files or runs from before fingerprints were
    recorded are not checked."""
    theirs = meta.get("weights_sha256")
    if not isinstance(theirs, str):
        return
    known = recorded_weights(run)
    if not known:  # a run that records no fingerprints: at least its opened checkpoint
        if theirs == run_weights(run) and meta.get("epoch") not in (None, run.epoch):
            raise MnetcostError(f"{option} {path}: made from the run's epoch-{run.epoch} weights, but its metadata "
                                f"says epoch {meta.get('epoch')}")
        return
    if theirs not in known:
        raise MnetcostError(f"{option} {path}: made from weights {ID.short(theirs)}, which the run in {run.path} never "
                            "held (metrics.jsonl records each epoch's): another run's model, whatever its metadata says")
    if meta.get("epoch") != known[theirs]:
        raise MnetcostError(f"{option} {path}: made from the run's epoch-{known[theirs]} weights, but its metadata "
                            f"says epoch {meta.get('epoch')}")


def check_file_metadata(run: Run, meta: dict, path, option: str = "--onnx") -> None:
    """Refuse an exported file (ONNX, or TensorFlow Lite with ``option`` --tflite) that is not a
    model of this run, by what ``mnetcost export`` wrote into it (run id; for older files the
    configuration, FMP draw seed and data name)."""
    if not meta:
        raise MnetcostError(f"{option} {path}: holds no mnetcost metadata, so nothing ties it to the run in "
                            f"{run.path}; evaluate files that `mnetcost export --run` wrote")
    options = {key: meta.get(key) for key in ("variant", "alpha", "delta", "classes", "resolution", "fmp_mode")}
    options.update(seed=meta.get("fmp_seed"), dataset_name=meta.get("dataset"))
    theirs = ID.from_options(options, run_id=meta.get("run_id"), origin=f"{FILE_FORMATS[option]} metadata")
    check = ID.compare(run.identity, theirs, "same-run", ("run", "file"))
    if not check.same:
        raise MnetcostError(f"{option} {path}: not a model of the run in {run.path}: {check.text()}")
    if "run" not in meta and "run_id" not in meta:
        raise MnetcostError(f"{option} {path}: a model with {meta.get('weights', 'other')} weights, exported without "
                            f"--run, not a model of the run in {run.path}")
    check_file_weights(run, meta, path, option)


def check_fits(data, classes: int, resolution, what: str, in_channels: int | None = None) -> None:
    """The data's classes, image size and channels must be the model's."""
    if in_channels is not None:
        from mnetcost.nn.datasets import check_channels

        check_channels(in_channels, what, data.channels, f"the dataset {data.name}")
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
