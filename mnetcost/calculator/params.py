"""Parsing of command-line values (pure functions; the CLI wraps them in click types).

Each parser raises :class:`ValueError` with a message fit for a one-line error. Numbers are
written with ASCII digits only (``float("١٠")`` and ``int("١٠")`` would accept Arabic-Indic
digits, ``int("1_000")`` an underscore); floats are finite (no ``nan``, ``inf`` or ``1e400``).
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation, localcontext

SI_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII only, no nan/inf
INTEGER = re.compile(r"\+?[0-9]+")
MAX_DIGITS = 100  # an integer option longer than this is refused (a clear cap, not Python's 4300-digit error)
MAX_LIST = 1_000_000  # values in one list or range


def parse_number(text: str, what: str = "value") -> float:
    """A finite number in ASCII decimal or exponent notation (``0.5``, ``.5``, ``1e-3``)."""
    value = str(text).strip()
    if not NUMBER.fullmatch(value):
        raise ValueError(f"{what} must be a finite number written with ASCII digits (e.g. 0.5 or 1e-3), got {text!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} {text!r} is beyond the largest floating-point number (about 1.8e308)")
    return number


def parse_alpha(text: str) -> float:
    """A width multiplier: one finite number greater than 0 (values above 1 are allowed)."""
    value = str(text).strip()
    if "," in value or ":" in value:
        raise ValueError(f"alpha takes one value here, got the list or range {text!r} (run once per alpha)")
    if not NUMBER.fullmatch(value):
        raise ValueError(f"alpha must be a number greater than 0, written with ASCII digits (e.g. 0.5), got {text!r}")
    number = parse_number(value, "alpha")
    if number <= 0:
        raise ValueError(f"alpha must be a number greater than 0, got {text!r}")
    return number


def parse_int(text: str, what: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` in ASCII digits; '2.0', '2.5', '²' and '١٠' are refused."""
    value = str(text).strip()
    kind = "a positive integer" if minimum == 1 else (
        "a non-negative integer" if minimum == 0 else f"an integer of at least {minimum}")
    if not INTEGER.fullmatch(value):
        raise ValueError(f"{what} must be {kind} written with ASCII digits 0-9, got {text!r}")
    if len(value.lstrip("+0")) > MAX_DIGITS:
        raise ValueError(f"{what} has more than {MAX_DIGITS} digits")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{what} must be {kind}, got {text!r}")
    return number


def parse_positive_int(text: str, what: str) -> int:
    """A positive integer; '2.0' or '2.5' are refused (delta is an integer in the paper)."""
    return parse_int(text, what, 1)


def _decimal(text: str, what: str) -> Decimal:
    if not NUMBER.fullmatch(text.strip()):
        raise ValueError(f"{what}: {text!r} is not a number written with ASCII digits (e.g. 0.5 or 1e-3)")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{what}: {text!r} is not a finite number")
    if not value:
        return Decimal(0)  # 0e-999999999 would make every later step slow or overflow
    if abs(value.adjusted()) > 400:  # beyond any float, and beyond exact arithmetic in decimal's context
        raise ValueError(f"{what}: {text!r} is out of range (exponent beyond ±400)")
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
    if count > MAX_LIST:
        raise ValueError(f"{what} range {text!r} has {count:,} values; at most {MAX_LIST:,}")
    return [float(str(start + i * step)) for i in range(count)]


def parse_alpha_list(text: str) -> list[float]:
    """Comma-separated alphas and ``start:stop:step`` ranges, in order, duplicates removed (in
    linear time: a dict keeps the order), at most :data:`MAX_LIST` values in all."""
    values: dict[float, None] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"alpha list has an empty item: {text!r}")
        if ":" in item:
            for value in parse_range(item):
                if not (math.isfinite(value) and value > 0):
                    raise ValueError(f"alpha must be a finite number greater than 0, got {value:g} in {item!r}")
                values[value] = None
        else:
            values[parse_alpha(item)] = None
        if len(values) > MAX_LIST:
            raise ValueError(f"alpha list {text[:40]!r}... has more than {MAX_LIST:,} values")
    return list(values)


def parse_int_list(text: str, what: str) -> list[int]:
    """Comma-separated positive integers, in order, duplicates removed (linear time)."""
    values: dict[int, None] = {}
    for item in str(text).split(","):
        if not item.strip():
            raise ValueError(f"{what} list has an empty item: {text!r}")
        values[parse_positive_int(item.strip(), what)] = None
        if len(values) > MAX_LIST:
            raise ValueError(f"{what} list has more than {MAX_LIST:,} values")
    return list(values)


def parse_si(text: str, what: str = "budget") -> int:
    """A count with an optional SI suffix: ``10M`` = 10,000,000; ``1.5G``; ``250K``; ``1000``."""
    value = str(text).strip()
    suffix = value[-1:].upper() if value[-1:].isalpha() else ""
    if suffix and suffix not in SI_SUFFIXES:
        raise ValueError(f"{what}: unknown suffix in {text!r} (use K, M or G: 10^3, 10^6, 10^9)")
    number = _decimal(value[: len(value) - len(suffix)], what)
    if number < 0:
        raise ValueError(f"{what} must not be negative, got {text!r}")
    if number.adjusted() >= MAX_DIGITS:
        raise ValueError(f"{what} {text!r} has more than {MAX_DIGITS} digits")
    return _whole(number, SI_SUFFIXES[suffix])


def _whole(number: Decimal, factor: int) -> int:
    """``int(number * factor)`` exactly: the product in a context wide enough for every digit (the
    default 28 significant digits would round a 100-digit budget)."""
    with localcontext() as context:
        context.prec = len(number.as_tuple().digits) + len(str(factor)) + 2
        return int(number * factor)


BINARY_SUFFIXES = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_bytes(text: str, what: str = "budget") -> int:
    """A byte count with an optional SI suffix (K, M, G: 10^3, 10^6, 10^9) or binary suffix (KiB,
    MiB, GiB: 2^10, 2^20, 2^30): ``256KiB`` = 262,144; ``1MiB`` = 1,048,576; ``1M`` = 1,000,000.
    A fraction of a byte is dropped (``0.5KiB`` = 512, ``1.0001K`` = 1000)."""
    value = str(text).strip()
    head = value.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    tail = value[len(head):]
    if tail.upper() in BINARY_SUFFIXES:
        number = _decimal(head, what) if head else None
        if number is None:
            raise ValueError(f"{what}: {text!r} has no number before its suffix")
        if number < 0:
            raise ValueError(f"{what} must not be negative, got {text!r}")
        if number.adjusted() >= MAX_DIGITS:
            raise ValueError(f"{what} {text!r} has more than {MAX_DIGITS} digits")
        return _whole(number, BINARY_SUFFIXES[tail.upper()])
    if len(tail) > 1 or (tail and tail.upper() not in SI_SUFFIXES):
        raise ValueError(f"{what}: unknown suffix {tail!r} in {text!r} (use K, M, G for 10^3, 10^6, 10^9 or "
                         "KiB, MiB, GiB for 2^10, 2^20, 2^30 bytes)")
    return parse_si(value, what)
