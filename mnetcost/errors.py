"""Errors the library raises for bad input; the CLI turns each into one line and exit 2."""


class MnetcostError(ValueError):
    """Any bad input to mnetcost: a bad spec, a bad parameter, an impossible configuration."""


class SpecError(MnetcostError):
    """A spec file that is missing or malformed; the message names the file, row and field."""


class ConfigError(MnetcostError):
    """A configuration (alpha, delta, classes, resolution) that cannot be resolved."""
