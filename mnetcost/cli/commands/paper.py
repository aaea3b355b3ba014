"""``mnetcost paper``: the paper's Tables 4-6 beside mnetcost's figures, with verdicts."""
from __future__ import annotations

import click

from mnetcost.cli.options import (dtype_option, format_option, memory_settings, runtime_option, tflm_build_for,
                                  tflm_build_option)


def add_memory(rows: list[dict], dtype: str, runtime: str = "simple", tflm_build: str | None = None) -> list[dict]:
    """Each row with the memory totals of its configuration at ``dtype`` (32 px, as the paper), and
    TensorFlow Lite Micro's arena (in ``tflm_build``) and the .tflite bytes for ``runtime`` tflm."""
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.report import runtime_dict
    from mnetcost.calculator.resolver import resolve

    cache: dict = {}
    for row in rows:
        key = (row["variant"], row["alpha"], row["delta"], row["classes"])
        if key not in cache:
            cost = network_cost(resolve(*key, 32), "paper", dtype)
            cache[key] = {**cost.memory.as_dict(), **runtime_dict(cost, runtime, tflm_build)}
        row.update(cache[key])
    return rows

MARK = {"agrees": "✓", "close": "≈", "disagrees": "✗"}


def _verdict(verdict: str) -> str:
    return f"{MARK[verdict]} {verdict}"


def _model(row: dict) -> str:
    return f"{row['variant']} δ={row['delta']}, α={row['alpha']:g}" + (" (baseline)" if row["baseline"] else "")


def paper_columns(dtype: str, runtime: str = "simple") -> list:
    """The columns of a paper table: printed cells in millions (as the paper prints them) beside
    mnetcost's exact counts; for machines the exact counts, the differences as fractions, the
    bytes at ``dtype`` (and for runtime tflm TensorFlow Lite Micro's arena and the .tflite bytes)."""
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.cli.render import Column

    return [Column("table", "table", show=False), Column("dataset", "dataset", show=False),
            Column("model", "model", csv=None),
            *(Column(name, name, show=False) for name in ("variant", "alpha", "delta", "classes", "baseline")),
            Column("accuracy", "accuracy", True, format="{:.1%}".format),
            Column("paper_mult_adds_printed", "paper Mult-Adds", True, group="ma", csv="paper_mult_adds_millions"),
            Column("mult_adds", "mnetcost", True, group="ma", format=lambda n: f"{n / 1e6:.3f}"),
            Column("mult_adds_diff", "diff", True, group="ma", format="{:+.1%}".format),
            Column("mult_adds_verdict", "verdict", group="ma", format=_verdict),
            Column("paper_params_printed", "paper params", True, group="p", csv="paper_params_millions"),
            Column("params", "mnetcost", True, group="p", format=lambda n: f"{n / 1e6:.3f}"),
            Column("params_diff", "diff", True, group="p", format="{:+.1%}".format),
            Column("params_verdict", "verdict", group="p", format=_verdict),
            Column("peak_activation_bytes", f"peak RAM {dtype}", True, group="memory", format=format_bytes,
                   csv=f"peak_activation_bytes_{dtype}"),
            Column("weight_bytes", f"weights {dtype}", True, group="memory", format=format_bytes,
                   csv=f"weight_bytes_{dtype}"),
            *([Column("arena_bytes", "TFLM arena", True, group="memory", format=format_bytes,
                      csv="arena_bytes_int8"),
               Column("flash_bytes", ".tflite", True, group="memory", format=format_bytes, csv="flash_bytes_int8")]
              if runtime == "tflm" else [])]


def paper_views(rows: list[dict], runtime: str = "simple"):
    """For people: one table per paper table and dataset, then the verdict counts."""
    from mnetcost.calculator.reconcile import summary
    from mnetcost.cli.render import Column, View

    views = []
    for table in sorted({r["table"] for r in rows}):
        for dataset in ("cifar10", "cifar100"):
            selected = [r for r in rows if r["table"] == table and r["dataset"] == dataset]
            if not selected:
                continue
            notes = [f"  ! {r['variant']} δ={r['delta']} α={r['alpha']:g}: {c['text']}"
                     for r in selected for c in r["checks"] if not c["consistent"]]
            views.append(View(
                title=f"Table {table}, {dataset.upper().replace('CIFAR', 'CIFAR-')} (millions; mnetcost: paper convention)",
                columns=paper_columns(selected[0]["dtype"], runtime),
                rows=[{**r, "model": _model(r)} for r in selected], notes=notes,
            ))
    totals = summary(rows)
    views.append(View(
        title="Summary",
        columns=[Column("what", "verdict"), Column("count", "cells", True)],
        rows=[{"what": k, "count": v} for k, v in totals["verdicts"].items()]
        + [{"what": "failed checks of printed cells against each other", "count": totals["failed_checks"]}],
        notes=["agrees: the exact count, rounded or truncated to the printed precision, is the printed figure; "
               "close: within 1 %; diff = (paper - mnetcost) / mnetcost. See docs/reconciliation.md.",
               "peak RAM: input + output activation bytes of the largest layer (one layer at a time); weights: "
               "deployed weight bytes (BatchNorm folded); the paper prints neither (see docs/memory.md)."]
        + ([f"TFLM arena: TensorFlow Lite Micro's arena for the int8 .tflite export (its planner's activations + "
            f"persistent data; build {rows[0]['tflm_build']}: {rows[0]['tflm_version']}); .tflite: the file's bytes "
            "(Flash)."] if runtime == "tflm" and rows else []),
    ))
    return views


def paper_csv_view(rows: list[dict], dtype: str, runtime: str = "simple"):
    """For machines: every configuration of the chosen tables in one table (the verdict counts
    follow from its verdict columns)."""
    from mnetcost.cli.render import View

    return View(title="", columns=paper_columns(dtype, runtime), rows=rows)


@click.command("paper")
@click.option("--table", "tables", type=click.Choice(["4", "5", "6"]), multiple=True,
              help="Only these tables (repeatable); default all.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default=None, help="Only this dataset.")
@dtype_option(target=False)
@runtime_option(target=False)
@tflm_build_option(target=False)
@format_option
def command(tables, dataset, dtype, runtime, tflm_build, fmt):
    """The paper's Tables 4-6 beside mnetcost's Mult-Adds and params for the same configurations,
    the difference in % and a verdict per cell, with checks of the paper's cells against each other."""
    from mnetcost.calculator.reconcile import reconcile
    from mnetcost.cli.render import emit

    rows = reconcile()
    if tables:
        rows = [r for r in rows if str(r["table"]) in tables]
    if dataset:
        rows = [r for r in rows if r["dataset"] == dataset]
    dtype, runtime = memory_settings(dtype, runtime, None)
    rows = add_memory(rows, dtype, runtime, tflm_build_for(tflm_build, runtime, None))
    emit(fmt, rows, paper_views(rows, runtime), csv_view=paper_csv_view(rows, dtype, runtime))
