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
