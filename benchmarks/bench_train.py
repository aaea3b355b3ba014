"""Training throughput of `mnetcost train`'s loop against a plain PyTorch loop, in one run, on an
idle or a busy machine.

    python benchmarks/bench_train.py                              # defaults below, current device
    python benchmarks/bench_train.py --configs fmp:0.25:2 --load 0,1 --rounds 5
    python benchmarks/bench_train.py --configs mp3:0.25:2,base:1:1 --images 2048 --threads 1

For each configuration (variant:alpha:delta) both loops train the same freshly built model
(same weights, same seed) on the same random CIFAR-sized data for ``--images`` images per round:

* plain: ``DataLoader(TensorDataset(x_float, y), batch_size, shuffle=True)`` with default settings
  (no workers, no pinning), NCHW, fp32, ``zero_grad / forward / cross_entropy / backward / step``,
  with torch's default thread count (one per core: what a plain script gets);
* ours: :class:`mnetcost.nn.training.Trainer` (uint8 data on the device, a random permutation
  indexed per batch, channels-last; bf16 autocast on CUDA), one ``train_epoch`` per round, with
  the thread count ``mnetcost train`` would choose (:mod:`mnetcost.nn.threads`: the cores other
  processes leave idle), sampled once the load below is running.

``--threads N`` gives both loops N threads (the loops alone compared). ``--load N`` starts N
busy processes (each a Python loop that keeps one core busy) before the measurement and stops
them after it; ``--load 0,1`` measures every configuration without and with one, in one run.
When the two thread counts differ, ours is also timed at plain's count (``ours same threads``),
which separates what the loop gains from what the thread count gains.

Rounds alternate plain/ours so that a noisy machine hurts both alike; the median round counts and
every ratio printed is measured in this one run. It also measures this machine's dense fp32
matmul rate (``torch.mm`` of 2048x2048 matrices, in multiply-accumulates per second) and prints
the achieved training MAC/s of each loop against it: a training step costs about 3x the forward
Mult-Adds (forward, and two products per layer in the backward pass), with the forward figure
from the analytic engine (paper convention).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mnetcost.errors import MnetcostError
from mnetcost.nn import training as T
from mnetcost.nn.threads import choose_threads
from mnetcost.calculator.cost import network_cost
from mnetcost.nn.datasets import Dataset
from mnetcost.nn.models import build_model
from mnetcost.calculator.resolver import resolve

DEFAULT_THREADS = torch.get_num_threads()  # before anything sets it: what a plain script runs with
BUSY_LOOP = "while True:\n    pass\n"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Load:
    """``count`` busy processes (a Python loop each) while the ``with`` block runs."""

    def __init__(self, count: int):
        self.count = count
        self.processes = []

    def __enter__(self):
        for _ in range(self.count):
            self.processes.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL))
        if self.processes:
            time.sleep(0.5)  # let them start spinning before anything samples the load
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()
        self.processes = []


def matmul_rate(device, n: int = 2048, seconds: float = 1.0) -> float:
    """Dense fp32 multiply-accumulates per second of torch.mm (n x n x n = n^3 MACs per call)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        a @ b
        calls += 1
    sync(device)
    return calls * n ** 3 / (time.perf_counter() - start)


def plain_round(model, loader, optimizer, device, images: int) -> float:
    model.train()
    done = 0
    sync(device)
    start = time.perf_counter()
    while done < images:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            done += len(y)
            if done >= images:
                break
    sync(device)
    return done / (time.perf_counter() - start)


def ours_round(trainer, device) -> float:
    sync(device)
    start = time.perf_counter()
    result = trainer.train_epoch()
    sync(device)
    return result["count"] / (time.perf_counter() - start)


def bench(variant: str, alpha: float, delta: int, args, device, peak: float, load: int) -> dict:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (args.images,), generator=g)
    dataset = Dataset(name="random", source="random", class_names=tuple(map(str, range(10))),
                      train_x=images.numpy(), train_y=labels.numpy(), test_x=images[:10].numpy(),
                      test_y=labels[:10].numpy())
    config = T.TrainConfig(variant=variant, alpha=alpha, delta=delta, batch_size=args.batch_size,
                           device=device.type, compile=args.compile)

    torch.manual_seed(0)
    plain_model = build_model(variant, alpha=alpha, delta=delta).to(device)
    ours_model = build_model(variant, alpha=alpha, delta=delta)
    ours_model.load_state_dict(plain_model.state_dict())
    data = T.DeviceData.from_dataset(dataset, device)
    trainer = T.Trainer(ours_model, data, config, device)
    floats = images.float().mul(data.scale.cpu()).add(data.shift.cpu())
    loader = DataLoader(TensorDataset(floats, labels), batch_size=args.batch_size, shuffle=True)
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)

    with Load(load):
        choice = choose_threads(args.threads)  # as `mnetcost train` does, with the load running
        plain_threads = args.threads or DEFAULT_THREADS
        loops = {"plain": (plain_threads, lambda: plain_round(plain_model, loader, plain_opt, device, args.images)),
                 "ours": (choice.threads, lambda: ours_round(trainer, device))}
        if choice.threads != plain_threads:
            loops["ours_same_threads"] = (plain_threads, lambda: ours_round(trainer, device))
        torch.set_num_threads(plain_threads)
        plain_round(plain_model, loader, plain_opt, device, args.batch_size * 2)  # warm-up both
        torch.set_num_threads(choice.threads)
        trainer.train_epoch() if args.images <= 4 * args.batch_size else _warm(trainer)
        rates = {name: [] for name in loops}
        for _ in range(args.rounds):
            for name, (threads, fn) in loops.items():
                torch.set_num_threads(threads)
                rates[name].append(fn())
    torch.set_num_threads(DEFAULT_THREADS)
    forward = network_cost(resolve(variant, alpha=alpha, delta=delta), "paper").mult_adds
    median = {name: statistics.median(values) for name, values in rates.items()}
    p, o = median["plain"], median["ours"]
    row = {"variant": variant, "alpha": alpha, "delta": delta, "batch_size": args.batch_size, "load": load,
           "plain_threads": plain_threads, "ours_threads": choice.threads, "thread_choice": choice.as_dict(),
           "forward_mult_adds": forward, "plain_images_per_s": round(p, 1), "ours_images_per_s": round(o, 1),
           "speedup": round(o / p, 2), "plain_mac_per_s": 3 * forward * p, "ours_mac_per_s": 3 * forward * o,
           "ours_fraction_of_matmul_peak": 3 * forward * o / peak,
           "rounds": {name: [round(v, 1) for v in values] for name, values in rates.items()}}
    if "ours_same_threads" in median:
        row["ours_same_threads_images_per_s"] = round(median["ours_same_threads"], 1)
        row["speedup_same_threads"] = round(median["ours_same_threads"] / p, 2)
    return row


def _warm(trainer):
    """A couple of steps of our loop (not a whole epoch) before timing."""
    saved = trainer.data.train_x, trainer.data.train_y
    trainer.data.train_x, trainer.data.train_y = saved[0][: 2 * trainer.local_batch], saved[1][: 2 * trainer.local_batch]
    try:
        trainer.train_epoch()
    finally:
        trainer.data.train_x, trainer.data.train_y = saved


def _counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of whole numbers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected counts >= 0, got {text!r}")
    return values


def _line(r: dict) -> str:
    text = (f"{r['variant']:>4} a={r['alpha']:<5g} d={r['delta']}  load {r['load']}  "
            f"plain {r['plain_images_per_s']:>7,.0f} img/s ({r['plain_threads']} thr)  "
            f"ours {r['ours_images_per_s']:>7,.0f} img/s ({r['ours_threads']} thr)  x{r['speedup']:.2f}")
    if "speedup_same_threads" in r:
        text += (f"  [ours at {r['plain_threads']} thr {r['ours_same_threads_images_per_s']:,.0f} img/s, "
                 f"x{r['speedup_same_threads']:.2f}]")
    share = r["ours_fraction_of_matmul_peak"]
    return text + f"  ours {r['ours_mac_per_s'] / 1e9:.2f} G MAC/s = {share:.1%} of matmul"


def parse_config(item: str) -> tuple[str, float, int]:
    """``variant:alpha:delta`` checked as the CLI checks it (the model must resolve)."""
    from mnetcost.calculator.params import parse_alpha, parse_positive_int

    parts = item.strip().split(":")
    if len(parts) != 3:
        raise ValueError(f"--configs item {item!r} is not variant:alpha:delta")
    variant, alpha, delta = parts[0], parse_alpha(parts[1]), parse_positive_int(parts[2], "delta")
    resolve(variant, alpha=alpha, delta=delta)
    return variant, alpha, delta


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="mp3:0.25:2,base:0.25:2,fmp:0.25:2,base:1:1",
                        help="comma list of variant:alpha:delta")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=1024, help="images per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of both loops [default: plain torch's default, ours mnetcost's policy]")
    parser.add_argument("--load", type=_counts, default=[0],
                        help="busy processes during the measurement; a comma list measures each (default 0)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our loop's model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    try:  # bad input is one line (mnetcost's own message), as in the CLI, never a traceback
        configs = [parse_config(item) for item in args.configs.split(",")]
        device = T.pick_device(args.device)
    except (MnetcostError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    peak = matmul_rate(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {len(os.sched_getaffinity(0))} cores"
    rows = []
    for variant, alpha, delta in configs:
        for load in args.load:
            rows.append(bench(variant, alpha, delta, args, device, peak, load))
            if not args.json:
                print(_line(rows[-1]), flush=True)
    result = {"device": name, "torch": torch.__version__, "default_threads": DEFAULT_THREADS,
              "matmul_mac_per_s": peak, "load_average_at_end": os.getloadavg()[0], "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"device: {name}; torch {torch.__version__}; dense fp32 matmul {peak / 1e9:.1f} G MAC/s "
              f"(torch default {DEFAULT_THREADS} threads); batch {args.batch_size}, {args.images} images per round, "
              f"median of {args.rounds} rounds; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
