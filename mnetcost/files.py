"""Files that are never seen half-written: every output of mnetcost goes through :func:`atomic_write`."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path | str, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` via a temporary file in the same folder and ``os.replace``: readers see the
    old file or the complete new one, never a partial one; the temporary file never outlives us."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: Path | str, obj) -> None:
    """``obj`` as indented JSON, atomically."""
    atomic_write(path, lambda stream: stream.write((json.dumps(obj, indent=2) + "\n").encode()))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
