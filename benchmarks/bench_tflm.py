"""How long ``mnetcost table --target BOARD`` takes for the MobileNetV2/V3 family (TensorFlow Lite Micro's
arena and the .tflite bytes predicted from the resolved layers), against the target of 1 s on an idle
2-core machine.

Two figures per variant:

* ``command``: ``python -m mnetcost table --variant V --alpha A --resolution R --target stm32f746`` as a user
  runs it (a subprocess: interpreter start, imports, pricing, the TFLM prediction, output), the median over
  ``--repeats`` runs of wall-clock seconds, with the CPU seconds (user + system) beside it: on a machine that
  other processes keep busy the wall time grows with the load while the CPU time stays close to what the
  work costs, so both are printed, with the load average;
* ``tflm``: the prediction alone, in this process (lowering, the file layout, the greedy planner and the
  tail: :func:`mnetcost.calculator.tflm.runtime_figures`), the median of ``--repeats`` calls.

Nothing here asserts a speed.

Run: python benchmarks/bench_tflm.py [--repeats 3] [--alpha 0.5] [--resolution 96]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench_cli import timed  # (wall, CPU) seconds of one `python -m mnetcost` command

TARGET_S = 1.0
VARIANTS = ("mobilenet_v2", "mobilenet_v2_mp3", "mobilenet_v2_fmp", "mobilenet_v3_small", "mobilenet_v3_small_mp3",
            "mobilenet_v3_small_fmp", "mobilenet_v3_large", "mobilenet_v3_large_mp3", "mobilenet_v3_large_fmp")


def prediction(variant: str, alpha: float, resolution: int, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of the TFLM prediction alone (the spec's resolution
    included)."""
    from mnetcost.calculator import tflm
    from mnetcost.calculator.resolver import resolve

    samples = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        tflm.runtime_figures(resolve(variant, alpha, 1, resolution=resolution))
        samples.append((time.perf_counter() - start, time.process_time() - cpu))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per figure; the median is printed.")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--target", default="stm32f746")
    options = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
          f"table --alpha {options.alpha:g} --resolution {options.resolution} --target {options.target}")
    print(f"{'variant':<24} {'command wall s':>15} {'command CPU s':>14} {'tflm wall s':>12} {'tflm CPU s':>11} "
          f"{'target s':>9}")
    slowest = 0.0
    for variant in VARIANTS:
        args = ["table", "--variant", variant, "--alpha", str(options.alpha), "--resolution",
                str(options.resolution), "--target", options.target]
        samples = [timed(args) for _ in range(options.repeats)]
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        alone, alone_cpu = prediction(variant, options.alpha, options.resolution, options.repeats)
        slowest = max(slowest, wall)
        print(f"{variant:<24} {wall:>15.3f} {cpu:>14.3f} {alone:>12.3f} {alone_cpu:>11.3f} {TARGET_S:>9.1f}")
    print(f"slowest command: {slowest:.3f} s wall ({'within' if slowest <= TARGET_S else 'over'} the {TARGET_S:g} s "
          f"target at this load)")


if __name__ == "__main__":
    main()
