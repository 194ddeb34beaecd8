"""How many epochs a trial or a run trains: the preset's count, raised on small data to a minimum of optimizer steps.

A preset's epoch counts were tuned on Fashion-MNIST, where an epoch is hundreds of optimizer steps. On a tiny
competition an epoch is a handful: scikit-learn's 1,437 8x8 digits make 11 batches of 128, so the quick
preset's 2-epoch trials took 22 steps and scored 0.10-0.20 (chance is 0.10), the default threshold (best trial
- 0.01) fell to 0.19, and its 5-epoch runs (55 steps) reached 0.75-0.79 while a logistic regression gets 0.97
(bench/digits.py). What a net learns depends on how many steps it takes, not on how many times it sees each
image, so the presets ask for a minimum number of steps and raise the epochs until it is reached.

The minimums sit below what the presets already train on Fashion-MNIST, so its quick and full presets train
exactly the epochs they always did: a quick trial is 12,000 images / 128 = 94 steps x 2 epochs = 188 steps, a
quick run 54,000 / 128 = 422 steps x 5 = 2,110; the full preset's are 785 and 6,330.

An epoch count given on the command line (--epochs, --search-epochs, EPOCHS=) is honoured as given; a warning
says when it is fewer steps than the minimum. Library callers get no minimum unless they pass one.

This module imports nothing heavy: the command line uses it before TensorFlow is loaded.
"""

from __future__ import annotations

import math

# Optimizer steps a search trial takes at least (quick preset on Fashion-MNIST: 188): enough for the
# reference net to rise well above chance on a small set, so that the search ranks real candidates and the
# default threshold (best trial - 0.01) means something.
MIN_TRIAL_STEPS = 150
# Optimizer steps an ensemble run takes at least (quick preset on Fashion-MNIST: 2,110).
MIN_RUN_STEPS = 500


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Batches in one epoch (the last one may be partial), as train_run counts them."""
    return max(1, math.ceil(images / max(1, batch_size)))


def effective_epochs(epochs: int, images: int, batch_size: int, min_steps: int) -> int:
    """``epochs``, or more if that many epochs of ``images`` in batches of ``batch_size`` are fewer than
    ``min_steps`` optimizer steps: ``max(epochs, ceil(min_steps / steps_per_epoch))``."""
    return max(epochs, math.ceil(max(0, min_steps) / steps_per_epoch(images, batch_size)))


def epochs_to_train(epochs: int, images: int, batch_size: int, min_steps: int, fixed: bool,
                    what: str) -> tuple[int, str | None]:
    """The epochs a ``what`` ('trial', 'run') trains, and a line saying why they differ from ``epochs`` (None
    when nothing is worth saying). ``fixed``: the epochs were asked for explicitly, so they stay, and the line
    is a warning when they are fewer steps than ``min_steps``."""
    per_epoch = steps_per_epoch(images, batch_size)
    needed = effective_epochs(epochs, images, batch_size, min_steps)
    if needed == epochs:
        return epochs, None
    counts = f"{images:,} training images make {per_epoch} step(s) of {batch_size} per epoch"
    if fixed:
        return epochs, (f"{epochs} epoch(s) per {what} as asked: {counts}, so a {what} takes {epochs * per_epoch} "
                        f"optimizer steps, fewer than the {min_steps} the presets train at least ({needed} epochs); "
                        f"expect an undertrained {what}")
    return needed, (f"{needed} epochs per {what} instead of the preset's {epochs}: {counts}, and a {what} "
                    f"takes at least {min_steps} optimizer steps (kaggle_pipeline.epochs)")
