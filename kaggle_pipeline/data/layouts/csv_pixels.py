"""Layout ``csv`` (Digit Recognizer, Kannada MNIST): ``train.csv`` (``label,pixel0..pixelK``) and ``test.csv``
(pixels, with or without an id column). The pixels may also be one column of numbers separated by spaces
(FER2013's ``emotion,pixels``)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import entry_names
from kaggle_pipeline.data.images import resize_images
from kaggle_pipeline.data.pixels import image_shape_from_pixel_count, images_of
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.data.tables import (
    LABEL_COLUMN_NAMES,
    check_row_lengths,
    csv_parse_error,
    find_column,
    order_like_sample,
    raw_header,
    read_csv_bytes,
    separator_of,
)
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import first_line, open_regular


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    train_path, test_path = folder / "train.csv", folder / "test.csv"
    id_names, label_names = (sample.columns[0], "id"), (sample.columns[1],) + LABEL_COLUMN_NAMES
    train = _read_pixel_table(train_path, text_columns=id_names + label_names)
    label_column = find_column(train, label_names)
    if label_column is None:
        raise PipelineError(f"{train_path}: no label column (expected one named 'label' or {sample.columns[1]!r})")
    id_column = find_column(train, id_names)
    pixel_columns = [column for column in train.columns if column not in (label_column, id_column)]
    missing_labels = np.flatnonzero(train[label_column].isna().to_numpy())
    if len(missing_labels):
        raise PipelineError(f"{train_path}: missing label in row {int(missing_labels[0]) + 2}")
    train_values = _pixel_values(train, pixel_columns, train_path)
    image_shape_from_pixel_count(train_values.shape[1], train_path)  # said before test.csv is read
    labels = train[label_column].astype(str).str.strip().to_numpy()

    test = _read_pixel_table(test_path, text_columns=id_names)
    test_id_column = find_column(test, id_names)
    test_pixel_columns = [column for column in test.columns if column != test_id_column]
    if len(test_pixel_columns) != len(pixel_columns):
        raise PipelineError(
            f"{test_path}: {len(test_pixel_columns)} pixel columns, but train.csv has {len(pixel_columns)}"
        )
    test_values = _pixel_values(test, test_pixel_columns, test_path)
    if test_values.shape[1] != train_values.shape[1]:
        raise PipelineError(f"{test_path}: {test_values.shape[1]} pixel values per image, but train.csv has "
                            f"{train_values.shape[1]}")
    x_train, x_test = images_of([(train_values, train_path, "train.csv"), (test_values, test_path, "test.csv")])
    test_ids = test[test_id_column].astype(str).tolist() if test_id_column else None
    x_train, x_test = resize_images(x_train, image_size), resize_images(x_test, image_size)
    return {"x_train": x_train, "train_labels": labels, "labels_path": train_path,
            "x_test": order_like_sample(x_test, test_ids, sample, test_path, sample_path)}


# A labelled pixel table has at least this many pixel columns (a 4x4 image), or one of space-separated pixels.
MIN_PIXEL_COLUMNS = 16
# A column saying which split each row belongs to (FER2013's Usage: Training, PublicTest, PrivateTest).
SPLIT_COLUMN_NAMES = ("usage", "split", "subset")


def table_header(path: Path) -> list[str]:
    """A CSV's column names, lower case, from its first line alone (a regular file only)."""
    with open_regular(path) as handle:
        head = handle.read(1 << 20)
    return [name.strip().lower() for name in raw_header(head, separator_of(head))]


# A pixel column's name: pixel0, pixel784, px_12, 7, 28x28 (MNIST in CSV's 1x1..28x28).
PIXEL_NAME = re.compile(r"(?:pixel|px)?[_ ]?\d+(?:x\d+)?")


def looks_like_pixels(names: list[str]) -> bool:
    """Whether a CSV of these columns holds pixels: at least ``MIN_PIXEL_COLUMNS`` named like pixels, or one
    column named ``pixels`` (FER2013's space-separated ones). CelebA's 40 attributes are not."""
    return sum(bool(PIXEL_NAME.fullmatch(name)) for name in names) >= MIN_PIXEL_COLUMNS or \
        any(name in ("pixels", "pixel") for name in names)


def labelled_pixel_table(names: list[str], label_names=LABEL_COLUMN_NAMES) -> bool:
    """Whether a CSV of these columns (``table_header``) is a labelled table of pixels (``label,pixel1..pixel784``:
    Kaggle's Fashion-MNIST, Sign Language MNIST and MNIST-in-CSV datasets; FER2013's ``emotion,pixels,Usage``
    with ``label_names=("emotion",)``): a label column, maybe a split column, and pixels. A labels CSV of file
    names is not."""
    others = [name for name in names if name not in label_names and name not in SPLIT_COLUMN_NAMES]
    return len(others) < len(names) and looks_like_pixels(others) and \
        (len(others) == 1 or all(PIXEL_NAME.fullmatch(name) for name in others))


def read_labelled_pixels(paths: list[Path], label_names=LABEL_COLUMN_NAMES) -> list[tuple]:
    """Each labelled pixel table's images (uint8, one pixel scale decided over all of them, as train and test
    are), labels (text) and, where it has a split column, each row's split as written (else None), for
    ``data --dataset``. Every table must have the first one's pixel count."""
    tables = []
    for path in paths:
        table = _read_pixel_table(path, text_columns=(*label_names, *SPLIT_COLUMN_NAMES))
        label_column, split_column = find_column(table, label_names), find_column(table, SPLIT_COLUMN_NAMES)
        for column in filter(None, (label_column, split_column)):
            missing = np.flatnonzero(table[column].isna().to_numpy())
            if len(missing):
                raise PipelineError(f"{path}: missing {'label' if column == label_column else column} in row "
                                    f"{int(missing[0]) + 2}")
        values = _pixel_values(table, [column for column in table.columns if column not in (label_column, split_column)],
                               path)
        image_shape_from_pixel_count(values.shape[1], path)
        if tables and values.shape[1] != tables[0][0].shape[1]:
            raise PipelineError(f"{path}: {values.shape[1]} pixel values per image, but {paths[0].name} has "
                                f"{tables[0][0].shape[1]}")
        splits = table[split_column].astype(str).str.strip().to_numpy() if split_column else None
        tables.append((values, table[label_column].astype(str).str.strip().to_numpy(), splits, path))
    images = images_of([(values, path, path.name) for values, _, _, path in tables])
    return [(image, labels, splits) for image, (_, labels, splits, _) in zip(images, tables, strict=True)]


def _read_pixel_table(path: Path, text_columns=()) -> pd.DataFrame:
    """Pixels as numbers; the columns named in ``text_columns`` (any case) as written ("007" stays "007").

    Only an empty cell is missing: a label spelled "NA" or "None" is a label, and a pixel "nan" is non-numeric.
    """
    data = read_csv_bytes(path)
    try:
        separator = separator_of(data)
        header = pd.read_csv(io.BytesIO(data), sep=separator, nrows=0, encoding="utf-8-sig").columns
        wanted = {name.lower() for name in text_columns}
        text = {column: str for column in header if str(column).strip().lower() in wanted}
        table = pd.read_csv(io.BytesIO(data), sep=separator, dtype=text, keep_default_na=False, na_values=[""],
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise csv_parse_error(path, data, error) from None
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({first_line(error)})") from None
    check_row_lengths(table, path)
    if len(table) == 0:
        raise PipelineError(f"{path}: no rows")
    table.columns = [str(column).strip() for column in table.columns]
    return table


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
    if len(pixel_columns) == 1 and not pd.api.types.is_numeric_dtype(pixels[pixel_columns[0]]):
        return _spaced_pixels(pixels[pixel_columns[0]], pixel_columns[0], path)
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


def _spaced_pixels(cells: pd.Series, column: str, path: Path) -> np.ndarray:
    """One column holding each image's pixels as numbers separated by spaces (FER2013's ``emotion,pixels``):
    ``(N, K)`` floats, every row the same K, every value a finite number (checked here, as the pixel columns are)."""
    rows: list[np.ndarray] = []
    for row, cell in enumerate(cells.to_numpy()):
        tokens = str(cell).split()
        try:
            values = np.array(tokens, dtype=np.float64)
        except ValueError:
            values = None
        if values is None or not np.isfinite(values).all():
            bad = next(token for token in tokens if not np.isfinite(pd.to_numeric(token, errors="coerce")))
            raise PipelineError(f"{path}: non-numeric pixel value {bad!r} in column {column!r}, row {row + 2}")
        if rows and len(values) != len(rows[0]):
            raise PipelineError(f"{path}: {len(values)} pixel values in column {column!r}, row {row + 2}, but "
                                f"{len(rows[0])} in row 2")
        rows.append(values)
    return np.stack(rows)


register_layout(Layout(
    name="csv",
    files_text="train.csv (label,pixel0..pixelK) and test.csv (pixels, with or without an id column)",
    competitions="Digit Recognizer (MNIST), Kannada MNIST (test.csv with an id column), FER2013 (one column of "
                 "space-separated pixels), Fashion-MNIST as made by 'make data'",
    read=read,
    complete=lambda folder: {"train.csv", "test.csv"} <= entry_names(folder),
    started=lambda folder: bool({"train.csv", "test.csv"} & entry_names(folder)),
    files=lambda folder: [folder / "train.csv", folder / "test.csv"],
))
