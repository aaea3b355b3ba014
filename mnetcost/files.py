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


# --- run folders: one writer at a time ---------------------------------------------------------
LOCK_NAME = ".lock"  # inside the run folder; not part of the run (a new run may take a folder holding only it)


class RunLocked(Exception):
    """The run folder is held by another live process; ``holder`` describes it (pid, host, command, since)."""

    def __init__(self, run_dir: Path, holder: str):
        self.run_dir, self.holder = Path(run_dir), holder
        super().__init__(f"{run_dir} is in use by {holder}")


def lock_holder(run_dir: Path | str) -> str | None:
    """Who holds ``run_dir``'s lock now ("pid 123 on host, mnetcost train, since ..."), or None when
    nobody does (a lock file left by a process that died, even by ``kill -9``, holds nothing)."""
    import fcntl

    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text(errors="replace").strip()
            return text or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class run_lock:
    """An exclusive, advisory lock on a run folder (``flock`` on ``<run_dir>/.lock``), held for the
    life of the ``with`` block. The kernel drops it when the process dies, so a crashed or killed
    run never leaves a stale lock. Raises :class:`RunLocked` at once when another process holds it.
    Creates ``run_dir`` when missing."""

    def __init__(self, run_dir: Path | str, purpose: str = "mnetcost"):
        self.run_dir, self.purpose, self.fd = Path(run_dir), purpose, None

    def __enter__(self) -> "run_lock":
        import datetime
        import fcntl
        import socket

        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = lock_holder(self.run_dir) or "another process"
            raise RunLocked(self.run_dir, holder) from None
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, {self.purpose}, since {since}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
