"""Reproduce the paper's three trade-offs (Tables 4, 5 and 6) as figures, with the library.

Each table becomes one figure with a CIFAR-10 and a CIFAR-100 panel: top-1 accuracy as printed
in the paper against Mult-Adds as mnetcost computes them (log scale), the baseline MobileNet
(α=1 δ=1) ringed, and the Pareto front of the table's rows as a step line. The fronts are
printed too.

    python examples/paper_tradeoffs.py [OUT_DIR]      # default: ./paper_tradeoffs/
    python examples/paper_tradeoffs.py --help

The same figures, one dataset at a time, from the command line:

    mnetcost plot --table 4 --dataset cifar10 --out table4_cifar10.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mnetcost.analysis.plot import (collect_points, draw_axes, front_of, legend_handles, new_figure, place_labels,
                           save_figure)

TABLES = {
    4: "Table 4: MobileNet (Table 1) in different α and δ",
    5: "Table 5: 3×3/2 max pooling instead of strided convs (Table 2)",
    6: "Table 6: fractional max pooling (Table 3)",
}
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def draw_tables(out: Path) -> list[Path]:
    """One figure per table in ``out`` (created if missing); prints each front. Returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table, title in TABLES.items():
        fig, axes = new_figure(15, 5.6, columns=2)
        handles, jobs = [], []
        for ax, (dataset, name) in zip(axes, DATASETS.items()):
            points, _ = collect_points(dataset, tables={table})
            front = front_of(points)
            drawn, job = draw_axes(ax, points, front, title=name)
            handles.append(drawn)
            jobs.append(job)
            steps = ", ".join(f"{p['variant']} α={p['alpha']:g} δ={p['delta']} "
                              f"({p['mult_adds'] / 1e6:.2f}M, {100 * p['accuracy']:.1f}%)" for p in front)
            print(f"Table {table}, {name}: front = {steps}")
        axes[-1].legend(handles=legend_handles(*handles), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                        borderaxespad=0.0, fontsize=8, frameon=False)
        fig.suptitle(f"Chen & Su, {title}: accuracy as printed, Mult-Adds computed by mnetcost", fontsize=12)
        place_labels(fig, *jobs)
        written.append(save_figure(fig, out / f"table{table}.png"))
        print(f"wrote {written[-1]}")
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", default="paper_tradeoffs", type=Path,
                        help="folder for table4.png, table5.png, table6.png (created if missing; "
                             "default: ./paper_tradeoffs)")
    args = parser.parse_args(argv)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        parser.error(f"{args.out_dir} exists and is not a folder")
    draw_tables(args.out_dir)


if __name__ == "__main__":
    main()
