"""``mnetcost sweep``: price a design space at once, filter it by budgets, show known accuracy."""
from __future__ import annotations

import click

from mnetcost.cli.options import (ALPHA_LIST, CLASSES_LIST, COUNT_SI, DELTA_LIST, RESOLUTION_LIST, convention_option,
                              dtype_option, fail, format_option, integer, memory_options, memory_settings, note_alpha,
                              rounding_option, runtime_option, tflm_build_for, tflm_build_option)

TABLE_LIMIT = 40


def _percent(fraction: float) -> str:
    """An accuracy (a fraction) in percent, as the paper prints it: ``70.2``."""
    return f"{100 * fraction:.1f}"


def _budget(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@click.command("sweep")
@click.option("--variant", "-v", default="all", show_default=True, metavar="all|base,mp3,fmp,mobilenet_v2,...|PATH",
              help="Variants to sweep: all (the paper's base, mp3 and fmp), one, or a comma list (names, such as "
                   "mobilenet_v2 or mobilenet_v3_small_fmp, or spec files).")
@click.option("--alpha", "-a", "alphas", type=ALPHA_LIST, default="0.25,0.5,1", show_default=True,
              help="Width multipliers: comma list and/or start:stop:step ranges (exact decimals).")
@click.option("--delta", "-d", "deltas", type=DELTA_LIST, default="1,2,4", show_default=True,
              help="Depth multipliers δ (comma list of positive integers).")
@click.option("--classes", "-c", "classes", type=CLASSES_LIST, default=None,
              help="Numbers of classes (comma list; 10 = CIFAR-10, 100 = CIFAR-100) [default: each variant's "
                   "own: 10 for base/mp3/fmp, 1000 for mobilenet_v2/v3].")
@click.option("--resolution", "-r", "resolutions", type=RESOLUTION_LIST, default=None,
              help="Input sizes in pixels (comma list) [default: each variant's own: 32 for base/mp3/fmp, "
                   "224 for mobilenet_v2/v3].")
@click.option("--max-mult-adds", type=COUNT_SI, default=None, metavar="COUNT[K|M|G]",
              help="Keep configurations with at most this many Mult-Adds (SI: 10M = 10,000,000).")
@click.option("--max-params", type=COUNT_SI, default=None, metavar="COUNT[K|M|G]",
              help="Keep configurations with at most this many parameters (SI: 1M = 1,000,000).")
@memory_options
@dtype_option
@runtime_option
@tflm_build_option
@convention_option
@rounding_option
@click.option("--runs", "runs_dir", type=click.Path(), default=None, metavar="DIR",
              help="Also show accuracies of training runs (DIR/*/summary.json from `mnetcost train`).")
@click.option("--sort", "sort_key", type=click.Choice(("mult_adds", "params", "accuracy", "variant", "alpha",
                                                        "delta", "classes", "resolution", "peak_activation_bytes",
                                                        "weight_bytes", "arena_bytes", "minimum_arena_bytes",
                                                        "flash_bytes")),
              default="mult_adds", show_default=True,
              help="Sort order (ascending; accuracy: best first, unknown last).")
@click.option("--front", "front_cost", type=click.Choice(("mult_adds", "params", "peak_activation_bytes",
                                                         "weight_bytes", "arena_bytes", "minimum_arena_bytes",
                                                         "flash_bytes")),
              default="mult_adds",
              show_default=True, help="Cost axis of the accuracy Pareto front that marks rows.")
@click.option("--known-only", is_flag=True, help="Only configurations with a known accuracy.")
@click.option("--front-only", is_flag=True, help="Only configurations on the accuracy Pareto front.")
@click.option("--limit", type=integer("limit", minimum=0), default=None, metavar="N",
              help=f"Show at most N rows (0 = all). Default: {TABLE_LIMIT} for table/markdown, all for json/csv.")
@format_option
def command(variant, alphas, deltas, classes, resolutions, max_mult_adds, max_params, target, max_peak_memory,
            max_weight_bytes, flash_reserve, dtype, runtime, tflm_build, convention, rounding, runs_dir, sort_key,
            front_cost, known_only, front_only, limit, fmt):
    """Evaluate a design space at once and answer budget questions.

    Prices every combination of --variant, --alpha, --delta, --classes and --resolution with the
    vectorised engine, keeps those within --max-mult-adds/--max-params and the memory budgets
    (--max-peak-memory and --max-weight-bytes, or a --target board's SRAM and Flash), and lists
    them sorted. With --runtime tflm (the default with --target or a memory budget at int8) the RAM
    budget judges TensorFlow Lite Micro's arena and the Flash budget the int8 .tflite file's bytes
    (columns arena_bytes, flash_bytes); with --runtime simple they judge the peak activation bytes
    and the deployed weight bytes at --dtype (columns peak_activation_bytes, weight_bytes).
    Known accuracies (the paper's Tables 4-6 at 32 px, and your runs with --runs) are shown, and
    rows on the accuracy Pareto front are marked: no other shown configuration for the same
    classes has fewer-or-equal cost (--front) and higher-or-equal accuracy, one of them strictly.

    \b
    Examples:
      mnetcost sweep --max-mult-adds 10M --known-only --sort accuracy
      mnetcost sweep -v base -a 0.25:1.0:0.05 -d 1,2,3,4 --max-params 1M --format json
      mnetcost sweep --target stm32f746 --known-only --sort accuracy
      mnetcost sweep --max-peak-memory 256KiB --max-weight-bytes 1MiB --dtype int8
    """
    import numpy as np

    from mnetcost.calculator.cost import get_convention
    from mnetcost.calculator.memory import exact_bytes, format_bytes
    from mnetcost.cli.render import Column, View, emit, millions
    from mnetcost.analysis.sweep import (accuracy_front, attach_accuracy, distinct, evaluate, load_runs, paper_known,
                                parse_variants, rows_as_dicts, skipped_notes, sort_order)

    from mnetcost.calculator.targets import DEFAULT_FLASH_RESERVE, budgets as memory_budgets

    chosen = memory_budgets(target, max_peak_memory, max_weight_bytes)  # bad input fails first
    sram, flash, board = chosen.sram_bytes, chosen.flash_bytes, chosen.board
    dtype, runtime = memory_settings(dtype, runtime, target, max_peak_memory is not None or max_weight_bytes is not None)
    tflm = runtime == "tflm"
    tflm_build = tflm_build_for(tflm_build, runtime, target)
    for key, option in ((sort_key, "--sort"), (front_cost, "--front")):
        if key in ("arena_bytes", "minimum_arena_bytes", "flash_bytes") and not tflm:
            fail(f"{option} {key} needs --runtime tflm")
    variants = parse_variants(variant)
    note_alpha(alphas)
    known = paper_known()
    if runs_dir is not None:
        runs, warnings = load_runs(runs_dir)
        for line in warnings:
            click.echo(line, err=True)
        known += runs
    # Paper accuracies belong to the built-in variants only (a spec file named "base" is not Table 1).
    from mnetcost.calculator.spec import BUILTIN_VARIANTS

    known = [k for k in known if k.source != "paper" or k.variant in BUILTIN_VARIANTS]

    result = evaluate(variants, alphas, deltas, classes, resolutions, convention, rounding, dtype, runtime, tflm_build)
    from mnetcost.calculator.resolver import is_branched, plan
    from mnetcost.calculator.spec import load_spec
    from mnetcost.errors import ConfigError

    def branched_spec(variant) -> bool:
        try:
            return is_branched([item.layer for item in plan(load_spec(variant)).layers])
        except ConfigError:  # its own input size is too small: the sweep says so in its notes
            return False

    branched = any(branched_spec(variant) for variant in variants)
    for line in skipped_notes(result.skipped):
        click.echo(line, err=True)
    if result.evaluated and not len(result) and result.skipped:
        raise click.UsageError("no configuration in this sweep can be built or priced (see the notes above)")

    keep = np.ones(len(result), dtype=bool)
    if max_mult_adds is not None:
        keep &= result.mult_adds <= max_mult_adds
    if max_params is not None:
        keep &= result.params <= max_params
    if sram is not None:
        keep &= (result.minimum_arena_bytes if tflm else result.peak_activation_bytes) <= sram
    reserve = DEFAULT_FLASH_RESERVE if flash_reserve is None else flash_reserve
    if flash is not None:  # the model (the .tflite file and TFLM's code) and the application's reserve
        keep &= (result.flash_bytes + result.runtime_code_bytes if tflm else result.weight_bytes) + reserve <= flash
    fitting = result.take(keep)
    accuracy, source, paper_accuracy = attach_accuracy(fitting, known)
    on_front = accuracy_front(fitting, accuracy, front_cost)
    show = np.ones(len(fitting), dtype=bool)
    if known_only:
        show &= ~np.isnan(accuracy)
    if front_only:
        show &= on_front
    order = sort_order(fitting, accuracy, sort_key)
    order = order[show[order]]
    total = int(order.size)
    if limit is None:
        limit = TABLE_LIMIT if fmt in ("table", "markdown") else 0
    if limit:
        order = order[:limit]
    conv = get_convention(convention)
    rows = rows_as_dicts(fitting, order, accuracy, source, paper_accuracy, on_front, conv.ops_per_mac)

    multi = (len(classes or ()) > 1 or len(resolutions or ()) > 1
             or len(distinct(result.classes)) > 1 or len(distinct(result.resolution)) > 1)
    columns = [Column("variant", "variant"), Column("alpha", "α", True, format="{:g}".format),
               Column("delta", "δ", True)]
    columns += [Column("classes", "classes", True, show=multi), Column("resolution", "px", True, show=multi)]
    columns += [Column("mult_adds", conv.unit if conv.ops_per_mac == 1 else "Mult-Adds", True, format=millions),
                *([Column("flops", "FLOPs", show=False)] if conv.ops_per_mac != 1 else []),
                Column("params", "params", True, format=millions),
                Column("peak_activation_bytes", f"peak RAM {dtype}", True, format=format_bytes,
                       csv=f"peak_activation_bytes_{dtype}", show=not tflm),
                Column("weight_bytes", f"weights {dtype}", True, format=format_bytes, csv=f"weight_bytes_{dtype}",
                       show=not tflm),
                *([Column("runtime", "runtime", show=False), Column("tflm_build", "TFLM build", show=False),
                   Column("arena_bytes", "TFLM arena", True, format=format_bytes, csv="arena_bytes_int8"),
                   Column("arena_activation_bytes", "activations", show=False, csv="arena_activation_bytes_int8"),
                   Column("arena_persistent_bytes", "persistent", show=False, csv="arena_persistent_bytes_int8"),
                   Column("minimum_arena_bytes", "arena needed", True, format=format_bytes,
                          csv="minimum_arena_bytes_int8"),
                   Column("flash_bytes", ".tflite", True, format=format_bytes, csv="flash_bytes_int8"),
                   Column("runtime_code_bytes", "TFLM code", show=False,
                          csv="runtime_code_bytes_int8")] if tflm else []),
                Column("accuracy", "accuracy %", True, format=_percent),
                Column("accuracy_source", "source"),
                Column("paper_accuracy", "paper %", True, format=_percent, show=runs_dir is not None),
                Column("on_front", "front", format=lambda on: "★" if on else "")]
    budgets = [f"Mult-Adds ≤ {_budget(max_mult_adds)}" if max_mult_adds is not None else "",
               f"params ≤ {_budget(max_params)}" if max_params is not None else "",
               (f"{'TFLM arena needed' if tflm else 'peak RAM'} ≤ {exact_bytes(sram)}") if sram is not None else "",
               (f"{'.tflite + TFLM code' if tflm else 'weights'} + reserve {reserve:,} B ≤ {exact_bytes(flash)}")
               if flash is not None else ""]
    budget_text = " and ".join(b for b in budgets if b)
    title = (f"{len(fitting):,} of {len(result):,} configurations" + (f" with {budget_text}" if budget_text else "")
             + f" (convention {conv.name}, sorted by {sort_key})")
    filters = " and ".join(text for text, on in (("with a known accuracy", known_only),
                                                 ("on the accuracy front", front_only)) if on)
    if filters:  # the count in the title is the rows the filters keep, not the configurations before them
        within = f"{len(fitting):,} with {budget_text} of {len(result):,}" if budget_text else f"{len(result):,}"
        title = (f"{total:,} configuration{'s' if total != 1 else ''} {filters}, of {within} priced "
                 f"(convention {conv.name}, sorted by {sort_key})")
    notes = [f"★ = on the accuracy Pareto front ({front_cost.replace('_', '-')} vs accuracy, per number of "
             "classes): no other row has fewer-or-equal cost and higher-or-equal accuracy, one strictly.",
             "accuracy: a training run's (the best of your runs for that configuration; source = the run) where "
             "--runs holds one, else the paper's, Chen & Su Tables 4-6 as printed (CIFAR at 32 px; source = paper)"
             + ("; paper % = the paper's figure beside your run's." if runs_dir is not None else "."),
             memory_note(dtype, tflm, branched, board, chosen, tflm_build, reserve)]
    notes += published_notes(variants, rows, conv.name, rounding)
    if total > len(rows):
        notes.append(f"showing {len(rows)} of {total:,} rows; --limit 0 shows all, --format json/csv gives all.")
    if not total:
        notes.append("no configuration fits" + (f" {budget_text}" if budget_text else "") + ".")
    emit(fmt, rows, [View(title=title, columns=columns, rows=rows, notes=notes)])


def memory_note(dtype: str, tflm: bool, branched: bool, board, chosen, tflm_build: str | None = None,
                reserve: int = 0) -> str:
    """What the memory columns shown are, and which of them each budget judges: under --runtime tflm the
    arena TFLM needs (RAM) and the .tflite file + TFLM's code + ``reserve`` (Flash) in ``tflm_build``, else
    the peak activation bytes and the weight bytes + ``reserve``."""
    if chosen.sram_bytes is not None or chosen.flash_bytes is not None:  # table's wording, loaded only when needed
        from mnetcost.cli.commands.table import budget_text as describe_budget
    if tflm:
        from mnetcost.calculator.tflm import DEFAULT_BUILD, get_build

        build = get_build(tflm_build or DEFAULT_BUILD)
        ram, flash = "arena needed", ".tflite"
        figures = ("runtime tflm: TFLM arena = TensorFlow Lite Micro's arena for the int8 .tflite export (its "
                   "greedy planner's activations + persistent per-op and per-tensor data); arena needed = the "
                   "smallest arena_size the interpreter accepts (more than the arena where loading the model takes "
                   "more temporary room than the activations); .tflite = the file's bytes (Flash), beside TFLM's "
                   f"code for its operators (TFLM code column in CSV and JSON) (build {build.name}: {build.version})")
    else:
        ram, flash = f"peak RAM {dtype}", f"weights {dtype}"
        figures = ("peak RAM = "
                   + ("the largest total of activation tensors alive at one layer (a layer's input + output in a "
                      "chain such as base/mp3/fmp; a residual's input stays alive across its block)" if branched else
                      "input + output activation bytes of the largest layer")
                   + " (one layer at a time, BatchNorm and ReLU fused); weights = deployed weight bytes "
                     "(BatchNorm folded)")
    extra = {"RAM": "", "Flash": (" + TFLM code" if tflm else "") + f" + reserve {reserve:,} B"}
    budgets = "".join(f"; {name} budget, against the {column} column{extra[name]}: "
                      + describe_budget(resource, value, source, board and board.name)
                      for resource, name, column, value, source in (
                          ("sram", "RAM", ram, chosen.sram_bytes, chosen.sram_source),
                          ("flash", "Flash", flash, chosen.flash_bytes, chosen.flash_source))
                      if value is not None)
    return (f"memory at {dtype}: " + figures + (f"; target {board.name}: {board.board}" if board else "")
            + budgets + ".")


def published_notes(variants, rows: list[dict], convention: str, rounding) -> list[str]:
    """For each built-in MobileNetV2/V3 shown as its paper published it (width 1.0, δ = 1, 224 px, 1,000
    classes), the papers' figures and the convention whose count prints as each (as ``table`` says them)."""
    from mnetcost.calculator.spec import FAMILY_VARIANTS

    family = [variant for variant in dict.fromkeys(variants) if variant in FAMILY_VARIANTS]
    if not family:
        return []
    from mnetcost.calculator.published import published_figures
    from mnetcost.calculator.resolver import resolve
    from mnetcost.cli.commands.table import published_note

    notes = []
    for variant in family:
        shown = next((row for row in rows if row["variant"] == variant and row["alpha"] == 1 and row["delta"] == 1),
                     None)
        if shown is None:
            continue
        figures = published_figures(resolve(variant, 1.0, 1, shown["classes"], shown["resolution"], rounding))
        if figures:
            notes.append(f"{variant}: " + published_note({"published": figures, "convention": convention}))
    return notes
