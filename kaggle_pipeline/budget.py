"""One time budget for the whole job: ``all --hours H`` (``make all HOURS=H``) splits H between search and runs.

A user states the hours they have; the search may use at most SEARCH_SHARE of them (it stops starting trials
whose measured mean duration would overrun its share, after at least one trial), the submit stage keeps
SUBMIT_RESERVE_SECONDS, and the ensemble gets whatever the search left: no run starts that would not finish in
time (kaggle_pipeline.ensemble), the first one estimated from the search's measured images per second.

Why most of it goes to runs: on the budget bench (bench/budget.py --small, docs/PERFORMANCE.md) the voted
accuracy rose with kept runs up to the largest budget, while the quick preset's search (3 trials of 2 epochs)
took 33 s of 25 minutes, loading included, and its best trial was a starting point. As AutoGluon's
``time_limit`` does, the split is decided from measured costs while the job runs, and it is printed and
recorded in ``ensemble.json`` (``budget``) with the seconds each part took.

How long each run trains, when the hours size the runs (``all`` with a budget and no EPOCHS given): the time the
runs get is spread over FILL_RUNS runs (with k-fold members, whole rounds of K runs: ``planned_runs``), each as
many epochs as its share holds at the search's measured speed, never fewer than the preset's epochs nor more than
MAX_FILL_EPOCHS; hours beyond that buy more runs of MAX_FILL_EPOCHS. The search's speed is only a first guess (it
measured 1,124 to 1,878 images per second on two days here while the runs trained at the same 36-38 s an epoch
both days), so each finished run re-sizes the runs after it from the seconds an epoch the runs took: the time left
is spread over the planned runs not yet trained (one at least), within the same bounds (``refill_epochs``); a run
sized so must fit LAST_RUN_SHARE of the time left. Why (docs/PERFORMANCE.md, "The full preset"): on the full
preset a run's accuracy rose with its length (every 30-epoch run alone beat the vote of twelve 15-epoch runs),
while the vote of the runs was nearly saturated after three. When a whole run no longer fits the time left (the
search's speed promised too much, or the budget holds no further whole run), one last, shorter run uses it if at
least the preset's epochs fit. A resumed ensemble trains its runs as long as most of those already on disk, so
that its members stay alike; runs shorter than the preset's epochs do not count there, since they were shortened
to the time their job had left (a job given more hours after a slow machine's one short member trains runs of the
full length).

``ensemble --hours H`` alone is what it always was: the budget of that ensemble call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kaggle_pipeline.errors import ParameterError
from kaggle_pipeline.progress import format_seconds

# The search's share of the job's hours at most: enough for the presets' searches (about 1 minute of a quick
# job, 4 of a 2-hour full one) and for a few TPE trials more when EVALS asks, never most of the budget.
SEARCH_SHARE = 0.25
# Kept back for the submit stage (TensorFlow's import, voting every strategy, the checked CSV: about 15 s on
# the quick store here) so that the whole job ends inside the hours given.
SUBMIT_RESERVE_SECONDS = 60.0
# The runs the budget's time is spread over before more runs are added, and the longest run it sizes.
FILL_RUNS = 3
MAX_FILL_EPOCHS = 60
# The share of the runs' time the fill plans for: the rest absorbs a run slower than the search's speed says
# (the VM sometimes gives a process one core of two), so that the last planned run still starts.
FILL_SHARE = 0.9
# The share of the time left that a shortened last run plans for: its speed is measured on the runs before it.
LAST_RUN_SHARE = 0.95


@dataclass
class JobBudget:
    """``hours`` for search + ensemble + submit, counted from ``started`` (time.monotonic())."""

    hours: float
    started: float = field(default_factory=time.monotonic)
    search_seconds: float | None = None

    def __post_init__(self):
        if not self.hours > 0:
            raise ParameterError("hours", self.hours, "the time budget must be positive")

    @property
    def total_seconds(self) -> float:
        return self.hours * 3600

    def search_deadline(self) -> float:
        """When the search must have finished its last trial (time.monotonic())."""
        return self.started + SEARCH_SHARE * self.total_seconds

    def search_finished(self) -> None:
        self.search_seconds = time.monotonic() - self.started

    def ensemble_hours(self) -> float:
        """What is left for the runs once the search is done, the submit stage's reserve kept back (a few
        seconds at least, so that the ensemble says itself that no run fits)."""
        left = self.total_seconds - (time.monotonic() - self.started) - SUBMIT_RESERVE_SECONDS
        return max(left, 1.0) / 3600

    def describe(self, ensemble_hours: float) -> str:
        """The split as printed, with the ``ensemble_hours`` handed to the runs."""
        search = "" if self.search_seconds is None else f"loading and search took {format_seconds(self.search_seconds)}; "
        return (f"all: HOURS={self.hours:g} for the whole job: {search}the runs get "
                f"{format_seconds(ensemble_hours * 3600)}, {format_seconds(SUBMIT_RESERVE_SECONDS)} kept for submit "
                f"(the search may take at most {SEARCH_SHARE:.0%}: kaggle_pipeline.budget)")

    def record(self, ensemble_hours: float) -> dict:
        """What ensemble.json keeps of the split, with the ``ensemble_hours`` handed to the runs."""
        return {"hours": self.hours, "search_share": SEARCH_SHARE, "submit_reserve_seconds": SUBMIT_RESERVE_SECONDS,
                "search_seconds": None if self.search_seconds is None else round(self.search_seconds, 1),
                "ensemble_hours": round(ensemble_hours, 4)}


def planned_runs(folds: int | None) -> int:
    """The runs the fill spreads the time over: FILL_RUNS, or with k-fold members (``folds`` = K) the whole rounds
    of K runs that hold at least FILL_RUNS, since the vote counts only complete rounds (kaggle_pipeline.submit)."""
    if not folds:
        return FILL_RUNS
    return -(-FILL_RUNS // folds) * folds


def fill_epochs(epochs: int, ensemble_hours: float, images: int, images_per_second: float | None,
                epochs_on_disk: int | None = None, runs: int = FILL_RUNS,
                max_epochs: int = MAX_FILL_EPOCHS) -> tuple[int, str | None]:
    """The epochs per run when ``ensemble_hours`` size the runs, and a line saying why they differ from
    ``epochs`` (None when they do not). ``images``: a run's training images; ``images_per_second``: the
    search's measured training speed (None: unknown, ``epochs`` stay); ``epochs_on_disk``: the epochs of the
    store's finished runs, which a resumed ensemble keeps."""
    if epochs_on_disk:
        if epochs_on_disk == epochs:
            return epochs, None
        return epochs_on_disk, f"{epochs_on_disk} epochs per run, as long as the runs on disk (kaggle_pipeline.budget)"
    if not images_per_second or not images_per_second > 0:
        return epochs, None
    seconds_per_epoch = images / images_per_second
    filled = int(FILL_SHARE * ensemble_hours * 3600 / runs // seconds_per_epoch)
    chosen = max(epochs, min(filled, max_epochs))
    if chosen == epochs:
        return epochs, None
    return chosen, (f"{chosen} epochs per run instead of the preset's {epochs}: at the search's "
                    f"{images_per_second:,.0f} training images per second, {runs} runs of them fill "
                    f"{FILL_SHARE:.0%} of the {format_seconds(ensemble_hours * 3600)} the runs get (at most "
                    f"{max_epochs} epochs a run; more time buys more runs: kaggle_pipeline.budget)")


def refill_epochs(epochs: int, seconds_left: float, seconds_per_epoch: float | None, runs_left: int,
                  shortest: int, max_epochs: int = MAX_FILL_EPOCHS) -> tuple[int, str | None]:
    """The epochs of the runs still to train once some have finished, and a line saying why they differ from
    ``epochs`` (None when they do not): FILL_SHARE of ``seconds_left`` spread over ``runs_left`` runs (one at
    least) at the measured ``seconds_per_epoch``, never fewer than ``shortest`` nor more than ``max_epochs``."""
    if not seconds_per_epoch or not seconds_per_epoch > 0:
        return epochs, None
    runs_left = max(runs_left, 1)
    filled = int(FILL_SHARE * max(seconds_left, 0.0) / runs_left // seconds_per_epoch)
    chosen = max(shortest, min(filled, max_epochs))
    if chosen == epochs:
        return epochs, None
    return chosen, (f"{chosen} epochs per run from now on instead of {epochs}: the runs took "
                    f"{seconds_per_epoch:.1f} s an epoch, {runs_left} more of them fill {FILL_SHARE:.0%} of the "
                    f"{format_seconds(seconds_left)} left (at most {max_epochs} epochs a run: kaggle_pipeline.budget)")


def epochs_that_fit(seconds_left: float, seconds_per_epoch: float | None, shortest: int, longest: int) -> int | None:
    """The most epochs, fewer than ``longest``, of a run that fits LAST_RUN_SHARE of ``seconds_left`` at
    ``seconds_per_epoch``; None if not even ``shortest`` fit (or the speed is unknown)."""
    if not seconds_per_epoch or not seconds_per_epoch > 0:
        return None
    fitting = min(int(LAST_RUN_SHARE * seconds_left // seconds_per_epoch), longest - 1)
    return fitting if fitting >= shortest else None
