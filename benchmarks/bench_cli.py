"""How long the commands a user waits for take, end to end, as a user runs them (subprocesses:
interpreter start, imports, work, output), against the targets for an idle 2-core machine.

1. ``mnetcost export`` (fp32) of a freshly initialised fmp α=0.25 δ=2 model: target 10 s.
2. ``mnetcost crosscheck --all`` (43 models, fvcore and the memory checks): target 15 s.
3. ``mnetcost evaluate --run R --torch --onnx R.onnx --onnx R.int8.onnx`` on the run's test set
   (10,000 images for CIFAR-10): target 30 s. Needs a trained run (``--run DIR``; for example
   ``mnetcost train --variant fmp --alpha 0.25 --delta 2 --dataset cifar10-jpeg-subset.tar.xz
   --epochs 1 --out /tmp/run``); its two ONNX files are exported first (not timed) into a
   temporary folder. Without ``--run`` this step is left out, and said so.

Each figure is the median over ``--repeats`` runs of wall-clock seconds, with the CPU seconds
(user + system) the subprocess used beside it: on a machine that other processes keep busy the
wall time grows with the load while the CPU time stays close to what the work costs, so both are
printed, with the load average and the thread count the commands' thread policy picks. Nothing
here asserts a speed.

Run: python benchmarks/bench_cli.py [--run DIR] [--data-dir DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"export": 10.0, "crosscheck --all": 15.0, "evaluate": 30.0}


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``python -m mnetcost ARGS``; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mnetcost", *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"mnetcost {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(label: str, args: list[str], repeats: int) -> dict:
    samples = [timed(args) for _ in range(repeats)]
    return {"label": label, "wall": statistics.median(s[0] for s in samples),
            "cpu": statistics.median(s[1] for s in samples), "runs": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="A trained run folder, for evaluate.")
    parser.add_argument("--data-dir", type=Path, default=None, help="mnetcost's data cache (--data-dir).")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per command; the median is printed.")
    options = parser.parse_args()
    data = ["--data-dir", str(options.data_dir)] if options.data_dir else []

    from mnetcost.nn.threads import choose_threads

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
          f"thread policy: {choose_threads().describe()}")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        results.append(measure("export", ["export", "--variant", "fmp", "--alpha", "0.25", "--delta", "2",
                                          "--out", str(out / "fresh.onnx")], options.repeats))
        results.append(measure("crosscheck --all", ["crosscheck", "--all"], options.repeats))
        if options.run is None:
            print("evaluate: left out (no --run DIR given)")
        else:
            fp32, int8 = out / "run.onnx", out / "run.int8.onnx"
            timed(["export", "--run", str(options.run), "--out", str(fp32), *data])
            timed(["export", "--run", str(options.run), "--int8", "--out", str(int8), *data])
            results.append(measure("evaluate", ["evaluate", "--run", str(options.run), "--torch", "--onnx", str(fp32),
                                                "--onnx", str(int8), *data], options.repeats))
    print(f"{'command':<18} {'wall s':>8} {'CPU s':>8} {'target s':>9}")
    for row in results:
        print(f"{row['label']:<18} {row['wall']:>8.1f} {row['cpu']:>8.1f} {TARGETS[row['label']]:>9.0f}")
    print("targets are for an idle 2-core machine; on a busy one compare the CPU seconds")


if __name__ == "__main__":
    main()
