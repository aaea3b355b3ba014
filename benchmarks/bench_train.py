"""Training throughput of `mnetcost train`'s loop against a plain PyTorch loop, in one run.

    python benchmarks/bench_train.py                              # defaults below, current device
    python benchmarks/bench_train.py --configs mp3:0.25:2,base:1:1 --images 2048 --rounds 5

For each configuration (variant:alpha:delta) both loops train the same freshly built model
(same weights, same seed) on the same random CIFAR-sized data for ``--images`` images per round:

* plain: ``DataLoader(TensorDataset(x_float, y), batch_size, shuffle=True)`` with default settings
  (no workers, no pinning), NCHW, fp32, ``zero_grad / forward / cross_entropy / backward / step``;
* ours: :class:`mnetcost.nn.training.Trainer` (uint8 data on the device, a random permutation
  indexed per batch, channels-last; bf16 autocast on CUDA), one ``train_epoch`` per round.

Rounds alternate plain/ours so that a noisy machine hurts both alike; the median round counts.
It also measures this machine's dense fp32 matmul rate (``torch.mm`` of 2048x2048 matrices, in
multiply-accumulates per second) and prints the achieved training MAC/s of each loop against it:
a training step costs about 3x the forward Mult-Adds (forward, and two products per layer in
the backward pass), with the forward figure from the analytic engine (paper convention).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mnetcost.nn import training as T
from mnetcost.calculator.cost import network_cost
from mnetcost.nn.datasets import Dataset
from mnetcost.nn.models import build_model
from mnetcost.calculator.resolver import resolve
from mnetcost.errors import MnetcostError


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def bench(variant: str, alpha: float, delta: int, args, device, peak: float) -> dict:
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

    plain_round(plain_model, loader, plain_opt, device, args.batch_size * 2)  # warm-up both
    trainer.train_epoch() if args.images <= 4 * args.batch_size else _warm(trainer)
    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(plain_round(plain_model, loader, plain_opt, device, args.images))
        ours.append(ours_round(trainer, device))
    forward = network_cost(resolve(variant, alpha=alpha, delta=delta), "paper").mult_adds
    p, o = statistics.median(plain), statistics.median(ours)
    return {"variant": variant, "alpha": alpha, "delta": delta, "batch_size": args.batch_size,
            "forward_mult_adds": forward, "plain_images_per_s": round(p, 1), "ours_images_per_s": round(o, 1),
            "speedup": round(o / p, 2), "plain_mac_per_s": 3 * forward * p, "ours_mac_per_s": 3 * forward * o,
            "ours_fraction_of_matmul_peak": 3 * forward * o / peak,
            "plain_rounds": [round(v, 1) for v in plain], "ours_rounds": [round(v, 1) for v in ours]}


def _warm(trainer):
    """A couple of steps of our loop (not a whole epoch) before timing."""
    saved = trainer.data.train_x, trainer.data.train_y
    trainer.data.train_x, trainer.data.train_y = saved[0][: 2 * trainer.local_batch], saved[1][: 2 * trainer.local_batch]
    try:
        trainer.train_epoch()
    finally:
        trainer.data.train_x, trainer.data.train_y = saved


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
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile our loop's model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    try:  # bad input is one line (mnetcost's own message), as in the CLI, never a traceback
        configs = [parse_config(item) for item in args.configs.split(",")]
        if args.threads:
            torch.set_num_threads(args.threads)
        device = T.pick_device(args.device)
    except (MnetcostError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    peak = matmul_rate(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    rows = []
    for variant, alpha, delta in configs:
        rows.append(bench(variant, alpha, delta, args, device, peak))
        if not args.json:
            r = rows[-1]
            print(f"{r['variant']:>4} a={r['alpha']:<5g} d={r['delta']}  plain {r['plain_images_per_s']:>9,.0f} img/s  "
                  f"ours {r['ours_images_per_s']:>9,.0f} img/s  x{r['speedup']:.2f}  "
                  f"ours {r['ours_mac_per_s'] / 1e9:6.2f} G MAC/s = {r['ours_fraction_of_matmul_peak']:.1%} of matmul "
                  f"(plain {r['plain_mac_per_s'] / 1e9:.2f} G)", flush=True)
    result = {"device": name, "torch": torch.__version__, "matmul_mac_per_s": peak, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"device: {name}; torch {torch.__version__}; dense fp32 matmul {peak / 1e9:.1f} G MAC/s; "
              f"batch {args.batch_size}, {args.images} images per round, median of {args.rounds} rounds")


if __name__ == "__main__":
    main()
