"""Graham's test-time averaging on a finished FMP run: test accuracy of its best checkpoint with
predictions averaged over 1, 4, 12 ... fixed pooling draws. A run without fractional max pooling
(base, mp3) is refused: its draws would all be the same.

    python examples/fmp_averaging.py runs/fmp-a0.25-d2 --draws 1,4,12 [--data-dir DIR]

(`mnetcost train --test-draws N` averages during training instead.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from mnetcost.errors import MnetcostError
from mnetcost.nn import training as T
from mnetcost.nn.datasets import load_dataset
from mnetcost.nn.models import build_model


def fmp_layers(config) -> list[str]:
    """The fractional max pooling layers of the run's model: the only layers whose draws differ."""
    model = build_model(config.variant, alpha=config.alpha, delta=config.delta, classes=config.classes,
                        resolution=tuple(config.resolution), fmp_seed=config.seed, fmp_mode=config.fmp_mode)
    return [layer.name for layer in model.network.layers if layer.kind == "fmp"]


def evaluate_draws(run: Path, draws: list[int], data_dir=None, checkpoint: str = "best.pt") -> list[dict]:
    config = T.TrainConfig(**json.loads((run / "config.json").read_text())["config"])
    if not fmp_layers(config):  # every draw would give the same predictions: nothing to average
        raise MnetcostError(f"{run}: its model ({config.variant}) has no fractional max pooling layer, so every "
                            "draw gives the same predictions and averaging them changes nothing; give a run of "
                            "fmp (or of a spec with fmp rows)")
    state = T.load_checkpoint(run / checkpoint)["model"]
    data = T.DeviceData.from_dataset(load_dataset(config.dataset, data_dir), torch.device("cpu"))
    rows = []
    for n in draws:
        cfg = dataclasses.replace(config, test_draws=n, world_size=1)
        model = build_model(cfg.variant, alpha=cfg.alpha, delta=cfg.delta, classes=cfg.classes,
                            resolution=tuple(cfg.resolution), fmp_seed=cfg.seed, fmp_mode=cfg.fmp_mode)
        trainer = T.Trainer(model, data, cfg, torch.device("cpu"))
        trainer.net.load_state_dict(state)
        start = time.perf_counter()
        result = trainer.evaluate()
        rows.append({"draws": n, **result, "seconds": time.perf_counter() - start})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `mnetcost train --out` folder of an fmp run")
    parser.add_argument("--draws", default="1,4,12", help="comma list of draw counts")
    parser.add_argument("--data-dir", default=None, help="the cache folder the run used (default: mnetcost's)")
    parser.add_argument("--checkpoint", default="best.pt", choices=("best.pt", "last.pt"))
    args = parser.parse_args(argv)
    try:
        rows = evaluate_draws(args.run, [int(d) for d in args.draws.split(",")], args.data_dir, args.checkpoint)
    except MnetcostError as exc:
        print(f"fmp_averaging.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{args.run} ({args.checkpoint}):  draws  test acc  test loss  seconds")
    for row in rows:
        print(f"{'':>{len(str(args.run)) + len(args.checkpoint) + 4}}{row['draws']:>6}  {100 * row['test_acc']:7.2f}%"
              f"  {row['test_loss']:9.4f}  {row['seconds']:7.1f}")


if __name__ == "__main__":
    main()
