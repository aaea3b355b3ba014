"""``mnetcost ratio``: equations (1)-(4) and the cost ratios of section III.A."""
from __future__ import annotations

from fractions import Fraction

import click

from mnetcost.cli.options import ALPHA, DELTA, POSITIVE, format_option, note_alpha


def as_float(value: Fraction) -> float | None:
    """The nearest float, or None beyond the float range (the exact fraction is reported too)."""
    try:
        return float(value)
    except OverflowError:
        return None


def ratio_text(value: Fraction, places: int = 4) -> str:
    """A ratio for people, computed in decimal from the exact fraction (any size): ``0.5328``
    below a million, ``9.343066e+17`` (scientific, visibly rounded) above."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 60
        number = Decimal(value.numerator) / Decimal(value.denominator)
        return f"{number:.{places}f}" if abs(number) < 10**6 else f"{number:.6e}"


def ratio_report(M: int, N: int, alpha: float, delta: int, kernel: int, feature: int) -> dict:
    """Per-layer counts of the modified (alpha, delta) and the original (1, 1) depthwise separable
    conv, their exact ratios and the closed form and approximation the paper gives."""
    from mnetcost.calculator.cost import ratio_approx, ratio_formula, separable_cost

    modified = separable_cost(M, N, alpha, delta, kernel, feature)
    original = separable_cost(M, N, 1.0, 1, kernel, feature)
    if modified.in_channels < 1 or modified.out_channels < 1:
        raise click.UsageError(
            f"alpha={alpha:g} leaves int(alpha*M)={modified.in_channels} or int(alpha*N)={modified.out_channels} "
            "channels; both must be at least 1"
        )
    ratio_params = Fraction(modified.params, original.params)
    ratio_mult_adds = Fraction(modified.mult_adds, original.mult_adds)
    alpha_exact = Fraction(str(alpha))
    formula = ratio_formula(N, alpha_exact, delta, kernel)
    approx = ratio_approx(alpha_exact, delta)

    def layer_dict(cost):
        return {
            "in_channels": cost.in_channels, "dw_channels": cost.dw_channels, "out_channels": cost.out_channels,
            "dw_params": cost.dw_params, "pw_params": cost.pw_params, "params": cost.params,
            "dw_mult_adds": cost.dw_mult_adds, "pw_mult_adds": cost.pw_mult_adds, "mult_adds": cost.mult_adds,
        }

    return {
        "M": M, "N": N, "alpha": alpha, "delta": delta, "kernel": kernel, "feature": feature,
        "modified": layer_dict(modified),
        "original": layer_dict(original),
        "ratio_params": as_float(ratio_params),
        "ratio_params_fraction": str(ratio_params),
        "ratio_mult_adds": as_float(ratio_mult_adds),
        "ratio_mult_adds_fraction": str(ratio_mult_adds),
        "formula": "(alpha*D_K^2 + alpha^2*N)*delta / (D_K^2 + N)",
        "ratio_formula": as_float(formula),
        "ratio_formula_fraction": str(formula),
        "approx": as_float(approx),
        "approx_formula": "alpha^2*delta",
        "channels_are_integers": modified.in_channels == alpha * M and modified.out_channels == alpha * N,
    }


def ratio_views(report: dict):
    from mnetcost.cli.render import Column, View

    m, o = report["modified"], report["original"]
    a, d, k, f = report["alpha"], report["delta"], report["kernel"], report["feature"]
    rows = [
        {"quantity": "(1) depthwise params   D_K·D_K·(αM·δ)", "modified": m["dw_params"], "original": o["dw_params"]},
        {"quantity": "(2) pointwise params   (αM·δ)·αN", "modified": m["pw_params"], "original": o["pw_params"]},
        {"quantity": "(3) depthwise Mult-Adds D_K·D_K·(αM·δ)·D_F·D_F", "modified": m["dw_mult_adds"],
         "original": o["dw_mult_adds"]},
        {"quantity": "(4) pointwise Mult-Adds (αM·δ)·αN·D_F·D_F", "modified": m["pw_mult_adds"],
         "original": o["pw_mult_adds"]},
        {"quantity": "params (1)+(2)", "modified": m["params"], "original": o["params"]},
        {"quantity": "Mult-Adds (3)+(4)", "modified": m["mult_adds"], "original": o["mult_adds"]},
    ]
    counts = View(
        title=(f"Depthwise separable conv, M={report['M']} N={report['N']} D_K={k} D_F={f}: "
               f"modified (α={a:g}, δ={d}) vs original (α=1, δ=1)"),
        columns=[Column("quantity", "quantity"), Column("modified", f"α={a:g}, δ={d}", True),
                 Column("original", "α=1, δ=1", True)],
        rows=rows,
        notes=[f"channels as built: αM = int({report['M']}·{a:g}) = {m['in_channels']}, "
               f"αM·δ = {m['dw_channels']}, αN = int({report['N']}·{a:g}) = {m['out_channels']}"],
    )
    ratios = View(
        title="Ratios (modified / original); M and D_F cancel",
        columns=[Column("ratio", "ratio"), Column("value", "value", True), Column("exact", "exact fraction", True)],
        rows=[
            {"ratio": "parameters (from the counts)", "value": ratio_text(Fraction(report["ratio_params_fraction"])),
             "exact": report["ratio_params_fraction"]},
            {"ratio": "Mult-Adds (from the counts)",
             "value": ratio_text(Fraction(report["ratio_mult_adds_fraction"])),
             "exact": report["ratio_mult_adds_fraction"]},
            {"ratio": "closed form (α·D_K² + α²·N)·δ / (D_K² + N)",
             "value": ratio_text(Fraction(report["ratio_formula_fraction"])),
             "exact": report["ratio_formula_fraction"]},
            {"ratio": "approximation α²·δ", "value": ratio_text(Fraction(str(a)) ** 2 * d),
             "exact": str(Fraction(str(a)) ** 2 * d)},
        ],
        notes=[f"ratio ≈ {ratio_text(Fraction(report['ratio_params_fraction']), 2)} (exact), "
               f"{ratio_text(Fraction(str(a)) ** 2 * d, 2)} (α²·δ)"]
        + ([] if report["channels_are_integers"] else
           ["note: α·M or α·N is not an integer; the counts use int() channels as Keras builds them, "
            "the closed form uses real-valued α·M and α·N"]),
    )
    return [counts, ratios]


def ratio_csv_view(report: dict):
    """For machines, one table: each count of the modified and the original layer with their
    ratio (as a float at full precision and as the exact fraction), then the closed form and
    the approximation (a ratio only)."""
    from mnetcost.cli.render import Column, View

    m, o = report["modified"], report["original"]
    a, d = report["alpha"], report["delta"]
    rows = []
    for key, formula in (("dw_params", "D_K*D_K*(alpha*M*delta)"), ("pw_params", "(alpha*M*delta)*alpha*N"),
                         ("dw_mult_adds", "D_K*D_K*(alpha*M*delta)*D_F*D_F"),
                         ("pw_mult_adds", "(alpha*M*delta)*alpha*N*D_F*D_F"), ("params", "(1)+(2)"),
                         ("mult_adds", "(3)+(4)")):
        ratio = Fraction(m[key], o[key])
        rows.append({"quantity": key, "formula": formula, "modified": m[key], "original": o[key],
                     "ratio": as_float(ratio), "ratio_fraction": str(ratio)})
    approx = Fraction(str(a)) ** 2 * d
    rows += [{"quantity": "ratio_formula", "formula": report["formula"], "ratio": report["ratio_formula"],
              "ratio_fraction": report["ratio_formula_fraction"]},
             {"quantity": "ratio_approx", "formula": report["approx_formula"], "ratio": as_float(approx),
              "ratio_fraction": str(approx)}]
    return View(title="", rows=rows, columns=[Column(key, key) for key in (
        "quantity", "formula", "modified", "original", "ratio", "ratio_fraction")])


@click.command("ratio")
@click.option("--M", "M", type=POSITIVE, required=True, help="Input channels M of the original layer.")
@click.option("--N", "N", type=POSITIVE, required=True, help="Output channels N of the original layer.")
@click.option("--alpha", "-a", type=ALPHA, default=1.0, show_default=True, help="Width multiplier α > 0.")
@click.option("--delta", "-d", type=DELTA, default=1, show_default=True, help="Depth multiplier δ (integer ≥ 1).")
@click.option("--kernel", "kernel", type=POSITIVE, default=3, show_default=True, help="Kernel size D_K.")
@click.option("--feature", "feature", type=POSITIVE, default=32, show_default=True, help="Feature map size D_F.")
@format_option
def command(M, N, alpha, delta, kernel, feature, fmt):
    """Equations (1)-(4) and the parameter / Mult-Add ratios of section III.A.

    Example (the paper's worked example): mnetcost ratio --M 64 --N 128 --alpha 0.5 --delta 2
    """
    from mnetcost.cli.render import emit

    note_alpha(alpha)
    report = ratio_report(M, N, alpha, delta, kernel, feature)
    emit(fmt, report, ratio_views(report), csv_view=ratio_csv_view(report))
