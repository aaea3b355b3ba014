"""``mnetcost evaluate``: test accuracy of a run's checkpoint in PyTorch, of ONNX files in ONNX Runtime and of
int8 TensorFlow Lite files in the TensorFlow Lite interpreter and in TensorFlow Lite Micro."""
from __future__ import annotations

from pathlib import Path

import click

from mnetcost.cli.options import POSITIVE, fail, format_option, require_deploy, require_torch


@click.command("evaluate")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True, metavar="DIR",
              help="A `mnetcost train` run folder (its config gives the model, dataset, mean and std).")
@click.option("--onnx", "onnx_files", type=click.Path(path_type=Path), multiple=True, metavar="FILE",
              help="An ONNX file (fp32 or int8) to evaluate in ONNX Runtime; repeat for several.")
@click.option("--tflite", "tflite_files", type=click.Path(path_type=Path), multiple=True, metavar="FILE",
              help="An int8 .tflite file (mnetcost export --format tflite) to evaluate in the --runtime "
                   "interpreters; repeat for several.")
@click.option("--runtime", "runtimes", default="tflite,tflm", show_default=True, metavar="tflite,tflm",
              help="Interpreters for the --tflite files: tflite (TensorFlow Lite) and/or tflm (TensorFlow Lite "
                   "Micro, one image per invoke, in child processes).")
@click.option("--torch/--no-torch", "with_torch", default=None,
              help="Also evaluate the checkpoint in PyTorch [default: only when no --onnx or --tflite is given].")
@click.option("--checkpoint", type=click.Choice(("best", "last")), default="best", show_default=True,
              help="Which checkpoint of --run PyTorch evaluates.")
@click.option("--dataset", "-D", default=None, metavar="cifar10|cifar100|PATH",
              help="Test images [default: the run's dataset]; always preprocessed with the run's mean and std.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where downloads and decoded arrays are cached [default: $MNETCOST_DATA or ~/.cache/mnetcost].")
@click.option("--batch-size", type=POSITIVE, default=500, show_default=True, help="Images per forward pass.")
@click.option("--limit", type=POSITIVE, default=None, metavar="N", help="Only the first N test images.")
@click.option("--threads", type=POSITIVE, default=None, metavar="N",
              help="CPU threads for PyTorch and ONNX Runtime [default: as `mnetcost train`: OMP_NUM_THREADS if "
                   "set, else the cores other processes leave idle].")
@format_option
@click.pass_context
def command(ctx, run_dir, onnx_files, tflite_files, runtimes, with_torch, checkpoint, dataset, data_dir, batch_size,
            limit, threads, fmt):
    """Test-set accuracy of a trained run: its checkpoint in PyTorch (--run DIR), ONNX files in
    ONNX Runtime (--onnx FILE ...) and int8 TensorFlow Lite files in TensorFlow Lite and
    TensorFlow Lite Micro (--tflite FILE ...), on the same images with the same preprocessing
    (the per-channel mean and std of the run's training images, as the run recorded them). FMP
    layers use their fixed evaluation draw in all of them. JSON: one object per evaluation (a list
    for several) with at least runtime, dtype, accuracy, images.

    Everything is checked against the run first (exit 2, one line): the checkpoint must be the
    run's own (its run id), an ONNX or TensorFlow Lite file must be a model `mnetcost export --run`
    wrote from this run (its mnetcost metadata), and a --dataset must have the run's classes:
    listed in another order, its labels are mapped to the run's by class name (said on stderr);
    other classes are refused.

    \b
    Examples:
      mnetcost evaluate --run runs/fmp-a0.25-d2
      mnetcost evaluate --run runs/fmp-a0.25-d2 --torch --onnx fmp.onnx --onnx fmp.int8.onnx
      mnetcost evaluate --run runs/fmp-a0.25-d2 --torch --tflite fmp.tflite --runtime tflite,tflm
    """
    from mnetcost.cli.options import is_given
    if not Path(run_dir).is_dir():
        fail(f"--run {run_dir}: " + ("not a folder" if Path(run_dir).exists() else "no such folder"))
    for path in onnx_files:
        if not Path(path).is_file():
            fail(f"--onnx {path}: " + ("not a file" if Path(path).exists() else "no such file"))
    for path in tflite_files:
        if not Path(path).is_file():
            fail(f"--tflite {path}: " + ("not a file" if Path(path).exists() else "no such file"))
    chosen = [name.strip() for name in runtimes.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in TFLITE_RUNTIMES]
    if unknown or not chosen:
        fail(f"--runtime {runtimes}: choose from {', '.join(TFLITE_RUNTIMES)} (comma list)")
    if is_given(ctx, "runtimes") and not tflite_files:
        fail("--runtime chooses the interpreters of --tflite files: pass --tflite FILE")
    if dataset is not None and dataset not in ("cifar10", "cifar100") and not Path(dataset).expanduser().exists():
        fail(f"--dataset {dataset}: no such file or folder")
    if with_torch is None:
        with_torch = not onnx_files and not tflite_files
    if not with_torch and not onnx_files and not tflite_files:
        fail("--no-torch without --onnx or --tflite leaves nothing to evaluate")
    if onnx_files:
        require_deploy("evaluate --onnx")
    else:
        require_torch("evaluate")
    if tflite_files:
        from mnetcost.deploy import tflite as TL

        TL.require("evaluate --tflite")
    from mnetcost.nn import threads as thread_policy

    # a thread on a core another process keeps busy stalls every OpenMP barrier (mnetcost/nn/threads.py)
    thread_choice = thread_policy.apply(thread_policy.choose_threads(threads))
    threads = thread_choice.threads

    from mnetcost.deploy import evaluate as EV

    run = EV.open_run(run_dir, checkpoint)
    model = EV.run_model(run)
    network = model.network
    sessions = []
    if onnx_files:
        from mnetcost.deploy import runtime as R
        from mnetcost.deploy.export import metadata_of

        for path in onnx_files:  # every file is checked before the (slow) data and evaluation
            proto = R.load_onnx(path)
            sess = R.session(proto, threads)
            shape = R.input_shape(sess)
            expected = (network.spec.in_channels, *network.resolution)
            if tuple(shape[1:]) != tuple(expected):
                fail(f"--onnx {path}: its input is {list(shape)}, the run's model takes [N, "
                     f"{', '.join(map(str, expected))}]")
            out_shape = sess.get_outputs()[0].shape
            if len(out_shape) != 2 or out_shape[1] != run.config.classes:
                fail(f"--onnx {path}: its output is {list(out_shape)}, the run has {run.config.classes} classes")
            EV.check_file_metadata(run, metadata_of(proto), path)  # the run's own model, not just its shapes
            sessions.append((path, proto, sess))
    tflite_models = []
    for path in tflite_files:  # every file is checked before the (slow) data and evaluation
        data_bytes = _tflite_file(path, network, run.config.classes)
        meta = TL.identity_of(data_bytes)
        EV.check_file_metadata(run, meta, path, "--tflite")
        tflite_models.append((path, data_bytes, meta))
    data = EV.run_dataset(run, data_dir) if dataset is None else EV.load_data(dataset, data_dir)
    what = f"--dataset {dataset}" if dataset is not None else f"the run's dataset {run.config.dataset}"
    EV.check_fits(data, run.config.classes, network.resolution, what, network.spec.in_channels)
    labels, note = EV.test_labels(run, data, what)
    normalization, source_note = EV.run_normalization(run, data_dir, given=data if dataset is not None else None)
    for line in (note, source_note):
        if line:
            click.echo(line if line.startswith("note: ") else f"note: {line}", err=True)
    images = data.test_x
    if limit:
        images, labels = images[:limit], labels[:limit]

    common = {"run": str(run_dir), "dataset": data.name, "variant": run.config.variant, "alpha": run.config.alpha,
              "delta": run.config.delta, "threads": threads, "thread_policy": thread_choice.as_dict()}
    results = []
    if with_torch:
        acc = EV.accuracy_torch(model, images, labels, normalization, batch_size)
        results.append(_row(acc, common, checkpoint=checkpoint, epoch=run.epoch, onnx=None))
    for path, proto, sess in sessions:
        from mnetcost.deploy.export import metadata_of

        acc = EV.accuracy_onnx(sess, EV.file_dtype(proto), images, labels, normalization, batch_size)
        meta = metadata_of(proto)
        results.append(_row(acc, common, checkpoint=meta.get("checkpoint"), epoch=meta.get("epoch"), onnx=str(path)))

    for path, data_bytes, meta in tflite_models:
        for runtime in chosen:
            acc = TL.accuracy(data_bytes, path, runtime, images, labels, normalization, threads)
            results.append(_row(acc, common, checkpoint=meta.get("checkpoint"), epoch=meta.get("epoch"), onnx=None)
                           | {"tflite": str(path)})

    from mnetcost.cli.render import Column, View, emit

    rows = [{**r, "model": r.get("tflite") or r["onnx"] or f"{r['checkpoint']}.pt",
             "weights": _weights_label(r)} for r in results]
    sources = sorted({(str(r["checkpoint"]), str(r["epoch"])) for r in results})
    if len(sources) > 1:  # not one set of weights: part of a gap between rows is training, not the export
        click.echo("note: these models come from different checkpoints (" + "; ".join(
            f"{row['model']}: {row['weights']}" for row in rows) + "): accuracy differences between them include "
            "training between those epochs, not only the export", err=True)
    same = (f"same weights ({rows[0]['weights']})" if len(sources) == 1
            else "NOT the same weights (see the weights column)")
    view = View(title=f"Test accuracy of {run_dir} on {data.name} ({len(labels):,} images)",
                columns=[Column("runtime", "runtime"), Column("dtype", "dtype"), Column("model", "model"),
                         Column("weights", "weights"),
                         Column("accuracy", "accuracy", True, format=lambda a: f"{100 * a:.2f} %"),
                         Column("correct", "correct", True), Column("images", "images", True),
                         Column("seconds", "s", True, format="{:.1f}".format)],
                rows=rows,
                notes=[f"Same images, same preprocessing (the run's training mean and std), {same}; FMP layers "
                       "use their fixed evaluation draw.",
                       f"CPU threads: {thread_choice.describe()}; --threads N to choose."]
                + (["TensorFlow Lite files: int8 input quantized with the file's own scale and zero point, "
                    "one image per invoke; tflm runs TensorFlow Lite Micro's reference kernels in child "
                    "processes."] if tflite_models else []))
    emit(fmt, results[0] if len(results) == 1 else results, [view])


TFLITE_RUNTIMES = ("tflite", "tflm")


def _tflite_file(path, network, classes: int) -> bytes:
    """The bytes of an int8 .tflite file whose input and output fit the run's model (one-line errors)."""
    from mnetcost.deploy import tflite as TL

    data = Path(path).read_bytes()
    try:
        model = TL.read_model(data)
        sub = model.subgraphs[0]
        shape_in = [int(v) for v in sub.tensors[sub.inputs[0]].shape]
        shape_out = [int(v) for v in sub.tensors[sub.outputs[0]].shape]
    except Exception:  # noqa: BLE001 - a file that is not a TFLite flatbuffer raises anything
        fail(f"--tflite {path}: not a TensorFlow Lite model")
    expected = [1, *network.resolution, network.spec.in_channels]
    if shape_in != expected:
        fail(f"--tflite {path}: its input is {shape_in}, the run's model takes {expected} (NHWC)")
    if shape_out != [1, classes]:
        fail(f"--tflite {path}: its output is {shape_out}, the run has {classes} classes")
    if TL.io_quantization(data)[0] is None:
        fail(f"--tflite {path}: not an int8 file (export it with mnetcost export --format tflite)")
    return data


def _weights_label(row: dict) -> str:
    """Which weights a row's model holds: ``best.pt, epoch 3`` (a file: the checkpoint it was made from)."""
    checkpoint = f"{row['checkpoint']}.pt" if row.get("checkpoint") else "checkpoint not recorded"
    return f"{checkpoint}, epoch {row['epoch']}" if row.get("epoch") is not None else checkpoint


def _row(acc, common: dict, **extra) -> dict:
    return {"runtime": acc.runtime, "dtype": acc.dtype, "accuracy": acc.accuracy, "correct": acc.correct,
            "images": acc.images, **common, **extra, "seconds": round(acc.seconds, 3)}
