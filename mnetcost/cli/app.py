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


class CLIGroup(click.Group):
    """A group whose errors are one line: ``mnetcost <command>: error: ...`` and exit 2, and whose
    commands are imported only when they run, so the calculator starts fast."""

    def list_commands(self, ctx):
        from mnetcost.cli.commands import available

        return available()

    def get_command(self, ctx, name):
        from mnetcost.cli.commands import COMMAND_MODULES, load

        return load(name) if name in COMMAND_MODULES else None

    def main(self, args=None, prog_name=None, **extra):
        try:
            result = super().main(args=args, prog_name=prog_name or "mnetcost", standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `mnetcost` prints help
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "mnetcost"
            click.echo(f"{command}: error: {exc.format_message()}".replace("\n", " "), err=True)
            sys.exit(exc.exit_code)
        except MnetcostError as exc:
            click.echo(f"mnetcost: error: {exc}".replace("\n", " "), err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"mnetcost: error: {exc.format_message()}".replace("\n", " "), err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("mnetcost: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("mnetcost: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=CLIGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mnetcost")
def main():
    """Parameters and Mult-Adds of the Enhanced Hybrid MobileNet (Chen & Su), layer by layer.

    Variants: base (Table 1, strided convs), mp3 (Table 2, 3x3/2 max pooling),
    fmp (Table 3, fractional max pooling), or a path to your own spec file.
    """

__all__ = ["main"]
