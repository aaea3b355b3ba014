"""``mnetcost bench --runtime``: the same configurations timed in eager PyTorch and in ONNX Runtime
(fp32 and static int8), in the same interleaved rounds (:func:`mnetcost.nn.latency.time_subjects`).

Runtimes:

* ``torch``: the model in eager PyTorch (:mod:`mnetcost.nn.latency`, unchanged).
* ``onnxruntime``: the model exported as ``mnetcost export`` exports it (opset 18, BatchNorm
  folded, FMP's fixed draw as Gather/Max), in an ONNX Runtime CPU session with full graph
  optimizations.
* ``onnxruntime-int8``: that file quantized as ``mnetcost export --int8`` quantizes it (QDQ,
  per-channel int8 weights, int8 activations), calibrated on :data:`CALIBRATION_IMAGES`
  standard-normal inputs: the timing does not depend on the scales the calibration picks.

Every session gets ``intra_op_num_threads`` = PyTorch's thread count, so the runtimes compete on
equal terms; the thread count is recorded with the results.
"""
from __future__ import annotations

import time

import numpy as np

from mnetcost.errors import MnetcostError

RUNTIMES = ("torch", "onnxruntime", "onnxruntime-int8")
CALIBRATION_IMAGES = 32


def parse_runtimes(text: str) -> list[str]:
    """``torch,onnxruntime,onnxruntime-int8`` (any order, no repeats) -> a list; ``all`` = every one."""
    if text.strip() == "all":
        return list(RUNTIMES)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in RUNTIMES]
    if not names or unknown:
        raise MnetcostError(f"--runtime {text}: {'unknown runtime ' + unknown[0] if unknown else 'empty'} "
                            f"(one or more of {', '.join(RUNTIMES)}, comma-separated, or all)")
    return list(dict.fromkeys(names))


class OrtSubject:
    """One configuration in ONNX Runtime: the :class:`mnetcost.nn.latency._Subject` interface."""

    def __init__(self, config, runtime: str, proto, *, batch_size: int, threads: int, convention: str, seed=0):
        from mnetcost.calculator.cost import network_cost
        from mnetcost.calculator.resolver import resolve
        from mnetcost.deploy.runtime import session

        self.config, self.runtime = config, runtime
        network = resolve(*config)
        self.cost = network_cost(network, convention, dtype="int8" if runtime.endswith("int8") else "fp32")
        self.session = session(proto, threads)
        self.input_name = self.session.get_inputs()[0].name
        rng = np.random.default_rng(seed)
        shape = (network.spec.in_channels, *network.resolution)
        self.inputs = {batch: rng.standard_normal((batch, *shape)).astype(np.float32)
                       for batch in sorted({1, batch_size} - {0})}
        self.times: dict[int, list[float]] = {batch: [] for batch in self.inputs}

    def run(self, batch: int, passes: int, timed: bool) -> None:
        feed = {self.input_name: self.inputs[batch]}
        run = self.session.run
        for _ in range(passes):
            start = time.perf_counter()
            run(None, feed)
            if timed:
                self.times[batch].append(time.perf_counter() - start)


def exported(config, fmp_mode: str, int8: bool, cache: dict):
    """The fp32 (and int8) ``ModelProto`` of a configuration's freshly initialised model, exported
    once per configuration."""
    import torch

    from mnetcost.deploy.export import check_batch, export_proto
    from mnetcost.deploy.quantize import quantize_int8
    from mnetcost.nn.models import build_model

    if config not in cache:
        variant, alpha, delta, classes, resolution = config
        torch.manual_seed(0)
        model = build_model(variant, alpha=alpha, delta=delta, classes=classes, resolution=resolution,
                            fmp_mode=fmp_mode)
        cache[config] = {"model": model, "fp32": export_proto(model, metadata={"variant": str(variant)})}
    entry = cache[config]
    if int8 and "int8" not in entry:
        entry["int8"] = quantize_int8(entry["fp32"], check_batch(entry["model"].network, CALIBRATION_IMAGES, seed=1))
    return entry["int8" if int8 else "fp32"]


def run_bench_runtimes(configs, runtimes, *, device="cpu", batch_size: int = 64, warmup: int = 10,
                       repeats: int = 30, threads: int | None = None, channels_last: bool = True,
                       fmp_mode: str = "tf", convention: str = "paper", log=lambda message: None) -> dict:
    """Every configuration in every runtime, timed in the same rounds; one result row per
    (configuration, runtime) with its ``runtime``."""
    import torch

    from mnetcost.deploy.export import OPSET
    from mnetcost.deploy.runtime import versions
    from mnetcost.nn import latency as L

    if threads is not None:
        torch.set_num_threads(threads)
    the_device = L.pick_device(device)
    if the_device.type != "cpu" and any(r != "torch" for r in runtimes):
        raise MnetcostError(f"--runtime {','.join(runtimes)}: mnetcost runs ONNX Runtime on the CPU; "
                            "use --device cpu")
    batch_size = batch_size if batch_size > 1 else 1
    threads_used = torch.get_num_threads()
    cache: dict = {}
    subjects = []
    for config in configs:
        for runtime in runtimes:
            if runtime == "torch":
                subjects.append(L._Subject(config, device=the_device, batch_size=batch_size,
                                           channels_last=channels_last, fmp_mode=fmp_mode, convention=convention))
                continue
            log(f"exporting {config[0]} α={config[1]:g} δ={config[2]} for {runtime}")
            proto = exported(config, fmp_mode, runtime.endswith("int8"), cache)
            subjects.append(OrtSubject(config, runtime, proto, batch_size=batch_size, threads=threads_used,
                                       convention=convention))
    return L.measure(subjects, device=the_device, batch_size=batch_size, warmup=warmup, repeats=repeats,
                     channels_last=channels_last, fmp_mode=fmp_mode, convention=convention,
                     extra={**versions(), "onnx_opset": OPSET, "onnxruntime_threads": threads_used,
                            "int8_calibration": f"{CALIBRATION_IMAGES} standard-normal inputs"})
