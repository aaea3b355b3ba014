"""Measured inference speed of the models that :func:`mnetcost.nn.models.build_model` builds.

For each configuration: the model in ``eval()`` under ``torch.inference_mode()``, a fixed random
input, ``warmup`` untimed forward passes, then ``repeats`` timed ones (``time.perf_counter``,
with ``torch.cuda.synchronize`` after each pass on CUDA), taken in rounds across all
configurations so that a change in machine load affects them alike. Reported: the median milliseconds
per image at batch 1 (latency) with the 10th/90th percentiles, and images per second at a
larger batch (throughput, from the median time of a batch). The median resists the odd slow
pass (a page fault, another process).

The thread count is whatever torch uses (``torch.set_num_threads``): ``mnetcost bench`` sets it
by the thread policy ``mnetcost train`` uses (:mod:`mnetcost.nn.threads`: ``--threads``, else
``OMP_NUM_THREADS``, else the cores other processes leave idle), and it is recorded with the
results, as are the device, torch version and settings, so a results file says where its
numbers came from. Nothing here asserts anything about speed.
"""
from __future__ import annotations

import platform
import statistics
import time

from mnetcost.errors import MnetcostError

SCHEMA = "mnetcost.bench/1"


def pick_device(name: str = "auto"):
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise MnetcostError(f"--device {name}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MnetcostError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MnetcostError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise MnetcostError(f"--device {name}: only cpu and cuda are supported")
    return device


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


PASSES_PER_ROUND = 5


class _Subject:
    """One configuration under test: its model, its inputs, and the times measured so far.

    The interface :func:`time_subjects` and :func:`record` use: ``config``, ``runtime``, ``cost``
    (a :class:`~mnetcost.calculator.cost.NetworkCost`), ``inputs`` (batch size -> input),
    ``times`` (batch size -> seconds) and ``run(batch, passes, timed)``. The deployment side's
    ONNX Runtime subjects (:mod:`mnetcost.deploy.latency`) implement it too, so one bench times
    every runtime in the same rounds."""

    runtime = "torch"

    def __init__(self, config, *, device, batch_size, channels_last, fmp_mode, convention, seed=0):
        import torch

        from mnetcost.calculator.cost import network_cost
        from mnetcost.nn.models import build_model

        variant, alpha, delta, classes, resolution = config
        self.config = config
        model = build_model(variant, alpha=alpha, delta=delta, classes=classes, resolution=resolution,
                            fmp_mode=fmp_mode)
        model.eval().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.cost = network_cost(model.network, convention)
        generator = torch.Generator().manual_seed(seed)
        shape = (model.network.spec.in_channels, *model.network.resolution)
        self.inputs = {}
        for batch in sorted({1, batch_size} - {0}):
            x = torch.randn((batch, *shape), generator=generator).to(device)
            self.inputs[batch] = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        self.times: dict[int, list[float]] = {batch: [] for batch in self.inputs}
        self.cuda = device.type == "cuda"
        self.device = device

    def run(self, batch: int, passes: int, timed: bool) -> None:
        import torch

        x = self.inputs[batch]
        with torch.inference_mode():
            for _ in range(passes):
                start = time.perf_counter()
                self.model(x)
                if self.cuda:
                    torch.cuda.synchronize(self.device)
                if timed:
                    self.times[batch].append(time.perf_counter() - start)


def time_subjects(subjects, *, warmup: int, repeats: int) -> None:
    """Time every subject ``repeats`` times per batch size, in rounds: each round gives every
    subject one untimed pass then up to PASSES_PER_ROUND timed ones, so slow drifts in machine
    load spread over all configurations instead of falling on whichever ran at the time."""
    for subject in subjects:
        for batch in subject.inputs:
            subject.run(batch, warmup, timed=False)
    done = 0
    while done < repeats:
        passes = min(PASSES_PER_ROUND, repeats - done)
        for subject in subjects:
            for batch in subject.inputs:
                subject.run(batch, 1, timed=False)
                subject.run(batch, passes, timed=True)
        done += passes


def record(subject, batch_size: int) -> dict:
    """The JSON record of one measured configuration."""
    variant, alpha, delta, classes, resolution = subject.config
    single = subject.times[1]
    result = {
        "runtime": subject.runtime,
        "variant": variant, "alpha": alpha, "delta": delta, "classes": classes, "resolution": resolution,
        "params": subject.cost.params, "mult_adds": subject.cost.mult_adds,
        "peak_activation_bytes": subject.cost.peak_activation_bytes, "weight_bytes": subject.cost.weight_bytes,
        "latency_ms": 1000 * statistics.median(single),
        "latency_ms_p10": 1000 * _percentile(single, 0.1),
        "latency_ms_p90": 1000 * _percentile(single, 0.9),
        "images_per_s": None, "batch_ms": None,
    }
    per_image_s = result["latency_ms"] / 1000
    if batch_size > 1:
        median = statistics.median(subject.times[batch_size])
        result["batch_ms"] = 1000 * median
        result["images_per_s"] = batch_size / median
        per_image_s = median / batch_size
    result["gmacs_per_s"] = subject.cost.mult_adds / per_image_s / 1e9  # achieved multiply-accumulates/s
    return result


def run_bench(configs, *, device="auto", batch_size: int = 64, warmup: int = 10, repeats: int = 30,
              threads: int | None = None, channels_last: bool = False, fmp_mode: str = "tf",
              convention: str = "paper") -> dict:
    """Measure every (variant, alpha, delta, classes, resolution) in ``configs``; the object that
    ``mnetcost bench --out`` writes and ``mnetcost plot --x latency`` reads."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    the_device = pick_device(device)
    batch_size = batch_size if batch_size > 1 else 1
    subjects = [_Subject(config, device=the_device, batch_size=batch_size, channels_last=channels_last,
                         fmp_mode=fmp_mode, convention=convention) for config in configs]
    return measure(subjects, device=the_device, batch_size=batch_size, warmup=warmup, repeats=repeats,
                   channels_last=channels_last, fmp_mode=fmp_mode, convention=convention)


def measure(subjects, *, device, batch_size: int, warmup: int, repeats: int, channels_last: bool, fmp_mode: str,
            convention: str, extra: dict | None = None) -> dict:
    """Time ``subjects`` in interleaved rounds (:func:`time_subjects`) and build the results object;
    ``extra`` adds top-level keys (the deployment side's runtime versions)."""
    import os

    import torch

    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None  # other work on the machine, at the start
    time_subjects(subjects, warmup=warmup, repeats=repeats)
    results = [record(subject, batch_size) for subject in subjects]
    return {
        "schema": SCHEMA,
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "warmup": warmup,
        "repeats": repeats,
        "channels_last": channels_last,
        "fmp_mode": fmp_mode,
        "convention": convention,
        "runtimes": list(dict.fromkeys(subject.runtime for subject in subjects)),
        "load_average": load,  # 1, 5 and 15 minutes (os.getloadavg), when the timing started
        **(extra or {}),
        "results": results,
    }
