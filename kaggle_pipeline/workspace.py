"""What every stage after ``data`` starts from: the parsed competition, its run store and the fixed split."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import Competition, answer_key_labels, load_competition, make_split, save_cache
from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.metrics import METRICS, auto_metric, get_metric
from kaggle_pipeline.network import MIN_IMAGE_SIDE
from kaggle_pipeline.store import RunStore, StoreLock, library_versions, read_arrays

DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0


@dataclass
class Workspace:
    competition: Competition
    store: RunStore
    train_index: np.ndarray
    validation_index: np.ndarray
    lock: StoreLock | None = None
    # The metric the store is judged by (kaggle_pipeline.metrics): recorded in store.json when the store is made.
    metric: str = "accuracy"

    # Gathered once, on first use: every trial and run of a stage trains on the same arrays, and a 25,000-image
    # 128x128 RGB set would otherwise be copied (1.2 GB) at each access.
    @cached_property
    def x_train(self) -> np.ndarray:
        return self.competition.x_train[self.train_index]

    @cached_property
    def y_train(self) -> np.ndarray:
        return self.competition.y_train[self.train_index]

    @cached_property
    def x_validation(self) -> np.ndarray:
        return self.competition.x_train[self.validation_index]

    @cached_property
    def y_validation(self) -> np.ndarray:
        return self.competition.y_train[self.validation_index]


# A store's folder name: short enough for every file name built on it (submission-<stamp>.json, ...).
MAX_NAME_LENGTH = 100


def competition_name(data_dir: Path, name: str | None) -> str:
    """The store's folder name: ``name``, or the data folder's own name."""
    parameter, value = ("name", name) if name is not None else ("data_dir", data_dir)
    if name is None:
        # realpath, not Path.resolve(): a data folder that is a link loop is then named by load_competition
        # ("symbolic link loop") instead of raising RuntimeError here.
        name = value = Path(os.path.realpath(data_dir)).name
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\0" in name:
        raise ParameterError(parameter, value, "not a usable folder name for models/ and submissions/")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # bytes that are not UTF-8 in the folder's name (os.fsdecode's surrogates)
        raise ParameterError(parameter, value, "not valid UTF-8; not a usable folder name (pass --name)") from None
    if not name.isprintable():
        raise ParameterError(parameter, value, "holds control characters; not a usable folder name")
    # Counted in bytes, as the file system counts a name (at most 255): 'é' is two.
    if size > MAX_NAME_LENGTH:
        raise ParameterError(parameter, f"{name[:20]}...", f"{size} bytes in UTF-8; a store name has at most "
                             f"{MAX_NAME_LENGTH} (pass a shorter name)")
    return name


def check_outside_data(parameter: str, given: Path, folder: Path, data_dir: Path) -> None:
    """Refuse an output folder (``folder``, made from the option ``parameter=given``: the run store, the
    submissions', the report's) that is the data folder, lies inside it or holds it: the data is the user's and
    only ever read, and files written among it would also change what the next load sees."""
    output, data = Path(os.path.realpath(folder)), Path(os.path.realpath(data_dir))
    if output == data or data in output.parents or output in data.parents:
        raise ParameterError(parameter, str(given), f"{folder} overlaps the data folder {data_dir}; the pipeline "
                             "writes only outside it")


def open_workspace(
    data_dir: Path,
    models_dir: Path,
    name: str | None = None,
    layout: str | None = None,
    validation_fraction: float | None = None,
    split_seed: int | None = None,
    lock: str | None = None,
    read_only: bool = False,
    image_size: int | None = None,
    skip_unreadable: bool = False,
    metric: str | None = None,
    threshold: float | None = None,
    trains: bool = False,
    subset: int | None = None,
    outputs: dict[str, Path] | None = None,
    vote_metric: str | None = None,
    requires: tuple[Callable[[RunStore], Path], str] | None = None,
) -> Workspace:
    """The parsed competition and its store.

    Everything is checked before anything is written: the data parses, the options fit it, the store is
    the store of this data (its folders what they should be, its files valid) and, with ``lock`` (the
    stage's name), this process is the store's one writer. Only then are the store's manifest, the parsed
    arrays' cache and the validation split written, where they are new. ``read_only`` (report, status)
    writes nothing at all. ``metric`` (a name of kaggle_pipeline.metrics, or None/``auto``) is recorded with a
    new store (auto: logloss where the sample submission asks for probabilities, accuracy otherwise); asking an
    existing store for another metric is an error. ``threshold``, where given, must be one the store's metric
    can reach (checked here, before anything is written); ``vote_metric``, the one submit judges the vote by
    where it is another, must be able to score the competition's classes too. ``requires`` (a store file's path
    from the store, the command that makes it) is what the stage reads first: without it the stage stops before
    it writes even a new store's manifest. ``skip_unreadable`` leaves unreadable training images out
    (``load_competition``); a store made with it keeps doing so in every later stage. A stage that ``trains`` needs images the network can take, and a
    search's ``subset`` (training images per trial) at least one image of each class. ``outputs``
    names the other folders the stage writes the competition's files under (``{"submissions_dir": ...}``):
    like the store, none may overlap the data folder. A ``solution.csv`` must answer every test id with a class.
    """
    name = competition_name(data_dir, name)
    models_dir = Path(models_dir)
    if models_dir.exists() and not models_dir.is_dir():
        raise ParameterError("models_dir", str(models_dir), "not a folder")
    for parameter, given in {"models_dir": models_dir, **(outputs or {})}.items():
        check_outside_data(parameter, given, Path(given) / name, data_dir)
    store = RunStore(models_dir / name)
    store.check_layout()
    image_size = _image_size(store, image_size)
    skip_unreadable = skip_unreadable or recorded_skip_unreadable(store)
    competition = load_competition(data_dir, name=name, layout=layout, cache_dir=store.cache_dir, write_cache=False,
                                   image_size=image_size, skip_unreadable=skip_unreadable)
    store.check_data(competition.fingerprint())
    store.check_files()
    metric = _metric(store, metric, competition)
    get_metric(metric).check_threshold(threshold)
    for judge in {metric, vote_metric} - {None, "auto"}:
        if judge not in METRICS:
            raise ParameterError("metric", judge, f"choose auto or one of {', '.join(METRICS)}")
        get_metric(judge).check_classes(competition.classes, competition.source)
    train_index, validation_index, new_split = _fixed_split(store, competition, validation_fraction, split_seed)
    if trains:
        _check_trainable(competition, data_dir, competition.y_train[train_index], subset)
    if read_only:  # report scores with the answer key and says so if it cannot; status never reads it
        return Workspace(competition, store, train_index, validation_index, metric=metric)
    # The answer key only scores the submission, but one that cannot would stop a long job at its very end.
    answer_key_labels(competition)
    if requires is not None and not os.path.lexists(requires[0](store)):
        raise PipelineError(f"{requires[0](store)}: not found; run {requires[1]} first")
    store_lock = store.lock(lock) if lock else None
    try:
        store.bind(competition.fingerprint(), {**competition.describe(), "metric": metric, "versions": library_versions()})
        save_cache(competition)
        if new_split is not None:
            store.write_split(train=train_index, validation=validation_index, **new_split)
    except BaseException:
        if store_lock is not None:
            store_lock.release()
        raise
    return Workspace(competition, store, train_index, validation_index, store_lock, metric)


def _check_trainable(competition: Competition, data_dir: Path, y_train: np.ndarray, subset: int | None) -> None:
    height, width = competition.image_shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise PipelineError(f"{data_dir}: images of {height}x{width} pixels are too small for the network (at least "
                            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}); resize them with --image-size (SIZE=) "
                            f"{MIN_IMAGE_SIDE} or more")
    classes = len(np.unique(y_train))
    if subset and subset < min(classes, len(y_train)):
        raise ParameterError("subset", subset, f"fewer training images per trial than the {classes} classes: at "
                             f"least {classes}, or 0 for all {len(y_train)}")


def _metric(store: RunStore, metric: str | None, competition: Competition) -> str:
    """The metric asked for, or the one the store was made with; asking a store for another is an error."""
    if metric not in (None, "auto", *METRICS):
        raise ParameterError("metric", metric, f"choose auto or one of {', '.join(METRICS)}")
    if store.read_manifest() is None:
        return auto_metric(competition) if metric in (None, "auto") else metric
    recorded = store.metric
    if metric not in (None, "auto") and metric != recorded:
        raise ParameterError("metric", metric, f"{store.manifest_path} was made with metric {recorded}; its trials "
                             "and runs were judged by it and cannot be mixed with another (use another --name, or "
                             "leave --metric out; submit --metric may choose the vote by another)")
    return recorded


def _image_size(store: RunStore, image_size: int | None) -> int | None:
    """The image side asked for, or the one the store was made with; asking a store for another is an error."""
    manifest = store.read_manifest()
    if manifest is None:
        return image_size
    recorded = manifest.get("image_size")
    if image_size is not None and image_size != recorded:
        made = f"image size {recorded}" if recorded is not None else "the default image size"
        raise ParameterError("image_size", image_size, f"{store.manifest_path} was made with {made}; its runs cannot "
                             "be mixed with other sizes (use another --name, or leave --image-size out)")
    return recorded


def recorded_skip_unreadable(store: RunStore) -> bool:
    """Whether the store was made with --skip-unreadable: its data is then read that way in every later stage,
    so a stage without the option reads the same images."""
    manifest = store.read_manifest()
    return bool(manifest is not None and manifest.get("skip_unreadable"))


def _fixed_split(store: RunStore, competition: Competition, fraction: float | None, seed: int | None):
    """The split saved in the store, or a new one (with its settings, to be saved); asking for a different
    split of an existing store is an error."""
    if store.split_path.exists() or store.split_path.is_symlink():
        remedy = "restore it from a backup, or use another --name (the store's runs were validated on it)"
        saved = read_arrays(store.split_path, {"train": ("iu", 1), "validation": ("iu", 1), "fraction": ("f", 0),
                                               "seed": ("iu", 0)}, remedy)
        train, validation = saved["train"], saved["validation"]
        count = len(competition.y_train)
        everything = np.concatenate([train, validation])
        if (len(everything) != count or (len(everything) and (everything.min() < 0 or everything.max() >= count))
                or len(np.unique(everything)) != count):
            raise PipelineError(f"{store.split_path}: damaged or edited by hand (its indices do not cover the "
                                f"{count} training images once each); {remedy}")
        saved_fraction, saved_seed = float(saved["fraction"]), int(saved["seed"])
        if (fraction is not None and fraction != saved_fraction) or (seed is not None and seed != saved_seed):
            raise PipelineError(
                f"{store.split_path}: this store uses validation fraction {saved_fraction} with seed {saved_seed}; "
                "runs on another split cannot be mixed in (use another --name)"
            )
        return train, validation, None
    fraction = DEFAULT_VALIDATION_FRACTION if fraction is None else fraction
    seed = DEFAULT_SPLIT_SEED if seed is None else seed
    train_index, validation_index = make_split(competition.y_train, fraction, seed)
    return train_index, validation_index, {"fraction": fraction, "seed": seed}
