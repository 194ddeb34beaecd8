"""Early abort: stop a retrain run whose validation accuracy cannot plausibly reach the threshold.

The rule, applied at the end of every epoch of an ensemble run:

    Once at least MIN_KEPT kept runs of the same parameters and epoch count are on disk, a run is stopped
    at epoch e (never before FIRST_EPOCH, never at its last epoch) when its validation accuracy is more
    than MARGIN below the lowest validation accuracy any kept run had at epoch e.

The floor is the *worst* kept run's curve, so it only loosens as more runs are kept, and a run is cut only
when it is behind every run that made it. Its false-reject rate (runs the rule would stop that would have
ended at or above the threshold) is measured by replaying the rule over finished runs, each judged against
the curves of the other kept runs: ``replay`` below, reported by bench/ensemble_speed.py.
"""

from __future__ import annotations

import math

# Measured by bench/early_abort.py (docs/PERFORMANCE.md): over 10 runs of 8 epochs, a margin of 0.02 cut one
# run of seven that would have passed, at epoch 2 while the learning rate was still warming up; 0.03 cut none.
MARGIN = 0.03
MIN_KEPT = 3
FIRST_EPOCH = 2


def abort_floor(kept_curves: list[list[float]], margin: float = MARGIN, min_kept: int = MIN_KEPT) -> list[float]:
    """Per epoch, the lowest kept validation accuracy minus ``margin``; -inf where fewer than ``min_kept``
    kept runs reached that epoch (EarlyStopping can end a kept plateau run early)."""
    longest = max((len(curve) for curve in kept_curves), default=0)
    floor = []
    for epoch in range(longest):
        values = [curve[epoch] for curve in kept_curves if len(curve) > epoch]
        floor.append(min(values) - margin if len(values) >= min_kept else -math.inf)
    return floor


def below_floor(epoch: int, accuracy: float, floor: list[float], epochs: int, first_epoch: int = FIRST_EPOCH) -> bool:
    """Whether the rule stops a run at this 1-based epoch: never before ``first_epoch``, never at the last epoch
    (there is nothing left to save), never where the floor has no value."""
    return first_epoch <= epoch < epochs and epoch <= len(floor) and accuracy < floor[epoch - 1]


def abort_epoch(val_accuracy: list[float], floor: list[float], epochs: int, first_epoch: int = FIRST_EPOCH) -> int | None:
    """The 1-based epoch at which the rule stops a run with this validation curve, or None."""
    return next((epoch for epoch, accuracy in enumerate(val_accuracy, start=1)
                 if below_floor(epoch, accuracy, floor, epochs, first_epoch)), None)


def replay(curves: list[list[float]], final_accuracies: list[float], threshold: float, epochs: int,
           margin: float = MARGIN, min_kept: int = MIN_KEPT, first_epoch: int = FIRST_EPOCH) -> dict:
    """Replay the rule over finished runs (full curves, none aborted), each against all the other runs
    that passed the threshold. Returns counts, the false-reject rate, the epochs saved, and each stop as
    (run index, epoch, whether the run passed)."""
    passed = [accuracy >= threshold for accuracy in final_accuracies]
    false_rejects = true_rejects = judged = judged_passing = 0
    epochs_saved = 0
    stops = []
    for index, curve in enumerate(curves):
        others = [other for j, other in enumerate(curves) if j != index and passed[j]]
        if len(others) < min_kept:
            continue
        judged += 1
        judged_passing += passed[index]
        stopped = abort_epoch(curve, abort_floor(others, margin, min_kept), epochs, first_epoch)
        if stopped is None:
            continue
        epochs_saved += len(curve) - stopped
        stops.append((index, stopped, passed[index]))
        if passed[index]:
            false_rejects += 1
        else:
            true_rejects += 1
    return {
        "runs_judged": judged,
        "runs_passing": judged_passing,
        "false_rejects": false_rejects,
        "true_rejects": true_rejects,
        "false_reject_rate": false_rejects / judged_passing if judged_passing else 0.0,
        "epochs_saved": epochs_saved,
        "epochs_total": sum(len(curve) for curve in curves),
        "stops": stops,
    }
