"""The parsed competition, its loading (layout detection, the parsed-array cache) and label encoding."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_pipeline.data.folders import check_folder
from kaggle_pipeline.data.registry import detect_layout, get_layout
from kaggle_pipeline.data.tables import (
    find_sample_submission,
    fractional_placeholders,
    ranked_placeholders,
    read_answer_key,
    read_sample_submission,
)
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import archive_name, regular_file
from kaggle_pipeline.store import arrays_cache_path, save_arrays_cache

logger = logging.getLogger(__name__)


def source_files(folder: Path, layout: str) -> list[Path]:
    """The files a layout reads (and the sample submission), for the cache key."""
    files = [find_sample_submission(folder)] + get_layout(layout).files(folder)
    return [path for path in files if path.exists()]


# Bumped whenever parsing changes, so stale caches are not reused.
LOADER_VERSION = 7  # 7: JPEG 2000 and AVIF images read (they were left out), two-stage test folders


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
    # The sample's columns after the id: one label column, or one probability column per class (in the
    # sample's order, named exactly as the classes); and whether a single label column holds fractions (0.5).
    submission_columns: list[str] = field(default_factory=list)
    fractional_placeholders: bool = False
    # How many best guesses, best first and space-separated, the label column asks for (MAP@k); 0: one label.
    ranked_guesses: int = 0
    # The side every image was resized to when one was asked for (--image-size); None: the default rule.
    image_size: int | None = None
    # --skip-unreadable: training images that could not be read are left out (their error lines, in ``left_out``).
    skip_unreadable: bool = False
    left_out: list[str] = field(default_factory=list)
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

    @property
    def positive_class(self) -> str | None:
        """The class whose probability a binary probability submission gives: the second in ``classes``
        ('1' for 0/1 labels, 'dog' for cat/dog); None unless there are exactly two classes."""
        return self.classes[1] if self.num_classes == 2 else None

    @property
    def submission_format(self) -> str:
        """What the sample asks for, whatever the metric: see ``submission_format_for``."""
        return self.submission_format_for(None)

    def submission_format_for(self, metric: str | None) -> str:
        """``class_probabilities`` (a column per class), ``ranked_labels`` (the sample's label column holds k
        space-separated labels: the k most probable classes, best first), ``binary_probability`` (two classes and
        fractional placeholders, or METRIC=auc/logloss: the positive class's probability in the label column) or
        ``label``."""
        if len(self.submission_columns) > 1:
            return "class_probabilities"
        if self.ranked_guesses:
            return "ranked_labels"
        if self.num_classes == 2 and (self.fractional_placeholders or metric in ("auc", "logloss")):
            return "binary_probability"
        return "label"

    def fingerprint(self) -> str:
        """A short hash of the parsed data: two stores made from the same data agree on it."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for array in (self.x_train, self.y_train, self.x_test):
                digest.update(str(array.shape).encode())
                digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))  # no copy of the arrays
            digest.update(json.dumps([self.classes, self.test_ids]).encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def describe(self) -> dict:
        size = {} if self.image_size is None else {"image_size": self.image_size}
        skipping = {"skip_unreadable": True, "left_out": self.left_out} if self.skip_unreadable else {}
        return {**size, **skipping,
            "name": self.name,
            "source": str(self.source),
            "layout": self.layout,
            "classes": self.classes,
            "image_shape": list(self.image_shape),
            "train_images": int(len(self.x_train)),
            "test_images": int(len(self.x_test)),
        }


# Loading -----------------------------------------------------------------------------------
def load_competition(
    folder: Path, name: str | None = None, layout: str | None = None, cache_dir: Path | None = None,
    write_cache: bool = True, image_size: int | None = None, skip_unreadable: bool = False,
) -> Competition:
    """Parse a competition folder (or reuse the parsed arrays cached for these exact files).

    ``image_size`` resizes every image to that side (kaggle_pipeline.data.images: by default images of one
    size up to 128 pixels are kept as they are). With ``write_cache=False`` a new cache file is left to ``save_cache``, so a caller (the workspace) can
    check the data against its store, and take the store's lock, before anything is written there.
    ``skip_unreadable`` leaves out the training images that cannot be read (at most
    ``images.MAX_UNREADABLE_SHARE`` of them) instead of stopping; they are named in ``Competition.left_out``.
    """
    folder = Path(folder)
    if archive_name(folder.name) and os.path.isfile(folder):
        raise PipelineError(f"{folder}: an archive, not a folder; unpack it into a folder (make download unpacks "
                            "what it downloads) and pass that folder as --data (DATA=)")
    check_folder(folder, "competition folder")
    layout = get_layout(layout or detect_layout(folder)).name
    if image_size is not None and not (isinstance(image_size, int) and 4 <= image_size <= 1024):
        raise ParameterError("image_size", image_size, "must be an integer from 4 to 1024")
    name = name or Path(os.path.realpath(folder)).name  # realpath: no RuntimeError on a link loop
    sample_path = find_sample_submission(folder)
    sample = read_sample_submission(sample_path)
    solution = folder / "solution.csv"
    if os.path.lexists(solution):
        regular_file(solution)  # read at submit time; a FIFO there would block the submission

    cache_key = _cache_key(folder, layout, image_size, skip_unreadable)
    cache_path = arrays_cache_path(cache_dir, cache_key) if cache_dir else None
    parsed = _read_cache(cache_path) if cache_path else None
    from_cache = parsed is not None
    if not from_cache:
        parsed = get_layout(layout).read(folder, sample, sample_path, image_size, skip_unreadable)
    # Checked before anything is cached: bad labels leave no file behind.
    classes, y_train = encode_labels(_spelled_like_sample(parsed["train_labels"], sample),
                                     folder if from_cache else parsed["labels_path"])
    _say_if_tag_lists(classes)
    header = sample.attrs["header"]  # the names as written (read_sample_submission refused any pandas renamed)
    check_class_columns(header, classes, sample_path)
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
        submission_columns=list(header[1:]),
        fractional_placeholders=fractional_placeholders(sample),
        ranked_guesses=_ranked_guesses(sample, classes),
        solution=solution if solution.exists() else None,
        image_size=image_size,
        skip_unreadable=skip_unreadable,
        left_out=[str(line) for line in parsed.get("left_out", [])],
        cache_path=cache_path,
        cache_stale=cache_path is not None and not from_cache,
    )
    _warn_left_out(competition.left_out, from_cache)
    if write_cache:
        save_cache(competition)
    return competition


def _say_if_tag_lists(classes: list[str]) -> None:
    """Say so when the labels look like space-separated lists of tags (Planet's "haze primary", Plant Pathology
    2021's "scab frog_eye_leaf_spot"): fewer distinct words than labels, the words recombined. Each combination
    is then one class (a label powerset): valid submissions, but a combination never seen in training is never
    predicted, and the nets are not trained per tag."""
    words = {word for label in classes for word in label.split()}
    combined = [label for label in classes if len(label.split()) > 1]
    if combined and len(words) < len(classes):
        logger.info(f"data: the {len(classes)} labels look like lists of {len(words)} tags (e.g. {combined[0]!r}): "
                    "each combination is trained as one class (a label powerset); a combination not in the "
                    "training labels is never predicted, and multi-label training (a probability per tag) is "
                    "not supported")


def _warn_left_out(left_out: list[str], from_cache: bool) -> None:
    """Name the training images --skip-unreadable left out: each of the first few when they were just read, a
    summary when the parsed arrays come from the cache (store.json lists them all)."""
    if from_cache and left_out:
        logger.warning(f"data: {len(left_out):,} unreadable training image(s) left out (--skip-unreadable), as when "
                       f"the data was first read; the first: {left_out[0]}")
        return
    for line in left_out[:5]:
        logger.warning(f"data: left out: {line}")
    if len(left_out) > 5:
        logger.warning(f"data: left out {len(left_out) - 5:,} more unreadable training image(s)")


_WHOLE_FLOAT = re.compile(r"(-?\d{1,18})\.0+")


def _spelled_like_sample(labels, sample: pd.DataFrame):
    """Labels that are whole numbers written as floats (``1.0``: a column pandas wrote as float) spelled as the
    integers the sample's placeholders are (``0``), so the submission writes ``1`` where Kaggle's key holds ``1``:
    a label "1.0" matches no answer. Unchanged otherwise, or where two labels would become one."""
    values = np.asarray(labels, dtype=str)
    if sample.shape[1] != 2 or not sample.iloc[:, 1].map(_is_integer).all():
        return labels
    found = sorted(set(values.tolist()))
    matches = [_WHOLE_FLOAT.fullmatch(label) for label in found]
    if not all(matches):
        return labels
    spelled = {label: match.group(1) for label, match in zip(found, matches, strict=True)}
    if len(set(spelled.values())) != len(spelled):
        return labels
    more = ", ..." if len(found) > 4 else ""
    logger.info(f"data: labels written as floats ({', '.join(found[:4])}{more}) are spelled as the sample's "
                f"integers ({', '.join(spelled[label] for label in found[:4])}{more})")
    return np.array([spelled[label] for label in values.tolist()])


def _ranked_guesses(sample: pd.DataFrame, classes: list[str]) -> int:
    """tables.ranked_placeholders, unless a class name holds a space: then a placeholder such as Plant Seedlings'
    "Sugar beet" is one class, and k guesses could not be told apart when written."""
    if any(any(character.isspace() for character in label) for label in classes):
        return 0
    return ranked_placeholders(sample)


def answer_key_labels(competition: Competition) -> np.ndarray | None:
    """The answer key as class indices in test order (for local scoring and benches); None without one.

    Checked when a stage opens the competition (workspace.open_workspace), so that a key that cannot score
    stops a job before it trains, not at its end."""
    if competition.solution is None:
        return None
    truth = read_answer_key(competition.solution, competition.id_column, competition.label_column, competition.classes)
    index = {name: position for position, name in enumerate(competition.classes)}
    missing = [test_id for test_id in competition.test_ids if test_id not in truth]
    if missing:
        raise PipelineError(f"{competition.solution}: no answer for test id {missing[0]!r} ({len(missing)} of the "
                            f"sample's {len(competition.test_ids)} ids have none)")
    unknown = [(test_id, truth[test_id]) for test_id in competition.test_ids if truth[test_id] not in index]
    if unknown:
        test_id, label = unknown[0]
        shown = ", ".join(competition.classes[:10]) + (", ..." if len(competition.classes) > 10 else "")
        raise PipelineError(f"{competition.solution}: the answer {label!r} for test id {test_id!r} is not a class of "
                            f"the training data ({shown})")
    return np.array([index[truth[test_id]] for test_id in competition.test_ids])


def check_class_columns(header: list[str], classes: list[str], sample_path: Path) -> None:
    """A sample with a column per class: every training class has its column and every column a class (names
    compared exactly, case and spaces included). Nothing to check for an id + label sample."""
    columns = header[1:]
    if len(columns) < 2:
        return
    missing = [name for name in classes if name not in columns]
    if missing:
        raise PipelineError(f"{sample_path}: no column for training class {missing[0]!r} ({len(missing)} classes "
                            f"without a column; the columns after the id are {', '.join(columns[:12])}"
                            f"{', ...' if len(columns) > 12 else ''})")
    extra = [name for name in columns if name not in classes]
    if extra:
        raise PipelineError(f"{sample_path}: column {extra[0]!r} is for no class with training images (the classes "
                            f"are {', '.join(classes[:12])}{', ...' if len(classes) > 12 else ''})")


def save_cache(competition: Competition) -> None:
    """Write the parsed arrays to the competition's cache file, if it has one that is not written yet."""
    if competition.cache_stale:
        save_arrays_cache(competition.cache_path, x_train=competition.x_train,
                          train_labels=np.asarray(competition.classes, dtype=str)[competition.y_train],
                          x_test=competition.x_test, left_out=np.asarray(competition.left_out, dtype=str))
        competition.cache_stale = False


def encode_labels(labels, folder: Path) -> tuple[list[str], np.ndarray]:
    """Class list (numeric order when every label is an integer) and each label's class index."""
    labels = np.asarray(labels, dtype=str)
    if len(labels) == 0:
        raise PipelineError(f"{folder}: no training labels")
    empty = np.flatnonzero(np.char.strip(labels) == "")
    if len(empty):
        # A CSV's rows are counted as a spreadsheet shows them (the header is row 1; pandas skips blank lines).
        where = (f"row {int(empty[0]) + 2} (counting the header, not blank lines)" if Path(folder).suffix.lower() == ".csv"
                 else f"training image {int(empty[0])}")
        raise PipelineError(f"{folder}: {where} has an empty label ({len(empty)} such)")
    # Integers in numeric order ("7" and "007" are two classes, in a fixed order), then the other labels.
    classes = sorted(set(labels.tolist()), key=lambda label: (0, int(label), label) if _is_integer(label) else (1, 0, label))
    if len(classes) < 2:
        raise PipelineError(f"{folder}: the training labels hold a single class ({classes[0]!r}); need at least two")
    index = {label: position for position, label in enumerate(classes)}
    encoded = np.array([index[label] for label in labels], dtype=np.int32)
    # A class of one image only trains (make_split); the validation split needs two classes it can split.
    if np.count_nonzero(np.bincount(encoded) >= 2) < 2:
        raise PipelineError(f"{folder}: fewer than two classes have more than one training image; the validation "
                            "split needs two classes with at least two images each")
    return classes, encoded


def _is_integer(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d{1,18}", text))  # longer digit strings sort as text (int() refuses > 4300 digits)


def _cache_key(folder: Path, layout: str, image_size: int | None, skip_unreadable: bool) -> str:
    skipping = ":skip-unreadable" if skip_unreadable else ""  # the key of every cache made without it is unchanged
    digest = hashlib.sha256(f"{LOADER_VERSION}:{layout}:{image_size}{skipping}".encode())
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
