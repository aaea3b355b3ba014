"""``mnetcost paper``: the paper's Tables 4-6 beside mnetcost's figures, with verdicts."""
from __future__ import annotations

import click

from mnetcost.cli.options import dtype_option, format_option, memory_settings, runtime_option


def add_memory(rows: list[dict], dtype: str, runtime: str = "simple") -> list[dict]:
    """Each row with the memory totals of its configuration at ``dtype`` (32 px, as the paper), and
    TensorFlow Lite Micro's arena and the .tflite bytes for ``runtime`` tflm."""
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.report import runtime_dict
    from mnetcost.calculator.resolver import resolve

    cache: dict = {}
    for row in rows:
        key = (row["variant"], row["alpha"], row["delta"], row["classes"])
        if key not in cache:
            cost = network_cost(resolve(*key, 32), "paper", dtype)
            cache[key] = {**cost.memory.as_dict(), **runtime_dict(cost, runtime)}
        row.update(cache[key])
    return rows

MARK = {"agrees": "✓", "close": "≈", "disagrees": "✗"}


def paper_views(rows: list[dict], runtime: str = "simple"):
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.calculator.reconcile import summary
    from mnetcost.cli.render import Column, View

    views = []
    for table in sorted({r["table"] for r in rows}):
        for dataset in ("cifar10", "cifar100"):
            selected = [r for r in rows if r["table"] == table and r["dataset"] == dataset]
            if not selected:
                continue
            view_rows = [{
                "model": (f"{r['variant']} δ={r['delta']}, α={r['alpha']:g}" + (" (baseline)" if r["baseline"] else "")),
                "accuracy": f"{r['accuracy']:.1%}",
                "paper_ma": r["paper_mult_adds_printed"], "ma": f"{r['mult_adds'] / 1e6:.3f}",
                "ma_diff": f"{r['mult_adds_diff']:+.1%}", "ma_verdict": f"{MARK[r['mult_adds_verdict']]} {r['mult_adds_verdict']}",
                "paper_p": r["paper_params_printed"], "p": f"{r['params'] / 1e6:.3f}",
                "p_diff": f"{r['params_diff']:+.1%}", "p_verdict": f"{MARK[r['params_verdict']]} {r['params_verdict']}",
                "peak": format_bytes(r["peak_activation_bytes"]), "weights": format_bytes(r["weight_bytes"]),
                "arena": format_bytes(r["arena_bytes"]) if "arena_bytes" in r else "",
                "flash": format_bytes(r["flash_bytes"]) if "flash_bytes" in r else "",
            } for r in selected]
            memory_columns = ([Column("arena", "TFLM arena", True, group="memory"),
                               Column("flash", ".tflite", True, group="memory")] if runtime == "tflm" else
                              [Column("peak", f"peak RAM {selected[0]['dtype']}", True, group="memory"),
                               Column("weights", f"weights {selected[0]['dtype']}", True, group="memory")])
            notes = [f"  ! {r['variant']} δ={r['delta']} α={r['alpha']:g}: {c['text']}"
                     for r in selected for c in r["checks"] if not c["consistent"]]
            views.append(View(
                title=f"Table {table}, {dataset.upper().replace('CIFAR', 'CIFAR-')} (millions; mnetcost: paper convention)",
                columns=[Column("model", "model"), Column("accuracy", "accuracy", True),
                         Column("paper_ma", "paper Mult-Adds", True, group="ma"),
                         Column("ma", "mnetcost", True, group="ma"), Column("ma_diff", "diff", True, group="ma"),
                         Column("ma_verdict", "verdict", group="ma"),
                         Column("paper_p", "paper params", True, group="p"), Column("p", "mnetcost", True, group="p"),
                         Column("p_diff", "diff", True, group="p"), Column("p_verdict", "verdict", group="p"),
                         *memory_columns],
                rows=view_rows, notes=notes,
            ))
    totals = summary(rows)
    views.append(View(
        title="Summary",
        columns=[Column("what", "verdict"), Column("count", "cells", True)],
        rows=[{"what": k, "count": v} for k, v in totals["verdicts"].items()]
        + [{"what": "failed checks of printed cells against each other", "count": totals["failed_checks"]}],
        notes=["agrees: the exact count, rounded or truncated to the printed precision, is the printed figure; "
               "close: within 1 %; diff = (paper - mnetcost) / mnetcost. See docs/reconciliation.md.",
               ("TFLM arena: TensorFlow Lite Micro's arena for the int8 .tflite export (its planner's activations "
                "+ persistent data); .tflite: the file's bytes; the paper prints neither (see docs/memory.md)."
                if runtime == "tflm" else
                "peak RAM: input + output activation bytes of the largest layer (one layer at a time); weights: "
                "deployed weight bytes (BatchNorm folded); the paper prints neither (see docs/memory.md).")],
    ))
    return views


@click.command("paper")
@click.option("--table", "tables", type=click.Choice(["4", "5", "6"]), multiple=True,
              help="Only these tables (repeatable); default all.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default=None, help="Only this dataset.")
@dtype_option
@runtime_option
@format_option
def command(tables, dataset, dtype, runtime, fmt):
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
    emit(fmt, add_memory(rows, dtype, runtime), paper_views(rows, runtime))
