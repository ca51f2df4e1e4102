"""What the report page is made from: a small, explicit contract.

The page knows nothing about the ledger, the manifest or Qdrant. An adapter fills these
records from them (counts from the plan, batches from the manifest, points from a scroll)
and hands them to `render()`. Everything here is plain data except `JobReport.points`,
which is an *iterable consumed once*, lazily, while that job's section is written: pass a
generator over a Qdrant scroll, never a list of the collection. The page aggregates
distributions over every point it is given and keeps only a bounded sample for its table.

Money is `Decimal | None`: None means "not computed" (no price for the model, or not
collected yet), and the page prints "unknown" for it, never a number it did not compute.
Times are timezone-aware datetimes (UTC is fine); the adapter converts the manifest's
epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

PointId = int | str


class PointRow(NamedTuple):
    """One selected point: the fields the template read, and what the job wrote for it
    (None when nothing is written yet). A plain `(id, inputs, result)` tuple does too —
    `Selection.peek()` yields exactly that."""

    id: PointId
    inputs: Mapping[str, Any]
    result: Any


@dataclass(frozen=True)
class JobCounts:
    """Points of one job by state, the same numbers `batchrun plan --json` prints per job
    (`from_plan_json` reads that entry)."""

    matched: int
    up_to_date: int = 0
    cached: int = 0           # to be written from the result cache, free
    in_flight: int = 0
    waiting: int = 0          # to send once a batch slot frees (token budget)
    failed: int = 0           # failed for good (max_attempts reached, or not retryable)
    unready: int = 0          # waiting for a job in `needs` to answer first
    to_submit: int = 0
    unrenderable: int = 0     # the template could not be rendered for them

    @classmethod
    def from_plan_json(cls, entry: Mapping[str, Any]) -> JobCounts:
        """From one job's entry of `batchrun plan --json` (`jobs.<name>`)."""
        return cls(matched=entry["matched"], up_to_date=entry["up_to_date"],
                   cached=entry["cached"], in_flight=entry["in_flight"],
                   waiting=entry["waiting"], failed=entry["failed"], unready=entry["unready"],
                   to_submit=entry["to_submit"],
                   unrenderable=sum((entry.get("render_errors") or {}).values()))

    def labelled(self) -> list[tuple[str, str, int]]:
        """(attribute, label, value) in the order the page shows them."""
        return [("matched", "matched", self.matched), ("up_to_date", "up to date",
                                                       self.up_to_date),
                ("cached", "from the result cache", self.cached),
                ("in_flight", "in flight", self.in_flight), ("waiting", "waiting", self.waiting),
                ("to_submit", "to submit", self.to_submit), ("failed", "failed", self.failed),
                ("unready", "waiting for another job", self.unready),
                ("unrenderable", "cannot be rendered", self.unrenderable)]


@dataclass(frozen=True, kw_only=True)
class SomePoints:
    """Points by id — sources often keep only the first few — and how many in all."""

    point_ids: Sequence[PointId] = ()
    points: int | None = None     # None: exactly the ids listed

    @property
    def point_count(self) -> int:
        return self.points if self.points is not None else len(self.point_ids)


@dataclass(frozen=True)
class FailedRequest(SomePoints):
    """A request that failed for good, and the points waiting for it (the ledger keeps
    the first one and a count)."""

    key: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class RenderError(SomePoints):
    """Points whose request could not be rendered: why, where (template:line), and which.
    One per point, or one per message as `plan` keeps them (`RenderFailures`: the count
    and the first few ids)."""

    reason: str
    where: str = ""


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    cached_input: int = 0
    output: int = 0
    reasoning: int = 0


@dataclass(frozen=True)
class BatchReport:
    """One batch, as the manifest records it. `tokens` is None until it is collected;
    `cost_usd` / `cost_standard_usd` are None when not computed (never 0 for unknown)."""

    job: str
    batch_id: str
    provider: str
    status: str
    requests: int
    created_at: datetime | None = None
    completed_at: datetime | None = None
    tokens: Tokens | None = None
    cost_usd: Decimal | None = None
    cost_standard_usd: Decimal | None = None


@dataclass
class JobReport:
    """One job: its spec, its counts, what changed, what failed, and its points.

    `output_schema` is the job's output JSON Schema (None for text or embedding output):
    its top-level properties become the table's output columns, and their kinds (enum,
    array, number, boolean) decide the filters and the charts. `changes` are the lines
    `plan` prints for "what changed since the last apply" (indented lines are a diff).
    `points` is consumed once, while this job's section is written.
    """

    name: str
    file: str
    model: str
    endpoint: str
    provider: str
    fingerprint: str
    output_key: str
    counts: JobCounts
    input_fields: Sequence[str]
    output_schema: Mapping[str, Any] | None = None
    changes: Sequence[str] = ()
    failures: Iterable[FailedRequest] = ()
    render_errors: Iterable[RenderError] = ()
    points: Iterable[PointRow | tuple[PointId, Mapping[str, Any], Any]] = ()


@dataclass
class ReportData:
    project: str
    generated_at: datetime
    jobs: Sequence[JobReport]
    batches: Sequence[BatchReport] = field(default_factory=list)
