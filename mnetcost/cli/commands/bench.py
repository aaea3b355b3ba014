"""``mnetcost bench``: measured inference latency and throughput of one or many configurations."""
from __future__ import annotations

import click

from mnetcost.cli.options import (ALPHA_LIST, CLASSES, DELTA_LIST, POSITIVE, RESOLUTION, convention_option, format_option,
                              integer, note_alpha, require_torch)


@click.command("bench")
@click.option("--variant", "-v", default="base", show_default=True, metavar="all|base,mp3,fmp|PATH",
              help="Variants: all, one, or a comma list (names or spec files).")
@click.option("--alpha", "-a", "alphas", type=ALPHA_LIST, default="1", show_default=True,
              help="Width multipliers (comma list or start:stop:step).")
@click.option("--delta", "-d", "deltas", type=DELTA_LIST, default="1", show_default=True,
              help="Depth multipliers δ (comma list).")
@click.option("--classes", "-c", type=CLASSES, default=10, show_default=True, help="Number of classes.")
@click.option("--resolution", "-r", type=RESOLUTION, default=32, show_default=True, help="Input size in pixels.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
              help="Where to run (auto: CUDA when available).")
@click.option("--batch-size", type=integer("batch size", minimum=0), default=64, show_default=True,
              help="Batch for the throughput figure (images/s); 0 or 1 skips it.")
@click.option("--warmup", type=integer("warmup", minimum=0), default=10, show_default=True,
              help="Untimed forward passes before timing.")
@click.option("--repeats", type=integer("repeats", minimum=1), default=30, show_default=True,
              help="Timed forward passes; the median is reported.")
@click.option("--threads", type=POSITIVE, default=None, metavar="N",
              help="CPU threads for torch and ONNX Runtime [default: as `mnetcost train`: OMP_NUM_THREADS if set, "
                   "else the cores other processes leave idle; recorded with the results].")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="Model and input in torch.channels_last memory format (as `mnetcost train` does; "
                   "much faster on CPU).")
@click.option("--fmp-mode", type=click.Choice(("tf", "torch")), default="tf", show_default=True,
              help="Fractional max pooling implementation of the fmp variant.")
@click.option("--runtime", "runtime_text", default="torch", show_default=True,
              metavar="torch,onnxruntime,onnxruntime-int8|all",
              help="Runtimes, timed in the same rounds: eager PyTorch, ONNX Runtime fp32, ONNX Runtime static "
                   "int8 (the models `mnetcost export` writes; needs mnetcost[deploy]).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the results as JSON (for `mnetcost plot --x latency --latency FILE`).")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also draw latency against Mult-Adds (.png, .svg or .pdf).")
@convention_option
@format_option
def command(variant, alphas, deltas, classes, resolution, device, batch_size, warmup, repeats, threads,
            channels_last, fmp_mode, runtime_text, out, plot_file, convention, fmt):
    """Measure inference latency (ms per image at batch 1) and throughput (images/s at
    --batch-size) for every combination of --variant, --alpha and --delta.

    Each figure is the median of --repeats timed passes after --warmup untimed ones, in eval
    mode under torch.inference_mode(). --runtime times each configuration in several runtimes
    in the same interleaved rounds (ONNX Runtime on the CPU with PyTorch's thread count). The JSON (--format json, or --out FILE) records the device,
    torch version and thread count beside the results. Timings depend on the machine and its
    load; compare numbers measured in one run.

    \b
    Examples:
      mnetcost bench --variant fmp --alpha 0.25 --delta 2
      mnetcost bench --variant all --alpha 0.25,0.5,1 --delta 1,2,4 --out latency.json --plot latency.png
      mnetcost bench --variant all --alpha 0.25,0.5 --delta 1,2 --runtime torch,onnxruntime,onnxruntime-int8
    """
    from mnetcost.files import check_outputs, write_json
    from mnetcost.calculator.resolver import resolve
    from mnetcost.analysis.sweep import parse_variants

    # Check everything before the first (slow) measurement: both outputs writable, not one file.
    if plot_file is not None:
        from mnetcost.analysis.plot import image_format

        image_format(plot_file, "--plot")
    check_outputs({"--out": out, "--plot": plot_file})
    variants = parse_variants(variant)
    note_alpha(alphas)
    configs = [(v, a, d, classes, resolution) for v in variants for a in alphas for d in deltas]
    for config in configs:
        resolve(*config)  # raises a one-line ConfigError (e.g. a layer with 0 channels) before timing
    from mnetcost.deploy.latency import parse_runtimes

    runtimes = parse_runtimes(runtime_text)
    deployed = [r for r in runtimes if r != "torch"]
    if deployed and fmp_mode == "torch" and any(layer.kind == "fmp" for c in configs for layer in resolve(*c).layers):
        raise click.UsageError(f"--runtime {','.join(deployed)} needs --fmp-mode tf: nn.FractionalMaxPool2d "
                               "has no ONNX form")
    if deployed:
        from mnetcost.cli.options import require_deploy

        require_deploy("bench --runtime " + ",".join(deployed))
    require_torch("bench")

    from mnetcost.nn import threads as thread_policy
    from mnetcost.nn.latency import pick_device, run_bench

    pick_device(device)
    # a thread on a core another process keeps busy stalls every OpenMP barrier: on a busy 2-core
    # machine 2 threads measured 35 ms/img where 1 thread measured 4 ms (mnetcost/nn/threads.py)
    thread_choice = thread_policy.apply(thread_policy.choose_threads(threads))
    threads = thread_choice.threads

    if len(configs) > 1 or len(runtimes) > 1:
        click.echo(f"measuring {len(configs)} configurations"
                   + (f" in {len(runtimes)} runtimes" if len(runtimes) > 1 else "") + f", {repeats} timed passes each"
                   + (f" at batch 1 and {batch_size}" if batch_size > 1 else "") + " ...", err=True)
    if runtimes == ["torch"]:
        result = run_bench(configs, device=device, batch_size=batch_size, warmup=warmup, repeats=repeats,
                           threads=threads, channels_last=channels_last, fmp_mode=fmp_mode, convention=convention)
    else:
        from mnetcost.deploy.latency import run_bench_runtimes

        result = run_bench_runtimes(configs, runtimes, device=device, batch_size=batch_size, warmup=warmup,
                                    repeats=repeats, threads=threads, channels_last=channels_last,
                                    fmp_mode=fmp_mode, convention=convention)
    result["thread_policy"] = thread_choice.as_dict()
    if out is not None:
        write_json(out, result)
        click.echo(f"wrote {out}", err=True)
    if plot_file is not None:
        from mnetcost.analysis.plot import draw_latency, save_figure

        save_figure(draw_latency(result), plot_file)
        click.echo(f"wrote {plot_file}", err=True)

    from mnetcost.cli.render import Column, View, emit, millions

    rows = [{**r, "spread": (r["latency_ms_p10"], r["latency_ms_p90"])} for r in result["results"]]
    milliseconds = "{:.3f}".format
    columns = [Column("runtime", "runtime", show=len(runtimes) > 1), Column("variant", "variant"),
               Column("alpha", "α", True, format="{:g}".format), Column("delta", "δ", True),
               Column("mult_adds", "Mult-Adds", True, format=millions),
               Column("latency_ms", "ms/img", True, format=milliseconds, csv="latency_ms_per_image"),
               Column("spread", "p10–p90", True, format=lambda pair: f"{pair[0]:.3f}–{pair[1]:.3f}", csv=None),
               Column("latency_ms_p10", "p10", csv="latency_ms_per_image_p10", show=False),
               Column("latency_ms_p90", "p90", csv="latency_ms_per_image_p90", show=False),
               Column("images_per_s", f"img/s@{batch_size}", True, format="{:,.0f}".format,
                      csv=f"images_per_s_at_batch_{batch_size}"),
               Column("gmacs_per_s", "GMAC/s", True, format="{:.2f}".format)]
    if batch_size <= 1:  # no throughput measured
        columns = [c for c in columns if c.key != "images_per_s"]
    title = (f"Inference on {result['device']} ({result['device_name']}), {thread_choice.describe()} threads, "
             f"torch {result['torch']}" + (f", onnxruntime {result['onnxruntime']}" if "onnxruntime" in result else ""))
    notes = [f"ms/img: median latency at batch 1 of {repeats} timed passes after {warmup} warm-up passes "
             "(p10–p90: its spread)" + (f"; img/s@{batch_size}: throughput at batch {batch_size}" if batch_size > 1
                                        else "") + "; GMAC/s = Mult-Adds × images/s achieved."]
    emit(fmt, result, [View(title=title, columns=columns, rows=rows, notes=notes)])
