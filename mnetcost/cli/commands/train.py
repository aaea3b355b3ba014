"""``mnetcost train``: train a variant as the paper describes (Adam, dropout, no augmentation) into a
resumable run folder.

The run folder's contract (files, states, the lock) is documented at the top of
:mod:`mnetcost.nn.training`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from mnetcost.cli.options import (config_options, fail, format_option, integer, is_given, number, require_torch,
                                  variant_option)

DEVICES = ("auto", "cpu", "cuda")
# Options a resumed run may change; every other option given explicitly must match the run.
MAY_CHANGE = ("epochs", "device", "amp", "compile", "channels_last", "depthwise", "threads")


@click.command("train")
@variant_option
@config_options(lists=False)
@click.option("--dataset", "-D", default="cifar10", show_default=True, metavar="cifar10|cifar100|PATH",
              help="Official CIFAR (downloaded once, MD5-checked), or a PATH: an extracted official folder, "
                   "an official archive, or an image folder (train/<class>/*.jpg, test/<class>/*.jpg) or a "
                   ".tar.gz/.tar.xz of one.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where downloads and decoded arrays are cached [default: $MNETCOST_DATA or ~/.cache/mnetcost].")
@click.option("--epochs", "-e", type=integer("epochs"), default=10, show_default=True,
              help="Epochs to train in all (with --resume: the new total, at least the epochs already done; "
                   "default: the run's own).")
@click.option("--batch-size", "-b", type=integer("batch size"), default=128, show_default=True,
              help="Global batch (split over torchrun processes); the paper gives none, 128 is mnetcost's choice.")
@click.option("--lr", type=number("lr", minimum=0, minimum_open=True), default=1e-3, show_default=True,
              help="Adam learning rate (a finite number > 0); the paper gives none, 1e-3 is Keras's Adam default.")
@click.option("--seed", type=integer("seed", minimum=0), default=0, show_default=True,
              help="Random seed of the initial weights, batch order, dropout, FMP draws and augmentation "
                   "(same seed, same options, same threads: the same run, bit for bit on CPU).")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random crop (pad 4) and horizontal flip; the paper used none.")
@click.option("--dropout", type=number("dropout", minimum=0, maximum=1, maximum_open=True), default=0.1,
              show_default=True, help="Dropout before the classifier (the paper's 10 %).")
@click.option("--fmp-mode", type=click.Choice(("tf", "torch")), default="tf", show_default=True,
              help="Fractional max pooling: tf = TensorFlow's algorithm (the paper's), torch = "
                   "nn.FractionalMaxPool2d (for comparison).")
@click.option("--test-draws", type=integer("test draws"), default=1, show_default=True,
              help="Average test predictions over N fixed FMP draws (Graham's test-time averaging); "
                   "needs a variant with FMP layers.")
@click.option("--bn-stats", type=click.Choice(("precise", "running")), default="precise", show_default=True,
              help="BatchNorm statistics for evaluation: precise = recomputed with the current weights on "
                   "--bn-batches training batches before each evaluation; running = the moving averages of "
                   "training (Keras momentum 0.99, the paper's; they lag the weights in short runs).")
@click.option("--bn-batches", type=integer("bn batches"), default=20, show_default=True,
              help="Training batches (of --batch-size images, no augmentation) for --bn-stats precise.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--amp/--no-amp", default=None,
              help="bf16 autocast [default: on for CUDA, off for CPU].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (worth it on CUDA).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="Channels-last memory format (much faster on CPU).")
@click.option("--depthwise", type=click.Choice(("expand", "grouped")), default="expand", show_default=True,
              help="Depthwise convolutions with delta > 1: expand = multiplier-1 kernels over repeated input "
                   "channels (same outputs, up to 2x faster on CPU), grouped = the plain grouped convolution "
                   "[with --resume: the run's recorded choice; grouped for runs that recorded none].")
@click.option("--threads", type=integer("threads"), default=None,
              help="CPU threads for torch [default: OMP_NUM_THREADS if set, else the cores other processes "
                   "leave idle, sampled at the start; with --resume: the run's recorded threads, so the "
                   "result is bit-identical to an uninterrupted run].")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/<variant>-a<alpha>-d<delta>-<dataset>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@format_option
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, dataset, data_dir, epochs, batch_size, lr, seed,
            augment, dropout, fmp_mode, test_draws, bn_stats, bn_batches, device, amp, compile_, channels_last,
            depthwise, threads, out, resume, quiet, fmt):
    """Train a variant on CIFAR-10/100 or your images, evaluating on the test set after every epoch.

    The paper states Adam, 10 % dropout before the classifier and no data augmentation: those are
    the defaults. It gives no learning rate, batch size or epochs: --lr 1e-3 (Keras's Adam
    default), --batch-size 128 and --epochs 10 are mnetcost's choices.

    The run folder gets config.json, metrics.jsonl, last.pt/best.pt and summary.json (analytic
    Mult-Adds and params, best and final test accuracy). Interrupted runs continue with
    --resume; one process at a time may use a run folder. Under `torchrun --nproc_per_node=N -m
    mnetcost train ...` it trains with DistributedDataParallel (gloo on CPU, NCCL on CUDA).
    """
    from mnetcost.nn import datasets

    values = {"variant": variant, "alpha": alpha, "delta": delta, "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "seed": seed, "augment": augment, "dropout": dropout, "fmp_mode": fmp_mode,
              "test_draws": test_draws, "bn_stats": bn_stats, "bn_batches": bn_batches, "device": device,
              "amp": amp, "compile": compile_, "channels_last": channels_last, "depthwise": depthwise,
              "threads": threads}
    given = {key for key in values if is_given(ctx, "compile_" if key == "compile" else key)}
    if is_given(ctx, "dataset"):
        given.add("dataset")
    if dataset not in datasets.OFFICIAL:
        path = Path(dataset).expanduser()
        if not path.exists():
            fail(f"--dataset {dataset!r}: no such file or folder (or use cifar10 / cifar100)")
        dataset = str(path.resolve())
    if "variant" in given and not _builtin(variant):
        values["variant"] = str(Path(variant).expanduser().resolve())  # a run outlives the working directory
    if out is None:
        if resume:
            fail("--resume needs --out (the run folder to continue)")
        out = Path("runs") / f"{Path(variant).stem}-a{alpha:g}-d{delta}-{datasets.archive_stem(Path(dataset))}"

    # Everything below may import torch; check what can be checked first.
    require_torch("train")
    from mnetcost.calculator.resolver import resolve
    from mnetcost.calculator.spec import parse_spec
    from mnetcost.files import lock_holder
    from mnetcost.nn import distributed as D
    from mnetcost.nn import training as T

    def refuse_if_held():  # the clearest answer while another process uses the folder
        holder = lock_holder(out) if out.is_dir() else None
        if holder:
            raise T.RunError(f"--out {out} is in use by {holder}; nothing was changed")

    if resume:
        refuse_if_held()
    stored = T.check_out_dir(out, resume=True) if resume else None
    spec_toml = None
    if stored is not None:  # a resumed run keeps its own options unless given again
        run_config = stored["config"]
        for key in values:
            if key not in given and (key in run_config or key in T.LEGACY):
                values[key] = run_config.get(key, T.LEGACY.get(key))
        if "dataset" not in given:
            dataset = run_config["dataset"]
        if "variant" not in given:
            spec_toml = run_config.get("spec_toml")  # the model comes from the run, not from a file
    if spec_toml is None:
        spec_toml = T.spec_text(values["variant"])
    spec = parse_spec(spec_toml, str(values["variant"]))
    # The model must resolve before any download (classes follow the data, checked below).
    expected = datasets.OFFICIAL[dataset].classes if dataset in datasets.OFFICIAL else classes
    pixels = resolution
    if stored is not None:
        expected, pixels = stored["config"]["classes"], stored["config"]["resolution"]
    network = resolve(spec, alpha=values["alpha"], delta=values["delta"], classes=expected, resolution=pixels)
    datasets.check_channels(spec.in_channels, f"--variant {values['variant']}")  # every source is RGB
    if values["test_draws"] > 1 and not any(layer.kind == "fmp" for layer in network.layers):
        fail(f"--test-draws {values['test_draws']}: {values['variant']} has no fractional max pooling layer "
             "to draw (use it with fmp or a spec with fmp rows)")
    if stored is not None:
        _check_resume(ctx, T, stored, values, dataset, spec_toml, out, quiet)
        done = stored["_epochs_done"]
        summary = T._read_json(out / "summary.json")
        if done >= values["epochs"] == stored["config"]["epochs"] and isinstance(summary, dict) \
                and summary.get("run_id", stored.get("run_id")) == stored.get("run_id") and T._done(summary):
            click.echo(f"mnetcost train: {out} is complete ({done} of {values['epochs']} epochs); nothing to "
                       "train (raise --epochs to continue it)", err=True)
            _report(fmt, summary, stored["_history"], out)
            return
    else:  # after the model: a bad option is reported as such, whatever --out holds
        refuse_if_held()
        T.check_out_dir(out, resume=False)

    from mnetcost.nn import threads as thread_policy

    # --threads N (or the resumed run's), else OMP_NUM_THREADS, else the cores other processes leave
    # idle: a torch thread on a busy core stalls every OpenMP barrier (mnetcost/nn/threads.py)
    thread_choice = thread_policy.apply(thread_policy.choose_threads(values["threads"]))
    dist = D.from_env()
    if dist.main and not quiet and thread_choice.source == "idle-cores":
        click.echo(f"mnetcost train: {thread_choice.describe()} CPU threads; --threads N to choose", err=True)
    want_cuda = values["device"] == "cuda" or (values["device"] == "auto" and _cuda_available())
    if want_cuda and dist.enabled:  # NCCL's object collectives use the current device
        import torch

        torch.cuda.set_device(dist.local_rank % torch.cuda.device_count())
    D.init(dist, "cuda" if want_cuda else "cpu")
    hold = _Hold(out, resume)
    try:
        error = None
        if dist.main:
            try:
                stored = hold.take(T, stored)
            except T.RunError as exc:
                error = str(exc)
        error = D.broadcast(dist, error)  # every rank stops, or none
        if error:
            raise T.RunError(error)
        _train(ctx, T, D, datasets, dist, values, given, dataset, data_dir, classes, resolution, out, stored, quiet,
               fmt, spec_toml, hold)
    finally:
        hold.release()
        D.shutdown(dist)


def _builtin(variant: str) -> bool:
    from mnetcost.calculator.spec import BUILTIN_VARIANTS

    return variant in BUILTIN_VARIANTS


def _check_resume(ctx, T, stored, values, dataset, spec_toml, out, quiet=False) -> None:
    """Before any data is loaded: the options given and the data (its fingerprint, or its path
    for a run that recorded none) must be the run's (mnetcost.identity, ``same-run``), and
    --epochs may not plan fewer epochs than the run has done."""
    done = stored["_epochs_done"]
    if values["epochs"] < done:
        fail(f"--epochs {values['epochs']}: the run in {out} has already done {done} epochs; plan at least "
             f"{done} (nothing was changed)")
    run_config = stored["config"]
    config = T.TrainConfig(**{**{key: value for key, value in values.items() if key != "threads"},
                              "classes": run_config["classes"], "resolution": list(run_config["resolution"]),
                              "dataset": dataset, "world_size": _world(), "spec_toml": spec_toml})
    check = T.mismatches(stored, config)
    if not check.same:
        fail(f"--resume: the options differ from the run in {out}: {check.text()}")
    if check.unchecked and not quiet and _main_process():
        click.echo(f"note: not compared, as the run in {out} does not record it: "
                   f"{'; '.join(check.unchecked)}", err=True)


def _world() -> int:
    from mnetcost.nn import distributed as D

    return D.from_env().world


def _main_process() -> bool:
    from mnetcost.nn import distributed as D

    return D.from_env().main


class _Hold:
    """The run folder's lock for the life of the command (rank 0 only), and the undoing of a failed
    start: a folder this command created is removed again when nothing of a run is left in it."""

    def __init__(self, out: Path, resume: bool):
        self.out, self.resume, self.lock, self.created = Path(out), resume, None, []

    def take(self, T, stored):
        from mnetcost.files import RunLocked, run_lock

        folder = self.out.absolute()
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        lock = run_lock(self.out, "mnetcost train" + (" --resume" if self.resume else ""))
        try:
            lock.__enter__()
        except RunLocked as exc:
            raise T.RunError(f"--out {self.out} is in use by {exc.holder}; nothing was changed") from None
        except OSError as exc:
            self.created = missing
            self.cleanup()
            raise T.RunError(f"--out {self.out}: cannot create or lock the run folder: "
                             f"{exc.strerror or exc}") from None
        self.lock, self.created = lock, missing
        # Under the lock, look again: another process may have changed the folder since the checks.
        again = T.check_out_dir(self.out, resume=self.resume)
        if self.resume and (again.get("run_id"), again["_epochs_done"]) != (stored.get("run_id"),
                                                                            stored["_epochs_done"]):
            raise T.RunError(f"--resume: the run in {self.out} changed while this command started; run it again")
        return again

    def release(self):
        self.cleanup()
        if self.lock is not None:
            self.lock.__exit__(None, None, None)
            self.lock = None

    def cleanup(self):
        """Remove the folders this command created if they hold nothing but the lock file."""
        from mnetcost.files import LOCK_NAME

        for folder in self.created:
            try:
                names = {p.name for p in folder.iterdir()}
            except OSError:
                continue
            if names <= {LOCK_NAME}:
                if names:
                    (folder / LOCK_NAME).unlink(missing_ok=True)  # still held: nobody else is inside
                try:
                    folder.rmdir()
                except OSError:
                    break
        self.created = []


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


def _train(ctx, T, D, datasets, dist, values, given, dataset, data_dir, classes, resolution, out, stored, quiet, fmt,
           spec_toml, hold):
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
    if is_given(ctx, "classes") and classes != data.classes:
        fail(f"--classes {classes} contradicts the dataset, which has {data.classes} classes "
             f"(classes follow the data; drop --classes)")
    if is_given(ctx, "resolution") and (resolution, resolution) != data.resolution:
        fail(f"--resolution {resolution} contradicts the dataset's {data.resolution[0]}x{data.resolution[1]} images")
    config = T.TrainConfig(variant=values["variant"], alpha=values["alpha"], delta=values["delta"],
                           classes=data.classes, resolution=list(data.resolution), dataset=dataset,
                           epochs=values["epochs"], batch_size=values["batch_size"], lr=values["lr"],
                           seed=values["seed"], augment=values["augment"], dropout=values["dropout"],
                           device=values["device"], amp=values["amp"], compile=values["compile"],
                           channels_last=values["channels_last"], depthwise=values["depthwise"],
                           world_size=dist.world,
                           fmp_mode=values["fmp_mode"], test_draws=values["test_draws"],
                           bn_stats=values["bn_stats"], bn_batches=values["bn_batches"], spec_toml=spec_toml)
    if stored is not None:
        check = T.mismatches(stored, config, data)
        if not check.same:
            fail(f"--resume: the options or the data differ from the run in {out}: {check.text()}")
    try:
        result = T.run(config, data, out, resume_state=stored, quiet=quiet, dist=dist)
    except (T.Diverged, T.SaveError) as exc:
        raise click.ClickException(str(exc)) from None  # exit 1: the run failed, the options were fine
    except T.Interrupted as exc:
        if dist.main:
            click.echo(f"mnetcost train: interrupted; {T.kept(out, exc.saved_epoch)}", err=True)
        sys.exit(130)
    if dist.main:
        _report(fmt, result.summary, result.history, out)


def _report(fmt, summary, history, out) -> None:
    from mnetcost.cli.render import Column, View, emit

    rows = history
    loss, percent = "{:.4f}".format, "{:.2%}".format
    bn = summary.get("bn_stats", "running")
    view = View(
        title=f"{summary['variant']} α={summary['alpha']:g} δ={summary['delta']} on {summary['dataset']} "
              f"({summary['classes']} classes) -> {out}",
        columns=[Column("epoch", "epoch", True), Column("loss", "loss", True, format=loss),
                 Column("train_acc", "train acc", True, format=percent),
                 Column("test_loss", "test loss", True, format=loss),
                 Column("test_acc", "test acc", True, format=percent),
                 Column("seconds", "s", True, format="{:.1f}".format),
                 Column("images_per_s", "img/s", True, format="{:,.0f}".format)],
        rows=rows,
        notes=[f"best test accuracy {summary['best_test_accuracy']:.2%} (epoch {summary['best_epoch']}), final "
               f"{summary['final_test_accuracy']:.2%}; {summary['params']:,} params, {summary['mult_adds']:,} "
               f"Mult-Adds (paper convention); device {summary['device']} x{summary['world_size']}; "
               f"BatchNorm statistics for evaluation: {bn}"
               + (f" ({summary.get('bn_batches')} training batches)" if bn == "precise" else "")]
        if history else [])
    emit(fmt, summary, [view])
