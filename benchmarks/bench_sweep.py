"""Speed of design-space sweeps, measured in one run.

Prints:
1. the vectorised engine (``mnetcost.analysis.sweep.evaluate``) on 100,008 (variant, alpha, delta)
   configurations: configurations per second (target: >= 100,000/s), best of 3;
2. the scalar path (``network_cost(resolve(...))`` one configuration at a time) on 2,000
   configurations, and the ratio of the two;
3. the wall time of the ``mnetcost sweep`` command answering a budget question over 3,648
   configurations (process start included), next to ``mnetcost --version`` (start-up alone);
4. parsing (and de-duplicating) alpha ranges of 100,000 and 1,000,000 values, and their ratio:
   about 10 for linear time (quadratic de-duplication took 75 s for 100,000 values);
5. TensorFlow Lite Micro's figures in a sweep (``--runtime tflm``: arena by the greedy planner in
   lockstep, .tflite bytes by the FlatBuffers layout) against the simple model: the vectorised engine
   on the 100,008 configurations of 1., and the ``mnetcost sweep`` command on the 3,648 configurations of
   3. at int8, each with its ratio (the command's target: <= 1.5x).

Usage: python benchmarks/bench_sweep.py
"""
from __future__ import annotations

import subprocess
import sys
import time

from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.params import parse_alpha_list
from mnetcost.calculator.resolver import plan, resolve
from mnetcost.analysis.sweep import evaluate

VARIANTS = ["base", "mp3", "fmp"]


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    alphas = parse_alpha_list("0.2:1.0332:0.0002")  # 4,167 exact alphas
    deltas = list(range(1, 9))
    count = len(VARIANTS) * len(alphas) * len(deltas)
    vector_s = best_of(3, lambda: evaluate(VARIANTS, alphas, deltas))
    vector_rate = count / vector_s
    print(f"vectorised sweep : {count:,} configurations in {vector_s * 1000:.1f} ms = "
          f"{vector_rate:,.0f} configurations/s (target >= 100,000/s: {'met' if vector_rate >= 1e5 else 'NOT met'})")

    sample = [(v, a, d) for v in VARIANTS for a in alphas[::50] for d in deltas][:2000]
    plans = {v: plan(v) for v in VARIANTS}

    def scalar():
        for v, a, d in sample:
            network_cost(resolve(v, a, d, network_plan=plans[v]))

    scalar_s = best_of(1, scalar)
    scalar_rate = len(sample) / scalar_s
    print(f"scalar loop      : {len(sample):,} configurations in {scalar_s * 1000:.1f} ms = "
          f"{scalar_rate:,.0f} configurations/s")
    print(f"ratio            : vectorised / scalar = {vector_rate / scalar_rate:,.0f}x")

    command = ["mnetcost", "sweep", "-v", "all", "-a", "0.25:1.0:0.01", "-d", "1,2,3,4,5,6,7,8", "--classes",
               "10,100", "--max-mult-adds", "10M", "--sort", "accuracy", "--format", "json"]
    sweep_s = best_of(3, lambda: subprocess.run(command, check=True, capture_output=True))
    start_s = best_of(3, lambda: subprocess.run(["mnetcost", "--version"], check=True, capture_output=True))
    print(f"mnetcost sweep   : 3,648 configurations, budget 10M Mult-Adds, sorted: {sweep_s * 1000:.0f} ms wall "
          f"(of which process start-up, `mnetcost --version`: {start_s * 1000:.0f} ms)")
    small = best_of(1, lambda: parse_alpha_list("0.00001:1:0.00001"))
    large = best_of(1, lambda: parse_alpha_list("0.000001:1:0.000001"))
    print(f"alpha ranges     : 100,000 values parsed in {small:.2f} s, 1,000,000 in {large:.2f} s "
          f"(ratio {large / small:.1f}; linear is about 10)")
    simple_s = best_of(3, lambda: evaluate(VARIANTS, alphas, deltas, dtype="int8"))
    tflm_s = best_of(1, lambda: evaluate(VARIANTS, alphas, deltas, dtype="int8", runtime="tflm"))
    print(f"tflm, engine     : {count:,} configurations in {tflm_s * 1000:.0f} ms = {count / tflm_s:,.0f}/s; "
          f"simple {simple_s * 1000:.0f} ms; ratio {tflm_s / simple_s:.1f}x")
    base = command + ["--dtype", "int8"]
    simple_cmd = best_of(3, lambda: subprocess.run(base + ["--runtime", "simple"], check=True, capture_output=True))
    tflm_cmd = best_of(3, lambda: subprocess.run(base + ["--runtime", "tflm"], check=True, capture_output=True))
    print(f"tflm, command    : 3,648 configurations at int8: --runtime tflm {tflm_cmd * 1000:.0f} ms, --runtime simple "
          f"{simple_cmd * 1000:.0f} ms wall; ratio {tflm_cmd / simple_cmd:.2f}x (target <= 1.5x: "
          f"{'met' if tflm_cmd <= 1.5 * simple_cmd else 'NOT met'})")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
