"""A corpus of malformed competition folders: each is refused with one line naming the file and the problem.

Every case is made on the fly from a small well-formed competition (24 training images of 4x4 pixels, 6 test
images) in one of the three layouts, broken in one way. A refused case must, through the real command line:
exit with status 2, print exactly one line ``error: <file>: <problem>`` and no traceback, and leave the models
and submissions folders exactly as they were (the stage is ``submit``: like every stage it parses the data
first, and if the data did parse it would stop at the missing store instead of training anything). Most cases
call ``kaggle_pipeline.cli.main`` in-process; a handful run ``python -m kaggle_pipeline`` in a subprocess.

Some inputs that look odd are accepted on purpose and must load like the clean folder:

- a UTF-8 byte-order mark, ``;``- or tab-separated files (the header line says which, unambiguously), CRLF
  line ends; pixels in one column of numbers separated by spaces (FER2013's ``emotion,pixels``);
- mixed grey and RGB images (the set becomes RGB), RGBA/palette PNGs (made RGB);
- a non-image file (``notes.txt``) in an image folder: only ``.png``/``.jpg``/``.jpeg`` are images;
- labels in the sample submission that are not classes. Decision: on Kaggle the sample's label column is a
  placeholder (Digit Recognizer's says 0 everywhere, CIFAR-10's says ``cat``; some are empty), so the loader
  uses only the sample's header, ids and order, and never its labels. Refusing them would refuse real
  competitions; the submission's own labels are checked against the classes by ``validate_submission``.
- training labels spelled ``None``/``NA`` (labels, not missing values) and zero-padded ids and labels,
  kept exactly as written.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, write_csv_competition, write_image_competition, write_npy_competition

from kaggle_pipeline import cli
from kaggle_pipeline.data import answer_key_labels, load_competition, read_sample_submission
from kaggle_pipeline.submit import render_submission, validate_submission

SMALL = {"count": 24, "test_count": 6, "side": 4}


# Small folders, and the ways to break them --------------------------------------------------------------
def csv_folder(folder: Path, **options) -> Path:
    return write_csv_competition(folder, **SMALL, **options)


def csv_folder_with_test_ids(folder: Path) -> Path:
    return write_csv_competition(folder, **SMALL, with_test_ids=True)


def spaced_pixels(folder: Path) -> None:
    """train.csv and test.csv rewritten with their pixels in one column of numbers separated by spaces (FER2013's
    ``emotion,pixels``): the label column (train only), then ``pixels``."""
    for name, labelled in (("train.csv", True), ("test.csv", False)):
        _, *rows = lines(folder / name)
        cells = [row.split(",") for row in rows]
        if labelled:
            write_lines(folder / name, ["label,pixels"] + [f'{row[0]},"{" ".join(row[1:])}"' for row in cells])
        else:
            write_lines(folder / name, ["pixels"] + [f'"{" ".join(row)}"' for row in cells])


def csv_folder_spaced(folder: Path) -> Path:
    folder = csv_folder(folder)
    spaced_pixels(folder)
    return folder


def image_folder(folder: Path) -> Path:
    return write_image_competition(folder, **SMALL)


def npy_folder(folder: Path) -> Path:
    return write_npy_competition(folder, **SMALL)


def npz_folder(folder: Path) -> Path:
    return write_npy_competition(folder, **SMALL, as_npz=True)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def edit_row(path: Path, row: int, change) -> None:
    """Apply ``change`` to the fields of line ``row`` (0 is the header)."""
    rows = lines(path)
    rows[row] = ",".join(change(rows[row].split(",")))
    write_lines(path, rows)


def set_field(path: Path, row: int, column: int, value: str) -> None:
    def change(fields):
        fields[column] = value
        return fields

    edit_row(path, row, change)


def keep_rows(path: Path, count: int) -> None:
    write_lines(path, lines(path)[: count + 1])


def relabel(path: Path, label_of) -> None:
    """Rewrite the label (first field) of every data row: ``label_of(row number from 0)``."""
    header, *rows = lines(path)
    write_lines(path, [header] + [label_of(number) + "," + row.split(",", 1)[1] for number, row in enumerate(rows)])


def save_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path)


def train_labels_of(folder: Path) -> list[str]:
    return [row.split(",")[0] for row in lines(folder / "train.csv")[1:]]


# Refused: (make, break, file named in the message (relative to the folder, "." for the folder), problem) -----
def _single_class(folder):
    relabel(folder / "train.csv", lambda row: "4")


def _blank_label(folder):
    set_field(folder / "train.csv", 3, 0, "  ")


def _huge_pixel(folder):
    set_field(folder / "train.csv", 2, 3, "99999999999999999999999")


def _duplicate_test_id(folder):
    first_id = lines(folder / "test.csv")[1].split(",")[0]
    set_field(folder / "test.csv", 2, 0, first_id)


def _test_id_not_in_sample(folder):
    rows = lines(folder / "test.csv")
    write_lines(folder / "test.csv", rows + ["999," + rows[1].split(",", 1)[1]])


def _extra_test_row_without_ids(folder):
    rows = lines(folder / "test.csv")
    write_lines(folder / "test.csv", rows + [rows[1]])


def _every_row_one_field_longer(folder):
    header, *rows = lines(folder / "train.csv")
    write_lines(folder / "train.csv", [header] + ["17," + row for row in rows])


def _latin1_labels(folder):
    path = folder / "trainLabels.csv"
    path.write_bytes(path.read_text().replace("cat", "chaté").encode("latin-1"))


def _truncated_png(folder):
    path = folder / "train" / "3.png"
    path.write_bytes(path.read_bytes()[:40])


def _second_image_for_test_id(folder):
    shutil.copy(folder / "test" / "25.png", folder / "test" / "25.jpg")


def _empty_train_label(folder):
    rows = lines(folder / "trainLabels.csv")
    rows[2] = rows[2].split(",")[0] + ","
    write_lines(folder / "trainLabels.csv", rows)


def _duplicate_label_id(folder):
    rows = lines(folder / "trainLabels.csv")
    rows[2] = "1,dog"
    write_lines(folder / "trainLabels.csv", rows)


def _images_single_class(folder):
    header, *rows = lines(folder / "trainLabels.csv")
    write_lines(folder / "trainLabels.csv", [header] + [row.split(",")[0] + ",cat" for row in rows])


def _empty_test_folder(folder):
    for path in (folder / "test").iterdir():
        path.unlink()


def _npy_replace(name, array, allow_pickle=False):
    return lambda folder: np.save(folder / name, array, allow_pickle=allow_pickle)


def _npy_nan_pixel(folder):
    x = np.load(folder / "train_x.npy").astype(np.float32)
    x[3, 1, 2] = np.nan
    np.save(folder / "train_x.npy", x)


def _npy_test_ids(ids):
    def corrupt(folder):
        np.save(folder / "test_ids.npy", np.array(ids))
        write_lines(folder / "sample_submission.csv", ["Id,Category"] + [f"{i},dog" for i in dict.fromkeys(ids)])

    return corrupt


def _npy_truncated(folder):
    path = folder / "train_x.npy"
    path.write_bytes(path.read_bytes()[:100])


def _npz_not_a_zip(folder):
    (folder / "arrays.npz").write_bytes(b"PK\x03\x04 not really a zip archive")


def relabel_column(path: Path, label: str | None) -> None:
    """Every data row's second field set to ``label``; None drops the column."""
    header, *rows = lines(path)
    if label is None:
        write_lines(path, [header.split(",")[0]] + [row.split(",")[0] for row in rows])
    else:
        write_lines(path, [header] + [row.split(",")[0] + "," + label for row in rows])


def _solution_class_columns_with_a_word(folder):
    header, *rows = lines(folder / "solution.csv")
    write_lines(folder / "solution.csv", ["id,cat,dog,frog"] + [row.split(",")[0] + ",1,0,0" for row in rows[:-1]]
                + [rows[-1].split(",")[0] + ",1,zero,0"])


REFUSED = {
    # csv layout
    "csv-missing-train": (csv_folder, lambda f: (f / "train.csv").unlink(), "train.csv", "file not found"),
    "csv-missing-test": (csv_folder, lambda f: (f / "test.csv").unlink(), "test.csv", "file not found"),
    "csv-missing-sample-submission": (csv_folder, lambda f: (f / "sample_submission.csv").unlink(), ".",
                                      "no sample submission"),
    "csv-train-is-a-folder": (csv_folder, lambda f: ((f / "train.csv").unlink(), (f / "train.csv").mkdir()),
                              "train.csv", "is a folder, not a regular file"),
    "csv-empty-train-file": (csv_folder, lambda f: (f / "train.csv").write_text(""), "train.csv",
                             "cannot parse CSV"),
    "csv-header-only-train": (csv_folder, lambda f: keep_rows(f / "train.csv", 0), "train.csv", "no rows"),
    "csv-empty-test": (csv_folder, lambda f: keep_rows(f / "test.csv", 0), "test.csv", "no rows"),
    "csv-ragged-row-too-long": (csv_folder, lambda f: edit_row(f / "train.csv", 3, lambda x: x + ["9"]), "train.csv",
                                "cannot parse CSV .*Expected 17 fields in line 4, saw 18"),
    "csv-ragged-row-too-short": (csv_folder, lambda f: edit_row(f / "train.csv", 3, lambda x: x[:-2]), "train.csv",
                                 "missing pixel value in column 'pixel14', row 4"),
    "csv-every-row-longer-than-header": (csv_folder, _every_row_one_field_longer, "train.csv",
                                         "the rows have more fields than the header's 17 columns"),
    "csv-unclosed-quote": (csv_folder, lambda f: set_field(f / "train.csv", 4, 2, '"12'), "train.csv",
                           "cannot parse CSV .*EOF inside string"),
    "csv-non-numeric-pixel": (csv_folder, lambda f: set_field(f / "train.csv", 2, 1, "x12"), "train.csv",
                              "non-numeric pixel value 'x12' in column 'pixel0', row 3"),
    "csv-nan-pixel": (csv_folder, lambda f: set_field(f / "test.csv", 5, 4, "NaN"), "test.csv",
                      "non-numeric pixel value 'NaN' in column 'pixel4', row 6"),
    "csv-empty-pixel": (csv_folder, lambda f: set_field(f / "train.csv", 6, 9, ""), "train.csv",
                        "missing pixel value in column 'pixel8', row 7"),
    "csv-pixel-above-255": (csv_folder, lambda f: set_field(f / "train.csv", 2, 5, "256"), "train.csv",
                            "pixel value 256 is outside 0..255"),
    "csv-negative-pixel": (csv_folder, lambda f: set_field(f / "test.csv", 2, 5, "-1"), "test.csv",
                           "pixel value -1 is outside 0..255"),
    "csv-pixel-beyond-int64": (csv_folder, _huge_pixel, "train.csv", r"pixel value 1e\+23 is outside 0..255"),
    "csv-wrong-pixel-count": (csv_folder, lambda f: write_lines(f / "train.csv", [
        ",".join(row.split(",")[:-1]) for row in lines(f / "train.csv")]), "train.csv",
                              "15 pixel columns is not a square grey"),
    "csv-test-pixel-count-differs": (csv_folder, lambda f: write_lines(f / "test.csv", [
        ",".join(row.split(",")[:-1]) for row in lines(f / "test.csv")]), "test.csv",
                                     "15 pixel columns, but train.csv has 16"),
    "csv-no-label-column": (csv_folder, lambda f: set_field(f / "train.csv", 0, 0, "kind"), "train.csv",
                            "no label column"),
    "csv-empty-label": (csv_folder, lambda f: set_field(f / "train.csv", 3, 0, ""), "train.csv",
                        "missing label in row 4"),
    "csv-blank-label": (csv_folder, _blank_label, "train.csv", r"row 4 \(counting the header, not blank lines\) has an empty label \(1 such\)"),
    "csv-single-class": (csv_folder, _single_class, "train.csv", r"single class \('4'\)"),
    "csv-duplicate-sample-ids": (csv_folder, lambda f: set_field(f / "sample_submission.csv", 3, 0, "1"),
                                 "sample_submission.csv", "duplicate id '1' in column 'ImageId'"),
    "csv-empty-sample-id": (csv_folder, lambda f: set_field(f / "sample_submission.csv", 2, 0, ""),
                            "sample_submission.csv", "empty id in column 'ImageId', row 3"),
    "csv-header-only-sample": (csv_folder, lambda f: keep_rows(f / "sample_submission.csv", 0),
                               "sample_submission.csv", "the sample submission has no rows"),
    "csv-sample-with-one-column": (csv_folder, lambda f: write_lines(f / "sample_submission.csv", [
        row.split(",")[0] for row in lines(f / "sample_submission.csv")]), "sample_submission.csv",
                                   "expected an id column and a label column"),
    "csv-sample-header-repeats-a-column": (csv_folder, lambda f: edit_row(f / "sample_submission.csv", 0,
                                                                          lambda x: ["Label", "Label"]),
                                           "sample_submission.csv", "column 'Label' appears more than once in the header"),
    "csv-ragged-sample": (csv_folder, lambda f: edit_row(f / "sample_submission.csv", 4, lambda x: x + ["x"]),
                          "sample_submission.csv", "cannot parse CSV .*Expected 2 fields in line 5, saw 3"),
    "csv-duplicate-test-ids": (csv_folder_with_test_ids, _duplicate_test_id, "test.csv", "duplicate test id"),
    "csv-test-id-not-in-sample": (csv_folder_with_test_ids, _test_id_not_in_sample, "test.csv",
                                  "test id '999' is not in sample_submission.csv"),
    "csv-more-test-rows-than-sample": (csv_folder, _extra_test_row_without_ids, "test.csv",
                                       "7 test images but sample_submission.csv has 6 rows"),
    # csv layout, pixels in one column separated by spaces (FER2013)
    "csv-spaced-pixels-row-short": (csv_folder_spaced, lambda f: edit_row(f / "train.csv", 4, lambda x: [
        x[0], x[1].rsplit(" ", 1)[0] + '"']), "train.csv", r"15 pixel values in column 'pixels', row 5, but 16 in row 2"),
    "csv-spaced-pixels-word": (csv_folder_spaced, lambda f: edit_row(f / "test.csv", 3, lambda x: [
        x[0].replace(" ", " x12 ", 1)]), "test.csv", r"non-numeric pixel value 'x12' in column 'pixels', row 4"),
    "csv-spaced-pixels-nan": (csv_folder_spaced, lambda f: edit_row(f / "train.csv", 2, lambda x: [
        x[0], x[1].replace(" ", " nan ", 1).rsplit(" ", 1)[0] + '"']), "train.csv",
                              r"non-numeric pixel value 'nan' in column 'pixels', row 3"),
    "csv-spaced-pixels-test-count-differs": (csv_folder_spaced, lambda f: write_lines(f / "test.csv", [
        lines(f / "test.csv")[0]] + [row.rsplit(" ", 1)[0] + '"' for row in lines(f / "test.csv")[1:]]), "test.csv",
                                             "15 pixel values per image, but train.csv has 16"),
    "csv-spaced-pixels-empty-cell": (csv_folder_spaced, lambda f: edit_row(f / "train.csv", 6, lambda x: [x[0], ""]),
                                     "train.csv", "missing pixel value in column 'pixels', row 7"),
    # images layout
    "images-missing-train-folder": (image_folder, lambda f: shutil.rmtree(f / "train"), "train",
                                    "image folder not found"),
    "images-missing-labels-csv": (image_folder, lambda f: (f / "trainLabels.csv").unlink(), ".", "no labels CSV"),
    "images-missing-sample-submission": (image_folder, lambda f: (f / "sampleSubmission.csv").unlink(), ".",
                                         "no sample submission"),
    "images-empty-test": (image_folder, _empty_test_folder, "test", "no test images"),
    "images-labels-not-utf8": (image_folder, _latin1_labels, "trainLabels.csv",
                               r"not UTF-8 text \(line 5: '4,chat\\xe9'\); a spreadsheet saved it in another encoding: "
                               r"save it as \"CSV UTF-8\" \(Excel\)"),
    "csv-train-not-utf8": (csv_folder, lambda f: (f / "train.csv").write_bytes((f / "train.csv").read_bytes().replace(
        b"label", "labelé".encode("cp1252"), 1)), "train.csv", r"not UTF-8 text \(line 1: 'label\\xe9,pixel0,pixel1,"),
    "csv-sample-not-utf8": (csv_folder, lambda f: (f / "sample_submission.csv").write_bytes(
        (f / "sample_submission.csv").read_bytes() + "99,Café\r\n".encode("cp1252")), "sample_submission.csv",
        r"not UTF-8 text \(line \d+: '99,Caf\\xe9'\)"),
    "images-labels-utf16-cut-short": (image_folder, lambda f: (f / "trainLabels.csv").write_bytes(
        (f / "trainLabels.csv").read_text().encode("utf-16")[:-1]), "trainLabels.csv", "starts as UTF-16 but"),
    "images-truncated-png": (image_folder, _truncated_png, "train/3.png", "cannot read image"),
    "images-empty-file": (image_folder, lambda f: (f / "test" / "27.png").write_bytes(b""), "test/27.png",
                          r"cannot read image \(empty: 0 bytes\)"),
    "images-text-file-named-png": (image_folder, lambda f: (f / "test" / "26.png").write_text("not a picture\n"),
                                   "test/26.png", "cannot read image"),
    "images-duplicate-test-id": (image_folder, _second_image_for_test_id, "sampleSubmission.csv",
                                 "id '25' matches more than one image in .*test \\(25.jpg, 25.png\\)"),
    "images-test-image-not-in-sample": (image_folder, lambda f: shutil.copy(f / "test" / "25.png",
                                                                            f / "test" / "999.png"),
                                        "test/999.png", "test image is not in sampleSubmission.csv"),
    "images-labelled-id-without-image": (image_folder, lambda f: (f / "train" / "5.png").unlink(),
                                         "trainLabels.csv", "id '5' \\(column 'id'\\) has no image"),
    "images-duplicate-label-ids": (image_folder, _duplicate_label_id, "trainLabels.csv", "duplicate id '1'"),
    "images-empty-label": (image_folder, _empty_train_label, "trainLabels.csv", r"row 3 \(counting the header, not blank lines\) has an empty label \(1 such\)"),
    "images-single-class": (image_folder, _images_single_class, "trainLabels.csv", r"single class \('cat'\)"),
    # The answer key (solution.csv) only scores the submission, but one that cannot would stop a job at its end.
    "images-solution-answers-are-not-classes": (image_folder, lambda f: relabel_column(f / "solution.csv", "1"),
                                                "solution.csv", r"the answer '1' for test id '25' is not a class of "
                                                r"the training data \(cat, dog, frog\)"),
    "images-solution-without-an-answer": (image_folder, lambda f: keep_rows(f / "solution.csv", 5), "solution.csv",
                                          r"no answer for test id '30' \(1 of the sample's 6 ids have none\)"),
    "images-solution-ids-only": (image_folder, lambda f: relabel_column(f / "solution.csv", None), "solution.csv",
                                 "expected an id column and a label column"),
    "images-solution-class-column-word": (image_folder, _solution_class_columns_with_a_word, "solution.csv",
                                          "a class column holds a cell that is not a number"),
    "csv-solution-header-only": (csv_folder, lambda f: keep_rows(f / "solution.csv", 0), "solution.csv",
                                 r"no answer for test id '1' \(6 of the sample's 6 ids have none\)"),
    # npy layout
    "npy-missing-train-x": (npy_folder, lambda f: (f / "train_x.npy").unlink(), ".", "no train_x.npy"),
    "npy-missing-sample-submission": (npy_folder, lambda f: (f / "sample_submission.csv").unlink(), ".",
                                      "no sample submission"),
    "npy-empty-test": (npy_folder, _npy_replace("test_x.npy", np.zeros((0, 4, 4), np.uint8)), "test_x.npy",
                       "0 test images but sample_submission.csv has 6 rows"),
    "npy-no-training-images": (npy_folder, lambda f: (_npy_replace("train_x.npy", np.zeros((0, 4, 4), np.uint8))(f),
                                                      _npy_replace("train_y.npy", np.array([], dtype=str))(f)),
                               "train_x.npy", "no training images"),
    "npy-object-dtype": (npy_folder, _npy_replace("train_x.npy", np.full((24, 4, 4), None, dtype=object), True),
                         "train_x.npy", "cannot load array"),
    "npy-string-pixels": (npy_folder, _npy_replace("train_x.npy", np.full((24, 4, 4), "7")), "train_x.npy",
                          "pixel values must be numbers, found dtype <U1"),
    "npy-complex-pixels": (npy_folder, _npy_replace("test_x.npy", np.zeros((6, 4, 4), complex)), "test_x.npy",
                           "pixel values must be numbers, found dtype complex128"),
    "npy-rank-1": (npy_folder, _npy_replace("train_x.npy", np.zeros(24, np.uint8)), "train_x.npy",
                   r"expected images shaped .* found \(24,\)"),
    "npy-rank-5": (npy_folder, _npy_replace("train_x.npy", np.zeros((24, 4, 4, 1, 1), np.uint8)), "train_x.npy",
                   r"expected images shaped .* found \(24, 4, 4, 1, 1\)"),
    "npy-two-channels": (npy_folder, _npy_replace("train_x.npy", np.zeros((24, 4, 4, 2), np.uint8)), "train_x.npy",
                         r"expected images shaped .* found \(24, 4, 4, 2\)"),
    "npy-zero-pixels": (npy_folder, lambda f: (_npy_replace("train_x.npy", np.zeros((24, 0), np.uint8))(f),
                                               _npy_replace("test_x.npy", np.zeros((6, 0), np.uint8))(f)),
                        "train_x.npy", "images have no pixels"),
    "npy-nan-pixel": (npy_folder, _npy_nan_pixel, "train_x.npy", r"missing \(NaN\) pixel value in image 3"),
    "npy-pixel-out-of-range": (npy_folder, _npy_replace("test_x.npy", np.full((6, 4, 4), 300, np.int16)),
                               "test_x.npy", "pixel value 300 is outside 0..255"),
    "npy-test-shape-differs": (npy_folder, _npy_replace("test_x.npy", np.zeros((6, 5, 5), np.uint8)), "test_x.npy",
                               "test images are"),
    "npy-wrong-label-count": (npy_folder, _npy_replace("train_y.npy", np.array(["cat", "dog"] * 5)), "train_y.npy",
                              "expected 24 labels in one dimension"),
    "npy-fractional-labels": (npy_folder, _npy_replace("train_y.npy", np.arange(24) / 2), "train_y.npy",
                              "labels must be integers or strings, found dtype float64"),
    "npy-truncated-file": (npy_folder, _npy_truncated, "train_x.npy", "cannot load array"),
    "npz-not-a-zip": (npz_folder, _npz_not_a_zip, "arrays.npz", "cannot load array .*not a zip file"),
    "npy-duplicate-test-ids": (npy_folder, _npy_test_ids([f"t{i}" for i in (0, 1, 2, 3, 4, 4)]), "test_x.npy",
                               "duplicate test id 't4'"),
    "npy-two-names-for-one-array": (npy_folder, lambda f: shutil.copy(f / "train_x.npy", f / "X_train.npy"), ".",
                                    r"X_train \(X_train.npy\), train_x \(train_x.npy\) could each be train_x; keep one"),
    "npy-more-test-ids-than-images": (npy_folder, _npy_test_ids([f"t{i}" for i in range(7)]), "test_x.npy",
                                      "7 test ids for 6 test images"),
}


def snapshot(*folders: Path) -> dict:
    """Every file and folder under ``folders``, with each file's content hash and mtime."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_dir():
                state[str(path)] = "dir"
            else:
                state[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return state


def workspace_around(tmp_path: Path) -> tuple[Path, Path]:
    """models/ and submissions/ with unrelated content that a refused run must leave alone, and the store folder
    the competition (named "bad") would use."""
    models, submissions = tmp_path / "models", tmp_path / "submissions"
    (models / "other").mkdir(parents=True)
    (models / "other" / "store.json").write_text('{"fingerprint": "0000"}\n')
    (models / "bad").mkdir()
    (submissions / "other").mkdir(parents=True)
    (submissions / "other" / "latest.csv").write_text("id,label\n1,cat\n")
    return models, submissions


@pytest.fixture
def broken(tmp_path, request):
    """(folder, file named, problem, models, submissions): a broken competition beside populated output folders."""
    make, corrupt, named, problem = REFUSED[request.param]
    folder = make(tmp_path / "bad")
    corrupt(folder)
    models, submissions = workspace_around(tmp_path)
    return folder, folder / named if named != "." else folder, problem, models, submissions


def submit_arguments(folder, models, submissions):
    return ["submit", "--data", str(folder), "--models-dir", str(models), "--submissions-dir", str(submissions)]


def assert_one_clear_line(stderr: str, named: Path, problem: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    line = stderr.rstrip("\n")
    assert line.startswith(f"error: {named}: "), line
    assert re.search(problem, line), f"{problem!r} not in {line!r}"


@pytest.mark.parametrize("broken", sorted(REFUSED), indirect=True)
def test_refused_in_one_line_and_nothing_written(broken, capsys, restore_signals):
    folder, named, problem, models, submissions = broken
    before = snapshot(models, submissions)
    status = cli.main(submit_arguments(folder, models, submissions))
    captured = capsys.readouterr()
    assert status == 2, captured
    assert_one_clear_line(captured.err, named, problem)
    assert snapshot(models, submissions) == before


def test_an_answer_key_that_cannot_score_stops_a_search_before_it_trains(tmp_path, capsys, restore_signals):
    folder = image_folder(tmp_path / "bad")
    relabel_column(folder / "solution.csv", "1")
    models, submissions = workspace_around(tmp_path)
    before = snapshot(models, submissions)
    status = cli.main(["search", "--data", str(folder), "--models-dir", str(models)])
    captured = capsys.readouterr()
    assert status == 2, captured
    assert_one_clear_line(captured.err, folder / "solution.csv", "the answer '1' for test id '25' is not a class")
    assert snapshot(models, submissions) == before


THROUGH_A_SUBPROCESS = ["csv-non-numeric-pixel", "csv-single-class", "images-truncated-png",
                        "npy-complex-pixels", "npz-not-a-zip"]


@pytest.mark.parametrize("broken", THROUGH_A_SUBPROCESS, indirect=True)
def test_refused_by_the_real_command_line(broken, tmp_path):
    folder, named, problem, models, submissions = broken
    before = snapshot(models, submissions)
    result = run_cli(*submit_arguments(folder, models, submissions), cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    assert_one_clear_line(result.stderr, named, problem)
    assert snapshot(models, submissions) == before


def test_the_corpus_covers_every_layout_and_enough_cases():
    assert len(REFUSED) >= 20
    assert {name.split("-")[0] for name in REFUSED} == {"csv", "images", "npy", "npz"}


# Accepted: each loads exactly like the clean folder it was made from --------------------------------------
def _bom(folder):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (folder / name).write_bytes(b"\xef\xbb\xbf" + (folder / name).read_bytes())


def _separated_by(separator):
    def convert(folder):
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            (folder / name).write_text((folder / name).read_text().replace(",", separator))

    return convert


def _crlf(folder):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (folder / name).write_bytes((folder / name).read_bytes().replace(b"\n", b"\r\n"))


def _sample_labels(label):
    def convert(folder):
        sample = next(folder.glob("sample*ubmission.csv"))
        header, *rows = lines(sample)
        write_lines(sample, [header] + [row.split(",")[0] + "," + label for row in rows])

    return convert


def _utf16(big_endian=False, separator=","):
    # Excel's "Unicode Text": UTF-16 with its byte order mark, tab-separated; the sample too, big-endian.
    def convert(folder):
        for path in (folder / "trainLabels.csv", folder / "sampleSubmission.csv"):
            text = path.read_text().replace(",", separator)
            path.write_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be") if big_endian else text.encode("utf-16"))

    return convert


def _pandas_index(folder):
    # A labels table a notebook saved with to_csv and no index=False: an unnamed first column of row numbers 0..n-1
    # (no image is named 0.png). Its columns are named so that only their places tell id from label.
    _, *rows = lines(folder / "trainLabels.csv")
    write_lines(folder / "trainLabels.csv", [",name,kind"] + [f"{number},{row}" for number, row in enumerate(rows)])


def _unnamed_ids_that_are_row_numbers(folder):
    # Ids 1..n with no header name, beside a fold column: they name the images (1.png ...), so they are the ids.
    _, *rows = lines(folder / "trainLabels.csv")
    write_lines(folder / "trainLabels.csv", [",label,fold"] + [f"{row},{number % 5}" for number, row in enumerate(rows)])


def _renamed_npz_members(names: dict[str, str]):
    def convert(folder):
        with np.load(folder / "arrays.npz") as arrays:
            renamed = {names.get(key, key): arrays[key] for key in arrays.files}
        np.savez(folder / "arrays.npz", **renamed)

    return convert


def _notes_in_image_folders(folder):
    (folder / "train" / "notes.txt").write_text("not an image\n")
    (folder / "test" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")


ACCEPTED = {
    "csv-utf8-bom": (csv_folder, _bom),
    "csv-semicolon-separated": (csv_folder, _separated_by(";")),
    "csv-tab-separated": (csv_folder, _separated_by("\t")),
    "csv-crlf-line-ends": (csv_folder, _crlf),
    "csv-pixels-in-one-column-separated-by-spaces": (csv_folder, spaced_pixels),
    "csv-pixels-separated-by-spaces-and-tabs": (csv_folder, lambda f: (spaced_pixels(f), _separated_by("\t")(f))),
    "csv-test-ids-with-bom-and-semicolons": (csv_folder_with_test_ids,
                                             lambda f: (_separated_by(";")(f), _bom(f))),
    "csv-sample-labels-not-classes": (csv_folder, _sample_labels("horse")),
    "csv-sample-labels-empty": (csv_folder, _sample_labels("")),
    "images-sample-labels-not-classes": (image_folder, _sample_labels("not-a-class")),
    "images-non-image-files-ignored": (image_folder, _notes_in_image_folders),
    "images-labels-with-pandas-index": (image_folder, _pandas_index),
    "images-labels-unnamed-ids-that-are-row-numbers": (image_folder, _unnamed_ids_that_are_row_numbers),
    "images-csvs-utf16-tab-separated": (image_folder, _utf16(separator="\t")),
    "images-csvs-utf16-big-endian": (image_folder, _utf16(big_endian=True)),
    "npy-sample-labels-not-classes": (npy_folder, _sample_labels("42")),
    "npy-keras-names": (npy_folder, lambda f: [(f / f"{old}.npy").rename(f / f"{new}.npy") for old, new in (
        ("train_x", "x_train"), ("train_y", "y_train"), ("test_x", "X_test"))]),
    "npz-tensorflow-datasets-names": (npz_folder, _renamed_npz_members({"train_x": "train_images",
                                                                       "train_y": "train_labels",
                                                                       "test_x": "test_images"})),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_input_loads_like_the_clean_folder(tmp_path, case):
    make, convert = ACCEPTED[case]
    clean = load_competition(make(tmp_path / "clean"))
    folder = make(tmp_path / "odd")
    convert(folder)
    odd = load_competition(folder)
    np.testing.assert_array_equal(odd.x_train, clean.x_train)
    np.testing.assert_array_equal(odd.y_train, clean.y_train)
    np.testing.assert_array_equal(odd.x_test, clean.x_test)
    assert (odd.classes, odd.test_ids) == (clean.classes, clean.test_ids)
    assert (odd.id_column, odd.label_column) == (clean.id_column, clean.label_column)
    # The submission made from it passes Kaggle's rules, whatever the sample's placeholder labels say.
    sample = read_sample_submission(odd.sample_submission)
    text = render_submission(odd, np.arange(len(odd.x_test)) % 3)
    rendered = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    validate_submission(rendered, sample, odd.classes, "rendered")


def test_mixed_grey_and_rgb_images_load_as_rgb(tmp_path):
    folder = image_folder(tmp_path / "mixed")
    save_png(folder / "train" / "2.png", np.full((4, 4), 77, dtype=np.uint8))  # grey
    save_png(folder / "test" / "26.png", np.full((4, 4, 4), 200, dtype=np.uint8))  # RGBA
    competition = load_competition(folder)
    assert competition.image_shape == (4, 4, 3)
    assert (competition.x_train[1] == 77).all()
    assert (competition.x_test[competition.test_ids.index("26")] == 200).all()


def test_labels_that_look_missing_or_numeric_are_kept_as_written(tmp_path):
    folder = csv_folder(tmp_path / "spelling")
    spelled = {"0": "None", "1": "NA", "2": "007"}
    original = train_labels_of(folder)
    relabel(folder / "train.csv", lambda row: spelled[original[row]])
    competition = load_competition(folder)
    # Integers first in numeric order, then the other labels.
    assert competition.classes == ["007", "NA", "None"]
    assert [competition.classes[index] for index in competition.y_train] == [spelled[label] for label in original]


@pytest.mark.parametrize("placeholder", ["2", "2.0"])
def test_whole_labels_written_as_floats_are_spelled_like_the_sample(placeholder, tmp_path):
    """A label column pandas wrote as floats (0.0, 1.0, 2.0): where the sample's placeholders are integers the
    classes are spelled 0, 1, 2, so the submission and the answer key (0, 1, 2) agree; where they are floats too,
    the labels are kept as written."""
    folder = csv_folder(tmp_path / "floats")
    original = train_labels_of(folder)
    relabel(folder / "train.csv", lambda row: f"{original[row]}.0")
    header, *rows = lines(folder / "sample_submission.csv")
    write_lines(folder / "sample_submission.csv", [header] + [row.split(",")[0] + "," + placeholder for row in rows])
    competition = load_competition(folder)
    spelled = (lambda label: label) if placeholder == "2" else (lambda label: f"{label}.0")
    assert competition.classes == [spelled(label) for label in ("0", "1", "2")]
    assert [competition.classes[index] for index in competition.y_train] == [spelled(label) for label in original]
    if placeholder == "2":  # the answer key's 0/1/2 name these classes
        assert answer_key_labels(competition) is not None


def test_zero_padded_test_ids_match_the_sample_as_written(tmp_path):
    folder = csv_folder_with_test_ids(tmp_path / "padded")
    reference = load_competition(csv_folder_with_test_ids(tmp_path / "plain"))
    for name in ("test.csv", "sample_submission.csv"):
        header, *rows = lines(folder / name)
        write_lines(folder / name, [header] + ["00" + row for row in rows])
    competition = load_competition(folder)
    assert competition.test_ids == ["00" + test_id for test_id in reference.test_ids]
    np.testing.assert_array_equal(competition.x_test, reference.x_test)
