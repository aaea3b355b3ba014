"""mnetcost: what a MobileNet variant of Chen & Su's "An Enhanced Hybrid MobileNet" costs.

The analytic side (specs, resolution, costs) needs only the standard library and numpy; the
torch side (``build_model``, cross-check, training) is imported on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from mnetcost.errors import ConfigError, MnetcostError, SpecError  # noqa: E402

# Imported on first use, so that `import mnetcost` (and the CLI's start-up) stays cheap: `mnetcost
# ratio` never needs a spec. (The resolver module is `mnetcost.calculator.resolver`, so that importing it can
# never shadow the function `mnetcost.resolve`.)
_LAZY = {
    "resolve": "mnetcost.calculator.resolver",
    "plan": "mnetcost.calculator.resolver",
    "CONVENTIONS": "mnetcost.calculator.cost",
    "network_cost": "mnetcost.calculator.cost",
    "load_spec": "mnetcost.calculator.spec",
    "build_model": "mnetcost.nn.models",
    "from_torch": "mnetcost.nn.importer",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnetcost' has no attribute {name!r}")


__all__ = ["CONVENTIONS", "ConfigError", "MnetcostError", "SpecError", "build_model", "from_torch", "load_spec",
           "network_cost", "plan", "resolve", "__version__"]
