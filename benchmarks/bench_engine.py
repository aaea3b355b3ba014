"""Speed of the analytic side, measured in one run (ratios, since the machine is shared and noisy).

1. Wall time of ``mnetcost ratio --M 64 --N 128 --alpha 0.5 --delta 2`` against
   ``python -c "import click, rich"`` (the floor any click + rich CLI pays). Target: <= 1.5x.
2. Throughput of the vectorised engine on 100,000 (variant, alpha, delta) configurations.
   Target: >= 100,000 configurations per second.

Run: python benchmarks/bench_engine.py [--repeats 15] [--configs 100000]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def cli_startup(repeats: int) -> None:
    ratio = [shutil.which("mnetcost") or sys.executable, "ratio", "--M", "64", "--N", "128", "--alpha", "0.5",
             "--delta", "2"]
    if ratio[0] == sys.executable:
        ratio.insert(1, "-m")
        ratio.insert(2, "mnetcost")
    floor = [sys.executable, "-c", "import click, rich"]
    wall(ratio), wall(floor)  # warm the file cache
    ratio_times, floor_times = [], []
    for _ in range(repeats):  # interleaved, so drifting load hits both alike
        ratio_times.append(wall(ratio))
        floor_times.append(wall(floor))
    r, f = statistics.median(ratio_times), statistics.median(floor_times)
    print(f"mnetcost ratio (worked example): median {r * 1000:.0f} ms over {repeats} runs")
    print(f'python -c "import click, rich":  median {f * 1000:.0f} ms over {repeats} runs')
    print(f"ratio: {r / f:.2f}x  (target <= 1.5x)")


def engine_throughput(configs: int) -> None:
    import numpy as np

    from mnetcost.cost import sweep_totals
    from mnetcost.resolve import plan, resolve_arrays

    variants = ("base", "mp3", "fmp")
    rng = np.random.default_rng(0)
    per_variant = configs // len(variants)
    alphas = np.round(rng.uniform(0.1, 1.5, size=per_variant), 3)
    deltas = rng.integers(1, 9, size=per_variant)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for variant in variants:
            params, mult_adds = sweep_totals(resolve_arrays(plan(variant, 10, 32), alphas, deltas), "paper")
            total += len(params)
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    print(f"engine: {total:,} (variant, alpha, delta) configurations priced in {median * 1000:.1f} ms "
          f"(median of 5; best {best * 1000:.1f} ms)")
    print(f"throughput: {total / median:,.0f} configurations/s  (target >= 100,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--configs", type=int, default=100_000)
    args = parser.parse_args()
    cli_startup(args.repeats)
    engine_throughput(args.configs)


if __name__ == "__main__":
    main()
