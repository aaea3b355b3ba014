"""Running the CLI inside the test process."""
from __future__ import annotations

import subprocess


def cli_here(*args) -> subprocess.CompletedProcess:
    """``mnetcost ARGS`` in this process, for a refusal that stops before any work: the code path of
    ``python -m mnetcost`` (``CLIGroup.main``: one-line errors, exit statuses) without starting an
    interpreter and importing torch again (about 2 s of CPU per call). Returns what
    ``subprocess.run`` would; an exception other than the exit fails at once (a traceback)."""
    from click.testing import CliRunner

    from mnetcost.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
