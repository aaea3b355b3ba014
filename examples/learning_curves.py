"""Learning curves of `mnetcost train` runs: loss and accuracy per epoch, training and test.

    python examples/learning_curves.py runs/mp3-a0.25-d2 runs/fmp-a0.25-d2 --out curves.png

Prints each run's per-epoch metrics as a table too (from its metrics.jsonl).
"""
from __future__ import annotations

import argparse

from mnetcost.analysis.plot import check_output, draw_curves, load_curves, save_figure


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders written by `mnetcost train --out`")
    parser.add_argument("--out", default="curves.png", help="figure file (.png, .svg or .pdf)")
    args = parser.parse_args(argv)
    check_output(args.out)
    curves = load_curves(args.runs)
    for curve in curves:
        print(f"{curve['name']}:")
        print("  epoch    loss  train acc  test loss  test acc")
        for r in curve["rows"]:
            print(f"  {r['epoch']:5d}  {r['loss']:.4f}  {100 * r['train_acc']:8.2f}%  {r['test_loss']:9.4f}  "
                  f"{100 * r['test_acc']:7.2f}%")
    print(f"wrote {save_figure(draw_curves(curves), args.out)}")


if __name__ == "__main__":
    main()
