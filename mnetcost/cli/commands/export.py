"""``mnetcost export``: a model to ONNX (fp32 or int8), checked in ONNX Runtime against PyTorch."""
from __future__ import annotations

from pathlib import Path

import click

from mnetcost.cli.options import (POSITIVE, config_options, fail, format_option, is_given, note_alpha, number,
                                  require_deploy, variant_option)

_MODEL_OPTIONS = ("variant", "alpha", "delta", "classes", "resolution")


@click.command("export")
@variant_option
@config_options(lists=False)
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="A `mnetcost train` run folder: export its checkpoint; the model comes from its config.")
@click.option("--checkpoint", type=click.Choice(("best", "last")), default="best", show_default=True,
              help="Which checkpoint of --run.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, metavar="FILE",
              help="The .onnx file to write (one self-contained file).")
@click.option("--int8", is_flag=True,
              help="Static int8 post-training quantization (ONNX Runtime, QDQ, per-channel weights).")
@click.option("--dataset", "-D", default=None, metavar="cifar10|cifar100|PATH",
              help="Images for the check and the int8 calibration [default: the run's dataset].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where downloads and decoded arrays are cached [default: $MNETCOST_DATA or ~/.cache/mnetcost].")
@click.option("--calibration-images", type=POSITIVE, default=512, show_default=True, metavar="N",
              help="Training images that calibrate the int8 activation ranges.")
@click.option("--tolerance", type=number("tolerance", minimum=0), default=1e-4, show_default=True,
              help="Refuse the export when max |ONNX Runtime - PyTorch| > tolerance x max(1, max |logit|).")
@click.option("--check-images", type=POSITIVE, default=64, show_default=True, metavar="N",
              help="Images compared between ONNX Runtime and PyTorch.")
@click.option("--threads", type=POSITIVE, default=None, metavar="N",
              help="CPU threads for PyTorch and ONNX Runtime [default: as `mnetcost train`: OMP_NUM_THREADS if "
                   "set, else the cores other processes leave idle].")
@format_option
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, run_dir, checkpoint, out, int8, dataset, data_dir,
            calibration_images, tolerance, check_images, threads, fmt):
    """Export a model to ONNX with evaluation semantics: BatchNorm folded into the convs, no
    dropout, fractional max pooling with its fixed evaluation draw as standard operators
    (Gather, Max), opset 18, dynamic batch.

    The file is run in ONNX Runtime and compared with PyTorch's eval output on --check-images
    images; beyond --tolerance the export is refused (exit 1) and nothing is written. Either a
    fresh model (--variant/--alpha/--delta/--classes/--resolution, initial weights) or a trained
    run (--run DIR: its best checkpoint, everything else from the run's config). --int8 quantizes
    statically, calibrated on --calibration-images training images of --dataset (the run's dataset
    by default), preprocessed with the run's mean and std. The checkpoint must be the run's own
    (its run id); --out may not name a run's own file (best.pt, config.json, ...).

    \b
    Examples:
      mnetcost export --variant fmp --alpha 0.25 --delta 2 --out fmp.onnx
      mnetcost export --run runs/fmp-a0.25-d2 --out fmp.onnx
      mnetcost export --run runs/fmp-a0.25-d2 --int8 --out fmp.int8.onnx
    """
    from mnetcost.files import check_target

    check_target(out, "--out")  # also never a run's checkpoint, metrics or config, --run's own or another's
    if run_dir is not None:
        given = [name for name in _MODEL_OPTIONS if is_given(ctx, name)]
        if given:
            fail(f"--run takes the model from the run's config; drop --{given[0]}")
        if not Path(run_dir).is_dir():
            fail(f"--run {run_dir}: " + ("not a folder" if Path(run_dir).exists() else "no such folder"))
    else:
        if is_given(ctx, "checkpoint"):
            fail("--checkpoint needs --run")
        from mnetcost.calculator.resolver import resolve

        note_alpha(alpha)
        resolve(variant, alpha, delta, classes, resolution)  # a bad configuration is named before any work
        if int8 and dataset is None:
            fail("--int8 needs calibration images: pass --dataset (or export a trained --run)")
    if dataset is not None and dataset not in ("cifar10", "cifar100") and not Path(dataset).expanduser().exists():
        fail(f"--dataset {dataset}: no such file or folder")
    require_deploy("export")
    from mnetcost.nn import threads as thread_policy

    threads = thread_policy.apply(thread_policy.choose_threads(threads)).threads

    from mnetcost.deploy import export as EX
    from mnetcost.deploy import pipeline as P
    from mnetcost.files import atomic_write

    if run_dir is not None:
        source = P.run_source(run_dir, checkpoint, dataset=dataset, data_dir=data_dir)
    else:
        source = P.fresh_source(variant, alpha, delta, classes, resolution, dataset=dataset, data_dir=data_dir)
    try:
        exported = P.export_source(source, int8=int8, calibration_images=calibration_images, tolerance=tolerance,
                                   check_images=check_images, threads=threads)
    except EX.ToleranceError as exc:
        raise click.ClickException(f"export refused, nothing written: {exc}") from None
    atomic_write(out, lambda stream: stream.write(exported.data))
    record = {"out": str(out), **exported.record}
    click.echo(f"wrote {out} ({len(exported.data):,} bytes)", err=True)
    _emit(fmt, record)


def _top1(check: dict) -> str:
    """Where ONNX Runtime's top-1 class differs from PyTorch's, say that those are near ties: within
    the tolerance a class can change only where two logits are within twice the difference."""
    if not check["top1_differing"]:
        return "the same top-1 class on every input"
    return (f"top-1 class differs on {check['top1_differing']} of {check['images']} inputs, near ties (their two "
            f"logits within {check['top1_differing_gap']:.2g})")


def _int8_effect(quantization: dict, inputs: str) -> str:
    """What int8 costs: the accuracy of both files on the labelled check images (the top-1
    agreement of an untrained or barely trained model, whose logits are nearly equal, says
    nothing, so it is not shown)."""
    difference = (f"max |int8 − fp32| {quantization['max_abs_diff_vs_fp32']:.3g} "
                  f"(max |logit| {quantization['max_abs_logit_fp32']:.3g})")
    accuracy = quantization.get("check_accuracy")
    if not accuracy:
        return difference
    return (f"accuracy on {inputs}: fp32 {100 * accuracy['fp32']:.1f} %, int8 {100 * accuracy['int8']:.1f} % "
            f"({accuracy['difference_points']:+.1f} points; `mnetcost evaluate --run R --onnx FILE` measures the "
            f"whole test set); {difference}")


def _emit(fmt: str, record: dict) -> None:
    from mnetcost.calculator.memory import exact_bytes
    from mnetcost.cli.render import Column, View, emit, record_view

    meta = record["metadata"]
    weights = record["file_weights"]
    check = record["check"]
    rows = [
        ("file", f"{record['out']} ({record['bytes']:,} bytes)"),
        ("model", f"{meta.get('variant')} α={meta.get('alpha')} δ={meta.get('delta')}, {meta.get('classes')} classes, "
                  f"{'×'.join(str(v) for v in meta.get('resolution', []))}"
                  + (f", run {meta['run']} ({meta['checkpoint']}.pt, epoch {meta['epoch']})" if "run" in meta else
                     ", initial weights")),
        ("format", f"ONNX opset {record['opset']}, {record['dtype']}, exporter {record['exporter']}, "
                   f"onnx {record['onnx']}, onnxruntime {record['onnxruntime']}"),
        ("operators", ", ".join(f"{op} {n}" for op, n in record["ops"].items())),
        ("check", f"max |ORT − PyTorch| = {check['max_abs_diff']:.3g} ≤ {check['allowed_abs_diff']:.3g} "
                  f"(tolerance {check['tolerance']:g} × max(1, max |logit| {check['max_abs_logit']:.3g})) on "
                  f"{check['inputs']}; {_top1(check)}"),
    ]
    if record["dtype"] == "fp32":
        rows.append(("float weights in file", f"{weights['float_weight_elements']:,} elements "
                                              f"(deploy convention: {record['deploy_params']:,} params)"))
        rows.append(("weight bytes", f"file {weights['weight_storage_bytes']:,}, engine fp32 "
                                     f"{record['engine_weight_bytes']['fp32']:,}"))
    else:
        q = record["quantization"]
        rows.append(("int8", f"{q['format']}, weights {q['weights']}, activations {q['activations']}, biases "
                             f"{q['biases']}; calibrated on {q['calibration_images']} training images of "
                             f"{q['calibration_dataset']}"))
        rows.append(("int8 vs fp32", _int8_effect(q, record["check"]["inputs"])))
        rows.append(("weights in file", f"{weights['int8_weight_elements']:,} int8 weights, "
                                        f"{weights['int32_bias_elements']:,} int32 biases "
                                        f"(deploy convention: {record['deploy_params']:,} params)"))
        stored = weights["weight_storage_bytes"]
        rows.append(("weight bytes", f"file {exact_bytes(stored)}: weights+biases {weights['weight_bytes']:,}, "
                                     f"scales {weights['scale_bytes']:,}, zero points {weights['zero_point_bytes']:,}; "
                                     f"engine int8 {exact_bytes(record['engine_weight_bytes']['int8'])}"))
    view = View(title="ONNX export", columns=[Column("quantity", "quantity", wrap=False), Column("value", "value")],
                rows=[{"quantity": k, "value": v} for k, v in rows],
                notes=["The engine counts int8 weights, int32 biases and one fp32 scale per output channel; "
                       "ONNX Runtime's QDQ file also stores the biases' own scales and every zero point."]
                if record["dtype"] == "int8" else [])
    emit(fmt, record, [view], csv_view=record_view(record))
