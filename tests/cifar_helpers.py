"""Tiny CIFAR look-alikes for the data and training tests: the exact official pickle layout
(folder and .tar.gz) and image-folder trees, built in a temporary directory."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"


def learnable_images(n: int, classes: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, size, size) images whose class shows in their colour and a bright stripe,
    plus noise: a small network learns them within an epoch or two."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    palette = np.random.default_rng(12345).integers(40, 216, size=(classes, 3))  # shared by every split
    images = rng.normal(0, 25, size=(n, 3, size, size)) + palette[labels][:, :, None, None]
    for i, label in enumerate(labels):
        row = (label * size) // classes
        images[i, :, row:row + max(1, size // classes), :] = 255
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def _pickle(obj, bytes_keys: bool) -> bytes:
    if bytes_keys:  # how Python 2 wrote them: str keys come back as bytes with encoding="bytes"
        obj = {key.encode() if isinstance(key, str) else key: value for key, value in obj.items()}
    return pickle.dumps(obj, protocol=2)


def official_files(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                   hundred: bool = False, bytes_keys: bool = False, class_names=None) -> dict[str, bytes]:
    """name -> bytes of an official python-version folder holding ``train`` and ``test``."""
    files = {}
    if hundred:
        label_key, names_key = "fine_labels", "fine_label_names"
        for split, (x, y) in (("train", train), ("test", test)):
            files[split] = _pickle({"data": x.reshape(len(x), -1), label_key: [int(v) for v in y],
                                    "coarse_labels": [0] * len(y), "filenames": [f"{i}.png" for i in range(len(y))],
                                    "batch_label": f"{split} batch"}, bytes_keys)
        names = class_names or [f"class{i}" for i in range(100)]
        files["meta"] = _pickle({names_key: names, "coarse_label_names": ["c"] * 20}, bytes_keys)
        return files
    x, y = train
    chunks = np.array_split(np.arange(len(y)), 5)
    for number, chunk in enumerate(chunks, 1):
        files[f"data_batch_{number}"] = _pickle({"data": x[chunk].reshape(len(chunk), -1),
                                                 "labels": [int(v) for v in y[chunk]],
                                                 "batch_label": f"training batch {number} of 5",
                                                 "filenames": [f"{i}.png" for i in chunk]}, bytes_keys)
    x, y = test
    files["test_batch"] = _pickle({"data": x.reshape(len(x), -1), "labels": [int(v) for v in y],
                                   "batch_label": "testing batch 1 of 1"}, bytes_keys)
    names = class_names or ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"]
    files["batches.meta"] = _pickle({"label_names": names, "num_cases_per_batch": 10000, "num_vis": 3072},
                                    bytes_keys)
    return files


def write_folder(root: Path, files: dict[str, bytes], folder: str = CIFAR10_FOLDER) -> Path:
    target = Path(root) / folder
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (target / name).write_bytes(data)
    return target


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    """A tar of ``{member name: bytes}`` (folders implied by the names)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_official_archive(path: Path, files: dict[str, bytes], folder: str = CIFAR10_FOLDER) -> Path:
    return write_tar(path, {f"{folder}/{name}": data for name, data in files.items()})


def image_files(splits: dict[str, tuple[np.ndarray, np.ndarray]], class_names, fmt: str = "PNG",
                prefix: str = "") -> dict[str, bytes]:
    """``{"train": (x, y), "test": (x, y)}`` -> ``{prefix + split/class/NNNN.png: bytes}``."""
    from PIL import Image

    files = {}
    for split, (x, y) in splits.items():
        for i, (image, label) in enumerate(zip(x, y)):
            buffer = io.BytesIO()
            Image.fromarray(image.transpose(1, 2, 0)).save(buffer, format=fmt)
            files[f"{prefix}{split}/{class_names[label]}/{i:04d}.{fmt.lower()}"] = buffer.getvalue()
    return files


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = Path(root) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return Path(root)


def tiny_official_folder(root: Path, train: int = 256, test: int = 64, classes: int = 10, seed: int = 0) -> Path:
    """An official-layout CIFAR-10 folder of learnable images (what the training tests use)."""
    tr = learnable_images(train, classes, seed)
    te = learnable_images(test, classes, seed + 1)
    return write_folder(root, official_files(tr, te))


def train_tiny_fmp_run(folder):
    """A tiny fmp run (seed 3: its FMP draws are not the default's) trained for 2 epochs on a tiny
    CIFAR-10 archive in ``folder``: (run folder, archive, data cache folder, dataset)."""
    from mnetcost.nn import training as T
    from mnetcost.nn.datasets import load_dataset

    archive = write_official_archive(folder / "tiny-cifar.tar.gz",
                                     official_files(learnable_images(192, 10, 0), learnable_images(64, 10, 1)))
    dataset = load_dataset(str(archive), folder / "cache")
    config = T.TrainConfig(variant="fmp", alpha=0.25, delta=1, dataset=str(archive), epochs=2, batch_size=32,
                           seed=3, device="cpu")
    out = folder / "fmp-run"
    T.run(config, dataset, out, quiet=True)
    return out, archive, folder / "cache", dataset
