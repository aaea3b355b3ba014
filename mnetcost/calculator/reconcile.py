"""Reconciliation of the paper's printed Tables 4-6 with the architecture its Tables 1-3 describe.

For every printed row: mnetcost's Mult-Adds and params for the same configuration (paper
convention), the difference, and a verdict per cell. Then two checks that use only the paper's own
cells, so that a disagreement can be told apart from a convention mismatch:

* **dataset pairs**: the CIFAR-10 and CIFAR-100 models of one configuration differ only in the
  classifier (1024α x 90 more weights and Mult-Adds, 90 more biases), so the printed CIFAR-100
  figure minus the printed CIFAR-10 figure must equal that, up to the printed precision;
* **variant pairs**: Tables 5 and 6 against Table 4 at the same alpha, delta and dataset; the
  layers whose cost differs are named.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from mnetcost.calculator.cost import network_cost
from mnetcost.calculator.paper import PaperResult, load_paper_results
from mnetcost.calculator.resolver import resolve

CLOSE = 0.01  # a cell within 1 % that does not match at printed precision is "close"


def printed_unit(printed: Decimal) -> Decimal:
    """One unit in the last printed place, in millions: 11.58 -> 0.01, 139 -> 1, 12.0 -> 0.1."""
    return Decimal(1).scaleb(printed.as_tuple().exponent)


def verdict(printed: Decimal, exact: int) -> str:
    """``agrees`` when the exact count, rounded or truncated to the printed precision, is the printed
    figure; ``close`` within 1 %; else ``disagrees``."""
    millions = Decimal(exact) / Decimal(10**6)
    unit = printed_unit(printed)
    if printed in (millions.quantize(unit, ROUND_HALF_UP), millions.quantize(unit, ROUND_DOWN)):
        return "agrees"
    return "close" if abs(float(printed) * 1e6 - exact) <= CLOSE * exact else "disagrees"


@dataclass(frozen=True)
class Row:
    result: PaperResult
    mult_adds: int
    params: int
    layer_mult_adds: dict  # layer name -> Mult-Adds, for the variant-pair check
    layer_params: dict


def _compute(result: PaperResult) -> Row:
    cost = network_cost(resolve(result.variant, result.alpha, result.delta, result.classes, 32), "paper")
    return Row(result, cost.mult_adds, cost.params,
               {r.layer.name: r.mult_adds for r in cost.layers}, {r.layer.name: r.params for r in cost.layers})


def _pair_consistent(printed_a: Decimal, printed_b: Decimal, exact_difference: int) -> bool:
    """Is printed_b - printed_a compatible with an exact difference, given that each printed figure
    may be rounded or truncated to its last place (each off by less than one unit)?"""
    tolerance = printed_unit(printed_a) + printed_unit(printed_b)
    printed_difference = (printed_b - printed_a) * Decimal(10**6)
    return abs(printed_difference - exact_difference) < tolerance * Decimal(10**6)


def _fmt(value: Decimal | int, exact: bool = False) -> str:
    return f"{value / 1e6:.3f}M" if exact else f"{value}M"


def reconcile(results: list[PaperResult] | None = None) -> list[dict]:
    """The documented JSON objects of ``mnetcost paper``: one per printed row."""
    results = results if results is not None else load_paper_results()
    rows = [_compute(r) for r in results]
    by_key = {(r.result.table, r.result.dataset, r.result.variant, r.result.alpha, r.result.delta): r for r in rows}
    out = []
    for row in rows:
        res = row.result
        checks = []
        # dataset pair: this CIFAR-100 row against the same table's CIFAR-10 row
        if res.dataset == "cifar100":
            other = by_key.get((res.table, "cifar10", res.variant, res.alpha, res.delta))
            if other is not None:
                for label, printed, printed_other, exact, exact_other in (
                    ("Mult-Adds", res.mult_adds_m, other.result.mult_adds_m, row.mult_adds, other.mult_adds),
                    ("params", res.params_m, other.result.params_m, row.params, other.params),
                ):
                    ok = _pair_consistent(printed_other, printed, exact - exact_other)
                    checks.append({
                        "check": "dataset_pair", "quantity": label, "consistent": ok,
                        "printed_difference_m": float(printed - printed_other),
                        "exact_difference": exact - exact_other,
                        "text": (f"{label}: CIFAR-100 minus CIFAR-10 is printed as "
                                 f"{printed - printed_other:+}M; only the classifier differs, which adds "
                                 f"{(exact - exact_other) / 1e6:+.4f}M"
                                 + ("" if ok else " — the printed pair cannot both follow from the architecture")),
                    })
        # variant pair: Tables 5/6 against Table 4 at the same configuration
        if res.variant != "base":
            base = by_key.get((4, res.dataset, "base", res.alpha, res.delta))
            if base is not None:
                names = list(row.layer_mult_adds) + [n for n in base.layer_mult_adds if n not in row.layer_mult_adds]
                changed = [name for name in names
                           if row.layer_mult_adds.get(name, 0) != base.layer_mult_adds.get(name, 0)]
                exact = row.mult_adds - base.mult_adds
                ok = _pair_consistent(base.result.mult_adds_m, res.mult_adds_m, exact)
                checks.append({
                    "check": "variant_pair", "quantity": "Mult-Adds", "consistent": ok,
                    "printed_difference_m": float(res.mult_adds_m - base.result.mult_adds_m),
                    "exact_difference": exact, "layers_that_differ": changed,
                    "text": (f"Mult-Adds: {res.variant} minus base is printed as "
                             f"{res.mult_adds_m - base.result.mult_adds_m:+}M; the architectures give "
                             f"{exact / 1e6:+.4f}M, from {len(changed)} layer(s) that differ"
                             + (f" ({', '.join(changed[:4])}{', …' if len(changed) > 4 else ''})" if changed else "")),
                })
        out.append({
            "table": res.table, "dataset": res.dataset, "classes": res.classes, "variant": res.variant,
            "alpha": res.alpha, "delta": res.delta, "baseline": res.is_baseline,
            "accuracy": res.accuracy,
            "paper_mult_adds": float(res.mult_adds_m), "paper_mult_adds_printed": str(res.mult_adds_m),
            "mult_adds": row.mult_adds,
            "mult_adds_diff": (float(res.mult_adds_m) * 1e6 - row.mult_adds) / row.mult_adds,
            "mult_adds_verdict": verdict(res.mult_adds_m, row.mult_adds),
            "paper_params": float(res.params_m), "paper_params_printed": str(res.params_m),
            "params": row.params,
            "params_diff": (float(res.params_m) * 1e6 - row.params) / row.params,
            "params_verdict": verdict(res.params_m, row.params),
            "convention": "paper",
            "checks": checks,
        })
    return out


def summary(rows: list[dict]) -> dict:
    """Counts of verdicts per quantity and of failed consistency checks."""
    counts = {}
    for quantity in ("mult_adds", "params"):
        for row in rows:
            key = (quantity, row[f"{quantity}_verdict"])
            counts[key] = counts.get(key, 0) + 1
    failed = [c for row in rows for c in row["checks"] if not c["consistent"]]
    return {"verdicts": {f"{q}:{v}": n for (q, v), n in sorted(counts.items())}, "failed_checks": len(failed)}
