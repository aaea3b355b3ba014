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


def check_target(path: Path | str, option: str = "--out") -> Path:
    """Validate an output path before any work: not a directory, its folder exists and is
    writable. Errors are one line naming ``option``."""
    from mnetcost.errors import MnetcostError

    target = Path(path)
    if target.is_dir():
        raise MnetcostError(f"{option} {path}: is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise MnetcostError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MnetcostError(f"{option} {path}: folder {parent} is not writable")
    return target


def write_json(path: Path | str, obj) -> None:
    """``obj`` as indented JSON, atomically."""
    atomic_write(path, lambda stream: stream.write((json.dumps(obj, indent=2) + "\n").encode()))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
