"""Click option types and decorators shared by every command (one definition each)."""
from __future__ import annotations

import click

from mnetcost.calculator import params
from mnetcost.cli.render import FORMATS


def fail(message: str):
    """A usage error: one line on stderr, exit status 2, nothing written."""
    raise click.UsageError(message)


def is_given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (on the command line or from the environment), not its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def install_hint(extra: str) -> str:
    """How to add an extra, right for an installed package and for a checkout alike."""
    return f"pip install 'mnetcost[{extra}]' (or pip install '.[{extra}]' in a checkout of mnetcost)"


def require_torch(command: str, fvcore: bool = False) -> None:
    """One line and exit 2 when the ``[torch]`` extra a command needs is not installed."""
    require_extra(command, ("torch", "fvcore") if fvcore else ("torch",), "torch")


def require_extra(command: str, needed: tuple[str, ...], extra: str) -> None:
    """As :func:`require_torch`, for another extra (``require_extra("grid --executor ray", ("ray",), "ray")``)."""
    from mnetcost.errors import MnetcostError

    for name in needed:
        try:
            __import__(name)
        except ImportError:
            raise MnetcostError(f"mnetcost {command} needs {' and '.join(needed)} ({name} is not installed): "
                                f"{install_hint(extra)}") from None


def require_deploy(command: str) -> None:
    """One line and exit 2 without the ``[deploy]`` extra: torch, onnx, onnxruntime and onnxscript
    (which PyTorch's ONNX exporter needs)."""
    require_extra(command, ("torch", "onnx", "onnxruntime", "onnxscript"), "deploy")


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose values are read when first needed (parsing, help, completion):
    defining the option then loads nothing, so a command that does not need the module holding them
    (the boards of --target, say) does not pay for importing it at every start."""

    def __init__(self, load, case_sensitive: bool = True):  # noqa: D107 - click.Choice's own, deferred
        self._load = load
        self._choices = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple:
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


def _target_names() -> tuple:
    from mnetcost.calculator.targets import TARGETS

    return tuple(TARGETS)


def _tflm_build_names() -> tuple:
    from mnetcost.calculator.targets import TFLM_BUILD_NAMES

    return TFLM_BUILD_NAMES


class _Parsed(click.ParamType):
    """A click type around one of the pure parsers in :mod:`mnetcost.calculator.params`."""

    def __init__(self, name: str, parser):
        self.name = name
        self._parser = parser

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parser(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def integer(what: str = "value", minimum: int = 1, name: str = "integer") -> click.ParamType:
    """An integer option >= ``minimum``, ASCII digits only (use instead of ``click.IntRange``,
    whose ``int()`` accepts '١٠' and '1_000')."""
    return _Parsed(name, lambda text: params.parse_int(text, what, minimum))


def number(what: str = "value", *, minimum: float | None = None, minimum_open: bool = False,
           maximum: float | None = None, maximum_open: bool = False, name: str = "number") -> click.ParamType:
    """A finite float option in a range, ASCII digits only (use instead of ``click.FloatRange``,
    which accepts nan, inf and 1e400)."""

    def parse(text):
        value = params.parse_number(text, what)
        low_bad = minimum is not None and (value <= minimum if minimum_open else value < minimum)
        high_bad = maximum is not None and (value >= maximum if maximum_open else value > maximum)
        if low_bad or high_bad:
            low = "" if minimum is None else f"{'>' if minimum_open else '>='} {minimum:g}"
            high = "" if maximum is None else f"{'<' if maximum_open else '<='} {maximum:g}"
            raise ValueError(f"{what} must be {' and '.join(b for b in (low, high) if b)}, got {text!r}")
        return value

    return _Parsed(name, parse)


ALPHA = _Parsed("alpha", params.parse_alpha)
ALPHA_LIST = _Parsed("alpha[,alpha|start:stop:step...]", params.parse_alpha_list)
DELTA = _Parsed("delta", lambda text: params.parse_positive_int(text, "delta"))
DELTA_LIST = _Parsed("delta[,delta...]", lambda text: params.parse_int_list(text, "delta"))
POSITIVE = integer("value")
NON_NEGATIVE = integer("value", minimum=0)
CLASSES = _Parsed("classes", lambda text: params.parse_positive_int(text, "classes"))
CLASSES_LIST = _Parsed("classes[,classes...]", lambda text: params.parse_int_list(text, "classes"))
RESOLUTION = _Parsed("pixels", lambda text: params.parse_positive_int(text, "resolution"))
RESOLUTION_LIST = _Parsed("pixels[,pixels...]", lambda text: params.parse_int_list(text, "resolution"))
COUNT_SI = _Parsed("count[K|M|G]", params.parse_si)


def byte_count(what: str) -> click.ParamType:
    """A byte budget: SI (K, M, G) or binary (KiB, MiB, GiB) suffix; negative refused."""
    return _Parsed("bytes[K|M|G|KiB|MiB|GiB]", lambda text: params.parse_bytes(text, "budget"))


def format_option(function):
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format; json is a stable contract for scripts (exact integers).",
    )(function)


def variant_option(function):
    return click.option(
        "--variant", "-v", default="base", show_default=True, metavar="base|mp3|fmp|mobilenet_v2|...|PATH",
        help="Paper table (base = Table 1, mp3 = Table 2, fmp = Table 3), a MobileNet of the family "
             "(mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, each also with _mp3 and _fmp), "
             "a spec file, or (table; crosscheck --runtime tflm) a model file: FILE.tflite, FILE.onnx.",
    )(function)


def convention_option(function):
    from mnetcost.calculator.cost import CONVENTIONS, DEFAULT_CONVENTION

    return click.option(
        "--convention", type=click.Choice(tuple(CONVENTIONS)), default=DEFAULT_CONVENTION, show_default=True,
        help="Counting convention: paper (Keras: BN 4/channel), trainable (BN 2/channel), weights "
             "(no BN), flops (2 x Mult-Adds), fvcore (fvcore's defaults: + BN and pooling ops), "
             "deploy (BN folded: one bias per conv output channel), elementwise (paper + residual adds, "
             "squeeze-excite gate and hard-swish/hard-sigmoid multiplies).",
    )(function)


def dtype_option(function=None, *, target: bool = True):
    """--dtype fp32|fp16|int8 (None when not given: fp32, or int8 with --target). ``target`` False for a
    command without --target: its help then does not mention one (``@dtype_option(target=False)``)."""
    from mnetcost.calculator.memory import DTYPES

    def decorate(function):
        return click.option(
            "--dtype", type=click.Choice(tuple(DTYPES)), default=None,
            help="Precision of the memory figures: fp32 (default), fp16, or int8 (int8 weights and "
                 "activations, int32 biases, one fp32 scale per output channel"
                 + ("; the default with --target)." if target else ")."),
        )(function)

    return decorate if function is None else decorate(function)


def memory_options(function):
    """--target NAME, --max-peak-memory BYTES, --max-weight-bytes BYTES, --flash-reserve BYTES."""
    for option in reversed((
        click.option("--target", type=LazyChoice(_target_names, case_sensitive=False), default=None,
                     help="Microcontroller board whose SRAM and Flash must hold the model (see "
                          "docs/targets.md); implies --dtype int8 unless given. SRAM judges TensorFlow Lite "
                          "Micro's arena and Flash the .tflite file (--runtime tflm, the default at int8), or "
                          "the peak activation bytes and the weight bytes (--runtime simple)."),
        click.option("--max-peak-memory", type=byte_count("--max-peak-memory"), default=None,
                     metavar="BYTES[K|M|G|KiB|MiB|GiB]",
                     help="RAM budget (256KiB = 262,144; 256K = 256,000); overrides the --target's SRAM. It "
                          "judges TensorFlow Lite Micro's arena with --runtime tflm (the default at int8), the "
                          "peak activation bytes with --runtime simple."),
        click.option("--max-weight-bytes", type=byte_count("--max-weight-bytes"), default=None,
                     metavar="BYTES[K|M|G|KiB|MiB|GiB]",
                     help="Flash budget (1MiB = 1,048,576); overrides the --target's Flash. It judges the int8 "
                          ".tflite file's bytes with --runtime tflm (the default at int8), plus TFLM's code for "
                          "its operators, the deployed weight bytes with --runtime simple; either with "
                          "--flash-reserve."),
        click.option("--flash-reserve", type=byte_count("--flash-reserve"), default=None,
                     metavar="BYTES[K|M|G|KiB|MiB|GiB]",
                     help="Flash kept for the application (startup code, drivers, your own code) in every Flash "
                          "verdict, beside the model and TFLM's code [default: 32KiB = 32,768]."),
    )):
        function = option(function)
    return function


def memory_dtype(dtype: str | None, target: str | None) -> str:
    """The dtype the memory figures use: as given; else int8 for a target board, fp32 otherwise."""
    from mnetcost.calculator.memory import DEFAULT_DTYPE, TARGET_DTYPE

    if dtype is not None:
        return dtype
    return TARGET_DTYPE if target is not None else DEFAULT_DTYPE


def runtime_option(function=None, *, target: bool = True):
    """--runtime simple|tflm (None when not given: see :func:`memory_settings`). ``target`` False for a
    command without --target and budgets (``@runtime_option(target=False)``): its default is simple."""
    def decorate(function):
        return click.option(
            "--runtime", type=click.Choice(("simple", "tflm")), default=None,
            help="Memory model: simple (layers one at a time, each holding its inputs and output; weights as "
                 "stored) or tflm (TensorFlow Lite Micro running the int8 .tflite export: its arena = the "
                 "planner's activations + persistent data, and the file's bytes as Flash) [default: "
                 + ("tflm with --target or a budget at int8, else simple]." if target else "simple]."),
        )(function)

    return decorate if function is None else decorate(function)


def memory_settings(dtype: str | None, runtime: str | None, target: str | None, budgeted: bool = False
                    ) -> tuple[str, str]:
    """(dtype, runtime) of the memory figures and verdicts: --runtime tflm means int8 (another --dtype is
    a usage error); without --runtime, tflm answers a --target or budget at int8, simple otherwise."""
    if runtime == "tflm":
        if dtype not in (None, "int8"):
            fail(f"--runtime tflm runs the int8 TensorFlow Lite file; --dtype {dtype} does not apply "
                 "(drop it, or use --runtime simple)")
        return "int8", "tflm"
    dtype = memory_dtype(dtype, target)
    if runtime is None:
        runtime = "tflm" if (target is not None or budgeted) and dtype == "int8" else "simple"
    return dtype, runtime


def tflm_build_option(function=None, *, target: bool = True):
    """--tflm-build host64|arm32 (None when not given: see :func:`tflm_build_for`). ``target`` False for a
    command without --target (``@tflm_build_option(target=False)``): its default is host64."""
    def decorate(function):
        return click.option(
            "--tflm-build", type=LazyChoice(_tflm_build_names), default=None,
            help="The TensorFlow Lite Micro build whose arena --runtime tflm gives: host64 (the 64-bit build of "
                 "tflite-micro's Python package, 8-byte pointers) or arm32 (a 32-bit Cortex-M build, 4-byte "
                 "pointers: smaller tensor, node and op-data structs) [default: "
                 + ("arm32 with a --target board, else host64]." if target else "host64]."),
        )(function)

    return decorate if function is None else decorate(function)


def tflm_build_for(build: str | None, runtime: str, target: str | None) -> str | None:
    """The tflite-micro build of the TFLM figures: as given; else the --target board's (its 32-bit
    build) or host64. None for runtime simple (a --tflm-build given there is a usage error)."""
    if runtime != "tflm":
        if build is not None:
            fail(f"--tflm-build {build} sizes TensorFlow Lite Micro's arena; it needs --runtime tflm")
        return None
    if build is not None:
        return build
    from mnetcost.calculator.targets import get_target
    from mnetcost.calculator.tflm import DEFAULT_BUILD

    return get_target(target).tflm_build if target is not None else DEFAULT_BUILD


def rounding_option(function):
    from mnetcost.calculator.resolver import ROUNDINGS

    return click.option(
        "--rounding", type=click.Choice(tuple(ROUNDINGS)), default=None,
        help="Width rounding: truncate = int(c * alpha) (Keras's MobileNet); nearest; divisible8 = "
             "make_divisible(c * alpha, 8) (torchvision's MobileNetV2/V3); keras = Keras applications' own "
             "widths for every variant (V3: stem 16, expansions as ratio x the rounded input, head 1024/1280 "
             "for alpha <= 1) [default: the spec's: truncate for base/mp3/fmp, divisible8 for the "
             "mobilenet_v2/v3 variants].",
    )(function)


def config_options(*, lists: bool, spec_defaults: bool = False):
    """--alpha, --delta, --classes, --resolution; comma lists where ``lists``. With ``spec_defaults``
    --classes and --resolution default to None, the spec's own (10 and 32 for the paper's
    variants, 1,000 and 224 for MobileNetV2/V3); else to 10 and 32 (commands bound to CIFAR data)."""
    classes_default = None if spec_defaults else 10
    resolution_default = None if spec_defaults else 32
    spec_note = " [default: the spec's: 10 for base/mp3/fmp, 1000 for mobilenet_v2/v3]" if spec_defaults else ""
    pixels_note = " [default: the spec's: 32 for base/mp3/fmp, 224 for mobilenet_v2/v3]" if spec_defaults else ""

    def decorate(function):
        for option in reversed((
            click.option("--alpha", "-a", type=ALPHA_LIST if lists else ALPHA, default="1" if lists else 1.0,
                         show_default=True,
                         help="Width multiplier α > 0" + (" (comma list or start:stop:step)." if lists else ".")),
            click.option("--delta", "-d", type=DELTA_LIST if lists else DELTA, default="1" if lists else 1,
                         show_default=True,
                         help="Depth multiplier δ, a positive integer" + (" (comma list)." if lists else ".")),
            click.option("--classes", "-c", type=CLASSES, default=classes_default, show_default=not spec_defaults,
                         help="Number of classes (10 = CIFAR-10, 100 = CIFAR-100)." + spec_note),
            click.option("--resolution", "-r", type=RESOLUTION, default=resolution_default,
                         show_default=not spec_defaults, help="Input height and width in pixels." + pixels_note),
        )):
            function = option(function)
        return function

    return decorate


NOTE_LIST_LIMIT = 5  # a note names at most this many values; more are given as a count and a range


def note_alpha(alphas) -> None:
    """α > 1 is meaningful (a wider network) but unusual: say so on stderr."""
    wide = [a for a in ([alphas] if isinstance(alphas, (int, float)) else alphas) if a > 1]
    if len(wide) > NOTE_LIST_LIMIT:  # a range, not a list of every value: 1.01:1.5:0.01 is 50 of them
        click.echo(f"note: {len(wide):,} alpha values > 1 (from {min(wide):g} to {max(wide):g}) widen every "
                   "layer beyond MobileNet's widths", err=True)
    elif wide:
        click.echo(f"note: alpha {', '.join(f'{a:g}' for a in wide)} > 1 widens every layer beyond "
                   "MobileNet's widths", err=True)
