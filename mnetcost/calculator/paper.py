"""The paper's printed results (Tables 4-6), loaded from the data file shipped with the package,
and their reconciliation with the engine's figures for the same configurations."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "paper_results.csv"  # shipped with the package

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass(frozen=True)
class PaperResult:
    """One printed row. Figures stay as printed (Decimal) so their precision is known."""

    table: int
    dataset: str
    variant: str
    alpha: float
    delta: int
    accuracy_pct: Decimal
    mult_adds_m: Decimal
    params_m: Decimal

    @property
    def classes(self) -> int:
        return DATASET_CLASSES[self.dataset]

    @property
    def accuracy(self) -> float:
        """Top-1 test accuracy as a fraction in [0, 1], the float nearest the printed decimal
        (81.1 % is 0.811, not 81.1 / 100 = 0.8109999999999999)."""
        return float(self.accuracy_pct / 100)

    @property
    def is_baseline(self) -> bool:
        return self.variant == "base" and self.alpha == 1 and self.delta == 1


def load_paper_results() -> list[PaperResult]:
    # a path beside the module, as the built-in specs are read: importlib.resources would import tempfile,
    # shutil and zipfile (a fifth of `sweep`'s start-up) to read one small file
    text = DATA_FILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return [
        PaperResult(
            table=int(row["table"]), dataset=row["dataset"], variant=row["variant"],
            alpha=float(row["alpha"]), delta=int(row["delta"]),
            accuracy_pct=Decimal(row["accuracy_pct"]), mult_adds_m=Decimal(row["mult_adds_m"]),
            params_m=Decimal(row["params_m"]),
        )
        for row in csv.DictReader(lines)
    ]


def unique_configurations(results: list[PaperResult]) -> list[PaperResult]:
    """The rows without the baseline repeated by Tables 5 and 6 (first occurrence kept)."""
    seen, unique = set(), []
    for result in results:
        key = (result.dataset, result.variant, result.alpha, result.delta)
        if key not in seen:
            seen.add(key)
            unique.append(result)
    return unique
