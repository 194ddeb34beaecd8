"""Progress lines with ETA: one line per finished step, log-friendly when not on a terminal."""

from __future__ import annotations

import time


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class StepTimer:
    """Measures finished steps and estimates the time left for the rest."""

    def __init__(self, total: int):
        self.total = total
        self.durations: list[float] = []
        self._started = time.perf_counter()

    def start(self) -> None:
        self._started = time.perf_counter()

    def finish(self) -> float:
        duration = time.perf_counter() - self._started
        self.durations.append(duration)
        return duration

    def mean(self) -> float:
        return sum(self.durations) / len(self.durations) if self.durations else 0.0

    def eta(self, remaining: int | None = None) -> str:
        if not self.durations:
            return "?"
        remaining = self.total - len(self.durations) if remaining is None else remaining
        return format_seconds(remaining * self.mean())
