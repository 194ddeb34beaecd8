"""Layout ``folders`` (Plant Seedlings Classification, State Farm Distracted Driver Detection, Keras'
``image_dataset_from_directory``): ``train/<class name>/<file>`` and ``test/<file>``, also one folder deeper
(``imgs/train/<class>/``, ``imgs/test/``). Class names are the folder names exactly as written (spaces kept);
a class's images may also lie in its subfolders (``train/cat/batch1/``), which Keras reads too. Test images are
matched to the sample submission's ids by file name, with or without the extension.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import (
    IMAGE_SUFFIXES,
    check_folder,
    entries,
    has_images,
    image_entries,
    image_root,
    is_dir,
    not_images_note,
    test_folder,
    test_folders,
    train_folder,
)
from kaggle_pipeline.data.images import decode_images, left_out_of, test_files_like_sample
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.errors import PipelineError


def _class_folders(train: Path) -> list[Path]:
    return [path for path in entries(train) if is_dir(path)]


def _class_entries(class_folder: Path) -> list[Path]:
    """Every visible entry of a class folder and of its subfolders, the folder's own first (so a flat class
    folder lists as it always did); a subfolder reached again through a link is listed once."""
    listed, seen, pending = [], set(), [class_folder]
    while pending:
        folder = pending.pop(0)
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        found = entries(folder)
        listed += found
        # A folder named like an image (x.png) stays an image entry: it is refused when read, not entered.
        pending += [path for path in found if is_dir(path) and path.suffix.lower() not in IMAGE_SUFFIXES]
    return listed


def class_images(class_folder: Path, say_left_out: bool = True) -> list[Path]:
    """The images in ``class_folder`` and its subfolders; the other files are left out, and said so unless
    ``say_left_out`` is false (a dataset's CSVs, which it reads)."""
    check_folder(class_folder, "class folder")
    found = _class_entries(class_folder)
    return image_entries(class_folder, found) if say_left_out else \
        [path for path in found if path.suffix.lower() in IMAGE_SUFFIXES]


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    root = image_root(folder)
    train = train_folder(root)
    check_folder(train, "training folder (train/<class name>/<image>)")
    classes = _class_folders(train)
    if not classes:
        raise PipelineError(f"{train}: no class folders (expected train/<class name>/<image>)")
    loose = [path for path in entries(train) if path.suffix.lower() in IMAGE_SUFFIXES and not is_dir(path)]
    if loose:
        raise PipelineError(f"{loose[0]}: an image directly in {train.name}/ beside class folders; every training "
                            "image must be in its class's folder")
    train_paths, labels = [], []
    for class_folder in classes:
        files = class_images(class_folder)
        if not files:
            raise PipelineError(f"{class_folder}: class folder holds no images{not_images_note(class_folder)}")
        train_paths += files
        labels += [class_folder.name] * len(files)
    test_paths = test_files_like_sample(test_folders(root), sample, sample_path)
    (x_train, x_test), left_out = decode_images([train_paths, test_paths], image_size, "train and test images",
                                                skip_unreadable)
    return {"x_train": x_train, **left_out_of(np.asarray(labels, dtype=str), left_out), "labels_path": train,
            "x_test": x_test}


def _files(folder: Path) -> list[Path]:
    root = image_root(folder)
    files = []
    if is_dir(train_folder(root)):
        for class_folder in _class_folders(train_folder(root)):
            files += _class_entries(class_folder)
    for test in test_folders(root):
        if is_dir(test):
            files += entries(test)
    return files


def _started(folder: Path) -> bool:
    train = train_folder(image_root(folder))
    return is_dir(train) and any(class_images(path) for path in _class_folders(train))


def _complete(folder: Path) -> bool:
    return _started(folder) and has_images(test_folder(image_root(folder)))


register_layout(Layout(
    name="folders",
    files_text="train/<class name>/<image> and test/<image> (also imgs/train/<class>/)",
    competitions="Plant Seedlings Classification (train/<species>/, file names with .png as ids), State Farm "
                 "Distracted Driver Detection (imgs/train/c0..c9/, a probability column per class)",
    read=read, complete=_complete, started=_started, files=_files,
))
