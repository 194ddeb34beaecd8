"""Layout ``npy``: ``train_x.npy``, ``train_y.npy``, ``test_x.npy`` (or one ``.npz`` holding them).

The arrays may also be named as Keras' ``load_data`` and course notebooks save them (``x_train``, ``y_train``,
``x_test``; ``train_images``, ``train_labels``, ``test_images``: ``ARRAY_NAMES``, any case). Labels may be one-hot
(``(N, K)`` rows of one 1 and zeros, as ``to_categorical`` writes them): each becomes its column's index.
"""

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

# Each array's names, ours first: what Keras' load_data, TensorFlow Datasets and course notebooks save them as.
ARRAY_NAMES = {
    # A dataset of one set names it plainly: Sign Language Digits' X.npy and Y.npy (one-hot).
    "train_x": ("train_x", "x_train", "train_images", "train_imgs", "xtrain", "train_data", "x", "images"),
    "train_y": ("train_y", "y_train", "train_labels", "ytrain", "train_targets", "y", "labels"),
    "test_x": ("test_x", "x_test", "test_images", "test_imgs", "xtest", "test_data"),
    "test_ids": ("test_ids", "test_id", "ids_test"),
    # A dataset's test labels (kaggle_pipeline.data.array_datasets); a competition's are its answer key.
    "test_y": ("test_y", "y_test", "test_labels", "ytest", "test_targets"),
    # A dataset's validation split (MedMNIST's val_images), which trains.
    "val_x": ("val_x", "x_val", "val_images", "val_imgs", "valid_x", "x_valid", "valid_images"),
    "val_y": ("val_y", "y_val", "val_labels", "valid_y", "y_valid", "valid_labels"),
}
# Other names of a dataset's arrays or files, by their words (KMNIST's kmnist-train-imgs.npz, kmnist-test-labels.npz):
# a split's word and an images or labels word, where no name above gives that array.
SPLIT_WORDS = {"train": "train", "training": "train", "test": "test", "testing": "test", "val": "val",
               "valid": "val", "validation": "val"}
ROLE_WORDS = {"x": "x", "images": "x", "imgs": "x", "image": "x", "img": "x", "data": "x",
              "y": "y", "labels": "y", "label": "y", "targets": "y", "target": "y"}


def named_arrays(folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    """The folder's arrays (.npy files and .npz members) under our names (``train_x``, ...), each with its file."""
    return _named_arrays(_load_arrays(folder), folder)


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    arrays = named_arrays(folder)
    for key in ("train_x", "train_y", "test_x"):
        if key not in arrays:
            others = ", ".join(f"{name}.npy" for name in ARRAY_NAMES[key][1:3])
            raise PipelineError(f"{folder}: no {key}.npy (or {others}, or {key} inside an .npz)")
    (x_train, x_train_path), (labels, labels_path), (x_test, x_test_path) = (arrays[k] for k in ("train_x", "train_y", "test_x"))
    x_train, x_test = images_of([(x_train, x_train_path, "train_x"), (x_test, x_test_path, "test_x")])
    if len(x_train) == 0:
        raise PipelineError(f"{x_train_path}: no training images")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise PipelineError(f"{x_test_path}: test images are {x_test.shape[1:]}, training images {x_train.shape[1:]}")
    labels = from_one_hot(labels)
    if labels.ndim != 1 or len(labels) != len(x_train):
        raise PipelineError(f"{labels_path}: expected {len(x_train)} labels in one dimension, found shape {labels.shape}")
    labels = npy_labels(labels, labels_path)
    test_ids = None
    if "test_ids" in arrays:
        test_ids = [str(value) for value in arrays["test_ids"][0].tolist()]
    return {
        "x_train": resize_images(x_train, image_size),
        "train_labels": labels,
        "labels_path": labels_path,
        "x_test": order_like_sample(resize_images(x_test, image_size), test_ids, sample, x_test_path, sample_path),
    }


def _named_arrays(arrays: dict[str, tuple[np.ndarray, Path]], folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    """The arrays under our names (train_x, ...), found by ``array_keys``; two names for one is refused."""
    named = {}
    for key, found in array_keys(list(arrays)).items():
        if len(found) > 1:
            shown = ", ".join(f"{name} ({arrays[name][1].name})" for name in found)
            raise PipelineError(f"{folder}: {shown} could each be {key}; keep one")
        named[key] = arrays[found[0]]
    return named


def npz_names(path: Path, members: list[str]) -> list[str]:
    """The names an ``.npz`` file's members go by: their own, but numpy.savez(file, array) names its one array arr_0,
    and then the file's name says what it is (KMNIST's kmnist-train-imgs.npz)."""
    return [path.stem] if members == ["arr_0"] else members


def array_keys(names: list[str]) -> dict[str, list[str]]:
    """Our name (train_x, ...) -> the given names that are it: any of its ``ARRAY_NAMES`` (any case), or, where none
    is, names whose words are a split's and an images' or labels' word (``kmnist-train-imgs``)."""
    found: dict[str, list[str]] = {}
    for key, spellings in ARRAY_NAMES.items():
        for name in names:
            if name.lower() in spellings:
                found.setdefault(key, []).append(name)
    for name in names:
        words = re.split(r"[^a-z0-9]+", name.lower())
        splits = {SPLIT_WORDS[word] for word in words if word in SPLIT_WORDS}
        roles = {ROLE_WORDS[word] for word in words if word in ROLE_WORDS}
        if len(splits) == 1 and len(roles) == 1:
            key = f"{splits.pop()}_{roles.pop()}"
            if key in ARRAY_NAMES and not any(other.lower() in ARRAY_NAMES[key] for other in found.get(key, [])):
                found.setdefault(key, []).append(name)
    return found


def from_one_hot(labels: np.ndarray) -> np.ndarray:
    """One-hot labels ``(N, K)`` (every row one 1, the rest 0) as their column indices; anything else unchanged."""
    if labels.ndim == 2 and labels.shape[1] >= 2 and labels.dtype.kind in "biuf" and \
            np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all():
        return labels.argmax(axis=1)
    return labels


def npy_labels(labels: np.ndarray, path: Path) -> np.ndarray:
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
            members = _array_call(load_arrays, path)
            for key, name in zip(members, npz_names(path, list(members)), strict=True):
                arrays[name] = (members[key], path)
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


def _has(names: set[str], key: str) -> bool:
    return any(f"{name}.npy" in names for name in ARRAY_NAMES[key])


def _complete(folder: Path) -> bool:
    names = {name.lower() for name in entry_names(folder)}
    return all(_has(names, key) for key in ("train_x", "train_y", "test_x")) or any(
        name.endswith(".npz") for name in names)


def _started(folder: Path) -> bool:
    names = {name.lower() for name in entry_names(folder)}
    return any(_has(names, key) for key in ("train_x", "train_y", "test_x"))


register_layout(Layout(
    name="npy",
    files_text="train_x.npy, train_y.npy and test_x.npy (or one .npz holding them)",
    competitions="course and in-class competitions shipping arrays (e.g. Sign Language MNIST converted to .npy)",
    read=read,
    complete=_complete,
    started=_started,
    files=lambda folder: [path for path in entries(folder) if path.suffix in (".npy", ".npz")],
))
