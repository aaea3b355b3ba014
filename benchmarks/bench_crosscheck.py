"""Speed of the fvcore cross-check, measured in one run (ratios, since the machine is shared).

1. Wall time to cross-check the whole paper grid (every configuration of Tables 4-6, both
   datasets: 38 models) and the ``--all`` set (the grid plus the unprinted configurations), the
   memory checks against the model's tensors included.
2. Per configuration, the analytic engine (``resolve`` + ``network_cost``) against fvcore
   (build the model, one trace with ``FlopCountAnalysis``, ``parameter_count``), as a ratio; the
   two are interleaved configuration by configuration so drifting load hits both alike.
3. Fractional max pooling, forward + backward on a training-sized batch: this package's
   TensorFlow-style layer against ``torch.nn.functional.fractional_max_pool2d`` (kernel 2).

Run: python benchmarks/bench_crosscheck.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def per_config(repeats: int):
    from mnetcost.calculator.cost import network_cost
    from mnetcost.nn.crosscheck import crosscheck, paper_grid
    from mnetcost.calculator.resolver import resolve

    analytic, fvcore = [], []
    for config in paper_grid():
        args = (config.variant, config.alpha, config.delta, config.classes, config.resolution)
        inner = 200
        start = time.perf_counter()
        for _ in range(inner):
            network_cost(resolve(*args))
        analytic.append((time.perf_counter() - start) / inner)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            check = crosscheck(resolve(*args), memory=False)  # fvcore's side only
            samples.append(time.perf_counter() - start)
            assert check.agree
        fvcore.append(statistics.median(samples))
    return analytic, fvcore


def whole_grid():
    from mnetcost.nn.crosscheck import all_configurations, crosscheck, paper_grid
    from mnetcost.calculator.resolver import resolve

    results = {}
    for label, configs in (("paper grid", paper_grid()), ("--all", all_configurations())):
        start = time.perf_counter()
        agree = sum(crosscheck(resolve(c.variant, c.alpha, c.delta, c.classes, c.resolution)).agree for c in configs)
        results[label] = (len(configs), agree, time.perf_counter() - start)
    return results


def fmp_speed(repeats: int, batch: int, channels: int, size: int):
    import torch
    from torch.nn import functional as F

    from mnetcost.nn.fmp import FractionalMaxPool2d, pooled_size

    ours = FractionalMaxPool2d(1.44).train()
    out = pooled_size(size, 1.44)
    x = torch.randn(batch, channels, size, size, requires_grad=True)

    def run_ours():
        ours(x).sum().backward()

    def run_torch():
        F.fractional_max_pool2d(x, 2, output_size=(out, out)).sum().backward()

    times = {"ours": [], "torch": []}
    run_ours(), run_torch()
    for _ in range(repeats):  # interleaved
        for name, fn in (("ours", run_ours), ("torch", run_torch)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(the cross-check runs its tiny trace on 1), load average {os.getloadavg()[0]:.2f}")
    from mnetcost.nn.crosscheck import crosscheck  # warm imports (torch, fvcore) before timing
    from mnetcost.calculator.resolver import resolve

    crosscheck(resolve("base", 0.25, 1))

    for label, (count, agree, seconds) in whole_grid().items():
        print(f"cross-check {label}: {count} configurations in {seconds:.2f} s "
              f"({seconds / count * 1000:.0f} ms each), {agree} of {count} agree on every layer")

    analytic, fvcore = per_config(args.repeats)
    a, f = statistics.median(analytic), statistics.median(fvcore)
    print(f"per configuration (median over {len(analytic)}): analytic engine {a * 1e6:.0f} µs, "
          f"fvcore (build + trace + count) {f * 1e3:.1f} ms -> analytic is {f / a:,.0f}x faster")

    batch, channels, size = 128, 64, 32
    threads = torch.get_num_threads()
    for count in sorted({1, threads}):
        torch.set_num_threads(count)
        fmp = fmp_speed(max(args.repeats, 5), batch, channels, size)
        print(f"FMP forward+backward, {batch}x{channels}x{size}x{size} -> 22x22, train mode, {count} thread(s): "
              f"TF-style {fmp['ours'] * 1e3:.0f} ms, torch built-in {fmp['torch'] * 1e3:.0f} ms "
              f"-> ours takes {fmp['ours'] / fmp['torch']:.2f}x the built-in's time")
    torch.set_num_threads(threads)

if __name__ == "__main__":
    main()
