"""CIFAR data for ``mnetcost train``: download, parse, decode once, cache as arrays.

A dataset is named by ``cifar10`` / ``cifar100`` (the official python archives, downloaded from
the official URLs into a cache directory and checked by MD5) or by a PATH:

* an extracted official folder (``cifar-10-batches-py`` / ``cifar-100-python``),
* an official archive (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``),
* an image-folder tree ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (``val`` is accepted for
  ``test``), or a ``.tar``/``.tar.gz``/``.tar.xz``/``.tar.bz2`` archive of one.

Whatever the source, the images are decoded once into uint8 arrays of shape ``(N, 3, H, W)``
(channels first, as CIFAR stores them) with int64 labels, and written to
``<data-dir>/arrays/<name>-<key>.npz``; the key is derived from the source (its path, size and
modification time, or the official MD5), so a second run loads the arrays in well under a second.

Every failure a user can cause (a missing path, an MD5 mismatch, a corrupt archive or pickle, an
unreadable image, a folder with no images) raises :class:`DataError`, a one-line
:class:`~mnetcost.errors.MnetcostError`; nothing half-written is ever left under its final name
(downloads and caches are written to a temporary file and renamed).

Only numpy and the standard library are imported here (and Pillow for image folders).
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mnetcost.errors import MnetcostError
from mnetcost.files import atomic_write
from mnetcost.identity import archive_stem

CACHE_FORMAT = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
TEST_SPLITS = ("test", "val")


class DataError(MnetcostError):
    """A dataset that cannot be found, downloaded, verified or read."""


@dataclass(frozen=True)
class Official:
    """One of the official CIFAR python archives (facts: ``shared/docs/FACTS.md``)."""

    name: str
    url: str
    md5: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    meta: str
    names_key: str
    classes: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


OFFICIAL: dict[str, Official] = {
    "cifar10": Official(
        name="cifar10", url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a", folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)), test=("test_batch",),
        label_key="labels", meta="batches.meta", names_key="label_names", classes=10),
    "cifar100": Official(
        name="cifar100", url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85", folder="cifar-100-python",
        train=("train",), test=("test",),
        label_key="fine_labels", meta="meta", names_key="fine_label_names", classes=100),
}


@dataclass
class Dataset:
    """Decoded images and labels. ``train_x``/``test_x``: uint8 ``(N, 3, H, W)``;
    ``train_y``/``test_y``: int64 ``(N,)``; ``source``: where it came from (for config.json)."""

    name: str
    source: str
    class_names: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    cache_path: str | None = None
    from_cache: bool = False

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "classes": self.classes,
                "resolution": list(self.resolution), "train": int(len(self.train_y)),
                "test": int(len(self.test_y))}


IMAGE_CHANNELS = 3  # every source is decoded to RGB (CIFAR's arrays, image files converted)


def check_channels(in_channels: int, what: str, channels: int = IMAGE_CHANNELS, data: str = "the dataset") -> None:
    """The network must read the data's channels: a DataError in one line, before any model runs."""
    if in_channels != channels:
        raise DataError(f"{what}: the network reads {in_channels}-channel images (its spec's in_channels), "
                        f"{data} has {channels}-channel (RGB) images")


def default_data_dir() -> Path:
    """``$MNETCOST_DATA``, else ``$XDG_CACHE_HOME/mnetcost``, else ``~/.cache/mnetcost``."""
    if os.environ.get("MNETCOST_DATA"):
        return Path(os.environ["MNETCOST_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mnetcost"


# --- downloads -----------------------------------------------------------------------------------
def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None = None, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` (http, https or file) to ``dest`` atomically, checking ``md5`` if given.

    On any failure ``dest`` is left as it was (absent) and :class:`DataError` says why.
    ``progress(done_bytes, total_bytes_or_None)`` is called as data arrives.
    """
    dest = Path(dest)
    digest = hashlib.md5()

    def write(stream):
        try:
            response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http/https/file by design)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(f"cannot download {url}: {reason}") from None
        with response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while True:
                try:
                    block = response.read(1 << 20)
                except OSError as exc:
                    raise DataError(f"download of {url} failed: {exc}") from None
                if not block:
                    break
                stream.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
            if total is not None and done != total:
                raise DataError(f"download of {url} stopped after {done} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise DataError(f"MD5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}; "
                            f"nothing was saved")

    atomic_write(dest, write)
    return dest


# --- the official pickle format ------------------------------------------------------------------
class _SafeUnpickler(pickle.Unpickler):
    """CIFAR batches hold dicts, lists, strings and numpy arrays; refuse anything else, so a
    crafted pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
        ("__builtin__", "object"), ("builtins", "object"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_batch(data: bytes, source: str) -> dict:
    """One pickled CIFAR batch (Python 2 protocol, str keys via latin1) as a dict."""
    try:
        batch = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise DataError(f"{source}: not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{source}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _batch_arrays(batch: dict, label_key: str, classes: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{source}: missing key {'data' if 'data' not in batch else label_key!r} "
                        f"(keys: {', '.join(map(str, batch))})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{source}: 'data' should be uint8 N x 3072, got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{source}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{source}: labels outside 0..{classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _official_from_reader(spec: Official, read: Callable[[str], bytes], source: str, name: str) -> Dataset:
    """Parse the official layout; ``read(member)`` returns a file's bytes (from a folder or a tar)."""
    parts = {}
    for split, members in (("train", spec.train), ("test", spec.test)):
        xs, ys = [], []
        for member in members:
            x, y = _batch_arrays(load_batch(read(member), f"{source}:{member}"), spec.label_key, spec.classes,
                                 f"{source}:{member}")
            xs.append(x)
            ys.append(y)
        parts[split] = (np.concatenate(xs), np.concatenate(ys))
    try:
        meta = load_batch(read(spec.meta), f"{source}:{spec.meta}")
        names = tuple(str(n) for n in meta[spec.names_key])
    except (DataError, KeyError, TypeError):
        names = ()
    if len(names) != spec.classes:
        names = tuple(str(i) for i in range(spec.classes))
    return Dataset(name=name, source=source, class_names=names, train_x=parts["train"][0],
                   train_y=parts["train"][1], test_x=parts["test"][0], test_y=parts["test"][1])


def _official_in_folder(folder: Path) -> Official | None:
    for spec in OFFICIAL.values():
        if all((folder / member).is_file() for member in spec.train + spec.test):
            return spec
    return None


def _read_member(folder: Path, member: str) -> bytes:
    try:
        return (folder / member).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {folder / member}: {exc.strerror}") from None


def read_official_folder(folder: Path, spec: Official, name: str | None = None) -> Dataset:
    return _official_from_reader(spec, lambda member: _read_member(folder, member), str(folder),
                                 name or spec.name)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc})") from None


def read_official_archive(path: Path, spec: Official | None = None, name: str | None = None) -> Dataset:
    """The official ``.tar.gz`` read in place (nothing extracted to disk)."""
    path = Path(path)
    try:
        with _open_tar(path) as archive:
            files = {}
            for info in archive:
                if info.isfile():
                    files[info.name.lstrip("./")] = archive.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
        raise DataError(f"{path}: corrupt archive ({type(exc).__name__}: {exc})") from None
    spec = spec or _official_in_members(files)
    if spec is None:
        raise DataError(f"{path}: not an official CIFAR archive (no cifar-10-batches-py/ or cifar-100-python/)")

    def read(member):
        try:
            return files[f"{spec.folder}/{member}"]
        except KeyError:
            raise DataError(f"{path}: {spec.folder}/{member} is missing") from None

    return _official_from_reader(spec, read, str(path), name or spec.name)


def zlib_error():
    import zlib

    return zlib.error


def _official_in_members(files) -> Official | None:
    for spec in OFFICIAL.values():
        if all(f"{spec.folder}/{member}" in files for member in spec.train + spec.test):
            return spec
    return None


# --- image folders -------------------------------------------------------------------------------
def _split_of(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """``(..., train|test|val, <class>, <file>)`` -> (split, class); anything else -> None."""
    if len(parts) < 3 or parts[-3] not in ("train",) + TEST_SPLITS:
        return None
    if parts[-1].startswith(".") or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    return ("test" if parts[-3] in TEST_SPLITS else "train"), parts[-2]


def _decode(data: bytes, source: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{source}: not a readable image ({exc})") from None


def _assemble(items: list[tuple[str, str, str, np.ndarray]], source: str, name: str) -> Dataset:
    """``items``: (split, class, file name, HWC image) -> a Dataset with sorted class indices."""
    train_classes = sorted({cls for split, cls, _, _ in items if split == "train"})
    test_classes = sorted({cls for split, cls, _, _ in items if split == "test"})
    if not train_classes:
        raise DataError(f"{source}: no images under train/<class>/ (expected train/<class>/*.jpg and "
                        f"test/<class>/*.jpg)")
    if not test_classes:
        raise DataError(f"{source}: no images under test/<class>/ (expected train/<class>/*.jpg and "
                        f"test/<class>/*.jpg)")
    unknown = sorted(set(test_classes) - set(train_classes))
    if unknown:
        raise DataError(f"{source}: test classes not in train: {', '.join(unknown)}")
    index = {cls: number for number, cls in enumerate(train_classes)}
    shapes = {image.shape for *_, image in items}
    if len(shapes) != 1:
        first, second = sorted(shapes)[:2]
        raise DataError(f"{source}: images differ in size ({first[1]}x{first[0]} and {second[1]}x{second[0]}); "
                        f"resize them to one size first")
    items = sorted(items, key=lambda item: (item[0], index[item[1]], item[2]))
    out = {}
    for split in ("train", "test"):
        chosen = [item for item in items if item[0] == split]
        x = np.stack([image for *_, image in chosen]).transpose(0, 3, 1, 2)
        out[split] = (np.ascontiguousarray(x), np.array([index[cls] for _, cls, _, _ in chosen], dtype=np.int64))
    return Dataset(name=name, source=source, class_names=tuple(train_classes), train_x=out["train"][0],
                   train_y=out["train"][1], test_x=out["test"][0], test_y=out["test"][1])


def read_image_folder(root: Path, name: str | None = None) -> Dataset:
    root = Path(root)
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            where = _split_of(path.relative_to(root).parts)
            if where:
                items.append((*where, filename, _decode(_read_member(path.parent, filename), str(path))))
    return _assemble(items, str(root), name or root.name)


def _iter_tar_files(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r|*") as archive:  # streaming: one pass, fast for .xz
            for info in archive:
                if info.isfile():
                    yield info.name, archive.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
        raise DataError(f"{path}: corrupt archive ({type(exc).__name__}: {exc})") from None


def read_image_archive(path: Path, name: str | None = None) -> Dataset:
    items = []
    for member, data in _iter_tar_files(path):
        parts = tuple(p for p in member.split("/") if p not in ("", "."))
        where = _split_of(parts)
        if where:
            items.append((*where, parts[-1], _decode(data, f"{path}:{member}")))
    return _assemble(items, str(path), name or archive_stem(path))


def _archive_is_official(path: Path) -> Official | None:
    """Peek at the first entries only (the official archives start with their folder)."""
    try:
        with tarfile.open(path, "r|*") as archive:
            for count, info in enumerate(archive):
                top = info.name.lstrip("./").split("/")[0]
                for spec in OFFICIAL.values():
                    if top == spec.folder:
                        return spec
                if count > 20:
                    break
    except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
        raise DataError(f"{path}: not a readable tar archive ({type(exc).__name__}: {exc})") from None
    return None


# --- the array cache -----------------------------------------------------------------------------
def _cache_key(*parts) -> str:
    return hashlib.sha256("\0".join(map(str, (CACHE_FORMAT,) + parts)).encode()).hexdigest()[:16]


def _source_key(path: Path) -> str:
    """Path, size and modification time of a file, or of every file under a folder."""
    path = path.resolve()
    if path.is_file():
        stat = path.stat()
        return _cache_key(path, stat.st_size, stat.st_mtime_ns)
    entries = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for filename in sorted(filenames):
            stat = os.stat(os.path.join(dirpath, filename))
            entries.append((os.path.relpath(os.path.join(dirpath, filename), path), stat.st_size, stat.st_mtime_ns))
    return _cache_key(path, entries)


def save_cache(dataset: Dataset, path: Path) -> None:
    def write(stream):
        np.savez(stream, train_x=dataset.train_x, train_y=dataset.train_y, test_x=dataset.test_x,
                 test_y=dataset.test_y, class_names=np.array(dataset.class_names, dtype=str),
                 name=np.array(dataset.name), source=np.array(dataset.source),
                 format=np.array(CACHE_FORMAT))

    atomic_write(path, write)


def load_cache(path: Path) -> Dataset | None:
    """The cached arrays, or None if the file is missing or unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != CACHE_FORMAT:
                return None
            return Dataset(name=str(data["name"]), source=str(data["source"]),
                           class_names=tuple(str(n) for n in data["class_names"]), train_x=data["train_x"],
                           train_y=data["train_y"], test_x=data["test_x"], test_y=data["test_y"],
                           cache_path=str(path), from_cache=True)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    except Exception:  # noqa: BLE001 - zipfile.BadZipFile and friends: treat as absent
        return None


def _cached(cache: Path, build: Callable[[], Dataset], log: Callable[[str], None]) -> Dataset:
    dataset = load_cache(cache) if cache.exists() else None
    if dataset is not None:
        return dataset
    dataset = build()
    try:
        save_cache(dataset, cache)
        dataset.cache_path = str(cache)
        log(f"cached decoded arrays in {cache}")
    except OSError as exc:
        log(f"note: could not cache arrays in {cache}: {exc.strerror}")
    return dataset


# --- the entry point -----------------------------------------------------------------------------
def fetch_official(name: str, data_dir: Path, url: str | None = None, md5: str | None = None,
                   log: Callable[[str], None] = lambda message: None,
                   progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The official archive in ``data_dir``, downloaded (and MD5-checked) if it is not there yet.
    A file already there with the wrong MD5 is replaced by a fresh download."""
    spec = OFFICIAL[name]
    url = url or os.environ.get(f"MNETCOST_{name.upper()}_URL") or spec.url
    md5 = md5 or spec.md5
    archive = Path(data_dir) / spec.filename
    failed_check = None
    if archive.is_file():
        found = md5sum(archive)
        if found == md5:
            return archive
        failed_check = f"the cached {archive} failed its MD5 check (got {found}, expected {md5})"
        log(f"{failed_check}; downloading it again")
    log(f"downloading {url} to {archive}")
    try:
        download(url, archive, md5, progress=progress)
    except DataError as exc:
        if failed_check is None:
            raise
        raise DataError(f"{failed_check}, and downloading it again failed: {exc}; delete it or put a good copy "
                        "there") from None
    return archive


def load_dataset(dataset: str, data_dir: Path | str | None = None, *, log: Callable[[str], None] = lambda m: None,
                 progress: Callable[[int, int | None], None] | None = None, use_cache: bool = True) -> Dataset:
    """``cifar10``, ``cifar100`` or a PATH (see the module docstring) -> decoded arrays."""
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    cache_dir = data_dir / "arrays"

    def cached(key_name: str, key: str, build):
        if not use_cache:
            return build()
        return _cached(cache_dir / f"{key_name}-{key}.npz", build, log)

    if dataset in OFFICIAL:
        spec = OFFICIAL[dataset]
        cache = cache_dir / f"{spec.name}-{_cache_key(spec.md5)}.npz"
        if use_cache and cache.exists():
            hit = load_cache(cache)
            if hit is not None:
                return hit
        archive = fetch_official(dataset, data_dir, log=log, progress=progress)
        log(f"decoding {archive}")
        return cached(spec.name, _cache_key(spec.md5), lambda: read_official_archive(archive, spec, spec.name))

    path = Path(dataset).expanduser()
    if not path.exists():
        raise DataError(f"dataset {dataset!r} is neither cifar10, cifar100 nor an existing path")
    key = _source_key(path)
    if path.is_dir():
        spec = _official_in_folder(path)
        if spec is None and _official_in_folder(path / OFFICIAL["cifar10"].folder):
            path, spec = path / OFFICIAL["cifar10"].folder, OFFICIAL["cifar10"]
        elif spec is None and _official_in_folder(path / OFFICIAL["cifar100"].folder):
            path, spec = path / OFFICIAL["cifar100"].folder, OFFICIAL["cifar100"]
        if spec is not None:
            return cached(spec.name, key, lambda: read_official_folder(path, spec))
        name = path.resolve().name
        return cached(name, key, lambda: _logged(log, f"decoding images under {path}", read_image_folder, path))
    spec = _archive_is_official(path)
    if spec is not None:
        return cached(spec.name, key, lambda: _logged(log, f"decoding {path}", read_official_archive, path, spec))
    name = archive_stem(path)
    return cached(name, key, lambda: _logged(log, f"decoding images in {path} (once; cached afterwards)",
                                             read_image_archive, path))


def _logged(log, message, function, *args):
    log(message)
    return function(*args)
