"""Layout ``npy``: ``train_x.npy``, ``train_y.npy``, ``test_x.npy`` (or one ``.npz`` holding them)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import entries, entry_names
from kaggle_pipeline.data.images import resize_images
from kaggle_pipeline.data.pixels import images_of
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.data.tables import order_like_sample
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import load_array, load_arrays


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None) -> dict:
    arrays = _load_arrays(folder)
    for key in ("train_x", "train_y", "test_x"):
        if key not in arrays:
            raise PipelineError(f"{folder}: no {key}.npy (or {key} inside an .npz)")
    (x_train, x_train_path), (labels, labels_path), (x_test, x_test_path) = (arrays[k] for k in ("train_x", "train_y", "test_x"))
    x_train, x_test = images_of([(x_train, x_train_path, "train_x"), (x_test, x_test_path, "test_x")])
    if len(x_train) == 0:
        raise PipelineError(f"{x_train_path}: no training images")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise PipelineError(f"{x_test_path}: test images are {x_test.shape[1:]}, training images {x_train.shape[1:]}")
    if labels.ndim != 1 or len(labels) != len(x_train):
        raise PipelineError(f"{labels_path}: expected {len(x_train)} labels in one dimension, found shape {labels.shape}")
    labels = _npy_labels(labels, labels_path)
    test_ids = None
    if "test_ids" in arrays:
        test_ids = [str(value) for value in arrays["test_ids"][0].tolist()]
    return {
        "x_train": resize_images(x_train, image_size),
        "train_labels": labels,
        "labels_path": labels_path,
        "x_test": order_like_sample(resize_images(x_test, image_size), test_ids, sample, x_test_path, sample_path),
    }


def _npy_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    """Labels as text: integers, text, or floats that are finite whole numbers within int64.

    A float label inf or NaN used to become the class -9223372036854775808; 2.5 or 1e30 is no class either.
    Booleans, complex numbers and bytes are refused rather than guessed.
    """
    if labels.dtype.kind in "iuU":
        return labels.astype(str)
    if labels.dtype.kind != "f":
        raise PipelineError(f"{path}: labels must be integers or strings, found dtype {labels.dtype}")
    bad = ~np.isfinite(labels)
    bad[~bad] = (labels[~bad] != np.round(labels[~bad])) | (np.abs(labels[~bad]) >= 2.0**63)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PipelineError(f"{path}: label {labels[row].item()!r} (row {row}) is not a whole number within int64; "
                            f"labels must be integers or strings, found dtype {labels.dtype}")
    return labels.astype(np.int64).astype(str)


def _load_arrays(folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    """Every .npy file and .npz member of the folder, by name (hidden files such as ``._train_x.npy`` ignored)."""
    arrays = {}
    for path in entries(folder):
        if path.suffix == ".npy":
            arrays[path.stem] = (_array_call(load_array, path), path)
        elif path.suffix == ".npz":
            for key, value in _array_call(load_arrays, path).items():
                arrays[key] = (value, path)
    return arrays


def _array_call(reader, path: Path):
    """files.load_array(s), its refusals worded 'cannot load array (...)' like every array error here."""
    try:
        return reader(path)
    except PipelineError as error:
        message = str(error)
        member = re.match(re.escape(str(path)) + r" \((member [^)]*)\): ", message)
        if member:  # files.load_arrays names a member as 'archive.npz (member x.npy): ...'
            message = f"{path}: cannot load array ({member.group(1)}: {message[member.end():]})"
        elif message.startswith(f"{path}: ") and "cannot load array" not in message:
            message = f"{path}: cannot load array ({message[len(str(path)) + 2:]})"
        raise PipelineError(message) from None


NPY_NAMES = {"train_x.npy", "train_y.npy", "test_x.npy"}


register_layout(Layout(
    name="npy",
    files_text="train_x.npy, train_y.npy and test_x.npy (or one .npz holding them)",
    competitions="course and in-class competitions shipping arrays (e.g. Sign Language MNIST converted to .npy)",
    read=read,
    complete=lambda folder: NPY_NAMES <= entry_names(folder) or any(name.endswith(".npz") for name in entry_names(folder)),
    started=lambda folder: bool(NPY_NAMES & entry_names(folder)),
    files=lambda folder: [path for path in entries(folder) if path.suffix in (".npy", ".npz")],
))
