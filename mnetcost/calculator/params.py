"""Parsing of command-line values (pure functions; the CLI wraps them in click types).

Each parser raises :class:`ValueError` with a message fit for a one-line error.
"""
from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

SI_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_alpha(text: str) -> float:
    """A width multiplier: a finite number greater than 0 (values above 1 are allowed)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number greater than 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"alpha must be a number greater than 0, got {text!r}")
    return value


def parse_positive_int(text: str, what: str) -> int:
    """A positive integer; '2.0' or '2.5' are refused (delta is an integer in the paper)."""
    value = str(text).strip()
    if not value.lstrip("+").isdigit() or int(value) < 1:
        raise ValueError(f"{what} must be a positive integer, got {text!r}")
    return int(value)


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{what}: {text!r} is not a finite number")
    return value


def parse_range(text: str, what: str = "alpha") -> list[float]:
    """``start:stop:step``, stop included when the steps land on it, computed in decimal so
    that no value drifts (``0.25:1.0:0.01`` gives 0.29, not 0.29000000000000004)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"{what} range must be start:stop:step, got {text!r}")
    start, stop, step = (_decimal(p, what) for p in parts)
    if step <= 0:
        raise ValueError(f"{what} range step must be greater than 0, got {text!r}")
    if stop < start:
        raise ValueError(f"{what} range stop must not be below start, got {text!r}")
    count = int((stop - start) / step) + 1
    if count > 1_000_000:
        raise ValueError(f"{what} range {text!r} has {count:,} values; at most 1,000,000")
    return [float(str(start + i * step)) for i in range(count)]


def parse_alpha_list(text: str) -> list[float]:
    """Comma-separated alphas and ``start:stop:step`` ranges, in order, duplicates removed."""
    values: list[float] = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"alpha list has an empty item: {text!r}")
        items = parse_range(item) if ":" in item else [item]
        for value in items:
            parsed = parse_alpha(str(value))
            if parsed not in values:
                values.append(parsed)
    return values


def parse_int_list(text: str, what: str) -> list[int]:
    values: list[int] = []
    for item in str(text).split(","):
        value = parse_positive_int(item.strip(), what)
        if value not in values:
            values.append(value)
    return values


def parse_si(text: str, what: str = "budget") -> int:
    """A count with an optional SI suffix: ``10M`` = 10,000,000; ``1.5G``; ``250K``; ``1000``."""
    value = str(text).strip()
    suffix = value[-1:].upper() if value[-1:].isalpha() else ""
    if suffix and suffix not in SI_SUFFIXES:
        raise ValueError(f"{what}: unknown suffix in {text!r} (use K, M or G: 10^3, 10^6, 10^9)")
    number = _decimal(value[: len(value) - len(suffix)], what)
    if number < 0:
        raise ValueError(f"{what} must not be negative, got {text!r}")
    return int(number * SI_SUFFIXES[suffix])
