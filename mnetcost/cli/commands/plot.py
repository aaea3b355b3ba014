"""``mnetcost plot``: accuracy against Mult-Adds (or params, or measured latency), with the front."""
from __future__ import annotations

import click

from mnetcost.cli.options import convention_option, dtype_option, format_option


@click.command("plot")
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Image to write: .png, .svg or .pdf (chosen by the suffix).")
@click.option("--dataset", type=click.Choice(("cifar10", "cifar100")), default="cifar10", show_default=True,
              help="Which of the paper's datasets (and of your runs) to plot.")
@click.option("--x", "x", type=click.Choice(("mult_adds", "params", "latency", "peak_memory", "weight_bytes")),
              default="mult_adds", show_default=True,
              help="Horizontal axis (log scale); latency needs --latency; peak_memory (peak activation bytes) "
                   "and weight_bytes (deployed weights) are at --dtype.")
@click.option("--latency", "latency_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Latency results from `mnetcost bench --out FILE` (for --x latency).")
@click.option("--runtime", type=click.Choice(("torch", "onnxruntime", "onnxruntime-int8")), default=None,
              help="Whose latency, when --latency was measured in several runtimes (`bench --runtime`).")
@click.option("--runs", "runs_dir", type=click.Path(), default=None, metavar="DIR",
              help="Add your training runs: every summary.json in DIR or below it (`mnetcost train`, `mnetcost grid`); "
                   "runs that differ only in their seed are averaged.")
@click.option("--no-paper", is_flag=True, help="Leave the paper's points out (plot only --runs).")
@click.option("--table", "tables", type=click.Choice(("4", "5", "6")), multiple=True,
              help="Only the paper's rows of Table 4 (base), 5 (mp3) or 6 (fmp); repeatable. Default: all.")
@click.option("--title", default=None, help="Figure title (default: dataset and axis).")
@convention_option
@dtype_option(target=False)
@format_option
def command(out, dataset, x, latency_file, runtime, runs_dir, no_paper, tables, title, convention, dtype, fmt):
    """Plot accuracy against cost with the Pareto front.

    Every configuration of the paper's Tables 4-6 for --dataset (accuracy as printed; Mult-Adds
    and params as mnetcost computes them), one marker and colour per variant, each point
    labelled with α and δ, the baseline (MobileNet α=1 δ=1) ringed, and the Pareto front — no
    other point has lower-or-equal cost and higher-or-equal accuracy, one strictly — drawn as a
    step line. --runs adds your runs as hollow markers (runs that differ only in their seed as
    one point: their mean, with their range as an error bar). --format json also prints
    {"points": [...], "front": [...]}.

    \b
    Examples:
      mnetcost plot --out pareto.png
      mnetcost plot --dataset cifar100 --out pareto100.svg --runs runs/
      mnetcost bench --variant all --alpha 0.25,0.5,1 --delta 1,2,4 --out latency.json
      mnetcost plot --x latency --latency latency.json --out latency.png
      mnetcost plot --x latency --latency latency.json --runtime onnxruntime-int8 --out latency-int8.png
    """
    from mnetcost.errors import MnetcostError
    from mnetcost.analysis.plot import check_output, collect_points, load_latency

    # Everything that can be wrong with the input is checked before anything is drawn or written.
    from mnetcost.files import check_outputs

    check_output(out)
    check_outputs({"--out": out}, {"--latency": latency_file, "--runs": runs_dir})
    if x == "latency" and latency_file is None:
        raise click.UsageError("--x latency needs --latency FILE (write it with `mnetcost bench --out FILE`)")
    if latency_file is not None and x != "latency":
        raise click.UsageError("--latency is only used with --x latency")
    if runtime is not None and latency_file is None:
        raise click.UsageError("--runtime chooses the runtime of --latency FILE (with --x latency)")
    if no_paper and tables:
        raise click.UsageError("--table selects paper rows; it cannot be combined with --no-paper")
    if no_paper and runs_dir is None:
        raise click.UsageError("--no-paper leaves nothing to plot without --runs DIR")
    chosen = {int(t) for t in tables} or None
    latency = load_latency(latency_file, runtime) if latency_file is not None else None
    if latency is not None and runtime is None:  # a file of one runtime: name it on the figure
        runtime = next((item.get("runtime", "torch") for item in latency.values()), None)
    runs = []
    if runs_dir is not None:
        from mnetcost.analysis.sweep import load_runs

        from mnetcost.analysis.runs import mean_over_seeds, progress_text

        runs, warnings = load_runs(runs_dir)
        for line in warnings:
            click.echo(line, err=True)
        runs, behind = mean_over_seeds(runs)  # runs that differ only in their seed: one point, their mean
        if behind:
            click.echo("note: left out of the mean of their seeds, behind the others: " + ", ".join(
                progress_text(item.source, item.epochs, item.epochs_planned) for item in behind), err=True)
    dtype = dtype or "fp32"
    if dtype != "fp32" and x not in ("peak_memory", "weight_bytes"):
        raise click.UsageError("--dtype is only used with --x peak_memory or --x weight_bytes")
    points, warnings = collect_points(dataset, include_paper=not no_paper, runs=runs, convention=convention,
                                      latency=latency, tables=chosen, dtype=dtype)
    if x in ("peak_memory", "weight_bytes"):  # a run whose spec file is gone has no memory figures
        from mnetcost.analysis.plot import describe

        gone = [p for p in points if p["peak_activation_bytes"] is None]
        if gone:
            warnings.append(f"warning: skipping {len(gone)} point(s) whose spec cannot be resolved, so their memory is "
                            f"unknown: {', '.join(describe(p) for p in gone[:4])}")
            points = [p for p in points if p["peak_activation_bytes"] is not None]
    for line in warnings:
        click.echo(line, err=True)
    if not points:
        where = f"in {runs_dir} for {dataset}" if no_paper else ""
        hint = " (measure them with `mnetcost bench`)" if latency is not None else ""
        raise MnetcostError(f"nothing to plot: no points {where}{hint}".replace("  ", " ").strip())

    from mnetcost.analysis.plot import draw, front_of, paper_footnote, points_as_json, save_figure

    front = front_of(points, x)
    figure = draw(points, front, x=x, dataset=dataset, convention=convention, title=title, tables=chosen,
                  footnote=paper_footnote(convention, not no_paper, x, chosen, dtype, runtime=runtime), dtype=dtype)
    save_figure(figure, out)
    click.echo(f"wrote {out} ({len(points)} points, {len(front)} on the front)", err=True)

    from mnetcost.analysis.plot import MEMORY_AXES, x_value
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.cli.render import Column, View, emit, millions

    on_front = {id(p) for p in front}
    memory_key = MEMORY_AXES.get(x)
    rows = [{
        "source": p["source"], "variant": p["variant"], "alpha": p["alpha"], "delta": p["delta"],
        "classes": p.get("classes"), "mult_adds": p["mult_adds"], "params": p["params"],
        "latency_ms": p.get("latency_ms"), "memory": p[memory_key] if memory_key else None,
        "accuracy": p["accuracy"], "on_front": id(p) in on_front,
    } for p in sorted(points, key=lambda p: (p.get("latency_ms", 0) if x == "latency" else x_value(p, x),
                                             -p["accuracy"]))]
    columns = [Column("source", "source"), Column("variant", "variant"),
               Column("alpha", "α", True, format="{:g}".format), Column("delta", "δ", True),
               Column("classes", "classes", show=False),
               Column("mult_adds", "Mult-Adds", True, format=millions), Column("params", "params", True, format=millions)]
    if x == "latency":
        columns.append(Column("latency_ms", "ms/image", True, format="{:.3f}".format, csv="latency_ms_per_image"))
    if memory_key:
        columns.append(Column("memory", f"{'peak RAM' if x == 'peak_memory' else 'weights'} {dtype}", True,
                              format=format_bytes, csv=f"{memory_key}_{dtype}"))
    columns += [Column("accuracy", "accuracy %", True, format=lambda a: f"{100 * a:.1f}"),
                Column("on_front", "front", format=lambda on: "★" if on else "")]
    view = View(title=f"{dataset}: {len(points)} points, {len(front)} on the Pareto front (by {x})",
                columns=columns, rows=rows)
    emit(fmt, points_as_json(points, front), [view])
