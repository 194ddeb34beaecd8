"""A labelled image dataset as a competition folder with a local answer key (``data --dataset``).

Students practise on Kaggle *datasets* as much as on competitions: Chest X-Ray Images (``chest_xray/train/``,
``val/`` and ``test/``, each ``NORMAL/`` and ``PNEUMONIA/``), Intel Image Classification (``seg_train/seg_train/
<class>/``, ``seg_test/seg_test/<class>/``), Brain Tumor MRI (``Training/``, ``Testing/``), Microsoft's cats and dogs (``PetImages/Cat/``, ``PetImages/Dog/``).
They have no sample submission, so no stage can read them as they are. ``prepare_dataset`` writes what the
default competition is (kaggle_pipeline.data.fashion_mnist): a competition folder whose test labels are a local
answer key, so every stage, the vote and the local score work on it unchanged:

- ``train/<class>/<name>``: the training images (a ``val*`` split's too: the pipeline makes its own validation
  split), as symbolic links to the dataset's files, which are never copied, moved or written;
- ``test/<id>``: the test split's images (or, for a dataset of class folders only, a stratified, seeded
  ``test_fraction`` of them), renamed to numbered ids in a shuffled order, so neither a name nor the order says
  the class; images that cannot be read are left out of the test side (a submission needs every test image);
- ``sample_submission.csv`` (``id,label``), ``solution.csv`` (the answers) and ``PREPARED.json`` (the source,
  the counts and the seed), written last.

A dataset whose CSV labels its image files (Butterfly Image Classification's ``Training_set.csv`` of
``filename,label``; HAM10000's metadata keyed by ``image_id``, its label column ``dx`` named with
``label_column``; ISIC 2019's ground truth of a column per class, marked 0 and 1) becomes the ``images`` layout
instead: ``train/<name>`` links and ``train_labels.csv``, so a
label may be any text (``RED/WHITE ADMIRAL``), and the test set as above (``labels_tables``).

A dataset of labelled pixel tables (``label,pixel1..pixel784``, Kaggle's Fashion-MNIST, Sign Language MNIST, MNIST
in CSV) named like splits (``fashion-mnist_train.csv``, ``sign_mnist_test.csv``) becomes Digit Recognizer's layout
instead: ``train.csv``, ``test.csv`` without its labels in a shuffled order, ``sample_submission.csv`` and
``solution.csv`` (``pixel_tables``; a test table's share held out when there is none). One table with a split
column (FER2013's ``emotion,pixels,Usage``) is split by it. A dataset of arrays (Keras' ``mnist.npz``, CIFAR's
python batches: kaggle_pipeline.data.array_datasets) becomes the npy layout with its answer key.

Splits are the dataset's folders whose names hold ``train``, ``val`` or ``test`` (``seg_train``,
``training_set``, ``test_set``), read through a lone folder of the same name (``seg_train/seg_train/``), and
the dataset itself through its one folder of folders (``chest_xray/``, ``PetImages/``, where a download unpacked); a
folder of unlabelled images (``seg_pred``, Fruits-360's ``test-multiple_fruits``) is left out, with a log line; a
split or folder of images named with their labels (``cat.0.jpg``, ``Abyssinian_1.jpg``) is labelled by the names.
Without split folders, text files listing a split's images (Food-101's ``meta/train.txt`` and ``test.txt``) choose
the test set (``split_lists``), or training flags of image ids (CUB-200-2011's ``train_test_split.txt`` beside
``images.txt``: ``flagged_split``); a split of unlabelled images may be labelled by a text file in it (Tiny ImageNet's
``val/val_annotations.txt``: kaggle_pipeline.data.image_lists). Image files labelled by MATLAB files (Flowers-102's
``imagelabels.mat`` and ``setid.mat``, Stanford Cars' annotations) are read by kaggle_pipeline.data.mat_labels, and
MATLAB split lists (Stanford Dogs' ``train_list.mat``) choose the test set there too (``mat_split_lists``).
A competition folder given as a dataset gets a copy scored locally; its sample submission and an answer key
(``solution.csv``) are never read as labels. The output folder follows the ``data`` stage's rule: it must be
missing or empty, and nothing but what this writes is ever removed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.array_datasets import array_dataset
from kaggle_pipeline.data.fashion_mnist import (
    output_folder_state,
    write_array_competition,
    write_competition_folder,
    write_pixel_competition,
)
from kaggle_pipeline.data.folders import (
    IMAGE_SUFFIXES,
    SPLIT_WORD,
    check_folder,
    entries,
    is_dir,
    is_sample_name,
    split_of,
    split_of_words,
)
from kaggle_pipeline.data.image_lists import (
    flagged_split,
    labels_list,
    listed_labels,
    split_labels_lists,
    split_lists,
)
from kaggle_pipeline.data.images import image_files, parallel_map, read_image
from kaggle_pipeline.data.layouts.class_folders import class_images
from kaggle_pipeline.data.layouts.csv_pixels import (
    SPLIT_COLUMN_NAMES,
    labelled_pixel_table,
    looks_like_pixels,
    read_labelled_pixels,
    table_header,
)
from kaggle_pipeline.data.layouts.file_names import label_of
from kaggle_pipeline.data.layouts.labels_csv import one_hot_labels
from kaggle_pipeline.data.mat_labels import mat_labels, mat_split_lists
from kaggle_pipeline.data.tables import LABEL_COLUMN_NAMES, csv_parse_error, read_csv_bytes, separator_of
from kaggle_pipeline.errors import ParameterError, PipelineError

logger = logging.getLogger(__name__)

DEFAULT_TEST_FRACTION = 0.2
DATASET_SEED = 0
ID_SAMPLE_ROWS = 1000
# A labels table with more malformed rows than this share is refused, not read without them.
MAX_BAD_ROW_SHARE = 0.01
# A labels table's column named like labels with an ending (GTSRB's ClassId).
LABEL_NAME = re.compile(rf"({'|'.join(LABEL_COLUMN_NAMES)})[ _-]?(id|idx|index|no|num|number|name)")
# Words that make a CSV's first line a header even where an image has that name (id.png).
HEADER_WORDS = {*LABEL_COLUMN_NAMES, "id", "image", "image_id", "image_name", "filename", "file", "path", "name"}
# What a folder holding a split's images is called when they have no class folders (Tiny ImageNet's val/images/).
IMAGE_FOLDER_NAMES = ("images", "image", "imgs", "img", "pictures", "photos", "jpg", "jpeg", "png")
# Folders of segmentation masks beside a class's images folder (COVID-19 Radiography: masks/, "lung masks/").
MASK_WORD = re.compile(r"mask|segment|trimap")


def prepare_dataset(source: Path, folder: Path, test_fraction: float = DEFAULT_TEST_FRACTION,
                    seed: int = DATASET_SEED, label_column: str | None = None) -> bool:
    """Write ``folder`` as a competition made from the labelled dataset ``source``; False when it is already there.

    ``test_fraction`` is used only when the dataset has no test split of its own: that share of each class's
    images (at least one from a class of two or more) becomes the test set. ``label_column`` names the labels'
    column of a CSV that labels the dataset's images, or of its pixel tables, where no column is named like labels.
    """
    source, folder = Path(source), Path(folder)
    if not 0 < test_fraction < 1:
        raise ParameterError("test_fraction", test_fraction, "must be above 0 and below 1")
    if output_folder_state(folder) == "prepared":
        return False
    check_folder(source, "dataset folder")
    if os.path.realpath(folder).startswith(os.path.realpath(source) + os.sep):
        raise PipelineError(f"{folder}: lies inside the dataset folder {source}; the dataset is never written")
    samples = [path.name for path in entries(source) if is_sample_name(path.name)]
    if samples:  # not refused: a local copy with an answer key is how a competition is measured offline
        logger.info(f"data: {source} is a competition folder ({samples[0]}): make all DATA={source} submits to "
                    "Kaggle; this makes a copy whose test set is held out from the labelled images, scored locally")
    root = dataset_root(source)
    tables = pixel_tables(root, source, label_column)
    if tables:
        _prepare_pixel_dataset(source, tables, folder, test_fraction, seed, label_column)
        return True
    arrays = array_dataset(root, label_column)
    if arrays:
        _prepare_array_dataset(source, arrays, folder, test_fraction, seed)
        return True
    labelled = labels_tables(root, source, label_column)
    if labelled and label_column is None and _folders_agree(labelled):
        # 100 Sports Image Classification's sports.csv lists its class folders' images with their folders' names:
        # the folders say the same, and their train/valid/test splits too.
        logger.info(f"data: {labelled['where'].name} labels each image with its folder's name; reading the class "
                    "folders")
        labelled = None
    labelled = labelled or split_labels_lists(root, label_column) or mat_labels(root, label_column)
    if labelled:
        train, test, where = labelled["train"], labelled.get("test"), labelled["where"]
    elif label_column is not None:
        raise ParameterError("label_column", label_column, "only for a dataset labelled by a CSV (of its image files, "
                             "or of pixels), by labels lists of several kinds or by MATLAB files")
    else:
        splits = dataset_splits(root)
        train = _labelled_images(splits["train"])
        test = _labelled_images(splits["test"]) if "test" in splits else None
        where = splits.get("test", [root])[0]
    lists = (split_lists(source, train) or flagged_split(source, train) or mat_split_lists(source, train)) \
        if test is None else None
    if lists:
        train, test, where = lists["train"], lists["test"], lists["where"]
    if test is not None:
        _check_test_classes(test, train, where, "images")
        held_out = None
    else:
        train, test = _hold_out(train, test_fraction, seed)
        held_out = test_fraction
    classes = sorted(train)
    if len(classes) < 2:
        raise PipelineError(f"{source}: a dataset needs at least two classes with images (found "
                            f"{', '.join(classes) or 'none'}){_unreadable_tables_note(root, source)}")
    if not any(test.values()):
        raise PipelineError(f"{where}: a test split without images" if held_out is None else
                            f"{source}: no class has two images, so no test image can be held out")
    test_rows = _readable_test_images(test, seed)
    marker = {"source": str(source), "dataset": True, "classes": classes,
              "train_images": sum(map(len, train.values())), "test_images": len(test_rows),
              "held_out_fraction": held_out, "seed": seed}
    if lists:
        marker["split_lists"] = [str(path) for path in lists["lists"]]

    def fill(staging: Path) -> None:
        # Class folders for folder names; a labels CSV's labels may be any text, so they stay in a CSV (the
        # images layout) rather than becoming folder names.
        names: set[str] = set()
        labels_rows = [["id", "label"]]
        for label, paths in train.items():
            names = names if labelled else set()
            for path in paths:
                name = path.name if path.name not in names else f"{path.parent.name}-{path.name}"
                while name in names:  # the same name in train/ and val/, or in a class's subfolders
                    name = f"_{name}"
                names.add(name)
                _link(path, staging / "train" / (name if labelled else f"{label}/{name}"))
                labels_rows.append([name, label])
        if labelled:
            with open(staging / "train_labels.csv", "w", newline="") as labels:
                csv.writer(labels).writerows(labels_rows)
        with open(staging / "sample_submission.csv", "w", newline="") as sample, \
                open(staging / "solution.csv", "w", newline="") as solution:
            samples, answers = csv.writer(sample), csv.writer(solution)
            samples.writerow(["id", "label"])
            answers.writerow(["id", "label"])
            for image_id, path, label in test_rows:
                _link(path, staging / "test" / image_id)
                samples.writerow([image_id, classes[0]])
                answers.writerow([image_id, label])

    write_competition_folder(folder, fill, marker)
    return True


def dataset_root(source: Path) -> Path:
    """The folder holding the dataset's splits or classes: ``source``, or the lone folder (of images) it holds."""
    root = source
    # Read through a lone folder: chest_xray/chest_xray/ (a zip unpacked into a folder of its name), and the one
    # folder a downloaded dataset unpacks into (data/chest-xray-pneumonia/chest_xray/, data/cats/PetImages/,
    # data/mnist/mnist-csv/): one folder of folders or tables is never a class set of its own, unless it is a
    # split (train/ alone: held out).
    # Folders without any image beside one with them (Stanford Dogs' annotations/ beside images/) count as absent.
    while True:
        inside = [path for path in entries(root) if is_dir(path)]
        splits = [path for path in inside if split_of(path.name)]
        # New Plant Diseases: its train/ and valid/ two folders down, beside test/test/ of unlabelled images.
        others = [path for path in inside if path not in splits]
        # ... but not beside a folder without images (Stanford Cars' devkit/ of MATLAB files labelling cars_train/).
        if splits and len(others) == 1 and _holds_files(others[0], IMAGE_SUFFIXES) and \
                not any(_split_tree(path) or labels_list(path) for path in splits):
            logger.info(f"data: left out {', '.join(path.name for path in splits)} (no class folders, no labels in "
                        "its file names: unlabelled)")
            inside = others
        elif len(inside) > 1 and not splits:
            with_images = [path for path in inside if class_images(path, say_left_out=False)]
            # ... but an empty folder may be a class whose images are missing: then nothing is left out.
            if len(with_images) == 1 and all(_holds_files(path) for path in inside):
                logger.info(f"data: left out {', '.join(path.name for path in inside if path not in with_images)} "
                            f"(no images) beside {with_images[0].name}")
                inside = with_images
        if len(inside) == 1 and (inside[0].name.lower() == root.name.lower() or split_of(inside[0].name) is None and
                                 any(is_dir(path) or path.suffix.lower() == ".csv" for path in entries(inside[0]))):
            root = inside[0]
            continue
        break
    if root != source:
        logger.info(f"data: reading {root} (the one folder in {root.parent})")
    return root


def _holds_images_itself(folder: Path) -> bool:
    """Whether ``folder`` holds an image file directly (not only in its folders)."""
    return any(not is_dir(path) and path.suffix.lower() in IMAGE_SUFFIXES for path in entries(folder))


def _holds_files(folder: Path, suffixes=None) -> bool:
    """Whether ``folder`` or a folder in it holds a visible file (of one of ``suffixes``, if given); stops at the
    first."""
    return any(not name.startswith(".") and (suffixes is None or Path(name).suffix.lower() in suffixes)
               for _, _, names in os.walk(folder) for name in names)


def _label_names(label_column: str | None) -> tuple[str, ...]:
    """The names a label column may have, lower case: the one given, or the usual ones."""
    return (label_column.strip().lower(),) if label_column else LABEL_COLUMN_NAMES


def _named_like_labels(column: str, label_column: str | None) -> bool:
    """Whether a labels table's column is named like its labels: ``label_column`` (any case), or else a usual name,
    alone or with an id's or a name's ending (GTSRB's ``ClassId``, ``class_name``, ``label_idx``)."""
    name = column.strip().lower()
    return name in _label_names(label_column) or label_column is None and LABEL_NAME.fullmatch(name) is not None


def _tables(root: Path, source: Path) -> list[Path]:
    """The CSVs in ``root`` and in the folders read through to reach it from ``source`` (CelebA's CSVs lie beside
    the lone ``img_align_celeba/`` its images are in)."""
    folders = [root]
    while folders[-1] != source:
        folders.append(folders[-1].parent)
    # A sample submission's labels are placeholders, and a local answer key's test images must never train: neither
    # is a labels table.
    return [path for folder in reversed(folders) for path in entries(folder)
            if path.suffix.lower() == ".csv" and not is_dir(path) and not is_sample_name(path.name)
            and path.name.lower() != "solution.csv"]


def pixel_tables(root: Path, source: Path | None = None, label_column: str | None = None) -> dict[str, list[Path]]:
    """The dataset's labelled pixel tables named like splits (``fashion-mnist_train.csv``, ``sign_mnist_test.csv``,
    ``mnist_val.csv``), or holding a split column (FER2013's ``fer2013.csv``: ``emotion,pixels,Usage``, with
    ``label_column="emotion"``): ``{"train": [...], "test": [...]}``, empty when there are none. A table's split
    column, where it has one, splits its rows instead of its name."""
    label_names = _label_names(label_column)
    found: dict[str, list[Path]] = {}
    unlabelled = []
    for path in _tables(root, source or root):
        split = split_of(path.stem)
        try:
            names = table_header(path)
        except PipelineError:
            if split:
                raise
            continue  # a FIFO named notes.csv: the labels tables say it is left out
        if labelled_pixel_table(names, label_names) and (split or set(names) & set(SPLIT_COLUMN_NAMES)):
            found.setdefault(split or "train", []).append(path)
        elif split or looks_like_pixels(names) and not set(names) & set(label_names):
            unlabelled.append(path)
    if unlabelled and not found and not any(is_dir(path) for path in entries(root)):
        # EMNIST's tables have no header, FER2013's label is "emotion": nothing says which column is the label.
        if all(re.fullmatch(r"[\d.\s-]+", name) for name in table_header(unlabelled[0])):
            raise PipelineError(f"{unlabelled[0]}: a table without a header line (its first line is numbers); add "
                                "one naming the label column (label) and the pixel columns")
        raise PipelineError(f"{unlabelled[0]}: a table of pixels, but its first line names no label column "
                            f"({', '.join(label_names)}); name it with LABEL_COLUMN= (--label-column)")
    # EMNIST ships six sets side by side (emnist-balanced-train.csv, emnist-digits-train.csv, ...): their
    # labels differ, so they are never mixed.
    sets = sorted({SPLIT_WORD.sub("", path.stem.lower()) for paths in found.values() for path in paths})
    if len(sets) > 1:
        tables = sorted((path for paths in found.values() for path in paths), key=lambda path: path.name)
        # FER2013's competition download: fer2013/fer2013.csv beside icml_face_data.csv and train.csv, one data.
        alone = [path.parent for path in tables if sum(other.parent == path.parent for other in tables) == 1
                 and path.parent != (source or root)]
        raise PipelineError(f"{source or root}: pixel tables of {len(sets)} different sets "
                            f"({', '.join(path.name for path in tables)}); "
                            + (f"pass a folder holding one of them, such as {alone[0]}" if alone else
                               "put one set's train and test tables in a folder of their own and pass that"))
    if found and "train" not in found:
        raise PipelineError(f"{root}: a test table ({found['test'][0].name}) but no training table (a CSV named "
                            "like train or val)")
    return found


def labels_tables(root: Path, source: Path | None = None, label_column: str | None = None) -> dict | None:
    """The dataset's CSVs that label its image files (Butterfly Image Classification's ``Training_set.csv`` of
    ``filename,label``; HAM10000's ``HAM10000_metadata.csv``, keyed by ``image_id`` without the extension, its
    label ``dx`` chosen with ``label_column``): ``{"train": {label: [image]}, "test": {...}, "where": csv}``, or
    None when no CSV there names the images. A CSV named like a test split is the test set; one without labels
    (``Testing_set.csv``: file names only) is left out, with a line."""
    source = source or root
    csvs = _tables(root, source)
    if not csvs:
        return None
    images = class_images(root, say_left_out=False)
    index: dict[str, set[Path]] = {}
    for path in images:
        for key in {path.relative_to(root).as_posix(), path.relative_to(source).as_posix(), path.name, path.stem}:
            index.setdefault(key, set()).add(path)
    found: dict = {}
    labelled_by: dict[Path, str] = {}  # image -> the row that labels it
    unclear: list[tuple[PipelineError, Path]] = []  # tables naming images, their labels' column not clear
    one_hot = []  # tables labelling with a column per class
    for table_path in csvs:
        try:
            table = _text_table(table_path)
        except PipelineError as error:  # a file of notes beside class folders must not stop them being read
            logger.warning(f"data: left out {table_path.name}, which cannot be read as a table ({error})")
            continue
        split = split_of(table_path.stem) or "train"
        # A table without a header line (Image_1.jpg,ADONIS first) lost its first row to the header.
        headerless = not {name.lower() for name in table.columns} & HEADER_WORDS and \
            any(len(_image_named(name, index, root, split)) == 1 for name in table.columns)
        if headerless:
            table = _text_table(table_path, header=False)
        first_row = 1 if headerless else 2  # the file's line of the table's first row
        # The id column is chosen on the first rows (CelebA's tables have 202,599 rows of up to 41 columns).
        head = table.head(ID_SAMPLE_ROWS)
        # The images each column names, each once: GTSRB's ClassId of 0 to 42 names Meta/0.png ... Meta/42.png,
        # as many rows as the paths do, but only 43 images. Where both name as many, the labels' name loses.
        named = {column: len({image for value in head[column]
                              if len(match := _image_named(value, index, root, split)) == 1 for image in match})
                 for column in table.columns}
        id_column = max(named, key=lambda column: (named[column], not _named_like_labels(column, label_column)),
                        default=None)
        if id_column is None or named[id_column] < max(1, len(head) / 2):
            continue  # not keyed by this dataset's images
        matches = {id_column: [_image_named(value, index, root, split) for value in table[id_column]]}
        class_columns = [column for column in table.columns if column != id_column]
        # (a column named like labels is the labels, whatever 0/1 column lies beside it: image,target,fold)
        if label_column is None and not headerless and \
                not any(_named_like_labels(column, None) for column in class_columns) and \
                _marks_classes(table[class_columns]):
            # ISIC 2019's ground truth (image,MEL,NV,BCC,...): a column per class, a 1 in the image's.
            try:
                label, values = "the class columns", pd.Series(one_hot_labels(table, class_columns, table_path))
            except PipelineError:
                # Tom and Jerry's ground_truth.csv (filename,tom,jerry: both, or neither) beside folders of each
                # combination: multi-label marks, which the folders, not the table, can train.
                if len({path.parent for match in matches[id_column] for path in match}) < 2:
                    raise
                logger.info(f"data: left out {table_path.name} (rows marking several classes or none: labels of "
                            "several tags, which are not supported); reading the folders")
                continue
            one_hot.append(table_path)
        else:
            try:
                label = _label_column(table, id_column, label_column, table_path)
            except PipelineError as error:
                # Imagenette's noisy_imagenette.csv: path, noisy_labels_0, ..._50, is_valid, where noisy_labels_0
                # is each image's folder: the class folders label the images, as a table repeating them does.
                label = _folder_column(table, class_columns, matches[id_column])
                if label is None:  # decided once every table is read
                    unclear.append((error, table_path))
                    continue
            if label is None:
                logger.info(f"data: left out {table_path.name} (names images, but holds no "
                            f"{'labels' if label_column is None else f'column {label_column!r}'})")
                continue
            values = table[label]
        labelled = found.setdefault(split, {})
        for row, (match, value) in enumerate(zip(matches[id_column], values, strict=True)):
            where = f"{table_path}: row {row + first_row}"
            if len(match) != 1:
                raise PipelineError(f"{where}: {id_column} {table[id_column].iloc[row]!r} names "
                                    + (f"{len(match)} images ({', '.join(sorted(map(str, match))[:2])})" if match
                                       else "no image of the dataset"))
            if not value.strip():
                raise PipelineError(f"{where}: no label in column {label!r}")
            image = match.pop()
            if image in labelled_by:  # CelebA's list_eval_partition.csv beside list_attr_celeba.csv
                raise PipelineError(f"{where}: {image.name} is labelled again ({labelled_by[image]} labels it); "
                                    "name the labels' column with LABEL_COLUMN= (--label-column)")
            labelled_by[image] = f"{table_path.name} row {row + first_row}"
            labelled.setdefault(value.strip(), []).append(image)
        found.setdefault("where", table_path)
    if unclear:
        # Beside a table of class columns, tables of other columns describe the images (ISIC 2019's metadata of
        # age, site and sex); elsewhere the labels could be any of their columns (CelebA's attributes).
        if not one_hot:
            raise unclear[0][0]
        logger.info(f"data: left out {', '.join(path.name for _, path in unclear)} (other columns about the images) "
                    f"beside {one_hot[0].name}'s class columns")
    if not found and label_column is not None:
        raise ParameterError("label_column", label_column, "no CSV of the dataset that names its images has it"
                             + _unreadable_tables_note(root, source))
    if found and "train" not in found:
        raise PipelineError(f"{found['where']}: a labelled test table but no training table")
    if found and len(labelled_by) < len(images):
        logger.info(f"data: left out {len(images) - len(labelled_by):,} image(s) that no labels table names")
    return found or None


def _unreadable_tables_note(root: Path, source: Path) -> str:
    """For a refusal that a labels table might have prevented: "; <table> cannot be read (<why>)" for the first
    CSV of the dataset that cannot be read as a table (their warning is dropped when the stage stops), or ""."""
    for path in _tables(root, source):
        try:
            _text_table(path)
        except PipelineError as error:
            return f"; {path.name} cannot be read as a table ({str(error).removeprefix(f'{path}: ')})"
    return ""


def _folder_column(table: pd.DataFrame, columns: list[str], matches: list[set[Path]]) -> str | None:
    """The first of ``columns`` holding, on every row naming one image, the name of that image's folder."""
    for column in columns:
        if all(len(match) != 1 or next(iter(match)).parent.name == value.strip()
               for match, value in zip(matches, table[column], strict=True)):
            return column
    return None


def _marks_classes(columns: pd.DataFrame) -> bool:
    """Whether a table's columns (besides its ids) are classes marked 0 and 1: two or more, every cell 0 or 1."""
    return columns.shape[1] >= 2 and bool(columns.apply(lambda column: column.str.strip().isin(
        ("0", "1", "0.0", "1.0"))).all().all())


def _folders_agree(labelled: dict) -> bool:
    """Whether every image a labels CSV names lies in a folder named as its label."""
    return all(path.parent.name == label for split in ("train", "test") for label, paths in labelled.get(split, {}).items()
               for path in paths)


def _text_table(path: Path, header: bool = True) -> pd.DataFrame:
    """A CSV's cells as text; without a ``header`` line, its columns are named "column 1", "column 2", ... Rows of
    more fields than the header (Fashion Product Images' styles.csv: a few names hold a comma) are left out
    with a warning, their images unlabelled, where they are at most ``MAX_BAD_ROW_SHARE`` of the table."""
    data = read_csv_bytes(path)
    options = dict(sep=separator_of(data), dtype=str, keep_default_na=False, encoding="utf-8-sig",
                   header=0 if header else None)
    try:
        try:
            table = pd.read_csv(io.BytesIO(data), **options)
        except pd.errors.ParserError as error:
            if "fields" not in str(error):
                raise
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                table = pd.read_csv(io.BytesIO(data), on_bad_lines="warn", **options)
            skipped = [line for warning in caught if issubclass(warning.category, pd.errors.ParserWarning)
                       for line in str(warning.message).splitlines() if line.startswith("Skipping line")]
            if len(skipped) > MAX_BAD_ROW_SHARE * (len(table) + len(skipped)):
                raise error from None
            logger.warning(f"data: {path}: left out {len(skipped):,} row(s) of more fields than its header "
                           f"({skipped[0].removeprefix('Skipping ')}); their images are unlabelled")
        if not header:
            table.columns = [f"column {number}" for number in range(1, len(table.columns) + 1)]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise csv_parse_error(path, data, error) from None
    table.columns = [str(column).strip() for column in table.columns]
    return table


def _image_named(value: str, index: dict[str, set[Path]], root: Path, split: str) -> set[Path]:
    """The images an id names: as a path inside the dataset, a file name, or a name without its extension; a
    path from elsewhere (a Kaggle notebook's ``../input/<dataset>/<folder>/<name>``) by its last part. A name in
    several folders is the one in the table's split (Butterfly's ``Training_set.csv`` names ``Image_1.jpg``,
    which ``train/`` and ``test/`` both hold). An image's name with another image extension names it too (a table
    still saying ``1.png`` of images converted to ``1.jpg``)."""
    value = value.strip().replace("\\", "/").removeprefix("./")
    last = value.rsplit("/", 1)[-1]
    stem, suffix = os.path.splitext(last)
    for key in (value, last, stem if suffix.lower() in IMAGE_SUFFIXES else None):
        if key in index:
            named = index[key]
            in_split = {path for path in named
                        if any(split_of(folder) == split for folder in path.relative_to(root).parts[:-1])}
            return set(in_split if len(named) > 1 and len(in_split) == 1 else named)
    return set()


def _label_column(table: pd.DataFrame, id_column: str, label_column: str | None, path: Path) -> str | None:
    """The column of labels: ``label_column`` (any case; None for a table without it), the one named like labels,
    or the only other column; None for a table of ids alone. Several candidates and no name: one line asking for
    ``--label-column``."""
    others = [column for column in table.columns if column != id_column]
    named = [column for column in others if _named_like_labels(column, label_column)]
    if label_column is not None:  # a table without it is another table (CelebA's partitions, boxes, landmarks)
        return named[0] if named else None
    if len(named) == 1:
        return named[0]
    if len(others) <= 1:
        return others[0] if others else None
    raise PipelineError(f"{path}: which column holds the labels? {', '.join(others)}; name it with LABEL_COLUMN= "
                        "(--label-column)")


def _prepare_pixel_dataset(source: Path, tables: dict[str, list[Path]], folder: Path, test_fraction: float,
                           seed: int, label_column: str | None = None) -> None:
    """A dataset of labelled pixel tables as a pixel competition (Digit Recognizer's layout): train.csv,
    test.csv in a shuffled order without its labels, which go to solution.csv. Tables are small, so they are
    written anew rather than linked."""
    paths = [*tables["train"], *tables.get("test", [])]
    names = [path.name for path in paths]
    label_names = _label_names(label_column)
    images, labels, splits = [], [], []
    for path, (table_images, table_labels, row_splits) in zip(paths, read_labelled_pixels(paths, label_names),
                                                                strict=True):
        images.append(table_images)
        labels.append(table_labels)
        splits.append(_row_splits(row_splits, path) if row_splits is not None else
                      np.full(len(table_labels), "train" if path in tables["train"] else "test"))
    images, labels, splits = np.concatenate(images), np.concatenate(labels), np.concatenate(splits)
    x_train, y_train = images[splits == "train"], labels[splits == "train"]
    if (splits == "test").any():
        x_test, y_test = images[splits == "test"], labels[splits == "test"]
        _check_test_classes(y_test, y_train, paths[-1], "rows")
        held_out = None
    else:
        x_train, y_train, x_test, y_test = _hold_out_rows(x_train, y_train, test_fraction, seed)
        held_out = test_fraction
    _check_two_labels(y_train, tables["train"][0])
    order = np.random.default_rng(seed).permutation(len(x_test))  # the tables' order may say the class
    marker = {"source": str(source), "dataset": True, "tables": names,
              "classes": sorted(set(y_train)), "train_images": len(x_train), "test_images": len(x_test),
              "held_out_fraction": held_out, "seed": seed}
    write_pixel_competition(folder, x_train, y_train, x_test[order], y_test[order], id_column="id",
                            label_column="label", marker=marker)
    logger.info(f"data: {len(x_train):,} training and {len(x_test):,} test images from {', '.join(names)}")


def _prepare_array_dataset(source: Path, arrays: dict, folder: Path, test_fraction: float, seed: int) -> None:
    """A dataset of arrays (Keras' mnist.npz, CIFAR's python batches) as an npy competition with its answer key:
    the test images in a shuffled order (a held-out share of each class where the dataset has no test set)."""
    (x_train, y_train), files = arrays["train"], [path.name for path in arrays["files"]]
    if arrays["test"] is not None:
        x_test, y_test = arrays["test"]
        if x_test.shape[1:] != x_train.shape[1:]:
            raise PipelineError(f"{arrays['files'][-1]}: test images of {'x'.join(map(str, x_test.shape[1:]))}, "
                                f"training images of {'x'.join(map(str, x_train.shape[1:]))}")
        _check_test_classes(y_test, y_train, arrays["files"][-1], "images")
        held_out = None
    else:
        x_train, y_train, x_test, y_test = _hold_out_rows(x_train, y_train, test_fraction, seed)
        held_out = test_fraction
    _check_two_labels(y_train, arrays["files"][0])
    order = np.random.default_rng(seed).permutation(len(x_test))
    marker = {"source": str(source), "dataset": True, "arrays": files, "classes": sorted(set(y_train)),
              "train_images": len(x_train), "test_images": len(x_test), "held_out_fraction": held_out, "seed": seed}
    write_array_competition(folder, x_train, y_train, x_test[order], y_test[order], marker)
    logger.info(f"data: {len(x_train):,} training and {len(x_test):,} test images "
                f"({'x'.join(map(str, x_train.shape[1:]))}) from {', '.join(files)}")


def _hold_out_rows(x_train: np.ndarray, y_train: np.ndarray, fraction: float, seed: int):
    """``(x_train, y_train, x_test, y_test)``: ``_hold_out``'s stratified, seeded test share of the rows."""
    rows_of_label = {label: list(np.flatnonzero(y_train == label)) for label in sorted(set(y_train))}
    train_rows, test_rows = (sorted(row for rows in split.values() for row in rows)
                             for split in _hold_out(rows_of_label, fraction, seed))
    return x_train[train_rows], y_train[train_rows], x_train[test_rows], y_train[test_rows]


def _check_two_labels(labels: np.ndarray, where: Path) -> None:
    if len(set(labels)) < 2:
        raise PipelineError(f"{where}: a dataset needs at least two labels (found {', '.join(sorted(set(labels)))})")


def _check_test_classes(test_classes, train_classes, where: Path, what: str) -> None:
    unknown = sorted(set(map(str, test_classes)) - set(map(str, train_classes)))  # numpy's labels too
    if unknown:
        known = sorted(set(map(str, train_classes)))
        # Stanford Cars has 196 classes: the line names a few, and how many there are.
        shown = ", ".join(known[:8]) + (f", ... ({len(known)} in all)" if len(known) > 8 else "")
        named = f"class {unknown[0]!r} has" if len(unknown) == 1 else \
            f"classes {unknown[0]!r} and {len(unknown) - 1} more have"
        raise PipelineError(f"{where}: {named} no training {what} (the training classes are {shown})")


def _row_splits(values: np.ndarray, path: Path) -> np.ndarray:
    """Each row's split from its split column (FER2013's Training, PublicTest, PrivateTest): "train" or "test"."""
    splits = {value: split_of_words(value) for value in set(values)}
    unknown = sorted(value for value, split in splits.items() if split is None)
    if unknown:
        raise PipelineError(f"{path}: split {unknown[0]!r} in row {int(np.flatnonzero(values == unknown[0])[0]) + 2} "
                            "is not a train, val or test split")
    return np.array([splits[value] for value in values])


def dataset_splits(root: Path) -> dict[str, list[Path]]:
    """``{"train": [class trees], "test": [class trees]}`` (no "test" for a dataset of class folders only)."""
    folders = [path for path in entries(root) if is_dir(path)]
    split_names = {path: split_of(path.name) for path in folders}
    splits: dict[str, list[Path]] = {}
    for path in folders:
        if split_names[path] is None:
            continue
        tree = _split_tree(path) or labels_list(path)
        if tree:
            splits.setdefault(split_names[path], []).append(tree)
        else:  # images without class folders (Fruits-360's test-multiple_fruits): nothing to learn or score
            logger.info(f"data: left out {path.name} (no class folders, no labels in its file names: unlabelled)")
    if not splits:
        if any(SPLIT_WORD.search(path.name.lower()) for path in folders) and not _classes_named_like_a_split(folders):
            raise PipelineError(f"{root}: its split folders hold no class folders (a labelled dataset holds "
                                "<split>/<class>/<image>)")
        # Oxford-IIIT Pet: images/Abyssinian_1.jpg, the labels in the names, beside annotations/trimaps/*.png:
        # two folders of images that are not two classes. Beside folders holding images of their own, the folder
        # is a class whose images happen to be named two ways (dog/ of dog_1.jpg and puppy_2.jpg beside cat/).
        named = [path for path in folders if _labels_in_names(path)]
        if len(named) == 1 and not any(_holds_images_itself(path) for path in folders if path != named[0]):
            others = [path.name for path in folders if path != named[0]]
            if others:
                logger.info(f"data: left out {', '.join(others)} beside {named[0].name}, whose file names hold the "
                            "labels")
            return {"train": [named[0]]}
        names = {path.name.lower() for path in folders}
        # (a class folder holding a folder of its own name, cat/cat/ from a zip, is no copy of another)
        inner = {folder: _dataset_inside(folder, names - {folder.name.lower()}) for folder in folders}
        if any(inner.values()):
            # Blood Cell Images: dataset-master/ and dataset2-master/ (its images/TRAIN/<class>/) are two
            # datasets; Real and Fake Face Detection: real_and_fake_face/ beside a copy of it one folder down.
            # Both were read as two classes.
            found = next(found for found in inner.values() if found)
            what = "a split of one" if split_of(found.name) else f"a copy of {found.name}/"
            raise PipelineError(f"{root}: {', '.join(folder.name for folder in folders)} are not classes but "
                                f"datasets ({found.relative_to(root)} is {what}); pass one of them as the dataset")
        return {"train": [root]}  # class folders only: the test set is held out
    if "train" not in splits:
        raise PipelineError(f"{root}: a test split ({', '.join(path.name for path in splits['test'])}) but no "
                            "training split (a folder named like train or val)")
    others = [path.name for path in folders if split_names[path] is None]
    if others:
        logger.info(f"data: left out {', '.join(others)} (not named like a train, val or test split)")
    return splits


def _classes_named_like_a_split(folders: list[Path]) -> bool:
    """Whether folders named like one split are classes (Real and Fake Face Detection's training_fake/ and
    training_real/): two or more, each holding images and no folder, their names different once the split's word
    is taken out (train/ and val/ of unlabelled images are no classes)."""
    rests = {SPLIT_WORD.sub("", folder.name.lower()).strip("_- ") for folder in folders}
    return len(folders) >= 2 and len({split_of(folder.name) for folder in folders}) == 1 and "" not in rests and \
        len(rests) == len(folders) and \
        all(class_images(folder, say_left_out=False) and not any(is_dir(path) for path in entries(folder))
            for folder in folders)


def _dataset_inside(folder: Path, other_classes: set[str]) -> Path | None:
    """What makes a class folder a dataset of its own, up to three folders down: a split holding folders, or a folder
    named like another class (lower case names)."""
    def makes_a_dataset(path: Path) -> bool:
        return bool(split_of(path.name)) and any(is_dir(inner) for inner in entries(path)) or \
            path.name.lower() in other_classes

    return _found_inside(folder, makes_a_dataset)


def _found_inside(folder: Path, wanted, depth: int = 3) -> Path | None:
    """The first folder ``wanted`` says yes to, up to ``depth`` folders down in ``folder`` (nearest first), or None."""
    inside = [path for path in entries(folder) if is_dir(path)]
    return next((path for path in inside if wanted(path)), None) or \
        next((found for path in inside if depth > 1 and (found := _found_inside(path, wanted, depth - 1))), None)


def _split_tree(path: Path) -> Path | None:
    """A split folder's tree of labelled images (read through a lone folder of its name: seg_train/seg_train/), or
    None for a split of unlabelled images: no class folders, no labels in the file names. A lone folder named like
    a folder of images is not a class (Tiny ImageNet's val/images/ and test/images/ were read as a class "images")."""
    lone = [inner for inner in entries(path) if is_dir(inner)]
    tree = lone[0] if len(lone) == 1 and lone[0].name.lower() == path.name.lower() else path
    inner = [folder for folder in entries(tree) if is_dir(folder)]
    if len(inner) == 1 and inner[0].name.lower() in IMAGE_FOLDER_NAMES:
        tree = inner[0]
    return tree if any(is_dir(folder) for folder in entries(tree)) or _labels_in_names(tree) else None


def _labelled_images(trees: list[Path]) -> dict[str, list[Path]]:
    """Class name -> image files, over one or more class trees (train/ and val/) or labels lists
    (``image_lists.labels_list``)."""
    images: dict[str, list[Path]] = {}
    for tree in trees:
        if not is_dir(tree):  # a labels list
            logger.info(f"data: {tree.parent.name} labelled by {tree.name}")
            for label, paths in listed_labels(tree).items():
                images.setdefault(label, []).extend(paths)
            continue
        classes = [path for path in entries(tree) if is_dir(path)]
        named = _labels_in_names(tree) if not classes else None
        if named:  # Dogs vs. Cats as a dataset: train/cat.0.jpg
            for label, paths in named.items():
                images.setdefault(label, []).extend(paths)
            continue
        if not classes:
            raise PipelineError(f"{tree}: no class folders (a labelled dataset holds <split>/<class>/<image>)")
        indexed = _index_of_classes(classes)
        groups = None if indexed else _groups_of_classes(classes)
        if indexed:
            logger.info(f"data: reading {', '.join(folder.name for folder in classes[:4])}"
                        f"{', ...' if len(classes) > 4 else ''} as an index by initial of {len(indexed)} classes "
                        f"({', '.join(label for label, _ in indexed[:3])}, ...)")
        elif groups:
            logger.info(f"data: reading the class folders in {', '.join(folder.name for folder in classes)} as "
                        f"{len(groups)} classes ({', '.join(folder.name for folder in groups[:4])}, ...)")
            classes = groups
        images_folder = None if indexed else _images_beside_masks(classes)
        if images_folder is None:
            _check_not_versions(tree, classes)
        else:
            others = sorted({path.name for folder in classes for path in entries(folder)} - {images_folder})
            logger.info(f"data: reading each class's {images_folder}/ (left out {', '.join(others)} beside it)")
        for label, class_folder in indexed or [(folder.name, folder) for folder in classes]:
            found = class_images(class_folder / images_folder if images_folder else class_folder)
            if found:
                images.setdefault(label, []).extend(found)
            else:
                logger.info(f"data: left out {class_folder} (a class folder without images)")
    if not images:
        raise PipelineError(f"{trees[0]}: no images in its class folders")
    return images


def _labels_in_names(folder: Path) -> dict[str, list[Path]] | None:
    """Label -> images of a folder whose every image names its label as the filenames layout reads it
    (``cat.0.jpg``, ``great_pyrenees_12.jpg``), with two labels at least; None otherwise."""
    images = image_files(folder)
    labels = [label_of(path) for path in images]
    if not images or None in labels or len(set(labels)) < 2:
        return None
    if len({re.sub(r"\d", "", label) for label in labels}) == 1:
        # Chinese MNIST's input_<suite>_<sample>_<code>.jpg: "labels" apart only in their numbers (input_1_1,
        # input_2_3) are the numbers of the files, not classes; the class is a number too, which no name says.
        return None
    named: dict[str, list[Path]] = {}
    for label, path in zip(labels, images, strict=True):
        named.setdefault(label, []).append(path)
    return named


def _index_of_classes(folders: list[Path]) -> list[tuple[str, Path]] | None:
    """(class name, folder) for class folders filed under their initials, or None: SUN397 (``a/abbey/``,
    ``c/church/indoor/``, ``c/church/outdoor/``) and Places365 (``a/airfield/``) hold a folder per letter whose
    folders all begin with it. Read as classes, the letters would be 26 classes of unrelated scenes. A class folder
    holding only folders of images is a kind per folder (``church indoor``, ``church outdoor``: SUN397's classes
    /c/church/indoor and /c/church/outdoor)."""
    if len(folders) < 2 or any(len(folder.name) != 1 for folder in folders):
        return None
    found = []
    for letter in folders:
        inner = entries(letter)
        classes = [path for path in inner if is_dir(path)]
        if not classes or len(classes) < len(inner) or \
                any(not path.name.lower().startswith(letter.name.lower()) for path in classes):
            return None
        for folder in classes:
            kinds = [path for path in entries(folder) if is_dir(path)]
            if kinds and not _holds_images_itself(folder) and \
                    all(_holds_files(kind, IMAGE_SUFFIXES) for kind in kinds):
                found += [(f"{folder.name} {kind.name}", kind) for kind in kinds]
            else:
                found.append((folder.name, folder))
    return found


def _groups_of_classes(folders: list[Path]) -> list[Path] | None:
    """The class folders inside ``folders`` where each holds two or more folders and no image of its own, and no
    folder name comes twice (LC25000: ``colon_image_sets/`` of ``colon_aca/``, ``colon_n/`` beside
    ``lung_image_sets/`` of ``lung_aca/``, ``lung_n/``, ``lung_scc/``: five classes, not two); None otherwise.
    Names that come again are a class's batches or versions (``cat/batch1/``, ``dog/batch1/``)."""
    if len(folders) < 2:
        return None
    inner = []
    for folder in folders:
        if _holds_images_itself(folder):
            return None
        inside = [path for path in entries(folder) if is_dir(path)]
        if len(inside) < 2:
            return None
        inner += inside
    names = [path.name.lower() for path in inner]
    return inner if len(set(names)) == len(names) and all(_holds_files(path, IMAGE_SUFFIXES) for path in inner) else None


def _images_beside_masks(classes: list[Path]) -> str | None:
    """The name of the images' folder where every class folder holds one beside folders of masks and nothing else
    (COVID-19 Radiography Database: ``COVID/images/`` and ``COVID/masks/``; COVID-QU-Ex: ``images/`` and
    ``lung masks/``), or None. The masks are segmentations of the images, not training images."""
    names = None
    for folder in classes:
        found = {path.name for path in entries(folder) if is_dir(path)}
        if names is not None and found != names or _holds_images_itself(folder):
            return None
        names = found
    images = [name for name in names or () if name.lower() in IMAGE_FOLDER_NAMES]
    masks = [name for name in names or () if MASK_WORD.search(name.lower())]
    return images[0] if len(images) == 1 and masks and len(images) + len(masks) == len(names) else None


def _check_not_versions(tree: Path, classes: list[Path]) -> None:
    """PlantVillage ships ``color/``, ``grayscale/`` and ``segmented/``, each holding the same 38 class folders:
    read as classes they would be three classes of every kind of leaf. Folders that hold no images of their own
    and the same class folders each (at least two) are versions of one dataset: one line asks for one of them."""
    inner = []
    for folder in classes:
        if _holds_images_itself(folder):
            return
        inner.append({path.name for path in entries(folder) if is_dir(path)})
    if len(classes) >= 2 and len(inner[0]) >= 2 and all(names == inner[0] for names in inner):
        raise PipelineError(f"{tree}: {', '.join(folder.name for folder in classes)} each hold the same "
                            f"{len(inner[0])} class folders ({', '.join(sorted(inner[0])[:3])}, ...): versions of one "
                            f"dataset, not classes; pass one of them as the dataset ({classes[0]})")


def _hold_out(images: dict[str, list[Path]], fraction: float, seed: int):
    """A stratified, seeded test set: ``fraction`` of each class (rounded, at least one of a class of two)."""
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for label in sorted(images):
        paths = images[label]
        order = rng.permutation(len(paths))
        count = 0 if len(paths) < 2 else min(len(paths) - 1, max(1, round(fraction * len(paths))))
        test[label] = [paths[index] for index in sorted(order[:count])]
        train[label] = [paths[index] for index in sorted(order[count:])]
    return train, {label: paths for label, paths in test.items() if paths}


def _readable_test_images(test: dict[str, list[Path]], seed: int) -> list[tuple[str, Path, str]]:
    """(id, file, class) of each readable test image in a shuffled order, ids numbered in that order with the
    file's suffix. An unreadable image is left out with a warning: every test image must be read to submit."""
    rows = [(path, label) for label in sorted(test) for path in test[label]]
    def problem(row: tuple[Path, str]) -> str | None:
        try:
            read_image(row[0])
        except PipelineError as error:
            return str(error)
        return None

    problems = parallel_map(problem, rows, "checking the test images")
    for found in filter(None, problems):
        logger.warning(f"data: left out of the test set: {found}")
    readable = [row for row, found in zip(rows, problems, strict=True) if found is None]
    if not readable:
        raise PipelineError(f"{rows[0][0]}: no test image of the dataset can be read")
    order = np.random.default_rng(seed).permutation(len(readable))
    width = len(str(len(readable)))
    return [(f"{number:0{width}d}{readable[index][0].suffix.lower()}", *readable[index])
            for number, index in enumerate(order, start=1)]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.realpath(target), link)
