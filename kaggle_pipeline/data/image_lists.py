"""Text files that list a dataset's images, for ``data --dataset``.

Split lists choose a dataset's test set: text files named like a split whose lines name its images (Food-101's
``meta/train.txt`` and ``meta/test.txt`` of ``apple_pie/1005649``; Oxford-IIIT Pet's ``annotations/trainval.txt``
and ``test.txt`` of ``Abyssinian_100 1 1 1``; the first of numbered partitions, DTD's ``train1.txt`` ...:
``split_lists``), and so do training flags of image ids beside a file
naming each id's image (CUB-200-2011's ``train_test_split.txt`` and ``images.txt``: ``flagged_split``). Labels
lists label a split of unlabelled images: a
text file in the split whose lines name an image and its label (Tiny ImageNet's ``val/val_annotations.txt``:
``labels_list``, ``listed_labels``), or labels lists named like splits beside a folder of unlabelled images label
and split it (FGVC-Aircraft: ``split_labels_lists``). A line names an image by the end of its path, with or without
the extension.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kaggle_pipeline.data.folders import SPLIT_WORD, SPLITS, entries, split_of, split_of_words
from kaggle_pipeline.data.layouts.class_folders import class_images
from kaggle_pipeline.errors import ParameterError, PipelineError

logger = logging.getLogger(__name__)

# Larger text files are not lists of a dataset's images.
MAX_SPLIT_LIST_BYTES = 64 << 20
# A split folder holding more text files than this holds one per image, not a labels list.
MAX_LABELS_LISTS = 8
# A split list's partition number ends its name (DTD's train1.txt, SUN397's Training_01.txt).
PARTITION = re.compile(r"(\d+)$")


def split_lists(source: Path, images: dict[str, list[Path]]) -> dict | None:
    """The dataset's own train/test split from its split lists (Food-101's ``meta/train.txt`` and ``test.txt``,
    Oxford-IIIT Pet's ``annotations/trainval.txt`` and ``test.txt``): ``{"train": {label: [image]}, "test": {...},
    "where": a test list, "lists": [list]}``, or None when the dataset has no test list of its images. A line
    names an image by its path's last parts, with or without the extension (its first word: the other words are
    the list's own columns). Images listed nowhere are left out when a train list says which images train, and
    train otherwise; listed images the dataset does not hold are said with a warning."""
    list_files = _first_partition(_split_list_files(source), source)
    if not list_files:  # the index holds every end of every image path: built only for a dataset with lists
        return None
    index = tail_index([path for paths in images.values() for path in paths], source)
    chosen: dict[str, dict[Path, str]] = {"train": {}, "test": {}}  # image -> the list line naming it
    lists = []
    for list_path in list_files:
        named, unknown, lines, ambiguous = _list_images(list_path, index)
        if len(named) < max(1, lines / 2):
            logger.info(f"data: left out {list_path.relative_to(source)} (named like a split, but its lines do not "
                        "name the dataset's images)")
            continue
        if ambiguous:
            raise PipelineError(ambiguous)
        if unknown:
            logger.warning(f"data: {list_path}: {len(unknown):,} of its {lines:,} lines name no image of the dataset "
                           f"({unknown[0]}); the split goes on without them")
        split = split_of_words(list_path.stem)
        other = chosen["test" if split == "train" else "train"]
        for image, where in named.items():
            if image in other:
                raise PipelineError(f"{where}: {image.name} is listed in both the train and the test split "
                                    f"({other[image]})")
            chosen[split].setdefault(image, where)
        lists.append(list_path)
    if not chosen["test"]:
        if lists:
            logger.info(f"data: left out {', '.join(str(path.relative_to(source)) for path in lists)} (no test "
                        "list beside it)")
        return None
    test_lists = [path for path in lists if split_of_words(path.stem) == "test"]
    # Without a train list, every image no test list names trains.
    splits = {path: "test" if path in chosen["test"] else "train" for paths in images.values() for path in paths
              if path in chosen["test"] or path in chosen["train"] or not chosen["train"]}
    return split_by(images, splits, source, lists, test_lists[0])


def flagged_split(source: Path, images: dict[str, list[Path]]) -> dict | None:
    """The dataset's own split from a file of image ids and training flags beside a file naming each id's image:
    CUB-200-2011's ``train_test_split.txt`` ("1 0") and ``images.txt`` ("1 001.Black_footed_Albatross/
    Black_Footed_Albatross_0046_18.jpg"), NABirds' alike. A flag of 1 is a training image, 0 a test image, as both
    datasets' READMEs define ``is_training_image``. The same answer as ``split_lists``, or None without such files."""
    flag_files = _flag_files(source)
    if not flag_files:
        return None
    index = tail_index([path for paths in images.values() for path in paths], source)
    for flags_path in flag_files:
        flags = _id_fields(flags_path)
        if flags is None or not flags or set(flags.values()) - {"0", "1"}:
            continue
        beside = [path for path in entries(flags_path.parent) if path.suffix.lower() == ".txt" and path != flags_path]
        for ids_path in sorted(path for path in beside
                               if path.is_file() and path.stat().st_size <= MAX_SPLIT_LIST_BYTES):
            names = _id_fields(ids_path)
            if names is None or sum(key in flags for key in names) < len(flags) / 2:
                continue
            chosen: dict[Path, str] = {}
            unknown = 0
            for key, name in names.items():
                matches = set(index.get(list_entry(name, index), []))
                if len(matches) > 1:
                    raise PipelineError(f"{ids_path}: {name!r} (id {key}) names {len(matches)} images "
                                        f"({', '.join(sorted(map(str, matches))[:2])})")
                if not matches:
                    unknown += 1
                elif key in flags:
                    chosen[matches.pop()] = "train" if flags[key] == "1" else "test"
            if len(chosen) < len(names) / 2:
                continue
            if unknown:
                logger.warning(f"data: {ids_path}: {unknown:,} of its {len(names):,} lines name no image of the "
                               "dataset; the split goes on without them")
            return split_by(images, chosen, source, [flags_path, ids_path], flags_path)
    return None


def _flag_files(source: Path) -> list[Path]:
    """Text files named like both splits (train_test_split.txt), regular and of a list's size."""
    return [path for path in _text_files(source)
            if {SPLITS[word] for word in SPLIT_WORD.findall(path.stem.lower())} == {"train", "test"}]


def _id_fields(path: Path) -> dict[str, str] | None:
    """Id -> the rest of the line, for a text file of "<id> <field>" lines; None for any other file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2 or words[0] in fields:
            return None
        fields[words[0]] = words[1].strip()
    return fields


def split_by(images: dict[str, list[Path]], chosen: dict[Path, str], source: Path, lists: list[Path],
             where: Path) -> dict | None:
    """``split_lists``' answer from image -> split (the lists that chose it, ``where`` the one to name in errors);
    None where no image is a test image."""
    if "test" not in chosen.values():
        return None
    train, test, unlisted = {}, {}, 0
    for label, paths in images.items():
        for path in paths:
            split = chosen.get(path)
            if split is None:
                unlisted += 1
            else:
                (test if split == "test" else train).setdefault(label, []).append(path)
    if unlisted:
        logger.info(f"data: left out {unlisted:,} image(s) that no split list names")
    logger.info(f"data: the dataset's own split from {', '.join(str(path.relative_to(source)) for path in lists)}: "
                f"{sum(map(len, train.values())):,} training and {sum(map(len, test.values())):,} test images")
    return {"train": train, "test": test, "where": where, "lists": lists}


def tail_index(images: list[Path], base: Path) -> dict[str, list[Path]]:
    """Each image under every end of its path below ``base``, with and without its extension: what a list's line may
    call it (``apple_pie/1005649``, ``val_0.JPEG``)."""
    index: dict[str, list[Path]] = {}
    inside = str(base).rstrip(os.sep) + os.sep
    for path in images:
        # Strings, not Path methods: Food-101 has 101,000 images.
        parts = str(path).removeprefix(inside).split(os.sep)
        suffix = os.path.splitext(parts[-1])[1]
        for count in range(1, len(parts) + 1):
            tail = "/".join(parts[-count:])
            for key in {tail, tail.removesuffix(suffix)}:
                index.setdefault(key, []).append(path)
    return index


def _split_list_files(source: Path) -> list[Path]:
    """Text files anywhere in the dataset named like a split (train.txt, trainval.txt, test.txt, MIT Indoor-67's
    TrainImages.txt), regular and of a list's size."""
    # A text file inside a split's folder is about that split (Tiny ImageNet's val/val_annotations.txt).
    return [path for path in _text_files(source) if split_of_words(path.stem)
            and not any(split_of(part) for part in path.relative_to(source).parts[:-1])]


def _first_partition(lists: list[Path], source: Path) -> list[Path]:
    """The split lists of the first of several numbered partitions, and the lists without a number: DTD ships ten
    (labels/train1.txt, val1.txt, test1.txt ... test10.txt), SUN397 ten (Training_01.txt, Testing_01.txt ...), each
    a whole split of the same images; published results and TensorFlow Datasets' default take the first. Read
    together, every image would be a training and a test image."""
    numbers = {path: int(match.group(1)) if (match := PARTITION.search(path.stem)) else None for path in lists}
    partitions = sorted({number for number in numbers.values() if number is not None})
    # Partitions repeat a split under several numbers; train_2017.txt beside test_2018.txt is one split.
    if not any(len({numbers[path] for path in lists if split_of_words(path.stem) == split} - {None}) > 1
               for split in ("train", "test")):
        return lists
    others = sorted((path for path in lists if numbers[path] not in (None, partitions[0])),
                    key=lambda path: (numbers[path], path.name))
    logger.info(f"data: the split lists number {len(partitions)} partitions of the dataset; partition "
                f"{partitions[0]} chooses the test set (left out: {_shown_paths(others, source)})")
    return [path for path in lists if numbers[path] in (None, partitions[0])]


def _shown_paths(paths: list[Path], source: Path, shown: int = 3) -> str:
    names = [str(path.relative_to(source)) for path in paths]
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _text_files(source: Path) -> list[Path]:
    """The visible ``.txt`` files anywhere in the dataset, regular and of a list's size, in name order."""
    found = []
    for folder, folders, names in os.walk(source):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() == ".txt" and not name.startswith(".") and path.is_file() and \
                    path.stat().st_size <= MAX_SPLIT_LIST_BYTES:
                found.append(path)
    return found


def _list_images(path: Path, index: dict[str, list[Path]]) -> tuple[dict[Path, str], list[str], int, str | None]:
    """The images a split list names (image -> "list: line N"), the entries naming none, its count of lines, and
    the first line naming several images (None if none does)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        logger.warning(f"data: left out {path}, which cannot be read ({error.strerror or error})")
        return {}, [], 0, None
    except UnicodeDecodeError:
        return {}, [], 0, None  # not a list of names: left out as one
    named: dict[Path, str] = {}
    unknown, lines, ambiguous = [], 0, None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lines += 1
        entry = list_entry(line, index)
        matches = set(index.get(entry, []))
        if len(matches) > 1:
            ambiguous = ambiguous or (f"{path}: line {number}: {entry!r} names {len(matches)} images "
                                      f"({', '.join(sorted(map(str, matches))[:2])})")
        elif matches:
            named.setdefault(matches.pop(), f"{path}: line {number}")
        else:
            unknown.append(entry)
    return named, unknown, lines, ambiguous


def list_entry(line: str, index: dict[str, list[Path]]) -> str:
    """What a split list's line names: the whole line or its first word (Oxford-IIIT Pet's "Abyssinian_100 1 1 1"),
    a path from another machine (/content/food-101/images/apple_pie/1005649.jpg) by its longest end that is an
    image's; its first word when nothing matches."""
    shown = line
    for candidate in dict.fromkeys((line, line.split()[0])):
        parts = [part for part in candidate.replace("\\", "/").split("/") if part not in ("", ".")]
        shown = "/".join(parts)
        for start in range(len(parts)):
            if "/".join(parts[start:]) in index:
                return "/".join(parts[start:])
    return shown


def labels_list(split: Path) -> Path | None:
    """A text file in a split folder of unlabelled images whose lines label them, "<image> <label> ..." (Tiny
    ImageNet's val/val_annotations.txt: "val_0.JPEG<tab>n03444034<tab>0<tab>32<tab>44<tab>62"), or None."""
    texts = [path for path in entries(split) if path.suffix.lower() == ".txt" and path.is_file()]
    if len(texts) > MAX_LABELS_LISTS:  # a text file per image (YOLO's boxes): no list of labels, and each try lists all
        return None
    _, index = folder_index(split)
    return next((path for path in texts if path.stat().st_size <= MAX_SPLIT_LIST_BYTES and _read_labels_list(path, index)),
                None)


@dataclass
class _LabelsList:
    """A labels list as read, before anything is said: label -> images, and what its lines got wrong."""

    labelled: dict[str, list[Path]]
    named: int  # images it labels
    lines: int
    unknown: list[str]  # entries naming no image
    problem: str | None  # the first line naming two images or an image labelled again


def folder_index(folder: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """The images under ``folder`` and their ``tail_index``: listed once for all the lists beside them."""
    images = class_images(folder, say_left_out=False)
    return images, tail_index(images, folder)


def _read_labels_list(path: Path, index: dict[str, list[Path]]) -> _LabelsList | None:
    """Label -> images from a labels list's lines' first two fields; None when fewer than half of its lines name
    an image of ``index`` and a label."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    labelled: dict[str, list[Path]] = {}
    named: dict[Path, int] = {}
    unknown, lines, problem = [], 0, None
    for number, line in enumerate(text.splitlines(), start=1):
        # Tab-separated fields (Tiny ImageNet: name, label, box), or the name and the rest of the line (FGVC-Aircraft's
        # "1025794 Boeing 707": labels with spaces).
        words = [field.strip() for field in (line.split("\t") if "\t" in line else line.split(None, 1))]
        if not words or not words[0] or words[0].startswith("#"):
            continue
        lines += 1
        matches = set(index.get(list_entry(words[0], index), [])) if len(words) >= 2 and words[1] else set()
        if len(matches) > 1:
            problem = problem or (f"{path}: line {number}: {words[0]!r} names {len(matches)} images "
                                  f"({', '.join(sorted(map(str, matches))[:2])})")
        if len(matches) != 1:
            unknown.append(words[0])
            continue
        image = matches.pop()
        if image in named:
            problem = problem or f"{path}: line {number}: {image.name} is labelled again (line {named[image]})"
        named[image] = number
        labelled.setdefault(words[1], []).append(image)
    if len(named) < max(1, lines / 2):
        return None
    return _LabelsList(labelled, len(named), lines, unknown, problem)


def _said(listed: _LabelsList, path: Path, image_count: int, whole: bool) -> dict[str, list[Path]]:
    """A labels list's labels, once its problem (one line) and what it leaves out (log lines) are said."""
    if listed.problem:
        raise PipelineError(listed.problem)
    if listed.unknown:
        logger.warning(f"data: {path}: {len(listed.unknown):,} of its {listed.lines:,} lines name no image of "
                       f"{path.parent.name} ({listed.unknown[0]}); left out")
    if whole and listed.named < image_count:
        logger.info(f"data: left out {image_count - listed.named:,} image(s) of {path.parent.name} that {path.name} "
                    "does not label")
    return listed.labelled


def listed_labels(path: Path) -> dict[str, list[Path]]:
    """Label -> images of the folder holding labels list ``path`` (found by ``labels_list``); lines naming no image
    and images no line names are left out with a line; a line naming two images or an image named twice is one
    line."""
    images, index = folder_index(path.parent)
    listed = _read_labels_list(path, index)
    if listed is None:
        raise PipelineError(f"{path}: its lines no longer name the images beside it")
    return _said(listed, path, len(images), whole=True)


def split_labels_lists(root: Path, label_column: str | None = None) -> dict | None:
    """The labels and the split of a folder of unlabelled images from labels lists named like splits beside it
    (FGVC-Aircraft: data/images/ beside images_variant_trainval.txt and images_variant_test.txt of "1025794 Boeing
    707", and the same for family and manufacturer): ``{"train": {label: [image]}, "test": {...}, "where": a test
    list}`` or None. Lists of several kinds need ``label_column`` naming one (variant)."""
    texts = [path for path in entries(root) if path.suffix.lower() == ".txt" and split_of(path.stem)
             and path.is_file() and path.stat().st_size <= MAX_SPLIT_LIST_BYTES]
    if not texts or len(texts) > 4 * MAX_LABELS_LISTS:
        return None
    images, index = folder_index(root)
    read = {path: _read_labels_list(path, index) for path in texts}  # each list read once
    kinds: dict[str, list[Path]] = {}
    for path in texts:
        if read[path]:
            kinds.setdefault(SPLIT_WORD.sub("", path.stem.lower()).strip("_- ") or "labels", []).append(path)
    kinds = {kind: paths for kind, paths in kinds.items() if {split_of(path.stem) for path in paths} == {"train", "test"}}
    if not kinds:
        return None
    if label_column is not None:
        chosen = [kind for kind in kinds if label_column.strip().lower() in kind]
        if len(chosen) != 1:
            raise ParameterError("label_column", label_column, f"names none of the labels lists' kinds "
                                 f"({', '.join(sorted(kinds))})" if not chosen else "names several of them")
    elif len(kinds) > 1:
        raise PipelineError(f"{root}: labels lists of {len(kinds)} kinds ({', '.join(sorted(kinds))}); name one with "
                            "LABEL_COLUMN= (--label-column)")
    else:
        chosen = list(kinds)
    found: dict = {}
    seen: dict[Path, tuple[str, str, Path]] = {}  # image -> (split, label, list): trainval repeats train and val
    for path in kinds[chosen[0]]:
        split = split_of(path.stem)
        for label, labelled in _said(read[path], path, len(images), whole=False).items():
            for image in labelled:
                if image in seen:
                    if seen[image][:2] != (split, label):
                        raise PipelineError(f"{path}: {image.name} is {split} {label!r} here but {seen[image][0]} "
                                            f"{seen[image][1]!r} in {seen[image][2].name}")
                    continue
                seen[image] = (split, label, path)
                found.setdefault(split, {}).setdefault(label, []).append(image)
    found["where"] = next(path for path in kinds[chosen[0]] if split_of(path.stem) == "test")
    logger.info(f"data: labels and split from {', '.join(sorted(path.name for path in kinds[chosen[0]]))}")
    return found
