"""Layout ``json`` (Statoil/C-CORE Iceberg Classifier): ``train.json`` and ``test.json``, each a list of records
that hold an id, one to three bands of pixels and, in ``train.json``, the label::

    [{"id": "dfd5f913", "band_1": [-27.87, -27.15, ...], "band_2": [-27.15, ...], "inc_angle": 43.92,
      "is_iceberg": 0}, ...]

The id is the field named like the sample submission's id column (or ``id``), the label the one named like its
label column (or ``label``, ``class``, ...). The bands are the fields holding lists of numbers, in the order of
their names, each a flat side x side image; every other field (``inc_angle``) is left out.

A band's values may have any range (the iceberg bands are radar backscatter in dB, about -50..+40, which the
pixel rule of the other layouts would refuse as negative): each band is mapped linearly from its lowest to its
highest value over train and test together to 0..255, one range for the whole competition, never per image, so
relative brightness between images is kept. One band is a grey image, three are RGB, and two become RGB as
(band 1, band 2, their mean), as the competition's kernels fed two radar bands to three-channel nets.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import entry_names
from kaggle_pipeline.data.images import MAX_IMAGE_PIXELS, resize_images
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.data.tables import LABEL_COLUMN_NAMES, not_utf8_error, order_like_sample, value_as_text
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, first_line, read_bytes

logger = logging.getLogger(__name__)

MAX_BANDS = 3


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    train_path, test_path = folder / "train.json", folder / "test.json"
    id_names = (str(sample.columns[0]), "id")
    label_names = (str(sample.columns[1]),) + LABEL_COLUMN_NAMES
    train = _records(train_path)
    bands = _band_names(train[0], train_path)
    label_key = _key(train[0], label_names)
    if label_key is None:
        raise PipelineError(f"{train_path}: record 0 has no label field (expected one named "
                            f"{' or '.join(repr(name) for name in label_names[:3])}, ...)")
    labels = np.asarray([value_as_text(record.get(label_key), f"{train_path}: record {number}", "label", label_key)
                         for number, record in enumerate(train)])
    train_values = _band_values(train, bands, train_path)
    del train
    test = _records(test_path)
    test_key = _key(test[0], id_names)
    if test_key is None:
        raise PipelineError(f"{test_path}: record 0 has no id field (expected one named {id_names[0]!r} or 'id')")
    test_ids = [value_as_text(record.get(test_key), f"{test_path}: record {number}", "id", test_key)
                for number, record in enumerate(test)]
    test_values = _band_values(test, bands, test_path)
    if test_values.shape[1:] != train_values.shape[1:]:
        raise PipelineError(f"{test_path}: bands of {test_values.shape[2]:,} values, but train.json's have "
                            f"{train_values.shape[2]:,}")
    del test
    x_train, x_test = _images([train_values, test_values], bands, train_path)
    return {"x_train": resize_images(x_train, image_size), "train_labels": labels, "labels_path": train_path,
            "x_test": order_like_sample(resize_images(x_test, image_size), test_ids, sample, test_path, sample_path)}


def _records(path: Path) -> list[dict]:
    """The file's records: a JSON list of objects, checked before any field is read."""
    data = read_bytes(path, limit=MAX_ARRAY_BYTES)
    if len(data) > 1 << 26:
        logger.info(f"data: parsing {path.name} ({len(data) / 2**20:,.0f} MiB of JSON)")
    try:
        records = json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        found = not_utf8_error(path, data, "convert it to UTF-8, e.g. iconv -f cp1252 -t utf-8 for Western European "
                                           "text") if isinstance(error, UnicodeDecodeError) else None
        raise (found or PipelineError(f"{path}: cannot parse JSON ({first_line(error)})")) from None
    if not isinstance(records, list):
        raise PipelineError(f"{path}: expected a list of records ([{{\"id\": ..., \"band_1\": [...]}}, ...]), "
                            f"found a JSON {type(records).__name__}")
    if not records:
        raise PipelineError(f"{path}: no records")
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise PipelineError(f"{path}: record {number} is a JSON {type(record).__name__}, not an object")
    return records


def _key(record: dict, names) -> str | None:
    """The record's field named like one of ``names`` (any case), in their order."""
    lowered = {str(key).lower(): key for key in record}
    return next((lowered[name.lower()] for name in names if name.lower() in lowered), None)


def _band_names(record: dict, path: Path) -> list[str]:
    bands = sorted((key for key, value in record.items() if isinstance(value, list)), key=_natural)
    if not bands:
        raise PipelineError(f"{path}: record 0 has no band (a field holding a list of pixel values, e.g. 'band_1')")
    if len(bands) > MAX_BANDS:
        raise PipelineError(f"{path}: {len(bands)} bands ({', '.join(bands)}); at most {MAX_BANDS} are read")
    return bands


def _natural(name: str) -> list:
    """band_2 before band_10: text and numbers alternate in the key, so they compare in step."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _band_values(records: list[dict], bands: list[str], path: Path) -> np.ndarray:
    """``(N, bands, values)`` float32: every record has every band, of one length, all finite numbers."""
    length = None
    values = None
    for number, record in enumerate(records):
        for band_number, band in enumerate(bands):
            where = f"{path}: record {number}, band {band!r}"
            cells = record.get(band)
            if not isinstance(cells, list):
                raise PipelineError(f"{path}: record {number} has no band {band!r} (a list of pixel values)")
            if cells and isinstance(cells[0], list):
                raise PipelineError(f"{where}: expected a flat list of numbers")
            if length is None:  # the size is checked before anything is converted or allocated
                length = len(cells)
                if math.isqrt(length) ** 2 != length or length == 0:
                    raise PipelineError(f"{where}: {length:,} values is not a square image (side x side)")
                if length > MAX_IMAGE_PIXELS:
                    raise PipelineError(f"{where}: {length:,} values, more than the {MAX_IMAGE_PIXELS:,} pixels one "
                                        f"image may have (data.MAX_IMAGE_PIXELS)")
                values = np.empty((len(records), len(bands), length), dtype=np.float32)
            if len(cells) != length:
                raise PipelineError(f"{where}: {len(cells):,} values, but record 0's bands have {length:,}")
            try:
                row = np.asarray(cells, dtype=np.float64)
            except (TypeError, ValueError):
                bad = next((cell for cell in cells if isinstance(cell, bool) or not isinstance(cell, (int, float))),
                           None)
                raise PipelineError(f"{where}: non-numeric pixel value {bad!r}") from None
            if row.ndim != 1:
                raise PipelineError(f"{where}: expected a flat list of numbers")
            if not np.isfinite(row).all():
                raise PipelineError(f"{where}: pixel value {float(row[~np.isfinite(row)][0])!r} is not a finite number")
            values[number, band_number] = row
    return values


def _images(arrays: list[np.ndarray], bands: list[str], path: Path) -> list[np.ndarray]:
    """Each ``(N, bands, side²)`` array as uint8 NHWC: every band by its one range over all arrays (the module's
    docstring), two bands made RGB with their mean."""
    low = np.min([array.min(axis=(0, 2)) for array in arrays], axis=0)
    high = np.max([array.max(axis=(0, 2)) for array in arrays], axis=0)
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    logger.info("data: bands " + ", ".join(f"{band} {lo:g}..{hi:g}" for band, lo, hi in zip(bands, low, high, strict=True))
                + " read as 0..255 (over train and test together)")
    images = []
    for array in arrays:
        scaled = np.rint((array - low[None, :, None]) / span[None, :, None] * 255.0)
        side = math.isqrt(array.shape[2])
        pixels = scaled.astype(np.uint8).reshape(len(array), len(bands), side, side).transpose(0, 2, 3, 1)
        if len(bands) == 2:
            mean = np.rint((pixels[..., 0].astype(np.uint16) + pixels[..., 1]) / 2).astype(np.uint8)
            pixels = np.concatenate([pixels, mean[..., None]], axis=3)
        images.append(np.ascontiguousarray(pixels))
    return images


register_layout(Layout(
    name="json",
    files_text="train.json and test.json (lists of records with an id, bands of pixels and, in train, the label)",
    competitions="Statoil/C-CORE Iceberg Classifier Challenge (band_1, band_2 radar bands in dB, is_iceberg)",
    read=read,
    complete=lambda folder: {"train.json", "test.json"} <= entry_names(folder),
    started=lambda folder: bool({"train.json", "test.json"} & entry_names(folder)),
    files=lambda folder: [folder / "train.json", folder / "test.json"],
))
