"""Competition folders in, uint8 image arrays out.

A competition folder, as Kaggle ships it, comes in one of three layouts:

``csv``     ``train.csv`` (``label,pixel0..pixelK``) and ``test.csv`` (pixels, with or without an id column)
``images``  ``train/<id>.png`` with a labels CSV (``id,label``) and ``test/<id>.png``
``npy``     ``train_x.npy``, ``train_y.npy``, ``test_x.npy`` (or one ``.npz`` holding them)

and always a sample submission (``sample_submission.csv`` or ``sampleSubmission.csv``) whose first column
holds the ids and whose second holds the label. The sample submission dictates the output: its ids, their
order and its header. ``load_competition`` returns the test images in the sample submission's order, so
every later stage can work with row numbers.

A ``solution.csv`` (id, label) beside them is an answer key used only for local scoring.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.store import atomic_save_npz

LAYOUTS = ("csv", "images", "npy")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
LABELS_CSV_NAMES = ("trainLabels.csv", "train_labels.csv", "labels.csv")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category")
# Bumped whenever parsing changes, so stale caches are not reused.
LOADER_VERSION = 2


@dataclass
class Competition:
    """A parsed competition: images as uint8 ``(N, height, width, channels)``, labels as class indices."""

    name: str
    source: Path
    layout: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    classes: list[str]
    test_ids: list[str]
    id_column: str
    label_column: str
    sample_submission: Path
    solution: Path | None = None
    # Where the parsed arrays are cached, and whether that file still has to be written (save_cache).
    cache_path: Path | None = field(default=None, repr=False)
    cache_stale: bool = field(default=False, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(side) for side in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """A short hash of the parsed data: two stores made from the same data agree on it."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for array in (self.x_train, self.y_train, self.x_test):
                digest.update(str(array.shape).encode())
                digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(json.dumps([self.classes, self.test_ids]).encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": str(self.source),
            "layout": self.layout,
            "classes": self.classes,
            "image_shape": list(self.image_shape),
            "train_images": int(len(self.x_train)),
            "test_images": int(len(self.x_test)),
        }


# Sample submission ----------------------------------------------------------------------
def find_sample_submission(folder: Path) -> Path:
    candidates = sorted(
        path for path in folder.iterdir() if path.is_file() and re.fullmatch(r"sample_?submission.*\.csv", path.name, re.I)
    )
    if not candidates:
        raise PipelineError(f"{folder}: no sample submission (sample_submission.csv or sampleSubmission.csv) found")
    return candidates[0]


def read_submission_table(path: Path) -> pd.DataFrame:
    """A submission-shaped CSV as text, exactly as written (no number parsing, no NaN guessing)."""
    try:
        separator = _separator(path)
        table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot parse CSV ({_first_line(error)})") from None
    except OSError as error:
        raise PipelineError(f"{path}: cannot read ({_first_line(error)})") from None
    _check_row_lengths(table, path)
    _check_header_names(path, separator)
    return table


def _check_header_names(path: Path, separator: str) -> None:
    # pandas renames a repeated column ('Label', 'Label.1'): a header Kaggle would not accept either.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), [])
    repeated = [name for position, name in enumerate(header) if name in header[:position]]
    if repeated:
        raise PipelineError(f"{path}: column {repeated[0]!r} appears more than once in the header")


def _check_row_lengths(table: pd.DataFrame, path: Path) -> None:
    # pandas reads rows one field longer than the header as an index column plus shifted columns.
    if not isinstance(table.index, pd.RangeIndex):
        raise PipelineError(f"{path}: the rows have more fields than the header's {table.shape[1]} columns")


def _separator(path: Path) -> str:
    """``,`` unless the header line holds no comma and exactly one of ``;`` and tab (a spreadsheet's CSV)."""
    with open(path, "rb") as handle:
        header = handle.readline()
    found = [separator for separator in (";", "\t") if separator.encode() in header]
    return found[0] if b"," not in header and len(found) == 1 else ","


def read_sample_submission(path: Path) -> pd.DataFrame:
    sample = read_submission_table(path)
    if sample.shape[1] != 2:
        raise PipelineError(
            f"{path}: expected two columns (id, label), found {sample.shape[1]}: {', '.join(sample.columns)}"
        )
    if len(sample) == 0:
        raise PipelineError(f"{path}: the sample submission has no rows")
    ids = sample.iloc[:, 0]
    empty = np.flatnonzero((ids.str.strip() == "").to_numpy())
    if len(empty):
        raise PipelineError(f"{path}: empty id in column {sample.columns[0]!r}, row {int(empty[0]) + 2}")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise PipelineError(f"{path}: duplicate id {duplicated.iloc[0]!r} in column {sample.columns[0]!r}")
    return sample


# Layout detection ------------------------------------------------------------------------
def detect_layout(folder: Path) -> str:
    names = {path.name for path in folder.iterdir()}
    if names & {"train_x.npy", "train_y.npy", "test_x.npy"} or any(name.endswith(".npz") for name in names):
        return "npy"
    # A folder missing train/ or its labels CSV is still read as images, so the error names what is missing.
    train_folder, test_folder = (folder / "train").is_dir(), (folder / "test").is_dir()
    labels_csv = any(name in names for name in LABELS_CSV_NAMES)
    if (train_folder and (labels_csv or "train.csv" in names or test_folder)) or (test_folder and labels_csv):
        return "images"
    if "train.csv" in names or "test.csv" in names:
        return "csv"
    raise PipelineError(
        f"{folder}: cannot tell the layout: expected train.csv + test.csv, a train/ image folder with "
        "trainLabels.csv, or train_x.npy/train_y.npy/test_x.npy"
    )


def source_files(folder: Path, layout: str) -> list[Path]:
    """The files a layout reads, for the cache key."""
    files = [find_sample_submission(folder)]
    if layout == "csv":
        files += [folder / "train.csv", folder / "test.csv"]
    elif layout == "images":
        files += [_labels_csv(folder)]
        for subfolder in ("train", "test"):
            if (folder / subfolder).is_dir():
                files += sorted((folder / subfolder).iterdir())
    else:
        files += sorted(path for path in folder.iterdir() if path.suffix in (".npy", ".npz"))
    return [path for path in files if path.exists()]


# Loading -----------------------------------------------------------------------------------
def load_competition(
    folder: Path, name: str | None = None, layout: str | None = None, cache_dir: Path | None = None,
    write_cache: bool = True,
) -> Competition:
    """Parse a competition folder (or reuse the parsed arrays cached for these exact files).

    With ``write_cache=False`` a new cache file is left to ``save_cache``, so a caller (the workspace) can
    check the data against its store, and take the store's lock, before anything is written there.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: competition folder not found")
    layout = layout or detect_layout(folder)
    if layout not in LAYOUTS:
        raise PipelineError(f"--layout {layout}: unknown layout; choose one of {', '.join(LAYOUTS)}")
    name = name or folder.resolve().name
    sample_path = find_sample_submission(folder)
    sample = read_sample_submission(sample_path)
    solution = folder / "solution.csv"

    cache_path = Path(cache_dir) / f"arrays-{_cache_key(folder, layout)}.npz" if cache_dir else None
    parsed = _read_cache(cache_path) if cache_path else None
    from_cache = parsed is not None
    if from_cache:
        classes, y_train = encode_labels(parsed["train_labels"], folder)
    else:
        reader = {"csv": _read_csv_layout, "images": _read_image_layout, "npy": _read_npy_layout}[layout]
        parsed = reader(folder, sample, sample_path)
        # Checked before anything is cached: bad labels leave no file behind.
        classes, y_train = encode_labels(parsed["train_labels"], parsed["labels_path"])
    competition = Competition(
        name=name,
        source=folder,
        layout=layout,
        x_train=parsed["x_train"],
        y_train=y_train,
        x_test=parsed["x_test"],
        classes=classes,
        test_ids=sample.iloc[:, 0].tolist(),
        id_column=sample.columns[0],
        label_column=sample.columns[1],
        sample_submission=sample_path,
        solution=solution if solution.exists() else None,
        cache_path=cache_path,
        cache_stale=cache_path is not None and not from_cache,
    )
    if write_cache:
        save_cache(competition)
    return competition


def save_cache(competition: Competition) -> None:
    """Write the parsed arrays to the competition's cache file, if it has one that is not written yet."""
    if competition.cache_stale:
        atomic_save_npz(competition.cache_path, x_train=competition.x_train,
                        train_labels=np.asarray(competition.classes, dtype=str)[competition.y_train],
                        x_test=competition.x_test)
        competition.cache_stale = False


def encode_labels(labels, folder: Path) -> tuple[list[str], np.ndarray]:
    """Class list (numeric order when every label is an integer) and each label's class index."""
    labels = np.asarray(labels, dtype=str)
    if len(labels) == 0:
        raise PipelineError(f"{folder}: no training labels")
    empty = np.flatnonzero(labels == "")
    if len(empty):
        raise PipelineError(f"{folder}: training image {int(empty[0])} has an empty label")
    # Integers in numeric order ("7" and "007" are two classes, in a fixed order), then the other labels.
    classes = sorted(set(labels.tolist()), key=lambda label: (0, int(label), label) if _is_integer(label) else (1, 0, label))
    if len(classes) < 2:
        raise PipelineError(f"{folder}: the training labels hold a single class ({classes[0]!r}); need at least two")
    index = {label: position for position, label in enumerate(classes)}
    encoded = np.array([index[label] for label in labels], dtype=np.int32)
    counts = np.bincount(encoded, minlength=len(classes))
    if counts.min() < 2:
        # The stratified validation split (make_split) needs two of each; said here, before a store is written.
        raise PipelineError(
            f"{folder}: class {classes[int(counts.argmin())]!r} has 1 training image; a stratified validation split needs 2"
        )
    return classes, encoded


def _is_integer(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d{1,18}", text))  # longer digit strings sort as text (int() refuses > 4300 digits)


def _cache_key(folder: Path, layout: str) -> str:
    digest = hashlib.sha256(f"{LOADER_VERSION}:{layout}".encode())
    for path in source_files(folder, layout):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _read_cache(path: Path) -> dict | None:
    """The cached arrays, or None when there are none or they are damaged (they are parsed again, and the
    damaged file is replaced once the store's lock is held)."""
    if not path.exists() and not path.is_symlink():
        return None
    from kaggle_pipeline.progress import say
    from kaggle_pipeline.store import read_arrays

    try:
        arrays = read_arrays(path, {"x_train": ("u", 4), "train_labels": ("U", 1), "x_test": ("u", 4)},
                             "parsing the data again")
    except PipelineError as error:
        say(f"store: {error}")
        return None
    if (arrays["x_train"].dtype != np.uint8 or arrays["x_test"].dtype != np.uint8
            or len(arrays["train_labels"]) != len(arrays["x_train"])
            or arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]):
        say(f"store: {path}: damaged or edited by hand (arrays do not fit together); parsing the data again")
        return None
    return arrays


# Layout 1: CSV pixel tables -----------------------------------------------------------------
def _read_csv_layout(folder: Path, sample: pd.DataFrame, sample_path: Path) -> dict:
    train_path, test_path = folder / "train.csv", folder / "test.csv"
    id_names, label_names = (sample.columns[0], "id"), (sample.columns[1],) + LABEL_COLUMN_NAMES
    train = _read_pixel_table(train_path, text_columns=id_names + label_names)
    label_column = _find_column(train, label_names)
    if label_column is None:
        raise PipelineError(f"{train_path}: no label column (expected one named 'label' or {sample.columns[1]!r})")
    id_column = _find_column(train, id_names)
    pixel_columns = [column for column in train.columns if column not in (label_column, id_column)]
    missing_labels = np.flatnonzero(train[label_column].isna().to_numpy())
    if len(missing_labels):
        raise PipelineError(f"{train_path}: missing label in row {int(missing_labels[0]) + 2}")
    x_train = _pixels_to_images(train, pixel_columns, train_path)
    labels = train[label_column].astype(str).str.strip().to_numpy()

    test = _read_pixel_table(test_path, text_columns=id_names)
    test_id_column = _find_column(test, id_names)
    test_pixel_columns = [column for column in test.columns if column != test_id_column]
    if len(test_pixel_columns) != len(pixel_columns):
        raise PipelineError(
            f"{test_path}: {len(test_pixel_columns)} pixel columns, but train.csv has {len(pixel_columns)}"
        )
    x_test = _pixels_to_images(test, test_pixel_columns, test_path)
    test_ids = test[test_id_column].astype(str).tolist() if test_id_column else None
    return {"x_train": x_train, "train_labels": labels, "labels_path": train_path,
            "x_test": _order_like_sample(x_test, test_ids, sample, test_path, sample_path)}


def _read_pixel_table(path: Path, text_columns=()) -> pd.DataFrame:
    """Pixels as numbers; the columns named in ``text_columns`` (any case) as written ("007" stays "007").

    Only an empty cell is missing: a label spelled "NA" or "None" is a label, and a pixel "nan" is non-numeric.
    """
    try:
        separator = _separator(path)
        header = pd.read_csv(path, sep=separator, nrows=0, encoding="utf-8-sig").columns
        wanted = {name.lower() for name in text_columns}
        text = {column: str for column in header if str(column).strip().lower() in wanted}
        table = pd.read_csv(path, sep=separator, dtype=text, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot parse CSV ({_first_line(error)})") from None
    except OSError as error:
        raise PipelineError(f"{path}: cannot read ({_first_line(error)})") from None
    _check_row_lengths(table, path)
    if len(table) == 0:
        raise PipelineError(f"{path}: no rows")
    table.columns = [str(column).strip() for column in table.columns]
    return table


def _find_column(table: pd.DataFrame, wanted) -> str | None:
    lowered = {column.lower(): column for column in table.columns}
    for name in wanted:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _pixels_to_images(table: pd.DataFrame, pixel_columns: list[str], path: Path) -> np.ndarray:
    pixels = table[pixel_columns]
    missing = np.argwhere(pixels.isna().to_numpy())
    if len(missing):
        row, column = (int(index) for index in missing[0])
        raise PipelineError(f"{path}: missing pixel value in column {pixel_columns[column]!r}, row {row + 2}")
    non_numeric = [column for column in pixel_columns if not pd.api.types.is_numeric_dtype(pixels[column])]
    for column in non_numeric:
        converted = pd.to_numeric(pixels[column], errors="coerce")
        rows = np.flatnonzero(converted.isna().to_numpy())
        if len(rows):
            row = int(rows[0])
            raise PipelineError(f"{path}: non-numeric pixel value {pixels[column].iloc[row]!r} in column {column!r}, row {row + 2}")
    # A number too large for int64 leaves its column as Python ints; as floats it fails the range check.
    values = pixels.apply(pd.to_numeric).to_numpy(dtype=np.float64) if non_numeric else pixels.to_numpy()
    return _to_uint8_images(values, path, what="pixel")


def _to_uint8_images(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Validate pixel values and reshape ``(N, pixels)`` or ``(N, H, W[, C])`` into uint8 NHWC."""
    if values.dtype.kind not in "uif":
        raise PipelineError(f"{path}: {what} values must be numbers, found dtype {values.dtype}")
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            row = int(np.argwhere(np.isnan(values))[0][0])
            raise PipelineError(f"{path}: missing (NaN) {what} value in image {row}")
        # Arrays scaled to [0, 1] are common in .npy datasets; bring them to 0..255.
        if values.size and values.max() <= 1.0 and values.min() >= 0.0:
            values = values * 255.0
        values = np.rint(values)
    if values.size and (values.min() < 0 or values.max() > 255):
        bad = values.min() if values.min() < 0 else values.max()
        raise PipelineError(f"{path}: {what} value {bad:g} is outside 0..255")
    values = values.astype(np.uint8)
    if values.ndim == 2:
        values = values.reshape((len(values),) + _image_shape_from_pixel_count(values.shape[1], path))
    elif values.ndim == 3:
        values = values[..., np.newaxis]
    elif values.ndim != 4 or values.shape[-1] not in (1, 3):
        raise PipelineError(f"{path}: expected images shaped (N, H, W) or (N, H, W, 1|3), found {values.shape}")
    if 0 in values.shape[1:]:
        raise PipelineError(f"{path}: images have no pixels (shape {values.shape})")
    return values


def _image_shape_from_pixel_count(count: int, path: Path) -> tuple[int, int, int]:
    side = math.isqrt(count)
    if side * side == count:
        return side, side, 1
    side = math.isqrt(count // 3)
    if count % 3 == 0 and side * side * 3 == count:
        # Channel-last interleaved (r, g, b per pixel), as numpy's reshape of an NHWC array writes it.
        return side, side, 3
    raise PipelineError(f"{path}: {count} pixel columns is not a square grey (side²) or RGB (3·side²) image")


def _order_like_sample(
    x_test: np.ndarray, test_ids: list[str] | None, sample: pd.DataFrame, test_path: Path, sample_path: Path
) -> np.ndarray:
    """Test images reordered to the sample submission's rows."""
    sample_ids = sample.iloc[:, 0].tolist()
    if test_ids is None:
        if len(x_test) != len(sample_ids):
            raise PipelineError(
                f"{test_path}: {len(x_test)} test images but {sample_path.name} has {len(sample_ids)} rows, "
                "and the test set has no id column to match them"
            )
        return x_test
    if len(test_ids) != len(x_test):
        raise PipelineError(f"{test_path}: {len(test_ids)} test ids for {len(x_test)} test images")
    position = {}
    for row, test_id in enumerate(test_ids):
        if test_id in position:
            raise PipelineError(f"{test_path}: duplicate test id {test_id!r}")
        position[test_id] = row
    missing = [test_id for test_id in sample_ids if test_id not in position]
    if missing:
        raise PipelineError(f"{sample_path}: id {missing[0]!r} has no test image in {test_path.name} ({len(missing)} missing)")
    extra = len(position) - len(sample_ids)
    if extra:
        unknown = next(test_id for test_id in test_ids if test_id not in set(sample_ids))
        raise PipelineError(f"{test_path}: test id {unknown!r} is not in {sample_path.name} ({extra} such ids)")
    return x_test[[position[test_id] for test_id in sample_ids]]


# Layout 2: image folders with a labels CSV ----------------------------------------------------------
def _labels_csv(folder: Path) -> Path:
    for name in LABELS_CSV_NAMES + ("train.csv",):
        if (folder / name).exists():
            return folder / name
    raise PipelineError(f"{folder}: no labels CSV (expected one of {', '.join(LABELS_CSV_NAMES)})")


def _read_image_layout(folder: Path, sample: pd.DataFrame, sample_path: Path) -> dict:
    labels_path = _labels_csv(folder)
    labels_table = read_submission_table(labels_path)
    if labels_table.shape[1] < 2 or len(labels_table) == 0:
        raise PipelineError(f"{labels_path}: expected an id column and a label column with at least one row")
    id_column = _find_column(labels_table, ("id", sample.columns[0])) or labels_table.columns[0]
    label_column = _find_column(labels_table, (sample.columns[1],) + LABEL_COLUMN_NAMES) or labels_table.columns[1]
    train_files = _image_files(folder / "train")
    train_ids = labels_table[id_column].str.strip().tolist()
    duplicated = labels_table[id_column][labels_table[id_column].str.strip().duplicated()]
    if len(duplicated):
        raise PipelineError(f"{labels_path}: duplicate id {duplicated.iloc[0].strip()!r} in column {id_column!r}")
    missing = [image_id for image_id in train_ids if image_id not in train_files]
    if missing:
        raise PipelineError(f"{labels_path}: id {missing[0]!r} has no image in {folder / 'train'} ({len(missing)} missing)")
    test_files = _image_files(folder / "test")
    if not test_files:
        raise PipelineError(f"{folder / 'test'}: no test images")
    test_ids = sorted(test_files)
    train_images = [_read_image(train_files[image_id]) for image_id in train_ids]
    test_images = [_read_image(test_files[image_id]) for image_id in test_ids]
    paths = [train_files[image_id] for image_id in train_ids] + [test_files[image_id] for image_id in test_ids]
    images = _stack_images(train_images + test_images, paths)
    return {
        "x_train": images[: len(train_ids)],
        "train_labels": labels_table[label_column].str.strip().to_numpy(),
        "labels_path": labels_path,
        "x_test": _order_like_sample(images[len(train_ids) :], test_ids, sample, folder / "test", sample_path),
    }


def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise PipelineError(f"{folder}: image folder not found")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in files:
                raise PipelineError(f"{path}: a second image for id {path.stem!r} (also {files[path.stem].name})")
            files[path.stem] = path
    return files


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("L", "1", "I;16", "I", "F", "LA"):
                return np.asarray(image.convert("L"))
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise PipelineError(f"{path}: cannot read image ({_first_line(error)})") from None


def _stack_images(images: list[np.ndarray], paths: list[Path]) -> np.ndarray:
    height, width = images[0].shape[:2]
    for image, path in zip(images, paths):
        if image.shape[:2] != (height, width):
            raise PipelineError(
                f"{path}: image is {image.shape[1]}x{image.shape[0]}, but {paths[0].name} is {width}x{height}; "
                "all images must have one size"
            )
    # Mixed grey and colour images: treat the set as colour.
    channels = 3 if any(image.ndim == 3 for image in images) else 1
    stacked = np.empty((len(images), height, width, channels), dtype=np.uint8)
    for row, image in enumerate(images):
        stacked[row] = image[..., np.newaxis] if image.ndim == 2 else image
    return stacked


# Layout 3: numpy arrays ----------------------------------------------------------------------
def _read_npy_layout(folder: Path, sample: pd.DataFrame, sample_path: Path) -> dict:
    arrays = _load_arrays(folder)
    for key in ("train_x", "train_y", "test_x"):
        if key not in arrays:
            raise PipelineError(f"{folder}: no {key}.npy (or {key} inside an .npz)")
    (x_train, x_train_path), (labels, labels_path), (x_test, x_test_path) = (arrays[k] for k in ("train_x", "train_y", "test_x"))
    x_train = _to_uint8_images(x_train, x_train_path, what="pixel")
    if len(x_train) == 0:
        raise PipelineError(f"{x_train_path}: no training images")
    x_test = _to_uint8_images(x_test, x_test_path, what="pixel")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise PipelineError(f"{x_test_path}: test images are {x_test.shape[1:]}, training images {x_train.shape[1:]}")
    if labels.ndim != 1 or len(labels) != len(x_train):
        raise PipelineError(f"{labels_path}: expected {len(x_train)} labels in one dimension, found shape {labels.shape}")
    if labels.dtype.kind not in "iuU" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise PipelineError(f"{labels_path}: labels must be integers or strings, found dtype {labels.dtype}")
    labels = labels.astype(np.int64) if labels.dtype.kind == "f" else labels
    test_ids = None
    if "test_ids" in arrays:
        test_ids = [str(value) for value in arrays["test_ids"][0].tolist()]
    return {
        "x_train": x_train,
        "train_labels": labels.astype(str),
        "labels_path": labels_path,
        "x_test": _order_like_sample(x_test, test_ids, sample, x_test_path, sample_path),
    }


def _load_arrays(folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    arrays = {}
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".npy":
                arrays[path.stem] = (np.load(path, allow_pickle=False), path)
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as archive:
                    for key in archive.files:
                        arrays[key] = (archive[key], path)
                        if not isinstance(arrays[key][0], np.ndarray):
                            raise PipelineError(f"{path}: {key!r} in the archive is not a .npy array")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise PipelineError(f"{path}: cannot load array ({_first_line(error)})") from None
    return arrays


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# Validation split ---------------------------------------------------------------------------
def make_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded indices ``(train, validation)``: the same for every trial and run."""
    from sklearn.model_selection import StratifiedShuffleSplit

    from kaggle_pipeline.files import first_line

    if not (isinstance(fraction, float | int) and 0.0 < fraction < 1.0):
        raise PipelineError(f"--val-fraction {fraction}: must be between 0 and 1")
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise PipelineError(f"--split-seed {seed}: must be an integer from 0 to {2**32 - 1}")
    counts = np.bincount(y)
    if counts.min() < 2:
        raise PipelineError(
            f"class index {int(counts.argmin())} has {int(counts.min())} training image; a stratified validation split needs 2"
        )
    validation_size = max(int(round(fraction * len(y))), len(counts))
    # Both sides of a stratified split need at least one image of every class.
    if len(y) - validation_size < len(counts):
        raise PipelineError(
            f"--val-fraction {fraction}: leaves {len(y) - validation_size} of {len(y)} training images for training, "
            f"fewer than the {len(counts)} classes; use a smaller fraction"
        )
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=validation_size, random_state=seed)
    try:
        train_index, validation_index = next(splitter.split(np.zeros(len(y)), y))
    except ValueError as error:
        raise PipelineError(f"--val-fraction {fraction}: cannot split the training images ({first_line(error)})") from None
    return np.sort(train_index), np.sort(validation_index)


# The embedded default competition: Fashion-MNIST ----------------------------------------------------
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzip-compressed."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic >> 8 != 0x08:
        raise PipelineError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    dimensions = magic & 0xFF
    shape = struct.unpack(">" + "I" * dimensions, data[4 : 4 + 4 * dimensions])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def fashion_mnist_arrays(source: Path = DEBIAN_FASHION_MNIST) -> dict[str, np.ndarray]:
    if all((source / name).exists() for name in FASHION_MNIST_FILES.values()):
        return {key: read_idx(source / name) for key, name in FASHION_MNIST_FILES.items()}
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # no Debian package and no network
        raise PipelineError(
            f"{source}: Fashion-MNIST not found ({_first_line(error)}); install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or run 'make setup' as root)"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_pixel_competition(
    folder: Path, x_train: np.ndarray, y_train, x_test: np.ndarray, y_test=None,
    id_column: str = "ImageId", label_column: str = "Label", first_id: int = 1,
) -> None:
    """Write a Digit-Recognizer-style folder: train.csv, test.csv (no id column), sample_submission.csv.

    With ``y_test`` also write ``solution.csv``, the local answer key. The folder appears whole or not at all.
    """
    import shutil
    import tempfile

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the data is not
    try:
        pixel_header = ",".join(f"pixel{i}" for i in range(int(np.prod(x_train.shape[1:]))))
        _write_rows(staging / "train.csv", "label," + pixel_header, x_train, labels=y_train)
        _write_rows(staging / "test.csv", pixel_header, x_test)
        ids = np.arange(first_id, first_id + len(x_test))
        placeholder = str(y_train[0])
        (staging / "sample_submission.csv").write_text(
            f"{id_column},{label_column}\n" + "".join(f"{i},{placeholder}\n" for i in ids)
        )
        if y_test is not None:
            (staging / "solution.csv").write_text(
                f"{id_column},{label_column}\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, y_test))
            )
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_rows(path: Path, header: str, images: np.ndarray, labels=None) -> None:
    as_text = np.array([str(value) for value in range(256)])
    flat = images.reshape(len(images), -1)
    with open(path, "w") as handle:
        handle.write(header + "\n")
        for row, pixels in enumerate(flat):
            prefix = f"{labels[row]}," if labels is not None else ""
            handle.write(prefix + ",".join(as_text[pixels]) + "\n")


def prepare_fashion_mnist(folder: Path, source: Path = DEBIAN_FASHION_MNIST) -> bool:
    """Make the default competition folder; returns False when it is already there."""
    folder = Path(folder)
    marker = folder / "PREPARED.json"
    if marker.exists():
        return False
    arrays = fashion_mnist_arrays(Path(source))
    write_pixel_competition(folder, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
    marker.write_text(
        json.dumps({"source": str(source), "train_images": len(arrays["x_train"]), "test_images": len(arrays["x_test"])}) + "\n"
    )
    return True
