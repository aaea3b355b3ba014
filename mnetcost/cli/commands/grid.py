"""``mnetcost grid``: many ``mnetcost train`` runs, resumable, shardable, locally or on Ray."""
from __future__ import annotations

import copy
from pathlib import Path

import click

from mnetcost.cli.options import ALPHA_LIST, DELTA_LIST, fail, format_option, integer, is_given, number, require_extra
from mnetcost.cli.commands import train as train_module

# train's options the grid sets itself (per run, or for the grid as a whole); every other option of
# `mnetcost train` is offered by `grid` too and passed to every run when given.
OWN = {"variant", "alpha", "delta", "seed", "dataset", "out", "resume", "quiet", "fmt"}


def _forwarded_params() -> list[click.Parameter]:
    params = []
    for param in train_module.command.params:
        if not isinstance(param, click.Option) or param.name in OWN:
            continue
        param = copy.copy(param)
        param.help = f"[train] {param.help or ''}".rstrip()
        params.append(param)
    return params


FORWARDED = _forwarded_params()


def _long_name(param: click.Option) -> str:
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])


def _as_argv(param: click.Option, value) -> list[str]:
    """One given option of train as command-line words again (paths made absolute, for workers
    that start elsewhere)."""
    if param.is_flag:
        if param.secondary_opts:
            return [_long_name(param) if value else param.secondary_opts[0]]
        return [_long_name(param)] if value else []
    values = value if param.multiple else [value]
    words = []
    for item in values:
        words += [_long_name(param), str(Path(item).absolute()) if isinstance(item, Path) else str(item)]
    return words


def _parsed(parser, option: str, text):
    try:
        return parser(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


@click.command("grid")
@click.option("--paper-tables", "paper_tables", default=None, metavar="4,5,6",
              help="The configurations of the paper's Tables 4 (base), 5 (mp3), 6 (fmp) for the dataset's "
                   "classes, the baseline once; --variant/--alpha/--delta then keep a subset.")
@click.option("--variant", "-v", "variants", default=None, metavar="all|base,mp3,fmp|PATH",
              help="Variants (comma list, 'all', or spec files): with --paper-tables a filter, else one axis "
                   "of the product [default: base].")
@click.option("--alpha", "-a", "alphas", type=ALPHA_LIST, default=None,
              help="Width multipliers (comma list or start:stop:step): a filter or an axis [default: 1].")
@click.option("--delta", "-d", "deltas", type=DELTA_LIST, default=None,
              help="Depth multipliers (comma list): a filter or an axis [default: 1].")
@click.option("--seeds", default="0", show_default=True, metavar="0,1|0-4",
              help="Seeds: one run folder per configuration and seed.")
@click.option("--dataset", "-D", default="cifar10", show_default=True, metavar="cifar10|cifar100|PATH",
              help="As for train. The paper's rows follow its classes (a PATH: --classes, default 10).")
@click.option("--out", "-o", "root", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="The grid's folder: DIR/<dataset>/<variant>-a<alpha>-d<delta>-s<seed>/ per run, "
                   "DIR/logs/ for each run's output.")
@click.option("--dry-run", is_flag=True, help="List the runs and their states (done, partial, to do, running, "
                                              "blocked); train nothing, write nothing.")
@click.option("--shard", default=None, metavar="INDEX/COUNT",
              help="Take every COUNT-th run from INDEX (0-based): disjoint shares for COUNT workers "
                   "[default: from SLURM_ARRAY_TASK_ID/COUNT/MIN in a job array, else all].")
@click.option("--executor", type=click.Choice(("local", "ray")), default="local", show_default=True,
              help="local: one run after another here; ray: one Ray task per run (needs mnetcost[ray]).")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to use (e.g. ray://head:10001 or auto) [default: $RAY_ADDRESS, else a local instance].")
@click.option("--ray-cpus", type=integer("ray cpus"), default=None,
              help="CPUs of the local Ray instance started without --address [default: all].")
@click.option("--cpus-per-run", type=number("cpus per run", minimum=0, minimum_open=True), default=None,
              help="Ray resources of each run [default: --threads, else 1].")
@click.option("--gpus-per-run", type=number("gpus per run", minimum=0), default=None,
              help="Ray GPUs of each run [default: 1 with --device cuda, else 0].")
@click.option("--quiet", "-q", is_flag=True, help="Do not echo the runs' training output (it is in the logs).")
@format_option
@click.pass_context
def command(ctx, paper_tables, variants, alphas, deltas, seeds, dataset, root, dry_run, shard, executor, address,
            ray_cpus, cpus_per_run, gpus_per_run, quiet, fmt, **train_options):
    """Train a grid of configurations x seeds, one `mnetcost train` run folder each.

    Idempotent: a complete run is skipped, a partial one resumed (train --resume), a failed one
    reported while the others go on (exit status 1 at the end). Every run is a `python -m
    mnetcost train` subprocess, which holds its folder's lock: two workers never train the same
    run (the second reports it 'taken'). Options marked [train] are passed to every run.

    \b
    Examples:
      mnetcost grid --paper-tables 4,5,6 --dataset cifar10 --seeds 0,1 --epochs 60 --out grid/ --dry-run
      mnetcost grid --paper-tables 4,5,6 --alpha 0.25 --epochs 60 --threads 2 --out grid/
      mnetcost grid --variant fmp --alpha 0.25,0.5 --delta 2 --shard 0/2 --out grid/     # worker 0 of 2
      sbatch --array=0-7 examples/grid_slurm.sbatch                                     # 8 workers
      mnetcost grid --paper-tables 6 --executor ray --address auto --cpus-per-run 4 --out /shared/grid
    """
    from mnetcost.analysis import grid as G
    from mnetcost.analysis.sweep import parse_variants
    from mnetcost.calculator.spec import BUILTIN_VARIANTS
    from mnetcost.errors import MnetcostError

    # --- everything a user can get wrong, before anything is written -------------------------------
    if executor != "ray":
        for name, value in (("--address", address), ("--ray-cpus", ray_cpus), ("--cpus-per-run", cpus_per_run),
                            ("--gpus-per-run", gpus_per_run)):
            if value is not None:
                fail(f"{name} is for --executor ray")
    tables = _parsed(G.parse_tables, "--paper-tables", paper_tables) if paper_tables is not None else None
    seed_list = _parsed(G.parse_seeds, "--seeds", seeds)
    variant_list = parse_variants(variants) if variants is not None else None
    if variant_list is not None:
        for index, variant in enumerate(variant_list):
            if variant not in BUILTIN_VARIANTS:
                path = Path(variant).expanduser()
                if not path.is_file():
                    fail(f"--variant {variant!r}: not one of {', '.join(BUILTIN_VARIANTS)} and no such spec file")
                variant_list[index] = str(path.resolve())
    if root.exists() and not root.is_dir():
        fail(f"--out {root}: is a file, not a folder")
    if dataset in ("cifar10", "cifar100"):
        official = {"cifar10": 10, "cifar100": 100}[dataset]
        if is_given(ctx, "classes") and train_options["classes"] != official:
            fail(f"--classes {train_options['classes']} contradicts --dataset {dataset} ({official} classes)")
        classes, label, data_argument = official, dataset, dataset
    else:
        from mnetcost.identity import archive_stem

        path = Path(dataset).expanduser()
        if not path.exists():
            fail(f"--dataset {dataset!r}: no such file or folder (or use cifar10 / cifar100)")
        classes, data_argument = train_options["classes"], str(path.resolve())
        label = "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in archive_stem(path.resolve()))
        label = label if label[:1].isalnum() else f"data{label}"
    if tables is not None:
        configs = G.filter_configurations(G.paper_configurations(tables, classes), variant_list, alphas, deltas)
        if not configs:
            fail(f"no configuration of Table{'s' if len(tables) > 1 else ''} {','.join(map(str, tables))} "
                 f"({G.PAPER_DATASETS[classes]}) has the --variant/--alpha/--delta asked for")
    else:
        if variant_list is None and alphas is None and deltas is None:
            fail("which runs? give --paper-tables 4,5,6 (the paper's configurations) or --variant/--alpha/--delta")
        configs = G.product_configurations(variant_list or ["base"], alphas or [1.0], deltas or [1], classes)
    from mnetcost.calculator.resolver import resolve

    resolution = train_options["resolution"]
    from mnetcost.nn.datasets import check_channels

    for config in configs:  # every network must build: a bad spec or a too small input fails here, once
        try:
            network = resolve(config.variant, alpha=config.alpha, delta=config.delta, classes=classes,
                              resolution=resolution)
            check_channels(network.spec.in_channels, f"--dataset {dataset}")  # every source is RGB
        except MnetcostError as exc:
            fail(f"{G.variant_name(config.variant)} α={config.alpha:g} δ={config.delta}: {exc}")
    runs = G.plan_runs(configs, seed_list, classes, label)
    if shard is not None:
        index, count = _parsed(G.parse_shard, "--shard", shard)
        source = "--shard"
    else:
        from_env = G.shard_from_env()
        index, count = from_env or (0, 1)
        source = "SLURM job array" if from_env else ""
    if executor == "ray":
        require_extra("grid --executor ray", ("ray",), "ray")
    mine = G.select_shard(runs, index, count)
    epochs = train_options["epochs"] if is_given(ctx, "epochs") else None
    forwarded = []
    for param in FORWARDED:
        if is_given(ctx, param.name):
            forwarded += _as_argv(param, train_options[param.name])
    # What each run must be to count as the grid's: train's recipe as this grid would start it (every
    # option given, else train's default), on this data (its fingerprint), compared as train --resume does.
    from mnetcost import identity as ID

    recipe = {key: train_options[key] for key in ("batch_size", "lr", "augment", "dropout", "fmp_mode", "test_draws",
                                                   "bn_stats", "bn_batches")}
    recipe["world_size"] = 1
    if dataset in ("cifar10", "cifar100") or is_given(ctx, "classes"):
        recipe["classes"] = classes
    if is_given(ctx, "resolution"):
        recipe["resolution"] = resolution
    data = ID.data_of(data_argument, fingerprint=ID.data_fingerprint(data_argument))
    tasks = [G.make_task(run, root, data_argument, forwarded, epochs, recipe, data) for run in mine]
    total = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    shard_text = f"shard {index}/{count} ({source}): {len(mine)} of {total}" if count > 1 else total
    log = (lambda message: click.echo(message, err=True))

    if dry_run:
        _dry_run(G, tasks, shard_text, fmt, default_epochs=train_options["epochs"])
        return
    if not tasks:
        log(f"mnetcost grid: nothing to do: {shard_text}")
        _emit_outcomes([], shard_text, fmt)
        return

    plural = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")  # noqa: E731
    log(f"mnetcost grid: {shard_text} under {root}"
        + (f"; {plural(len(configs), 'configuration')} x {plural(len(seed_list), 'seed')}" if count == 1 else ""))

    def report(number, total, outcome):
        detail = f" ({outcome['message']})" if outcome["message"] else ""
        took = f", {outcome['seconds']:.0f} s" if outcome["returncode"] is not None else ""
        log(f"[{number}/{total}] {outcome['name']}: {outcome['result']}{detail}{took}")

    try:
        if executor == "ray":
            from mnetcost.analysis.grid_ray import run_ray

            threads = train_options.get("threads")
            cpus = cpus_per_run if cpus_per_run is not None else float(threads or 1)
            gpus = gpus_per_run if gpus_per_run is not None else (1.0 if train_options.get("device") == "cuda" else 0.0)
            outcomes = run_ray(tasks, address=address, local_cpus=ray_cpus, cpus_per_run=cpus, gpus_per_run=gpus,
                               report=report, note=log)
        else:
            echo = None if quiet else (lambda line: click.echo(f"    {line}", err=True))
            outcomes = G.run_local(tasks, report=report, echo=echo)
    except KeyboardInterrupt:
        log("mnetcost grid: interrupted; every run keeps its last completed epoch: run the same command again "
            "to continue")
        ctx.exit(130)
    _emit_outcomes(outcomes, shard_text, fmt)
    counts = G.count_results(outcomes)
    if counts.get("interrupted"):
        log("mnetcost grid: interrupted; run the same command again to continue")
        ctx.exit(130)
    if counts.get("failed"):
        log(f"mnetcost grid: {counts['failed']} of {len(outcomes)} runs failed (their logs are under "
            f"{Path(root) / G.LOGS}); the others went on")
        ctx.exit(1)


def _dry_run(G, tasks, shard_text, fmt, default_epochs):
    from mnetcost.cli.render import Column, View, emit

    listing = []
    for task in tasks:
        state = G.folder_state(task.folder, task.epochs, task.expected)
        planned = task.epochs or state.epochs_planned or default_epochs  # a new run gets train's default
        listing.append({**task.run, "folder": task.folder, "state": state.state, "epochs_done": state.epochs_done,
                        "epochs_planned": planned, "holder": state.holder, "reason": state.reason or None})
    counts = {state: sum(1 for item in listing if item["state"] == state) for state in G.STATES}
    rows = [{
        **item, "variant": item["variant"] if "/" not in item["variant"] else Path(item["variant"]).stem,
        "spec": item["variant"], "tables": ",".join(map(str, item["tables"])), "state_text": G.STATE_TEXT[item["state"]],
        "epochs": (item["epochs_done"], item["epochs_planned"]), "note": item["holder"] or item["reason"],
    } for item in listing]
    view = View(title=f"mnetcost grid --dry-run: {shard_text}",
                columns=[Column("name", "run"), Column("variant", "variant"), Column("spec", "spec", show=False),
                         Column("alpha", "α", True, format="{:g}".format),
                         Column("delta", "δ", True), Column("classes", "classes", True), Column("seed", "seed", True),
                         Column("dataset", "dataset", show=False), Column("tables", "table", csv="paper_tables"),
                         Column("paper_accuracy", "paper %", True, format=lambda a: f"{100 * a:.1f}"),
                         Column("state_text", "state", csv=None), Column("state", "state", show=False),
                         Column("epochs", "epochs", True, csv=None,
                                format=lambda pair: f"{pair[0]}/{pair[1] if pair[1] is not None else '?'}"),
                         Column("epochs_done", "epochs_done", show=False),
                         Column("epochs_planned", "epochs_planned", show=False),
                         Column("note", "note"), Column("folder", "folder", show=False)],
                rows=rows,
                notes=[", ".join(f"{n} {G.STATE_TEXT[s]}" for s, n in counts.items() if n) or "no runs"])
    emit(fmt, listing, [view])


def _emit_outcomes(outcomes, shard_text, fmt):
    from mnetcost.analysis.grid import count_results
    from mnetcost.cli.render import Column, View, emit

    rows = [{**o, "seconds": o["seconds"] if o["returncode"] is not None else None} for o in outcomes]
    counts = count_results(outcomes)
    view = View(title=f"mnetcost grid: {shard_text}",
                columns=[Column("name", "run"), Column("state", "state before", csv="state_before"),
                         Column("result", "result"), Column("epochs_done", "epochs", True),
                         Column("seconds", "s", True, format="{:.1f}".format), Column("returncode", "exit", show=False),
                         Column("message", "message")],
                rows=rows, notes=[", ".join(f"{n} {r}" for r, n in counts.items()) or "no runs"])
    emit(fmt, outcomes, [view])


command.params.extend(FORWARDED)
