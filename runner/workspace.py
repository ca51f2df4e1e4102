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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import changes, crash, manifest, retention
from .budget import Budget
from .collect import Collected, collect_finished, refresh
from .errors import ProviderError
from .estimate import CostRange, Estimate, cost_range
from .jobs import Job
from .ledger import Ledger
from .lock import StateLock
from .pack import SHARDS
from .pricing import PriceTable
from .progress import Reporter
from .project import ProjectContext
from .reconcile import JobPlan, PassOptions, reconcile
from .select import Selection, connect
from .submit import adopt, cancel_in_flight, settle_duplicates, submit_pending
from .vectors import check_vector
from .writeback import Writer, write_answered

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from .datacheck import DataWarning
    from .provider import Provider as BatchAPI


GC_YOUNG = 10_000   # allocations between young garbage collections while Qdrant is open

# Statuses of a batch in flight that another copy of the project may have a say in.
UNSETTLED_BY_COPIES = ("validating", "cancelling", "cancelled")


@dataclass
class Options:
    wait: bool = True
    max_cost: float | None = None
    retry_failed: bool = False
    force: bool = False
    strict: bool = False        # a point that cannot be sent stops its job (the old way)
    lock_timeout: float = 0.0
    emulator_speed: str | None = None   # override the project's, e.g. "instant" in tests
    create_vectors: bool = False        # add a job's missing named vector to its collection



class Workspace:
    """Everything one command works with: project, jobs, ledger, Qdrant, provider."""

    def __init__(self, project: ProjectContext, jobs: list[Job], reporter: Reporter,
                 options: Options | None = None, *, peers: list[Job] | None = None,
                 qdrant_from: Workspace | None = None):
        self.project = project
        self.jobs = jobs
        # The jobs loaded with these (answered by other providers, lanes.py): what they
        # write is what these may need.
        self.peers = peers if peers is not None else jobs
        self._qdrant_from = qdrant_from   # the workspace whose Qdrant client this one shares
        self.progress = reporter
        self.options = options or Options()
        self.prices = PriceTable.load(project.config.prices,
                                      origin=project.file or "batchrun.yaml")
        self._ledger: Ledger | None = None
        self._api: BatchAPI | None = None
        self._qdrant: QdrantClient | None = None
        self._gc_threshold: tuple[int, ...] = gc.get_threshold()
        self._adopted = False      # adopt() ran: every batch the provider has is in the ledger
        self._open_at_start: set[int] = set()    # ledger rows in flight before adopt()
        self._dropped: dict[str, dict[str, dict[str, Any]]] = {}   # job → drop_intents()
        self.started = time.time()

    # ---- lazily opened edges ---------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.project.state_dir, self.project.provider_id)
            problem = manifest.damage(self._ledger.dir)
            if problem:   # a view of the ledger: rebuilt, never a reason to stop
                manifest.write(self._ledger)
                self.progress.line(f"warning: {problem}; rebuilt it from the ledger")
        return self._ledger

    @property
    def api(self) -> BatchAPI:
        if self._api is None:
            # The SDK loads here, when a command first talks to the API (plan never does).
            from .provider import open_provider

            self._api = open_provider(self.project, emulator_speed=self.options.emulator_speed)
        return self._api

    @property
    def qdrant(self):
        if self._qdrant_from is not None:   # one process may open the embedded engine once
            return self._qdrant_from.qdrant
        if self._qdrant is None:
            self._qdrant = connect(self.project)
            # The embedded engine holds every point as Python objects; without this, each
            # garbage collection walks the whole collection (about a fifth of a no-op apply).
            gc.freeze()
            # What apply writes into it joins the objects the collector walks: with young
            # collections every 700 allocations (the default), writing back a point cost
            # 1.7× more at 100,000 points than at 10,000; every 10,000, the same at both.
            self._gc_threshold = gc.get_threshold()
            gc.set_threshold(GC_YOUNG, *self._gc_threshold[1:])
        return self._qdrant

    def selection(self, job: Job) -> Selection:
        cfg = self.project.config.qdrant
        return Selection(self.qdrant, job, page=cfg.scroll_page, embedded=cfg.url is None,
                         partition=self.project.partition)

    def writer(self, job: Job) -> Writer:
        cfg = self.project.config.qdrant
        return Writer(self.qdrant, job, write_batch=cfg.write_batch,
                      whole_points=cfg.url is None)   # the embedded engine (writeback.py)

    def close(self) -> None:
        if self._qdrant is not None and self._qdrant_from is None:
            self._qdrant.close()
            gc.unfreeze()   # what was frozen with the collection may be collected again
            gc.set_threshold(*self._gc_threshold)
        if self._ledger is not None:
            self._ledger.close()

    @contextmanager
    def locked(self, command: str, *, tidy: bool = True) -> Iterator[None]:
        """Hold the state lock; on the way out (unless `tidy` is off, or the command
        failed) remove what nothing needs any more by the automatic policy (retention.py)."""
        lock = StateLock(self.project.state_dir)
        lock.acquire(self.options.lock_timeout, command)
        if lock.damaged:
            self.progress.line(f"warning: {lock.path} was damaged; rewrote it (it only says "
                               "which run holds the lock)")
        try:
            if lock.previous and lock.previous.get("pid"):
                self.progress.line(f"note: the previous run (pid {lock.previous['pid']}, "
                                 f"{lock.previous.get('command', '')}) ended without finishing; "
                                 "resuming where it stopped")
            yield
            if tidy and self._ledger is not None:
                try:
                    self.tidy(keep=retention.AUTOMATIC_KEEP, ask_provider=self._api is not None)
                except ProviderError:
                    pass   # housekeeping: the emulator's copies wait for the next command
        finally:
            lock.release()

    # ---- what the state directory no longer needs (retention.py) ---------------------

    def garbage(self, keep: float, *, ask_provider: bool = True) -> retention.Garbage:
        """What a gc keeping `keep` seconds of collected batches would remove. The
        provider's copies count only for the emulator, whose storage is this disk (a real
        provider's files expire there on their own, and another runner adopting a batch
        may still need them)."""
        stored = None
        if ask_provider and self.project.config.provider.name == "emulator":
            stored = self.api.stored_files()
        return retention.find_garbage(self.ledger, keep=keep, provider_files=stored)

    def tidy(self, keep: float, *, ask_provider: bool = True) -> tuple[retention.Garbage,
                                                                      list[str]]:
        """Remove what nothing needs (under the state lock); what was removed, and the
        problems met (a provider file that could not be deleted)."""
        garbage = self.garbage(keep, ask_provider=ask_provider)
        return garbage, retention.remove(garbage, self.ledger,
                                         self.api if garbage.provider_files else None)

    # ---- the stages ------------------------------------------------------------------

    def plan(self, *, every_point: bool = False, estimate: bool = True) -> dict[str, JobPlan]:
        """What apply would do, per job. Reads Qdrant and the ledger; spends nothing.
        `every_point`: keep every new and changed point's id, not only the first few.
        Without `estimate` the counts are the same, and no request is tokenized."""
        return {job.name: self._pass(job, PassOptions(estimate=estimate, needed=self.needed(job),
                                                      every_point=every_point))
                for job in self.jobs}

    def empty_warnings(self, matched: dict[str, int]) -> list[DataWarning]:
        """Why the jobs that selected no point (`matched` 0) did, as far as a sample of
        their collection can tell: a filter key no point has, a value of the wrong type."""
        from .datacheck import empty_selection

        return [warning for job in self.jobs if matched.get(job.name) == 0
                for warning in empty_selection(self.qdrant, job)]

    def needed(self, job: Job) -> tuple[str, ...]:
        """The payload keys of the jobs `job` needs (those loaded with it) that write one;
        a vector job needed is waited for, but a template cannot read a vector."""
        keys = {j.name: j.output_key for j in self.peers if j.output_vector is None}
        return tuple(keys[name] for name in job.spec.needs if name in keys)

    def _pass(self, job: Job, options: PassOptions, *, write: bool = False) -> JobPlan:
        selection = self.selection(job)
        # A vector job's collection must take its vectors before anything is sent for it.
        created = check_vector(self.qdrant, job, create=write and self.options.create_vectors)
        if created:
            self.progress.line(f"{job.name}: {created}")
        self.progress.start(job.name, selection.count() if self.progress.wants_total else None)
        plan = reconcile(job, selection, self.ledger, options,
                         self.writer(job) if write else None,
                         progress=lambda _stage, n: self.progress.advance(job.name, n))
        self.progress.finish(job.name)
        return plan

    def cost_range(self, job: Job, estimate: Estimate) -> CostRange:
        price = self.prices.lookup(job.priced_model)
        rates = price.batch if price is not None else None
        return cost_range(estimate, rates.input if rates else None,
                          rates.output if rates else None,
                          self.ledger.output_mean(job.name, job.spec.model))

    def budget(self) -> Budget:
        """The limits of one command: each job's budget, and --max-cost for the run."""
        return Budget(self.options.max_cost, self.cost_range)

    def prepare(self, job: Job, budget: Budget, *, first: bool = True) -> JobPlan:
        """One packing pass: write what is free, pack what is pending, record the intents.
        `first`: the job's first pass of this command, where --retry-failed and --force
        reset failed requests."""
        opts = self.options
        refused: list = []
        try:
            with self.ledger.transaction():
                # apply has adopted every batch the provider has: intents left now were
                # never created. prepare has not, so it keeps the ones already uploaded.
                uploaded = {**self._dropped.pop(job.name, {}),
                            **self.ledger.drop_intents(job.name, uploaded=self._adopted)}
                if first and (opts.retry_failed or opts.force):
                    self.ledger.reset_failed(job.name)
                plan = self._pass(job, PassOptions(
                    pack=True, estimate=budget.applies(job), force=opts.force,
                    fresh_batches=self._fresh_batches() if opts.force else frozenset(),
                    uploaded=uploaded, needed=self.needed(job)), write=True)
                refused = plan.shards
                if opts.strict:
                    plan.raise_point_failures(job)
                budget.charge(job, plan)
                refused = []
                self._record_job(job)
        finally:
            self._discard_unrecorded(refused)
        manifest.write(self.ledger)
        crash.point("after-pack")
        return plan

    def _fresh_batches(self) -> frozenset[str]:
        """With --force, the answers that count as new: from batches this command created,
        or that the ledger had in flight when it started (awaited, not sent again) — not
        those collected before, nor old ones found again by adopt."""
        return frozenset(row.batch_id for row in self.ledger.batches()
                         if row.batch_id and (row.seq in self._open_at_start
                                                 or row.intent_at >= self.started))

    def drop_stale_intents(self) -> None:
        """After adopt: drop every shard of these jobs never created as a batch (each
        job's pass packs what is still pending; a shard packed again keeps its upload)."""
        with self.ledger.transaction():
            for job in self.jobs:
                self._dropped[job.name] = self.ledger.drop_intents(job.name, uploaded=True)

    def _record_job(self, job: Job) -> None:
        self.ledger.record_job(job.name, file=job.file, fingerprint=job.fingerprint,
                              endpoint=job.spec.endpoint, model=job.spec.model,
                              output_key=job.output_key, details=changes.request_shape(job))

    def _discard_unrecorded(self, shards: list) -> None:
        """Shard files of a refused pass: no batch refers to them, so nobody will send them."""
        recorded = {row.shard for row in self.ledger.batches()}
        for shard in shards:
            if shard.sha not in recorded:
                self.ledger.artifacts.path(SHARDS, shard.sha).unlink(missing_ok=True)

    @property
    def lookback(self) -> float:
        """Seconds back that batches are looked for to adopt (provider.adopt_lookback_hours)."""
        return self.project.config.provider.adopt_lookback_hours * 3600

    def ledger_of(self, job: str) -> Ledger:
        """The ledger a job's requests are recorded in (one per provider, lanes.py)."""
        return self.ledger

    @property
    def lanes(self) -> list[Workspace]:
        """One provider's workspace is its own only lane (lanes.py has several)."""
        return [self]

    def targets(self, jobs: list[Job]) -> dict[str, str]:
        return {j.name: self.project.target_id(j.spec.source.collection) for j in jobs}

    def submit(self, jobs: list[Job]) -> int:
        created = submit_pending(self.ledger, self.api, self.targets(jobs),
                                 lookback=self.lookback, say=self.progress.line)
        if created:
            manifest.write(self.ledger)
        return len(created)

    def adopt(self, *, lookback: float | None = None) -> int:
        self._open_at_start = {row.seq for row in self.ledger.batches(open_only=True)}
        count = adopt(self.ledger, self.api, self.targets(self.jobs),
                      {j.name: j.spec.batch.max_attempts for j in self.jobs},
                      lookback=self.lookback if lookback is None else lookback,
                      say=self.progress.line)
        self._adopted = True
        if count:
            manifest.write(self.ledger)
        return count

    def collect(self, *, wait: bool = False) -> list[Collected]:
        """Collect the batches that have finished; with `wait`, poll until all have."""
        collected = self.collect_finished()
        while wait and self.ledger.in_flight():
            collected += self.poll()
        return collected

    def poll(self) -> list[Collected]:
        """Sleep one poll interval, refresh the batches in flight (shown as progress),
        collect what finished."""
        time.sleep(self.api.poll_interval)
        return self.collect_finished(show=True)

    def collect_finished(self, *, show: bool = False) -> list[Collected]:
        if not self.ledger.in_flight():
            return []
        batches = refresh(self.ledger, self.api)
        if show:
            self.progress.batches(batches)
        unsettled = [row for row in self.ledger.in_flight()
                     if row.status in UNSETTLED_BY_COPIES]
        if unsettled:
            # A copy of this project elsewhere may have created the same shard: while a
            # batch validates, cancelling the later one is free; and a batch of ours that
            # another copy cancelled is followed to the one it kept, not retried.
            settle_duplicates(self.ledger, self.api, self.targets(self.jobs), unsettled,
                              say=self.progress.line)
        collected = collect_finished(self.ledger, self.api, self.prices,
                                     backoff=self.api.poll_interval * 4, say=self.progress.line,
                                     root=self.project.root)
        manifest.write(self.ledger)
        return collected

    def open_batches(self) -> list[tuple[Any, str, dict]]:
        """(ledger row, status, batch info) of these jobs' batches not yet collected, as
        the provider sees them now. Read-only: an apply running meanwhile owns the ledger."""
        names = {j.name for j in self.jobs}
        out = []
        for row in self.ledger.batches(open_only=True):
            if row.job not in names:
                continue
            status, info = row.status, row.info
            if row.batch_id:
                batch = self.api.retrieve(row.batch_id)
                status, info = batch.status, batch.info
            out.append((row, status, info))
        return out

    def cancel(self) -> tuple[list[str], list[str]]:
        """Ask the provider to cancel every batch of these jobs in flight. Returns the ids
        cancelling, and the problems of those that could not be (finished meanwhile)."""
        cancelled, problems = cancel_in_flight(self.ledger, self.api, {j.name for j in self.jobs})
        manifest.write(self.ledger)
        return cancelled, problems

    def write_back(self) -> dict[str, JobPlan]:
        """A full pass that writes cached results without packing anything (`collect`,
        which may run on a ledger that never recorded the waiting points)."""
        plans = {}
        for job in self.jobs:
            with self.ledger.transaction():
                plans[job.name] = self._pass(job, PassOptions(needed=self.needed(job)),
                                             write=True)
        return plans

    def write_answered(self, job: Job) -> int:
        """Write the results that arrived for the points the last pass left waiting."""
        return write_answered(self.ledger, self.writer(job))
