"""Property-based tests (hypothesis) of the loaders and of the submission validator.

(a) Well-formed competitions, drawn at random (csv and npy layouts; image side 4..12, grey or RGB, 2..5
    classes with 2..6 images each, integer or string labels, with or without test ids, separators, BOM, npz,
    unit-scaled floats), load back exactly: the arrays as generated, the classes in the documented order, the
    ids and column names as written, the test images in the sample submission's order.
(b) A well-formed CSV competition corrupted at random (truncated, bytes flipped or inserted, a cell deleted or
    replaced, a line dropped or repeated) either loads or raises PipelineError with one line naming a file
    of the folder; never another exception, and nothing is cached for a refused folder. The same for the json
    and tfrecords layouts' files (their records parsed here, without json's or TensorFlow's help for the latter).
(c) Tables derived from a sample submission (rows shuffled, dropped or repeated, ids changed, labels wrong,
    columns added, dropped, renamed or swapped) pass validate_submission exactly when an independent oracle,
    written here from Kaggle's rules, says they are valid, and otherwise raise PipelineError.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kaggle_pipeline.data import load_competition
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.submit import validate_submission

# FUZZ_EXAMPLES=2000 for a longer hunt; the default keeps the file near 10 s.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INTEGER = re.compile(r"-?\d{1,18}")


# (a) Well-formed competitions round-trip ----------------------------------------------------------------
SAFE_TEXT = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,7}", fullmatch=True)
TRICKY_LABELS = ["None", "NA", "nan", "null", "N/A", "007", "0", "-3", "1e3", "True"]


@st.composite
def class_names(draw, kind: str, count: int) -> list[str]:
    if kind == "str":
        pool = st.one_of(SAFE_TEXT, st.sampled_from(TRICKY_LABELS))
        return draw(st.lists(pool, min_size=count, max_size=count, unique=True))
    # Distinct integers (a start and positive gaps), listed in any order.
    start = draw(st.integers(-20, 300))
    gaps = draw(st.lists(st.integers(1, 40), min_size=count - 1, max_size=count - 1))
    values = draw(st.permutations(list(np.cumsum([start] + gaps))))
    if kind == "int":
        return [str(value) for value in values]
    return [f"{value:03d}" for value in values]  # "padded": leading zeros, kept as written ("-05" too)


@st.composite
def competitions(draw) -> dict:
    layout = draw(st.sampled_from(["csv", "npy"]))
    side = draw(st.integers(4, 12))
    channels = draw(st.sampled_from([1, 3]))
    label_kind = draw(st.sampled_from(["int", "str"] + (["padded"] if layout == "csv" else [])))
    classes = draw(class_names(label_kind, draw(st.integers(2, 5))))
    counts = draw(st.lists(st.integers(2, 6), min_size=len(classes), max_size=len(classes)))
    labels = [name for name, count in zip(classes, counts, strict=True) for _ in range(count)]
    labels = draw(st.permutations(labels))
    test_count = draw(st.integers(1, 8))
    id_style = draw(st.sampled_from(["1", "padded", "prefixed"]))
    first = draw(st.integers(0, 1000))
    ids = [str(first + k) if id_style == "1" else f"{first + k:06d}" if id_style == "padded" else f"img_{first + k}"
           for k in range(test_count)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "layout": layout,
        "label_kind": label_kind,
        "x_train": rng.integers(0, 256, (len(labels), side, side, channels), dtype=np.uint8),
        "labels": list(labels),
        "x_test": rng.integers(0, 256, (test_count, side, side, channels), dtype=np.uint8),
        "sample_ids": list(draw(st.permutations(ids))),  # the sample's order: what x_test follows
        "file_order": list(draw(st.permutations(range(test_count)))),  # test rows on disk, when they have ids
        "test_ids": draw(st.booleans()),
        "id_column": draw(st.sampled_from(["ImageId", "id", "Id"])),
        "label_column": draw(st.sampled_from(["Label", "label", "Category"])),
        "train_label_header": draw(st.sampled_from(["label", "sample's"])),
        "separator": draw(st.sampled_from([",", ";", "\t"])) if layout == "csv" else ",",
        "bom": draw(st.booleans()),
        "npz": draw(st.booleans()),
        "unit_floats": draw(st.booleans()),
        "grey_rank3": draw(st.booleans()),
    }


def write_competition(folder: Path, spec: dict) -> None:
    folder.mkdir()
    sep, bom = spec["separator"], "\ufeff" if spec["bom"] else ""
    sample_rows = [sep.join([spec["id_column"], spec["label_column"]])]
    sample_rows += [sep.join([test_id, spec["labels"][0]]) for test_id in spec["sample_ids"]]
    (folder / "sample_submission.csv").write_text(bom + "\n".join(sample_rows) + "\n", encoding="utf-8")
    x_train, x_test = spec["x_train"], spec["x_test"]
    if spec["layout"] == "csv":
        pixels = [f"pixel{i}" for i in range(x_train[0].size)]
        label_header = spec["label_column"] if spec["train_label_header"] == "sample's" else "label"
        train = [sep.join([label_header] + pixels)]
        train += [sep.join([label] + [str(v) for v in image.ravel()]) for label, image in zip(spec["labels"], x_train, strict=True)]
        (folder / "train.csv").write_text(bom + "\n".join(train) + "\n", encoding="utf-8")
        if spec["test_ids"]:
            test = [sep.join([spec["id_column"]] + pixels)]
            test += [sep.join([spec["sample_ids"][row]] + [str(v) for v in x_test[row].ravel()])
                     for row in spec["file_order"]]
        else:
            test = [sep.join(pixels)] + [sep.join(str(v) for v in image.ravel()) for image in x_test]
        (folder / "test.csv").write_text(bom + "\n".join(test) + "\n", encoding="utf-8")
        return

    def stored(images):
        if images.shape[-1] == 1 and spec["grey_rank3"]:
            images = images[..., 0]
        return images.astype(np.float32) / 255.0 if spec["unit_floats"] else images

    labels = np.array([int(label) for label in spec["labels"]]) if spec["label_kind"] == "int" else np.array(spec["labels"])
    arrays = {"train_x": stored(x_train), "train_y": labels}
    if spec["test_ids"]:
        arrays["test_x"] = stored(x_test[spec["file_order"]])
        arrays["test_ids"] = np.array([spec["sample_ids"][row] for row in spec["file_order"]])
    else:
        arrays["test_x"] = stored(x_test)
    if spec["npz"]:
        np.savez(folder / "arrays.npz", **arrays)
    else:
        for key, value in arrays.items():
            np.save(folder / f"{key}.npy", value)


def expected_classes(labels: list[str]) -> list[str]:
    """The documented order: integer labels by value (then spelling), then the others as strings."""
    integers = sorted({label for label in labels if INTEGER.fullmatch(label)}, key=lambda label: (int(label), label))
    others = sorted({label for label in labels if not INTEGER.fullmatch(label)})
    return integers + others


@FILE_SETTINGS
@given(spec=competitions())
def test_well_formed_competitions_round_trip(spec):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "competition"
        write_competition(folder, spec)
        competition = load_competition(folder)

    assert competition.layout == spec["layout"]
    np.testing.assert_array_equal(competition.x_train, spec["x_train"])
    # The sample submission's ids (its order) pick the test images; without ids the rows are in that order.
    np.testing.assert_array_equal(competition.x_test, spec["x_test"])
    assert competition.classes == expected_classes(spec["labels"])
    assert [competition.classes[index] for index in competition.y_train] == spec["labels"]
    assert competition.test_ids == spec["sample_ids"]
    assert (competition.id_column, competition.label_column) == (spec["id_column"], spec["label_column"])


# (b) Corrupted CSV competitions: a clean load or one PipelineError -------------------------------------------
def clean_csv_competition(folder: Path, with_test_ids: bool, spaced: bool = False) -> None:
    """3 classes, 4x4 grey, 12 training and 4 test images; test ids in another order than the sample's. With
    ``spaced``, each image's pixels are one quoted column of numbers separated by spaces (FER2013's)."""
    rng = np.random.default_rng(7)
    folder.mkdir()
    pixels = "pixels" if spaced else ",".join(f"pixel{i}" for i in range(16))

    def cells() -> str:
        values = list(map(str, rng.integers(0, 256, 16)))
        return '"' + " ".join(values) + '"' if spaced else ",".join(values)

    labels = [0, 1, 2] * 4
    (folder / "train.csv").write_text(f"label,{pixels}\n" + "".join(f"{label},{cells()}\n" for label in labels))
    order = [3, 1, 4, 2]
    if with_test_ids:
        rows = [f"{i},{cells()}" for i in order]
        (folder / "test.csv").write_text(f"ImageId,{pixels}\n" + "\n".join(rows) + "\n")
    else:
        rows = [cells() for _ in order]
        (folder / "test.csv").write_text(f"{pixels}\n" + "\n".join(rows) + "\n")
    (folder / "sample_submission.csv").write_text("ImageId,Label\n" + "".join(f"{i},0\n" for i in range(1, 5)))


CELL_TEXT = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "None", "-1", "256", "1e30", "99999999999999999999999", "3.5", '"',
                     '"a,b"', "x", "\t", ";", ",", "\r", "0x1F", "inf", "-inf", "\ufeff", "１"]),
    st.text(max_size=4),
)


@st.composite
def corruption(draw, data: bytes):
    """One random edit of a CSV file's bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete cell", "replace cell", "drop line",
                                 "repeat line"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if kind in ("insert", "flip"):
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    lines = data.split(b"\n")
    row = draw(st.integers(0, len(lines) - 1))
    if kind == "drop line":
        return b"\n".join(lines[:row] + lines[row + 1:])
    if kind == "repeat line":
        return b"\n".join(lines[: row + 1] + lines[row:])
    fields = lines[row].split(b",")
    column = draw(st.integers(0, len(fields) - 1))
    if kind == "delete cell":
        del fields[column]
    else:
        fields[column] = draw(CELL_TEXT).encode("utf-8")
    lines[row] = b",".join(fields)
    return b"\n".join(lines)


def corrupt_at_random(folder: Path, names: list[str], data) -> None:
    """One to three random edits, each of one of ``names`` (relative to ``folder``)."""
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        target = folder / data.draw(st.sampled_from(names), label="file")
        target.write_bytes(data.draw(corruption(target.read_bytes()), label=f"corrupted {target.name}"))


def assert_one_line_naming(error: PipelineError, folder: Path) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(str(folder)), message
    # --hypothesis-show-statistics lists how often each kind of refusal (and a clean load) came up.
    event("refused: " + re.sub(r"'[^']*'|\d+|\(.*", "_", message[len(str(folder)) + 1:])[:60])


@FILE_SETTINGS
@given(with_test_ids=st.booleans(), spaced=st.booleans(), data=st.data())
def test_corrupted_csv_competitions_load_or_fail_with_one_clear_line(with_test_ids, spaced, data):
    with tempfile.TemporaryDirectory() as scratch:
        folder, cache = Path(scratch) / "competition", Path(scratch) / "cache"
        clean_csv_competition(folder, with_test_ids, spaced)
        corrupt_at_random(folder, ["train.csv", "test.csv", "sample_submission.csv"], data)
        try:
            competition = load_competition(folder, cache_dir=cache)
        except PipelineError as error:
            assert_one_line_naming(error, folder)
            assert not cache.exists() or not any(cache.iterdir()), "a refused folder left a cache file"
            return
    event("loads")
    assert competition.x_train.dtype == np.uint8 and competition.x_train.ndim == 4
    assert len(competition.y_train) == len(competition.x_train)
    assert len(competition.x_test) == len(competition.test_ids) == len(set(competition.test_ids))
    assert len(competition.classes) >= 2 and 0 <= competition.y_train.min() and \
        competition.y_train.max() < len(competition.classes)
    # Every class has an image; a class of one trains unvalidated, beside at least two the split can stratify.
    counts = np.bincount(competition.y_train, minlength=len(competition.classes))
    assert counts.min() >= 1 and (counts >= 2).sum() >= 2


# (c) The submission validator against an oracle ------------------------------------------------------------
ANY_TEXT = st.text(min_size=1, max_size=6)


@st.composite
def samples(draw):
    ids = draw(st.lists(ANY_TEXT, min_size=1, max_size=8, unique=True))
    id_column, label_column = draw(st.lists(ANY_TEXT, min_size=2, max_size=2, unique=True))
    classes = draw(st.lists(ANY_TEXT, min_size=2, max_size=4, unique=True))
    placeholder = draw(st.one_of(st.sampled_from(classes), ANY_TEXT))  # a sample's labels are placeholders
    sample = pd.DataFrame({id_column: ids, label_column: [placeholder] * len(ids)}, dtype=object)
    return sample, classes


MUTATIONS = ["shuffle", "drop row", "repeat row", "new id", "existing id", "id as number", "wrong label",
             "extra column", "drop column", "rename column", "swap columns"]


@st.composite
def derived_tables(draw, sample: pd.DataFrame, classes: list[str]):
    id_column, label_column = sample.columns
    rows = [[test_id, draw(st.sampled_from(classes))] for test_id in sample[id_column]]
    columns = [id_column, label_column]
    applied = draw(st.lists(st.sampled_from(MUTATIONS), max_size=3))
    for mutation in applied:
        if not rows and mutation not in ("extra column", "drop column", "rename column", "swap columns"):
            continue
        at = draw(st.integers(0, max(len(rows) - 1, 0)))
        if mutation == "shuffle":
            rows = [rows[k] for k in draw(st.permutations(range(len(rows))))]
        elif mutation == "drop row":
            del rows[at]
        elif mutation == "repeat row":
            rows.insert(at, list(rows[at]))
        elif mutation in ("new id", "existing id", "id as number", "wrong label"):
            column = 1 if mutation == "wrong label" else 0
            if column >= len(columns):
                continue
            if mutation == "existing id":
                value = draw(st.sampled_from(list(sample[id_column])))
            elif mutation == "id as number":
                value = draw(st.integers(0, 9))
            else:
                value = draw(ANY_TEXT)
            rows[at][column] = value
        elif mutation == "extra column":
            columns.append(draw(st.one_of(ANY_TEXT, st.sampled_from([id_column, label_column]))))
            for row in rows:
                row.append(draw(ANY_TEXT))
        elif mutation == "drop column" and columns:
            dropped = draw(st.integers(0, len(columns) - 1))
            del columns[dropped]
            for row in rows:
                del row[dropped]
        elif mutation == "rename column" and columns:
            columns[draw(st.integers(0, len(columns) - 1))] = draw(ANY_TEXT)
        elif mutation == "swap columns" and len(columns) >= 2:
            columns[:2] = columns[1::-1]
            for row in rows:
                row[:2] = row[1::-1]
    return pd.DataFrame(rows, columns=columns, dtype=object), applied


def kaggle_accepts(table: pd.DataFrame, sample: pd.DataFrame, classes: list[str]) -> bool:
    """Kaggle's rules in plain Python: the sample's header, its ids once each, every label a class."""
    if [name for name in table.columns] != [name for name in sample.columns]:
        return False
    ids = [row[0] for row in table.itertuples(index=False)]
    labels = [row[1] for row in table.itertuples(index=False)]
    sample_ids = list(sample.iloc[:, 0])
    return (len(ids) == len(sample_ids) and len(set(ids)) == len(ids) and set(ids) == set(sample_ids)
            and all(label in classes for label in labels))


@settings(max_examples=max(300, EXAMPLES), deadline=None)
@given(drawn=samples(), data=st.data())
def test_validator_accepts_exactly_the_valid_tables(drawn, data):
    sample, classes = drawn
    table, applied = data.draw(derived_tables(sample, classes), label="table")
    valid = kaggle_accepts(table, sample, classes)
    event("valid" if valid else "invalid")
    try:
        validate_submission(table, sample, classes, "submission.csv")
    except PipelineError as error:
        assert not valid, f"valid table refused after {applied}: {error}"
        message = str(error)
        assert message.startswith("submission.csv: ") and "\n" not in message, message
    else:
        assert valid, f"invalid table accepted after {applied}:\n{table}"


def test_the_oracle_agrees_on_a_known_case():
    # A valid table in another row order passes; the same with one label that is not a class does not.
    sample = pd.DataFrame({"id": ["3", "1", "2"], "label": ["cat"] * 3})
    table = pd.DataFrame({"id": ["1", "2", "3"], "label": ["dog", "cat", "frog"]})
    validate_submission(table, sample, ["cat", "dog", "frog"], "s.csv")
    assert kaggle_accepts(table, sample, ["cat", "dog", "frog"])
    assert not kaggle_accepts(table.assign(label=["dog", "cat", "horse"]), sample, ["cat", "dog", "frog"])


# (b') JSON records and TFRecords corrupted at random: the same promise as for CSVs -----------------------------
def _clean_record_folders() -> dict[str, dict[str, bytes]]:
    """The files of a small iceberg (json) and a small flowers (tfrecords) competition, made once."""
    import test_json_layout
    import test_tfrecords_layout

    made = {}
    with tempfile.TemporaryDirectory() as scratch:
        json_folder = test_json_layout.write_iceberg(Path(scratch) / "json", train_count=8, test_count=3)
        tfrecords_folder = Path(scratch) / "tfrecords"
        test_tfrecords_layout.write_petals(tfrecords_folder, sizes=("64x64",))
        for name, folder in (("json", json_folder), ("tfrecords", tfrecords_folder)):
            made[name] = {str(path.relative_to(folder)): path.read_bytes()
                          for path in sorted(folder.rglob("*")) if path.is_file()}
    return made


_RECORD_FOLDERS: dict = {}


@FILE_SETTINGS
@given(layout=st.sampled_from(["json", "tfrecords"]), data=st.data())
def test_corrupted_json_and_tfrecord_competitions_load_or_fail_with_one_clear_line(layout, data):
    if not _RECORD_FOLDERS:
        _RECORD_FOLDERS.update(_clean_record_folders())
    files = _RECORD_FOLDERS[layout]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "competition"
        for relative, content in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(content)
        corrupt_at_random(folder, sorted(name for name in files if not name.endswith(".csv")), data)
        try:
            competition = load_competition(folder, write_cache=False)
        except PipelineError as error:
            assert_one_line_naming(error, folder)
            return
    event("loads")
    assert competition.x_train.dtype == np.uint8 and competition.x_train.ndim == 4
    assert len(competition.y_train) == len(competition.x_train)
    assert len(competition.x_test) == len(competition.test_ids)


def _clean_images() -> dict[str, bytes]:
    """One small image of every format the loader reads, 8- and 16-bit, compressed and not."""
    import io

    from PIL import Image

    rng = np.random.default_rng(11)
    colour = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 4096, (12, 10), dtype=np.uint16))
    made = {}
    for name, image, fmt, options in (("a.png", colour, "PNG", {}), ("b.jpg", colour, "JPEG", {}),
                                      ("c.tif", colour, "TIFF", {"compression": "tiff_deflate"}),
                                      ("d.tiff", colour, "TIFF", {"compression": "tiff_lzw"}),
                                      ("e.bmp", colour, "BMP", {}), ("f.gif", colour, "GIF", {}),
                                      ("g.webp", colour, "WEBP", {}), ("h.jp2", colour, "JPEG2000", {}),
                                      ("i.avif", colour, "AVIF", {}), ("j.ppm", colour, "PPM", {}),
                                      ("k.png", wide, "PNG", {}), ("l.tif", wide, "TIFF", {})):
        encoded = io.BytesIO()
        image.save(encoded, fmt, **options)
        made[name] = encoded.getvalue()
    return made


_IMAGES: dict[str, bytes] = {}


@FILE_SETTINGS
@given(name=st.sampled_from(["a.png", "b.jpg", "c.tif", "d.tiff", "e.bmp", "f.gif", "g.webp", "h.jp2", "i.avif",
                             "j.ppm", "k.png", "l.tif"]), data=st.data())
def test_corrupted_image_files_read_or_fail_with_one_clear_line_and_no_warning(name, data):
    """Random damage to an image file of every format: its pixels, or one line naming it (never another
    exception: the AVIF decoder raised RuntimeError until 2026-12-06), and no Python warning escapes (Pillow's
    "Corrupt EXIF data"). libtiff's own stderr prints are checked by test_images in a fresh process."""
    import warnings

    from kaggle_pipeline.data.images import read_header, read_image

    if not _IMAGES:
        _IMAGES.update(_clean_images())
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(data.draw(corruption(_IMAGES[name]), label="corrupted"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                read_header(path)
                pixels = read_image(path, (8, 8))
            except PipelineError as error:
                assert_one_line_naming(error, path)
                return
    event("reads")
    assert pixels.shape[:2] == (8, 8)
