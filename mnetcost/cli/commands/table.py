"""``mnetcost table``: a variant layer by layer in the paper's notation, or a grid of totals."""
from __future__ import annotations

import click

from mnetcost.cli.options import (config_options, convention_option, dtype_option, format_option, memory_options,
                                  memory_settings, note_alpha, rounding_option, runtime_option, tflm_build_for,
                                  tflm_build_option, variant_option)


def memory_notes(report: dict) -> list[str]:
    """The memory totals (and the fit, when asked) of one configuration, as lines under its table."""
    from mnetcost.calculator.memory import exact_bytes, format_bytes

    alive = ("the tensors alive while one layer runs: its inputs and output, a residual's input across its "
             "block, a squeeze-excite's input beside the squeeze; layers run one at a time with BatchNorm and "
             "the activation fused" if report.get("branched") else
             "input + output of one layer, layers run one at a time with BatchNorm and ReLU fused")
    if report.get("model_file"):  # a file as it is: its own operators, weights and types; nothing to train
        lines = [f"memory ({report['dtype']}): peak activations {exact_bytes(report['peak_activation_bytes'])} at "
                 f"{report['peak_layer']} (★; the tensors alive while one operator runs: its inputs and output, a "
                 f"branch's input until its last reader, operators one at a time in the file's order); weights "
                 f"{exact_bytes(report['weight_bytes'])} for {report['deploy_params']:,} stored params"]
        return lines + _runtime_and_fit_notes(report)
    lines = [
        f"memory ({report['dtype']}): peak activations {exact_bytes(report['peak_activation_bytes'])} at "
        f"{report['peak_layer']} (★; {alive}); weights {exact_bytes(report['weight_bytes'])} for "
        f"{report['deploy_params']:,} deployed params "
        f"(BatchNorm folded); training keeps {exact_bytes(report['training_activation_bytes_per_image'])} of "
        "activations per image (fp32)",
    ]
    if report.get("branched") and report.get("blocks"):
        lines.append("peak per block: " + ", ".join(
            f"{block['block']} {format_bytes(block['peak_activation_bytes'])} ({block['peak_layer']})"
            for block in report["blocks"]))
    return lines + _runtime_and_fit_notes(report)


def _runtime_and_fit_notes(report: dict) -> list[str]:
    """TensorFlow Lite Micro's figures (runtime tflm) and the fit (with a board or budgets), when present."""
    lines = [tflm_note(report)] if report.get("runtime") == "tflm" else []
    if report.get("fit"):
        fit = report["fit"]
        lines.append(fit_note(fit, fit["ram_need_bytes"], fit["flash_need_bytes"],
                              runtime=report.get("runtime", "simple")))
    return lines


# what tflite-micro's own category holds, beside its name (the name a user finds in print_allocations)
CATEGORY_CONTENTS = {"Persistent buffer data": "the kernels' op data, the per-channel output multipliers and shifts "
                                              "and the input/output pointer arrays"}


def persistent_text(parts: dict) -> str:
    """The tail by tflite-micro's RecordingMicroAllocator categories (its ``print_allocations`` names), then
    what that allocator does not record: ``'Persistent buffer data' 34,224 B (the kernels' op data, ...), ...``."""
    from mnetcost.calculator.tflm import RECORDED

    recorded = [f"'{name}' {parts[name]:,} B" + (f" ({CATEGORY_CONTENTS[name]})" if name in CATEGORY_CONTENTS else "")
                for name in RECORDED if parts.get(name)]
    other = [f"{name} {bytes_:,} B" for name, bytes_ in parts.items() if name not in RECORDED and bytes_]
    return ("RecordingMicroAllocator: " + ", ".join(recorded)
            + ("; not recorded by it: " + ", ".join(other) if other else ""))


def published_note(report: dict) -> str:
    """The papers' printed figures for a published model (MobileNetV2/V3 at width 1.0, 224 px, 1,000
    classes), each with this output's exact count and the convention whose count prints as the figure."""
    figures = report["published"]
    sources = list(dict.fromkeys(figure["source"] for figure in figures))
    convention = report["convention"]
    parts = []
    for figure in figures:
        what = "Mult-Adds" if figure["quantity"] == "mult_adds" else "params"
        reproduced = list(figure["reproduced_by"])
        ours = figure["counts"].get(convention)
        if convention in reproduced:
            parts.append(f"{figure['printed_millions']} M {what}: this output's {ours:,} (convention '{convention}') "
                         "prints as it")
        elif reproduced:
            also = f" (also: {', '.join(reproduced[1:])})" if len(reproduced) > 1 else ""
            mine = f"this output's '{convention}' count is {ours:,}; " if ours is not None else ""
            parts.append(f"{figure['printed_millions']} M {what}: {mine}--convention {reproduced[0]} gives "
                         f"{figure['reproduced_by'][reproduced[0]]:,}{also}")
        else:
            parts.append(f"{figure['printed_millions']} M {what}: no convention's count prints as it")
    return (f"published ({'; '.join(sources)}; millions, truncated as printed): " + "; ".join(parts) + ".")


def tflm_note(report: dict) -> str:
    """TensorFlow Lite Micro's arena and the .tflite file of one configuration, in one line."""
    from mnetcost.calculator.memory import exact_bytes

    parts = report["flash_parts"]
    return (f"TensorFlow Lite Micro, {report['tflm_build']} ({report['tflm_version']}): arena "
            f"{exact_bytes(report['arena_bytes'])} = "
            f"activations {report['arena_activation_bytes']:,} B (greedy planner, 16-byte aligned) + persistent "
            f"{report['arena_persistent_bytes']:,} B ({persistent_text(report['arena_persistent_parts'])}); "
            f"smallest arena_size accepted {report['minimum_arena_bytes']:,} B. .tflite "
            f"{exact_bytes(report['flash_bytes'])} = weights and biases {parts['weights']:,} + scales and zero "
            f"points {parts['quantization']:,} + names {parts['names']:,} + FlatBuffers structure "
            f"{parts['structure'] + parts.get('padding', 0) + parts['metadata']:,}. TFLM's code for its operators "
            + (f"{report['runtime_code_bytes']:,} B ({report['runtime_code_target']})"
               if report.get("runtime_code_bytes") is not None else "not measured for every one of them"))


BUDGET_OPTIONS = {"max_peak_memory": "--max-peak-memory", "max_weight_bytes": "--max-weight-bytes"}
RESOURCES = {"sram": ("SRAM", "sram_bytes"), "flash": ("Flash", "flash_bytes")}


def budget_text(resource: str, budget: int, source: str, target: str | None) -> str:
    """Whose budget this is and how large, for people: ``the stm32f746's 320.0 KiB SRAM``, or
    ``your --max-peak-memory budget 1,073,741,824 B (1.00 GiB) instead of the stm32f746's 320.0
    KiB SRAM``: a budget that overrides a board is never shown as the board's."""
    from mnetcost.calculator.memory import exact_bytes, format_bytes
    from mnetcost.calculator.targets import get_target

    name, field = RESOURCES[resource]
    board = get_target(target) if target else None
    if source == "target":
        return f"the {board.name}'s {format_bytes(budget)} {name}"
    instead = f" instead of the {board.name}'s {format_bytes(getattr(board, field))} {name}" if board else ""
    return f"your {BUDGET_OPTIONS[source]} budget {exact_bytes(budget)}{instead}"


def share_text(need: int, budget: int) -> str:
    """``need`` as a share of ``budget``, never shown as 0 % when it is not: ``313%``, ``7.5%``,
    ``0.0023%``."""
    from mnetcost.calculator.targets import used_fraction

    fraction = used_fraction(need, budget)
    if fraction >= 0.1 or fraction == 0:
        return f"{fraction:.0%}"
    return f"{100 * fraction:.2g}%"


def fit_note(fit: dict, peak: int, weights: int, runtime: str = "simple") -> str:
    """One line: whether the configuration fits, against what (the board's figures, or the user's
    own budgets, named as such), by how much, and which constraint binds; RAM and Flash are the
    ``runtime``'s (simple: peak activations and weights; tflm: TFLM's arena and the .tflite file)."""
    from mnetcost.calculator.memory import exact_bytes, format_bytes
    from mnetcost.calculator.targets import get_target

    def part(label, resource, need):
        budget, source = fit[RESOURCES[resource][1]], fit.get(f"{resource}_source")
        if budget is None:
            return f"{label}: no budget"
        against = budget_text(resource, budget, source or "target", fit.get("target"))
        share = f"= 0 B against {against}" if budget == 0 and need == 0 else (
            f"against {against}" if budget == 0 else f"= {share_text(need, budget)} of {against}")
        margin = budget - need
        verdict = (f"fits, {format_bytes(margin)} to spare" if margin >= 0
                   else f"does NOT fit, {exact_bytes(-margin)} over")
        return f"{label} {format_bytes(need)} {share}: {verdict}"

    sources = {fit.get(f"{r}_source") for r in RESOURCES if fit[RESOURCES[r][1]] is not None}
    board = get_target(fit["target"]).board if fit.get("target") else None
    own = [RESOURCES[r][0] for r in RESOURCES if fit.get(f"{r}_source") in BUDGET_OPTIONS]
    if board and len(own) == len(sources):  # the user's budgets replace every figure of the board
        where = "your budget" + ("s" if len(own) > 1 else "")
    elif board and own:
        where = f"{board} with your own {' and '.join(own)} budget" + ("s" if len(own) > 1 else "")
    elif board:
        where = board
    else:
        where = "your budget" + ("s" if len(sources) > 1 else "")
    verdict = "FITS" if fit["fits"] else "DOES NOT FIT"
    ram, flash = ("TFLM arena needed", ".tflite (Flash)") if runtime == "tflm" else ("peak RAM", "weights (Flash)")
    parts = fit.get("flash_need_parts") or {}
    if len(parts) > 1:  # the model, the runtime's code, the application's reserve
        names = {"model": ".tflite" if runtime == "tflm" else "weights", "runtime code": "TFLM code",
                 "reserve": "reserve"}
        flash = "Flash (" + " + ".join(f"{names.get(name, name)} {format_bytes(size)}"
                                       for name, size in parts.items()) + ")"
    return (f"{verdict} {where}: " + "; ".join((
        part(ram, "sram", peak),
        part(flash, "flash", weights),
    )) + (f"; binding: {fit['binding']}" if fit.get("binding") else ""))


def _percent_change(value: float) -> str:
    return f"{value:+.1%}"


def _star(flag) -> str:
    return "★" if flag else ""


def layer_view(report: dict):
    """The layers in the paper's notation for people; for machines (CSV) the same rows as exact
    numbers: shapes, kernel, stride, groups, bytes at the dtype named in the header."""
    from mnetcost.cli.render import Column, View, millions

    unit = report["unit"]
    dtype = report["dtype"]
    key = "flops" if "flops" in report else "mult_adds"
    rows = [
        {"name": layer["name"], "type": layer["type"], "type_stride": layer["type_stride"],
         "filter_shape": layer["filter_shape"], "kernel": layer["kernel"], "stride": layer["stride"],
         "groups": layer["groups"],
         "input": "×".join(map(str, layer["input"])), "output": "×".join(map(str, layer["output"])),
         **{f"in_{axis}": size for axis, size in zip("hwc", layer["input"])},
         **{f"out_{axis}": size for axis, size in zip("hwc", layer["output"])},
         "params": layer["params"], key: layer[key], "input_bytes": layer["input_bytes"],
         "output_bytes": layer["output_bytes"], "activation_bytes": layer["live_bytes"],
         "weight_bytes": layer["weight_bytes"], "training_bytes": layer["training_bytes"], "peak": layer["peak"],
         "activation": layer["activation"]}
        for layer in report["layers"]
    ]
    branched = report.get("branched")  # a chain's live bytes are a layer's input + output bytes
    footer = {"name": "total", "params": report["params"], key: report[key],
              "activation_bytes": report["peak_activation_bytes"], "weight_bytes": report["weight_bytes"],
              "peak": "peak"}
    title = (f"{report['variant']}" + (f" (Table {report['paper_table']})" if report.get("paper_table") else "")
             + f": α={report['alpha']:g} δ={report['delta']} classes={report['classes']} "
               f"input={report['resolution']}")
    if report.get("model_file"):  # a model file has no α/δ: its own operators, shapes and weights
        model = report["model_file"]
        count = f"{len(model['operators'])} operators" if "operators" in model else f"{model['layers']} layers"
        shape = "×".join(map(str, model.get("input_shape", ()))) or str(report["resolution"])
        title = f"{report['variant']}: {count} in file order, {model['dtype']}, input {shape}"
    notes = [
        f"total: {millions(report['params'])} params, {millions(report[key])} {unit} "
        f"(convention '{report['convention']}': {report['convention_detail']['description']})",
        *memory_notes(report),
        *([published_note(report)] if report.get("published") else []),
    ]
    machine = [Column("type", "type", show=False), Column("kernel", "kernel", show=False),
               Column("stride", "stride", show=False), Column("groups", "groups", show=False),
               *(Column(f"{side}_{axis}", f"{side}_{axis}", show=False) for side in ("in", "out") for axis in "hwc")]
    return View(
        title=title,
        columns=[Column("name", "layer", wrap=False), *machine,
                 Column("type_stride", "Type / Stride", csv=None), Column("filter_shape", "Filter Shape", csv=None),
                 Column("input", "Input Size", csv=None), Column("output", "Output", csv=None),
                 *([Column("activation", "Act.")] if branched else []),
                 Column("params", "Params", True), Column(key, unit, True),
                 Column("input_bytes", "input_bytes", csv=f"input_bytes_{dtype}", show=False),
                 Column("output_bytes", "output_bytes", csv=f"output_bytes_{dtype}", show=False),
                 Column("activation_bytes", f"{'Live' if branched else 'In+Out'} B ({dtype})", True,
                        csv=f"{'live' if branched else 'activation'}_bytes_{dtype}"),
                 Column("peak", "peak", format=_star),
                 Column("weight_bytes", f"Weight B ({dtype})", True, csv=f"weight_bytes_{dtype}"),
                 Column("training_bytes", "training_bytes", csv="training_bytes_per_image_fp32", show=False)],
        rows=rows, footer=footer, notes=notes,
    )


def grid_view(rows: list[dict], branched: bool = False):
    from mnetcost.cli.render import Column, View

    unit = rows[0]["unit"]
    key = "flops" if "flops" in rows[0] else "mult_adds"
    scale = 2 if key == "flops" else 1
    first = rows[0]
    dtype = first["dtype"]
    view_rows = [
        {"variant": r["variant"], "alpha": r["alpha"], "delta": r["delta"], key: r[key], "params": r["params"],
         "mult_adds_change": r["mult_adds_change"], "params_change": r["params_change"],
         "peak_activation_bytes": r["peak_activation_bytes"], "weight_bytes": r["weight_bytes"],
         "deploy_params": r["deploy_params"], "fit": r.get("fit"),
         **({name: r[name] for name in ("runtime", "tflm_build", "arena_bytes", "arena_activation_bytes",
                                        "arena_persistent_bytes", "flash_bytes", "runtime_code_bytes")}
            if r.get("runtime") == "tflm" else {}),
         **({name: r["fit"][name] for name in ("fits", "fits_sram", "fits_flash")} if "fit" in r else {})}
        for r in rows
    ]
    fit_columns = [Column("fit", "fits", format=_fits_text, csv=None)] + [
        Column(name, name, show=False) for name in ("fits", "fits_sram", "fits_flash")] if "fit" in first else []
    tflm = first.get("runtime") == "tflm"
    tflm_columns = [Column("runtime", "runtime", show=False), Column("tflm_build", "TFLM build", show=False),
                    Column("arena_bytes", "TFLM arena B", True, csv="arena_bytes_int8"),
                    Column("arena_activation_bytes", "activations", show=False, csv="arena_activation_bytes_int8"),
                    Column("arena_persistent_bytes", "persistent", show=False, csv="arena_persistent_bytes_int8"),
                    Column("flash_bytes", ".tflite B", True, csv="flash_bytes_int8"),
                    Column("runtime_code_bytes", "TFLM code B", True, show=False,
                           csv="runtime_code_bytes_int8")] if tflm else []
    return View(
        title=(f"{first['variant']}: totals per configuration, classes={first['classes']} "
               f"input={first['resolution']} (convention '{first['convention']}')"),
        columns=[Column("variant", "variant"), Column("alpha", "α", True), Column("delta", "δ", True),
                 Column(key, unit, True), Column("params", "Params", True),
                 Column("mult_adds_change", f"{unit} vs baseline", True, format=_percent_change,
                        csv=f"{key}_change_vs_baseline"),
                 Column("params_change", "Params vs baseline", True, format=_percent_change,
                        csv="params_change_vs_baseline"),
                 Column("peak_activation_bytes", f"Peak act. B ({dtype})", True, csv=f"peak_activation_bytes_{dtype}"),
                 Column("weight_bytes", f"Weight B ({dtype})", True, csv=f"weight_bytes_{dtype}"),
                 Column("deploy_params", "Deploy params", True), *tflm_columns, *fit_columns],
        rows=view_rows,
        notes=[f"baseline: MobileNet (Table 1, α=1, δ=1) at the same classes and input: "
               f"{first['baseline_mult_adds'] * scale:,} {unit}, {first['baseline_params']:,} params",
               f"memory at {dtype}: peak activation bytes ("
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
    parts = [f"{name} ≤ " + budget_text(resource, fit[field], fit.get(f"{resource}_source") or "target",
                                       fit.get("target"))
             for resource, (name, field) in (("sram", ("RAM", "sram_bytes")), ("flash", ("Flash", "flash_bytes")))
             if fit[field] is not None]
    reserve = (fit.get("flash_need_parts") or {}).get("reserve", 0)
    flash = (f"; Flash holds the .tflite file, TFLM's code ({fit['flash_need_parts'].get('runtime code', 0):,} B) and "
             f"a reserve of {reserve:,} B" if runtime == "tflm" else f"; Flash holds the weights and a reserve of "
             f"{reserve:,} B") if fit["flash_bytes"] is not None else ""
    return "fits: " + " and ".join(parts) + (" (against TFLM's arena and the .tflite bytes)" if runtime == "tflm"
                                               else "") + flash


@click.command("table")
@variant_option
@config_options(lists=True, spec_defaults=True)
@convention_option
@rounding_option
@dtype_option
@memory_options
@runtime_option
@tflm_build_option
@format_option
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, convention, rounding, dtype, target, max_peak_memory,
            max_weight_bytes, flash_reserve, runtime, tflm_build, fmt):
    """A variant layer by layer in the paper's notation (Tables 1-3), with params and Mult-Adds.

    With comma lists (--alpha 1,0.5,0.25 --delta 2,4) it prints the summary grid of Tables 4-6:
    totals per configuration and the change against the α=1, δ=1 MobileNet baseline.

    Memory at --dtype: per layer the input + output activation bytes (★ marks the peak) and the
    deployed weight bytes; totals: peak activation bytes, weight bytes, deploy params, training
    activation bytes per image. --target BOARD (or --max-peak-memory/--max-weight-bytes) says
    whether the model fits and by how much: with --runtime simple the RAM budget judges the peak
    activation bytes and the Flash budget the weight bytes.

    --runtime tflm (the default with --target or a budget at int8) adds what TensorFlow Lite Micro
    needs for the int8 file of mnetcost export --format tflite, predicted to the byte: its arena
    (the planner's activations + persistent per-op and per-tensor data) and the .tflite bytes; the
    RAM budget (SRAM) then judges the smallest arena TFLM accepts and the Flash budget the .tflite file
    with TFLM's code for its operators and --flash-reserve. --tflm-build arm32 (the default with
    --target: the boards are 32-bit) sizes the arena for a 32-bit Cortex-M build of tflite-micro,
    host64 for its 64-bit Python package.

    --variant FILE.tflite (or FILE.onnx, --runtime simple) prices a model file made elsewhere
    (float32 or int8): its operators in the file's order as layers, its weights as stored; with
    --runtime tflm the arena TensorFlow Lite Micro (--tflm-build) needs for the file as it is, and
    the file's own bytes as Flash. An operator that cannot be priced or that TFLM cannot run is
    named in one line (exit 2).
    """
    from mnetcost.calculator.cost import network_cost
    from mnetcost.cli.render import emit
    from mnetcost.calculator.report import grid_report, network_report
    from mnetcost.calculator.resolver import plan, resolve
    from mnetcost.calculator.spec import load_spec

    from mnetcost.calculator.report import fit_dict, runtime_dict
    from mnetcost.calculator.targets import budgets

    budgets(target, max_peak_memory, max_weight_bytes)  # a bad budget fails before any work
    from mnetcost.calculator.importers import is_model_file

    if is_model_file(variant):
        from mnetcost.cli.commands import model_file

        return model_file.table(ctx, variant, convention, dtype, target, max_peak_memory, max_weight_bytes,
                                flash_reserve, runtime, tflm_build, fmt)
    dtype, runtime = memory_settings(dtype, runtime, target,
                                     max_peak_memory is not None or max_weight_bytes is not None)
    tflm_build = tflm_build_for(tflm_build, runtime, target)
    spec = load_spec(variant)
    note_alpha(alpha)
    if len(alpha) == 1 and len(delta) == 1:
        network_plan = plan(spec, classes, resolution)
        cost = network_cost(resolve(spec, alpha[0], delta[0], classes, resolution, rounding, network_plan), convention,
                            dtype)
        figures = runtime_dict(cost, runtime, tflm_build)
        report = network_report(cost, fit=fit_dict(cost, target, max_peak_memory, max_weight_bytes, figures,
                                                           flash_reserve))
        report.update(figures)
        if runtime == "tflm":
            report["tflm_build"] = tflm_build
        from mnetcost.calculator.published import published_figures

        published = published_figures(cost.network)
        if published:  # a model as its paper published it: the paper's figures, and which convention gives them
            report["published"] = published
        emit(fmt, report, [layer_view(report)])
    else:
        rows = grid_report(spec, alpha, delta, classes, resolution, convention, rounding, dtype=dtype, target=target,
                           max_peak_memory=max_peak_memory, max_weight_bytes=max_weight_bytes, runtime=runtime,
                           tflm_build=tflm_build, flash_reserve=flash_reserve)
        from mnetcost.calculator.resolver import is_branched

        branched = is_branched([item.layer for item in plan(spec, classes, resolution).layers])
        emit(fmt, rows, [grid_view(rows, branched)])
