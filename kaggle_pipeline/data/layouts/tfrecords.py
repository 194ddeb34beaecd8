"""Layout ``tfrecords`` (Petals to the Metal and Kaggle's other TPU competitions): ``train/*.tfrec`` (and
``val/*.tfrec``) and ``test/*.tfrec``, each record a ``tf.train.Example`` holding an encoded JPEG or PNG
(``image``; or its raw pixels beside ``height``/``width``/``depth`` features, as TensorFlow's tutorials write
them), its label (``class``) in training records, and its id (``id``)::

    tpu-getting-started/
        sample_submission.csv                       id,label
        tfrecords-jpeg-192x192/train/00-192x192-798.tfrec ... val/... test/...
        tfrecords-jpeg-224x224/...  (the same images, larger)

The record folders are the competition folder itself or one folder down; where several are (one per image
size), the first in natural order is read (Petals' 192x192: the nets here train on at most 128 pixels a side,
so a larger copy would only cost decoding time) and a log line names the others. ``val/`` is labelled data like
``train/``: both train (the pipeline makes its own validation split). The features are found by name: the
image under ``image`` (or ``image_raw``, ``img``, ``jpeg``, ``image/encoded``), the label under the sample's
label column or ``class``/``label``/..., the id under the sample's id column or ``id``/``image_id``.

Records are read without TensorFlow (its import alone costs seconds): the TFRecord framing (length, its CRC,
data, its CRC) and the few protobuf fields of an Example are parsed here; a record cut short is refused, the
CRCs are not checked (a damaged image still fails to decode, in one line).
"""

from __future__ import annotations

import io
import logging
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import entries, is_dir
from kaggle_pipeline.data.images import MAX_IMAGE_PIXELS, EncodedImage, decode_images, left_out_of
from kaggle_pipeline.data.registry import Layout, register_layout
from kaggle_pipeline.data.tables import LABEL_COLUMN_NAMES, order_like_sample, value_as_text
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, read_bytes

logger = logging.getLogger(__name__)

RECORD_SUFFIXES = (".tfrec", ".tfrecord", ".tfrecords")
TRAIN_FOLDERS = ("train", "val", "valid", "validation")
IMAGE_KEYS = ("image", "image_raw", "img", "jpeg", "image/encoded")
ID_KEYS = ("id", "image_id", "image_name")


def read(folder: Path, sample: pd.DataFrame, sample_path: Path, image_size: int | None,
         skip_unreadable: bool = False) -> dict:
    roots = _record_roots(folder)
    if not roots:  # only where --layout tfrecords overrides the detection
        raise PipelineError(f"{folder}: no train/ and test/ folders of {', '.join(RECORD_SUFFIXES)} files, here or "
                            f"one folder down")
    root = roots[0]
    if len(roots) > 1:
        logger.info(f"data: reading the records in {root.name}/ (also there: "
                    f"{', '.join(other.name + '/' for other in roots[1:])}; the first in name order)")
    train_files = [path for name in TRAIN_FOLDERS for path in _record_files(root / name)]
    test_files = _record_files(root / "test")
    train = [record for path in train_files for record in _examples(path)]
    test = [record for path in test_files for record in _examples(path)]
    label_names = (str(sample.columns[1]), "class") + LABEL_COLUMN_NAMES
    id_names = (str(sample.columns[0]),) + ID_KEYS
    first_name, first = train[0]
    image_key = _key(first, IMAGE_KEYS, first_name, "an image (bytes)")
    label_key = _key(first, label_names, first_name, "a label")
    test_id_key = _key(test[0][1], id_names, test[0][0], "an id")
    labels = np.asarray([_text(record, label_key, name, "label") for name, record in train])
    test_ids = [_text(record, test_id_key, name, "id") for name, record in test]
    encoded = [[EncodedImage(_image(record, image_key, name), name) for name, record in records]
               for records in (train, test)]
    del train, test
    (x_train, x_test), left_out = decode_images(encoded, image_size, "train and test images", skip_unreadable)
    test_path = root / "test"
    return {"x_train": x_train, **left_out_of(labels, left_out), "labels_path": root / "train",
            "x_test": order_like_sample(x_test, test_ids, sample, test_path, sample_path)}


# Where the records are --------------------------------------------------------------------------------------
def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _record_files(folder: Path) -> list[Path]:
    if not is_dir(folder):
        return []
    return sorted((path for path in entries(folder) if path.suffix.lower() in RECORD_SUFFIXES), key=_natural)


def _holds_records(root: Path) -> bool:
    return bool(_record_files(root / "train")) and bool(_record_files(root / "test"))


def _record_roots(folder: Path) -> list[Path]:
    """The folders holding ``train/`` and ``test/`` records: the competition folder, or those one folder down."""
    if _holds_records(folder):
        return [folder]
    return sorted((path for path in entries(folder) if is_dir(path) and _holds_records(path)), key=_natural)


def _started(folder: Path) -> bool:
    candidates = [folder] + [path for path in entries(folder) if is_dir(path)]
    return any(_record_files(root / name) for root in candidates for name in ("train", "test"))


def _files(folder: Path) -> list[Path]:
    roots = _record_roots(folder)
    return [path for name in (*TRAIN_FOLDERS, "test") for path in _record_files(roots[0] / name)] if roots else []


# Reading records ---------------------------------------------------------------------------------------------
def _examples(path: Path) -> list[tuple[str, dict[str, list]]]:
    """Each record of the file as (its name in errors, its Example's features)."""
    data = read_bytes(path, limit=MAX_ARRAY_BYTES)
    examples, offset, number = [], 0, 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise PipelineError(f"{path}: cut short in record {number}'s header")
        (length,) = struct.unpack_from("<Q", data, offset)
        start, end = offset + 12, offset + 12 + length  # after the length and its CRC
        if end + 4 > len(data):
            raise PipelineError(f"{path}: cut short in record {number} (it declares {length:,} bytes)")
        name = f"{path}, record {number}"
        try:
            examples.append((name, _features(data[start:end])))
        except (ValueError, IndexError, UnicodeDecodeError, struct.error):
            raise PipelineError(f"{name}: not a tf.train.Example") from None
        offset, number = end + 4, number + 1
    if not examples:
        raise PipelineError(f"{path}: no records")
    return examples


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message: bytes for length-delimited fields, ints otherwise."""
    offset = 0
    while offset < len(data):
        tag, offset = _varint(data, offset)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, offset = _varint(data, offset)
        elif wire == 1:
            value, offset = data[offset:offset + 8], offset + 8
        elif wire == 2:
            length, offset = _varint(data, offset)
            value, offset = data[offset:offset + length], offset + length
        elif wire == 5:
            value, offset = data[offset:offset + 4], offset + 4
        else:
            raise ValueError(f"wire type {wire}")
        if offset > len(data):
            raise ValueError("field cut short")
        yield number, wire, value


def _features(example: bytes) -> dict[str, list]:
    """An Example's features (Example.features = 1 -> Features.feature = 1, a map of name -> Feature)."""
    features = {}
    for number, wire, message in _fields(example):
        if number != 1 or wire != 2:
            continue
        for entry_number, entry_wire, entry in _fields(message):
            if entry_number != 1 or entry_wire != 2:
                continue
            key, feature = None, b""
            for part_number, part_wire, part in _fields(entry):
                if part_number == 1 and part_wire == 2:
                    key = part.decode("utf-8")
                elif part_number == 2 and part_wire == 2:
                    feature = part
            if key is not None:
                features[key] = _values(feature)
    return features


def _values(feature: bytes) -> list:
    """A Feature's values: BytesList (1) as bytes, FloatList (2) as floats, Int64List (3) as ints."""
    for kind, wire, values in _fields(feature):
        if wire != 2:
            continue
        if kind == 1:
            return [value for number, _, value in _fields(values) if number == 1]
        if kind == 2:
            found = []
            for number, value_wire, value in _fields(values):
                if number == 1 and value_wire == 2:  # packed
                    found += struct.unpack(f"<{len(value) // 4}f", value[: len(value) // 4 * 4])
                elif number == 1 and value_wire == 5:
                    found += struct.unpack("<f", value)
            return found
        if kind == 3:
            found = []
            for number, value_wire, value in _fields(values):
                if number == 1 and value_wire == 2:  # packed varints
                    offset = 0
                    while offset < len(value):
                        item, offset = _varint(value, offset)
                        found.append(item)
                elif number == 1 and value_wire == 0:
                    found.append(value)
            return [item - (1 << 64) if item >= 1 << 63 else item for item in found]
    return []


# Features by name -----------------------------------------------------------------------------------------------
def _key(features: dict[str, list], names, where: str, what: str) -> str:
    lowered = {key.lower(): key for key in features}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    raise PipelineError(f"{where}: no feature holding {what} (expected one named {', '.join(dict.fromkeys(names))}; "
                        f"it has {', '.join(sorted(features)) or 'none'})")


# Where a record holds raw pixels (``image.tobytes()``, as TensorFlow's tutorials write MNIST) instead of a JPEG or
# PNG, its size is in these features: (height, width, channels), channels optional (1).
RAW_SHAPE_KEYS = (("height", "width", "depth"), ("image/height", "image/width", "image/channels"),
                  ("rows", "cols", "channels"))
ENCODED_SIGNATURES = (b"\xff\xd8", b"\x89PNG\r\n\x1a\n")


def _image(features: dict[str, list], key: str, where: str) -> bytes:
    """The record's image as a JPEG or PNG file's bytes: as stored, or its raw uint8 pixels written as a PNG
    (lossless), so that every image goes through the one decoder."""
    values = features.get(key, [])
    if len(values) != 1 or not isinstance(values[0], bytes):
        raise PipelineError(f"{where}: feature {key!r} is not one encoded image")
    data = values[0]
    shape = None if data.startswith(ENCODED_SIGNATURES) else _raw_shape(features)
    if shape is None:
        return data  # a JPEG, a PNG, or what the decoder refuses in one line
    if len(data) != shape[0] * shape[1] * shape[2]:
        raise PipelineError(f"{where}: feature {key!r} holds {len(data):,} bytes, not the {shape[0]}x{shape[1]}x"
                            f"{shape[2]} raw pixels its size features declare")
    from PIL import Image

    pixels = np.frombuffer(data, np.uint8).reshape(shape)
    encoded = io.BytesIO()
    Image.fromarray(pixels[..., 0] if shape[2] == 1 else pixels).save(encoded, "PNG", compress_level=0)
    return encoded.getvalue()


def _raw_shape(features: dict[str, list]) -> tuple[int, int, int] | None:
    """(height, width, channels) from the record's size features, when it has them and they are plausible."""
    for height_key, width_key, channels_key in RAW_SHAPE_KEYS:
        height, width = features.get(height_key, []), features.get(width_key, [])
        channels = features.get(channels_key, [1])
        if len(height) == len(width) == len(channels) == 1 and all(
                isinstance(value, int) for value in (height[0], width[0], channels[0])):
            shape = (height[0], width[0], channels[0])
            if 1 <= shape[0] and 1 <= shape[1] and shape[0] * shape[1] <= MAX_IMAGE_PIXELS and shape[2] in (1, 3):
                return shape
    return None


def _text(features: dict[str, list], key: str, where: str, what: str) -> str:
    """A label or an id: the feature's one value as text (tables.value_as_text)."""
    values = features.get(key, [])
    if len(values) != 1:
        raise PipelineError(f"{where}: feature {key!r} holds {len(values)} values, not one {what}")
    return value_as_text(values[0], where, what, key)


register_layout(Layout(
    name="tfrecords",
    files_text="train/*.tfrec (and val/) and test/*.tfrec, records of an encoded image, its class and its id, "
               "here or one folder down",
    competitions="Petals to the Metal (flower classification on TPUs: tfrecords-jpeg-192x192/train, val, test)",
    read=read,
    complete=lambda folder: bool(_record_roots(folder)),
    started=_started,
    files=_files,
))
