"""Layout ``filenames``: the label is in each training image's name, and ``test/<id>.<ext>`` (or ``test1/``, as Dogs
vs. Cats ships it). Two ways of writing it, as the datasets that do it write it:

- ``train/<label>.<anything>.<ext>``, the label up to the first dot (Dogs vs. Cats: ``cat.0.jpg``, ``dog.1.jpg``);
- ``train/<label>_<number>.<ext>`` or ``<label>-<number>.<ext>``, the label before the last separator (the
  Oxford-IIIT Pet names fastai's ``from_name_re`` reads: ``great_pyrenees_12.jpg``, ``Abyssinian_1.jpg``), or
  ``<label> (<number>).<ext>``, the numbering of copies that browsers and file managers add to a name taken
  (``Normal (12).png``; ``cat_3 (1).jpg`` is a ``cat``). The
  label must hold a letter, and a prefix that only numbers files is no label (``NOT_LABELS``: a camera's
  ``IMG_0001.jpg`` and ``DSC_0002.jpg``, a split's ``Train_0.jpg`` and ``Test_0.jpg``): a folder of photos is not
  split into classes by camera brand.

Chosen only when there is no labels CSV (with one, the ``images`` layout reads the same folders by its ids), when
every training image has a label and there are at least two.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import (
    entries,
    has_images,
    image_root,
    is_dir,
    labels_csv_candidates,
    not_images_note,
    test_folder,
    test_folders,
    train_folder,
)
from kaggle_pipeline.data.images import decode_images, image_files, left_out_of, test_files_like_sample
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.errors import PipelineError

NUMBERED_NAME = re.compile(r"(.+)[_-]\d+")
# A copy's number, as file managers and browsers add it to a name already taken: "cat (3).jpg", "cat_3 (1).jpg".
COPY_NUMBER = re.compile(r"(.+?)\s*\(\d+\)")
# Prefixes that number files rather than name their class: cameras', phones' and scanners' (IMG_0001.jpg is a
# photo's number), a split's (Plant Pathology's Train_0.jpg beside Test_0.jpg) and a record's (id_12, sample_3).
NOT_LABELS = frozenset({"img", "image", "dsc", "dscn", "dscf", "dcim", "pxl", "mvimg", "gopr", "dji", "sam",
                        "photo", "pic", "picture", "scan", "frame", "screenshot", "file", "untitled",
                        "train", "test", "val", "valid", "validation", "id", "sample", "case", "patient"})


def label_of(path: Path) -> str | None:
    """``cat`` for ``cat.0.jpg``, ``great_pyrenees`` for ``great_pyrenees_12.jpg``, ``Normal`` for ``Normal (3).png``;
    None for a name without a label part (``0.jpg``, ``.jpg``, ``12_3.jpg``, ``IMG_0001.jpg``, ``(3).jpg``)."""
    parts = path.name.split(".")
    if len(parts) >= 3:
        return parts[0] if parts[0].strip() else None
    if len(parts) != 2:
        return None
    copy = COPY_NUMBER.fullmatch(parts[0])
    stem = copy.group(1) if copy else parts[0]
    numbered = NUMBERED_NAME.fullmatch(stem)
    if numbered is None and copy is None:
        return None
    label = numbered.group(1) if numbered else stem
    has_letter = any(character.isalpha() for character in label)
    return label if has_letter and label.strip() and label.lower() not in NOT_LABELS else None


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    root = image_root(folder)
    train = train_folder(root)
    train_paths = image_files(train)
    if not train_paths:
        raise PipelineError(f"{train}: no training images{not_images_note(train)}")
    labels = []
    for path in train_paths:
        label = label_of(path)
        if label is None:
            raise PipelineError(f"{path}: no label in the file name (expected <label>.<anything>{path.suffix}, "
                                f"e.g. cat.0.jpg, or <label>_<number>{path.suffix}, e.g. great_pyrenees_12.jpg), "
                                "and no labels CSV")
        labels.append(label)
    test_paths = test_files_like_sample(test_folders(root), sample, sample_path)
    (x_train, x_test), left_out = decode_images([train_paths, test_paths], image_size, "train and test images",
                                                skip_unreadable)
    return {"x_train": x_train, **left_out_of(np.asarray(labels, dtype=str), left_out), "labels_path": train,
            "x_test": x_test}


def _files(folder: Path) -> list[Path]:
    root = image_root(folder)
    return [path for images in (train_folder(root), *test_folders(root)) if is_dir(images) for path in entries(images)]


def _started(folder: Path) -> bool:
    train = train_folder(image_root(folder))
    if labels_csv_candidates(folder) or not has_images(train):
        return False
    labels = {label_of(path) for path in image_files(train)}
    return None not in labels and len(labels) >= 2


def _complete(folder: Path) -> bool:
    return _started(folder) and has_images(test_folder(image_root(folder)))


register_layout(Layout(
    name="filenames",
    files_text="train/<label>.<anything>.<ext> (cat.0.jpg) or train/<label>_<number>.<ext> (great_pyrenees_12.jpg) "
               "and test/<id>.<ext>, no labels CSV",
    competitions="Dogs vs. Cats (train/cat.0.jpg, test1/1.jpg, a dog-probability label column)",
    read=read, complete=_complete, started=_started, files=_files,
))
