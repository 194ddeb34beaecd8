"""CSV tables of a competition: the sample submission (header as written), submission-shaped tables, column
lookup, and the test images put in the sample submission's order."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import entries, is_dir, is_sample_name, stage_number
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import MAX_ARRAY_BYTES, first_line, packed_hint, read_bytes

logger = logging.getLogger(__name__)

LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category")


def value_as_text(value, where: str, what: str, key: str) -> str:
    """A label or an id read from a record (JSON, a TFRecord's feature) as text: text and UTF-8 bytes stripped,
    integers, whole floats as integers (``1.0`` is ``"1"``, as a CSV's ``1``); anything else is refused naming
    ``where`` (the file and record), ``what`` and the field ``key``."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise PipelineError(f"{where}: the {what} in {key!r} is not UTF-8 text") from None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PipelineError(f"{where}: the {what} in {key!r} is {value!r}, not an integer or text")
    if isinstance(value, float):
        if not (math.isfinite(value) and value == int(value)):
            raise PipelineError(f"{where}: the {what} in {key!r} is {value!r}, not a whole number")
        value = int(value)
    text = str(value).strip()
    if not text:
        raise PipelineError(f"{where}: the {what} in {key!r} is empty")
    return text


# Sample submission ----------------------------------------------------------------------
def find_sample_submission(folder: Path) -> Path:
    # Matched by name whatever it is: a FIFO or a folder with this name is refused when read, not skipped.
    candidates = [path for path in entries(folder) if is_sample_name(path.name)]
    if not candidates:
        raise PipelineError(f"{folder}: no sample submission (sample_submission.csv or sampleSubmission.csv) found"
                            + nested_competitions_hint(folder))
    if len(candidates) > 1:
        last_stage = _last_stage(candidates)
        if last_stage is not None:
            return last_stage
        # A copy, another competition's: which one Kaggle scores is not ours to guess.
        raise PipelineError(f"{folder}: more than one sample submission ({', '.join(path.name for path in candidates)}); "
                            "move all but the one Kaggle scores out of the folder")
    return candidates[0]


_STAGE_REPORTED: set[str] = set()  # the folders whose chosen stage was said in this process


def _last_stage(candidates: list[Path]) -> Path | None:
    """The last stage's sample among one per stage (``sample_submission_stg1.csv``, ``sample_submission_stg2.csv``;
    an unnumbered one is stage 1): after a two-stage competition Kaggle scores late submissions against the last
    stage's test set, whose sample lists the images of every stage (folders.test_folders). None otherwise."""
    stages = {}
    for path in candidates:
        stem = re.sub(r"^sample_?submission", "", path.name[: -len(".csv")], flags=re.IGNORECASE)
        stages[path] = stage_number(stem)
    if None in stages.values() or len(set(stages.values())) != len(candidates):
        return None
    last = max(candidates, key=stages.get)
    if str(last) not in _STAGE_REPORTED:
        _STAGE_REPORTED.add(str(last))
        others = ", ".join(path.name for path in candidates if path != last)
        logger.info(f"data: {last.name} is the last stage's sample submission, the one Kaggle scores now; left "
                    f"aside: {others}")
    return last


def nested_competitions_hint(folder: Path) -> str:
    """A hint naming the subfolders that hold a sample submission (a zip unpacked into a folder of its own,
    ``data/dogs/dog-breed-identification/``): the competition is there, and which one is not ours to guess. Or,
    where there is none, the archives the folder holds: a competition downloaded by hand and not unpacked."""
    nested = []
    for path in entries(folder):
        try:
            if is_dir(path) and any(map(is_sample_name, os.listdir(path))):
                nested.append(path)
        except OSError:
            continue
    if not nested:
        return packed_hint(folder)
    shown = ", ".join(str(path) for path in nested[:3]) + (", ..." if len(nested) > 3 else "")
    return f"; {shown} {'holds one' if len(nested) == 1 else 'hold one each'}: pass that folder as --data (DATA=)"


def read_csv_bytes(path: Path) -> bytes:
    """A CSV's bytes in UTF-8, from a regular file only (files.read_bytes: no FIFO, device, socket or folder).

    A file that starts with a UTF-16 byte order mark (Excel's "Unicode Text", tab-separated) is decoded and
    given as UTF-8; every other file must be UTF-8 (a UTF-8 BOM is allowed)."""
    data = read_bytes(path, limit=MAX_ARRAY_BYTES)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as error:
            raise PipelineError(f"{path}: cannot parse CSV (it starts as UTF-16 but {first_line(error)})") from None
    return data


def csv_parse_error(path: Path, data: bytes, error: Exception) -> PipelineError:
    """pandas' parse error as one line; for text that is not UTF-8, ``not_utf8_error``'s line instead of the
    codec's byte offset (Excel's "CSV (Comma delimited)" saves in the Windows code page: "Café" is b"Caf\\xe9")."""
    if isinstance(error, UnicodeDecodeError):
        found = not_utf8_error(path, data, 'a spreadsheet saved it in another encoding: save it as "CSV UTF-8" '
                                           "(Excel) or convert it, e.g. iconv -f cp1252 -t utf-8 for Western European text")
        if found is not None:
            return found
    return PipelineError(f"{path}: cannot parse CSV ({first_line(error)})")


def not_utf8_error(path: Path, data: bytes, advice: str) -> PipelineError | None:
    """For ``data`` that is not UTF-8, an error naming the line holding the first bad byte, and ``advice``; None
    for UTF-8. Such a file is not decoded by guess: read in the wrong code page, labels would come out as other
    letters and the submission would spell them so."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as bad:
        start = data.rfind(b"\n", 0, bad.start) + 1
        end = data.find(b"\n", bad.start)
        end = len(data) if end < 0 else end
        # The bad byte with up to 30 bytes either side, within its line (a JSON file is often one line).
        left, right = max(start, bad.start - 30), min(end, bad.start + 30)
        text = data[left:right].rstrip(b"\r").decode("utf-8", errors="backslashreplace")
        text = "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)
        shown = ("..." if left > start else "") + text + ("..." if right < end else "")  # one line: \r shown as such
        number = data.count(b"\n", 0, bad.start) + 1
        return PipelineError(f"{path}: not UTF-8 text (line {number}: '{shown}'); {advice}")


def raw_header(data: bytes, separator: str) -> list[str]:
    """The header line's column names exactly as written (csv module, after the BOM): no pandas renaming."""
    text = data[: 1 << 20].decode("utf-8-sig", errors="replace")
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])


def read_submission_table(path: Path) -> pd.DataFrame:
    """A submission-shaped CSV as text, exactly as written (no number parsing, no NaN guessing).

    ``table.attrs["header"]`` holds the header's names as written, which pandas may have renamed (an empty
    name becomes ``Unnamed: 1``, a repeated one ``Label.1``): the submission check compares those.
    """
    data = read_csv_bytes(path)
    separator = separator_of(data)
    try:
        table = pd.read_csv(io.BytesIO(data), sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise csv_parse_error(path, data, error) from None
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({first_line(error)})") from None
    check_row_lengths(table, path)
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


def check_row_lengths(table: pd.DataFrame, path: Path) -> None:
    # pandas reads rows one field longer than the header as an index column plus shifted columns.
    if not isinstance(table.index, pd.RangeIndex):
        raise PipelineError(f"{path}: the rows have more fields than the header's {table.shape[1]} columns")


def separator_of(data: bytes) -> str:
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
    # id + one label column, or id + one probability column per class (State Farm: img,c0,...,c9).
    if sample.shape[1] < 2:
        raise PipelineError(
            f"{path}: expected an id column and a label column (or one column per class), found "
            f"{sample.shape[1]}: {', '.join(sample.columns)}"
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

def fractional_placeholders(sample: pd.DataFrame) -> bool:
    """Whether the sample's one label column holds numbers, at least one of them not whole (Aerial Cactus
    ships 0.5): the competition asks for a probability, not a label."""
    if sample.shape[1] != 2:
        return False
    values = sample.iloc[:, 1]
    if not values.map(lambda text: bool(_NUMBER.fullmatch(text))).all():
        return False
    numbers = values.astype(float)
    return bool((numbers != numbers.round()).any())


def ranked_placeholders(sample: pd.DataFrame) -> int:
    """k where the sample's one label column holds k >= 2 space-separated labels in every row (Humpback Whale
    Identification ships "new_whale w_23a388d w_9b5109b w_9c506f6 w_0369a5c", scored by MAP@5): the competition
    asks for its k best guesses, best first. 0 otherwise (the caller also rules out classes that hold spaces)."""
    if sample.shape[1] != 2 or len(sample) == 0:
        return 0
    counts = sample.iloc[:, 1].map(lambda text: len(text.split()))
    guesses = int(counts.iloc[0])
    return guesses if guesses >= 2 and bool((counts == guesses).all()) else 0


def find_column(table: pd.DataFrame, wanted) -> str | None:
    lowered = {column.lower(): column for column in table.columns}
    for name in wanted:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None



def order_like_sample(
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


def read_answer_key(solution_path: Path, id_column: str, label_column: str,
                    classes: list[str] | None = None) -> dict[str, str]:
    """id -> label from an answer key (id, label[, Usage]), found by the sample's column names or by position.

    A key with a column per class (Kaggle's one-hot form of a probability competition: ``img,c0,...,c9``)
    gives each id the class whose column holds its largest value."""
    solution = read_submission_table(solution_path)
    if solution.shape[1] < 2:
        raise PipelineError(f"{solution_path}: expected an id column and a label column")
    solution_ids = solution[id_column] if id_column in solution else solution.iloc[:, 0]
    if classes and all(name in solution.columns for name in classes):
        values = np.column_stack([pd.to_numeric(solution[name], errors="coerce").to_numpy() for name in classes])
        if not np.isfinite(values).all():
            raise PipelineError(f"{solution_path}: a class column holds a cell that is not a number")
        return dict(zip(solution_ids, np.asarray(classes)[values.argmax(axis=1)], strict=True))
    solution_labels = solution[label_column] if label_column in solution else solution.iloc[:, 1]
    return dict(zip(solution_ids, solution_labels, strict=True))
