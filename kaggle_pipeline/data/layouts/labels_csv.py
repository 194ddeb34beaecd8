"""Layout ``images`` (Aerial Cactus, Histopathologic Cancer Detection, CIFAR-10; Cassava and APTOS with
``train_images/`` and ``test_images/``; Plant Pathology 2020 with one ``images/`` folder for both, the test images
being those the labels CSV does not list): ``train/<id>.<ext>`` and ``test/<id>.<ext>`` with a labels CSV
(``id,label``) under any name, or, where the sample has a column per class, with those columns marking each image's
class with a 1 (one-hot).

The labels CSV is the first of ``LABELS_CSV_NAMES`` that exists, else the folder's one other CSV (not the sample
submission, ``solution.csv`` or a ``test*.csv``); its ids are file names with or without the extension, or paths
through the training folder (``train/1.png``).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import (
    IMAGE_SUFFIXES,
    LABELS_CSV_NAMES,
    entries,
    has_images,
    image_root,
    is_dir,
    labels_csv_candidates,
    test_folder,
    test_folders,
    train_folder,
)
from kaggle_pipeline.data.images import decode_images, image_files, left_out_of, match_ids, test_files_like_sample
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.data.tables import LABEL_COLUMN_NAMES, find_column, read_submission_table
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import open_regular, packed_hint


def _labels_csv(folder: Path) -> Path:
    candidates = labels_csv_candidates(folder)
    if not candidates:
        raise PipelineError(f"{folder}: no labels CSV (expected one of {', '.join(LABELS_CSV_NAMES)}, or another "
                            "CSV with an id and a label column), no class folders, and no labels in the "
                            "training images' names (cat.0.jpg, great_pyrenees_12.jpg)" + packed_hint(folder))
    known = [path for path in candidates if path.name in LABELS_CSV_NAMES]
    if known or len(candidates) == 1:
        return candidates[0]
    names = ", ".join(path.name for path in candidates)
    raise PipelineError(f"{folder}: several CSVs could hold the training labels ({names}); name the labels CSV "
                        f"{LABELS_CSV_NAMES[0]} or remove the others from the folder")


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    labels_path = _labels_csv(folder)
    labels_table = read_submission_table(labels_path)
    train, tests = _image_folders(folder)
    labels_table = _without_row_numbers(labels_table, train)
    if labels_table.shape[1] < 2 or len(labels_table) == 0:
        raise PipelineError(f"{labels_path}: expected an id column and a label column with at least one row")
    # The sample's own id column name first: Humpback Whale's train.csv is Image,Id, where Id is the label.
    id_column = find_column(labels_table, (sample.columns[0], "id", "image", "file", "filename")) or labels_table.columns[0]
    others = [column for column in labels_table.columns if column != id_column]
    # A sample with a column per class: a labels CSV holding those columns marks each image's class in them.
    class_columns = list(sample.columns[1:]) if len(sample.columns) > 2 else []
    if class_columns and set(class_columns) <= set(others):
        train_labels = one_hot_labels(labels_table, class_columns, labels_path)
    else:
        label_columns = LABEL_COLUMN_NAMES if class_columns else (sample.columns[1],) + LABEL_COLUMN_NAMES
        label_column = (find_column(labels_table, label_columns) or (others[0] if len(others) == 1 else None)
                        or _column_of_classes(labels_table, others, class_columns))
        if label_column is None:  # several columns, none named for labels: not ours to guess (width, height, ...)
            named = "/".join(LABEL_COLUMN_NAMES) if class_columns else f"like the sample's {sample.columns[1]!r} or " \
                + "/".join(LABEL_COLUMN_NAMES)
            fitting = ", and not exactly one whose values are all the sample's class columns," if class_columns else ""
            raise PipelineError(f"{labels_path}: no column named {named}{fitting} among "
                                f"{', '.join(map(repr, others))}; rename the one that holds the labels")
        train_labels = labels_table[label_column].str.strip().to_numpy()
    train_ids = labels_table[id_column].str.strip()
    duplicated = train_ids[train_ids.duplicated()]
    if len(duplicated):
        raise PipelineError(f"{labels_path}: duplicate id {duplicated.iloc[0]!r} in column {id_column!r}")
    train_paths = match_ids(train_ids.tolist(), image_files(train), train, labels_path, id_column)
    # One folder for both (Plant Pathology 2020's images/): the test images are the ones not labelled.
    test_paths = test_files_like_sample(tests, sample, sample_path, labelled=train_paths if tests == [train] else (),
                                        labels_path=labels_path)
    (x_train, x_test), left_out = decode_images([train_paths, test_paths], image_size, "train and test images",
                                                skip_unreadable)
    return {"x_train": x_train, **left_out_of(train_labels, left_out), "labels_path": labels_path, "x_test": x_test}


def _without_row_numbers(table: pd.DataFrame, train: Path) -> pd.DataFrame:
    """The table without a first column that has no name and holds the row numbers 0..n-1: the index pandas
    writes when a notebook saves a labels table with ``to_csv`` and no ``index=False``. Kept where those numbers
    name training images (``0.png``): then they are the ids, only unnamed."""
    header = table.attrs.get("header") or []
    if len(header) < 3 or header[0].strip() or not len(table):
        return table
    first = table.columns[0]
    numbers = table[first].str.strip().tolist()
    if numbers != [str(row) for row in range(len(table))]:
        return table
    if _is_image_name(numbers[0], train):
        return table
    kept = table.drop(columns=first)
    kept.attrs = {**table.attrs, "header": header[1:], "columns": [str(column) for column in kept.columns]}
    return kept


def _column_of_classes(table: pd.DataFrame, columns: list[str], class_columns: list[str]) -> str | None:
    """The one column whose every value is one of the sample's class columns (Leaf Classification's
    ``species`` among 192 measurements, for a sample of id and 99 species); None where not exactly one is."""
    if not class_columns:
        return None
    classes = set(class_columns)
    fitting = [column for column in columns if set(table[column].str.strip()) <= classes]
    return fitting[0] if len(fitting) == 1 else None


def one_hot_labels(table: pd.DataFrame, class_columns: list[str], labels_path: Path) -> np.ndarray:
    """Labels written as class columns, a 1 in the image's class and 0 elsewhere (Plant Pathology 2020:
    image_id,healthy,multiple_diseases,rust,scab; ISIC 2019's ground truth, image,MEL,NV,...): each row's class is
    the column holding its 1; a row marking two classes or none is one line."""
    marks = table[class_columns].apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    bad = ~marks.isin([0, 1]).all(axis=1) | (marks.sum(axis=1) != 1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        values = ", ".join(f"{name}={str(table[name].iloc[row]).strip() or '(empty)'}" for name in class_columns)
        raise PipelineError(f"{labels_path}: row {row + 2} ({values}) does not mark exactly one class with a 1 and "
                            f"the others with 0 ({int(bad.sum())} such rows); each image needs exactly one class")
    return np.asarray(class_columns, dtype=str)[marks.to_numpy().argmax(axis=1)]


def _image_folders(folder: Path) -> tuple[Path, list[Path]]:
    """(training images, test image folders): ``train/`` and ``test/`` (or their ``train*``/``test*`` names; a
    test folder per stage in a two-stage competition, ``folders.test_folders``), or else the competition's one
    subfolder holding images, for both (Plant Pathology 2020: ``images/Train_0.jpg`` and ``images/Test_0.jpg``,
    told apart by the labels CSV and the sample)."""
    root = image_root(folder)
    train, tests = train_folder(root), test_folders(root)
    if is_dir(train) or any(map(is_dir, tests)):
        return train, tests
    shared = _shared_image_folder(folder)
    return (shared, [shared]) if shared is not None else (train, tests)


def _shared_image_folder(folder: Path) -> Path | None:
    """The one subfolder with images, when the folder has no pixel table: a ``train.csv`` or ``test.csv`` with
    ``pixel<n>`` columns, or a ``test.csv`` of more than an id and a label column whose first id names no image
    in that subfolder, is Digit Recognizer's pixels (perhaps missing a file), whatever folder of pictures lies
    beside it. A wide ``test.csv`` whose ids name the images is a table of measurements beside them (Leaf
    Classification: ``images/<id>.jpg``, ``test.csv`` of id,margin1,...,texture64), not read: the nets learn from
    the images."""
    wide_test = None
    for name in ("train.csv", "test.csv"):
        if (folder / name).is_file():
            with open_regular(folder / name) as handle:
                header = handle.readline(1 << 16)
                first_row = handle.readline(1 << 16)
            if re.search(rb"(^|[,;\t])\W*pixel\d", header.lower()):
                return None
            if name == "test.csv" and header.count(b",") > 1:
                wide_test = first_row
    with_images = [path for path in entries(folder) if has_images(path)]
    if len(with_images) != 1:
        return None
    if wide_test is not None and not _names_an_image(wide_test, with_images[0]):
        return None
    return with_images[0]


def _names_an_image(row: bytes, images: Path) -> bool:
    """Whether the row's first cell names a file in ``images``, as written or with an image suffix."""
    first = next(csv.reader([row.decode("utf-8", "replace")]), [""])
    return _is_image_name(first[0].strip() if first else "", images)


def _is_image_name(image_id: str, images: Path) -> bool:
    """Whether ``image_id`` names a file in ``images``, as written or with an image suffix."""
    if not image_id or "/" in image_id or image_id.startswith("."):
        return False
    names = [image_id, *(image_id + suffix for suffix in IMAGE_SUFFIXES),
             *(image_id + suffix.upper() for suffix in IMAGE_SUFFIXES)]
    return any(os.path.isfile(images / name) for name in names)


def _files(folder: Path) -> list[Path]:
    files = labels_csv_candidates(folder)[:1]
    train, tests = _image_folders(folder)
    for images in dict.fromkeys([train, *tests]):
        if is_dir(images):
            files += entries(images)
    return files


def _complete(folder: Path) -> bool:
    train, tests = _image_folders(folder)
    return has_images(train) and has_images(tests[-1]) and bool(labels_csv_candidates(folder))


def _started(folder: Path) -> bool:
    train, tests = _image_folders(folder)
    if has_images(train) or has_images(tests[-1]):
        return True
    root = image_root(folder)
    # Empty image folders and no CSV table: still an image competition, whose error names what is missing.
    tables = (folder / "train.csv").exists() or (folder / "test.csv").exists()
    return (is_dir(train_folder(root)) or is_dir(test_folder(root))) and not tables


register_layout(Layout(
    name="images",
    files_text="train/<id>.<ext> and test/<id>.<ext> (or one folder holding both) with a labels CSV (id,label; "
               "e.g. train_labels.csv)",
    competitions="Aerial Cactus Identification (train.csv, ids with .jpg), Histopathologic Cancer Detection "
                 "(train_labels.csv, .tif, ids without extension), CIFAR-10 (trainLabels.csv), Plant Pathology "
                 "2020 (images/ for both, train.csv with a column per class)",
    read=read, complete=_complete, started=_started, files=_files,
))
