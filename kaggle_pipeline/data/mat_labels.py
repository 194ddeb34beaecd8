"""MATLAB files that label a dataset's image files, for ``data --dataset``: the files torchvision's ``Flowers102`` and
``StanfordCars`` read, as the datasets ship them.

- Records: a struct array whose records name an image and its class. Stanford Cars' ``cars_annos.mat`` beside
  ``car_ims/``: ``relative_im_path`` (``car_ims/000001.jpg``), ``class``, and ``test`` (1 for a test image); its
  devkit's ``cars_train_annos.mat``: ``fname`` (``00001.jpg``) and ``class``. A file named like a split is that
  split, and names the images of the folder named like it (``cars_test_annos_withlabels.mat``: ``cars_test/``).
  Records without a class (the devkit's ``cars_test_annos.mat``) label nothing.
- A labels array for numbered images: Flowers-102's ``imagelabels.mat`` (``labels``, one per image) beside
  ``jpg/image_00001.jpg`` ...: the image numbered n has the n-th label. Arrays of image numbers named like splits
  choose the split (``setid.mat``'s ``trnid``, ``valid`` and ``tstid``).

- Split lists: text arrays of image paths in files named like splits choose the split of images the class folders
  label (Stanford Dogs' ``lists/train_list.mat``: ``mat_split_lists``).

Class numbers are named by a text array of as many names (``cars_meta.mat``'s ``class_names``), counted from 1 as
MATLAB counts. Files before v7.3 are read with scipy, v7.3 files (HDF5) with h5py, plain arrays only; neither runs
anything.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from kaggle_pipeline.data.array_datasets import LABELS_NAME
from kaggle_pipeline.data.folders import split_of, split_of_words
from kaggle_pipeline.data.image_lists import folder_index, list_entry, split_by, tail_index
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import first_line

logger = logging.getLogger(__name__)

# Larger MATLAB files hold images or features, not labels (SVHN's train_32x32.mat is read as arrays).
MAX_LABELS_FILE_BYTES = 64 << 20
# More MATLAB files than this are data of their own (one per image), not a dataset's labels.
MAX_MAT_FILES = 16
MAX_MAT_DEPTH = 2
# The records a name field is chosen on (Stanford Cars' cars_annos.mat holds 16,185).
NAME_SAMPLE_RECORDS = 1000
NUMBER = re.compile(r"(\d+)\D*$")


def mat_labels(root: Path, label_column: str | None = None) -> dict | None:
    """``{"train": {label: [image]}, "test": {...} (where the files split the images), "where": a labels file}`` for
    the images under ``root`` from the MATLAB files in it and its folders, or None when none labels them.
    ``label_column`` names the records' field or the array holding the labels where the usual names do not."""
    files = _mat_files(root)
    if not files:
        return None
    contents = {path: content for path in files if (content := _read_mat(path))}
    images, index = folder_index(root)
    if not contents or not images:
        return None
    names = _class_names(contents)
    records = [(path, name, value) for path, content in contents.items() for name, value in content.items()
               if value.dtype.names]
    if records:
        found = _labels_from_records(root, records, images, index, names, label_column)
        if found:
            return found
    return _labels_of_numbered_images(root, contents, images, names, label_column)


def mat_split_lists(source: Path, images: dict[str, list[Path]]) -> dict | None:
    """The dataset's own split from MATLAB files named like splits whose text arrays list its images, as
    ``image_lists.split_lists`` reads text files: Stanford Dogs' ``lists/train_list.mat`` and ``test_list.mat``
    (``file_list``: ``n02085620-Chihuahua/n02085620_10074.jpg``), which TensorFlow Datasets' split follows. The same
    answer as ``split_lists``, or None without such files."""
    lists = [path for path in _mat_files(source) if split_of_words(path.stem)]
    if not lists:
        return None
    index = tail_index([path for paths in images.values() for path in paths], source)
    chosen: dict[Path, tuple[str, Path]] = {}  # image -> (split, the file listing it)
    used = []
    for path in lists:
        split = split_of_words(path.stem)
        for variable, names in _read_mat(path).items():
            if not _is_text_list(names):
                continue
            named = {}
            for name in names:
                matches = set(index.get(list_entry(name, index), []))
                if len(matches) > 1:
                    raise PipelineError(f"{path}: {variable}: {name!r} names {len(matches)} images "
                                        f"({', '.join(sorted(map(str, matches))[:2])})")
                if matches:
                    named[matches.pop()] = name
            if len(named) < len(names) / 2:
                continue
            if len(named) < len(names):
                logger.warning(f"data: {path}: {len(names) - len(named):,} of the {len(names):,} names in {variable} "
                               "name no image of the dataset; the split goes on without them")
            for image in named:
                other_split, other_path = chosen.setdefault(image, (split, path))
                if other_split != split:
                    raise PipelineError(f"{path}: {image.name} is listed in both the train and the test split "
                                        f"({other_path.name})")
            used += [path] if path not in used else []
    if not used:
        return None
    test_lists = [path for path in used if split_of_words(path.stem) == "test"]
    return split_by(images, {image: split for image, (split, _) in chosen.items()}, source, used,
                    test_lists[0] if test_lists else used[0])


def _is_text_list(value: np.ndarray) -> bool:
    """A MATLAB cell array of text (or a char matrix read as strings), one entry per image."""
    return value.ndim == 1 and value.dtype.names is None and value.dtype.kind in "UO" and len(value) > 0 and \
        all(isinstance(item, str) for item in value)


def _mat_files(root: Path) -> list[Path]:
    """Regular ``.mat`` files of a labels file's size in ``root`` and the folders up to ``MAX_MAT_DEPTH`` below it
    (Kaggle's copy of Stanford Cars: car_devkit/devkit/), none where there are more than ``MAX_MAT_FILES``."""
    found = []
    for folder, folders, names in os.walk(root):
        # Not the whole tree: every dataset without a labels CSV comes here, Food-101's 101,000 images too.
        depth = len(Path(folder).relative_to(root).parts)
        folders[:] = sorted(name for name in folders if not name.startswith(".")) if depth < MAX_MAT_DEPTH else []
        for name in sorted(names):
            path = Path(folder) / name
            # Regular files only: scipy and h5py open a FIFO named labels.mat and wait for a writer forever.
            if path.suffix.lower() == ".mat" and not name.startswith(".") and os.path.isfile(path) and \
                    path.stat().st_size <= MAX_LABELS_FILE_BYTES:
                found.append(path)
        if len(found) > MAX_MAT_FILES:
            return []
    return found


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    """A MATLAB file's variables, squeezed (a 1 x N array is N long, a record's 1 x 1 class a number); empty, with a
    warning, when it cannot be read."""
    import h5py
    import scipy.io

    try:
        if h5py.is_hdf5(path):  # MATLAB v7.3: plain numeric arrays only
            with h5py.File(path, "r") as handle:
                return {name: np.asarray(item[()]).squeeze() for name, item in handle.items()
                        if isinstance(item, h5py.Dataset) and item.dtype.kind in "uif" and item.ndim <= 2}
        content = scipy.io.loadmat(path, squeeze_me=True)
    except (ValueError, TypeError, OSError, EOFError, NotImplementedError, KeyError, IndexError,
            scipy.io.matlab.MatReadError) as error:
        logger.warning(f"data: left out {path}, a MATLAB file that cannot be read ({first_line(error)})")
        return {}
    return {name: np.atleast_1d(value) for name, value in content.items()
            if not name.startswith("__") and isinstance(value, np.ndarray)}


def _class_names(contents: dict[Path, dict[str, np.ndarray]]) -> list[str] | None:
    """The class names the files hold: their one list of text (a cell array, ``cars_meta.mat``'s ``class_names``), or
    of several the one named like names; None otherwise, and class numbers stay numbers."""
    lists = {name: [str(item) for item in value] for content in contents.values() for name, value in content.items()
             if _is_text_list(value) and len(value) > 1}
    if len(lists) > 1:
        lists = {name: values for name, values in lists.items() if "name" in name.lower()}
    return next(iter(lists.values())) if len(lists) == 1 else None


def _labels_from_records(root: Path, records: list, images: list[Path], index: dict[str, list[Path]],
                         names: list[str] | None, label_column: str | None) -> dict | None:
    """The labels and splits of struct arrays whose records name an image and its class (Stanford Cars)."""
    found: dict = {}
    seen: dict[Path, tuple[str, str, Path]] = {}  # image -> (split, label, file)
    labelled_files = []
    for path, variable, value in records:
        name_field = _name_field(value, index)
        label_field = _label_field(value.dtype.names, label_column, path, variable) if name_field else None
        if label_field is None:
            continue
        split = split_of(path.stem)
        split_index = _split_index(root, images, split) if split else index
        tests = _test_flags(value, path) if split is None and "test" in value.dtype.names else None
        unknown = 0
        for number, record in enumerate(value):
            entry = list_entry(str(record[name_field]), split_index)
            matches = set(split_index.get(entry, []))
            if len(matches) > 1:
                raise PipelineError(f"{path}: record {number + 1} ({variable}): {entry!r} names {len(matches)} images "
                                    f"({', '.join(sorted(map(str, matches))[:2])})")
            if not matches:
                unknown += 1
                continue
            image = matches.pop()
            label = _label_text(record[label_field], names, path, f"record {number + 1} ({variable}.{label_field})")
            record_split = split or ("test" if tests is not None and tests[number] else "train")
            if image in seen:  # named again, by another file or record
                other_split, other_label, other_path = seen[image]
                if other_label != label:
                    raise PipelineError(f"{path}: {image.name} is {label!r} here but {other_label!r} in "
                                        f"{other_path.name}")
                if other_split != record_split:
                    raise PipelineError(f"{path}: {image.name} is a {record_split} image here but a {other_split} "
                                        f"image in {other_path.name}")
                continue
            seen[image] = (record_split, label, path)
            found.setdefault(record_split, {}).setdefault(label, []).append(image)
        if unknown:
            logger.warning(f"data: {path}: {unknown:,} of its {len(value):,} records name no image of the dataset; "
                           "left out")
        labelled_files.append((path, split or ("test" if tests is not None and tests.any() else "train")))
    if not seen:
        return None
    if "train" not in found:
        raise PipelineError(f"{labelled_files[0][0]}: labels test images only; no MATLAB file labels the training "
                            "images")
    if len(seen) < len(images):
        logger.info(f"data: left out {len(images) - len(seen):,} image(s) that no MATLAB file labels")
    found["where"] = next((path for path, split in labelled_files if split == "test"), labelled_files[0][0])
    logger.info(f"data: labels{' and split' if 'test' in found else ''} from "
                f"{', '.join(sorted({path.name for path, _ in labelled_files}))}")
    return found


def _label_field(fields: tuple[str, ...], label_column: str | None, path: Path, variable: str) -> str | None:
    """The records' field holding their class: ``label_column``, or the one named like a class."""
    if label_column is not None:
        if label_column not in fields:
            raise ParameterError("label_column", label_column, f"not a field of {path.name}'s {variable} "
                                 f"({', '.join(fields)})")
        return label_column
    chosen = [field for field in fields if LABELS_NAME.search(field.lower())]
    if len(chosen) > 1:
        raise PipelineError(f"{path}: {variable}'s records have several class fields ({', '.join(chosen)}); name one "
                            "with LABEL_COLUMN= (--label-column)")
    return chosen[0] if chosen else None


def _name_field(value: np.ndarray, index: dict[str, list[Path]]) -> str | None:
    """The records' field of text that names the dataset's images (``fname``, ``relative_im_path``): the one whose
    values name an image for at least half of the first ``NAME_SAMPLE_RECORDS`` records (each record's name is
    looked up again when it is read)."""
    head = value[:NAME_SAMPLE_RECORDS]
    for field in value.dtype.names:
        texts = [str(item) for item in head[field] if isinstance(item, str)]
        if len(texts) == len(head) and sum(list_entry(text, index) in index for text in texts) >= len(head) / 2:
            return field
    return None


def _split_index(root: Path, images: list[Path], split: str) -> dict[str, list[Path]]:
    """The images under folders named like ``split`` (Stanford Cars' ``cars_test/``), indexed like ``folder_index``'s;
    all of them where no folder is named so (the devkit's two files both name 00001.jpg)."""
    inside = [path for path in images if any(split_of(part) == split for part in path.relative_to(root).parts[:-1])]
    return tail_index(inside or images, root)


def _test_flags(value: np.ndarray, path: Path) -> np.ndarray:
    """The records' ``test`` field as booleans; anything but 0 and 1 is one line."""
    try:
        flags = np.array([int(item) for item in value["test"]])
    except (TypeError, ValueError):
        flags = np.array([-1])
    if not np.isin(flags, (0, 1)).all():
        raise PipelineError(f"{path}: its records' test field holds values other than 0 and 1")
    return flags.astype(bool)


def _label_text(value, names: list[str] | None, path: Path, where: str) -> str:
    """A label as text: a class number named by the class names (MATLAB counts from 1), a whole number as an integer
    where there are none, text as it is."""
    if isinstance(value, str):
        if not value.strip():
            raise PipelineError(f"{path}: {where}: an empty label")
        return value.strip()
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "uif" or not np.isfinite(array).all() or \
            float(array.reshape(-1)[0]) != round(float(array.reshape(-1)[0])):
        raise PipelineError(f"{path}: {where}: {_shown(array)} is not a class number")
    number = int(array.reshape(-1)[0])
    if names is None:
        return str(number)
    if not 1 <= number <= len(names):
        raise PipelineError(f"{path}: {where}: class {number}, but the {len(names)} class names are numbered 1 to "
                            f"{len(names)}")
    return names[number - 1]


def _shown(array: np.ndarray) -> str:
    return "an empty value" if array.size == 0 else repr(array.reshape(-1)[0].item()) if array.size == 1 else \
        f"{array.size} values"


def _labels_of_numbered_images(root: Path, contents: dict[Path, dict[str, np.ndarray]], images: list[Path],
                               names: list[str] | None, label_column: str | None) -> dict | None:
    """Flowers-102: one labels array for images numbered 1 to N in one folder, split by arrays of image numbers.
    Labels arrays that fit no folder are left out where the images lie in several folders: class folders label them
    (Stanford Dogs' train_list.mat holds a labels array of its own)."""
    # Labels beside a list of the images' names belong to that list (Stanford Dogs' train_list.mat: the class
    # folders label those images, and mat_split_lists reads the split from the names).
    vectors = [(path, name, value) for path, content in contents.items() for name, value in content.items()
               if value.ndim == 1 and value.dtype.kind in "uif" and len(value) > 1 and _split_name(name) is None
               and not any(_is_text_list(other) and len(other) == len(value) for other in content.values())]
    if label_column is not None:
        chosen = [vector for vector in vectors if vector[1] == label_column]
        if not chosen:
            raise ParameterError("label_column", label_column, "names no labels array of the MATLAB files ("
                                 f"{', '.join(sorted({name for _, name, _ in vectors})) or 'none'})")
    else:
        chosen = [vector for vector in vectors if LABELS_NAME.search(vector[1].lower())]
    if not chosen:
        return None
    folders = _numbered_folders(images)
    fitting = [(vector, folder) for vector in chosen for folder, numbers in folders.items()
               if _numbers_fit(numbers, len(vector[2]))]
    if not fitting:
        if label_column is None and len({image.parent for image in images}) > 1:
            logger.info(f"data: left out {', '.join(f'{path.name}: {name}' for path, name, _ in chosen)} (labels "
                        "arrays, but no folder's images are numbered as they count)")
            return None
        path, _, labels = chosen[0]
        biggest = max({image.parent for image in images}, key=lambda folder: len(folders.get(folder, {})))
        raise PipelineError(f"{path}: {len(labels):,} labels, but no folder holds images numbered 1 to {len(labels):,} "
                            f"({biggest.relative_to(root)}/ holds {sum(image.parent == biggest for image in images):,} "
                            "images)")
    if len({id(vector) for vector, _ in fitting}) > 1:
        raise PipelineError(f"{fitting[0][0][0]}: several labels arrays ("
                            f"{', '.join(dict.fromkeys(f'{path.name}: {name}' for (path, name, _), _ in fitting))}); "
                            "name one with LABEL_COLUMN= (--label-column)")
    if len(fitting) > 1:
        raise PipelineError(f"{fitting[0][0][0]}: its {len(fitting[0][0][2]):,} labels could be those of the images in "
                            f"{', '.join(sorted(str(folder.relative_to(root)) for _, folder in fitting))}")
    (path, variable, labels), folder = fitting[0]
    numbered = folders[folder]
    if len(numbered) < len(labels):
        logger.warning(f"data: {folder}: {len(labels) - len(numbered):,} of the {len(labels):,} images {path.name} "
                       "labels are missing; the dataset goes on without them")
    first = min(numbered)  # 1 as MATLAB counts, or 0
    texts = {number: _label_text(labels[number - first], names, path, f"{variable}[{number - first + 1}]")
             for number in numbered}
    splits, split_arrays = _split_numbers(contents, len(labels), first, path)
    found: dict = {}
    left_out = 0
    for number, image in numbered.items():
        split = splits.get(number, "train" if not splits else None)
        if split is None:
            left_out += 1
            continue
        found.setdefault(split, {}).setdefault(texts[number], []).append(image)
    if left_out:
        logger.info(f"data: left out {left_out:,} image(s) that no split array names")
    if "train" not in found:
        raise PipelineError(f"{path}: no image is in a training split")
    found["where"] = path
    logger.info(f"data: labels of the images in {folder.name}/ from {path.name}'s {variable}" +
                (f", split by {', '.join(split_arrays)}" if splits else ""))
    return found


def _numbered_folders(images: list[Path]) -> dict[Path, dict[int, Path]]:
    """Folder -> number -> image, for the folders whose images each hold a number in their names, each number once
    (``image_00001.jpg``: the last number in the name)."""
    folders: dict[Path, dict[int, Path] | None] = {}
    for image in images:
        numbers = folders.setdefault(image.parent, {})
        match = NUMBER.search(image.stem)
        if numbers is None:
            continue
        if match is None or int(match.group(1)) in numbers:
            folders[image.parent] = None
            continue
        numbers[int(match.group(1))] = image
    return {folder: numbers for folder, numbers in folders.items() if numbers}


def _numbers_fit(numbers: dict[int, Path], count: int) -> bool:
    """Whether images so numbered are those of ``count`` labels: numbered 1 to ``count`` (or 0 to ``count`` - 1), at
    least half of them present (a download may lack a few)."""
    first = 0 if 0 in numbers else 1
    return all(first <= number < first + count for number in numbers) and len(numbers) >= count / 2


def _split_name(name: str) -> str | None:
    """"train" or "test" for an array of image numbers named like a split (Flowers-102's trnid, valid, tstid)."""
    lower = name.lower()
    return split_of(lower) or ("train" if lower.startswith("trn") else "test" if lower.startswith("tst") else None)


def _split_numbers(contents: dict[Path, dict[str, np.ndarray]], count: int, first: int,
                   labels_path: Path) -> tuple[dict[int, str], list[str]]:
    """Image number -> "train" or "test" from arrays of image numbers named like splits, and the arrays' names, where
    one names test images; empty otherwise (the images are then held out at random). Numbers out of range, or in a
    train and a test array, are one line."""
    splits: dict[int, str] = {}
    split_arrays: list[str] = []
    arrays = [(path, name, value) for path, content in contents.items() for name, value in content.items()
              if value.ndim == 1 and value.dtype.kind in "uif" and _split_name(name)]
    if "test" not in {_split_name(name) for _, name, _ in arrays}:
        return splits, split_arrays
    for path, name, value in arrays:
        split = _split_name(name)
        if not (value == np.round(value)).all() or value.min() < first or value.max() >= first + count:
            raise PipelineError(f"{path}: {name} holds numbers that are not those of {labels_path.name}'s "
                                f"{count:,} images ({first} to {first + count - 1})")
        for number in value.astype(int).tolist():
            if splits.get(number, split) != split:
                raise PipelineError(f"{path}: image {number} is in {name} ({split}) and in a {splits[number]} array")
            splits[number] = split
        split_arrays.append(name)
    return splits, split_arrays
