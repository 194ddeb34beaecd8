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


def count(amount: float) -> str:
    return f"{amount:,.0f}"


def megabytes(amount: float) -> str:
    return f"{amount / 1e6:,.0f} MB"


class RateProgress:
    """Work measured in items or bytes: ``update(done)`` logs ``label: done/total (rate/s, ETA ...)`` at most
    every ``every`` seconds, and not at the end (the caller says how it ended)."""

    def __init__(self, log, label: str, total: float, every: float = 2.0, amount=count):
        self.log, self.label, self.total, self.every, self.amount = log, label, total, every, amount
        self.started = self._last = time.perf_counter()

    def update(self, done: float) -> None:
        now = time.perf_counter()
        if now - self._last >= self.every and done < self.total:
            self._last = now
            rate = done / (now - self.started)
            self.log(f"{self.label}: {self.amount(done)}/{self.amount(self.total)} ({self.amount(rate)}/s, "
                     f"ETA {format_seconds((self.total - done) / rate) if rate > 0 else '?'})")

    def seconds(self) -> float:
        return time.perf_counter() - self.started
