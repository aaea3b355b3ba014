"""``mnetcost report DIR``: training runs beside the paper's Tables 4-6, and the paper's claims checked."""
from __future__ import annotations

import click

from mnetcost.cli.options import format_option


def _accuracy(value: dict) -> str:
    if not value["n"]:
        return ""
    text = f"{100 * value['mean']:.1f}"
    if value["std"] is not None:
        text += f" ± {100 * value['std']:.1f}"
    return text


def _points(value) -> str:
    return "" if value is None else f"{100 * value:+.1f}"


def _duration(seconds) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _recipe_text(recipe: dict, common: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in recipe.items() if common.get(k, object()) != v) or "-"


def _exact(value):
    """A value for CSV as it is (render.csv_value writes numbers exactly); a list as "a;b"."""
    if isinstance(value, (list, tuple)):
        return ";".join("" if item is None else str(item) for item in value)
    return value


def _csv_runs(groups: list[dict]) -> list[dict]:
    """One row per group, exact numbers, units in the column names (accuracies as fractions)."""
    rows = []
    for g in groups:
        row = {"dataset": g["dataset"], "variant": g["variant"], "alpha": g["alpha"], "delta": g["delta"],
               "classes": g["classes"], "resolution": g["resolution"], "data_source": g["data"]["source"],
               "data_fingerprint": g["data"]["fingerprint"]}
        row.update({key: g["recipe"].get(key) for key in RECIPE_COLUMNS})
        row.update({"seeds": g["seeds"], "runs": g["runs"]})
        for metric in ("best", "final"):
            for stat in ("n", "mean", "std", "min", "max"):
                row[f"{metric}_acc_{stat}"] = g[f"{metric}_test_accuracy"][stat]
        row.update({"paper_acc": g["paper_accuracy"], "best_minus_paper": g["best_minus_paper"],
                    "params": g["params"], "mult_adds": g["mult_adds"],
                    "train_activation_bytes": g["training_activation_bytes"],
                    "peak_activation_bytes": g["peak_activation_bytes"], "epochs_done": g["epochs"],
                    "time_per_run_s": g["seconds_per_run"],
                    "not_in_means": "; ".join(f"{item['run']} ({item['epochs']} epochs)" for item in g["not_in_means"]),
                    "left_out": "; ".join(f"{item['run']} ({item['reason']})" for item in g["left_out"])})
        rows.append({key: _exact(value) for key, value in row.items()})
    return rows


def _csv_claims(claims: list[dict]) -> list[dict]:
    rows = []
    for c in claims:
        row = {"dataset": c["dataset"], "claim": c["claim"], "metric": c["metric"], "a": c["a"], "b": c["b"]}
        for side in ("a", "b"):
            for stat in ("n", "mean", "std", "min", "max"):
                row[f"{side}_acc_{stat}"] = c[f"{side}_accuracy"][stat]
        row.update({"difference": c["difference"], "margin": c["margin"], "paper_difference": c["paper_difference"],
                    "verdict": c["verdict"], "unfinished": c["unfinished"], "not_in_means": c["not_in_means"]})
        rows.append({key: _exact(value) for key, value in row.items()})
    return rows


RECIPE_COLUMNS = ("epochs", "batch_size", "lr", "augment", "dropout", "fmp_mode", "test_draws", "bn_stats",
                  "bn_batches", "world_size")


@click.command("report")
@click.argument("directories", metavar="DIR...", nargs=-1, required=True, type=click.Path())
@click.option("--metric", type=click.Choice(("best", "final")), default="best", show_default=True,
              help="Which test accuracy the claims compare: the best epoch's or the last epoch's.")
@click.option("--what", type=click.Choice(("runs", "claims")), default=None,
              help="Only the runs or only the claims [default: both; CSV, one table, is the runs unless "
                   "--what claims].")
@format_option
def command(directories, metric, what, fmt):
    """Runs beside the paper's accuracy, and the paper's claims checked against them.

    DIR: a `mnetcost grid --out` folder, or any folder of `mnetcost train` runs (at any depth);
    several folders put their runs side by side in one report.

    One row per configuration: best and final test accuracy as mean ± standard deviation over its
    seeds, the difference from the paper (points), params and Mult-Adds computed by mnetcost
    (paper convention), training activation memory for the run's batch where known, epochs and
    training time per run. A mean pools runs at one epoch count: the seeds that finished, or while
    none has, those furthest on; a seed still behind them is shown apart. Runs are pooled only when
    they are the same experiment but for their seed: the same configuration, recipe (every option
    down to the planned epochs) and data (by its fingerprint; runs that record none, by its path);
    a seed counts once (a copied run folder or a second run of a seed is left out, and said so).

    Then the claims, for each configuration of the paper they concern: δ=4 beats δ=2 at each
    (variant, α); fmp beats mp3 and mp3 beats base at each (α, δ); fmp α=0.25 δ=2 beats the
    baseline (base α=1 δ=1) with fewer Mult-Adds. Verdict: holds when the difference of the means
    exceeds the larger seed range (max - min) of the two, fails when it is below minus that range,
    inconclusive in between, not measured when a side has no run. --format json gives
    {"metric", "runs": [...], "claims": [...]} with accuracies as fractions; --format csv one table
    of exact numbers (accuracies as fractions, bytes, seconds): the runs, or with --what claims the
    claims.

    \b
    Examples:
      mnetcost report grid/
      mnetcost report grid/ --format markdown > results.md
      mnetcost report grid/ --format csv > runs.csv
      mnetcost report grid/ other-grid/
    """
    from mnetcost.analysis.runs import provisional, report
    from mnetcost.cli.render import Column, View, emit, millions
    from mnetcost.files import json_safe

    data, warnings = report(directories, metric)
    data = json_safe(data)
    for line in warnings:
        click.echo(line, err=True)
    groups = data["runs"]
    if fmt == "csv":
        rows = _csv_claims(data["claims"]) if what == "claims" else _csv_runs(groups)
        keys = list(rows[0]) if rows else ["dataset", "variant"]
        emit(fmt, data, [View(title="", columns=[Column(key, key) for key in keys], rows=rows)])
        return
    recipes = [g["recipe"] for g in groups]
    common = {k: v for k, v in (recipes[0] if recipes else {}).items() if all(r.get(k) == v for r in recipes)}
    show_recipe = any(r != recipes[0] for r in recipes)
    try:
        from mnetcost.calculator.memory import format_bytes
    except ImportError:  # pragma: no cover - the memory model ships with the calculator
        format_bytes = None
    rows = [{
        "dataset": g["data"]["label"], "variant": g["variant"], "alpha": f"{g['alpha']:g}", "delta": g["delta"],
        "recipe": _recipe_text(g["recipe"], common),
        "seeds": g["best_test_accuracy"]["n"], "best": _accuracy(g["best_test_accuracy"]),
        "final": _accuracy(g["final_test_accuracy"]),
        "paper": f"{100 * g['paper_accuracy']:.1f}" if g["paper_accuracy"] is not None else "",
        "vs_paper": _points(g["best_minus_paper"]),
        "params": millions(g["params"], 3) if g["params"] is not None else "",
        "mult_adds": millions(g["mult_adds"], 3) if g["mult_adds"] is not None else "",
        "memory": format_bytes(g["training_activation_bytes"])
        if format_bytes and g["training_activation_bytes"] is not None else "",
        "epochs": "/".join(map(str, g["epochs"])) + (f" of {'/'.join(map(str, g['epochs_planned']))}"
                                                     if g["epochs_planned"] and g["epochs_planned"] != g["epochs"] else ""),
        "time": _duration(g["seconds_per_run"]),
    } for g in groups]
    columns = [Column("dataset", "data"), Column("variant", "variant"), Column("alpha", "α", True),
               Column("delta", "δ", True)]
    if show_recipe:
        columns.append(Column("recipe", "recipe"))
    columns += [Column("seeds", "seeds", True), Column("best", "best %", True), Column("final", "final %", True),
                Column("paper", "paper %", True), Column("vs_paper", "Δ paper", True),
                Column("params", "params", True), Column("mult_adds", "Mult-Adds", True),
                Column("memory", "train act.", True), Column("epochs", "epochs", True),
                Column("time", "time/run", True)]
    recipe_note = ", ".join(f"{k}={v}" for k, v in common.items())
    notes = ["best/final: top-1 test accuracy (%), mean ± sample standard deviation over seeds (seeds: the runs "
             "in the mean); Δ paper: best mean minus the paper's printed accuracy, in points (the paper's CIFAR at "
             "32x32 and its classes).",
             "params, Mult-Adds: computed by mnetcost for the configuration (paper convention); train act.: "
             "activation memory autograd keeps for one batch (calculator/memory.py)."]
    if recipe_note:
        notes.append(f"recipe of every run: {recipe_note}")
    notes += [f"not in the means: {name} has no finite test accuracy" for g in groups
              for name in g["without_accuracy"]]
    notes += [f"not in the means, behind the other seeds: {item['run']} at {item['epochs']}"
              + (f" of {item['epochs_planned']}" if item["epochs_planned"] else "") + " epochs"
              + (f" (best {100 * item['best_test_accuracy']:.1f} % so far)" if item["best_test_accuracy"] is not None
                 else "")
              for g in groups for item in g["not_in_means"]]
    notes += [f"left out: {item['run']} ({item['reason']})" for g in groups for item in g["left_out"]]
    pooled: dict[str, list] = {}
    for g in groups:
        for item in g["identity_notes"]:
            pooled.setdefault(item["note"], []).extend(item["runs"])
    notes += [f"{note}: {', '.join(names)}" for note, names in pooled.items()]
    count = sum(len(g["runs"]) for g in groups)
    views = [View(title=f"Runs under {', '.join(directories)} ({len(groups)} configuration{'s' if len(groups) != 1 else ''}, "
                        f"{count} run{'s' if count != 1 else ''})", columns=columns, rows=rows, notes=notes)]
    claims = data["claims"]
    shown = [c for c in claims if c["a_accuracy"]["n"] or c["b_accuracy"]["n"]]
    hidden = len(claims) - len(shown)
    if not claims and what == "claims":
        views.append(View(title=f"The paper's claims ({metric} test accuracy)",
                          columns=[Column("dataset", "data"), Column("claim", "claim"), Column("verdict", "verdict")],
                          rows=[], notes=["no claims: no run is of the paper's CIFAR-10 or CIFAR-100 at 32x32 with "
                                          "its classes"]))
    if claims:
        claim_rows = [{
            "dataset": c["dataset"], "claim": c["claim"], "comparison": f"{c['a']} vs {c['b']}",
            "a": _accuracy(c["a_accuracy"]) + (f" ({c['a_accuracy']['n']})" if c["a_accuracy"]["n"] else ""),
            "b": _accuracy(c["b_accuracy"]) + (f" ({c['b_accuracy']['n']})" if c["b_accuracy"]["n"] else ""),
            "difference": _points(c["difference"]),
            "margin": f"{100 * c['margin']:.1f}" if c["margin"] is not None else "",
            "paper": _points(c["paper_difference"]),
            "verdict": c["verdict"] + (" (unfinished)" if provisional(c) else ""),
        } for c in shown]
        counts = {v: sum(1 for c in claims if c["verdict"] == v) for v in ("holds", "fails", "inconclusive",
                                                                            "not measured")}
        views.append(View(
            title=f"The paper's claims ({metric} test accuracy)",
            columns=[Column("dataset", "data"), Column("claim", "claim"), Column("comparison", "a vs b"),
                     Column("a", "a % (seeds)", True), Column("b", "b % (seeds)", True),
                     Column("difference", "a - b", True), Column("margin", "seed range", True),
                     Column("paper", "paper a - b", True), Column("verdict", "verdict")],
            rows=claim_rows,
            notes=[", ".join(f"{n} {v}" for v, n in counts.items() if n)
                   + (f" ({hidden} with no run on either side are not listed here; --format json lists every claim)"
                      if hidden else ""),
                   "verdict: holds when a - b exceeds the larger seed range (max - min) of the two, fails when "
                   "it is below minus that range, inconclusive in between; with one seed each the range is 0 "
                   "and the verdict rests on single runs."]
            + [f"  {c['claim']} ({c['dataset']}): {c['evidence']}" for c in claims
               if c["verdict"] != "not measured" and "a_mult_adds" in c]))
    if what is not None:
        views = views[:1] if what == "runs" else views[1:]
        data = {key: value for key, value in data.items() if key != ("claims" if what == "runs" else "runs")}
    emit(fmt, data, views)
