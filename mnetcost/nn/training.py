"""``mnetcost train``: the paper's training as it describes it, fast, resumable, and able to run under torchrun.

The recipe: what Chen & Su state (section IV: Adam, 10 % dropout in the fully connected layer, no data
augmentation), and what they leave open chosen here: learning rate 1e-3 (Keras's Adam default), batch
128, cross-entropy, evaluation on the test set after every epoch.

Speed: the decoded dataset lives on the training device as one uint8 tensor; each epoch draws a
random permutation and a batch is ``images[perm[i:i+b]]`` (no DataLoader, no per-image Python
work), normalised and (with ``augment``) randomly cropped and flipped on the device, in
channels-last memory format (3.4x faster on CPU at alpha 0.25, FACTS.md). On CUDA the forward
pass runs under bf16 autocast and ``compile`` wraps the model in ``torch.compile``.

The run folder (a contract: ``mnetcost grid`` and ``plot --runs`` rely on it)
-------------------------------------------------------------------------------
A run folder holds ``config.json`` (written first, atomically, before any training: every
option, the run's id, the spec's TOML text, the run's identity (:mod:`mnetcost.identity`: its
recipe, its data with a fingerprint, class names and normalisation statistics, its seed and id),
what determinism depends on, and the history of the command lines that started and resumed it),
``metrics.jsonl`` (one JSON object per epoch; a non-finite number is written as null and named
under the row's ``nonfinite`` key, since JSON has no NaN),
``last.pt`` and ``best.pt`` (checkpoints, each naming the run id), and ``summary.json``. Every
file is written to a temporary file and renamed, in the order best.pt, last.pt, metrics.jsonl,
summary.json, so a run killed at any instant leaves a valid last checkpoint, and metrics.jsonl
is rebuilt from the checkpoint's history on resume. A checkpoint stores the random states of
torch (CPU and CUDA), numpy, Python, the batch-order and augmentation generators, for every
rank, so on CPU an interrupted and resumed run ends with exactly the weights and metrics of an
uninterrupted one (a resume reuses the run's recorded thread count for that).

:func:`run_state` classifies a folder by its files alone:

* ``complete``: ``summary.json`` records every planned epoch done (``epochs >= epochs_planned``).
  ``mnetcost train --resume --out DIR`` with the same ``--epochs`` (or none) exits 0 at once,
  saying so in one line, without loading data or training.
* ``partial``: ``config.json`` and ``last.pt`` exist, not complete: ``--resume`` continues it.
* ``empty``: nothing but ``.lock`` and/or temporary files (``.<name>.*.tmp``); a new run takes it.
* ``failed-start``: the leftovers of a start that completed no epoch (a run's ``config.json``
  and at most ``best.pt``, no ``last.pt``, ``metrics.jsonl`` or ``summary.json``: a ``kill -9``
  during epoch 1); a new run takes it, ``--resume`` refuses (nothing to continue).
* ``missing`` (no folder) and ``other`` (anything else: not a run, or a damaged one, e.g.
  ``last.pt`` deleted): a new run refuses ``other``.

``mnetcost train`` holds the folder's lock (``files.run_lock``: an ``flock`` on ``<run>/.lock``,
released by the kernel even after ``kill -9``) for its whole life, new run or ``--resume``; a
second process is refused with one line containing "is in use by" (exit 2) and changes nothing.
A start that fails before its first epoch is saved (NaN loss, full disk, Ctrl-C, bad data)
removes what it wrote, and the folder too when it created it.

Under ``torchrun --nproc_per_node=N`` every rank takes a strided shard of the same permutation
(padded to a multiple of N, as ``DistributedSampler`` does), ``--batch-size`` is the global batch
(each rank takes batch/N), gradients are averaged by DistributedDataParallel, metric sums are
all-reduced, and only rank 0 writes files or prints.
"""
from __future__ import annotations

import json
import math
import random
import shlex
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mnetcost import __version__
from mnetcost import identity as ID
from mnetcost.nn import distributed as D
from mnetcost.nn.datasets import Dataset
from mnetcost.errors import MnetcostError
from mnetcost.files import LOCK_NAME, atomic_write, json_text
from mnetcost.nn.fmp import eager_under_compile, predict_averaged
from mnetcost.nn.models import set_depthwise

RUN_FORMAT = 3  # 3: the run's identity; 2: run ids, spec text, bn_stats, threads, command history
CHECKPOINT_FORMAT = 2  # 2: names its run id; 1 (older) is checked by its stored options instead
CHECKPOINT_FORMATS = (1, 2)
RUN_FILES = ID.RUN_FILES
# The options a checkpoint stores (a checkpoint of format 1, without a run id, is checked by them).
IDENTITY = ("variant", "alpha", "delta", "classes", "resolution", "dataset", "batch_size", "lr", "seed",
            "augment", "dropout", "world_size", "fmp_mode", "test_draws", "bn_stats", "bn_batches", "spec_toml")
# What runs written before a key existed did (a resumed old run keeps its behaviour).
LEGACY = {**ID.LEGACY, "spec_toml": None, "threads": None, "depthwise": "grouped"}
BN_STATS = ("precise", "running")
TIMING_KEYS = ("seconds", "train_seconds", "eval_seconds", "images_per_s")


class RunError(MnetcostError):
    """A run folder that cannot be used as asked (not empty, nothing to resume, config mismatch)."""


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class SaveError(RuntimeError):
    """A file of the run could not be written (full disk, file size limit, I/O error)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or ``stop_after``) during a run; ``saved_epoch``: the epoch ``last.pt`` holds (0: none)."""

    def __init__(self, saved_epoch: int):
        super().__init__(saved_epoch)
        self.saved_epoch = saved_epoch


@dataclass
class TrainConfig:
    """Everything that defines a run (``config.json``); ``IDENTITY`` lists the fields a resume
    must agree on. ``dataset`` is ``cifar10``/``cifar100`` or the absolute PATH."""

    variant: str = "base"
    alpha: float = 1.0
    delta: int = 1
    classes: int = 10
    resolution: list = field(default_factory=lambda: [32, 32])
    dataset: str = "cifar10"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    augment: bool = False
    dropout: float = 0.1
    device: str = "auto"
    amp: bool | None = None  # None: bf16 autocast on CUDA, off on CPU
    compile: bool = False
    channels_last: bool = True
    # "expand": depthwise convolutions with delta > 1 run as multiplier-1 kernels over repeated input
    # channels (same outputs, faster on CPU: models.DepthwiseConv2d); "grouped": the plain grouped conv.
    depthwise: str = "expand"
    world_size: int = 1
    fmp_mode: str = "tf"  # "tf" (TensorFlow's algorithm, as the paper) or "torch" (nn.FractionalMaxPool2d)
    test_draws: int = 1  # > 1: test predictions averaged over that many fixed FMP draws (Graham)
    # "precise": BatchNorm statistics recomputed with the current weights on ``bn_batches`` training
    # batches before each evaluation; "running": the moving averages of training (the paper's Keras).
    bn_stats: str = "precise"
    bn_batches: int = 20
    threads: int | None = None  # CPU threads torch used (recorded by run(): results depend on it)
    spec_toml: str | None = None  # the spec's TOML text: the run rebuilds its model from it, not from a file

    def identity(self) -> dict:
        return {key: getattr(self, key) for key in IDENTITY}


# --- devices and data on the device ----------------------------------------------------------
def pick_device(name: str, dist: D.Dist = D.Dist()) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise MnetcostError("--device cuda: no CUDA device is available (torch "
                                f"{torch.__version__}); use --device cpu")
        index = dist.local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    if name != "cpu":
        raise MnetcostError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


@dataclass
class DeviceData:
    """A dataset as tensors on the training device: uint8 images (N, C, H, W), int64 labels,
    and the per-channel affine map ``x * scale + shift`` that normalises them."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset: Dataset, device: torch.device, normalization=None) -> "DeviceData":
        """``normalization``: (mean, std) per channel, 0-1 scale [default: the training images']."""
        mean, std = normalization if normalization is not None else channel_stats(dataset.train_x)
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        scale = torch.tensor(1.0 / (255.0 * std), dtype=torch.float32, device=device).view(1, -1, 1, 1)
        shift = torch.tensor(-mean / std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        put = lambda array: torch.from_numpy(np.ascontiguousarray(array)).to(device)  # noqa: E731
        return cls(put(dataset.train_x), put(dataset.train_y).long(), put(dataset.test_x), put(dataset.test_y).long(),
                   scale, shift)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, on the 0-1 scale."""
    n, c = images.shape[:2]
    total = np.zeros(c)
    squares = np.zeros(c)
    for start in range(0, n, 4096):  # chunks: no float64 copy of the whole set
        chunk = images[start:start + 4096].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        squares += (chunk ** 2).sum(axis=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 1e-12))
    return mean, std


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip of a batch, on its device, in a
    few tensor operations: per-image offsets index a padded copy."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    flip = torch.rand((n,), generator=generator, device=generator.device).to(x.device) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


# --- random states -----------------------------------------------------------------------------
def _numpy_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_state(state: dict) -> None:
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["gauss"]))


def capture_rng(generators: dict[str, torch.Generator]) -> dict:
    """Every random state a training step reads (global torch/CUDA for dropout and FMP draws,
    numpy, Python, and our own generators), as tensors and plain values."""
    state = {"torch": torch.get_rng_state(), "numpy": _numpy_state(),
             "python": random.getstate(),
             "generators": {name: gen.get_state() for name, gen in generators.items()}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    _set_numpy_state(state["numpy"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    for name, gen in generators.items():
        gen.set_state(state["generators"][name])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


# --- the run folder ----------------------------------------------------------------------------
class _Recorded:
    """A write-only stream that remembers the first OSError of its target: torch.save reports a
    failed write (a full disk) only as ``RuntimeError: ... unexpected pos``."""

    def __init__(self, stream):
        self.stream, self.error = stream, None

    def write(self, data):
        try:
            return self.stream.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self):
        return self.stream.flush()


def save_file(path: Path, write) -> None:
    """``atomic_write`` that turns any failure to write into :class:`SaveError` naming the file
    and the reason (the temporary file is removed; the old file, if any, is untouched)."""
    recorded = []

    def guarded(stream):
        wrapper = _Recorded(stream)
        recorded.append(wrapper)
        write(wrapper)

    try:
        atomic_write(path, guarded)
    except (OSError, RuntimeError) as exc:
        cause = (recorded[0].error if recorded and recorded[0].error else None) or exc
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause).splitlines()[0]
        raise SaveError(f"cannot write {path}: {reason}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    save_file(path, lambda stream: torch.save(state, stream))


def save_json(path: Path, obj) -> None:
    """Strict JSON: a NaN or infinity becomes null, named under ``nonfinite`` (files.json_safe)."""
    save_file(path, lambda stream: stream.write((json_text(obj) + "\n").encode()))


def weights_fingerprint(state: dict) -> str:
    """``sha256:<hex>`` of a model's state dict: every entry's name, dtype, shape and bytes, in name
    order. Recorded per epoch (metrics.jsonl ``weights_sha256``) and in every exported file, so that
    a file is tied to the weights it was made from, not only to the run its metadata names."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise RunError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def state_mismatch(model, state) -> str | None:
    """What keeps ``state`` (a checkpoint's ``model`` entry) from loading into ``model``, in one
    line a person can act on: the weights missing from it, those the model does not have, and
    those of another shape (``conv1.conv.weight: 32×3×3×3 in the file, 8×3×3×3 in the model``),
    a few of each named and the rest counted; None when it fits."""
    if not isinstance(state, dict):
        return f"the file holds a {type(state).__name__}, not a dict of weights"
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [f"{key}: {'×'.join(map(str, getattr(state[key], 'shape', ()))) or 'a scalar'} in the file, "
                f"{'×'.join(map(str, value.shape)) or 'a scalar'} in the model"
                for key, value in expected.items() if key in state
                and tuple(getattr(state[key], "shape", ())) != tuple(value.shape)]

    def some(items: list[str], shown: int = 3) -> str:
        return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")

    parts = [f"{len(reshaped)} of {len(expected)} weights have another shape ({some(reshaped, 2)})" if reshaped else "",
             f"{len(missing)} of the model's weights are missing ({some(missing)})" if missing else "",
             f"{len(unexpected)} weights are not the model's ({some(unexpected)})" if unexpected else ""]
    text = "; ".join(part for part in parts if part)
    return text or None


# --- what a folder holds ------------------------------------------------------------------------
def is_temporary(name: str) -> bool:
    """A temporary file of ``atomic_write`` for one of the run's files (a killed write leaves one)."""
    return name.endswith(".tmp") and any(name.startswith(f".{run_file}.") for run_file in RUN_FILES)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _is_run_config(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("config"), dict)


def run_state(out: Path | str) -> str:
    """``missing``, ``empty``, ``failed-start``, ``partial``, ``complete`` or ``other``: what the
    folder ``out`` holds, from its files alone (the module docstring defines each). Reads JSON
    only; never takes the lock (see :func:`mnetcost.files.lock_holder` for that)."""
    out = Path(out)
    if not out.exists():
        return "missing"
    if not out.is_dir():
        return "other"
    names = {p.name for p in out.iterdir() if p.name != LOCK_NAME and not is_temporary(p.name)}
    if not names:
        return "empty"
    summary = _read_json(out / "summary.json") if "summary.json" in names else None
    if isinstance(summary, dict) and "config.json" in names and _done(summary):
        return "complete"
    if {"config.json", "last.pt"} <= names:
        return "partial"
    if names <= {"config.json", "best.pt"} and _is_run_config(_read_json(out / "config.json")):
        return "failed-start"
    return "other"


def _done(summary: dict) -> bool:
    epochs, planned = summary.get("epochs"), summary.get("epochs_planned")
    return isinstance(epochs, int) and isinstance(planned, int) and epochs >= planned > 0


def clear_failed_start(out: Path) -> None:
    """Remove temporary files and a failed start's leftovers before a new run takes ``out``."""
    if run_state(out) not in ("empty", "failed-start"):
        raise RunError(f"--out {out} is not free for a new run")
    for path in out.iterdir():
        if path.name != LOCK_NAME:
            path.unlink(missing_ok=True)


def check_out_dir(out: Path, resume: bool) -> dict | None:
    """For a new run: refuse a folder a new run may not take (see :func:`run_state`), return None.
    For a resume: the stored config.json, after checking that ``last.pt`` is there, readable and
    of this run (its run id; older checkpoints: its stored options); the returned dict carries
    ``_epochs_done`` and ``_history`` (the checkpoint's epoch and metrics), never written back."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} exists and is not a folder")
    if not resume:
        state = run_state(out)
        if state in ("missing", "empty", "failed-start"):
            return None
        contents = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME and not is_temporary(p.name))
        shown = ", ".join(contents[:4]) + (", ..." if len(contents) > 4 else "")
        hint = ("pass --resume to continue that run, or choose another --out" if state in ("partial", "complete")
                else "choose another --out")
        raise RunError(f"--out {out} is not empty ({shown}); {hint}")
    config_path = out / "config.json"
    if not config_path.is_file():
        raise RunError(f"--resume: nothing to resume in {out} (no config.json)")
    stored = _read_json(config_path)
    if not _is_run_config(stored):
        raise RunError(f"--resume: {config_path} is not a run config")
    last = out / "last.pt"
    if not last.is_file():
        recorded = [line for line in _lines(out / "metrics.jsonl")]
        if recorded or (out / "summary.json").exists():
            raise RunError(f"--resume: {last} is missing, so there is no checkpoint to continue from "
                           f"(metrics.jsonl records {len(recorded)} epochs); nothing was changed")
        raise RunError(f"--resume: {last} is missing: no epoch of the run in {out} finished, so there is "
                       f"nothing to continue; start it again as a new run with the same --out")
    checkpoint = load_checkpoint(last)
    check_checkpoint(checkpoint, stored, last)
    return {**stored, "_epochs_done": int(checkpoint["epoch"]), "_history": list(checkpoint["history"])}


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return []


def check_checkpoint(checkpoint: dict, stored: dict, path: Path, purpose: str = "continue from it") -> None:
    """Refuse a checkpoint that is not one of the run ``stored`` (its config.json) describes,
    whatever its shapes: its run id must be the run's; a checkpoint of format 1, written before
    run ids, must carry the run's options (:func:`mnetcost.identity.compare`, ``same-run``)."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") not in CHECKPOINT_FORMATS:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise RunError(f"{path}: unknown checkpoint format {found!r}")
    for key in ("epoch", "model", "optimizer", "rng", "history"):
        if key not in checkpoint:
            raise RunError(f"{path}: not a training checkpoint (no {key!r})")
    mine = ID.from_config(stored)
    options = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    theirs = ID.from_options(options, run_id=checkpoint.get("run_id"), origin="checkpoint")
    if theirs.run_id or checkpoint["format"] >= 2:  # a run id on either side: the two must name one run
        if not (theirs.run_id and mine.run_id and ID.compare(mine, theirs, "same-run").same):
            raise RunError(f"{path} belongs to another run (run id {theirs.run_id}), not to the run in {path.parent} "
                           f"(run id {mine.run_id}); refusing to {purpose}")
    else:
        check = ID.compare(mine, theirs, "same-run", ("run", "checkpoint"))
        if not options or not check.same:
            detail = f": {check.text()}" if options else ""
            raise RunError(f"{path} belongs to another run (its options differ from "
                           f"{path.parent / 'config.json'}{detail}); refusing to {purpose}")
    if int(checkpoint["epoch"]) != len(checkpoint["history"]):
        raise RunError(f"{path}: epoch {checkpoint['epoch']} but {len(checkpoint['history'])} epochs of history")


def _is_builtin(variant: str) -> bool:
    from mnetcost.calculator.spec import BUILTIN_VARIANTS

    return str(variant) in BUILTIN_VARIANTS


def config_identity(config: TrainConfig, dataset: Dataset | None = None, run_id: str | None = None,
                    normalization=None) -> ID.RunIdentity:
    """The identity of a run of ``config``: its recipe and its data (``config.dataset``, its
    fingerprint; with ``dataset`` also its name, class names and sizes; ``normalization``: the
    (mean, std) it trains with)."""
    mean, std = normalization if normalization is not None else (None, None)
    data = ID.data_of(config.dataset, name=dataset.name if dataset is not None else None,
                      fingerprint=ID.data_fingerprint(config.dataset),
                      class_names=dataset.class_names if dataset is not None else None,
                      train_images=int(len(dataset.train_y)) if dataset is not None else None,
                      test_images=int(len(dataset.test_y)) if dataset is not None else None, mean=mean, std=std)
    return ID.new_identity(asdict(config), data, run_id, spec_toml=config.spec_toml)


def mismatches(stored: dict, config: TrainConfig, dataset: Dataset | None = None) -> ID.Comparison:
    """How a run of ``config`` (on ``dataset`` when given) differs from the run whose config.json
    is ``stored`` (``same-run``: the plan of epochs may grow); what the stored run does not record
    is in ``unchecked``."""
    return ID.compare(ID.from_config(stored), config_identity(config, dataset), "same-run")


def spec_text(variant: str) -> str:
    """The TOML text of a built-in variant or a spec file, after :func:`load_spec` accepted it."""
    from mnetcost.calculator.spec import load_spec, spec_text as text_of

    load_spec(variant)  # every refusal (missing, folder, not a regular file, invalid) in its words
    return text_of(variant)


def model_spec(config: TrainConfig):
    """The run's spec: parsed from the text stored in the run, else loaded from ``variant``."""
    from mnetcost.calculator.spec import load_spec, parse_spec

    if config.spec_toml is not None:
        return parse_spec(config.spec_toml, str(config.variant))
    return load_spec(config.variant)


def determinism(device_name: str, dist: D.Dist) -> dict:
    """What bit-identical results depend on besides the options and the data: the resumed part of
    a run reproduces an uninterrupted one only where these agree."""
    import platform

    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "device": device_name,
            "world_size": dist.world, "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cuda": torch.version.cuda, "mnetcost": __version__}


def determinism_changes(before: dict | None, now: dict) -> list[str]:
    if not before:
        return []
    return [f"{key} {before[key]} -> {now[key]}" for key in ("threads", "torch", "numpy", "machine", "device",
                                                              "deterministic_algorithms", "cuda")
            if key in before and before[key] != now[key]]


# --- the loop ----------------------------------------------------------------------------------
class Trainer:
    """One model, its optimizer and data on one device (one rank)."""

    def __init__(self, model: nn.Module, data: DeviceData, config: TrainConfig, device: torch.device,
                 dist: D.Dist = D.Dist()):
        self.config = config
        self.device = device
        self.dist = dist
        self.data = data
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.net = set_depthwise(model, config.depthwise).to(device=device, memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        model_for_steps = self.net
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            model_for_steps = DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            eager_under_compile(self.net)  # a new FMP draw per step would recompile the graph each time
            model_for_steps = torch.compile(model_for_steps)
        self.model = model_for_steps
        self.amp = config.amp if config.amp is not None else device.type == "cuda"
        self.order = torch.Generator().manual_seed(config.seed)  # same permutation on every rank
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1 + dist.rank)
        if config.batch_size % dist.world:
            raise MnetcostError(f"--batch-size {config.batch_size} is not divisible by the "
                                f"{dist.world} processes")
        self.local_batch = config.batch_size // dist.world

    @property
    def generators(self) -> dict[str, torch.Generator]:
        return {"order": self.order, "noise": self.noise}

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def prepare(self, images: torch.Tensor, augment: bool) -> torch.Tensor:
        x = images.float().mul_(self.data.scale).add_(self.data.shift)
        if augment:
            x = augment_batch(x, self.noise)
        return x.contiguous(memory_format=self.memory_format)

    def shard(self) -> torch.Tensor:
        """This rank's indices for one epoch: a strided shard of one shared permutation."""
        n = len(self.data.train_y)
        perm = torch.randperm(n, generator=self.order)
        world = self.dist.world
        if world > 1:
            total = math.ceil(n / world) * world
            perm = torch.cat([perm, perm[: total - n]])[self.dist.rank::world]
        return perm.to(self.device)

    def steps_per_epoch(self) -> int:
        return math.ceil(math.ceil(len(self.data.train_y) / self.dist.world) / self.local_batch)

    def train_epoch(self, on_step=None, check_every: int = 25) -> dict:
        """One pass over the training shard; returns global sums (loss, correct, count)."""
        self.model.train()
        perm = self.shard()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        steps = math.ceil(len(perm) / self.local_batch)
        for step in range(steps):
            index = perm[step * self.local_batch:(step + 1) * self.local_batch]
            x = self.prepare(self.data.train_x[index], self.config.augment)
            y = self.data.train_y[index]
            with self.autocast():
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            if (step + 1) % check_every == 0 or step + 1 == steps:
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise Diverged(f"the training loss became {value} at step {step + 1} "
                                   f"(try a smaller --lr); nothing of this epoch was saved")
                if on_step:
                    on_step(step + 1, steps, value)
        sums = torch.stack([loss_sum, correct.double(), torch.tensor(float(len(perm)), dtype=torch.float64,
                                                                      device=self.device)])
        D.all_reduce_sum(self.dist, sums)
        loss_total, correct_total, count = sums.tolist()
        if not math.isfinite(loss_total):
            raise Diverged(f"the training loss became {loss_total} (try a smaller --lr); "
                           f"nothing of this epoch was saved")
        return {"loss": loss_total / count, "train_acc": correct_total / count, "count": int(count)}

    @torch.no_grad()
    def recompute_bn_stats(self, epoch: int) -> int:
        """Precise BatchNorm statistics: reset every BatchNorm layer's running mean and variance
        and set them to the average over ``bn_batches`` training batches (``batch_size`` images
        each, no augmentation) of the batch statistics the current weights produce, with the rest
        of the model in eval mode (dropout off, the FMP layers' fixed evaluation draw), so the
        statistics match what evaluation feeds them. The batches are the first ones of a
        permutation drawn from a generator seeded by (seed, epoch); every rank uses the same
        images, so every rank ends with the same statistics. No global random state is consumed:
        training goes on exactly as it would without this step. Returns the images used."""
        layers = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not layers or self.config.bn_batches < 1:
            return 0
        n = len(self.data.train_y)
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + 7_919 + epoch)
        chosen = torch.randperm(n, generator=generator)[: self.config.bn_batches * self.config.batch_size]
        momenta = [layer.momentum for layer in layers]
        self.net.eval()
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the batches below
            layer.train()
        try:
            for start in range(0, len(chosen), self.config.batch_size):
                index = chosen[start:start + self.config.batch_size].to(self.device)
                with self.autocast():
                    self.net(self.prepare(self.data.train_x[index], augment=False))
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
            self.net.eval()
        return len(chosen)

    @torch.inference_mode()
    def evaluate(self, batch: int = 1000) -> dict:
        """Test loss and accuracy in eval mode (deterministic FMP draw, or the average of
        ``test_draws`` fixed draws), sharded over ranks."""
        self.net.eval()
        n = len(self.data.test_y)
        per_rank = math.ceil(n / self.dist.world)
        start, stop = self.dist.rank * per_rank, min(n, (self.dist.rank + 1) * per_rank)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        for lo in range(start, stop, batch):
            hi = min(stop, lo + batch)
            x = self.prepare(self.data.test_x[lo:hi], augment=False)
            y = self.data.test_y[lo:hi]
            with self.autocast():
                if self.config.test_draws > 1:  # Graham's test-time averaging of FMP draws
                    log_probs = predict_averaged(self.net, x, self.config.test_draws).float().clamp_min(1e-12).log()
                else:
                    log_probs = F.log_softmax(self.net(x).float(), dim=1)
            sums[0] += F.nll_loss(log_probs, y, reduction="sum").double()
            sums[1] += (log_probs.argmax(1) == y).sum()
            sums[2] += hi - lo
        D.all_reduce_sum(self.dist, sums)
        loss, correct, count = sums.tolist()
        return {"test_loss": loss / count, "test_acc": correct / count}


# --- progress display ---------------------------------------------------------------------------
class Progress:
    """rich bars for epochs and batches when stderr is a terminal, plain epoch lines otherwise,
    both on stderr (stdout keeps the command's result); nothing with ``quiet`` or on ranks
    other than 0."""

    def __init__(self, enabled: bool, lines: bool):
        self.enabled = enabled and lines
        self.lines = lines
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeRemainingColumn

            from rich.console import Console

            self._progress = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                          console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start(self, done: int, total: int):
        if self._progress is not None:
            self.epochs = self._progress.add_task("epochs", total=total, completed=done, info="")
            self.batches = self._progress.add_task("batches", total=1, info="")

    def epoch(self, number: int, steps: int):
        if self._progress is not None:
            self._progress.reset(self.batches, total=steps, description=f"epoch {number}", info="")

    def step(self, step: int, steps: int, loss: float):
        if self._progress is not None:
            self._progress.update(self.batches, completed=step, info=f"loss {loss:.4f}")

    def done(self, row: dict, total: int):
        text = (f"epoch {row['epoch']}/{total}: loss {row['loss']:.4f}, train {row['train_acc']:.2%}, "
                f"test {row['test_acc']:.2%} (loss {row['test_loss']:.4f}), {row['seconds']:.1f} s, "
                f"{row['images_per_s']:,.0f} img/s")
        if self._progress is not None:
            self._progress.update(self.epochs, completed=row["epoch"], info=f"best test {row['best']:.2%}")
            self._progress.console.print(text)
        elif self.lines:
            print(text, file=sys.stderr, flush=True)

    def note(self, text: str):
        if self._progress is not None:
            self._progress.console.print(text)
        elif self.lines:
            print(text, file=sys.stderr, flush=True)


# --- one run -----------------------------------------------------------------------------------
@dataclass
class RunResult:
    out: Path
    summary: dict
    history: list


def analytic_cost(config: TrainConfig, spec=None) -> dict:
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    network = resolve(spec if spec is not None else model_spec(config), alpha=config.alpha, delta=config.delta,
                      classes=config.classes, resolution=tuple(config.resolution))
    cost = network_cost(network, "paper")
    return {"spec": network.variant, "params": int(cost.params), "mult_adds": int(cost.mult_adds)}


def summarize(out: Path, config: TrainConfig, dataset_info: dict, cost: dict, history: list, device: str,
              run_id: str | None = None, fingerprint: str | None = None) -> dict:
    best = max(history, key=lambda row: row["test_acc"]) if history else None
    train_seconds = sum(row["train_seconds"] for row in history)
    images = sum(row["images"] for row in history)
    return {
        "format": RUN_FORMAT, "name": out.name, "run_id": run_id, "variant": config.variant, "spec": cost["spec"],
        "alpha": config.alpha, "delta": config.delta, "classes": config.classes,
        "resolution": list(config.resolution), "dataset": dataset_info["name"],
        "dataset_source": config.dataset, "dataset_fingerprint": fingerprint, "train_images": dataset_info["train"],
        "test_images": dataset_info["test"], "convention": "paper", "params": cost["params"],
        "mult_adds": cost["mult_adds"],
        "best_test_accuracy": best["test_acc"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_test_accuracy": history[-1]["test_acc"] if history else None,
        "final_train_accuracy": history[-1]["train_acc"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "epochs": len(history), "epochs_planned": config.epochs, "complete": len(history) >= config.epochs,
        "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed, "augment": config.augment,
        "dropout": config.dropout, "fmp_mode": config.fmp_mode, "test_draws": config.test_draws,
        "bn_stats": config.bn_stats, "bn_batches": config.bn_batches if config.bn_stats == "precise" else 0,
        "device": device, "world_size": config.world_size, "threads": config.threads,
        "train_seconds": round(train_seconds, 3),
        "images_per_s": round(images / train_seconds, 1) if train_seconds > 0 else None,
    }


def kept(out: Path, saved_epoch: int) -> str:
    """What a failed or interrupted run leaves, truthfully."""
    if saved_epoch:
        return f"{out} keeps epoch {saved_epoch} (last.pt); --resume --out {out} continues from it"
    return "no epoch was completed, so nothing of the run was kept"


def _remove_started(out: Path) -> None:
    """Undo a start that saved no epoch: the run's files and temporaries go, ``.lock`` stays."""
    for path in out.iterdir() if out.is_dir() else ():
        if path.name in RUN_FILES or is_temporary(path.name):
            path.unlink(missing_ok=True)


def run(config: TrainConfig, dataset: Dataset, out: Path, *, resume_state: dict | None = None,
        quiet: bool = False, dist: D.Dist = D.Dist(), stop_after: int | None = None,
        command: str | None = None) -> RunResult:
    """Train ``config`` on ``dataset`` into ``out`` (already checked by :func:`check_out_dir`; the
    caller holds the folder's lock).

    ``resume_state``: the stored config.json of the run being resumed, as :func:`check_out_dir`
    returns it (its last checkpoint is loaded and checked again). ``stop_after``: stop (as if
    interrupted) after that many epochs of this call, for tests. ``command``: the command line to
    record (default: ``sys.argv``). A fresh run that fails or is interrupted before its first
    checkpoint removes the files it wrote; the exception says what the folder keeps.
    """
    import datetime
    import os
    import uuid

    out = Path(out)
    if config.bn_stats not in BN_STATS:
        raise RunError(f"bn_stats must be one of {', '.join(BN_STATS)}, got {config.bn_stats!r}")
    device = pick_device(config.device, dist)
    spec = model_spec(config)
    cost = analytic_cost(config, spec)
    dataset_info = dataset.describe()
    config = _replace(config, threads=torch.get_num_threads())
    if config.spec_toml is None:  # the run keeps its spec's text: it rebuilds its model from it
        config = _replace(config, spec_toml=spec_text(config.variant))
    fresh = resume_state is None
    start_epoch, history, best_acc = 0, [], -1.0
    checkpoint = None
    if not fresh:
        if not (out / "last.pt").is_file():
            raise RunError(f"--resume: {out / 'last.pt'} is missing, so there is no checkpoint to continue from; "
                           "nothing was changed")
        checkpoint = load_checkpoint(out / "last.pt")
        check_checkpoint(checkpoint, resume_state, out / "last.pt")
        start_epoch = int(checkpoint["epoch"])
        history = list(checkpoint["history"])
        best_acc = max((row["test_acc"] for row in history), default=-1.0)
        if config.epochs < start_epoch:
            raise RunError(f"--epochs {config.epochs}: the run in {out} has already done {start_epoch} epochs; "
                           f"plan at least {start_epoch} (nothing was changed)")
    run_id = D.broadcast(dist, (resume_state or {}).get("run_id") or uuid.uuid4().hex)
    identity = _run_identity(config, dataset, run_id, resume_state, start_epoch)
    fingerprint = identity.data["fingerprint"]

    # Same initial weights on every rank and every run of this seed; per-rank streams afterwards.
    from mnetcost.nn.models import build_model

    seed_everything(config.seed)
    model = build_model(spec, alpha=config.alpha, delta=config.delta, classes=config.classes,
                        resolution=tuple(config.resolution), dropout=config.dropout, fmp_seed=config.seed,
                        fmp_mode=config.fmp_mode)
    seed_everything(config.seed + 7919 * dist.rank)
    data = DeviceData.from_dataset(dataset, device, (identity.data["mean"], identity.data["std"]))
    trainer = Trainer(model, data, config, device, dist)
    if checkpoint is not None:
        mismatch = state_mismatch(trainer.net, checkpoint.get("model"))
        if mismatch:
            raise RunError(f"{out / 'last.pt'} does not fit the model of the run in {out}: {mismatch}")
        try:
            trainer.net.load_state_dict(checkpoint["model"])
            trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:  # the optimizer's state: its own message, whole
            detail = " ".join(str(exc).split())
            raise RunError(f"{out / 'last.pt'}: the optimizer state does not fit the run in {out} "
                           f"({type(exc).__name__}: {detail})") from None
        states = checkpoint["rng"]
        if len(states) != dist.world:
            raise RunError(f"{out / 'last.pt'} was written by {len(states)} processes, now {dist.world}")
        restore_rng(states[dist.rank], trainer.generators)

    device_name = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    now = determinism(device_name, dist)
    changes = [] if fresh else determinism_changes(resume_state.get("determinism"), now)
    if changes and dist.main:
        print(f"note: resuming {out} with {', '.join(changes)}: the result may differ in its last bits from "
              "an uninterrupted run", file=sys.stderr, flush=True)
    saved_epoch = start_epoch
    show = dist.main and not quiet
    progress = Progress(enabled=sys.stderr.isatty() and sys.stdout.isatty(), lines=show)
    try:
        error = None
        if dist.main:
            try:
                out.mkdir(parents=True, exist_ok=True)
                if fresh:
                    clear_failed_start(out)
                else:
                    for stale in out.iterdir():  # temporary files a killed process could not remove
                        if is_temporary(stale.name):
                            stale.unlink(missing_ok=True)
                entry = {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                         "command": command if command is not None else shlex.join(sys.argv), "cwd": os.getcwd(),
                         "from_epoch": start_epoch, "epochs": config.epochs, "threads": config.threads}
                previous = list((resume_state or {}).get("commands") or [])
                if not fresh and not previous and resume_state.get("command"):  # a run of format 1
                    previous = [{"command": resume_state["command"], "from_epoch": 0}]
                public = {key: value for key, value in asdict(config).items() if key != "spec_toml"}
                stored = {"format": RUN_FORMAT, "run_id": run_id, **public, "config": asdict(config),
                          "identity": identity.to_json(), "dataset_info": dataset_info,
                          "class_names": list(dataset.class_names),
                          "spec": cost["spec"], "params": cost["params"], "mult_adds": cost["mult_adds"],
                          "device_used": device_name, "mnetcost_version": __version__,
                          "torch_version": torch.__version__, "determinism": now,
                          "command": previous[0]["command"] if previous else entry["command"],
                          "commands": previous + [entry]}
                save_json(out / "config.json", stored)
                if history:  # rebuild from the checkpoint: drops a line a kill may have left unmatched
                    save_file(out / "metrics.jsonl", _jsonl(history))
                    save_json(out / "summary.json", summarize(out, config, dataset_info, cost, history, device_name,
                                                              run_id, fingerprint))
            except (SaveError, OSError) as exc:
                error = str(exc) if isinstance(exc, SaveError) else f"cannot write in {out}: {exc.strerror or exc}"
        error = D.broadcast(dist, error)  # every rank stops, or none
        if error:
            raise SaveError(error)

        epochs_run = 0
        with progress:
            progress.start(start_epoch, config.epochs)
            if start_epoch and show:
                progress.note(f"resuming {out} after epoch {start_epoch} of {config.epochs}")
            for epoch in range(start_epoch + 1, config.epochs + 1):
                if stop_after is not None and epochs_run >= stop_after:
                    raise KeyboardInterrupt
                progress.epoch(epoch, trainer.steps_per_epoch())
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                began = time.perf_counter()
                train = trainer.train_epoch(on_step=progress.step if show else None)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                trained = time.perf_counter()
                if config.bn_stats == "precise":
                    trainer.recompute_bn_stats(epoch)
                test = trainer.evaluate()
                ended = time.perf_counter()
                row = {"epoch": epoch, "loss": train["loss"], "train_acc": train["train_acc"], **test,
                       "seconds": round(ended - began, 3), "train_seconds": round(trained - began, 3),
                       "eval_seconds": round(ended - trained, 3), "images": train["count"],
                       "images_per_s": round(train["count"] / max(trained - began, 1e-9), 1)}
                history.append(row)
                improved = test["test_acc"] > best_acc
                best_acc = max(best_acc, test["test_acc"])
                states = D.gather(dist, capture_rng(trainer.generators))
                error = None
                if dist.main:
                    weights = trainer.net.state_dict()
                    row["weights_sha256"] = weights_fingerprint(weights)  # what an export of this epoch names
                    state = {"format": CHECKPOINT_FORMAT, "run_id": run_id, "epoch": epoch,
                             "model": weights, "optimizer": trainer.optimizer.state_dict(),
                             "rng": states, "history": history, "config": config.identity()}
                    try:
                        if improved:
                            save_checkpoint(out / "best.pt", state)
                        save_checkpoint(out / "last.pt", state)
                        saved_epoch = epoch
                        save_file(out / "metrics.jsonl", _jsonl(history))
                        save_json(out / "summary.json",
                                  summarize(out, config, dataset_info, cost, history, device_name, run_id, fingerprint))
                    except SaveError as exc:
                        error = str(exc)
                error = D.broadcast(dist, error)  # also the barrier after rank 0's writes
                if error:
                    raise SaveError(error)
                saved_epoch = epoch
                epochs_run += 1
                progress.done({**row, "best": best_acc}, config.epochs)
        summary = summarize(out, config, dataset_info, cost, history, device_name, run_id, fingerprint)
        if dist.main and (not (out / "summary.json").is_file() or not history or start_epoch >= config.epochs):
            save_json(out / "summary.json", summary)
    except BaseException as exc:
        if fresh and saved_epoch == 0 and dist.main:
            _remove_started(out)
        if isinstance(exc, Diverged):
            raise Diverged(f"{exc}; {kept(out, saved_epoch)}") from None
        if isinstance(exc, SaveError):
            raise SaveError(f"{exc}; {kept(out, saved_epoch)}") from None
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(saved_epoch) from None
        raise
    return RunResult(out=out, summary=summary, history=history)


def _jsonl(rows: list[dict]):
    """One strict JSON object per line (a NaN test loss: null, named under ``nonfinite``)."""
    return lambda stream: stream.write("".join(json_text(row, indent=None) + "\n" for row in rows).encode())


def _run_identity(config: TrainConfig, dataset: Dataset, run_id: str, resume_state: dict | None,
                  start_epoch: int) -> ID.RunIdentity:
    """The identity the run writes into config.json. A new run measures its data (fingerprint,
    class names, sizes, normalisation statistics). A resumed run keeps what it recorded (its
    normalisation statistics too: the continuation normalises as the start did) and takes the
    data's current location; a run written before identities gets what it lacks measured now,
    with a note saying after which epoch."""
    if resume_state is None:
        return config_identity(config, dataset, run_id, channel_stats(dataset.train_x))
    before = ID.from_config(resume_state)
    recorded = {key: value for key, value in before.data.items() if value is not None and key != "source"}
    missing = [key for key in ("fingerprint", "mean", "std") if key not in recorded]
    normalization = (recorded["mean"], recorded["std"]) if not {"mean", "std"} & set(missing) \
        else channel_stats(dataset.train_x)
    measured = config_identity(config, dataset, run_id, normalization)
    note = before.note
    if missing and before.legacy:
        note = (f"{', '.join(missing)} of the data measured when the run was resumed after epoch {start_epoch} "
                f"(it was written by an mnetcost that did not record them)")
    return ID.RunIdentity(recipe=measured.recipe, data={**measured.data, **recorded}, seed=measured.seed,
                          run_id=run_id, note=note)


def _replace(config: TrainConfig, **changes) -> TrainConfig:
    from dataclasses import replace

    return replace(config, **changes)
