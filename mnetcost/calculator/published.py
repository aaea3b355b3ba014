"""The MobileNetV2/V3 papers' printed figures, and which counting convention reproduces each.

The papers print params and Mult-Adds in millions, truncated (MobileNetV3-Large: 219 M Mult-Adds,
5.4 M params). mnetcost's default convention (``paper``: Chen & Su's Keras count) gives other figures for
these models (216.6 M, 5.51 M): V3's 219 M counts the element-wise operations too (``elementwise``) and
its parameters leave BatchNorm's moving statistics out (``trainable`` or ``weights``). This module
reads the printed figures from a data file shipped with the package
(``mnetcost/calculator/data/family_published.csv``) and finds, by computing every convention's exact
count, the conventions whose count prints as the published figure; nothing here is hard-coded.

Standard library only.
"""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

DATA_FILE = Path(__file__).resolve().parent / "data" / "family_published.csv"
QUANTITIES = ("mult_adds", "params")
MILLION = 10**6


class Published(NamedTuple):
    """One printed figure of a paper: a model, its configuration, the quantity and the figure as printed."""

    variant: str
    alpha: float
    resolution: int
    classes: int
    quantity: str  # "params" or "mult_adds"
    printed: Decimal  # millions, as printed
    source: str


def load_published() -> list[Published]:
    lines = [line for line in DATA_FILE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [Published(row["variant"], float(row["alpha"]), int(row["resolution"]), int(row["classes"]),
                      row["quantity"], Decimal(row["printed_millions"]), row["source"])
            for row in csv.DictReader(lines)]


def prints_as(count: int, printed: Decimal) -> bool:
    """Whether ``count`` in millions, truncated to the decimals of ``printed``, is ``printed`` (the papers
    truncate: 3,470,760 params print as 3.4 M, 300,774,272 Mult-Adds as 300 M)."""
    decimals = max(-printed.as_tuple().exponent, 0)
    scale = 10**decimals
    return count * scale // MILLION == printed * scale


def is_published_model(network, variant: str) -> bool:
    """Whether ``network`` is the built-in ``variant`` as published: its own spec (not a spec file that
    takes the name), its own width rounding, and δ = 1."""
    from mnetcost.calculator.spec import BUILTIN_VARIANTS, load_spec

    if variant not in BUILTIN_VARIANTS or network.variant != variant:
        return False
    spec = load_spec(variant)
    return network.spec == spec and network.rounding == spec.rounding and network.delta == 1


def published_figures(network) -> list[dict]:
    """For a network that is a published model: each printed figure with the conventions whose exact
    count prints as it, ``[{"quantity", "printed_millions", "source", "reproduced_by": {convention:
    count}, "counts": {convention: count}}]``; an empty list for any other network. FLOPs (2 per
    multiply-accumulate) are not a count of Mult-Adds and are left out."""
    from mnetcost.calculator.cost import CONVENTIONS, network_cost

    rows = [row for row in load_published()
            if (row.alpha, (row.resolution, row.resolution), row.classes)
            == (float(network.alpha), tuple(network.resolution), network.classes)
            and is_published_model(network, row.variant)]
    if not rows:
        return []
    costs = {name: network_cost(network, name) for name, convention in CONVENTIONS.items()
             if convention.ops_per_mac == 1}
    figures = []
    for row in rows:
        counts = {name: int(getattr(cost, row.quantity)) for name, cost in costs.items()}
        figures.append({"quantity": row.quantity, "printed_millions": str(row.printed), "source": row.source,
                        "reproduced_by": {name: count for name, count in counts.items()
                                          if prints_as(count, row.printed)},
                        "counts": counts})
    return figures
