"""The ``mnetcost`` command line: a thin click layer over the library.

Heavy imports (torch, fvcore, matplotlib, pandas) happen inside the commands that need them, so
``ratio``, ``table``, ``paper`` and ``sweep`` answer at once. Every error a user can cause is one
line on stderr with exit status 2; nothing is written before the input has been checked.
"""
from __future__ import annotations

import sys

import click

from mnetcost import __version__
from mnetcost.errors import MnetcostError


PREFIX = "mnetcost: error: "  # every error the CLI prints starts with it, whatever the command

# Characters of mnetcost's output and their ASCII stand-ins on a terminal or file whose encoding
# lacks them (PYTHONIOENCODING=latin-1, LANG=C): the output stays readable instead of failing.
ASCII_FALLBACK = {
    "α": "alpha", "δ": "delta", "×": "x", "·": "*", "²": "^2", "━": "-", "─": "-", "│": "|", "≤": "<=",
    "≥": ">=", "≈": "~", "✓": "ok", "✗": "x", "★": "*", "–": "-", "—": "-", "→": "->", "…": "...",
    "∝": "~", "±": "+/-", "√": "sqrt", "‘": "'", "’": "'", "“": '"', "”": '"',
}


def _ascii_fallback(exc: UnicodeEncodeError):
    text = exc.object[exc.start:exc.end]
    return "".join(ASCII_FALLBACK.get(char, "?") for char in text), exc.end


def error_line(message: object) -> str:
    """``mnetcost: error: <message>`` on one line (newlines and runs of spaces folded)."""
    return PREFIX + " ".join(str(message).split())


def print_error(message: object) -> None:
    """The one way the CLI reports an error: one line on stderr (under torchrun, by rank 0 only:
    every rank meets the same error)."""
    if torchrun_rank():
        return
    click.echo(error_line(message), err=True)


def torchrun_rank() -> int | None:
    """This process's rank when torchrun started it with several processes, else None."""
    import os

    if not os.environ.get("TORCHELASTIC_RUN_ID"):
        return None
    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else None
    except ValueError:
        return None


def checked_stream(stream):
    """``stream`` made to write every byte or raise: a text stream straight over an unbuffered
    file (``PYTHONUNBUFFERED=1``, ``python -u``) is rewrapped over a ``BufferedWriter``, which
    writes the rest after a short ``write`` (a nearly full disk, a file size limit) and raises
    the system's error (ENOSPC, EFBIG) when no more goes. CPython's ``TextIOWrapper`` hands its
    bytes to the unbuffered file once and drops what a short ``write`` left over, exiting 0 with
    a truncated output. Anything else (a buffered stream, a test's capture) is returned as is."""
    import io

    raw = getattr(stream, "buffer", None)
    if not isinstance(stream, io.TextIOWrapper) or not isinstance(raw, io.RawIOBase):
        return stream
    stream.flush()
    checked = io.TextIOWrapper(io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors,
                               newline=None, line_buffering=stream.line_buffering, write_through=True)
    stream.detach()  # the new wrapper owns the file now; the old one must not close it when collected
    return checked


def _prepare_streams() -> None:
    """Every write to stdout and stderr is whole or an error (:func:`checked_stream`), and an
    encoding that cannot show α or ━ gets ASCII stand-ins rather than an exception."""
    import codecs

    try:
        codecs.lookup_error("mnetcost-ascii")
    except LookupError:
        codecs.register_error("mnetcost-ascii", _ascii_fallback)
    if sys.stdout is sys.__stdout__:
        sys.stdout = sys.__stdout__ = checked_stream(sys.stdout)
    if sys.stderr is sys.__stderr__:
        sys.stderr = sys.__stderr__ = checked_stream(sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="mnetcost-ascii")
            except (ValueError, OSError, AttributeError):
                pass


def _silence_stdout() -> None:
    """After stdout failed (a closed pipe, a full device), point its descriptor at /dev/null so
    that Python's final flush at exit does not print a second error."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _stdout_failed(exc: OSError) -> bool:
    """Whether ``exc`` (an OSError without a file name) came from writing to stdout: a frame on
    its way held the stdout stream (click.echo's ``file``), or stdout cannot be flushed now."""
    streams = (sys.stdout, getattr(sys.stdout, "buffer", None))
    frame = exc.__traceback__
    while frame is not None:
        if any(value is stream for value in frame.tb_frame.f_locals.values() for stream in streams
               if stream is not None):
            return True
        frame = frame.tb_next
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        return True
    return False


def file_written(exc: OSError) -> str | None:
    """The name of the file an OSError without a file name came from (a ``write`` on an open
    file: "No space left on device" names no file): the innermost frame on the error's way that
    held a named file other than stdout or stderr (closed by then, as a ``with`` block leaves it)."""
    import io

    frames = []
    frame = exc.__traceback__
    while frame is not None:
        frames.append(frame.tb_frame)
        frame = frame.tb_next
    standard = tuple(s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None)
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            name = getattr(value, "name", None)
            if isinstance(value, io.IOBase) and isinstance(name, str) \
                    and not any(value is s or value is getattr(s, "buffer", None) for s in standard):
                return name
    return None


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: the file, then the system's reason (every write
    error names its file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename if exc.filename is not None else file_written(exc)
    if name is not None:
        return f"{name}: {reason}"
    return reason


class CLIGroup(click.Group):
    """A group whose errors are one line, ``mnetcost: error: ...``, with exit status 2 for bad input
    (1 for a failure of the system: a full disk, a closed output), and whose commands are imported
    only when they run, so the calculator starts fast."""

    def list_commands(self, ctx):
        from mnetcost.cli.commands import available

        return available()

    def get_command(self, ctx, name):
        from mnetcost.cli.commands import COMMAND_MODULES, load

        return load(name) if name in COMMAND_MODULES else None

    def __call__(self, *args, **kwargs):
        """Under torchrun an error (exit 1 or 2) ends every rank with status 0 once rank 0 has
        printed it: torchrun answers any other status with its own traceback and failure report."""
        try:
            return self.main(*args, **kwargs)
        except SystemExit as exc:
            if exc.code in (1, 2) and torchrun_rank() is not None:
                raise SystemExit(0) from None
            raise

    def main(self, args=None, prog_name=None, **extra):
        if sys.stdout is None:  # started with stdout closed (`mnetcost table >&-`): refuse before any work
            print_error("standard output is closed; nothing can be written (redirect it to a file or /dev/null)")
            sys.exit(1)
        _prepare_streams()
        try:
            result = super().main(args=args, prog_name=prog_name or "mnetcost", standalone_mode=False, **extra)
            sys.stdout.flush()
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `mnetcost` prints help
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.UsageError as exc:
            print_error(exc.format_message())
            sys.exit(exc.exit_code)
        except MnetcostError as exc:
            print_error(exc)
            sys.exit(2)
        except click.ClickException as exc:
            print_error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("mnetcost: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("mnetcost: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `mnetcost sweep | head`: the reader has all it wanted
            _silence_stdout()
            sys.exit(0)
        except OSError as exc:
            if exc.filename is None and _stdout_failed(exc):
                _silence_stdout()
                print_error(f"cannot write to standard output: {exc.strerror or exc}")
            else:
                print_error(os_error_message(exc))
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=CLIGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mnetcost")
def main():
    """Parameters and Mult-Adds of the Enhanced Hybrid MobileNet (Chen & Su), layer by layer.

    \b
    Variants:
      the paper's: base (Table 1, strided convs), mp3 (Table 2, 3x3/2 max pooling),
        fmp (Table 3, fractional max pooling);
      the MobileNetV2/V3 family: mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small,
        each also as _mp3 and _fmp (a pool in place of every stride of 2);
      or a path to your own spec file.
    """

__all__ = ["main"]
