"""``mnetcost train``: the paper's recipe, fast, resumable, and able to run under torchrun.

The recipe (Chen & Su, section IV): Adam with learning rate 1e-3, dropout 0.1 before the
classifier, no data augmentation, cross-entropy, evaluation on the test set after every epoch.

Speed: the decoded dataset lives on the training device as one uint8 tensor; each epoch draws a
random permutation and a batch is ``images[perm[i:i+b]]`` (no DataLoader, no per-image Python
work), normalised and (with ``augment``) randomly cropped and flipped on the device, in
channels-last memory format (3.4x faster on CPU at alpha 0.25, FACTS.md). On CUDA the forward
pass runs under bf16 autocast and ``compile`` wraps the model in ``torch.compile``.

A run folder holds ``config.json``, ``metrics.jsonl`` (one JSON object per epoch),
``last.pt`` and ``best.pt`` (checkpoints), and ``summary.json``. Every file is written to a
temporary file and renamed, in the order best.pt, last.pt, metrics.jsonl, summary.json, so a
run killed at any instant leaves a valid last checkpoint, and metrics.jsonl is rebuilt from the
checkpoint's history on resume. A checkpoint stores the random states of torch (CPU and CUDA),
numpy, Python, the batch-order and augmentation generators, for every rank, so on CPU an
interrupted and resumed run ends with exactly the weights and metrics of an uninterrupted one.

Under ``torchrun --nproc_per_node=N`` every rank takes a strided shard of the same permutation
(padded to a multiple of N, as ``DistributedSampler`` does), ``--batch-size`` is the global batch
(each rank takes batch/N), gradients are averaged by DistributedDataParallel, metric sums are
all-reduced, and only rank 0 writes files or prints.
"""
from __future__ import annotations

import json
import math
import random
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
from mnetcost.nn import distributed as D
from mnetcost.nn.datasets import Dataset
from mnetcost.errors import MnetcostError
from mnetcost.files import atomic_write, write_json
from mnetcost.nn.fmp import predict_averaged

RUN_FORMAT = 1
CHECKPOINT_FORMAT = 1
RUN_FILES = ("config.json", "metrics.jsonl", "last.pt", "best.pt", "summary.json")
# Keys that define a run: a resumed run must agree on every one of them.
IDENTITY = ("variant", "alpha", "delta", "classes", "resolution", "dataset", "batch_size", "lr", "seed",
            "augment", "dropout", "world_size", "fmp_mode", "test_draws")
TIMING_KEYS = ("seconds", "train_seconds", "eval_seconds", "images_per_s")


class RunError(MnetcostError):
    """A run folder that cannot be used as asked (not empty, nothing to resume, config mismatch)."""


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


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
    world_size: int = 1
    fmp_mode: str = "tf"  # "tf" (TensorFlow's algorithm, as the paper) or "torch" (nn.FractionalMaxPool2d)
    test_draws: int = 1  # > 1: test predictions averaged over that many fixed FMP draws (Graham)

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
    def from_dataset(cls, dataset: Dataset, device: torch.device) -> "DeviceData":
        mean, std = channel_stats(dataset.train_x)
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
def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda stream: stream.write("".join(json.dumps(row) + "\n" for row in rows).encode()))


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda stream: torch.save(state, stream))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise RunError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def check_out_dir(out: Path, resume: bool) -> dict | None:
    """Refuse a non-empty folder for a new run; return the stored config for a resume."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} exists and is not a folder")
    contents = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not resume:
        if contents:
            shown = ", ".join(contents[:4]) + (", ..." if len(contents) > 4 else "")
            raise RunError(f"--out {out} is not empty ({shown}); pass --resume to continue that run "
                           f"or choose another --out")
        return None
    config_path = out / "config.json"
    if not config_path.is_file():
        raise RunError(f"--resume: nothing to resume in {out} (no config.json)")
    try:
        stored = json.loads(config_path.read_text())
        stored["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"--resume: {config_path} is not a run config ({exc})") from None
    return stored


def mismatches(stored: dict, config: TrainConfig) -> list[str]:
    """The identity fields where ``config`` differs from a stored run config."""
    wrong = []
    defaults = TrainConfig()
    for key in IDENTITY:
        old, new = stored.get(key, getattr(defaults, key)), getattr(config, key)
        if isinstance(old, list) or isinstance(new, (list, tuple)):
            old, new = list(old or []), list(new)
        if old != new:
            wrong.append(f"{key} {old!r} (run) vs {new!r} (now)")
    return wrong


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
        self.net = model.to(device=device, memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        model_for_steps = self.net
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            model_for_steps = DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
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


def analytic_cost(config: TrainConfig) -> dict:
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    network = resolve(config.variant, alpha=config.alpha, delta=config.delta, classes=config.classes,
                      resolution=tuple(config.resolution))
    cost = network_cost(network, "paper")
    return {"spec": network.variant, "params": int(cost.params), "mult_adds": int(cost.mult_adds)}


def summarize(out: Path, config: TrainConfig, dataset_info: dict, cost: dict, history: list, device: str) -> dict:
    best = max(history, key=lambda row: row["test_acc"]) if history else None
    train_seconds = sum(row["train_seconds"] for row in history)
    images = sum(row["images"] for row in history)
    return {
        "format": RUN_FORMAT, "name": out.name, "variant": config.variant, "spec": cost["spec"],
        "alpha": config.alpha, "delta": config.delta, "classes": config.classes,
        "resolution": list(config.resolution), "dataset": dataset_info["name"],
        "dataset_source": config.dataset, "train_images": dataset_info["train"],
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
        "device": device, "world_size": config.world_size,
        "train_seconds": round(train_seconds, 3),
        "images_per_s": round(images / train_seconds, 1) if train_seconds > 0 else None,
    }


def run(config: TrainConfig, dataset: Dataset, out: Path, *, resume_state: dict | None = None,
        quiet: bool = False, dist: D.Dist = D.Dist(), stop_after: int | None = None) -> RunResult:
    """Train ``config`` on ``dataset`` into ``out`` (already checked by :func:`check_out_dir`).

    ``resume_state``: the stored config.json of the run being resumed (its last checkpoint, if
    any, is loaded). ``stop_after``: stop (as if interrupted) after that many epochs of this call,
    for tests.
    """
    out = Path(out)
    device = pick_device(config.device, dist)
    cost = analytic_cost(config)
    dataset_info = dataset.describe()
    start_epoch, history, best_acc = 0, [], -1.0
    checkpoint = None
    if resume_state is not None and (out / "last.pt").is_file():
        checkpoint = load_checkpoint(out / "last.pt")
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{out / 'last.pt'}: unknown checkpoint format {checkpoint.get('format')!r}")
        start_epoch = int(checkpoint["epoch"])
        history = list(checkpoint["history"])
        best_acc = max((row["test_acc"] for row in history), default=-1.0)

    # Same initial weights on every rank and every run of this seed; per-rank streams afterwards.
    from mnetcost.nn.models import build_model

    seed_everything(config.seed)
    model = build_model(config.variant, alpha=config.alpha, delta=config.delta, classes=config.classes,
                        resolution=tuple(config.resolution), dropout=config.dropout, fmp_seed=config.seed,
                        fmp_mode=config.fmp_mode)
    seed_everything(config.seed + 7919 * dist.rank)
    data = DeviceData.from_dataset(dataset, device)
    trainer = Trainer(model, data, config, device, dist)
    if checkpoint is not None:
        trainer.net.load_state_dict(checkpoint["model"])
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        states = checkpoint["rng"]
        if len(states) != dist.world:
            raise RunError(f"{out / 'last.pt'} was written by {len(states)} processes, now {dist.world}")
        restore_rng(states[dist.rank], trainer.generators)

    device_name = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:  # temporary files a killed process could not remove
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        stored = {"format": RUN_FORMAT, **asdict(config), "config": asdict(config), "dataset_info": dataset_info,
                  "class_names": list(dataset.class_names), "spec": cost["spec"],
                  "params": cost["params"], "mult_adds": cost["mult_adds"], "device_used": device_name,
                  "mnetcost_version": __version__, "torch_version": torch.__version__,
                  "command": " ".join(sys.argv)}
        write_json(out / "config.json", stored)
        if history:  # rebuild from the checkpoint: drops a line a kill may have left unmatched
            write_jsonl(out / "metrics.jsonl", history)
    D.barrier(dist)

    show = dist.main and not quiet
    progress = Progress(enabled=sys.stderr.isatty() and sys.stdout.isatty(), lines=show)
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
            if dist.main:
                state = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "model": trainer.net.state_dict(),
                         "optimizer": trainer.optimizer.state_dict(), "rng": states, "history": history,
                         "config": config.identity()}
                if improved:
                    save_checkpoint(out / "best.pt", state)
                save_checkpoint(out / "last.pt", state)
                write_jsonl(out / "metrics.jsonl", history)
                write_json(out / "summary.json", summarize(out, config, dataset_info, cost, history, device_name))
            D.barrier(dist)
            epochs_run += 1
            progress.done({**row, "best": best_acc}, config.epochs)
    summary = summarize(out, config, dataset_info, cost, history, device_name)
    if dist.main and (not (out / "summary.json").is_file() or not history or start_epoch >= config.epochs):
        write_json(out / "summary.json", summary)
    return RunResult(out=out, summary=summary, history=history)
