"""The command line (click): a thin layer over the library. May import every side, but only inside
the command that needs it (see ``mnetcost/cli/commands``), so the calculator's commands start fast."""
from mnetcost.cli.app import main

__all__ = ["main"]
