"""The report (issue 16): the page's data gathered from a workspace, and the page written.

The page (reportpage/) knows only its contract; this module fills it from what batchrun
keeps: per job the counts of a plan pass (the numbers `plan --json` prints), the spec as
it is now, what changed since the previous run in plan's words, the requests that failed
for good and the points that could not be rendered; the batches with their tokens and
costs from the ledger; and the points with their results, streamed from Qdrant while the
page is written, one job at a time.

Read-only, like `plan`: no lock is taken and nothing but the page's file is written, so a
report can be made while an apply runs (on a Qdrant server: the embedded engine serves
one process at a time).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import views
from .jobs import Job
from .reasons import plan_reasons, spec_diff
from .reconcile import JobPlan
from .records import BatchRecord, JobRecord
from .reportpage import (
    BatchReport,
    FailedRequest,
    JobCounts,
    JobReport,
    RenderError,
    ReportData,
    Tokens,
    render,
)
from .workspace import Workspace

FIRST_RUN = "new job (first applied by this run)"


@dataclass(frozen=True)
class Written:
    """A report on disk: where, how big, and the plan pass its counts came from."""

    path: Path
    bytes: int
    plans: dict[str, JobPlan]
    rows: dict[str, int]        # per job, the points the page's table holds


def write_report(ws: Workspace, path: Path, *,
                 previous: Mapping[str, JobRecord] | None = None,
                 every_batch: bool = False) -> Written:
    """One plan pass for the counts, then the page, streaming each job's points.

    `previous`: the ledger's job records as they were before the run this report follows
    (apply --report), so "what changed" is what that run applied; without it, what
    changed since the last apply. `every_batch`: list every batch in the ledger, also of
    jobs not loaded (the project's report), not only the loaded jobs' batches."""
    plans = ws.plan(estimate=False)
    data = report_data(ws, plans, previous=previous, every_batch=every_batch)
    info = render(data, path)
    return Written(path, info.bytes, plans, {name: shown for name, (shown, _) in
                                             info.jobs.items()})


def report_data(ws: Workspace, plans: Mapping[str, JobPlan], *,
                previous: Mapping[str, JobRecord] | None = None,
                every_batch: bool = False) -> ReportData:
    recorded = ws.ledger.jobs()
    jobs = []
    for job in ws.jobs:
        plan = plans[job.name]
        if previous is None:
            lines = changes_since(job, plan, recorded.get(job.name))
        else:
            lines = changes_since(job, plan, previous.get(job.name),
                                  applied_now=job.name in recorded)
        jobs.append(job_report(ws, job, plan, lines))
    names = {job.name for job in ws.jobs}
    batches = [batch_report(row, lane.ledger.provider) for lane in ws.lanes
               for row in lane.ledger.batches()
               if row.shard and (every_batch or row.job in names)]   # no shard: being packed
    return ReportData(project=ws.project.root.name, generated_at=datetime.now(UTC),
                      jobs=jobs, batches=batches)


def job_report(ws: Workspace, job: Job, plan: JobPlan, changes: list[str]) -> JobReport:
    return JobReport(
        name=job.name, file=job.file, model=job.spec.model, endpoint=job.spec.endpoint,
        provider=ws.ledger_of(job.name).provider, fingerprint=job.fingerprint,
        output_key=job.writes,
        counts=JobCounts.from_plan_json(views.job_counts(plan)),
        input_fields=input_fields(job), output_schema=job.output_schema, changes=changes,
        failures=[FailedRequest(row.key, row.last_error or "no reason recorded", row.attempts,
                                point_ids=[row.point], points=row.points)
                  for row in ws.ledger_of(job.name).failures(job.name)],
        render_errors=[RenderError(f.first.problem, _where(f.first.where) if f.first.where
                                   else "", point_ids=f.sample, points=f.count)
                       for f in plan.point_failures.values()],
        points=_points(ws, job))


def changes_since(job: Job, plan: JobPlan, before: JobRecord | None, *,
                  applied_now: bool = False) -> list[str]:
    """What `plan` says changed against the job's record `before` — the spec's changes,
    then the points' — with the diff of changed templates as indented lines. A job that
    had no record before and has one now was applied for the first time by this run."""
    reasons = plan_reasons(plan, job, before)
    if before is None and applied_now:
        reasons = [FIRST_RUN, *reasons[1:]]   # plan's first reason: "new job (never applied)"
    return reasons + spec_diff(job, before)


def input_fields(job: Job) -> list[str]:
    """The columns of inputs: the fields the job selects, or else the names its templates
    read (`id` is the point's own column; `payload` is all of them)."""
    if job.spec.source.fields is not None:
        return list(job.spec.source.fields)
    names: dict[str, None] = {}
    for template in (job.system, job.user):
        if template is not None:
            names.update(dict.fromkeys(template.reads))
    return [name for name in names if name not in ("id", "payload")]


def batch_report(row: BatchRecord, provider: str) -> BatchReport:
    """One batch as the ledger records it: tokens once collected, costs when computed."""
    info = row.info
    collected = row.collected_at is not None
    return BatchReport(
        job=row.job, batch_id=row.batch_id or "(submitting)", provider=provider,
        status=row.status, requests=row.requests,
        created_at=_moment(info.get("created_at") or row.intent_at),
        completed_at=_moment(info.get("completed_at")),
        tokens=Tokens(input=row.input_tokens or 0, cached_input=row.cached_tokens or 0,
                      output=row.output_tokens or 0, reasoning=row.reasoning_tokens or 0)
        if collected else None,
        cost_usd=_dollars(row.cost_usd) if collected else None,
        cost_standard_usd=_dollars(row.cost_standard_usd) if collected else None)


def _points(ws: Workspace, job: Job) -> Iterator[tuple[Any, dict, Any]]:
    """Every selected point with what the job wrote for it, read page by page from Qdrant
    only when the page's writer reaches this job."""
    yield from ws.selection(job).peek(None)


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _dollars(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _where(where: Any) -> str:
    return f"{where.file}:{where.line}" if where.line else str(where.file)
