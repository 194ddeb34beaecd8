"""Folder listings of a competition folder: only visible entries, folders through links, one-line errors; which
file suffixes are images (``SUFFIX_FORMATS``, the decoders each may be opened with: kaggle_pipeline.data.images)."""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections import Counter
from pathlib import Path

from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.files import first_line, missing_hint

logger = logging.getLogger(__name__)


# Folder listings -------------------------------------------------------------------------------
def hidden(name: str) -> bool:
    """``.DS_Store``, ``._201.png`` (macOS resource forks), ``.ipynb_checkpoints``, and ``__MACOSX/`` (where
    macOS zips keep those forks): never data."""
    return name.startswith(".") or name == "__MACOSX"


def entries(folder: Path) -> list[Path]:
    """The folder's visible entries, sorted (hidden ones are ignored)."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise PipelineError(f"{folder}: cannot list ({error.strerror or first_line(error)})") from None
    visible = [name for name in sorted(names) if not hidden(name)]
    for name in visible:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes (os.fsdecode's surrogates): a zip made on another system
            shown = os.fsencode(name).decode("utf-8", "backslashreplace")
            raise PipelineError(f"{folder}/{shown}: the name is not valid UTF-8 (written in another encoding, "
                                "as some zip tools do); rename it") from None
    return [folder / name for name in visible]


def entry_names(folder: Path) -> set[str]:
    """The names of ``folder``'s visible entries (what a layout's files are looked up in)."""
    return {path.name for path in entries(folder)}


def is_dir(path: Path) -> bool:
    """A folder (through links); a loop, a dangling link or anything else is not."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_folder(folder: Path, what: str) -> None:
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise PipelineError(f"{folder}: {what} not found" + missing_hint(folder)) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PipelineError(f"{folder}: symbolic link loop; expected the {what}") from None
        raise PipelineError(f"{folder}: cannot open the {what} ({error.strerror or first_line(error)})") from None
    if not stat.S_ISDIR(mode):
        raise PipelineError(f"{folder}: not a folder; expected the {what}")


# The decoders each image suffix may be opened with. A .png/.jpg/.jpeg is read as PNG or JPEG (a JPEG saved as
# .png is common on Kaggle); every other suffix only as its own format. Anything else (EPS, a GIF named .png, a
# BMP named .jpg, ...) is refused in one line, so Pillow never hands a file to Ghostscript or to a decoder its
# name does not announce. A GIF is read as its first frame.
SUFFIX_FORMATS = {
    ".png": ("PNG", "JPEG"),
    ".jpg": ("PNG", "JPEG"),
    ".jpeg": ("PNG", "JPEG"),
    ".jfif": ("JPEG",),  # JPEG's file format by its own name, as some browsers save photos
    ".tif": ("TIFF",),
    ".tiff": ("TIFF",),
    ".bmp": ("BMP",),
    ".webp": ("WEBP",),
    ".gif": ("GIF",),
    # Satellite tiles and slide scans (JPEG 2000, up to 16 bits) and photos saved by phones and browsers (AVIF).
    ".jp2": ("JPEG2000",),
    ".j2k": ("JPEG2000",),
    ".avif": ("AVIF",),
    # Netpbm: the face sets of the 1990s (AT&T/ORL, Yale) and course data made from them ship .pgm.
    ".pgm": ("PPM",),
    ".ppm": ("PPM",),
    ".pbm": ("PPM",),
    ".pnm": ("PPM",),
    # Medical scans: read with pydicom, not Pillow (kaggle_pipeline.data.images, "DICOM").
    ".dcm": ("DICOM",),
    ".dicom": ("DICOM",),
}
IMAGE_SUFFIXES = set(SUFFIX_FORMATS)
# The folders whose left-out files were already reported in this process (image_entries), and how many of each
# parent's: Tiny ImageNet's 200 class folders each hold a <wnid>_boxes.txt, which made 200 lines.
_REPORTED: set[str] = set()
_REPORTED_IN: Counter[str] = Counter()
MAX_REPORTED_PER_PARENT = 3


def image_entries(folder: Path, found: list[Path]) -> list[Path]:
    """The entries of ``found`` (listed from ``folder``) with an image suffix. Other files are left out, and
    said so once per folder (``Thumbs.db``, notes, ``.nii`` volumes): a user's images must not vanish without a word.
    Past ``MAX_REPORTED_PER_PARENT`` folders of one parent, one line says more hold such files, each at debug level."""
    images = [path for path in found if path.suffix.lower() in IMAGE_SUFFIXES]
    others = _not_images(found)
    if others and str(folder) not in _REPORTED:
        _REPORTED.add(str(folder))
        _REPORTED_IN[str(folder.parent)] += 1
        line = (f"data: {folder}: left out {len(others)} file(s) that are not images by their suffix "
                f"({_suffix_counts(others)}); images are {', '.join(sorted(IMAGE_SUFFIXES))}")
        reported = _REPORTED_IN[str(folder.parent)]
        if reported == MAX_REPORTED_PER_PARENT + 1:
            logger.info(f"data: {folder.parent}: more of its folders hold files that are not images; -v "
                        "(VERBOSE=2) names each")
        (logger.info if reported <= MAX_REPORTED_PER_PARENT else logger.debug)(line)
    return images


def _not_images(found: list[Path]) -> list[Path]:
    return [path for path in found if path.suffix.lower() not in IMAGE_SUFFIXES and not is_dir(path)]


def _suffix_counts(others: list[Path], shown: int | None = None) -> str:
    """'.db 1, .txt 2': how many files of each suffix (or name, without one), the first ``shown`` of them."""
    counts = Counter(path.suffix.lower() or path.name for path in others)
    return ", ".join(f"{suffix} {count}" for suffix, count in sorted(counts.items())[:shown])


# Suffixes of images this machine cannot decode, with what to do (they are left out like any other file).
UNREAD_IMAGE_SUFFIXES = {".heic": "HEIC", ".heif": "HEIF"}


def not_images_note(folder: Path) -> str:
    """'; it holds N file(s) that are not images by their suffix (...)' for an error about a folder without
    images (the log line saying so is not printed when the stage stops), or '' when it holds none."""
    try:
        others = _not_images(entries(folder))
    except PipelineError:
        return ""
    if not others:
        return ""
    unread = sorted({UNREAD_IMAGE_SUFFIXES[path.suffix.lower()] for path in others
                     if path.suffix.lower() in UNREAD_IMAGE_SUFFIXES})
    convert = (f"; {'/'.join(unread)} photos (as iPhones save them) are not read here: convert them to JPEG first "
               "(e.g. heif-convert, or Preview's Export)") if unread else ""
    return f"; it holds {len(others)} file(s) that are not images by their suffix ({_suffix_counts(others, 6)}){convert}"


def has_images(folder: Path) -> bool:
    """A folder holding at least one visible file with an image suffix."""
    return is_dir(folder) and any(path.suffix.lower() in IMAGE_SUFFIXES for path in entries(folder))


def _holds_images(folder: Path) -> bool:
    """Images in the folder or in its subfolders one level down (class folders: Paddy Disease's
    ``train_images/<label>/``)."""
    return has_images(folder) or any(has_images(path) for path in entries(folder) if is_dir(path))


def image_root(folder: Path) -> Path:
    """Where ``train/`` and ``test/`` are: the competition folder itself, or its one subfolder that holds a
    ``train/`` folder (State Farm ships ``imgs/train/``, ``imgs/test/`` beside its CSVs)."""
    if is_dir(train_folder(folder)):
        return folder
    inner = [path for path in entries(folder) if is_dir(path) and is_dir(path / "train")]
    return inner[0] if len(inner) == 1 else folder


def train_folder(root: Path) -> Path:
    """``train/``, or else the one folder whose name starts with ``train`` (Cassava, APTOS and Paddy Disease
    ship ``train_images/``); ``train/train/`` when that is all ``train/`` holds (a zip unpacked into a folder of
    its own name). Another lone subfolder is not descended into: it may be the one class of a class tree."""
    folder = _named_folder(root, "train")
    inner = _lone_subfolder(folder)
    return inner if inner is not None and inner.name == folder.name else folder


def test_folder(root: Path) -> Path:
    """``test/``, or else the one folder whose name starts with ``test`` (Dogs vs. Cats ships ``test1/``,
    Cassava ``test_images/``); its one subfolder when that is all it holds (``test/test/`` from a zip, Keras'
    ``test/unknown/`` for ``flow_from_directory``): test images are matched to the sample's ids by name. In a
    two-stage competition, the last stage's (``test_folders``)."""
    return test_folders(root)[-1]


def test_folders(root: Path) -> list[Path]:
    """The test image folders: ``[test_folder]``, or, in a two-stage competition, one per stage in stage order.

    Kaggle's two-stage competitions (2016-2018) ship a test folder per stage: The Nature Conservancy's
    ``test_stg1/`` and ``test_stg2/``, or ``test/`` (stage 1) beside ``test_stg2/``; the last stage's sample
    submission (``tables.find_sample_submission``) lists the images of every stage, the later ones by a path
    (``test_stg2/image_00001.jpg``). Folders named ``test*`` that hold images are stages when each is ``test``
    or ``test`` and a stage number (``_stg2``, ``-stage2``), no two of one stage; otherwise they are not
    guessed between."""
    named = [path for path in entries(root)
             if path.name.lower().startswith("test") and is_dir(path) and _holds_images(path)]
    stages = {path: stage_number(path.name[len("test"):]) for path in named}
    if len(named) > 1 and None not in stages.values() and len(set(stages.values())) == len(named):
        return [_lone_subfolder(path) or path for path in sorted(named, key=stages.get)]
    folder = _named_folder(root, "test")
    return [_lone_subfolder(folder) or folder]


# A stage's number after a name: "_stg2", "-stage2", "stage_2" (Kaggle's two-stage competitions); "" is stage 1.
_STAGE = re.compile(r"[_-]?(?:stg|stage)[_-]?(\d{1,3})", re.IGNORECASE)


def stage_number(suffix: str) -> int | None:
    """The stage a name's ``suffix`` (after ``test`` or ``sample_submission``) says: 1 for nothing, the number
    for a stage marker, None for anything else."""
    if suffix == "":
        return 1
    match = _STAGE.fullmatch(suffix)
    return int(match.group(1)) if match else None


def _lone_subfolder(folder: Path) -> Path | None:
    """The one visible entry of ``folder`` when that entry is a folder; else None."""
    if not is_dir(folder):
        return None
    inside = entries(folder)
    return inside[0] if len(inside) == 1 and is_dir(inside[0]) else None


def _named_folder(root: Path, name: str) -> Path:
    if os.path.lexists(root / name):
        return root / name
    named = [path for path in entries(root) if path.name.lower().startswith(name) and is_dir(path)]
    if len(named) > 1:  # Cassava ships train_tfrecords/ beside train_images/: only a folder of images counts
        named = [path for path in named if _holds_images(path)] or named
    if len(named) > 1:
        raise PipelineError(f"{root}: {', '.join(path.name + '/' for path in named)} could each be the {name} "
                            f"images; rename the one that holds them to {name}/")
    return named[0] if named else root / name


def is_sample_name(name: str) -> bool:
    """A sample submission's file name, as Kaggle spells it (sample_submission.csv, sampleSubmission.csv, ...)."""
    return re.fullmatch(r"sample_?submission.*\.csv", name, re.I) is not None


# A split's name holds one of these as a word (seg_train, training_set, Testing, val, test-multiple_fruits, CIFAR's
# test_batch; not contest, interval or valley); a validation split trains too (the pipeline makes its own).
SPLIT_WORD = re.compile(r"(?<![a-z])(train|training|trainval|val|valid|validation|test|testing)(?![a-z])")
SPLITS = {"train": "train", "training": "train", "trainval": "train", "val": "train", "valid": "train",
          "validation": "train", "test": "test", "testing": "test"}


def split_of(name: str) -> str | None:
    """"train" or "test" for a split's name (a val split trains), None for any other or for both."""
    splits = {SPLITS[word] for word in SPLIT_WORD.findall(name.lower())}
    return splits.pop() if len(splits) == 1 else None


def split_of_words(name: str) -> str | None:
    """``split_of`` for a file's name or a value whose words may be joined in camel case: MIT Indoor-67's
    ``TrainImages.txt``, FER2013's ``PublicTest``. Not for folders: a class may be called ``TestTube``."""
    return split_of(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name))


LABELS_CSV_NAMES = ("trainLabels.csv", "train_labels.csv", "labels.csv", "train.csv")


def labels_csv_candidates(folder: Path) -> list[Path]:
    """CSV files that may hold the training labels: the known names first, then any other CSV of the folder
    (or of its image root) that is not the sample submission, the answer key or a test table."""
    folders = dict.fromkeys([folder, image_root(folder)])
    found = [place / name for place in folders for name in LABELS_CSV_NAMES if (place / name).exists()]
    for place in folders:
        for path in entries(place):
            name = path.name.lower()
            if (name.endswith(".csv") and path not in found and not is_dir(path)
                    and not is_sample_name(name) and name != "solution.csv"
                    and not name.startswith("test")):
                found.append(path)
    return found
