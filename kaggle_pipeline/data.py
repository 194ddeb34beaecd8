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

The folder is treated as hostile (see docs/RELIABILITY.md, "Hostile data folders"):

- only regular files are read (kaggle_pipeline.files): a FIFO, a device, a socket or a folder where a file
  is expected is refused in one line; symbolic links to regular files are followed;
- names starting with ``.`` (``.DS_Store``, macOS ``._201.png`` resource forks, ``.ipynb_checkpoints``) are
  ignored everywhere in the folder and in its image folders;
- images are opened only with the format(s) their suffix names (``SUFFIX_FORMATS``: PNG, JPEG, TIFF, BMP, WebP,
  GIF), their declared size checked against ``MAX_IMAGE_PIXELS`` before a pixel is decoded; 16-bit and float
  images are brought to 8 bits by a fixed range (``_eight_bit``), never clipped;
- train and test pixels are brought to 0..255 by one rule decided for the competition (``PIXEL_RULE``).
"""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import (
    MAX_ARRAY_BYTES,
    first_line,
    load_array,
    load_arrays,
    open_regular,
    read_bytes,
    regular_file,
)
from kaggle_pipeline.store import atomic_save_npz

logger = logging.getLogger(__name__)

LAYOUTS = ("csv", "images", "npy")
# The decoders each image suffix may be opened with. A .png/.jpg/.jpeg is read as PNG or JPEG (a JPEG saved as
# .png is common on Kaggle); every other suffix only as its own format. Anything else (EPS, a GIF named .png, a
# BMP named .jpg, ...) is refused in one line, so Pillow never hands a file to Ghostscript or to a decoder its
# name does not announce. A GIF is read as its first frame.
SUFFIX_FORMATS = {
    ".png": ("PNG", "JPEG"),
    ".jpg": ("PNG", "JPEG"),
    ".jpeg": ("PNG", "JPEG"),
    ".tif": ("TIFF",),
    ".tiff": ("TIFF",),
    ".bmp": ("BMP",),
    ".webp": ("WEBP",),
    ".gif": ("GIF",),
}
IMAGE_SUFFIXES = set(SUFFIX_FORMATS)
IMAGE_FORMATS = tuple(dict.fromkeys(name for names in SUFFIX_FORMATS.values() for name in names))
# The most pixels (width x height) one image may declare, checked before it is decoded: about 5800x5800.
# Below Pillow's own DecompressionBombWarning limit (89 million), so that warning never applies.
MAX_IMAGE_PIXELS = 1 << 25
LABELS_CSV_NAMES = ("trainLabels.csv", "train_labels.csv", "labels.csv")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category")
# The one scaling rule for a competition's pixels, decided from train and test together (_pixel_scale):
# float pixels whose maximum over train AND test is at most 1 + UNIT_TOLERANCE are 0..1 (scaled x255, clipped);
# float pixels whose maximum is at least FLOAT_0_255_MIN_MAX are 0..255 (rounded); a maximum in between is
# refused (as 0..1 it is out of range, as 0..255 the whole set would be almost black). Integer pixels are
# 0..255. Whatever the rule, train and test must agree: one lying in 0..1 (with some pixel above 0) while the
# other reaches above 1 is refused rather than guessed.
UNIT_TOLERANCE = 1e-3
FLOAT_0_255_MIN_MAX = 16.0
PIXEL_RULE = ("float pixels with max <= 1.001 over train and test: 0..1, scaled x255; float max >= 16: 0..255; "
              "float max in between: refused; integers: 0..255; train in 0..1 with test above 1 (or the reverse): refused")
# Bumped whenever parsing changes, so stale caches are not reused.
LOADER_VERSION = 3
PREPARED_MARKER = "PREPARED.json"


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


# Folder listings -------------------------------------------------------------------------------
def _hidden(name: str) -> bool:
    """``.DS_Store``, ``._201.png`` (macOS resource forks), ``.ipynb_checkpoints``: never data."""
    return name.startswith(".")


def _entries(folder: Path) -> list[Path]:
    """The folder's visible entries, sorted (hidden ones are ignored)."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise PipelineError(f"{folder}: cannot list ({error.strerror or first_line(error)})") from None
    return [folder / name for name in sorted(names) if not _hidden(name)]


def _is_dir(path: Path) -> bool:
    """A folder (through links); a loop, a dangling link or anything else is not."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _check_folder(folder: Path, what: str) -> None:
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise PipelineError(f"{folder}: {what} not found") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PipelineError(f"{folder}: symbolic link loop; expected the {what}") from None
        raise PipelineError(f"{folder}: cannot open the {what} ({error.strerror or first_line(error)})") from None
    if not stat.S_ISDIR(mode):
        raise PipelineError(f"{folder}: not a folder; expected the {what}")


# Sample submission ----------------------------------------------------------------------
def find_sample_submission(folder: Path) -> Path:
    # Matched by name whatever it is: a FIFO or a folder with this name is refused when read, not skipped.
    candidates = [path for path in _entries(folder) if re.fullmatch(r"sample_?submission.*\.csv", path.name, re.I)]
    if not candidates:
        raise PipelineError(f"{folder}: no sample submission (sample_submission.csv or sampleSubmission.csv) found")
    return candidates[0]


def _read_csv_bytes(path: Path) -> bytes:
    """A CSV's bytes, from a regular file only (files.read_bytes: no FIFO, device, socket or folder)."""
    return read_bytes(path, limit=MAX_ARRAY_BYTES)


def raw_header(data: bytes, separator: str) -> list[str]:
    """The header line's column names exactly as written (csv module, after the BOM): no pandas renaming."""
    text = data[: 1 << 20].decode("utf-8-sig", errors="replace")
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])


def read_submission_table(path: Path) -> pd.DataFrame:
    """A submission-shaped CSV as text, exactly as written (no number parsing, no NaN guessing).

    ``table.attrs["header"]`` holds the header's names as written, which pandas may have renamed (an empty
    name becomes ``Unnamed: 1``, a repeated one ``Label.1``): the submission check compares those.
    """
    data = _read_csv_bytes(path)
    separator = _separator(data)
    try:
        table = pd.read_csv(io.BytesIO(data), sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot parse CSV ({first_line(error)})") from None
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({first_line(error)})") from None
    _check_row_lengths(table, path)
    header = raw_header(data, separator)
    _check_header_names(path, header)
    table.attrs["header"] = header  # as written; submit.raw_columns compares it
    table.attrs["columns"] = [str(column) for column in table.columns]  # as pandas named them when read
    return table


def _check_header_names(path: Path, header: list[str]) -> None:
    # pandas renames a repeated column ('Label', 'Label.1'): a header Kaggle would not accept either.
    repeated = [name for position, name in enumerate(header) if name in header[:position]]
    if repeated:
        raise PipelineError(f"{path}: column {repeated[0]!r} appears more than once in the header")


def _check_row_lengths(table: pd.DataFrame, path: Path) -> None:
    # pandas reads rows one field longer than the header as an index column plus shifted columns.
    if not isinstance(table.index, pd.RangeIndex):
        raise PipelineError(f"{path}: the rows have more fields than the header's {table.shape[1]} columns")


def _separator(data: bytes) -> str:
    """``,`` unless the header line holds no comma and exactly one of ``;`` and tab (a spreadsheet's CSV)."""
    header = data.split(b"\n", 1)[0]
    found = [separator for separator in (";", "\t") if separator.encode() in header]
    return found[0] if b"," not in header and len(found) == 1 else ","


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def read_sample_submission(path: Path) -> pd.DataFrame:
    sample = read_submission_table(path)
    header = sample.attrs["header"]
    # What pandas would hide: a blank first line (it skips it and takes the next line as the header), an empty
    # or blank column name (it invents 'Unnamed: 1'), a first line of data (it takes the numbers as names).
    if not header or all(not name.strip() for name in header):
        raise PipelineError(f"{path}: the first line is blank; it must be the header (id and label column names)")
    blank = [position for position, name in enumerate(header) if not name.strip()]
    if blank:
        raise PipelineError(f"{path}: column {blank[0] + 1} of the header has no name ({header!r}); "
                            "Kaggle needs the exact header, give it its name")
    if all(_NUMBER.fullmatch(name) for name in header):
        raise PipelineError(f"{path}: the first line {header!r} looks like a row of data, not a header "
                            "(id and label column names)")
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
def _has_images(folder: Path) -> bool:
    return _is_dir(folder) and any(path.suffix.lower() in IMAGE_SUFFIXES for path in _entries(folder))


def detect_layout(folder: Path) -> str:
    """The layout whose files are complete; when none is, the one most of whose files are there.

    Complete means: ``npy`` - train_x, train_y and test_x as .npy files (or any .npz, whose members are
    checked when read); ``images`` - a train/ and a test/ folder each holding at least one image, and a
    labels CSV; ``csv`` - train.csv and test.csv. When several are complete: npy, then images, then csv.
    So a CSV competition beside an empty (or image-less) train/ folder is read as CSV.
    """
    names = {path.name for path in _entries(folder)}
    npy_names = {"train_x.npy", "train_y.npy", "test_x.npy"}
    npz = any(name.endswith(".npz") for name in names)
    train_images, test_images = _has_images(folder / "train"), _has_images(folder / "test")
    labels_csv = any(name in names for name in LABELS_CSV_NAMES + ("train.csv",))
    complete = {
        "npy": npy_names <= names or npz,
        "images": train_images and test_images and labels_csv,
        "csv": {"train.csv", "test.csv"} <= names,
    }
    for layout in ("npy", "images", "csv"):
        if complete[layout]:
            return layout
    # Incomplete: pick the layout the files point to, so the error names what is missing.
    if names & npy_names:
        return "npy"
    if train_images or test_images:
        return "images"
    if "train.csv" in names or "test.csv" in names:
        return "csv"
    if _is_dir(folder / "train") or _is_dir(folder / "test"):
        return "images"
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
            if _is_dir(folder / subfolder):
                files += _entries(folder / subfolder)
    else:
        files += [path for path in _entries(folder) if path.suffix in (".npy", ".npz")]
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
    _check_folder(folder, "competition folder")
    layout = layout or detect_layout(folder)
    if layout not in LAYOUTS:
        raise ParameterError("layout", layout, f"unknown layout; choose one of {', '.join(LAYOUTS)}")
    name = name or Path(os.path.realpath(folder)).name  # realpath: no RuntimeError on a link loop
    sample_path = find_sample_submission(folder)
    sample = read_sample_submission(sample_path)
    solution = folder / "solution.csv"
    if os.path.lexists(solution):
        regular_file(solution)  # read at submit time; a FIFO there would block the submission

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
    header = sample.attrs["header"]  # the names as written (read_sample_submission refused any pandas renamed)
    competition = Competition(
        name=name,
        source=folder,
        layout=layout,
        x_train=parsed["x_train"],
        y_train=y_train,
        x_test=parsed["x_test"],
        classes=classes,
        test_ids=sample.iloc[:, 0].tolist(),
        id_column=header[0],
        label_column=header[1],
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
    empty = np.flatnonzero(np.char.strip(labels) == "")
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
    from kaggle_pipeline.store import read_arrays

    try:
        arrays = read_arrays(path, {"x_train": ("u", 4), "train_labels": ("U", 1), "x_test": ("u", 4)},
                             "parsing the data again")
    except PipelineError as error:
        logger.warning(f"store: {error}")
        return None
    if (arrays["x_train"].dtype != np.uint8 or arrays["x_test"].dtype != np.uint8
            or len(arrays["train_labels"]) != len(arrays["x_train"])
            or arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]):
        logger.warning(f"store: {path}: damaged or edited by hand (arrays do not fit together); parsing the data again")
        return None
    return arrays


# Pixels: one scaling rule for train and test -------------------------------------------------
def _numeric_pixels(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Pixel values as numbers, every one finite and none negative; not yet scaled or rounded."""
    if values.dtype.kind not in "uif":
        raise PipelineError(f"{path}: {what} values must be numbers, found dtype {values.dtype}")
    if values.dtype.kind == "f" and values.size:
        finite = np.isfinite(values)
        if not finite.all():
            where = np.argwhere(~finite)[0]
            bad = values[tuple(where)]
            if np.isnan(bad):
                raise PipelineError(f"{path}: missing (NaN) {what} value in image {int(where[0])}")
            raise PipelineError(f"{path}: {what} value {bad:g} in image {int(where[0])} is not a finite number")
    if values.size and values.min() < 0:
        low = values.min()
        if not (values.dtype.kind == "f" and low >= -UNIT_TOLERANCE):
            raise PipelineError(f"{path}: {what} value {low:g} is outside 0..255")
    return values


def _pixel_scale(arrays: list[tuple[np.ndarray, Path, str]]) -> float:
    """The factor that brings every array of the competition to 0..255: 255 (they are 0..1) or 1.

    Decided once from train and test together (the rule is PIXEL_RULE), never per array: a train set that
    reaches 1.0000001 must not be scaled differently from a test set that stays at or below 1.
    """
    floats = any(values.dtype.kind == "f" for values, _, _ in arrays)
    maxima = [(float(values.max()) if values.size else 0.0, path, name) for values, path, name in arrays]
    top, top_path, top_name = max(maxima, key=lambda item: item[0])
    if floats and top <= 1 + UNIT_TOLERANCE:
        return 255.0
    if floats and top < FLOAT_0_255_MIN_MAX:
        raise PipelineError(
            f"{top_path}: {top_name} pixel values are floats reaching {top:g}: above 0..1 (by more than {UNIT_TOLERANCE:g}) "
            f"yet below {FLOAT_0_255_MIN_MAX:g}, too dark for 0..255; rescale train and test to 0..1 or to 0..255"
        )
    for highest, path, name in maxima:
        if 0 < highest <= 1 + UNIT_TOLERANCE < top:
            raise PipelineError(
                f"{path}: {name} pixel values lie within 0..1 (largest {highest:g}) while {top_name} ({top_path.name}) "
                f"reaches {top:g}; "
                "train and test must use one scale (both 0..1 or both 0..255)"
            )
    return 1.0


def _to_uint8_images(values: np.ndarray, path: Path, what: str, scale: float = 1.0) -> np.ndarray:
    """Scale (the competition's one factor), round and reshape ``(N, pixels)`` or ``(N, H, W[, C])`` into uint8 NHWC."""
    values = _numeric_pixels(values, path, what)
    if values.dtype.kind == "f":
        if scale != 1.0:
            values = np.clip(values, 0.0, 1.0) * scale
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


def _images_of(arrays: list[tuple[np.ndarray, Path, str]]) -> list[np.ndarray]:
    """Train and test pixels to uint8 images by the one rule: each checked, then the scale decided, then applied."""
    checked = [(_numeric_pixels(values, path, "pixel"), path, name) for values, path, name in arrays]
    scale = _pixel_scale(checked)
    return [_to_uint8_images(values, path, "pixel", scale) for values, path, _ in checked]


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
    train_values = _pixel_values(train, pixel_columns, train_path)
    _image_shape_from_pixel_count(len(pixel_columns), train_path)  # said before test.csv is read
    labels = train[label_column].astype(str).str.strip().to_numpy()

    test = _read_pixel_table(test_path, text_columns=id_names)
    test_id_column = _find_column(test, id_names)
    test_pixel_columns = [column for column in test.columns if column != test_id_column]
    if len(test_pixel_columns) != len(pixel_columns):
        raise PipelineError(
            f"{test_path}: {len(test_pixel_columns)} pixel columns, but train.csv has {len(pixel_columns)}"
        )
    test_values = _pixel_values(test, test_pixel_columns, test_path)
    x_train, x_test = _images_of([(train_values, train_path, "train.csv"), (test_values, test_path, "test.csv")])
    test_ids = test[test_id_column].astype(str).tolist() if test_id_column else None
    return {"x_train": x_train, "train_labels": labels, "labels_path": train_path,
            "x_test": _order_like_sample(x_test, test_ids, sample, test_path, sample_path)}


def _read_pixel_table(path: Path, text_columns=()) -> pd.DataFrame:
    """Pixels as numbers; the columns named in ``text_columns`` (any case) as written ("007" stays "007").

    Only an empty cell is missing: a label spelled "NA" or "None" is a label, and a pixel "nan" is non-numeric.
    """
    data = _read_csv_bytes(path)
    try:
        separator = _separator(data)
        header = pd.read_csv(io.BytesIO(data), sep=separator, nrows=0, encoding="utf-8-sig").columns
        wanted = {name.lower() for name in text_columns}
        text = {column: str for column in header if str(column).strip().lower() in wanted}
        table = pd.read_csv(io.BytesIO(data), sep=separator, dtype=text, keep_default_na=False, na_values=[""],
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot parse CSV ({first_line(error)})") from None
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({first_line(error)})") from None
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


def _pixel_values(table: pd.DataFrame, pixel_columns: list[str], path: Path) -> np.ndarray:
    """The pixel columns as one numeric array (checked for empty and non-numeric cells, not yet scaled)."""
    pixels = table[pixel_columns]
    missing = np.argwhere(pixels.isna().to_numpy())
    if len(missing):
        row, column = (int(index) for index in missing[0])
        raise PipelineError(f"{path}: missing pixel value in column {pixel_columns[column]!r}, row {row + 2}")
    for column in pixel_columns:
        if pd.api.types.is_bool_dtype(pixels[column]):  # pandas reads a column of True/False as booleans
            raise PipelineError(f"{path}: non-numeric pixel value {str(pixels[column].iloc[0])!r} in column {column!r}, row 2")
    non_numeric = [column for column in pixel_columns if not pd.api.types.is_numeric_dtype(pixels[column])]
    for column in non_numeric:
        converted = pd.to_numeric(pixels[column], errors="coerce")
        rows = np.flatnonzero(converted.isna().to_numpy())
        if len(rows):
            row = int(rows[0])
            raise PipelineError(f"{path}: non-numeric pixel value {pixels[column].iloc[row]!r} in column {column!r}, row {row + 2}")
    # A number too large for int64 leaves its column as Python ints; as floats it fails the range check.
    if non_numeric:
        return pixels.apply(pd.to_numeric).to_numpy(dtype=np.float64)
    values = pixels.to_numpy()
    return values.astype(np.float64) if values.dtype.kind == "O" else values  # int64 beside uint64 columns


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
        if os.path.lexists(folder / name):
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
    _check_folder(folder, "image folder")
    files = {}
    for path in _entries(folder):  # hidden files (._201.png, .DS_Store) are not images
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in files:
                raise PipelineError(f"{path}: a second image for id {path.stem!r} (also {files[path.stem].name})")
            files[path.stem] = path
    return files


def _read_image(path: Path) -> np.ndarray:
    """One image, opened only with the format(s) its suffix names, its declared size checked before a pixel is
    decoded, turned upright by its EXIF orientation, and returned as uint8 grey (H, W) or RGB (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    formats = SUFFIX_FORMATS.get(path.suffix.lower(), IMAGE_FORMATS)
    with open_regular(path) as handle, warnings.catch_warnings():
        # Our limit (MAX_IMAGE_PIXELS) is checked below and is lower than Pillow's: its warning never prints.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(handle, formats=formats) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise PipelineError(f"{path}: the image declares {width}x{height} pixels, more than the "
                                        f"{MAX_IMAGE_PIXELS:,} one image may have (data.MAX_IMAGE_PIXELS)")
                image.load()  # an animated GIF (or a multi-page TIFF) stays on its first frame
                return _pixels_of(_upright(image), path)
        except Image.DecompressionBombError as error:
            declared = re.search(r"\((\d+) pixels\)", str(error))
            size = f"{int(declared.group(1)):,}" if declared else "too many"
            raise PipelineError(f"{path}: the image declares {size} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} one image may have (data.MAX_IMAGE_PIXELS)") from None
        except UnidentifiedImageError:
            names = " or ".join(formats)
            raise PipelineError(f"{path}: cannot read image (not a {names} file; a {path.suffix} file is read "
                                f"only as {names})") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, zlib.error, struct.error) as error:
            raise PipelineError(f"{path}: cannot read image ({first_line(error)})") from None


def _upright(image):
    """The image as it is displayed: its EXIF orientation (JPEG, TIFF, WebP, PNG eXIf) applied."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # an EXIF block Pillow cannot parse: the pixels are still the pixels
        return image
    return ImageOps.exif_transpose(image) if orientation in range(2, 9) else image


# Grey modes whose pixels are 8 bits already, colour modes Pillow converts to RGB exactly, and 16-bit/float modes.
_GREY_MODES = ("1", "L", "LA", "La")
_COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _pixels_of(image, path: Path) -> np.ndarray:
    # Alpha is dropped, not composited: the colour under it is what the pixels say (and what they said before).
    if image.mode in _GREY_MODES:
        return np.asarray(image.convert("L"))
    if image.mode in _COLOUR_MODES:
        return np.asarray(image.convert("RGB"))
    if image.mode in _WIDE_MODES:
        return _eight_bit(np.asarray(image), path)
    raise PipelineError(f"{path}: cannot read image (pixel mode {image.mode!r} is not supported)")


def _eight_bit(pixels: np.ndarray, path: Path) -> np.ndarray:
    """16-bit and float grey pixels to uint8 by a fixed range, the same for every image (never per image).

    Integers (16-bit, or 32-bit holding 0..65535) map 0..65535 to 0..255 (v * 255 / 65535, rounded): relative
    brightness between images is kept, as the competition's one pixel rule wants; a 12-bit scan in a 16-bit
    container comes out dark but not clipped. Floats follow the npy layout's rule, per image: at most
    1 + UNIT_TOLERANCE is 0..1 (x255), FLOAT_0_255_MIN_MAX..255 is 0..255; NaN, infinity, negative values or
    anything else is refused in one line. Pillow's own convert("L") clips at 255 and is never used for these.
    """
    if pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all():
            raise PipelineError(f"{path}: cannot read image (float pixels include NaN or infinity)")
        low, high = float(pixels.min()), float(pixels.max())
        if low >= 0 and high <= 1 + UNIT_TOLERANCE:
            return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        if low >= 0 and FLOAT_0_255_MIN_MAX <= high <= 255 + UNIT_TOLERANCE:
            return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        raise PipelineError(f"{path}: cannot read image (float pixels from {low:g} to {high:g}: neither 0..1 "
                            f"nor 0..255)")
    low, high = int(pixels.min()), int(pixels.max())
    if low < 0 or high > 65535:
        raise PipelineError(f"{path}: cannot read image (integer pixels from {low} to {high}: outside 0..65535)")
    return np.rint(pixels.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def _stack_images(images: list[np.ndarray], paths: list[Path]) -> np.ndarray:
    height, width = images[0].shape[:2]
    for image, path in zip(images, paths, strict=True):
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
    x_train, x_test = _images_of([(x_train, x_train_path, "train_x"), (x_test, x_test_path, "test_x")])
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
        "x_train": x_train,
        "train_labels": labels,
        "labels_path": labels_path,
        "x_test": _order_like_sample(x_test, test_ids, sample, x_test_path, sample_path),
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
    for path in _entries(folder):
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


# Validation split ---------------------------------------------------------------------------
def make_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded indices ``(train, validation)``: the same for every trial and run."""
    from sklearn.model_selection import StratifiedShuffleSplit

    if not (isinstance(fraction, float | int) and 0.0 < fraction < 1.0):
        raise ParameterError("validation_fraction", fraction, "must be between 0 and 1")
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ParameterError("split_seed", seed, f"must be an integer from 0 to {2**32 - 1}")
    counts = np.bincount(y)
    if counts.min() < 2:
        raise PipelineError(
            f"class index {int(counts.argmin())} has {int(counts.min())} training image; a stratified validation split needs 2"
        )
    validation_size = max(int(round(fraction * len(y))), len(counts))
    # Both sides of a stratified split need at least one image of every class.
    if len(y) - validation_size < len(counts):
        raise ParameterError("validation_fraction", fraction,
                             f"leaves {len(y) - validation_size} of {len(y)} training images for training, "
                             f"fewer than the {len(counts)} classes; use a smaller fraction")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=validation_size, random_state=seed)
    try:
        train_index, validation_index = next(splitter.split(np.zeros(len(y)), y))
    except ValueError as error:
        raise ParameterError("validation_fraction", fraction, f"cannot split the training images ({first_line(error)})") from None
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
    """An IDX file (the MNIST format) of unsigned bytes, gzip-compressed.

    The header's shape is checked against ``MAX_ARRAY_BYTES`` before anything is allocated, and against the
    data: a file holding fewer bytes (cut short) or more than the header declares is refused, and so is a
    damaged or non-gzip file.
    """
    with open_regular(path) as raw:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                head = handle.read(4)
                if len(head) < 4:
                    raise PipelineError(f"{path}: not an IDX file (only {len(head)} bytes)")
                if head[:2] != b"\0\0" or head[2] != 0x08 or not 1 <= head[3] <= 4:
                    raise PipelineError(f"{path}: not an unsigned-byte IDX file (magic {int.from_bytes(head, 'big'):#x})")
                dimensions = head[3]
                sides = handle.read(4 * dimensions)
                if len(sides) < 4 * dimensions:
                    raise PipelineError(f"{path}: the IDX header is cut short")
                shape = tuple(int.from_bytes(sides[4 * k : 4 * k + 4], "big") for k in range(dimensions))
                count = math.prod(shape)
                if count > MAX_ARRAY_BYTES:
                    raise PipelineError(f"{path}: the header declares shape {shape} ({count:,} bytes), more than the "
                                        f"{MAX_ARRAY_BYTES:,} bytes (half this machine's memory) an array may have")
                data = handle.read(count + 1)
        except (OSError, EOFError, zlib.error) as error:
            raise PipelineError(f"{path}: not a readable gzip-compressed IDX file ({first_line(error)})") from None
    if len(data) != count:
        held = f"{len(data):,}" if len(data) < count else "more than that"
        raise PipelineError(f"{path}: the header declares shape {shape} ({count:,} bytes) but the file holds {held}; "
                            "the file is damaged or cut short")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def fashion_mnist_arrays(source: Path = DEBIAN_FASHION_MNIST) -> dict[str, np.ndarray]:
    source = Path(source)
    present = [os.path.lexists(source / name) for name in FASHION_MNIST_FILES.values()]
    if all(present) or (any(present) or source != DEBIAN_FASHION_MNIST):
        # A folder the user named (or a partial Debian one) is read as it is: no silent download instead.
        _check_folder(source, "folder of Fashion-MNIST idx files (--source)")
        arrays = {key: read_idx(source / name) for key, name in FASHION_MNIST_FILES.items()}
        _check_idx_set(arrays, source)
        return arrays
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # no Debian package and no network
        raise PipelineError(
            f"{source}: Fashion-MNIST not found ({first_line(error)}); install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or run 'make setup' as root)"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check_idx_set(arrays: dict[str, np.ndarray], source: Path) -> None:
    """Images (N, H, W) and labels (N,) that belong together."""
    where = {key: source / name for key, name in FASHION_MNIST_FILES.items()}
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        if arrays[images].ndim != 3 or 0 in arrays[images].shape:
            raise PipelineError(f"{where[images]}: expected images shaped (N, height, width) with N > 0, "
                                f"found {arrays[images].shape}")
        if arrays[labels].shape != (len(arrays[images]),):
            raise PipelineError(f"{where[labels]}: expected {len(arrays[images])} labels in one dimension (one per "
                                f"image of {where[images].name}), found shape {arrays[labels].shape}")
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise PipelineError(f"{where['x_test']}: test images are {arrays['x_test'].shape[1:]}, training images "
                            f"{arrays['x_train'].shape[1:]}")


def _output_folder_state(folder: Path) -> str:
    """``missing``, ``empty`` or ``prepared`` (holds our PREPARED.json); anything else is refused.

    The pipeline deletes only what it created: a file, a link to nothing, or a folder holding anything but our
    marker (``.``, ``..``, ``/``, ``$HOME``, a git checkout, a link to a full folder) is never written into.
    """
    refuse = "'data' writes only a new or empty folder and never deletes what it did not create; choose another --out"
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        raise PipelineError(f"{folder}: cannot use it as the output folder ({error.strerror or first_line(error)})") from None
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(folder).st_mode
        except OSError as error:
            reason = "a symbolic link loop" if error.errno == errno.ELOOP else "a symbolic link to nothing"
            raise PipelineError(f"{folder}: is {reason}; {refuse}") from None
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else "a special file (FIFO, device or socket)"
        raise PipelineError(f"{folder}: is {kind}, not a folder; {refuse}")
    try:
        entries = os.listdir(folder)
    except OSError as error:
        raise PipelineError(f"{folder}: cannot list ({error.strerror or first_line(error)})") from None
    if not entries:
        return "empty"
    if PREPARED_MARKER in entries and _is_our_marker(folder / PREPARED_MARKER):
        return "prepared"
    raise PipelineError(f"{folder}: exists and is not empty ({len(entries)} entries, no {PREPARED_MARKER} of an "
                        f"earlier 'data' stage); {refuse}")


def _is_our_marker(path: Path) -> bool:
    try:
        marker = json.loads(read_bytes(path, limit=1 << 16))
    except (PipelineError, ValueError):
        return False
    return isinstance(marker, dict) and {"source", "train_images", "test_images"} <= set(marker)


def write_pixel_competition(
    folder: Path, x_train: np.ndarray, y_train, x_test: np.ndarray, y_test=None,
    id_column: str = "ImageId", label_column: str = "Label", first_id: int = 1, marker: dict | None = None,
) -> None:
    """Write a Digit-Recognizer-style folder: train.csv, test.csv (no id column), sample_submission.csv.

    With ``y_test`` also write ``solution.csv``, the local answer key; with ``marker`` also PREPARED.json,
    last. ``folder`` must be new (it appears whole or not at all) or an empty folder (filled; the files
    appear one by one, the marker last). Anything else is refused: nothing is ever deleted that this
    function did not create.
    """
    import tempfile

    folder = Path(folder)
    state = _output_folder_state(folder)
    if state == "prepared":
        raise PipelineError(f"{folder}: already holds a prepared competition; choose another folder")
    staging = moved = None
    try:
        if state == "missing":
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            staging.chmod(0o755)  # mkdtemp makes it private; the data is not
        else:
            staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
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
                f"{id_column},{label_column}\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, y_test, strict=True))
            )
        if marker is not None:
            (staging / PREPARED_MARKER).write_text(json.dumps(marker) + "\n")
        if state == "missing":
            os.rename(staging, folder)  # fails (ENOTEMPTY) if something appeared there meanwhile
            staging = None
        else:
            moved = []
            names = sorted(os.listdir(staging), key=lambda name: name == PREPARED_MARKER)  # the marker last
            for name in names:
                target = folder / name
                if os.path.lexists(target):
                    raise PipelineError(f"{target}: appeared while the folder was being written; nothing replaced")
                os.rename(staging / name, target)
                moved.append(target)
            staging.rmdir()
            staging = None
    except OSError as error:
        _undo(staging, moved)
        raise PipelineError(f"{folder}: cannot write ({error.strerror or first_line(error)})") from None
    except BaseException:
        _undo(staging, moved)
        raise


def _undo(staging: Path | None, moved: list[Path] | None) -> None:
    """Remove what write_pixel_competition created: its staging folder and the files it moved in."""
    import shutil

    for path in moved or []:
        try:
            path.unlink()
        except OSError:
            pass
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def _write_rows(path: Path, header: str, images: np.ndarray, labels=None) -> None:
    as_text = np.array([str(value) for value in range(256)])
    flat = images.reshape(len(images), -1)
    with open(path, "w") as handle:
        handle.write(header + "\n")
        for row, pixels in enumerate(flat):
            prefix = f"{labels[row]}," if labels is not None else ""
            handle.write(prefix + ",".join(as_text[pixels]) + "\n")


def prepare_fashion_mnist(folder: Path, source: Path = DEBIAN_FASHION_MNIST) -> bool:
    """Make the default competition folder; returns False when it is already there.

    ``folder`` may be missing (created), empty (filled) or an earlier result (its PREPARED.json says so);
    anything else is refused before the source is read, and nothing is deleted.
    """
    folder = Path(folder)
    if _output_folder_state(folder) == "prepared":
        return False
    arrays = fashion_mnist_arrays(Path(source))
    write_pixel_competition(
        folder, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        marker={"source": str(source), "train_images": len(arrays["x_train"]), "test_images": len(arrays["x_test"])},
    )
    return True
