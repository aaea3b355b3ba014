"""One module per command; each defines ``command`` (a click command) and imports nothing heavy
at module level. The CLI imports a command's module only when that command runs (or for --help)."""
from __future__ import annotations

import importlib
import importlib.util

# command name -> module, in the order `mnetcost --help` lists them
COMMAND_MODULES = {
    name: f"{__name__}.{name}"
    for name in ("ratio", "table", "paper", "sweep", "crosscheck", "train", "grid", "report", "plot", "bench",
                 "export", "evaluate")
}


def available() -> list[str]:
    return [name for name, module in COMMAND_MODULES.items() if importlib.util.find_spec(module) is not None]


def load(name: str):
    return importlib.import_module(COMMAND_MODULES[name]).command
