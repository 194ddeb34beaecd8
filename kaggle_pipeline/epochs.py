"""How many epochs a trial or a run trains: the preset's count, raised on small data to a minimum of optimizer steps.

A preset's epoch counts were tuned on Fashion-MNIST, where an epoch is hundreds of optimizer steps. On a tiny
competition an epoch is a handful: scikit-learn's 1,437 8x8 digits make 11 batches of 128, so the quick
preset's 2-epoch trials took 22 steps and scored 0.10-0.20 (chance is 0.10), the default threshold (best trial
- 0.01) fell to 0.19, and its 5-epoch runs (55 steps) reached 0.75-0.79 while a logistic regression gets 0.97
(bench/digits.py). What a net learns depends on how many steps it takes, not on how many times it sees each
image, so the presets ask for a minimum number of steps and raise the epochs until it is reached.

The presets' epochs on Fashion-MNIST meet the minimums as they are: a quick trial is 12,000 images / 128 = 94
steps x 2 epochs = 188 steps, a quick run 54,000 / 128 = 422 steps x 8 = 3,376; the full preset's are 785 and
6,330. On a subset of Fashion-MNIST the run minimum is what makes runs long enough to be worth voting
(MIN_RUN_STEPS below); on tiny data MAX_RAISED_EPOCHS bounds what it asks.

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
# Optimizer steps an ensemble run takes at least on images of the reference's 28x28 pixels. On 10,800
# Fashion-MNIST images (85 steps an epoch, bench/budget.py --small) 6-epoch runs (510 steps) scored 0.880 on the
# answer key, 18 epochs (1,530 steps) 0.906 and 0.899, 36 epochs (3,060 steps) 0.911 (bench/levers.py, here and on
# a GPU); and in the budget bench 36-epoch runs voted better at equal time than twice as many 18-epoch ones
# (docs/PERFORMANCE.md, "Levers"). On the whole of Fashion-MNIST (422 steps an epoch) that is 8 epochs.
MIN_RUN_STEPS = 3_000
# ... but at least this many on any image, however large. Larger images make each step costlier (64x64 photos
# with four conv blocks: 13x the multiply-adds of a 28x28 image), so the minimum shrinks with the pixels
# to this floor: 1,000 steps made a quick run on 10,000 64x64 photos 25 minutes here (bench/varied_sizes.py).
MIN_RUN_STEPS_FLOOR = 500
REFERENCE_PIXELS = 28 * 28
# The minimum raises a run's epochs to at most this many. On tiny data the step minimum alone would ask for
# hundreds of epochs (1,437 8x8 digits: 11 steps an epoch, so 3,000 steps = 273 epochs) and stretch the cosine
# schedule so far that early stopping ends the run while the learning rate is still high; the digits scored
# 0.9972 with 46 epochs (bench/digits.py).
MAX_RAISED_EPOCHS = 48


def min_run_steps(image_shape: tuple[int, ...]) -> int:
    """The optimizer steps an ensemble run of images of ``image_shape`` (height, width, ...) takes at least:
    MIN_RUN_STEPS at 28x28 or smaller, in proportion to the pixels above that, never under MIN_RUN_STEPS_FLOOR
    (32x32: 2,297; 64x64: 574; 128x128 and larger: 500)."""
    pixels = max(1, int(image_shape[0]) * int(image_shape[1]))
    return max(MIN_RUN_STEPS_FLOOR, min(MIN_RUN_STEPS, round(MIN_RUN_STEPS * REFERENCE_PIXELS / pixels)))


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Batches in one epoch (the last one may be partial), as train_run counts them."""
    return max(1, math.ceil(images / max(1, batch_size)))


def effective_epochs(epochs: int, images: int, batch_size: int, min_steps: int) -> int:
    """``epochs``, or more if that many epochs of ``images`` in batches of ``batch_size`` are fewer than
    ``min_steps`` optimizer steps: ``max(epochs, min(ceil(min_steps / steps_per_epoch), MAX_RAISED_EPOCHS))``."""
    raised = min(math.ceil(max(0, min_steps) / steps_per_epoch(images, batch_size)), MAX_RAISED_EPOCHS)
    return max(epochs, raised)


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
    capped = f" (or {MAX_RAISED_EPOCHS} epochs)" if needed * per_epoch < min_steps else ""
    return needed, (f"{needed} epochs per {what} instead of the preset's {epochs}: {counts}, and a {what} "
                    f"takes at least {min_steps} optimizer steps{capped} (kaggle_pipeline.epochs)")
