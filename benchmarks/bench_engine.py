"""Speed of the analytic side, measured in one run (ratios, since the machine is shared and noisy).

1. Wall time of ``mnetcost ratio --M 64 --N 128 --alpha 0.5 --delta 2`` against
   ``python -c "import click, rich"`` (the floor any click + rich CLI pays). Target: <= 1.5x.
   And ``mnetcost sweep`` over 2,880 configurations (base, mp3, fmp x 60 alphas x 8 deltas x 2
   class counts) with Mult-Adds and params budgets against its bare imports, ``python -c "import
   click, rich, numpy"``. Target: <= 1.5x. Each is also given in CPU time (user + system of the
   process), which a busy machine disturbs less than wall time.
2. Throughput of the vectorised engine on 100,000 (variant, alpha, delta) configurations.
   Target: >= 100,000 configurations per second.
3. What the memory figures cost: one configuration priced with and without them (``resolve`` +
   ``network_cost`` against the same + the peak activation and weight bytes), and the sweep with
   and without them (``sweep_totals`` against ``memory.sweep_costs``, which adds the same two
   figures). Target: <= 1.5x the time without. Also, with no target, one configuration with every
   layer's memory row and the training figure as well (what ``table`` shows for its one network).

Run: python benchmarks/bench_engine.py [--repeats 15] [--configs 100000]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict = {}  # command (as a tuple) -> CPU seconds of its runs, in order: what wall() measured besides wall time


def wall(command: list[str], terminal: bool = False) -> float:
    """Seconds to run ``command`` with stdout to a pipe, or to a pseudo-terminal (where the
    ``table`` format is drawn by rich); its CPU seconds are appended to ``CPU``."""
    cpu = children_cpu()
    try:
        return _wall(command, terminal)
    finally:
        CPU.setdefault((tuple(command), terminal), []).append(children_cpu() - cpu)


def _wall(command: list[str], terminal: bool) -> float:
    if not terminal:
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start
    import os
    import pty

    master, slave = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    while True:  # drain the terminal so the child never blocks on a full buffer
        try:
            if not os.read(master, 65536):
                break
        except OSError:
            break
    process.wait()
    elapsed = time.perf_counter() - start
    os.close(master)
    if process.returncode:
        raise SystemExit(f"{command} failed with {process.returncode}")
    return elapsed


def cli_startup(repeats: int) -> None:
    ratio = [shutil.which("mnetcost") or sys.executable, "ratio", "--M", "64", "--N", "128", "--alpha", "0.5",
             "--delta", "2"]
    if ratio[0] == sys.executable:
        ratio.insert(1, "-m")
        ratio.insert(2, "mnetcost")
    floor = [sys.executable, "-c", "import click, rich"]
    json_ratio = ratio + ["--format", "json"]
    wall(ratio), wall(floor), wall(ratio, terminal=True)  # warm the file cache
    times = {"pipe": [], "json": [], "terminal": [], "floor": []}
    for _ in range(repeats):  # interleaved, so drifting load hits all alike
        times["pipe"].append(wall(ratio))
        times["json"].append(wall(json_ratio))
        times["terminal"].append(wall(ratio, terminal=True))
        times["floor"].append(wall(floor))
    median = {key: statistics.median(values) for key, values in times.items()}
    cpu = {key: statistics.median(CPU[(tuple(command), key == "terminal")][-repeats:])
           for key, command in (("pipe", ratio), ("json", json_ratio), ("terminal", ratio), ("floor", floor))}
    floor_s = median["floor"]
    print(f'python -c "import click, rich": median {floor_s * 1000:.0f} ms wall, {cpu["floor"] * 1000:.0f} ms CPU '
          f'over {repeats} runs')
    for key, label in (("pipe", "mnetcost ratio (worked example), stdout a pipe"),
                       ("json", "mnetcost ratio ... --format json"),
                       ("terminal", "mnetcost ratio, stdout a terminal (rich table)")):
        print(f"{label}: median {median[key] * 1000:.0f} ms = {median[key] / floor_s:.2f}x wall, "
              f"{cpu[key] / cpu['floor']:.2f}x CPU  "
              + ("(no target: drawing the table loads rich's console and table modules, which "
                 "`import rich` does not)" if key == "terminal" else "(target <= 1.5x)"))


SWEEP = ["sweep", "-v", "all", "-a", "0.41:1.0:0.01", "-d", "1,2,3,4,5,6,7,8", "--classes", "10,100",
         "--max-mult-adds", "10M", "--max-params", "500K", "--format", "json"]  # 3 x 60 x 8 x 2 = 2,880


def sweep_startup(repeats: int) -> None:
    """The sweep command, whole process, against the imports it cannot avoid (click, rich, numpy)."""
    command = [shutil.which("mnetcost") or sys.executable, *SWEEP]
    if command[0] == sys.executable:
        command[1:1] = ["-m", "mnetcost"]
    floor = [sys.executable, "-c", "import click, rich, numpy"]
    wall(command), wall(floor)  # warm the file cache
    walls = {"sweep": [], "floor": []}
    for _ in range(repeats):
        walls["sweep"].append(wall(command))
        walls["floor"].append(wall(floor))
    sweep_s, floor_s = statistics.median(walls["sweep"]), statistics.median(walls["floor"])
    sweep_cpu = statistics.median(CPU[(tuple(command), False)][-repeats:])
    floor_cpu = statistics.median(CPU[(tuple(floor), False)][-repeats:])
    print(f'mnetcost sweep, 2,880 configurations, Mult-Adds and params budgets: median {sweep_s * 1000:.0f} ms wall '
          f'vs python -c "import click, rich, numpy" {floor_s * 1000:.0f} ms = {sweep_s / floor_s:.2f}x wall, '
          f'{sweep_cpu / floor_cpu:.2f}x CPU ({sweep_cpu * 1000:.0f} vs {floor_cpu * 1000:.0f} ms)  (target <= 1.5x)')


def engine_throughput(configs: int) -> None:
    import numpy as np

    from mnetcost.calculator.cost import sweep_totals
    from mnetcost.calculator.resolver import plan, resolve_arrays

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


def _median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def memory_overhead(configs: int, repeats: int = 15) -> None:
    """Ratios measured in one run, the two sides interleaved so that load drifts hit both alike."""
    import numpy as np

    from mnetcost.calculator.cost import network_cost, sweep_totals
    from mnetcost.calculator.memory import sweep_costs
    from mnetcost.calculator.resolver import plan, resolve, resolve_arrays

    grid = [(variant, alpha, delta) for variant in ("base", "mp3", "fmp") for alpha in (0.25, 0.5, 0.75, 1.0)
            for delta in (1, 2, 4)]
    plans = {variant: plan(variant, 10, 32) for variant in ("base", "mp3", "fmp")}

    def scalar(with_memory: bool, training: bool = False):
        for variant, alpha, delta in grid:
            cost = network_cost(resolve(variant, alpha, delta, network_plan=plans[variant]), "paper")
            if with_memory:  # the figures are computed on first use
                cost.peak_activation_bytes, cost.weight_bytes  # noqa: B018
            if training:  # and the per-layer rows with the training figure on theirs (table shows them)
                cost.training_activation_bytes_per_image  # noqa: B018

    def scalar_training(with_memory: bool):
        scalar(with_memory, training=with_memory)

    rng = np.random.default_rng(1)
    per_variant = configs // 3
    alphas = np.round(rng.uniform(0.1, 1.5, size=per_variant), 3)
    deltas = rng.integers(1, 9, size=per_variant)

    def vectorised(with_memory: bool):
        for variant in ("base", "mp3", "fmp"):
            layers = resolve_arrays(plans[variant], alphas, deltas)
            sweep_costs(layers, "paper", "int8") if with_memory else sweep_totals(layers, "paper")

    for label, function, count in (("peak and weights, one configuration at a time (paper, plot)", scalar,
                                    len(grid)),
                                   ("vectorised sweep", vectorised, 3 * per_variant),
                                   ("the same with every layer's row and the training figure (table; no target)",
                                    scalar_training, len(grid))):
        function(True), function(False)  # warm up
        without, with_memory, cpu_without, cpu_with = [], [], [], []
        for _ in range(repeats):
            for wanted, walls, cpus in ((False, without, cpu_without), (True, with_memory, cpu_with)):
                cpu = time.process_time()
                walls.append(_median_time(lambda: function(wanted), 1))
                cpus.append(time.process_time() - cpu)
        base, extra = statistics.median(without), statistics.median(with_memory)
        print(f"memory figures, {label}: {count:,} configurations in {base * 1000:.1f} ms without, "
              f"{extra * 1000:.1f} ms with (medians of {repeats}) = {extra / base:.2f}x; best of {repeats}: "
              f"{min(with_memory) / min(without):.2f}x; CPU time {statistics.median(cpu_with) / statistics.median(cpu_without):.2f}x"
              + ("" if "no target" in label else "  (target <= 1.5x)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--configs", type=int, default=100_000)
    args = parser.parse_args()
    import os

    print(f"load average {', '.join(f'{load:.2f}' for load in os.getloadavg())} (1, 5, 15 min) at the start; "
          f"{os.cpu_count()} CPUs")
    cli_startup(args.repeats)
    sweep_startup(args.repeats)
    engine_throughput(args.configs)
    memory_overhead(args.configs)


if __name__ == "__main__":
    main()
