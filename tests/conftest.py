"""Tiny competitions in each Kaggle layout, made on the fly: learnable, seconds to train."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
STRING_CLASSES = ["cat", "dog", "frog"]


def synthetic_images(count: int, side: int = 16, channels: int = 1, classes: int = 3, seed: int = 0):
    """Noise with a bright horizontal band whose position is the class: a tiny net learns it in an epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, (count, side, side, channels), dtype=np.uint8)
    band = side // classes
    for label in range(classes):
        images[labels == label, label * band : (label + 1) * band] += 150
    return images, labels


def write_csv_competition(folder: Path, count=240, test_count=60, side=16, with_test_ids=False, seed=0) -> Path:
    """CSV pixel tables; optionally a test.csv with an id column listed in another order than the sample."""
    from kaggle_pipeline.data import write_pixel_competition

    images, labels = synthetic_images(count + test_count, side=side, seed=seed)
    write_pixel_competition(folder, images[:count], labels[:count], images[count:], labels[count:])
    if with_test_ids:
        pixels = images[count:].reshape(test_count, -1)
        order = np.random.default_rng(seed).permutation(test_count)
        header = "ImageId," + ",".join(f"pixel{i}" for i in range(pixels.shape[1]))
        rows = [f"{row + 1}," + ",".join(map(str, pixels[row])) for row in order]
        (folder / "test.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return folder


def write_image_competition(folder: Path, count=240, test_count=60, side=16, channels=3, seed=0) -> Path:
    """CIFAR-10 style: train/<id>.png, trainLabels.csv with string labels, test/<id>.png, sampleSubmission.csv."""
    from PIL import Image

    images, labels = synthetic_images(count + test_count, side=side, channels=channels, seed=seed)
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for index in range(count + test_count):
        pixels = images[index][..., 0] if channels == 1 else images[index]
        subfolder = "train" if index < count else "test"
        Image.fromarray(pixels).save(folder / subfolder / f"{index + 1}.png")
    (folder / "trainLabels.csv").write_text(
        "id,label\n" + "".join(f"{i + 1},{STRING_CLASSES[labels[i]]}\n" for i in range(count))
    )
    test_ids = list(range(count + 1, count + test_count + 1))
    (folder / "sampleSubmission.csv").write_text("id,label\n" + "".join(f"{i},cat\n" for i in test_ids))
    (folder / "solution.csv").write_text(
        "id,label\n" + "".join(f"{i},{STRING_CLASSES[labels[i - 1]]}\n" for i in test_ids)
    )
    return folder


def write_npy_competition(folder: Path, count=240, test_count=60, side=16, seed=0, as_npz=False, float_pixels=False) -> Path:
    images, labels = synthetic_images(count + test_count, side=side, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = images[..., 0]
    if float_pixels:
        x = x.astype(np.float32) / 255.0
    arrays = {
        "train_x": x[:count],
        "train_y": np.array(STRING_CLASSES)[labels[:count]],
        "test_x": x[count:],
    }
    if as_npz:
        np.savez(folder / "arrays.npz", **arrays)
    else:
        for key, value in arrays.items():
            np.save(folder / f"{key}.npy", value)
    (folder / "sample_submission.csv").write_text("Id,Category\n" + "".join(f"t{i},dog\n" for i in range(test_count)))
    return folder


# The package is installed (make setup: editable, from this checkout; or pip install .). The command lines the
# tests start must run the same copy the tests import: when that is this checkout's folder without an install
# pointing at it (python -m pytest puts the working folder first; a .venv shared by several checkouts), the
# fresh interpreters, started in temporary folders, get it on PYTHONPATH too.
_PACKAGE = importlib.util.find_spec("kaggle_pipeline")
_FROM_CHECKOUT = _PACKAGE is not None and _PACKAGE.origin is not None and \
    Path(_PACKAGE.origin).resolve().parents[1] == ROOT
CLI_ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
if _FROM_CHECKOUT:
    CLI_ENVIRONMENT["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def cli_command(*arguments) -> list[str]:
    """The real command line, for a fresh interpreter."""
    return [sys.executable, "-m", "kaggle_pipeline", *map(str, arguments)]


def run_cli(*arguments, cwd: Path, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*arguments), cwd=cwd, env=CLI_ENVIRONMENT, capture_output=True, text=True,
                          timeout=timeout)


def run_in_process(*arguments, cwd: Path) -> subprocess.CompletedProcess:
    """``kaggle_pipeline.cli.main`` in this process, answered as ``run_cli`` answers: the same code path, for a
    test that runs several stages one after another without paying TensorFlow's start-up (5-12 s here) for each.
    Tests of the command line as a process (exit codes, signals, what reaches the terminal) use ``run_cli``."""
    from kaggle_pipeline import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main([str(argument) for argument in arguments])
            except SystemExit as stop:  # argparse's own exits
                code = stop.code
    finally:
        os.chdir(previous)
        for number, handler in saved.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess(arguments, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def csv_competition(tmp_path) -> Path:
    return write_csv_competition(tmp_path / "pixels")


@pytest.fixture
def restore_signals():
    """cli.main installs its Ctrl-C/kill handlers; give pytest its own back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)
    sys.unraisablehook = hook
