"""Measured inference speed of the models that :func:`mnetcost.models.build_model` builds.

For each configuration: the model in ``eval()`` under ``torch.inference_mode()``, a fixed random
input, ``warmup`` untimed forward passes, then ``repeats`` timed ones (``time.perf_counter``,
with ``torch.cuda.synchronize`` around each pass on CUDA). Reported: the median milliseconds
per image at batch 1 (latency) with the 10th/90th percentiles, and images per second at a
larger batch (throughput, from the median time of a batch). The median resists the odd slow
pass (a page fault, another process).

The thread count is whatever torch uses (``torch.set_num_threads``; ``--threads`` sets it) and
is recorded with the results, as are the device, torch version and settings, so a results file
says where its numbers came from. Nothing here asserts anything about speed.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

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


def time_forward(model, batch: int, resolution: tuple[int, int], channels: int, device, *, warmup: int,
                 repeats: int, channels_last: bool = False, seed: int = 0) -> list[float]:
    """Seconds of each of ``repeats`` timed forward passes of a ``batch`` after ``warmup`` passes."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, channels, *resolution), generator=generator).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    cuda = device.type == "cuda"
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        if cuda:
            torch.cuda.synchronize(device)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    return times


def bench_config(variant: str, alpha: float, delta: int, classes: int = 10, resolution: int = 32, *, device,
                 batch_size: int = 64, warmup: int = 10, repeats: int = 30, channels_last: bool = False,
                 fmp_mode: str = "tf", convention: str = "paper") -> dict:
    """One configuration's record: its analytic cost and its measured latency/throughput."""
    import torch

    from mnetcost.cost import network_cost
    from mnetcost.models import build_model

    model = build_model(variant, alpha=alpha, delta=delta, classes=classes, resolution=resolution, fmp_mode=fmp_mode)
    model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    cost = network_cost(model.network, convention)
    size = model.network.resolution
    channels = model.network.spec.in_channels
    single = time_forward(model, 1, size, channels, device, warmup=warmup, repeats=repeats,
                          channels_last=channels_last)
    record = {
        "variant": variant, "alpha": alpha, "delta": delta, "classes": classes, "resolution": resolution,
        "params": cost.params, "mult_adds": cost.mult_adds,
        "latency_ms": 1000 * statistics.median(single),
        "latency_ms_p10": 1000 * _percentile(single, 0.1),
        "latency_ms_p90": 1000 * _percentile(single, 0.9),
        "images_per_s": None, "batch_ms": None,
    }
    if batch_size > 1:
        batched = time_forward(model, batch_size, size, channels, device, warmup=max(1, warmup // 2),
                               repeats=repeats, channels_last=channels_last)
        median = statistics.median(batched)
        record["batch_ms"] = 1000 * median
        record["images_per_s"] = batch_size / median
    # achieved multiply-accumulates per second at the larger batch (or at batch 1)
    per_image_s = (record["batch_ms"] / batch_size if record["batch_ms"] else record["latency_ms"]) / 1000
    record["gmacs_per_s"] = cost.mult_adds / per_image_s / 1e9
    return record


def run_bench(configs, *, device="auto", batch_size: int = 64, warmup: int = 10, repeats: int = 30,
              threads: int | None = None, channels_last: bool = False, fmp_mode: str = "tf",
              convention: str = "paper", progress=None) -> dict:
    """Measure every (variant, alpha, delta, classes, resolution) in ``configs``; the object that
    ``mnetcost bench --out`` writes and ``mnetcost plot --x latency`` reads."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    the_device = pick_device(device)
    results = []
    for number, config in enumerate(configs):
        record = bench_config(*config, device=the_device, batch_size=batch_size, warmup=warmup, repeats=repeats,
                              channels_last=channels_last, fmp_mode=fmp_mode, convention=convention)
        results.append(record)
        if progress is not None:
            progress(number, len(configs), record)
    return {
        "schema": SCHEMA,
        "device": str(the_device),
        "device_name": device_name(the_device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "warmup": warmup,
        "repeats": repeats,
        "channels_last": channels_last,
        "fmp_mode": fmp_mode,
        "convention": convention,
        "results": results,
    }


def write_json_atomic(obj, path: str | Path) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=str(target.parent if str(target.parent) else "."))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(obj, file, indent=2)
            file.write("\n")
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
