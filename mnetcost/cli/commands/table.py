"""``mnetcost table``: a variant layer by layer in the paper's notation, or a grid of totals."""
from __future__ import annotations

import click

from mnetcost.cli.options import (config_options, convention_option, dtype_option, format_option, memory_options,
                                  memory_settings, note_alpha, rounding_option, runtime_option, variant_option)


def memory_notes(report: dict) -> list[str]:
    """The memory totals (and the fit, when asked) of one configuration, as lines under its table."""
    from mnetcost.calculator.memory import format_bytes

    alive = ("the tensors alive while one layer runs: its inputs and output, a residual's input across its "
             "block, a squeeze-excite's input beside the squeeze; layers run one at a time with BatchNorm and "
             "the activation fused" if report.get("branched") else
             "input + output of one layer, layers run one at a time with BatchNorm and ReLU fused")
    lines = [
        f"memory ({report['dtype']}): peak activations {report['peak_activation_bytes']:,} B "
        f"({format_bytes(report['peak_activation_bytes'])}) at {report['peak_layer']} (★; {alive}); "
        f"weights {report['weight_bytes']:,} B "
        f"({format_bytes(report['weight_bytes'])}) for {report['deploy_params']:,} deployed params (BatchNorm "
        f"folded); training keeps {report['training_activation_bytes_per_image']:,} B "
        f"({format_bytes(report['training_activation_bytes_per_image'])}) of activations per image (fp32)",
    ]
    if report.get("branched") and report.get("blocks"):
        lines.append("peak per block: " + ", ".join(
            f"{block['block']} {format_bytes(block['peak_activation_bytes'])} ({block['peak_layer']})"
            for block in report["blocks"]))
    if report.get("runtime") == "tflm":
        lines.append(tflm_note(report))
    if report.get("fit"):
        from mnetcost.calculator.tflm import needs

        lines.append(fit_note(report["fit"], *needs(report), runtime=report.get("runtime", "simple")))
    return lines


def tflm_note(report: dict) -> str:
    """TensorFlow Lite Micro's arena and the .tflite file of one configuration, in one line."""
    from mnetcost.calculator.memory import format_bytes

    parts = report["flash_parts"]
    return (f"TensorFlow Lite Micro ({report['tflm_version']}): arena {report['arena_bytes']:,} B "
            f"({format_bytes(report['arena_bytes'])}) = activations {report['arena_activation_bytes']:,} B (greedy "
            f"planner, 16-byte aligned) + persistent {report['arena_persistent_bytes']:,} B (per-channel "
            f"multipliers and shifts {report['arena_persistent_parts']['Persistent buffer data']:,} B, tensor and "
            f"node structs, options, allocator); smallest arena_size accepted {report['minimum_arena_bytes']:,} B. "
            f".tflite {report['flash_bytes']:,} B ({format_bytes(report['flash_bytes'])}) = weights and biases "
            f"{parts['weights']:,} + scales and zero points {parts['quantization']:,} + names {parts['names']:,} + "
            f"FlatBuffers structure {parts['structure'] + parts['padding'] + parts['metadata']:,}")


def fit_note(fit: dict, peak: int, weights: int, runtime: str = "simple") -> str:
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.calculator.targets import get_target

    def part(label, need, budget, margin):
        if budget is None:
            return f"{label}: no budget"
        share = f"{need / budget:.0%} of {format_bytes(budget)}" if budget else f"budget {budget} B"
        verdict = (f"fits, {format_bytes(margin)} to spare" if margin >= 0
                   else f"does NOT fit, {format_bytes(-margin)} ({-margin:,} B) over")
        return f"{label} {format_bytes(need)} = {share}: {verdict}"

    where = get_target(fit["target"]).board if fit.get("target") else "the budgets"
    verdict = "FITS" if fit["fits"] else "DOES NOT FIT"
    ram, flash = (("TFLM arena", ".tflite (Flash)") if runtime == "tflm" else ("peak RAM", "weights (Flash)"))
    return (f"{verdict} {where} ({runtime} runtime): " + "; ".join((
        part(ram, peak, fit["sram_bytes"], fit["sram_margin_bytes"]),
        part(flash, weights, fit["flash_bytes"], fit["flash_margin_bytes"]),
    )) + (f"; binding: {fit['binding']}" if fit.get("binding") else ""))


def layer_view(report: dict):
    from mnetcost.cli.render import Column, View, millions

    unit = report["unit"]
    key = "flops" if "flops" in report else "mult_adds"
    rows = [
        {"name": layer["name"], "type_stride": layer["type_stride"], "filter_shape": layer["filter_shape"],
         "input": "×".join(map(str, layer["input"])), "output": "×".join(map(str, layer["output"])),
         "params": layer["params"], key: layer[key],
         "activation_bytes": layer["live_bytes"], "weight_bytes": layer["weight_bytes"],
         "peak": "★" if layer["peak"] else "", "activation": layer["activation"]}
        for layer in report["layers"]
    ]
    branched = report.get("branched")  # a chain's live bytes are a layer's input + output bytes
    footer = {"name": "total", "params": report["params"], key: report[key],
              "activation_bytes": report["peak_activation_bytes"], "weight_bytes": report["weight_bytes"],
              "peak": "peak"}
    title = (f"{report['variant']}" + (f" (Table {report['paper_table']})" if report.get("paper_table") else "")
             + f": α={report['alpha']:g} δ={report['delta']} classes={report['classes']} "
               f"input={report['resolution']}")
    notes = [
        f"total: {millions(report['params'])} params, {millions(report[key])} {unit} "
        f"(convention '{report['convention']}': {report['convention_detail']['description']})",
        *memory_notes(report),
    ]
    return View(
        title=title,
        columns=[Column("name", "layer", wrap=False), Column("type_stride", "Type / Stride"),
                 Column("filter_shape", "Filter Shape"), Column("input", "Input Size"),
                 Column("output", "Output"), *([Column("activation", "Act.")] if branched else []),
                 Column("params", "Params", True), Column(key, unit, True),
                 Column("activation_bytes", f"{'Live' if branched else 'In+Out'} B ({report['dtype']})", True),
                 Column("peak", ""),
                 Column("weight_bytes", f"Weight B ({report['dtype']})", True)],
        rows=rows, footer=footer, notes=notes,
    )


def grid_view(rows: list[dict], branched: bool = False):
    from mnetcost.cli.render import Column, View

    unit = rows[0]["unit"]
    key = "flops" if "flops" in rows[0] else "mult_adds"
    scale = 2 if key == "flops" else 1
    first = rows[0]
    view_rows = [
        {"variant": r["variant"], "alpha": r["alpha"], "delta": r["delta"], key: r[key], "params": r["params"],
         "mult_adds_change": f"{r['mult_adds_change']:+.1%}", "params_change": f"{r['params_change']:+.1%}",
         "peak_activation_bytes": r["peak_activation_bytes"], "weight_bytes": r["weight_bytes"],
         "deploy_params": r["deploy_params"], "arena_bytes": r.get("arena_bytes"),
         "flash_bytes": r.get("flash_bytes"),
         "fits": _fits_text(r["fit"]) if "fit" in r else None}
        for r in rows
    ]
    fit_columns = [Column("fits", "fits")] if "fit" in first else []
    tflm = first.get("runtime") == "tflm"
    tflm_columns = [Column("arena_bytes", "TFLM arena B", True), Column("flash_bytes", ".tflite B", True)] \
        if tflm else []
    return View(
        title=(f"{first['variant']}: totals per configuration, classes={first['classes']} "
               f"input={first['resolution']} (convention '{first['convention']}')"),
        columns=[Column("variant", "variant"), Column("alpha", "α", True), Column("delta", "δ", True),
                 Column(key, unit, True), Column("params", "Params", True),
                 Column("mult_adds_change", f"{unit} vs baseline", True),
                 Column("params_change", "Params vs baseline", True),
                 Column("peak_activation_bytes", f"Peak act. B ({first['dtype']})", True),
                 Column("weight_bytes", f"Weight B ({first['dtype']})", True),
                 Column("deploy_params", "Deploy params", True), *tflm_columns, *fit_columns],
        rows=view_rows,
        notes=[f"baseline: MobileNet (Table 1, α=1, δ=1) at the same classes and input: "
               f"{first['baseline_mult_adds'] * scale:,} {unit}, {first['baseline_params']:,} params",
               f"memory at {first['dtype']}: peak activation bytes ("
               + ("the largest total of tensors alive at one layer: its inputs and output, a residual's input "
                  "across its block" if branched else "input + output of the largest layer")
               + ", one layer at a time) and deployed weight bytes (BatchNorm folded)"]
        + ([f"TFLM arena: TensorFlow Lite Micro's arena for the int8 .tflite export (activations as its planner "
            f"places them + persistent data; {first['tflm_version']}); .tflite: the file's bytes (Flash)"]
           if tflm else [])
        + ([_budget_note(first["fit"], first.get("runtime", "simple"))] if "fit" in first else []),
    )


def _fits_text(fit: dict) -> str:
    """``yes``, or ``no (RAM)``, ``no (Flash)``, ``no (RAM + Flash)``."""
    if fit["fits"]:
        return "yes"
    short = [name for name, ok in (("RAM", fit["fits_sram"]), ("Flash", fit["fits_flash"])) if not ok]
    return f"no ({' + '.join(short)})"


def _budget_note(fit: dict, runtime: str = "simple") -> str:
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.calculator.targets import get_target

    where = get_target(fit["target"]).board if fit.get("target") else "budgets"
    parts = [f"RAM {format_bytes(fit['sram_bytes'])}" if fit["sram_bytes"] is not None else "",
             f"Flash {format_bytes(fit['flash_bytes'])}" if fit["flash_bytes"] is not None else ""]
    against = ("TFLM arena and .tflite bytes" if runtime == "tflm" else "peak activation and weight bytes")
    return f"fits: {where}, " + " and ".join(p for p in parts if p) + f" ({runtime} runtime: {against})"


@click.command("table")
@variant_option
@config_options(lists=True, spec_defaults=True)
@convention_option
@rounding_option
@dtype_option
@memory_options
@runtime_option
@format_option
def command(variant, alpha, delta, classes, resolution, convention, rounding, dtype, target, max_peak_memory,
            max_weight_bytes, runtime, fmt):
    """A variant layer by layer in the paper's notation (Tables 1-3), with params and Mult-Adds.

    With comma lists (--alpha 1,0.5,0.25 --delta 2,4) it prints the summary grid of Tables 4-6:
    totals per configuration and the change against the α=1, δ=1 MobileNet baseline.

    Memory at --dtype: per layer the input + output activation bytes (★ marks the peak) and the
    deployed weight bytes; totals: peak activation bytes, weight bytes, deploy params, training
    activation bytes per image. --target BOARD (or --max-peak-memory/--max-weight-bytes) says
    whether the model fits and by how much.

    --runtime tflm (the default with --target or a budget at int8) adds what TensorFlow Lite Micro
    needs for the int8 file of mnetcost export --format tflite, predicted to the byte: its arena
    (the planner's activations + persistent per-op and per-tensor data) and the .tflite bytes; the
    verdict then compares those with the board's SRAM and Flash.
    """
    from mnetcost.calculator.cost import network_cost
    from mnetcost.cli.render import emit
    from mnetcost.calculator.report import grid_report, network_report
    from mnetcost.calculator.resolver import plan, resolve
    from mnetcost.calculator.spec import load_spec

    from mnetcost.calculator.report import fit_dict, runtime_dict
    from mnetcost.calculator.targets import budgets

    budgets(target, max_peak_memory, max_weight_bytes)  # a bad budget fails before any work
    dtype, runtime = memory_settings(dtype, runtime, target,
                                     max_peak_memory is not None or max_weight_bytes is not None)
    spec = load_spec(variant)
    note_alpha(alpha)
    if len(alpha) == 1 and len(delta) == 1:
        network_plan = plan(spec, classes, resolution)
        cost = network_cost(resolve(spec, alpha[0], delta[0], classes, resolution, rounding, network_plan), convention,
                            dtype)
        figures = runtime_dict(cost, runtime)
        report = network_report(cost, fit=fit_dict(cost, target, max_peak_memory, max_weight_bytes, figures))
        report.update(figures)
        emit(fmt, report, [layer_view(report)])
    else:
        rows = grid_report(spec, alpha, delta, classes, resolution, convention, rounding, dtype=dtype, target=target,
                           max_peak_memory=max_peak_memory, max_weight_bytes=max_weight_bytes, runtime=runtime)
        from mnetcost.calculator.resolver import is_branched

        branched = is_branched([item.layer for item in plan(spec, classes, resolution).layers])
        emit(fmt, rows, [grid_view(rows, branched)])
