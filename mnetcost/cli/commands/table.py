"""``mnetcost table``: a variant layer by layer in the paper's notation, or a grid of totals."""
from __future__ import annotations

import click

from mnetcost.cli.options import config_options, convention_option, format_option, note_alpha, rounding_option, variant_option


def layer_view(report: dict):
    from mnetcost.cli.render import Column, View, millions

    unit = report["unit"]
    key = "flops" if "flops" in report else "mult_adds"
    rows = [
        {"name": layer["name"], "type_stride": layer["type_stride"], "filter_shape": layer["filter_shape"],
         "input": "×".join(map(str, layer["input"])), "output": "×".join(map(str, layer["output"])),
         "params": layer["params"], key: layer[key]}
        for layer in report["layers"]
    ]
    footer = {"name": "total", "params": report["params"], key: report[key]}
    title = (f"{report['variant']}" + (f" (Table {report['paper_table']})" if report.get("paper_table") else "")
             + f": α={report['alpha']:g} δ={report['delta']} classes={report['classes']} "
               f"input={report['resolution']}")
    notes = [
        f"total: {millions(report['params'])} params, {millions(report[key])} {unit} "
        f"(convention '{report['convention']}': {report['convention_detail']['description']})",
    ]
    return View(
        title=title,
        columns=[Column("name", "layer", wrap=False), Column("type_stride", "Type / Stride", wrap=False),
                 Column("filter_shape", "Filter Shape"), Column("input", "Input Size"),
                 Column("output", "Output"), Column("params", "Params", True), Column(key, unit, True)],
        rows=rows, footer=footer, notes=notes,
    )


def grid_view(rows: list[dict]):
    from mnetcost.cli.render import Column, View

    unit = rows[0]["unit"]
    key = "flops" if "flops" in rows[0] else "mult_adds"
    scale = 2 if key == "flops" else 1
    first = rows[0]
    view_rows = [
        {"variant": r["variant"], "alpha": r["alpha"], "delta": r["delta"], key: r[key], "params": r["params"],
         "mult_adds_change": f"{r['mult_adds_change']:+.1%}", "params_change": f"{r['params_change']:+.1%}"}
        for r in rows
    ]
    return View(
        title=(f"{first['variant']}: totals per configuration, classes={first['classes']} "
               f"input={first['resolution']} (convention '{first['convention']}')"),
        columns=[Column("variant", "variant"), Column("alpha", "α", True), Column("delta", "δ", True),
                 Column(key, unit, True), Column("params", "Params", True),
                 Column("mult_adds_change", f"{unit} vs baseline", True),
                 Column("params_change", "Params vs baseline", True)],
        rows=view_rows,
        notes=[f"baseline: MobileNet (Table 1, α=1, δ=1) at the same classes and input: "
               f"{first['baseline_mult_adds'] * scale:,} {unit}, {first['baseline_params']:,} params"],
    )


@click.command("table")
@variant_option
@config_options(lists=True)
@convention_option
@rounding_option
@format_option
def command(variant, alpha, delta, classes, resolution, convention, rounding, fmt):
    """A variant layer by layer in the paper's notation (Tables 1-3), with params and Mult-Adds.

    With comma lists (--alpha 1,0.5,0.25 --delta 2,4) it prints the summary grid of Tables 4-6:
    totals per configuration and the change against the α=1, δ=1 MobileNet baseline.
    """
    from mnetcost.calculator.cost import network_cost
    from mnetcost.cli.render import emit
    from mnetcost.calculator.report import grid_report, network_report
    from mnetcost.calculator.resolver import plan, resolve
    from mnetcost.calculator.spec import load_spec

    spec = load_spec(variant)
    note_alpha(alpha)
    if len(alpha) == 1 and len(delta) == 1:
        network_plan = plan(spec, classes, resolution)
        report = network_report(network_cost(resolve(spec, alpha[0], delta[0], classes, resolution, rounding,
                                                     network_plan), convention))
        emit(fmt, report, [layer_view(report)])
    else:
        rows = grid_report(spec, alpha, delta, classes, resolution, convention, rounding)
        emit(fmt, rows, [grid_view(rows)])
