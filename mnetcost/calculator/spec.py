"""Declarative architecture specs: loading and validation (standard library only).

A spec is a TOML file: a few top-level keys and an ordered array of ``[[layers]]`` rows.
The three tables of the paper ship as ``base``, ``mp3`` and ``fmp`` inside the package, and the
MobileNet family as ``mobilenet_v2``, ``mobilenet_v3_large`` and ``mobilenet_v3_small`` (each also
with ``_mp3`` and ``_fmp``: the paper's downsampling on them); anywhere a variant name is accepted,
a path to a user's own spec file is accepted too.

Row types and their fields (defaults in brackets):

=====================  =======================================================================
``conv``               full convolution: ``filters`` (alpha-scaled) or ``expansion`` (times
                       the input channels), ``kernel`` [3], ``stride`` [1], ``activation``
                       [the spec's], ``bn`` [true], ``bias`` [false], ``widen_only`` [false:
                       alpha > 1 widens it, alpha < 1 leaves it, as MobileNetV2's last conv],
                       ``keras_width`` [scaled]: how the ``keras`` rounding scales ``filters``
                       (``fixed``: never, as Keras's MobileNetV3 stem; ``widen_only``: only for
                       alpha > 1, as its 1024/1280 head)
``dws``                depthwise separable block: depthwise ``kernel`` x ``kernel`` conv mapping C
                       to C*delta channels (groups = C) with ``stride`` [1], then a 1x1 pointwise
                       conv to ``filters`` (alpha-scaled); ``repeat`` [1] stacks identical blocks;
                       ``activation`` [the spec's]
``inverted_residual``  MobileNetV2/V3 block: 1x1 expansion to ``expansion`` x C [6] or to ``expand``
                       channels (alpha-scaled; no expansion layer when that equals C), ``kernel``
                       x ``kernel`` depthwise conv (3 or 5 [3], C -> C*delta) with ``stride`` [1],
                       optional squeeze-excite (``se`` [false], ``se_reduction`` [4],
                       ``se_divisor`` [8]), linear 1x1 projection to ``filters`` (alpha-scaled),
                       and a residual add (``residual`` [where stride is 1 and the rounded input
                       and output widths are equal; true: a configuration where they differ is
                       refused]); ``activation`` [the spec's] for the expansion and the
                       depthwise conv; ``repeat`` [1] stacks blocks, the first with ``stride``,
                       the others with stride 1 (MobileNetV2's table)
``maxpool``            max pooling, 'same' padding: ``kernel`` [3], ``stride`` [2]
``fmp``                fractional max pooling, output size floor(size / ``ratio``): ``ratio`` (> 1)
``avgpool``            global average pooling (no fields)
``fc``                 fully connected classifier with bias, to the number of classes (no fields)
=====================  =======================================================================

Activations: ``relu``, ``relu6``, ``hardswish``, ``hardsigmoid``. Squeeze-excite, as MobileNetV3
(and torchvision's ``SqueezeExcitation``): global average pool of the depthwise output, 1x1 conv
with bias to ``make_divisible(C_dw // se_reduction, se_divisor)`` channels, ReLU, 1x1 conv with
bias back to C_dw, hard-sigmoid, and the depthwise output multiplied by that gate per channel.

Top-level keys: ``name``, ``title``, ``description``, ``paper_table``, ``in_channels`` [3], and the
defaults a spec gives its users: ``classes`` [10], ``resolution`` [32], ``rounding`` [truncate] (the
width rounding rule: truncate, nearest, divisible8 or keras), ``activation`` [relu]; ``downsample``
[stride]: ``maxpool`` or ``fmp`` turn every stride s > 1 of the spec into stride 1 and a pool
(a 3x3/s 'same' max pool, or a fractional max pool of ``fmp_ratio`` [1.44]) after a strided
``conv`` row and before a strided block, which keeps the residual decision of its strided form
(the rule of the paper's Table 2); ``extends`` names a built-in variant whose rows this spec reuses
(it then has no rows of its own and changes only top-level keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mnetcost.errors import SpecError

BUILTIN_DIR = Path(__file__).resolve().parent / "specs"  # the package's own spec files

PAPER_VARIANTS = ("base", "mp3", "fmp")  # the paper's Tables 1-3 (what `sweep --variant all` prices)
FAMILY_VARIANTS = ("mobilenet_v2", "mobilenet_v2_mp3", "mobilenet_v2_fmp",
                   "mobilenet_v3_large", "mobilenet_v3_large_mp3", "mobilenet_v3_large_fmp",
                   "mobilenet_v3_small", "mobilenet_v3_small_mp3", "mobilenet_v3_small_fmp")
BUILTIN_VARIANTS = PAPER_VARIANTS + FAMILY_VARIANTS
MAX_SPEC_BYTES = 1 << 20  # a spec is a few kilobytes; a larger file is not one

ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid")
DOWNSAMPLING = ("stride", "maxpool", "fmp")
ROUNDING_RULES = ("truncate", "nearest", "divisible8", "keras")  # the resolver's ROUNDINGS, by name
KERAS_WIDTHS = ("scaled", "fixed", "widen_only")  # a conv row's ``keras_width``
IR_KERNELS = (3, 5)

# field name -> (python types accepted, default or REQUIRED)
REQUIRED = object()
_INT = (int,)
_NUM = (int, float)
_BOOL = (bool,)
_STR = (str,)
ROW_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], object]]] = {
    "conv": {"filters": (_INT, None), "expansion": (_NUM, None), "kernel": (_INT, 3), "stride": (_INT, 1),
             "activation": (_STR, None), "bn": (_BOOL, True), "bias": (_BOOL, False), "widen_only": (_BOOL, False),
             "keras_width": (_STR, "scaled")},
    "dws": {"filters": (_INT, REQUIRED), "kernel": (_INT, 3), "stride": (_INT, 1), "repeat": (_INT, 1),
            "activation": (_STR, None)},
    "inverted_residual": {"filters": (_INT, REQUIRED), "expansion": (_NUM, None), "expand": (_INT, None),
                          "kernel": (_INT, 3), "stride": (_INT, 1), "repeat": (_INT, 1), "activation": (_STR, None),
                          "se": (_BOOL, False), "se_reduction": (_INT, None), "se_divisor": (_INT, None),
                          "residual": (_BOOL, None)},
    "maxpool": {"kernel": (_INT, 3), "stride": (_INT, 2)},
    "fmp": {"ratio": (_NUM, REQUIRED)},
    "avgpool": {},
    "fc": {},
}
DEFAULT_EXPANSION = 6  # MobileNetV2's t
DEFAULT_SE_REDUCTION = 4
DEFAULT_SE_DIVISOR = 8
TOP_FIELDS = {"name": str, "title": str, "paper_table": int, "in_channels": int, "description": str,
              "classes": int, "resolution": int, "rounding": str, "activation": str,
              "downsample": str, "fmp_ratio": (int, float), "extends": str}
# what a spec that ``extends`` another takes from it: its rows and these keys (unless it sets them)
INHERITED = ("title", "description", "in_channels", "classes", "resolution", "rounding", "activation",
             "downsample", "fmp_ratio")


@dataclass(frozen=True)
class Row:
    """One validated row of a spec: its type, its fields with defaults filled, its 1-based index."""

    index: int
    type: str
    fields: dict = field(hash=False)

    def __getitem__(self, key: str):
        return self.fields[key]

    def get(self, key: str, default=None):
        return self.fields.get(key, default)


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    rows: tuple[Row, ...]
    title: str = ""
    paper_table: int | None = None
    in_channels: int = 3
    classes: int = 10  # the defaults of --classes, --resolution, --rounding for this spec
    resolution: int = 32
    rounding: str = "truncate"
    activation: str = "relu"  # of every conv/block row that names none
    downsample: str = "stride"
    fmp_ratio: float = 1.44
    extends: str | None = None
    description: str = ""


def _is_type(value, types: tuple[type, ...]) -> bool:
    if types == _BOOL:
        return isinstance(value, bool)
    # bool is an int subclass in Python; a TOML `true` is never a valid count or size.
    return isinstance(value, types) and not isinstance(value, bool)


def _wanted(types: tuple[type, ...]) -> str:
    return {_INT: "an integer", _NUM: "a number", _BOOL: "true or false", _STR: "a string"}[types]


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
            raise SpecError(f"{where}: field {key!r} must be {_wanted(types)}, got {value!r}")
        if key == "ratio":
            if not value > 1:
                raise SpecError(f"{where}: field 'ratio' must be greater than 1, got {value!r}")
        elif key == "activation":
            if value not in ACTIVATIONS:
                raise SpecError(f"{where}: field 'activation': unknown activation {value!r} "
                                f"(one of {', '.join(ACTIVATIONS)})")
        elif key == "keras_width":
            if value not in KERAS_WIDTHS:
                raise SpecError(f"{where}: field 'keras_width' must be one of {', '.join(KERAS_WIDTHS)}, "
                                f"got {value!r}")
        elif key == "expansion":
            if not (value >= 1 and value < float("inf")):
                raise SpecError(f"{where}: field 'expansion' must be a number >= 1 (the expansion factor t), "
                                f"got {value!r}")
        elif key == "se_reduction":
            if value < 2:
                raise SpecError(f"{where}: field 'se_reduction' must be an integer >= 2 (squeeze to "
                                f"C / se_reduction channels), got {value!r}")
        elif types in (_INT, _NUM) and value < 1:
            raise SpecError(f"{where}: field {key!r} must be a positive integer, got {value!r}")
        fields[key] = value
    _check_row_rules(where, kind, raw, fields)
    return Row(index=index, type=kind, fields=fields)


def _check_row_rules(where: str, kind: str, raw: dict, fields: dict) -> None:
    """The rules that tie a row's fields together (filled in ``fields`` with their defaults)."""
    if kind == "conv":
        if fields["filters"] is None and fields["expansion"] is None:
            raise SpecError(f"{where}: field 'filters' is missing (or give 'expansion', times the input channels)")
        if fields["filters"] is not None and fields["expansion"] is not None:
            raise SpecError(f"{where}: give one of 'filters' (a width) and 'expansion' (times the input "
                            "channels), not both")
        if fields["widen_only"] and fields["filters"] is None:
            raise SpecError(f"{where}: field 'widen_only' needs 'filters' (a width that alpha scales)")
        if "keras_width" in raw and fields["filters"] is None:
            raise SpecError(f"{where}: field 'keras_width' needs 'filters' (a width that alpha scales)")
    if kind == "inverted_residual":
        if fields["expansion"] is not None and fields["expand"] is not None:
            raise SpecError(f"{where}: give at most one of 'expansion' (the factor t) and 'expand' (a width)")
        if fields["expansion"] is None and fields["expand"] is None:
            fields["expansion"] = DEFAULT_EXPANSION
        if fields["kernel"] not in IR_KERNELS:
            raise SpecError(f"{where}: field 'kernel' must be 3 or 5 (the family's depthwise kernels), "
                            f"got {fields['kernel']!r}")
        if not fields["se"]:
            for key in ("se_reduction", "se_divisor"):
                if key in raw:
                    raise SpecError(f"{where}: field {key!r} needs se = true")
        fields["se_reduction"] = fields["se_reduction"] or DEFAULT_SE_REDUCTION
        fields["se_divisor"] = fields["se_divisor"] or DEFAULT_SE_DIVISOR
        if fields["residual"] and (fields["stride"] != 1):
            raise SpecError(f"{where}: residual = true cannot add the block's input to its output: stride "
                            f"{fields['stride']} changes the spatial size (a residual needs stride 1)")


def _check_top(source: str, data: dict) -> None:
    for key, value in data.items():
        if key == "layers":
            continue
        if key not in TOP_FIELDS:
            raise SpecError(f"{source}: unknown top-level field {key!r} (fields: layers, {', '.join(TOP_FIELDS)})")
        types = TOP_FIELDS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = types.__name__ if isinstance(types, type) else "number"
            raise SpecError(f"{source}: top-level field {key!r} must be {wanted}, got {value!r}")
    for key in ("in_channels", "classes", "resolution"):
        if key in data and data[key] < 1:
            raise SpecError(f"{source}: top-level field {key!r} must be positive, got {data[key]}")
    choices = {"rounding": ROUNDING_RULES, "activation": ACTIVATIONS, "downsample": DOWNSAMPLING}
    for key, allowed in choices.items():
        if key in data and data[key] not in allowed:
            raise SpecError(f"{source}: top-level field {key!r} must be one of {', '.join(allowed)}, "
                            f"got {data[key]!r}")
    if "fmp_ratio" in data and not 1 < data["fmp_ratio"] < float("inf"):
        raise SpecError(f"{source}: top-level field 'fmp_ratio' must be greater than 1, got {data['fmp_ratio']!r}")
    for key in ("name", "title"):  # shown in titles and tables: one printable line
        if key in data and not data[key].isprintable():
            raise SpecError(f"{source}: top-level field {key!r} must be one line of printable characters (no "
                            f"newline, tab or other control character), got {data[key]!r}")


def parse_spec(text: str, source: str, _extending: tuple[str, ...] = ()) -> Spec:
    """Validate the TOML text of a spec; ``source`` names it in every error."""
    import tomllib  # here, not at the top: `mnetcost ratio` never reads a spec and starts faster

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: not a spec: its arrays or tables nest too deeply to read") from None
    except ValueError as exc:  # an integer beyond Python's string-conversion limit (4,300 digits)
        raise SpecError(f"{source}: not a spec: {str(exc).split(';')[0]}") from None
    _check_top(source, data)
    name = data.get("name") or Path(source).stem
    if not name.isprintable():  # a file name with a newline: the name would forge a line of output
        raise SpecError(f"{source}: the spec's name {name!r} (its file name) holds a control character; give it a "
                        "top-level 'name'")
    if "extends" in data:
        return _extended(source, name, data, _extending)
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{source}: no [[layers]] rows")
    rows = tuple(_check_row(source, i, raw) for i, raw in enumerate(layers, start=1))
    if rows[-1].type != "fc":
        raise SpecError(f"{source}: row {len(rows)} ({rows[-1].type}): the last row must be 'fc' (the classifier)")
    for row in rows[:-1]:
        if row.type == "fc":
            raise SpecError(f"{source}: row {row.index} (fc): 'fc' may only be the last row")
    options = {key: data[key] for key in INHERITED if key in data}
    return Spec(name=name, source=source, rows=rows, paper_table=data.get("paper_table"), **options)


def _extended(source: str, name: str, data: dict, extending: tuple[str, ...]) -> Spec:
    """A spec that reuses a built-in variant's rows and changes some of its top-level keys."""
    from dataclasses import replace

    parent = data["extends"]
    if parent not in BUILTIN_VARIANTS:
        raise SpecError(f"{source}: top-level field 'extends' must name a built-in variant "
                        f"({', '.join(BUILTIN_VARIANTS)}), got {parent!r}")
    if parent in extending or len(extending) > len(BUILTIN_VARIANTS):
        raise SpecError(f"{source}: 'extends' goes round in a circle ({' -> '.join((*extending, parent))})")
    if "layers" in data:
        raise SpecError(f"{source}: a spec that extends {parent!r} takes its rows; it has no [[layers]] of its own")
    base = _builtin(parent, (*extending, parent))
    options = {key: data[key] for key in INHERITED if key in data}
    return replace(base, name=name, source=source, paper_table=data.get("paper_table"), extends=parent, **options)


@lru_cache(maxsize=None)  # the package's own files: parsed once per process (a sweep asks for each several times)
def _builtin(variant: str, extending: tuple[str, ...] = ()) -> Spec:
    text = (BUILTIN_DIR / f"{variant}.toml").read_text(encoding="utf-8")
    return parse_spec(text, f"{variant} (built-in)", extending or (variant,))


def load_spec(variant: str | Path) -> Spec:
    """A built-in variant by name (``base``, ``mp3``, ``fmp``, ``mobilenet_v2``, ...) or a spec file by path."""
    text_variant = str(variant)
    if text_variant in BUILTIN_VARIANTS:
        return _builtin(text_variant)
    return parse_spec(spec_text(text_variant), text_variant)


def spec_text(variant: str | Path) -> str:
    """The TOML text of a built-in variant or of a spec file (every refusal in one line)."""
    text_variant = str(variant)
    if text_variant in BUILTIN_VARIANTS:
        return (BUILTIN_DIR / f"{text_variant}.toml").read_text(encoding="utf-8")
    path = Path(text_variant)
    from mnetcost.calculator.importers import is_model_file

    if is_model_file(text_variant):  # a user's own model: priced by table, checked by crosscheck --runtime tflm
        raise SpecError(f"{text_variant}: a model file, not a spec: it has no alpha/delta to resolve or sweep; "
                        "mnetcost table --variant FILE prices it and crosscheck --runtime tflm --variant FILE checks "
                        "it")
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
