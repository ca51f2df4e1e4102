"""The workspace one command works with, and the stages it is made of.

A `Workspace` opens the edges lazily (the ledger, the Batch API, Qdrant) and offers each
stage of the flow as one method: plan, prepare (a reconcile pass that packs and records
shards), submit, adopt, collect, write the answers, cancel. `apply.py` strings them into
the reconcile loop; the stage commands (prepare, submit, status, collect) call one each.

Each packing pass runs in one ledger transaction: the shards it packs and the keys it
queues are recorded together, or — when the budget or a template refuses them — not at all.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

from . import changes, crash, manifest
from .collect import Collected, collect_finished, refresh
from .errors import BudgetExceeded
from .estimate import CostRange, Estimate, cost_range
from .pack import SHARDS
from .pricing import PriceTable
from .progress import Reporter
from .provider import BatchAPI, open_provider
from .reconcile import JobPlan, reconcile, stamp
from .select import Selection, connect
from .spec import Job, ProjectContext
from .store import TERMINAL, StateLock, Store
from .submit import adopt, submit_pending


@dataclass
class Options:
    wait: bool = True
    max_cost: float | None = None
    retry_failed: bool = False
    force: bool = False
    lock_timeout: float = 0.0
    emulator_speed: str | None = None   # override the project's, e.g. "instant" in tests



class Workspace:
    """Everything one command works with: project, jobs, ledger, Qdrant, provider."""

    def __init__(self, project: ProjectContext, jobs: list[Job], reporter: Reporter,
                 options: Options | None = None):
        self.project = project
        self.jobs = jobs
        self.report = reporter
        self.options = options or Options()
        self.prices = PriceTable.load(project.config.prices,
                                      origin=project.file or "batchrun.yaml")
        self._store: Store | None = None
        self._api: BatchAPI | None = None
        self._qdrant = None

    # ---- lazily opened edges ---------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.project.state_dir, self.project.provider_id)
        return self._store

    @property
    def api(self) -> BatchAPI:
        if self._api is None:
            self._api = open_provider(self.project, emulator_speed=self.options.emulator_speed)
        return self._api

    @property
    def qdrant(self):
        if self._qdrant is None:
            self._qdrant = connect(self.project)
            # The embedded engine holds every point as Python objects; without this, each
            # garbage collection walks the whole collection (about a fifth of a no-op apply).
            gc.freeze()
        return self._qdrant

    def selection(self, job: Job) -> Selection:
        cfg = self.project.config.qdrant
        return Selection(self.qdrant, job, page=cfg.scroll_page, write_batch=cfg.write_batch)

    def close(self) -> None:
        if self._qdrant is not None:
            self._qdrant.close()
            gc.unfreeze()   # what was frozen with the collection may be collected again
        if self._store is not None:
            self._store.close()

    @contextmanager
    def locked(self, command: str) -> Iterator[None]:
        lock = StateLock(self.project.state_dir)
        lock.acquire(self.options.lock_timeout, command)
        try:
            if lock.previous and lock.previous.get("pid"):
                self.report.line(f"note: the previous run (pid {lock.previous['pid']}, "
                                 f"{lock.previous.get('command', '')}) ended without finishing; "
                                 "resuming where it stopped")
            yield
        finally:
            lock.release()

    # ---- the stages ------------------------------------------------------------------

    def plan(self) -> dict[str, JobPlan]:
        """What apply would do, per job. Reads Qdrant and the ledger; spends nothing."""
        return {job.name: self._pass(job, writes=False, pack=False, estimate=True)
                for job in self.jobs}

    def _pass(self, job: Job, *, writes: bool, pack: bool, estimate: bool) -> JobPlan:
        selection = self.selection(job)
        self.report.start(job.name, selection.count() if self.report.wants_total else None)
        plan = reconcile(job, selection, self.store, apply=writes, pack=pack,
                         estimate=estimate, retry_failed=self.options.retry_failed,
                         force=self.options.force,
                         progress=lambda _stage, n: self.report.advance(job.name, n))
        self.report.finish(job.name)
        return plan

    def cost_range(self, job: Job, estimate: Estimate) -> CostRange:
        price = self.prices.lookup(job.spec.model)
        rates = price.batch if price is not None else None
        return cost_range(estimate, rates.input if rates else None,
                          rates.output if rates else None, self.output_mean(job))

    def output_mean(self, job: Job) -> float | None:
        row = self.store.db.execute(
            "SELECT SUM(output_tokens), SUM(json_extract(seen, '$.billed')) FROM batches "
            "WHERE job=? AND model=? AND collected_at IS NOT NULL",
            (job.name, job.spec.model)).fetchone()
        tokens, lines = row[0], row[1]
        return tokens / lines if tokens is not None and lines else None

    def prepare(self, job: Job, budget_used: list[Decimal]) -> JobPlan:
        """One apply pass: write what is free, pack what is pending, record the intents."""
        needs_estimate = self._budget(job) is not None or job.spec.batch.max_enqueued_tokens
        refused: list = []
        try:
            with self.store.transaction():
                plan = self._pass(job, writes=True, pack=True, estimate=bool(needs_estimate))
                refused = plan.shards
                plan.raise_render_errors(job)
                self._refuse_over_budget(job, plan, budget_used)
                refused = []
                self._record_job(job)
        finally:
            self._discard_unrecorded(refused)
        manifest.write(self.store)
        crash.point("after-pack")
        return plan

    def _record_job(self, job: Job) -> None:
        self.store.record_job(job.name, file=job.file, fingerprint=job.fingerprint,
                              endpoint=job.spec.endpoint, model=job.spec.model,
                              output_key=job.output_key, details=changes.details(job))

    def _discard_unrecorded(self, shards: list) -> None:
        """Shard files of a refused pass: no batch refers to them, so nobody will send them."""
        recorded = {row["shard"] for row in self.store.batches()}
        for shard in shards:
            if shard.sha not in recorded:
                self.store.artifacts.path(SHARDS, shard.sha).unlink(missing_ok=True)

    def _budget(self, job: Job) -> Decimal | None:
        limits = [Decimal(str(v)) for v in (job.spec.budget.max_cost_usd, self.options.max_cost)
                  if v is not None]
        return min(limits) if limits else None

    def _refuse_over_budget(self, job: Job, plan: JobPlan, used: list[Decimal]) -> None:
        budget = self._budget(job)
        if budget is None or not plan.requests:
            return
        estimate = self.cost_range(job, plan.estimate)
        remaining = budget - used[0]
        if estimate.low is None:
            raise BudgetExceeded(f"{job.name}: the price of {job.spec.model} is unknown, so "
                                 f"the budget of ${budget} cannot be checked",
                                 where=job.at("budget", "max_cost_usd"),
                                 hint="add its price under prices: in batchrun.yaml")
        if estimate.high is None:
            raise BudgetExceeded(f"{job.name}: output is uncapped, so {plan.requests:,} requests "
                                 f"have no upper cost bound to check against ${budget}",
                                 where=job.at("params"),
                                 hint="set params.max_tokens (or max_completion_tokens)")
        if estimate.high > remaining:
            per_request = estimate.high / plan.requests
            fit = int(remaining / per_request) if per_request > 0 else plan.requests
            raise BudgetExceeded(
                f"{job.name}: {plan.requests:,} requests are estimated at up to "
                f"${estimate.high:.4f}, ${estimate.high - remaining:.4f} over the remaining "
                f"budget of ${remaining:.4f}; about {fit:,} requests would fit",
                where=job.at("budget", "max_cost_usd") if job.spec.budget.max_cost_usd
                is not None else None,
                hint="raise the budget (budget.max_cost_usd or --max-cost), or narrow "
                     "source.filter / source.limit")
        used[0] += estimate.high

    def targets(self, jobs: list[Job]) -> dict[str, str]:
        return {j.name: self.project.target_id(j.spec.source.collection) for j in jobs}

    def submit(self, jobs: list[Job]) -> int:
        created = submit_pending(self.store, self.api, self.targets(jobs),
                                 report=self.report.line)
        if created:
            manifest.write(self.store)
        return len(created)

    def adopt(self) -> int:
        count = adopt(self.store, self.api, self.targets(self.jobs), report=self.report.line)
        if count:
            manifest.write(self.store)
        return count

    def collect(self) -> list[Collected]:
        if not self.store.batches(open_only=True):
            return []
        refresh(self.store, self.api)
        collected = collect_finished(
            self.store, self.api, self.prices,
            {j.name: j.spec.batch.max_attempts for j in self.jobs},
            backoff=self.api.poll_interval * 4, report=self.report.line)
        manifest.write(self.store)
        return collected

    def cancel(self) -> list[str]:
        """Ask the provider to cancel every open batch of these jobs."""
        names = {j.name for j in self.jobs}
        cancelled = []
        for row in self.store.batches(open_only=True):
            if row["job"] in names and row["batch_id"] and row["status"] not in TERMINAL:
                batch = self.api.cancel(row["batch_id"])
                with self.store.transaction():
                    self.store.update_batch(row["seq"], status=batch.status)
                cancelled.append(batch.id)
        manifest.write(self.store)
        return cancelled

    def write_back(self) -> dict[str, JobPlan]:
        """A full pass that writes cached results without packing anything (`collect`,
        which may run on a ledger that never recorded the waiting points)."""
        plans = {}
        for job in self.jobs:
            with self.store.transaction():
                plans[job.name] = self._pass(job, writes=True, pack=False, estimate=False)
        return plans

    def write_answered(self, job: Job) -> int:
        """Write the results that arrived for the points the last pass left waiting."""
        selection = self.selection(job)
        written = 0
        for point_id, inputs, result in self.store.answered_points(job.name):
            selection.write(point_id, {job.output_key: result.value, selection.stamp_key:
                                       stamp(inputs, result, self.store.provider)})
            written += 1
        if written:
            selection.flush()
            with self.store.transaction():
                self.store.forget_answered(job.name)
        return written
