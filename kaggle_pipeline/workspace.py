"""What every stage after ``data`` starts from: the parsed competition, its run store and the fixed split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_pipeline.data import Competition, load_competition, make_split
from kaggle_pipeline.errors import PipelineError
from kaggle_pipeline.store import RunStore, StoreLock, atomic_save_npz, library_versions

DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0


@dataclass
class Workspace:
    competition: Competition
    store: RunStore
    train_index: np.ndarray
    validation_index: np.ndarray
    lock: StoreLock | None = None

    @property
    def x_train(self) -> np.ndarray:
        return self.competition.x_train[self.train_index]

    @property
    def y_train(self) -> np.ndarray:
        return self.competition.y_train[self.train_index]

    @property
    def x_validation(self) -> np.ndarray:
        return self.competition.x_train[self.validation_index]

    @property
    def y_validation(self) -> np.ndarray:
        return self.competition.y_train[self.validation_index]


def competition_name(data_dir: Path, name: str | None) -> str:
    name = name or Path(data_dir).resolve().name
    if not name or name.startswith(".") or "/" in name:
        raise PipelineError(f"--name {name!r}: not a usable folder name")
    return name


def open_workspace(
    data_dir: Path,
    models_dir: Path,
    name: str | None = None,
    layout: str | None = None,
    validation_fraction: float | None = None,
    split_seed: int | None = None,
    lock: str | None = None,
) -> Workspace:
    """The parsed competition and its store. With ``lock`` (the stage's name) this process becomes the
    store's one writer, after the data has parsed, so bad input leaves ``models/`` untouched."""
    name = competition_name(data_dir, name)
    store = RunStore(Path(models_dir) / name)
    competition = load_competition(data_dir, name=name, layout=layout, cache_dir=store.cache_dir)
    store_lock = store.lock(lock) if lock else None
    try:
        store.bind(competition.fingerprint(), {**competition.describe(), "versions": library_versions()})
        train_index, validation_index = _fixed_split(store, competition, validation_fraction, split_seed)
    except BaseException:
        if store_lock is not None:
            store_lock.release()
        raise
    return Workspace(competition, store, train_index, validation_index, store_lock)


def _fixed_split(store: RunStore, competition: Competition, fraction: float | None, seed: int | None):
    """The split saved in the store, or a new one; asking for a different split of an existing store is an error."""
    if store.split_path.exists():
        with np.load(store.split_path, allow_pickle=False) as saved:
            saved_fraction, saved_seed = float(saved["fraction"]), int(saved["seed"])
            if (fraction is not None and fraction != saved_fraction) or (seed is not None and seed != saved_seed):
                raise PipelineError(
                    f"{store.split_path}: this store uses validation fraction {saved_fraction} with seed {saved_seed}; "
                    "runs on another split cannot be mixed in (use another --name)"
                )
            return saved["train"], saved["validation"]
    fraction = DEFAULT_VALIDATION_FRACTION if fraction is None else fraction
    seed = DEFAULT_SPLIT_SEED if seed is None else seed
    train_index, validation_index = make_split(competition.y_train, fraction, seed)
    atomic_save_npz(store.split_path, train=train_index, validation=validation_index, fraction=fraction, seed=seed)
    return train_index, validation_index
