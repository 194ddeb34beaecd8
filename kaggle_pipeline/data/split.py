"""The stratified, seeded validation split every trial and run shares."""

from __future__ import annotations

import numpy as np

from kaggle_pipeline.errors import ParameterError, PipelineError
from kaggle_pipeline.files import first_line


# Validation split ---------------------------------------------------------------------------
def make_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded indices ``(train, validation)``: the same for every trial and run.

    A class with a single image (rare classes happen in real competitions) cannot be on both sides: its image
    trains, and the other classes are split as if it were not there (so data without such classes splits
    exactly as before).
    """
    if not (isinstance(fraction, float | int) and 0.0 < fraction < 1.0):
        raise ParameterError("validation_fraction", fraction, "must be between 0 and 1")
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ParameterError("split_seed", seed, f"must be an integer from 0 to {2**32 - 1}")
    counts = np.bincount(y)
    single = single_image_rows(y)
    if not single.any():
        return _stratified_split(y, fraction, seed)
    rest = np.flatnonzero(~single)
    _, rest_labels = np.unique(y[rest], return_inverse=True)
    if len(rest) == 0 or rest_labels.max() < 1:
        raise PipelineError(f"{int(single.sum())} of {len(counts)} classes have a single training image, leaving "
                            "fewer than two classes with images to validate on")
    train_rest, validation_rest = _stratified_split(rest_labels, fraction, seed)
    return np.sort(np.concatenate([rest[train_rest], np.flatnonzero(single)])), rest[validation_rest]


def single_image_rows(y: np.ndarray) -> np.ndarray:
    """Which rows are the only image of their class: a stratified split cannot put them on both sides."""
    labels, counts = np.unique(y, return_counts=True)
    return np.isin(y, labels[counts == 1])


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import StratifiedShuffleSplit

    counts = np.bincount(y)
    validation_size = max(int(round(fraction * len(y))), len(counts))
    # Both sides of a stratified split need at least one image of every class.
    if len(y) - validation_size < len(counts):
        raise ParameterError("validation_fraction", fraction,
                             f"leaves {len(y) - validation_size} of {len(y)} training images for training, "
                             f"fewer than the {len(counts)} classes; use a smaller fraction")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=validation_size, random_state=seed)
    try:
        train_index, validation_index = next(splitter.split(np.zeros(len(y)), y))
    except ValueError as error:
        raise ParameterError("validation_fraction", fraction, f"cannot split the training images ({first_line(error)})") from None
    return np.sort(train_index), np.sort(validation_index)
