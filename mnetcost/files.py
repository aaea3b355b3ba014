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
    old file or the complete new one, never a partial one; the temporary file never outlives us.
    An OSError (a full disk, a folder that takes no files) names ``path``, not the temporary file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        temporary = str(path.parent / f".{path.name}.")
        if isinstance(exc, OSError) and exc.errno is not None and (
                exc.filename is None or str(exc.filename).startswith(temporary)):
            raise OSError(exc.errno, f"cannot write: {exc.strerror}", str(path)) from exc
        raise


def check_target(path: Path | str, option: str = "--out") -> Path:
    """Validate an output path before any work, as the write will need it: not a directory nor a
    device, pipe or other non-regular file (a rename would replace it), not one of a training
    run's own files (:func:`mnetcost.identity.check_not_run_file`), its folder exists, is a
    folder, and takes a new file — tried by creating and removing an empty temporary file there,
    since permission bits say nothing for root or under /proc and /sys. Errors are one line
    naming ``option``; nothing is left behind."""
    from mnetcost.errors import MnetcostError

    if not str(path):
        raise MnetcostError(f"{option}: empty file name")
    target = Path(path)
    if target.is_dir():
        raise MnetcostError(f"{option} {path}: is a directory")
    if target.exists() and not target.is_file():
        raise MnetcostError(f"{option} {path}: exists and is not a regular file (a device, pipe or socket); "
                            "give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        for folder in (parent, *parent.parents):
            if folder.exists():
                if not folder.is_dir():
                    raise MnetcostError(f"{option} {path}: {folder} is a file, not a folder")
                break
        raise MnetcostError(f"{option} {path}: folder {parent} does not exist")
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise MnetcostError(f"{option} {path}: cannot create a file in {parent}: "
                            f"{exc.strerror or type(exc).__name__}") from None
    os.close(handle)
    os.unlink(probe)
    from mnetcost.identity import check_not_run_file

    check_not_run_file(target, option)  # never a training run's checkpoint, metrics or config
    return target


def check_outputs(outputs: dict, inputs: dict | None = None) -> dict:
    """:func:`check_target` for every output of one command (``{option: path or None}``), and no
    two of them, nor an output and an input (``{option: path or None}``), naming the same file:
    one would overwrite the other. Returns ``{option: Path}`` for the outputs given."""
    from mnetcost.errors import MnetcostError

    checked = {option: check_target(path, option) for option, path in outputs.items() if path is not None}
    seen: dict = {}
    for option, target in checked.items():
        key = os.path.realpath(target)
        if key in seen:
            raise MnetcostError(f"{seen[key]} and {option} name the same file {outputs[option]}; "
                                "give each output its own file")
        seen[key] = option
    for option, path in (inputs or {}).items():
        if path is None:
            continue
        source = Path(path)
        for out_option, target in checked.items():
            same = os.path.realpath(source) == os.path.realpath(target)
            if not same and source.exists() and target.exists():
                same = os.path.samefile(source, target)
            if same:
                raise MnetcostError(f"{out_option} {outputs[out_option]} would overwrite {option} {path}, "
                                    "the command's own input; write to another file")
    return checked


def json_safe(obj, note: str = "nonfinite"):
    """``obj`` with every NaN or infinite float replaced by None, so that it is valid JSON (which
    has no NaN); a dict that held one gains ``note``: ``{key: "nan" | "inf" | "-inf"}``, the reason
    for each null. Lists and tuples are cleaned item by item (a list has no place for a note)."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        clean, reasons = {}, {}
        for key, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                clean[key] = None
                reasons[key] = "nan" if value != value else ("inf" if value > 0 else "-inf")
            else:
                clean[key] = json_safe(value, note)
        if reasons:
            clean[note] = {**(clean.get(note) if isinstance(clean.get(note), dict) else {}), **reasons}
        return clean
    if isinstance(obj, (list, tuple)):
        return [json_safe(value, note) for value in obj]
    return obj


def json_text(obj, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (:func:`json_safe` first: never a bare NaN or Infinity)."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


def write_json(path: Path | str, obj) -> None:
    """``obj`` as indented, strict JSON (:func:`json_text`), atomically."""
    atomic_write(path, lambda stream: stream.write((json_text(obj) + "\n").encode()))


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
