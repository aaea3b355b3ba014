"""CIFAR data: official pickle layout (folder, archive, download), image folders, the array
cache, and every way a file can be bad. Never touches the internet."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import os
import pickle
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from mnetcost.nn import datasets
from mnetcost.nn.datasets import DataError, load_dataset

from cifar_helpers import (CIFAR100_FOLDER, image_files, learnable_images, official_files, write_files,
                           write_folder, write_official_archive, write_tar)


@pytest.fixture(scope="module")
def tiny():
    train = learnable_images(20, 10, seed=0)
    test = learnable_images(7, 10, seed=1)
    return train, test


def assert_same(dataset, train, test):
    np.testing.assert_array_equal(dataset.train_x, train[0])
    np.testing.assert_array_equal(dataset.train_y, train[1])
    np.testing.assert_array_equal(dataset.test_x, test[0])
    np.testing.assert_array_equal(dataset.test_y, test[1])
    assert dataset.train_x.dtype == np.uint8 and dataset.train_y.dtype == np.int64


def no_temp_files(folder: Path):
    return [p.name for p in Path(folder).rglob("*") if p.name.endswith(".tmp")] == []


# --- the official layout -----------------------------------------------------------------------
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_official_folder_parses_exactly(tmp_path, tiny, bytes_keys):
    train, test = tiny
    folder = write_folder(tmp_path / "src", official_files(train, test, bytes_keys=bytes_keys))
    dataset = load_dataset(str(folder), tmp_path / "cache")
    assert_same(dataset, train, test)
    assert dataset.class_names[:3] == ("airplane", "automobile", "bird")
    assert dataset.classes == 10 and dataset.resolution == (32, 32)
    # data rows are CHW: pixel (c=1, y=2, x=3) of image 0 sits at 1*1024 + 2*32 + 3
    row = datasets.load_batch((folder / "data_batch_1").read_bytes(), "x")["data"][0]
    assert dataset.train_x[0, 1, 2, 3] == row[1 * 1024 + 2 * 32 + 3]
    # the parent folder of cifar-10-batches-py works too
    assert_same(load_dataset(str(tmp_path / "src"), tmp_path / "cache2"), train, test)


def test_official_archive_and_cifar100(tmp_path, tiny):
    train, test = tiny
    archive = write_official_archive(tmp_path / "cifar-10-python.tar.gz", official_files(train, test))
    assert_same(load_dataset(str(archive), tmp_path / "cache"), train, test)

    train100 = (train[0], train[1] * 9 + 3)  # labels up to 84
    test100 = (test[0], test[1] * 11)
    files = official_files(train100, test100, hundred=True)
    archive = write_official_archive(tmp_path / "c100.tar.gz", files, folder=CIFAR100_FOLDER)
    dataset = load_dataset(str(archive), tmp_path / "cache")
    assert dataset.classes == 100
    assert dataset.name == "cifar100"
    assert_same(dataset, train100, test100)


def test_cache_is_used_and_keyed_by_source(tmp_path, tiny, monkeypatch):
    train, test = tiny
    archive = write_official_archive(tmp_path / "a.tar.gz", official_files(train, test))
    first = load_dataset(str(archive), tmp_path / "cache")
    assert not first.from_cache and Path(first.cache_path).is_file()

    def boom(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(datasets, "read_official_archive", boom)
    second = load_dataset(str(archive), tmp_path / "cache")
    assert second.from_cache
    assert_same(second, train, test)
    # a changed source is a different key: decoded again
    other = learnable_images(20, 10, seed=5)
    write_official_archive(archive, official_files(other, test))
    os.utime(archive, ns=(1, 1))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(str(archive), tmp_path / "cache")
    monkeypatch.undo()
    assert_same(load_dataset(str(archive), tmp_path / "cache"), other, test)
    assert no_temp_files(tmp_path)


def test_corrupt_cache_is_rebuilt(tmp_path, tiny):
    train, test = tiny
    folder = write_folder(tmp_path / "src", official_files(train, test))
    cache = Path(load_dataset(str(folder), tmp_path / "cache").cache_path)
    cache.write_bytes(cache.read_bytes()[:100])
    again = load_dataset(str(folder), tmp_path / "cache")
    assert not again.from_cache
    assert_same(again, train, test)


# --- download ----------------------------------------------------------------------------------
def official_like(tmp_path, tiny):
    archive = write_official_archive(tmp_path / "served" / "cifar-10-python.tar.gz", official_files(*tiny))
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_from_file_url_end_to_end(tmp_path, tiny, monkeypatch):
    archive, md5 = official_like(tmp_path, tiny)
    monkeypatch.setitem(datasets.OFFICIAL, "cifar10",
                        dataclasses.replace(datasets.OFFICIAL["cifar10"], url=archive.as_uri(), md5=md5))
    data_dir = tmp_path / "data"
    dataset = load_dataset("cifar10", data_dir)
    assert_same(dataset, *tiny)
    assert (data_dir / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    archive.unlink()  # the second run needs neither the network nor the archive
    assert load_dataset("cifar10", data_dir).from_cache


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir(exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_over_http_checks_md5(tmp_path, tiny, http_server):
    archive, md5 = official_like(tmp_path, tiny)
    data_dir = tmp_path / "data"
    url = f"{http_server}/cifar-10-python.tar.gz"
    path = datasets.fetch_official("cifar10", data_dir, url=url, md5=md5)
    assert path.read_bytes() == archive.read_bytes()
    # a wrong checksum leaves nothing behind
    path.unlink()
    with pytest.raises(DataError, match="MD5 mismatch"):
        datasets.fetch_official("cifar10", data_dir, url=url, md5="0" * 32)
    assert not path.exists() and no_temp_files(data_dir)
    with pytest.raises(DataError, match="cannot download"):
        datasets.fetch_official("cifar10", data_dir, url=f"{http_server}/missing.tar.gz", md5=md5)
    assert not path.exists() and no_temp_files(data_dir)


def test_bad_cached_archive_is_replaced(tmp_path, tiny):
    archive, md5 = official_like(tmp_path, tiny)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "cifar-10-python.tar.gz").write_bytes(b"half a download")
    path = datasets.fetch_official("cifar10", data_dir, url=archive.as_uri(), md5=md5)
    assert path.read_bytes() == archive.read_bytes()


def test_bad_cached_archive_without_network_names_the_failed_check(tmp_path, tiny, http_server):
    """A cached archive with a wrong MD5 and no way to fetch it again: the error says the cache
    failed its check (not only "cannot download"), and the cached file is left as it was."""
    _, md5 = official_like(tmp_path, tiny)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cached = data_dir / "cifar-10-python.tar.gz"
    cached.write_bytes(b"half a download")
    found = hashlib.md5(b"half a download").hexdigest()
    with pytest.raises(DataError) as error:
        datasets.fetch_official("cifar10", data_dir, url=f"{http_server}/missing.tar.gz", md5=md5)
    message = str(error.value)
    assert f"the cached {cached} failed its MD5 check (got {found}, expected {md5})" in message
    assert "downloading it again failed: cannot download" in message and "\n" not in message
    assert cached.read_bytes() == b"half a download" and no_temp_files(data_dir)


def run_cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "mnetcost", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120)


def test_cli_md5_failure_is_one_line_and_leaves_nothing(tmp_path, tiny):
    archive, _ = official_like(tmp_path, tiny)  # not the real archive: the official MD5 fails
    data_dir = tmp_path / "data"
    result = run_cli("train", "--dataset", "cifar10", "--data-dir", str(data_dir), "--out", str(tmp_path / "run"),
                     "--alpha", "0.25", "--threads", "1", env={"MNETCOST_CIFAR10_URL": archive.as_uri()})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "downloading" in lines[0]  # a progress note, then the error
    assert lines[-1].startswith("mnetcost: error: MD5 mismatch") and "Traceback" not in result.stderr
    assert not (data_dir / "cifar-10-python.tar.gz").exists() and no_temp_files(data_dir)
    assert not (tmp_path / "run").exists()


# --- bad files -----------------------------------------------------------------------------------
def test_corrupt_archives_and_pickles(tmp_path, tiny):
    good = write_official_archive(tmp_path / "good.tar.gz", official_files(*tiny)).read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated.tar.gz"):
        load_dataset(str(truncated), tmp_path / "cache")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x00not an archive" * 50)
    with pytest.raises(DataError, match="not a readable tar archive"):
        load_dataset(str(garbage), tmp_path / "cache")

    files = official_files(*tiny)
    files["data_batch_3"] = b"\x80\x02garbage"
    with pytest.raises(DataError, match="data_batch_3: not a readable CIFAR pickle"):
        load_dataset(str(write_folder(tmp_path / "bad1", files)), tmp_path / "cache")

    files = official_files(*tiny)
    files["test_batch"] = pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2)
    with pytest.raises(DataError, match="uint8 N x 3072"):
        load_dataset(str(write_folder(tmp_path / "bad2", files)), tmp_path / "cache")

    files = official_files(*tiny)
    files["test_batch"] = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, protocol=2)
    with pytest.raises(DataError, match="labels outside 0..9"):
        load_dataset(str(write_folder(tmp_path / "bad3", files)), tmp_path / "cache")
    assert not (tmp_path / "cache" / "arrays").exists() or not list((tmp_path / "cache" / "arrays").iterdir())


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickles_cannot_run_code(tmp_path, tiny):
    files = official_files(*tiny)
    files["data_batch_1"] = pickle.dumps({"data": Evil(), "labels": []}, protocol=2)
    with pytest.raises(DataError, match="refusing to load"):
        load_dataset(str(write_folder(tmp_path / "evil", files)), tmp_path / "cache")


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(DataError, match="neither cifar10, cifar100 nor an existing path"):
        load_dataset(str(tmp_path / "nope"), tmp_path / "cache")


# --- image folders -------------------------------------------------------------------------------
NAMES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def images():
    train = learnable_images(9, 3, seed=2)
    test = learnable_images(6, 3, seed=3)
    # image folders sort by class, then file name: reorder the expectation the same way
    def ordered(split):
        x, y = split
        order = np.lexsort((np.arange(len(y)), y))
        return x[order], y[order]

    return {"train": train, "test": test}, ordered(train), ordered(test)


def test_image_folder_and_archives(tmp_path, images):
    splits, train, test = images
    files = image_files(splits, NAMES)
    root = write_files(tmp_path / "tree", files)
    dataset = load_dataset(str(root), tmp_path / "cache")
    assert dataset.class_names == tuple(NAMES)
    assert_same(dataset, train, test)  # PNG is lossless: exact pixels
    for mode, suffix in (("w:xz", ".tar.xz"), ("w:gz", ".tar.gz")):
        archive = write_tar(tmp_path / f"tree{suffix}", {f"./mydata/{k}": v for k, v in files.items()}, mode)
        from_archive = load_dataset(str(archive), tmp_path / "cache")
        assert from_archive.name == "tree"
        assert_same(from_archive, train, test)
    # JPEG (lossy) decodes to the same arrays whichever way it is read
    jpeg = image_files(splits, NAMES, fmt="JPEG")
    a = load_dataset(str(write_files(tmp_path / "jpeg", jpeg)), tmp_path / "cache")
    b = load_dataset(str(write_tar(tmp_path / "jpeg.tar.xz", jpeg, "w:xz")), tmp_path / "cache")
    np.testing.assert_array_equal(a.train_x, b.train_x)
    assert np.abs(a.train_x.astype(int) - train[0].astype(int)).mean() < 25  # noisy images: lossy, yet far from random (~85)


def test_bad_image_folders(tmp_path, images):
    splits, _, _ = images
    files = image_files(splits, NAMES)
    only_train = {k: v for k, v in files.items() if k.startswith("train/")}
    with pytest.raises(DataError, match="no images under test/<class>/"):
        load_dataset(str(write_files(tmp_path / "a", only_train)), tmp_path / "cache")
    broken = dict(files)
    broken["train/cat/9999.png"] = b"not a png"
    with pytest.raises(DataError, match="9999.png: not a readable image"):
        load_dataset(str(write_tar(tmp_path / "b.tar.gz", broken)), tmp_path / "cache")
    extra = dict(files)
    extra["test/yak/0000.png"] = files["test/cat/0000.png"] if "test/cat/0000.png" in files else \
        next(v for k, v in files.items() if k.startswith("test/"))
    with pytest.raises(DataError, match="test classes not in train: yak"):
        load_dataset(str(write_files(tmp_path / "c", extra)), tmp_path / "cache")
    from PIL import Image
    import io

    big = io.BytesIO()
    Image.new("RGB", (40, 40)).save(big, format="PNG")
    sizes = dict(files)
    sizes["train/cat/big.png"] = big.getvalue()
    with pytest.raises(DataError, match="images differ in size"):
        load_dataset(str(write_files(tmp_path / "d", sizes)), tmp_path / "cache")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images under train"):
        load_dataset(str(empty), tmp_path / "cache")
    with tarfile.open(tmp_path / "e.tar", "w"):
        pass
    with pytest.raises(DataError, match="no images under train"):
        load_dataset(str(tmp_path / "e.tar"), tmp_path / "cache")


@pytest.mark.parametrize("args", [
    ("train", "--dataset", "cifar10", "--epochs", "1", "--out", "{tmp}/run"),
    ("grid", "--dataset", "cifar10", "--out", "{tmp}/grid", "--dry-run"),
    ("export", "--int8", "--dataset", "cifar10", "--out", "{tmp}/model.onnx"),
    ("export", "--format", "tflite", "--dataset", "cifar10", "--out", "{tmp}/model.tflite"),
])
def test_a_spec_whose_channels_are_not_the_datas_is_refused_up_front(tmp_path, args):
    """A 1-channel spec on RGB data: one line, exit 2, before any download or model (was a torch
    RuntimeError); nothing is written."""
    from click.testing import CliRunner

    from mnetcost.cli import main

    spec = tmp_path / "gray.toml"
    spec.write_text('name = "gray"\nin_channels = 1\n[[layers]]\ntype = "conv"\nfilters = 8\nstride = 2\n'
                    '[[layers]]\ntype = "avgpool"\n[[layers]]\ntype = "fc"\n')
    argv = [args[0], "-v", str(spec), *(a.format(tmp=tmp_path) for a in args[1:])]
    result = CliRunner().invoke(main, argv, env={"MNETCOST_DATA": str(tmp_path / "no-data")})
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert "the network reads 1-channel images (its spec's in_channels)" in lines[0]
    assert "3-channel (RGB) images" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.toml"]
