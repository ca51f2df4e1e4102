"""Jobs answered by more than one provider, in one command.

Each provider keeps its own ledger, lock and API client, so a `Workspace` serves one
provider. When the jobs of a command are answered by several (a job's own `provider:`
over batchrun.yaml's), each provider gets a workspace — a lane — and `Workspaces` puts
them behind the interface of one: a stage for a job goes to its lane, a stage for all
goes to every lane, and what they report is merged. The apply loop, plan and the other
commands then run across providers unchanged: each job's batches go to its provider,
every provider's batches are polled together, and `--max-cost` caps the whole run.
The lanes share the Qdrant client (the embedded engine is opened once per process).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .budget import Budget
from .provider import config as providers
from .retention import Garbage
from .workspace import Options, Workspace

if TYPE_CHECKING:
    from .collect import Collected
    from .datacheck import DataWarning
    from .estimate import CostRange, Estimate
    from .jobs import Job
    from .ledger import Ledger
    from .progress import Reporter
    from .project import ProjectContext
    from .reconcile import JobPlan
    from .records import BatchRecord, FailureRecord, JobRecord


def open_lanes(project: ProjectContext, jobs: list[Job], reporter: Reporter,
               options: Options | None = None) -> Workspace | Workspaces:
    """One workspace when one provider answers every job (as before), else one per
    provider behind `Workspaces`."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(providers.provider_id(job.provider), []).append(job)
    if len(groups) <= 1:
        lane = project.for_provider(jobs[0].provider) if jobs else project
        return Workspace(lane, jobs, reporter, options)
    return Workspaces(project, jobs, list(groups.values()), reporter, options or Options())


@dataclass
class _PollInterval:
    poll_interval: float


class Workspaces:
    """Several providers' workspaces as one (module doc)."""

    def __init__(self, project: ProjectContext, jobs: list[Job], groups: list[list[Job]],
                 reporter: Reporter, options: Options):
        self.project = project
        self.jobs = jobs
        self.progress = reporter
        self.options = options
        self.lanes: list[Workspace] = []
        for group in groups:
            lane = Workspace(project.for_provider(group[0].provider), group, reporter, options,
                             peers=jobs, qdrant_from=self.lanes[0] if self.lanes else None)
            self.lanes.append(lane)
        self._lane = {job.name: lane for lane in self.lanes for job in lane.jobs}
        self.prices = self.lanes[0].prices
        self.started = time.time()
        self.ledger = Ledgers(self)

    def lane(self, job: str) -> Workspace:
        return self._lane[job]

    def ledger_of(self, job: str) -> Ledger:
        return self.lane(job).ledger

    @property
    def api(self) -> _PollInterval:
        """What the apply loop asks of the API: how long to sleep between polls."""
        return _PollInterval(min(lane.api.poll_interval for lane in self.lanes))

    @property
    def qdrant(self) -> Any:
        return self.lanes[0].qdrant

    def selection(self, job: Job) -> Any:
        return self.lane(job.name).selection(job)

    def close(self) -> None:
        for lane in reversed(self.lanes):   # the first owns the Qdrant client
            lane.close()

    @contextlib.contextmanager
    def locked(self, command: str, *, tidy: bool = True) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for lane in self.lanes:
                stack.enter_context(lane.locked(command, tidy=tidy))
            yield

    # ---- stages for one job go to its lane, stages for all to every lane ---------

    def plan(self, *, every_point: bool = False, estimate: bool = True) -> dict[str, JobPlan]:
        plans: dict[str, JobPlan] = {}
        for lane in self.lanes:
            plans.update(lane.plan(every_point=every_point, estimate=estimate))
        return {job.name: plans[job.name] for job in self.jobs}

    def empty_warnings(self, matched: dict[str, int]) -> list[DataWarning]:
        return [warning for lane in self.lanes for warning in lane.empty_warnings(
            {job.name: matched[job.name] for job in lane.jobs if job.name in matched})]

    def cost_range(self, job: Job, estimate: Estimate) -> CostRange:
        return self.lane(job.name).cost_range(job, estimate)

    def budget(self) -> Budget:
        return Budget(self.options.max_cost, self.cost_range)

    def prepare(self, job: Job, budget: Budget, *, first: bool = True) -> JobPlan:
        return self.lane(job.name).prepare(job, budget, first=first)

    def submit(self, jobs: list[Job]) -> int:
        return sum(lane.submit([j for j in jobs if self._lane[j.name] is lane])
                   for lane in self.lanes)

    def adopt(self, *, lookback: float | None = None) -> int:
        return sum(lane.adopt(lookback=lookback) for lane in self.lanes)

    def drop_stale_intents(self) -> None:
        for lane in self.lanes:
            lane.drop_stale_intents()

    def collect(self, *, wait: bool = False) -> list[Collected]:
        collected = [c for lane in self.lanes for c in lane.collect_finished()]
        while wait and self.ledger.in_flight():
            collected += self.poll()
        return collected

    def poll(self) -> list[Collected]:
        time.sleep(self.api.poll_interval)
        return [c for lane in self.lanes for c in lane.collect_finished(show=True)]

    def open_batches(self) -> list[tuple[Any, str, dict]]:
        return [row for lane in self.lanes for row in lane.open_batches()]

    def cancel(self) -> tuple[list[str], list[str]]:
        cancelled: list[str] = []
        problems: list[str] = []
        for lane in self.lanes:
            done, failed = lane.cancel()
            cancelled += done
            problems += failed
        return cancelled, problems

    def write_back(self) -> dict[str, JobPlan]:
        plans: dict[str, JobPlan] = {}
        for lane in self.lanes:
            plans.update(lane.write_back())
        return plans

    def write_answered(self, job: Job) -> int:
        return self.lane(job.name).write_answered(job)

    def garbage(self, keep: float, *, ask_provider: bool = True) -> Garbage:
        return sum((lane.garbage(keep, ask_provider=ask_provider) for lane in self.lanes),
                   Garbage())

    def tidy(self, keep: float, *, ask_provider: bool = True) -> tuple[Garbage, list[str]]:
        garbage, problems = Garbage(), list[str]()
        for lane in self.lanes:
            found, met = lane.tidy(keep, ask_provider=ask_provider)
            garbage, problems = garbage + found, problems + met
        return garbage, problems


class Ledgers:
    """The lanes' ledgers, read as one by the apply loop and the views."""

    def __init__(self, workspaces: Workspaces):
        self.ws = workspaces

    def _all(self) -> list[Ledger]:
        return [lane.ledger for lane in self.ws.lanes]

    def jobs(self) -> dict[str, JobRecord]:
        return {name: record for ledger in self._all() for name, record in ledger.jobs().items()
                if name in self.ws._lane and self.ws.ledger_of(name) is ledger}

    def failures(self, job: str, limit: int | None = None) -> list[FailureRecord]:
        return self.ws.ledger_of(job).failures(job, limit)

    def failure_count(self, job: str) -> int:
        return self.ws.ledger_of(job).failure_count(job)

    def waiting_states(self, job: str, now: float) -> dict[str, int]:
        return self.ws.ledger_of(job).waiting_states(job, now)

    def batches(self, *, job: str | None = None, open_only: bool = False) -> list[BatchRecord]:
        return [row for ledger in self._all()
                for row in ledger.batches(job=job, open_only=open_only)]

    def in_flight(self) -> list[BatchRecord]:
        return [row for ledger in self._all() for row in ledger.in_flight()]

    def next_retry_time(self) -> float | None:
        times = [t for ledger in self._all() if (t := ledger.next_retry_time()) is not None]
        return min(times) if times else None

    def backoff_expired(self, now: float) -> bool:
        return any(ledger.backoff_expired(now) for ledger in self._all())
