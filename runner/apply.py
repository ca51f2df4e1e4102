"""`batchrun apply`: the reconcile loop that brings a collection up to date with its job
specs, spending money only on what changed.

    adopt batches the ledger lacks → drop shards never created → collect finished
    → for each job (dependencies first): a full reconcile pass → budget check → submit
    → wait; collect; write each answer to the points waiting for it
    → another full pass only for jobs with requests to retry or held back, or whose
      dependencies just finished
    → until every point is written or failed for good, or (--no-wait) right after
      submitting, or (refused by a budget) for that job, or nothing can move any more

A full pass reads and checks every selected point; after that, answers go straight to
the points the pass recorded as waiting, so a cold run renders each point once and an
incremental run does not reread the collection to write k results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .budget import Budget
from .collect import Collected
from .errors import BatchrunError, BudgetExceeded
from .jobs import Job
from .reconcile import JobPlan
from .records import (
    FAILED_FOR_GOOD,
    IN_FLIGHT_STATES,
    PREPARED,
    RETRY_READY,
    UNSENT,
    UNSETTLED,
    WAITING_STATES,
)
from .workspace import Options, Workspace


@dataclass
class JobRun:
    """One job across one apply: its last full pass, what was sent and written since."""

    last: JobPlan
    sent: int = 0          # requests submitted by this run
    written: int = 0       # points written by this run
    written_from_cache: int = 0   # of which from results cached before this run (no request)
    shards: int = 0
    waiting: dict[str, int] = field(default_factory=dict)   # ledger.waiting_states at the end

    def add(self, plan: JobPlan, *, first: bool) -> None:
        self.last = plan
        self.sent += sum(s.requests for s in plan.shards)
        self.shards += len(plan.shards)
        self.written += plan.cached
        if first:
            self.written_from_cache += plan.cached

    @property
    def failed(self) -> int:
        return self.waiting.get(FAILED_FOR_GOOD, 0)

    @property
    def failed_points(self) -> int:
        """Points that cannot be sent (template, text, size), as the last pass found."""
        return self.last.point_failed

    @property
    def in_flight(self) -> int:
        return sum(self.waiting.get(state, 0) for state in IN_FLIGHT_STATES)

    @property
    def unsent(self) -> int:
        """Not sent yet: to retry, held back by the queue limit, or in another job's
        prepared shard."""
        return sum(self.waiting.get(state, 0) for state in WAITING_STATES)

    @property
    def prepared(self) -> int:
        """Waiting on a shard another job prepared and nobody has submitted yet."""
        return self.waiting.get(PREPARED, 0)

    @property
    def settled(self) -> bool:
        """Nothing of the job is still to send, to await or to write."""
        return not any(self.waiting.get(state) for state in UNSETTLED)

    @property
    def up_to_date(self) -> int:
        return self.last.matched - self.failed - self.in_flight - self.unsent - \
            self.last.point_failed - self.last.unready


@dataclass
class ApplyResult:
    runs: dict[str, JobRun] = field(default_factory=dict)
    submitted: int = 0
    collected: list[Collected] = field(default_factory=list)
    adopted: int = 0
    blocked: dict[str, str] = field(default_factory=dict)   # job → what it waits for
    refused: dict[str, BatchrunError] = field(default_factory=dict)  # job → why not run
    stalled: bool = False  # stopped with work left that no further round could move

    @property
    def failed(self) -> int:
        return sum(run.failed for run in self.runs.values())

    @property
    def failed_points(self) -> int:
        return sum(run.failed_points for run in self.runs.values())

    @property
    def in_flight(self) -> int:
        """Points whose answer is still to come: sent, or still to be sent."""
        return sum(run.in_flight + run.unsent for run in self.runs.values())

    @property
    def progress(self) -> tuple[int, int, int]:
        """Changes when a round of the loop achieved something."""
        return (self.submitted, len(self.collected),
                sum(run.written for run in self.runs.values()))


def apply(ws: Workspace) -> ApplyResult:
    out = ApplyResult()
    # Every batch the provider has for these jobs joins the ledger first; the shards of
    # these jobs that are then still uncreated are dropped, and re-packed by each job's
    # pass, so a spec changed since an interrupted run never sends what it no longer asks
    # for, and stale shards hold no queue room or requests hostage.
    out.adopted = ws.adopt()
    ws.drop_stale_intents()
    out.collected += ws.collect()
    budget = ws.budget()
    todo = [job.name for job in ws.jobs]         # jobs that need a full pass, in order
    idle_rounds = 0
    while True:
        before = out.progress
        for job in ws.jobs:
            if job.name in todo:
                _full_pass(ws, job, out, todo, budget)
        _refresh_states(ws, out)
        if not ws.options.wait or _settled(out, todo):
            return out
        collected = _wait(ws)
        out.collected += collected
        for job in ws.jobs:
            if job.name in out.runs:
                out.runs[job.name].written += ws.write_answered(job)
        _refresh_states(ws, out)
        idle = out.progress == before and not ws.ledger.in_flight() and \
            ws.ledger.next_retry_time() is None
        idle_rounds = idle_rounds + 1 if idle else 0
        if idle_rounds == 2:
            # Twice nothing sent, collected or written, and nothing to wait for: another
            # round would do the same. Stop rather than spin; the report says what is left.
            out.stalled = True
            return out
        for name, run in out.runs.items():
            if (run.waiting.get(RETRY_READY) or run.waiting.get(UNSENT)) \
                    and name not in todo and name not in out.refused:
                todo.append(name)
        todo.extend(name for name in out.blocked if name not in todo)


def _full_pass(ws: Workspace, job: Job, out: ApplyResult, todo: list[str], budget: Budget) -> None:
    todo.remove(job.name)
    refused = next((need for need in job.spec.needs if need in out.refused), None)
    if refused:
        out.refused[job.name] = BatchrunError(f"{job.name} was not run: it needs {refused}, "
                                              "which was refused")
        return
    blocker = _blocked_by(job, out)
    if blocker:
        out.blocked[job.name] = blocker
        return
    out.blocked.pop(job.name, None)
    run = out.runs.get(job.name)
    try:
        plan = ws.prepare(job, budget, first=run is None)
    except BudgetExceeded as exc:
        # One job over its budget does not stop the others; apply exits 1 at the end.
        out.refused[job.name] = exc
        return
    if run is None:
        out.runs[job.name] = run = JobRun(plan)
        run.add(plan, first=True)
    else:
        run.add(plan, first=False)
    if plan.shards:
        out.submitted += ws.submit([job])
    run.waiting = ws.ledger.waiting_states(job.name, time.time())   # for jobs that need it


def _blocked_by(job: Job, out: ApplyResult) -> str | None:
    """A job that reads another's output waits until that one has nothing in progress."""
    for need in job.spec.needs:
        run = out.runs.get(need)
        if run is None or not run.settled:
            return f"waits for {need}"
    return None


def _refresh_states(ws: Workspace, out: ApplyResult) -> None:
    now = time.time()
    for name, run in out.runs.items():
        run.waiting = ws.ledger.waiting_states(name, now)


def _settled(out: ApplyResult, todo: list[str]) -> bool:
    """Nothing left to do for the jobs still running (a refused job is done with)."""
    runs_settled = all(run.settled for name, run in out.runs.items()
                       if name not in out.refused)
    return runs_settled and not todo


def _wait(ws: Workspace) -> list[Collected]:
    """Sleep until a batch finishes or a backoff ends; collect what finished."""
    while True:
        if ws.ledger.in_flight():
            collected = ws.poll()
            if collected:
                return collected
        else:
            wake = ws.ledger.next_retry_time()
            if wake is None:
                return []
            time.sleep(max(0.0, min(wake - time.time(), ws.api.poll_interval * 10)))
        if ws.ledger.backoff_expired(time.time()):
            return []


__all__ = ["apply", "Options", "ApplyResult", "JobRun", "Workspace"]
