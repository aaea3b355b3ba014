"""Click option types and decorators shared by every command (one definition each)."""
from __future__ import annotations

import click

from mnetcost.calculator import params
from mnetcost.cli.render import FORMATS


def fail(message: str):
    """A usage error: one line on stderr, exit status 2, nothing written."""
    raise click.UsageError(message)


def require_torch(command: str, fvcore: bool = False) -> None:
    """One line and exit 2 when the ``[torch]`` extra a command needs is not installed."""
    from mnetcost.errors import MnetcostError

    needed = ("torch", "fvcore") if fvcore else ("torch",)
    for name in needed:
        try:
            __import__(name)
        except ImportError:
            raise MnetcostError(f"mnetcost {command} needs {' and '.join(needed)} ({name} is not installed): "
                                "pip install 'mnetcost[torch]'") from None


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


ALPHA = _Parsed("alpha", params.parse_alpha)
ALPHA_LIST = _Parsed("alpha[,alpha|start:stop:step...]", params.parse_alpha_list)
DELTA = _Parsed("delta", lambda text: params.parse_positive_int(text, "delta"))
DELTA_LIST = _Parsed("delta[,delta...]", lambda text: params.parse_int_list(text, "delta"))
POSITIVE = _Parsed("integer", lambda text: params.parse_positive_int(text, "value"))
CLASSES = _Parsed("classes", lambda text: params.parse_positive_int(text, "classes"))
CLASSES_LIST = _Parsed("classes[,classes...]", lambda text: params.parse_int_list(text, "classes"))
RESOLUTION = _Parsed("pixels", lambda text: params.parse_positive_int(text, "resolution"))
RESOLUTION_LIST = _Parsed("pixels[,pixels...]", lambda text: params.parse_int_list(text, "resolution"))
COUNT_SI = _Parsed("count[K|M|G]", params.parse_si)


def format_option(function):
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format; json is a stable contract for scripts (exact integers).",
    )(function)


def variant_option(function):
    return click.option(
        "--variant", "-v", default="base", show_default=True, metavar="base|mp3|fmp|PATH",
        help="Paper table (base = Table 1, mp3 = Table 2, fmp = Table 3) or a spec file.",
    )(function)


def convention_option(function):
    from mnetcost.calculator.cost import CONVENTIONS, DEFAULT_CONVENTION

    return click.option(
        "--convention", type=click.Choice(tuple(CONVENTIONS)), default=DEFAULT_CONVENTION, show_default=True,
        help="Counting convention: paper (Keras: BN 4/channel), trainable (BN 2/channel), weights "
             "(no BN), flops (2 x Mult-Adds), fvcore (fvcore's defaults: + BN and pooling ops).",
    )(function)


def rounding_option(function):
    from mnetcost.calculator.resolver import ROUNDINGS

    return click.option(
        "--rounding", type=click.Choice(tuple(ROUNDINGS)), default="truncate", show_default=True,
        help="Width rounding: truncate = Keras int(c * alpha); nearest; divisible8 (MobileNetV2).",
    )(function)


def config_options(*, lists: bool):
    """--alpha, --delta, --classes, --resolution; comma lists where ``lists``."""

    def decorate(function):
        for option in reversed((
            click.option("--alpha", "-a", type=ALPHA_LIST if lists else ALPHA, default="1" if lists else 1.0,
                         show_default=True,
                         help="Width multiplier α > 0" + (" (comma list or start:stop:step)." if lists else ".")),
            click.option("--delta", "-d", type=DELTA_LIST if lists else DELTA, default="1" if lists else 1,
                         show_default=True,
                         help="Depth multiplier δ, a positive integer" + (" (comma list)." if lists else ".")),
            click.option("--classes", "-c", type=CLASSES, default=10, show_default=True,
                         help="Number of classes (10 = CIFAR-10, 100 = CIFAR-100)."),
            click.option("--resolution", "-r", type=RESOLUTION, default=32, show_default=True,
                         help="Input height and width in pixels."),
        )):
            function = option(function)
        return function

    return decorate


def note_alpha(alphas) -> None:
    """α > 1 is meaningful (a wider network) but unusual: say so on stderr."""
    wide = [a for a in ([alphas] if isinstance(alphas, (int, float)) else alphas) if a > 1]
    if wide:
        click.echo(f"note: alpha {', '.join(f'{a:g}' for a in wide)} > 1 widens every layer beyond "
                   "MobileNet's widths", err=True)
