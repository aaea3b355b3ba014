"""Declarative architecture specs: loading and validation (standard library only).

A spec is a TOML file: a few top-level keys and an ordered array of ``[[layers]]`` rows.
The three tables of the paper ship as ``base``, ``mp3`` and ``fmp`` inside the package;
anywhere a variant name is accepted, a path to a user's own spec file is accepted too.

Row types and their fields (defaults in brackets):

==========  ==================================================================
``conv``    full convolution: ``filters`` (alpha-scaled), ``kernel`` [3], ``stride`` [1]
``dws``     depthwise separable block: depthwise ``kernel`` x ``kernel`` conv mapping C to
            C*delta channels (groups = C) with ``stride`` [1], then a 1x1 pointwise conv to
            ``filters`` (alpha-scaled); ``repeat`` [1] stacks identical blocks
``maxpool`` max pooling, 'same' padding: ``kernel`` [3], ``stride`` [2]
``fmp``     fractional max pooling, output size floor(size / ``ratio``): ``ratio`` (> 1)
``avgpool`` global average pooling (no fields)
``fc``      fully connected classifier with bias, to the number of classes (no fields)
==========  ==================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mnetcost.errors import SpecError

BUILTIN_DIR = Path(__file__).resolve().parent / "specs"  # the package's own spec files

BUILTIN_VARIANTS = ("base", "mp3", "fmp")
MAX_SPEC_BYTES = 1 << 20  # a spec is a few kilobytes; a larger file is not one

# field name -> (python types accepted, default or REQUIRED)
REQUIRED = object()
_INT = (int,)
_NUM = (int, float)
ROW_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], object]]] = {
    "conv": {"filters": (_INT, REQUIRED), "kernel": (_INT, 3), "stride": (_INT, 1)},
    "dws": {"filters": (_INT, REQUIRED), "kernel": (_INT, 3), "stride": (_INT, 1), "repeat": (_INT, 1)},
    "maxpool": {"kernel": (_INT, 3), "stride": (_INT, 2)},
    "fmp": {"ratio": (_NUM, REQUIRED)},
    "avgpool": {},
    "fc": {},
}
TOP_FIELDS = {"name": str, "title": str, "paper_table": int, "in_channels": int, "description": str}


@dataclass(frozen=True)
class Row:
    """One validated row of a spec: its type, its fields with defaults filled, its 1-based index."""

    index: int
    type: str
    fields: dict = field(hash=False)

    def __getitem__(self, key: str):
        return self.fields[key]


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    rows: tuple[Row, ...]
    title: str = ""
    paper_table: int | None = None
    in_channels: int = 3


def _is_type(value, types: tuple[type, ...]) -> bool:
    # bool is an int subclass in Python; a TOML `true` is never a valid count or size.
    return isinstance(value, types) and not isinstance(value, bool)


def _check_row(source: str, index: int, raw: object) -> Row:
    where = f"{source}: row {index}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a layer row must be a table, got {raw!r}")
    kind = raw.get("type")
    if kind is None:
        raise SpecError(f"{where}: field 'type' is missing (one of {', '.join(ROW_FIELDS)})")
    if kind not in ROW_FIELDS:
        raise SpecError(f"{where}: field 'type': unknown layer type {kind!r} (one of {', '.join(ROW_FIELDS)})")
    allowed = ROW_FIELDS[kind]
    where = f"{source}: row {index} ({kind})"
    for key in raw:
        if key != "type" and key not in allowed:
            known = ", ".join(allowed) or "none"
            raise SpecError(f"{where}: field {key!r} is not a field of {kind!r} rows (fields: {known})")
    fields = {}
    for key, (types, default) in allowed.items():
        if key not in raw:
            if default is REQUIRED:
                raise SpecError(f"{where}: field {key!r} is missing")
            fields[key] = default
            continue
        value = raw[key]
        if not _is_type(value, types):
            wanted = "an integer" if types == _INT else "a number"
            raise SpecError(f"{where}: field {key!r} must be {wanted}, got {value!r}")
        if key == "ratio":
            if not value > 1:
                raise SpecError(f"{where}: field 'ratio' must be greater than 1, got {value!r}")
        elif value < 1:
            raise SpecError(f"{where}: field {key!r} must be a positive integer, got {value!r}")
        fields[key] = value
    return Row(index=index, type=kind, fields=fields)


def parse_spec(text: str, source: str) -> Spec:
    """Validate the TOML text of a spec; ``source`` names it in every error."""
    import tomllib  # here, not at the top: `mnetcost ratio` never reads a spec and starts faster

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    for key, value in data.items():
        if key == "layers":
            continue
        if key not in TOP_FIELDS:
            raise SpecError(f"{source}: unknown top-level field {key!r} (fields: layers, {', '.join(TOP_FIELDS)})")
        if not isinstance(value, TOP_FIELDS[key]) or isinstance(value, bool):
            raise SpecError(f"{source}: top-level field {key!r} must be {TOP_FIELDS[key].__name__}, got {value!r}")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{source}: no [[layers]] rows")
    rows = tuple(_check_row(source, i, raw) for i, raw in enumerate(layers, start=1))
    if rows[-1].type != "fc":
        raise SpecError(f"{source}: row {len(rows)} ({rows[-1].type}): the last row must be 'fc' (the classifier)")
    for row in rows[:-1]:
        if row.type == "fc":
            raise SpecError(f"{source}: row {row.index} (fc): 'fc' may only be the last row")
    in_channels = data.get("in_channels", 3)
    if in_channels < 1:
        raise SpecError(f"{source}: top-level field 'in_channels' must be positive, got {in_channels}")
    name = data.get("name") or Path(source).stem
    return Spec(
        name=name,
        source=source,
        rows=rows,
        title=data.get("title", ""),
        paper_table=data.get("paper_table"),
        in_channels=in_channels,
    )


def load_spec(variant: str | Path) -> Spec:
    """A built-in variant by name (``base``, ``mp3``, ``fmp``) or a spec file by path."""
    text_variant = str(variant)
    if text_variant in BUILTIN_VARIANTS:
        return parse_spec(spec_text(text_variant), f"{text_variant} (built-in)")
    return parse_spec(spec_text(text_variant), text_variant)


def spec_text(variant: str | Path) -> str:
    """The TOML text of a built-in variant or of a spec file (every refusal in one line)."""
    text_variant = str(variant)
    if text_variant in BUILTIN_VARIANTS:
        return (BUILTIN_DIR / f"{text_variant}.toml").read_text(encoding="utf-8")
    path = Path(text_variant)
    if not path.exists():
        raise SpecError(
            f"unknown variant {text_variant!r}: not one of {', '.join(BUILTIN_VARIANTS)} and no such spec file"
        )
    if path.is_dir():
        raise SpecError(f"{text_variant}: is a directory, not a spec file")
    if not path.is_file():  # a named pipe or /dev/urandom would block or never end
        raise SpecError(f"{text_variant}: not a regular file (a pipe, device or socket); give a spec file")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{text_variant}: {path.stat().st_size:,} bytes; a spec file is at most "
                        f"{MAX_SPEC_BYTES:,} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{text_variant}: cannot read spec file: {exc}") from None
