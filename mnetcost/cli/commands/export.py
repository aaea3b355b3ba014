"""``mnetcost export``: a model to ONNX (fp32 or int8) or to an int8 TensorFlow Lite file, checked against PyTorch."""
from __future__ import annotations

from pathlib import Path

import click

from mnetcost.cli.options import (POSITIVE, config_options, fail, is_given, note_alpha, number, require_deploy,
                                  variant_option)
from mnetcost.cli.render import FORMATS

_MODEL_OPTIONS = ("variant", "alpha", "delta", "classes", "resolution")
FILE_FORMATS = ("onnx", "tflite")


def model_text(meta: dict) -> str:
    """What an exported file holds, from its metadata: the configuration and where the weights came from."""
    return (f"{meta.get('variant')} α={meta.get('alpha')} δ={meta.get('delta')}, {meta.get('classes')} classes, "
            f"{'×'.join(str(v) for v in meta.get('resolution', []))}"
            + (f", run {meta['run']} ({meta['checkpoint']}.pt, epoch {meta['epoch']})" if "run" in meta else
               ", initial weights"))


@click.command("export")
@variant_option
@config_options(lists=False)
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="A `mnetcost train` run folder: export its checkpoint; the model comes from its config.")
@click.option("--checkpoint", type=click.Choice(("best", "last")), default="best", show_default=True,
              help="Which checkpoint of --run.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, metavar="FILE",
              help="The file to write: a .tflite file is TensorFlow Lite (int8), anything else ONNX.")
@click.option("--int8", is_flag=True,
              help="Static int8 post-training quantization (ONNX Runtime, QDQ, per-channel weights).")
@click.option("--dataset", "-D", default=None, metavar="cifar10|cifar100|PATH",
              help="Images for the check and the int8 calibration [default: the run's dataset].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where downloads and decoded arrays are cached [default: $MNETCOST_DATA or ~/.cache/mnetcost].")
@click.option("--calibration-images", type=POSITIVE, default=512, show_default=True, metavar="N",
              help="Training images that calibrate the int8 activation ranges.")
@click.option("--tolerance", type=number("tolerance", minimum=0), default=1e-4, show_default=True,
              help="Refuse the export when max |ONNX Runtime - PyTorch| (TensorFlow Lite: the float32 "
                   "conversion and the Keras model) > tolerance x max(1, max |logit|).")
@click.option("--check-images", type=POSITIVE, default=64, show_default=True, metavar="N",
              help="Images compared between the exported file and PyTorch.")
@click.option("--threads", type=POSITIVE, default=None, metavar="N",
              help="CPU threads for PyTorch and ONNX Runtime [default: as `mnetcost train`: OMP_NUM_THREADS if "
                   "set, else the cores other processes leave idle].")
@click.option("--format", "fmt", type=click.Choice(FORMATS + FILE_FORMATS), default="table", show_default=True,
              help="Output format of the record (json is a stable contract for scripts); onnx or tflite instead "
                   "choose the file format (the record is then a table): tflite writes an int8 TensorFlow "
                   "Lite file, as --out FILE.tflite does.")
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, run_dir, checkpoint, out, int8, dataset, data_dir,
            calibration_images, tolerance, check_images, threads, fmt):
    """Export a model to ONNX with evaluation semantics: BatchNorm folded into the convs, no
    dropout, fractional max pooling with its fixed evaluation draw as standard operators
    (Gather, Max), opset 18, dynamic batch. Or (--format tflite, or --out FILE.tflite) to a
    full-integer int8 TensorFlow Lite file for microcontrollers: a Keras model of the same
    resolved layers with the PyTorch weights (BatchNorm folded), the TensorFlow Lite converter
    (int8 input and output, per-channel int8 weights, calibrated like --int8), FMP as GATHER and
    MAX_POOL_2D builtins; its float32 conversion is checked against PyTorch, the int8 file runs
    in the TensorFlow Lite interpreter, and the record gives the Flash and TensorFlow Lite Micro
    arena the calculator predicts (mnetcost crosscheck --runtime tflm measures them). Every
    built-in exports, the MobileNetV2/V3 family included (residual ADD, squeeze-excite, HARD_SWISH).
    A fresh model exported to TensorFlow Lite without --dataset is calibrated on synthetic images
    (said in the record: the arena and the file's size do not depend on calibration, its
    accuracy does); a --dataset whose images are not the model's size is resized to it (said too).

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
      mnetcost export --run runs/fmp-a0.25-d2 --format tflite --out fmp.tflite
      mnetcost export --variant mobilenet_v2 --alpha 0.35 --resolution 96 --classes 2 --out v2.tflite
    """
    from mnetcost.files import check_target

    file_format = fmt if fmt in FILE_FORMATS else ("tflite" if Path(out).suffix.lower() == ".tflite" else "onnx")
    if fmt == "tflite" and Path(out).suffix.lower() != ".tflite":
        fail(f"--format tflite writes a TensorFlow Lite file: --out must end in .tflite, got {out}")
    if fmt == "onnx" and Path(out).suffix.lower() == ".tflite":
        fail(f"--format onnx writes an ONNX file, but --out {out} ends in .tflite")
    if fmt in FILE_FORMATS:
        fmt = "table"
    tflite = file_format == "tflite"
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
        network = resolve(variant, alpha, delta, classes, resolution)  # a bad configuration is named before any work
        if tflite:
            from mnetcost.calculator.tflite_model import lower

            lower(network)  # so is one the TensorFlow Lite export does not lower
        if int8 and not tflite and dataset is None:
            fail("--int8 needs calibration images: pass --dataset (or export a trained --run)")
    if dataset is not None and dataset not in ("cifar10", "cifar100") and not Path(dataset).expanduser().exists():
        fail(f"--dataset {dataset}: no such file or folder")
    if tflite:
        from mnetcost.deploy import tflite as TL

        TL.require("export --format tflite")
    else:
        require_deploy("export")
    from mnetcost.nn import threads as thread_policy

    threads = thread_policy.apply(thread_policy.choose_threads(threads)).threads

    from mnetcost.deploy import export as EX
    from mnetcost.deploy import pipeline as P
    from mnetcost.files import atomic_write

    if run_dir is not None:
        source = P.run_source(run_dir, checkpoint, dataset=dataset, data_dir=data_dir)
    else:
        source = P.fresh_source(variant, alpha, delta, classes, resolution, dataset=dataset, data_dir=data_dir,
                                resize=tflite)
        if tflite and dataset is None:  # a fresh model: synthetic calibration (the arena and size do not change)
            from mnetcost.deploy import tflite as TL

            TL.synthetic_calibration(source)
    try:
        if tflite:
            from mnetcost.deploy import tflite as TL

            try:
                exported = TL.export_source(source, calibration_images=calibration_images, tolerance=tolerance,
                                            check_images=check_images, threads=threads)
            except TL.ToleranceError as exc:
                raise click.ClickException(f"export refused, nothing written: {exc}") from None
        else:
            exported = P.export_source(source, int8=int8, calibration_images=calibration_images,
                                       tolerance=tolerance, check_images=check_images, threads=threads)
    except EX.ToleranceError as exc:
        raise click.ClickException(f"export refused, nothing written: {exc}") from None
    atomic_write(out, lambda stream: stream.write(exported.data))
    record = {"out": str(out), **exported.record}
    click.echo(f"wrote {out} ({len(exported.data):,} bytes)", err=True)
    (_emit_tflite if tflite else _emit)(fmt, record)


def _emit_tflite(fmt: str, record: dict) -> None:
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.cli.render import Column, View, emit

    meta = record["metadata"]
    check = record["check"]
    q = record["quantization"]
    predicted = record["predicted"]

    def agreement(c):
        return f"max |Δ| {c['max_abs_diff']:.3g} ≤ {c['allowed_abs_diff']:.3g}; {_top1(c)}"

    rows = [
        ("file", f"{record['out']} ({record['bytes']:,} bytes, of which {record['identity_bytes']:,} are its "
                 f"mnetcost metadata; the converter's own file: {record['converter_bytes']:,})"),
        ("model", model_text(meta)),
        ("format", f"TensorFlow Lite int8 (tensorflow {record['tensorflow']}, keras {record['keras']}), "
                   f"{record['operators']} operators, {record['tensors']} tensors"),
        ("operators", ", ".join(f"{op} {n}" for op, n in record["ops"].items())),
        ("Keras vs PyTorch", f"on {check['inputs']}: " + agreement(check["keras"])),
        ("float32 .tflite vs PyTorch", agreement(check["tflite_fp32"])),
        ("int8 vs PyTorch", "in the TensorFlow Lite interpreter, "
                            + _int8_effect(q, check["inputs"], reference="torch")),
        ("int8", f"{q['weights']} weights, {q['activations']} activations, {q['biases']} biases; "
                 + _calibration_text(q)),
        ("Flash (predicted)", f"{predicted['flash_bytes']:,} bytes ({format_bytes(predicted['flash_bytes'])})"),
        ("TFLM arena (predicted)", f"{predicted['arena_bytes']:,} bytes = activations "
                                   f"{predicted['arena_activation_bytes']:,} + persistent "
                                   f"{predicted['arena_persistent_bytes']:,} ({predicted['tflm_version']})"),
    ]
    view = View(title="TensorFlow Lite export", columns=[Column("quantity", "quantity", wrap=False),
                                                         Column("value", "value")],
                rows=[{"quantity": k, "value": v} for k, v in rows],
                notes=["mnetcost crosscheck --runtime tflm loads the file in TensorFlow Lite Micro and compares "
                       "these predictions with the interpreter's own allocation records."])
    emit(fmt, record, [view])


def _calibration_text(quantization: dict) -> str:
    """How the int8 file was calibrated, in words (synthetic images and resized datasets said so)."""
    from mnetcost.deploy.tflite import SYNTHETIC

    count, source = quantization["calibration_images"], quantization["calibration_dataset"]
    if source == SYNTHETIC:
        return f"calibrated on {count} {quantization['calibration']}"
    return f"calibrated on {count} training images of {source}"


def _top1(check: dict) -> str:
    """Where ONNX Runtime's top-1 class differs from PyTorch's, say that those are near ties: within
    the tolerance a class can change only where two logits are within twice the difference."""
    if not check["top1_differing"]:
        return "the same top-1 class on every input"
    return (f"top-1 class differs on {check['top1_differing']} of {check['images']} inputs, near ties (their two "
            f"logits within {check['top1_differing_gap']:.2g})")


def _int8_effect(quantization: dict, inputs: str, reference: str = "fp32") -> str:
    """What int8 costs: the accuracy of the int8 file and of its ``reference`` (the fp32 ONNX file,
    or PyTorch for TensorFlow Lite: ``torch``) on the labelled check images (the top-1 agreement of
    an untrained or barely trained model, whose logits are nearly equal, says nothing, so it is not
    shown)."""
    name, option = ("PyTorch", "--tflite") if reference == "torch" else ("fp32", "--onnx")
    difference = (f"max |int8 − {name}| {quantization[f'max_abs_diff_vs_{reference}']:.3g} "
                  f"(max |logit| {quantization[f'max_abs_logit_{reference}']:.3g})")
    accuracy = quantization.get("check_accuracy")
    if not accuracy:
        return difference
    return (f"accuracy on {inputs}: {name} {100 * accuracy[reference]:.1f} %, int8 {100 * accuracy['int8']:.1f} % "
            f"({accuracy['difference_points']:+.1f} points; `mnetcost evaluate --run R {option} FILE` measures "
            f"the whole test set); {difference}")


def _emit(fmt: str, record: dict) -> None:
    from mnetcost.calculator.memory import exact_bytes
    from mnetcost.cli.render import Column, View, emit, record_view

    meta = record["metadata"]
    weights = record["file_weights"]
    check = record["check"]
    rows = [
        ("file", f"{record['out']} ({record['bytes']:,} bytes)"),
        ("model", model_text(meta)),
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
