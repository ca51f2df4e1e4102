"""Points that cannot be turned into a request, and why.

A template that fails on a point's data, text that is not valid Unicode (a lone
surrogate), a request over the size cap: each makes a *failed point*, never a failed job.
A pass counts them by problem with a few ids (what `plan` shows), records every one in
the ledger when it packs (what `show --failed` lists, until the point renders), and sends
the rest. `--strict` brings the all-or-nothing back: the job stops with the most common
problem, as one error at its file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Location, SpecError
from .records import PointFailureRecord

if TYPE_CHECKING:
    from .jobs import Job
    from .ledger import Ledger
    from .render import RenderError

SAMPLE = 5   # ids kept per problem for plan; the ledger keeps them all


@dataclass(frozen=True)
class PointProblem:
    """Why one point cannot be sent."""

    problem: str              # the same for every point it hits: how plan groups them
    where: Location | None    # the template line or the spec key to change, if any
    hint: str
    detail: str = ""          # this point's own part (its size, the bad character)

    @property
    def reason(self) -> str:
        text = self.problem + self.detail
        return f"{self.where}: {text}" if self.where else text


@dataclass
class PointFailures:
    """Points that failed with one problem: how many, and the first few ids."""

    first: PointProblem
    count: int = 0
    sample: list[Any] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The problem, where it is, without any one point's details."""
        problem = self.first
        return f"{problem.where}: {problem.problem}" if problem.where else problem.problem

    def add(self, point_id: Any) -> None:
        self.count += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(point_id)


def template_failed(error: RenderError, job: Job) -> PointProblem:
    return PointProblem(error.problem, error.where,
                        "give the template a default ({{ field | default('') }}) or narrow "
                        f"source.filter in {job.file}")


def not_unicode(payload: dict, error: UnicodeEncodeError) -> PointProblem:
    """A request holding a lone surrogate (text that has no UTF-8 form): which payload
    field holds it, and where in it."""
    found = _unencodable(payload, "")
    hint = "fix the point's data (a lone surrogate is half a character, often from bytes " \
           "decoded with errors='surrogateescape')"
    if found is None:
        bad = error.object[error.start:error.end]
        return PointProblem("its request holds text that is not valid Unicode",
                            None, hint, f" ({ascii(bad)})")
    name, at, char = found
    return PointProblem(f"payload field {name!r} holds text that is not valid Unicode "
                        "(a lone surrogate)", None, hint, f": {ascii(char)} at character {at}")


def _unencodable(value: Any, path: str) -> tuple[str, int, str] | None:
    """(field path, character index, the character) of the first text in `value` that
    UTF-8 cannot encode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return path, exc.start, value[exc.start]
        return None
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        name = f"{path}[{key}]" if isinstance(key, int) else \
            f"{path}.{key}" if path else str(key)
        found = _unencodable(item, name)
        if found is not None:
            return found
    return None


def too_big(size: int, job: Job) -> PointProblem:
    """A request over batch.max_request_bytes, or over a whole shard (batch.max_bytes)."""
    batch = job.spec.batch
    if batch.max_request_bytes <= batch.max_bytes:
        name, limit = "max_request_bytes", int(batch.max_request_bytes)
    else:
        name, limit = "max_bytes", int(batch.max_bytes)
    return PointProblem(f"its request is over batch.{name} ({limit:,} bytes)",
                        job.at("batch", name),
                        "shorten the prompt or the fields it reads, or raise "
                        f"batch.{name} in {job.file}", f": {size:,} bytes")


def raise_strict(failures: dict[str, PointFailures], matched: int, job: Job) -> None:
    """--strict: points that cannot be sent stop the job; say the commonest problem, where,
    which points and how many."""
    if not failures:
        return
    worst = max(failures.values(), key=lambda f: f.count)
    others = sum(f.count for f in failures.values()) - worst.count
    sample = ", ".join(str(i) for i in worst.sample[:3])
    raise SpecError(
        f"{worst.first.problem} on {worst.count:,} of {matched:,} points (ids {sample}"
        f"{', …' if worst.count > 3 else ''})" + (f"; {others:,} more failed otherwise"
                                                    if others else ""),
        where=worst.first.where or job.at("source", "collection"), hint=worst.first.hint)


# ---- the point_failures table (migration 0002) belongs to this module ------------------
# Each packing pass forgets its job's rows and records the points it could not send, so a
# point that renders on a later run is no longer listed.

def listed(ledger: Ledger, job: str, limit: int | None = None) -> list[PointFailureRecord]:
    """The job's failed points, ids in their order: integers by value (shorter first),
    UUIDs by text."""
    sql = "SELECT point, reason FROM point_failures WHERE job=? ORDER BY length(point), point"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [PointFailureRecord(json.loads(r[0]), r[1]) for r in ledger.db.execute(sql, (job,))]


def count(ledger: Ledger, job: str) -> int:
    row = ledger.db.execute("SELECT COUNT(*) FROM point_failures WHERE job=?", (job,)).fetchone()
    return int(row[0])


class FailedPointLog:
    """Every failed point of a packing pass, in the ledger (in batches of rows); the pass
    starts by forgetting the job's earlier ones, so a point that renders now is not listed."""

    def __init__(self, ledger: Ledger, job: str):
        self.ledger, self.job = ledger, job
        self.rows: list[tuple[str, str, str]] = []
        ledger.db.execute("DELETE FROM point_failures WHERE job=?", (job,))

    def add(self, point_id: Any, problem: PointProblem) -> None:
        self.rows.append((self.job, point_json(point_id), problem.reason))
        if len(self.rows) >= 1000:
            self.flush()

    def flush(self) -> None:
        self.ledger.db.executemany("INSERT OR REPLACE INTO point_failures VALUES (?, ?, ?)",
                                   self.rows)   # (job, point id as JSON, reason)
        self.rows = []


def point_json(point_id: Any) -> str:
    """A point id as the ledger keeps it: an integer, or a UUID string as JSON."""
    return str(point_id) if isinstance(point_id, int) else json.dumps(point_id)
