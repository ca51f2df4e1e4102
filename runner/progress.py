"""Progress on stderr: live bars on a terminal (rich), plain lines anywhere else.

Long work reports records scanned, shards packed, uploads, each batch's state and
completed/total with an ETA, and write-back. When stderr is not a terminal (CI logs, a
pipe) or with --no-progress, the same events are plain timestamp-free lines with no
control codes, printed at most every few seconds per job so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

    from .provider import BatchView as Batch


class Reporter:
    """Plain lines. Subclassed by the live terminal version."""

    # Whether `start` needs the number of points: counting costs a full pass over the
    # filter, worth it only for a progress bar a person is watching.
    wants_total = False

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False,
                 interval: float = 5.0):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interval = interval
        self._totals: dict[str, int | None] = {}
        self._last: dict[str, float] = {}
        self._batch_state: dict[str, tuple[str, int]] = {}

    def line(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def start(self, job: str, total: int | None) -> None:
        self._totals[job] = total
        self._last[job] = time.monotonic()

    def advance(self, job: str, done: int) -> None:
        now = time.monotonic()
        if now - self._last.get(job, 0) >= self.interval:
            self._last[job] = now
            total = self._totals.get(job)
            self.line(f"{job}: scanned {done:,}" + (f" of {total:,}" if total else "") + " points")

    def finish(self, job: str) -> None:
        self._totals.pop(job, None)

    def batches(self, batches: Iterable[Batch]) -> None:
        for batch in batches:
            counts = batch.request_counts
            done = (counts.completed + counts.failed) if counts else 0
            if self._batch_state.get(batch.id) == (batch.status, done):
                continue
            self._batch_state[batch.id] = (batch.status, done)
            total = counts.total if counts else 0
            self.line(f"batch {batch.id}: {batch.status}"
                      + (f", {done:,}/{total:,} requests" if total else "")
                      + _eta(batch, done, total))

    def close(self) -> None:
        pass


def _eta(batch: Batch, done: int, total: int) -> str:
    started = batch.in_progress_at
    if not started or not done or done >= total or batch.status != "in_progress":
        return ""
    elapsed = max(time.time() - started, 0.001)
    remaining = elapsed / done * (total - done)
    return f", about {_duration(remaining)} left"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


class LiveReporter(Reporter):
    """rich progress bars for a terminal."""

    wants_total = True

    def __init__(self, stream: IO[str] | None = None):
        from rich.console import Console  # a terminal's bars only
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        super().__init__(stream)
        self.console = Console(file=self.stream)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.progress.start()
        self._tasks: dict[str, TaskID] = {}

    def line(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)

    def start(self, job: str, total: int | None) -> None:
        self._tasks[job] = self.progress.add_task(f"{job}: scanning", total=total)

    def advance(self, job: str, done: int) -> None:
        if job in self._tasks:
            self.progress.update(self._tasks[job], completed=done)

    def finish(self, job: str) -> None:
        task = self._tasks.pop(job, None)
        if task is not None:
            self.progress.remove_task(task)

    def batches(self, batches: Iterable[Batch]) -> None:
        for batch in batches:
            counts = batch.request_counts
            total = counts.total if counts else 0
            done = (counts.completed + counts.failed) if counts else 0
            name = f"batch {batch.id[-12:]}"
            if batch.id not in self._tasks:
                self._tasks[batch.id] = self.progress.add_task(name, total=total or None)
            self.progress.update(self._tasks[batch.id], completed=done, total=total or None,
                                 description=f"{name}: {batch.status}")
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                self.progress.remove_task(self._tasks.pop(batch.id))

    def close(self) -> None:
        self.progress.stop()


def reporter(*, live: bool | None = None, quiet: bool = False) -> Reporter:
    """Live bars on a terminal, plain lines otherwise."""
    if quiet:
        return Reporter(quiet=True)
    if live is None:
        live = sys.stderr.isatty()
    return LiveReporter() if live else Reporter()
