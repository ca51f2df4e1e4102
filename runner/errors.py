"""The one exception type that reaches users, and where it points.

Every failure a user can fix (a bad spec, a missing template, a malformed batch file, a
budget exceeded, a lock held by another run) is raised as `BatchrunError`. The CLI prints
it as one line, `file:line: key: what happened`, then an optional hint saying what to do,
and exits 1. Anything else is a bug in batchrun and is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a user's file an error is: file, 1-based line (0 when unknown) and key path."""

    file: str
    line: int = 0
    key: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return where


class BatchrunError(Exception):
    """An error the user can act on. `str()` is the one-line message."""

    exit_code = 1

    def __init__(self, message: str, *, where: Location | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def to_json(self) -> dict:
        out: dict = {"message": self.message}
        if self.where:
            out.update(file=self.where.file, line=self.where.line or None,
                       key=self.where.key or None)
        if self.hint:
            out["hint"] = self.hint
        return out


class SpecError(BatchrunError):
    """A job spec, project file, template, filter or schema is wrong."""


class LockHeld(BatchrunError):
    """Another batchrun holds the state directory."""


class BudgetExceeded(BatchrunError):
    """The estimated cost of what would be submitted is over the budget."""


class ProviderError(BatchrunError):
    """The Batch API (or the network to it) failed after the SDK's own retries."""

    transient = False                  # it may succeed if tried again
    rejected = False                   # refused before doing anything (a 429)
    retry_after: float | None = None   # seconds the API asked to wait, if it said
    status: int | None = None          # the HTTP status the API answered, if it answered
