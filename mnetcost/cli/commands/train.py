"""``mnetcost train``: train a variant with the paper's recipe into a resumable run folder."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from mnetcost.cli.options import config_options, fail, format_option, require_torch, variant_option

DEVICES = ("auto", "cpu", "cuda")
# Options a resumed run may change; every other option given explicitly must match the run.
MAY_CHANGE = ("epochs", "device", "amp", "compile", "channels_last")


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


@click.command("train")
@variant_option
@config_options(lists=False)
@click.option("--dataset", "-D", default="cifar10", show_default=True, metavar="cifar10|cifar100|PATH",
              help="Official CIFAR (downloaded once, MD5-checked), or a PATH: an extracted official folder, "
                   "an official archive, or an image folder (train/<class>/*.jpg, test/<class>/*.jpg) or a "
                   ".tar.gz/.tar.xz of one.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where downloads and decoded arrays are cached [default: $MNETCOST_DATA or ~/.cache/mnetcost].")
@click.option("--epochs", "-e", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=128, show_default=True,
              help="Global batch (split over torchrun processes).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random crop (pad 4) and horizontal flip; the paper used none.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Dropout before the classifier (the paper's 10 %).")
@click.option("--fmp-mode", type=click.Choice(("tf", "torch")), default="tf", show_default=True,
              help="Fractional max pooling: tf = TensorFlow's algorithm (the paper's), torch = "
                   "nn.FractionalMaxPool2d (for comparison).")
@click.option("--test-draws", type=click.IntRange(min=1), default=1, show_default=True,
              help="Average test predictions over N fixed FMP draws (Graham's test-time averaging); "
                   "needs a variant with FMP layers.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--amp/--no-amp", default=None,
              help="bf16 autocast [default: on for CUDA, off for CPU].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (worth it on CUDA).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="Channels-last memory format (much faster on CPU).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch [default: torch's choice, one per core].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/<variant>-a<alpha>-d<delta>-<dataset>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@format_option
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, dataset, data_dir, epochs, batch_size, lr, seed,
            augment, dropout, fmp_mode, test_draws, device, amp, compile_, channels_last, threads, out, resume,
            quiet, fmt):
    """Train a variant with the paper's recipe (Adam 1e-3, dropout 0.1, no augmentation) on
    CIFAR-10/100 or your images, evaluating on the test set after every epoch.

    The run folder gets config.json, metrics.jsonl, last.pt/best.pt and summary.json (analytic
    Mult-Adds and params, best and final test accuracy). Interrupted runs continue with
    --resume. Under `torchrun --nproc_per_node=N -m mnetcost train ...` it trains with
    DistributedDataParallel (gloo on CPU, NCCL on CUDA).
    """
    from mnetcost.nn import datasets
    from mnetcost.calculator.resolver import resolve

    values = {"variant": variant, "alpha": alpha, "delta": delta, "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "seed": seed, "augment": augment, "dropout": dropout, "fmp_mode": fmp_mode,
              "test_draws": test_draws, "device": device, "amp": amp,
              "compile": compile_, "channels_last": channels_last}
    given = {key for key in values if _given(ctx, "compile_" if key == "compile" else key)}
    if _given(ctx, "dataset"):
        given.add("dataset")
    if dataset not in datasets.OFFICIAL:
        path = Path(dataset).expanduser()
        if not path.exists():
            fail(f"--dataset {dataset!r}: no such file or folder (or use cifar10 / cifar100)")
        dataset = str(path.resolve())
    if out is None:
        if resume:
            fail("--resume needs --out (the run folder to continue)")
        out = Path("runs") / f"{Path(variant).stem}-a{alpha:g}-d{delta}-{datasets.archive_stem(Path(dataset))}"

    # Everything below may import torch; check what can be checked first.
    require_torch("train")
    from mnetcost.nn import distributed as D
    from mnetcost.nn import training as T

    stored = T.check_out_dir(out, resume=True) if resume else None
    if stored is not None:  # a resumed run keeps its own options unless given again
        run_config = stored["config"]
        for key, value in run_config.items():
            if key in values and key not in given:
                values[key] = value
        if "dataset" not in given:
            dataset = run_config["dataset"]
    # The model must resolve before any download (classes follow the data, checked below).
    expected = datasets.OFFICIAL[dataset].classes if dataset in datasets.OFFICIAL else classes
    network = resolve(values["variant"], alpha=values["alpha"], delta=values["delta"], classes=expected,
                      resolution=resolution)
    if values["test_draws"] > 1 and not any(layer.kind == "fmp" for layer in network.layers):
        fail(f"--test-draws {values['test_draws']}: {values['variant']} has no fractional max pooling layer "
             "to draw (use it with fmp or a spec with fmp rows)")
    if not resume:  # after the model: a bad option is reported as such, whatever --out holds
        T.check_out_dir(out, resume=False)

    if threads:
        import torch

        torch.set_num_threads(threads)
    dist = D.from_env()
    want_cuda = values["device"] == "cuda" or (values["device"] == "auto" and _cuda_available())
    if want_cuda and dist.enabled:  # NCCL's object collectives use the current device
        import torch

        torch.cuda.set_device(dist.local_rank % torch.cuda.device_count())
    D.init(dist, "cuda" if want_cuda else "cpu")
    try:
        _train(ctx, T, D, datasets, dist, values, given, dataset, data_dir, classes, resolution, out, stored, quiet,
               fmt)
    finally:
        D.shutdown(dist)


def _download_progress():
    """A one-line download meter on a terminal (nothing when stderr is redirected)."""
    if not sys.stderr.isatty():
        return None
    shown = [-1]

    def report(done: int, total: int | None):
        percent = int(done * 100 / total) if total else -1
        if percent != shown[0]:
            shown[0] = percent
            of = f" of {total / 1e6:.1f} MB ({percent}%)" if total else " MB"
            click.echo(f"\r  {done / 1e6:.1f}{of}", nl=bool(total and done >= total), err=True)

    return report


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _train(ctx, T, D, datasets, dist, values, given, dataset, data_dir, classes, resolution, out, stored, quiet, fmt):
    from mnetcost.cli.render import Column, View, emit

    D.barrier(dist)  # every rank has checked --out before rank 0 writes anything
    log = (lambda message: click.echo(message, err=True)) if (dist.main and not quiet) else (lambda message: None)
    data = None
    error = None
    if dist.main:
        try:
            data = datasets.load_dataset(dataset, data_dir, log=log,
                                         progress=_download_progress() if not quiet else None)
        except datasets.DataError as exc:
            error = str(exc)
    error = D.broadcast(dist, error)
    if error:
        raise datasets.DataError(error)
    if data is None:
        data = datasets.load_dataset(dataset, data_dir)
    if _given(ctx, "classes") and classes != data.classes:
        fail(f"--classes {classes} contradicts the dataset, which has {data.classes} classes "
             f"(classes follow the data; drop --classes)")
    if _given(ctx, "resolution") and (resolution, resolution) != data.resolution:
        fail(f"--resolution {resolution} contradicts the dataset's {data.resolution[0]}x{data.resolution[1]} images")
    config = T.TrainConfig(variant=values["variant"], alpha=values["alpha"], delta=values["delta"],
                           classes=data.classes, resolution=list(data.resolution), dataset=dataset,
                           epochs=values["epochs"], batch_size=values["batch_size"], lr=values["lr"],
                           seed=values["seed"], augment=values["augment"], dropout=values["dropout"],
                           device=values["device"], amp=values["amp"], compile=values["compile"],
                           channels_last=values["channels_last"], world_size=dist.world,
                           fmp_mode=values["fmp_mode"], test_draws=values["test_draws"])
    if stored is not None:
        wrong = T.mismatches(stored["config"], config)
        if wrong:
            fail(f"--resume: the options differ from the run in {out}: {'; '.join(wrong)}")
    try:
        result = T.run(config, data, out, resume_state=stored, quiet=quiet, dist=dist)
    except T.Diverged as exc:
        raise click.ClickException(f"{exc}; the last checkpoint in {out} is intact") from None
    except KeyboardInterrupt:
        if dist.main:
            click.echo(f"mnetcost train: interrupted; {out} holds the last completed epoch; continue with "
                       f"--resume --out {out}", err=True)
        sys.exit(130)
    if not dist.main:
        return
    summary = result.summary
    rows = [{"epoch": r["epoch"], "loss": f"{r['loss']:.4f}", "train_acc": f"{r['train_acc']:.2%}",
             "test_loss": f"{r['test_loss']:.4f}", "test_acc": f"{r['test_acc']:.2%}",
             "seconds": f"{r['seconds']:.1f}", "images_per_s": f"{r['images_per_s']:,.0f}"} for r in result.history]
    view = View(
        title=f"{summary['variant']} α={summary['alpha']:g} δ={summary['delta']} on {summary['dataset']} "
              f"({summary['classes']} classes) -> {out}",
        columns=[Column("epoch", "epoch", True), Column("loss", "loss", True), Column("train_acc", "train acc", True),
                 Column("test_loss", "test loss", True), Column("test_acc", "test acc", True),
                 Column("seconds", "s", True), Column("images_per_s", "img/s", True)],
        rows=rows,
        notes=[f"best test accuracy {summary['best_test_accuracy']:.2%} (epoch {summary['best_epoch']}), final "
               f"{summary['final_test_accuracy']:.2%}; {summary['params']:,} params, {summary['mult_adds']:,} "
               f"Mult-Adds (paper convention); device {summary['device']} x{summary['world_size']}"]
        if result.history else [])
    emit(fmt, summary, [view])
