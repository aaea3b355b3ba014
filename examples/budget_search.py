"""The most accurate known configuration under a Mult-Adds and/or parameter budget.

"Known" means an accuracy exists for it: the paper's Tables 4-6, plus your own runs
(``mnetcost train --out runs/NAME``) with --runs. Costs are mnetcost's exact counts.

    python examples/budget_search.py --max-mult-adds 10M
    python examples/budget_search.py --dataset cifar100 --max-params 1M --runs runs/

The same question from the command line:

    mnetcost sweep --max-mult-adds 10M --known-only --sort accuracy --limit 1
"""
from __future__ import annotations

import argparse

import numpy as np

from mnetcost.calculator.params import parse_si
from mnetcost.analysis.sweep import accuracy_front, attach_accuracy, evaluate, load_runs, paper_known

CLASSES = {"cifar10": 10, "cifar100": 100}


def search(dataset="cifar10", max_mult_adds=None, max_params=None, runs_dir=None):
    """(best, front): the most accurate known configuration within the budget, and the accuracy
    Pareto front (Mult-Adds vs accuracy) of those within it, cheapest first."""
    known = paper_known(dataset)
    if runs_dir:
        runs, warnings = load_runs(runs_dir)
        for line in warnings:
            print(line)
        known += runs
    known = [k for k in known if k.classes == CLASSES[dataset]]
    # Sweep the grid spanned by the known configurations (one vectorised pass per variant and
    # resolution), then keep the rows within the budget whose accuracy is known.
    table = evaluate(sorted({k.variant for k in known}), sorted({k.alpha for k in known}),
                     sorted({k.delta for k in known}), [CLASSES[dataset]], sorted({k.resolution for k in known}))
    accuracy, source, _ = attach_accuracy(table, known)
    keep = ~np.isnan(accuracy)
    if max_mult_adds is not None:
        keep &= table.mult_adds <= max_mult_adds
    if max_params is not None:
        keep &= table.params <= max_params
    if not keep.any():
        return None, []
    table, accuracy, source = table.take(keep), accuracy[keep], source[keep]
    on_front = accuracy_front(table, accuracy)
    describe = [dict(variant=table.variants[table.variant[i]], alpha=float(table.alpha[i]),
                     delta=int(table.delta[i]), mult_adds=int(table.mult_adds[i]), params=int(table.params[i]),
                     accuracy=float(accuracy[i]), source=source[i]) for i in range(len(table))]
    best = max(describe, key=lambda r: (r["accuracy"], -r["mult_adds"]))
    front = sorted((r for r, on in zip(describe, on_front) if on), key=lambda r: r["mult_adds"])
    return best, front


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(CLASSES), default="cifar10")
    parser.add_argument("--max-mult-adds", type=parse_si, default=None, help="e.g. 10M (SI: 10^6)")
    parser.add_argument("--max-params", type=parse_si, default=None, help="e.g. 1M")
    parser.add_argument("--runs", default=None, help="folder of `mnetcost train` runs")
    args = parser.parse_args()
    best, front = search(args.dataset, args.max_mult_adds, args.max_params, args.runs)
    budget = " and ".join(text for text in (
        f"≤ {args.max_mult_adds:,} Mult-Adds" if args.max_mult_adds is not None else "",
        f"≤ {args.max_params:,} params" if args.max_params is not None else "") if text) or "no budget"
    if best is None:
        print(f"{args.dataset}: no configuration with a known accuracy fits {budget}")
        return
    print(f"{args.dataset}, {budget}: best known is {best['variant']} α={best['alpha']:g} δ={best['delta']} — "
          f"{100 * best['accuracy']:.1f}% ({best['source']}), {best['mult_adds']:,} Mult-Adds, "
          f"{best['params']:,} params")
    print("accuracy Pareto front within the budget (cheapest first):")
    for r in front:
        print(f"  {r['variant']:<4} α={r['alpha']:<5g} δ={r['delta']}  {r['mult_adds'] / 1e6:7.2f}M Mult-Adds  "
              f"{r['params'] / 1e6:5.2f}M params  {100 * r['accuracy']:.1f}% ({r['source']})")


if __name__ == "__main__":
    main()
