"""Labelled datasets shipped as arrays, for ``data --dataset``.

Students meet CIFAR and MNIST first as arrays, not image files: Keras' ``mnist.npz`` (``x_train``, ``y_train``,
``x_test``, ``y_test``; any of the npy layout's names, ``.npy`` files too) and CIFAR's python version
(``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``;
``cifar-100-python/``: ``train``, ``test`` and ``meta``), Python pickles of ``data`` rows (the red, green and blue
planes of each image one after the other) and ``labels`` (CIFAR-100: ``fine_labels`` and ``coarse_labels``),
the class names in the meta file; HDF5 and MATLAB files of images and labels (the deep-learning course's
``train_signs.h5``, SVHN's ``train_32x32.mat``). ``array_dataset`` reads them as train and test images with their
labels.

A pickle runs whatever code it names when it is loaded, and a download is not to be trusted that far: the
pickles are read by an unpickler that builds dictionaries, lists, text, numbers and numpy arrays only, and names
anything else as refused.
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from kaggle_pipeline.data.folders import entries, is_dir, split_of
from kaggle_pipeline.data.layouts.npy_arrays import array_keys, from_one_hot, named_arrays, npy_labels, npz_names
from kaggle_pipeline.data.pixels import images_of
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, first_line, load_array, open_regular

logger = logging.getLogger(__name__)

# HDF5 files, and MATLAB's (v7.3 files are HDF5 too).
ARRAY_FILE_SUFFIXES = (".h5", ".hdf5", ".mat")
# An HDF5 or MATLAB file's images and labels by their names where several arrays could be either.
IMAGES_NAME = re.compile(r"(^|_)(x|images?|imgs?|data)(_|$)")
LABELS_NAME = re.compile(r"(^|_)(y|labels?|category|class|classes|targets?)(_|$)")
# CIFAR's batches have no suffix (its class names: batches.meta); pickles saved by course notebooks have these.
PICKLE_SUFFIXES = ("", ".meta", ".pkl", ".pickle", ".p")
# A folder of pickled batches holds a few files (CIFAR-10: eight); a folder of thousands is images without suffix.
MAX_PICKLE_FILES = 64
# The label keys of a CIFAR-style batch, the first present chosen: CIFAR-100's fine labels are its 100 classes.
LABEL_KEYS = ("labels", "fine_labels", "coarse_labels", "label", "y")
# What a pickle of arrays may build: numpy's array and scalar reconstruction (under numpy 1's and 2's module
# names; protocol 5 builds arrays from their buffers) and the latin-1 text a Python 3 pickle of bytes goes through.
ALLOWED_GLOBALS = {
    (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"), ("numpy", "ndarray"),
     ("numpy", "dtype"), ("_codecs", "encode")}


class _Refused(pickle.UnpicklingError):
    """A pickle naming something other than an array's parts."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise _Refused(f"it would build {module}.{name}")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def safe_unpickle(path: Path):
    """The object pickled in ``path``, built from dictionaries, lists, text, numbers and numpy arrays only."""
    with open_regular(path) as handle:
        data = handle.read(MAX_ARRAY_BYTES + 1)
    if len(data) > MAX_ARRAY_BYTES:
        raise PipelineError(f"{path}: a pickle larger than {MAX_ARRAY_BYTES:,} bytes (half the memory)")
    try:
        # latin-1: CIFAR's batches were pickled by Python 2, their keys and array bytes Python 2 strings.
        return _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    except _Refused as error:
        raise PipelineError(f"{path}: not read: a pickle of arrays only is read, and {error}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as error:
        raise PipelineError(f"{path}: cannot be read as a pickle ({type(error).__name__}: {error})") from None


def array_dataset(root: Path, label_column: str | None = None) -> dict | None:
    """``{"train": (images, labels), "test": (images, labels) or None, "files": [file]}`` of a dataset of arrays
    in ``root`` or the lone folders under it (images uint8 NHWC, labels text), or None when it holds none: arrays
    need Keras' names for the training images and labels (a ``features.npy`` beside class folders is not a
    dataset), HDF5 and MATLAB files images and labels (a Keras ``model.h5`` beside class folders is not one),
    pickles a folder of files only (CIFAR's ``cifar-10-batches-py/``; a ``model.pkl`` beside class folders is not
    one either). ``label_column`` chooses a pickle's label key or a file's labels array (``coarse_labels``)."""
    folder = root
    while True:
        found = entries(folder)
        inside = [path for path in found if is_dir(path)]
        # Regular files only: zipfile, h5py and scipy open a FIFO named x.npz or x.h5 and wait for a writer forever.
        arrays = [path for path in found if path.suffix in (".npy", ".npz") and os.path.isfile(path)]
        if arrays and {"train_x", "train_y"} <= _array_keys(arrays):
            if label_column is not None:
                raise ParameterError("label_column", label_column, f"not for arrays ({arrays[0].name}): their "
                                     "labels are y_train and y_test")
            return _numpy_dataset(folder, arrays)
        array_files = [path for path in found if path.suffix.lower() in ARRAY_FILE_SUFFIXES and os.path.isfile(path)]
        # Beside class folders an array file is left out unless it holds images (100 Sports ships its model's .h5).
        dataset = _array_files_dataset(array_files, label_column, strict=not inside) if array_files else None
        if dataset:
            return dataset
        if not inside and len(arrays) >= 2 and all(path.suffix == ".npy" for path in arrays) and \
                not _array_keys(arrays):
            return _class_arrays(arrays)
        if not inside and len(found) <= MAX_PICKLE_FILES:
            pickles = [path for path in found if _is_pickle(path)]
            return _pickled_dataset(pickles, label_column) if pickles else None
        if len(inside) != 1 or arrays or array_files:
            return None
        folder = inside[0]


def _array_keys(files: list[Path]) -> set[str]:
    """Our names (``train_x``, ...) of the arrays the files hold, from their names alone: nothing is loaded."""
    names = []
    for path in files:
        if path.suffix == ".npz":
            try:
                with zipfile.ZipFile(path) as archive:
                    members = [name.removesuffix(".npy") for name in archive.namelist()]
            except (OSError, zipfile.BadZipFile):
                continue  # said by the reader, if the file turns out to matter
            names += npz_names(path, members)
        else:
            names.append(path.stem)
    return set(array_keys(names))


def _class_arrays(files: list[Path]) -> dict:
    """Quick, Draw!'s numpy bitmaps: a ``.npy`` file of one class's images each (``full_numpy_bitmap_cat.npy`` of
    (N, 784) rows), the class the file's name less the words every name begins with. No test split: a share is held
    out."""
    total = sum(os.stat(path).st_size for path in files)
    if total > MAX_ARRAY_BYTES:
        raise PipelineError(f"{files[0].parent}: its {len(files)} arrays hold {total:,} bytes, more than "
                            f"{MAX_ARRAY_BYTES:,} (half the memory); keep fewer classes' files there")
    prefix = os.path.commonprefix([path.stem for path in files])
    prefix = prefix[:max(prefix.rfind(mark) for mark in "_- ") + 1]  # whole words: cat and car share no "ca"
    images = images_of([(load_array(path), path, "pixels") for path in files])
    shapes = {path.name: batch.shape[1:] for path, batch in zip(files, images, strict=True)}
    if len(set(shapes.values())) > 1:
        first, other = files[0].name, next(name for name, shape in shapes.items() if shape != shapes[files[0].name])
        raise PipelineError(f"{files[0].parent / other}: images of {shapes[other]}, but {first}'s are {shapes[first]}")
    labels = np.concatenate([np.full(len(batch), path.stem[len(prefix):] or path.stem)
                             for path, batch in zip(files, images, strict=True)])
    logger.info(f"data: {len(files)} classes, one array file each ({', '.join(path.name for path in files[:3])}"
                f"{', ...' if len(files) > 3 else ''})")
    return {"train": (np.concatenate(images), labels), "test": None, "files": files}


def _array_files_dataset(files: list[Path], label_column: str | None, strict: bool = True) -> dict | None:
    """HDF5 and MATLAB files of images and labels, or None when none holds images (Keras' saved model.h5 beside class
    folders). Course datasets: train_signs.h5 of ``train_set_x`` (N, 64, 64, 3), ``train_set_y`` and
    ``list_classes``, test_signs.h5 alike; Food-101's 64 x 64 file: ``images``, one-hot ``category`` and
    ``category_names``; SVHN's train_32x32.mat: ``X`` (32, 32, 3, N), ``y`` (N, 1). A file's split is its name's or
    its images' (``test_set_x``). Not ``strict``, a file that cannot be read is left out with a warning."""
    parts: dict[str, list[tuple[Path, np.ndarray, np.ndarray]]] = {}
    for path in files:
        try:
            found = _file_arrays(path, label_column)
        except PipelineError as error:
            if strict or isinstance(error, ParameterError):
                raise
            logger.warning(f"data: left out {error}")
            continue
        if found is None:
            continue
        images_name, images, labels = found
        split = split_of(path.stem) or split_of(images_name) or "train"
        parts.setdefault(split, []).append((path, _planes(images, path), labels))
    if not parts:
        return None
    if "train" not in parts:
        raise PipelineError(f"{files[0]}: test images but no training images (a file named like train)")
    return _joined(parts, files)


def _file_arrays(path: Path, label_column: str | None) -> tuple[str, np.ndarray, np.ndarray] | None:
    """One HDF5 or MATLAB file's images and labels (``_images_and_labels``). MATLAB's files before v7.3 are read with
    scipy (scikit-learn's dependency); v7.3 files are HDF5. Neither runs anything."""
    import h5py

    if path.suffix.lower() == ".mat" and not h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5
        import scipy.io

        if os.stat(path).st_size > MAX_ARRAY_BYTES:
            raise PipelineError(f"{path}: larger than {MAX_ARRAY_BYTES:,} bytes (half the memory)")
        try:
            content = scipy.io.loadmat(path)
        except (ValueError, TypeError, OSError, EOFError, NotImplementedError, scipy.io.matlab.MatReadError) as error:
            raise PipelineError(f"{path}: cannot read the MATLAB file ({first_line(error)})") from None
        return _images_and_labels(path, {name: value for name, value in content.items()
                                         if not name.startswith("__") and isinstance(value, np.ndarray)}, label_column)
    try:
        with h5py.File(path, "r") as handle:
            return _images_and_labels(path, {name: item for name, item in handle.items()
                                             if isinstance(item, h5py.Dataset)}, label_column)
    except OSError as error:
        raise PipelineError(f"{path}: cannot read the HDF5 file ({first_line(error)})") from None


def _images_and_labels(path: Path, arrays: dict, label_column: str | None) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(images' name, images, labels as text) from a file's arrays (numpy arrays or h5py datasets, read only once
    chosen), or None without images. The images are the one numeric array of 3 or 4 dimensions (by name where
    several: ``x``, ``images``); their count is their first axis, or their last (SVHN's (32, 32, 3, N)); the labels
    the one other array of that many rows, the first axis's count first (by name where several: ``y``, ``labels``,
    or ``label_column``); a text array names the classes."""
    images = [name for name, item in arrays.items() if item.ndim in (3, 4) and item.dtype.kind in "uif"]
    if len(images) > 1:
        images = [name for name in images if IMAGES_NAME.search(name.lower())]
    if len(images) != 1:
        return None
    shape = arrays[images[0]].shape
    texts = [name for name, item in arrays.items() if item.ndim == 1 and item.dtype.kind in "SUO"]
    others = [name for name, item in arrays.items() if name != images[0] and name not in texts and item.ndim <= 2]
    candidates = [name for name in others if arrays[name].shape[:1] == shape[:1]] or \
        [name for name in others if arrays[name].shape[:1] == shape[-1:]]
    if label_column is not None:
        if label_column not in candidates:
            raise ParameterError("label_column", label_column, f"not an array of {path.name}'s labels "
                                 f"({', '.join(candidates) or 'none'})")
        candidates = [label_column]
    elif len(candidates) > 1:
        candidates = [name for name in candidates if LABELS_NAME.search(name.lower())] or candidates
    if len(candidates) != 1:
        raise PipelineError(f"{path}: which array holds the labels of {images[0]}? "
                            f"{', '.join(candidates) or 'none has one per image'}" +
                            ("; name it with LABEL_COLUMN= (--label-column)" if candidates else ""))
    if sum(arrays[name].size * arrays[name].dtype.itemsize for name in (images[0], candidates[0])) > MAX_ARRAY_BYTES:
        raise PipelineError(f"{path}: arrays larger than {MAX_ARRAY_BYTES:,} bytes (half the memory)")
    pixels, count = np.asarray(arrays[images[0]][()]), arrays[candidates[0]].shape[0]
    # The images' count on their last axis; where both axes have it (4 images of 4 x 4 x 3), the one that leaves
    # the colour channels last.
    count_after_channels = len(shape) == 4 and shape[-1] not in (1, 3) and shape[-2] in (1, 3)
    if count == shape[-1] and (count != shape[0] or count_after_channels):
        pixels = np.moveaxis(pixels, -1, 0)
    names = [name.decode("utf-8") if isinstance(name, bytes) else str(name)
             for name in np.asarray(arrays[texts[0]][()]).reshape(-1)] if len(texts) == 1 else None
    return images[0], pixels, _labels(np.asarray(arrays[candidates[0]][()]), count, path, names)


def _is_pickle(path: Path) -> bool:
    """A file whose name a pickle may have and whose first byte is a pickle's PROTO opcode (protocol 2 or later)."""
    if path.suffix.lower() not in PICKLE_SUFFIXES or path.name.lower().startswith("readme"):
        return False
    try:
        with open_regular(path) as handle:
            head = handle.read(2)
    except PipelineError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _numpy_dataset(folder: Path, files: list[Path]) -> dict:
    """Keras' ``mnist.npz`` and its kind: the npy layout's arrays plus the test labels."""
    arrays = named_arrays(folder)
    for key in ("train_x", "train_y"):
        if key not in arrays:
            raise PipelineError(f"{folder}: arrays ({', '.join(path.name for path in files)}) without {key} "
                                "(x_train, y_train, x_test, y_test: Keras' load_data names)")
    has_test = "test_x" in arrays and "test_y" in arrays
    if "test_x" in arrays and not has_test:
        logger.info(f"data: left out {arrays['test_x'][1].name}'s test images (no test labels: unscorable)")
    named = [("train_x", "train_y")] + [("test_x", "test_y")] * has_test + \
        [("val_x", "val_y")] * ("val_x" in arrays and "val_y" in arrays)  # MedMNIST's val split trains
    images = images_of([(arrays[x][0], arrays[x][1], x) for x, _ in named])
    splits = {}
    for (x, y), split_images in zip(named, images, strict=True):
        labels, labels_path = arrays[y]
        splits[x] = (split_images, _labels(labels, len(split_images), labels_path))
    if "val_x" in splits:
        (train_images, train_labels), (val_images, val_labels) = splits["train_x"], splits.pop("val_x")
        if val_images.shape[1:] != train_images.shape[1:]:
            raise PipelineError(f"{arrays['val_x'][1]}: validation images are {val_images.shape[1:]}, training images "
                                f"{train_images.shape[1:]}")
        splits["train_x"] = (np.concatenate([train_images, val_images]), np.concatenate([train_labels, val_labels]))
    return {"train": splits["train_x"], "test": splits.get("test_x"), "files": files}


def _labels(labels, count: int, path: Path, names: list[str] | None = None) -> np.ndarray:
    """Labels as text, as the npy layout reads them (class numbers, one-hot rows or text), class numbers named
    by ``names`` where the dataset gives them (CIFAR's batches.meta)."""
    labels = from_one_hot(np.asarray(labels))
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1 or len(labels) != count:
        raise PipelineError(f"{path}: {count:,} images but labels of shape {labels.shape}")
    text = npy_labels(labels, path)
    if names is None or labels.dtype.kind not in "iuf":
        return text
    numbers = text.astype(np.int64)
    outside = numbers[(numbers < 0) | (numbers >= len(names))]
    if outside.size:
        raise PipelineError(f"{path}: label {int(outside[0])} has no class name (the meta file names {len(names)})")
    return np.array(names, dtype=str)[numbers]


def _pickled_dataset(files: list[Path], label_column: str | None) -> dict:
    """CIFAR's python batches: every pickle with ``data`` is a batch (a test batch by its name), the one with
    ``*label_names`` names the classes."""
    batches: dict[str, list[tuple[Path, dict]]] = {"train": [], "test": []}
    meta = {}
    for path in files:
        content = safe_unpickle(path)
        if not isinstance(content, dict):
            raise PipelineError(f"{path}: a pickle of {type(content).__name__}, not a batch (data and labels) or "
                                "the class names")
        content = {key.decode("latin1") if isinstance(key, bytes) else str(key): value
                   for key, value in content.items()}
        if "data" in content:
            batches["test" if split_of(path.name) == "test" else "train"].append((path, content))
        elif any(key.endswith("label_names") for key in content):
            meta = content
        else:
            logger.info(f"data: left out {path.name} (a pickle without data or class names)")
    if not batches["train"]:
        raise PipelineError(f"{files[0].parent}: pickles without a training batch (a pickle holding data and labels)")
    first_path, first = batches["train"][0]
    keys = [label_column] if label_column else [key for key in LABEL_KEYS if key in first]
    if label_column and label_column not in first:
        raise ParameterError("label_column", label_column, f"not a key of {first_path.name} "
                             f"({', '.join(sorted(first))})")
    if not keys:
        raise PipelineError(f"{first_path}: a batch without labels (none of {', '.join(LABEL_KEYS)})")
    label_key = keys[0]
    if label_key == "fine_labels" and "coarse_labels" in first and not label_column:
        logger.info("data: labels from fine_labels (LABEL_COLUMN=coarse_labels for the coarse classes)")
    names_value = meta.get(label_key[:-1] + "_names") if label_key.endswith("labels") else None
    names = [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names_value] \
        if names_value is not None else None
    parts: dict[str, list[tuple[Path, np.ndarray, np.ndarray]]] = {}
    for split, found in batches.items():
        for path, content in found:
            if label_key not in content:
                raise PipelineError(f"{path}: a batch without {label_key}")
            pixels = _planes(np.asarray(content["data"]), path)
            parts.setdefault(split, []).append((path, pixels, _labels(content[label_key], len(pixels), path, names)))
    return _joined(parts, files)


def _joined(parts: dict[str, list[tuple[Path, np.ndarray, np.ndarray]]], files: list[Path]) -> dict:
    """The dataset from its parts, ``{split: [(file, images, labels as text)]}``: each split's parts joined
    (images of one shape), all pixels brought to uint8 by the one scaling rule."""
    splits = {}
    for split, found in parts.items():
        shapes = {images.shape[1:] for _, images, _ in found}
        if len(shapes) > 1:
            raise PipelineError(f"{found[0][0].parent}: {split} images of {len(shapes)} shapes "
                                f"({', '.join(map(str, sorted(shapes)))})")
        splits[split] = (np.concatenate([images for _, images, _ in found]),
                         np.concatenate([labels for _, _, labels in found]), found[0][0])
    read = [split for split in ("train", "test") if split in splits]
    images = dict(zip(read, images_of([(splits[split][0], splits[split][2], "data") for split in read]), strict=True))
    return {"train": (images["train"], splits["train"][1]),
            "test": (images["test"], splits["test"][1]) if "test" in images else None, "files": files}


def _planes(data: np.ndarray, path: Path) -> np.ndarray:
    """A batch's ``data`` as NHWC: CIFAR's rows hold a square image's red, green and blue planes one after the other
    (3,072 values: 32 x 32 x 3); rows of side² values are grey; arrays of images are kept as they are."""
    if data.ndim == 2:
        count = data.shape[1]
        side = math.isqrt(count // 3)
        if count % 3 == 0 and 3 * side * side == count:
            return data.reshape(len(data), 3, side, side).transpose(0, 2, 3, 1)
        side = math.isqrt(count)
        if side * side == count:
            return data.reshape(len(data), side, side, 1)
    if data.ndim in (3, 4):
        return data
    raise PipelineError(f"{path}: data of shape {data.shape} is not rows of square images")
