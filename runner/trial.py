"""`batchrun try`: a job on a few points now, through the synchronous API — the loop a
person lives in while writing a prompt, where a batch would take minutes to a day.

The points' requests are rendered by the code apply uses (preview.py), so each request
and its key are the ones a batch would carry. They are answered by the provider's
synchronous endpoint (`BatchAPI.answer_now`), concurrently, with the SDK's retries, and
each answer is parsed and validated by the code that handles a batch line. A valid answer
joins the result cache under its key, saying it came synchronously: the next apply writes
that point from the cache instead of paying for it again. What each call cost, at
standard prices, is kept apart from batch spend (synclog.py). An answer already cached is
shown, not bought twice. Nothing is written to Qdrant unless asked (`--write`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import manifest, synclog
from .answers import AnswerValidator
from .errors import BudgetExceeded
from .estimate import CostRange, Estimate, cost_range
from .jobs import Job
from .preview import Rendered, render_point
from .pricing import cost
from .reconcile import field_digests, inputs_digest, read_names
from .records import SYNC, Result, encode_value, utc_now
from .render import RenderError, request_frame
from .results import Expect, Outcome
from .select import Point
from .synclog import SyncCall
from .views import money
from .workspace import Workspace

# What became of each point: answered now, taken from the cache, answered with something
# unusable (invalid JSON, schema, refusal, cut off), not answered (an HTTP or network
# error), or not sent (its template failed on it).
OK, CACHED, INVALID, FAILED, ERROR = "ok", "cached", "invalid", "failed", "error"


@dataclass
class TrialOptions:
    use_cache: bool = True       # read answers from the result cache, and keep new ones
    write: bool = False          # write valid answers to Qdrant, stamped
    max_cost: float | None = None
    concurrency: int = 8


@dataclass
class TrialPoint:
    point: Point
    request: Rendered | None     # None: its template failed on it
    status: str = OK
    answer: Any = None
    problem: str | None = None   # why there is no usable answer
    result: Result | None = None  # the answer as the cache holds it
    call: SyncCall | None = None  # the call that answered it (None: cached, or a twin's)


@dataclass
class Trial:
    job: Job
    points: list[TrialPoint]
    estimate: Estimate = field(default_factory=Estimate)
    cost: CostRange = CostRange(None, None, None)   # of what was sent, at standard prices
    batch_cost: CostRange = CostRange(None, None, None)   # the same requests in a batch
    calls: list[SyncCall] = field(default_factory=list)
    kept: int = 0                # answers kept in the result cache
    written: int = 0             # points written to Qdrant (--write)

    @property
    def failed(self) -> int:
        return sum(p.status in (INVALID, FAILED, ERROR) for p in self.points)

    @property
    def spent(self) -> Decimal | None:
        """What the calls cost at standard prices (None: a billed call's price unknown)."""
        costs = [c.cost_usd for c in self.calls if c.billed]
        return None if None in costs else sum((c for c in costs if c is not None), Decimal(0))


def run_trial(ws: Workspace, job: Job, points: list[Point], options: TrialOptions,
              say: Callable[[str], None]) -> Trial:
    """Render, estimate, send what the cache lacks, validate, keep; see the module doc."""
    trial = Trial(job, _rendered(job, points))
    pending: dict[str, Rendered] = {}   # identical requests are sent once
    for entry in trial.points:
        if entry.request is None:
            continue
        cached = ws.ledger.result(entry.request.key) if options.use_cache else None
        if cached is not None:
            entry.status, entry.answer, entry.result = CACHED, cached.value, cached
        elif pending.setdefault(entry.request.key, entry.request) is entry.request:
            trial.estimate.add(entry.request.tokens, entry.request.output_cap)
    price = ws.prices.lookup(job.spec.model)
    mean = ws.ledger.output_mean(job.name, job.spec.model)
    if price is not None:
        trial.cost = cost_range(trial.estimate, price.standard.input, price.standard.output,
                                mean)
    if price is not None and price.batch is not None:
        trial.batch_cost = cost_range(trial.estimate, price.batch.input, price.batch.output,
                                      mean)
    if pending:
        _check_cost(trial, options.max_cost)
        say(f"sending {len(pending):,} request{'s' * (len(pending) != 1)} to "
            f"{ws.api.label} now: {estimate_text(trial)}")
    outcomes = _answer(ws, job, pending, options.concurrency)
    _settle(ws, trial, outcomes, options)
    if options.write:
        _write(ws, trial)
    return trial


def _rendered(job: Job, points: list[Point]) -> list[TrialPoint]:
    frame = request_frame(job)
    out = []
    for point in points:
        try:
            out.append(TrialPoint(point, render_point(job, frame, point)))
        except RenderError as exc:
            needs = job.spec.needs   # the likely cause: a job it reads has not answered yet
            hint = f" (it needs {', '.join(needs)}: apply that first)" if needs else ""
            out.append(TrialPoint(point, None, ERROR,
                                  problem=f"{exc.where}: {exc.problem}{hint}"))
    return out


def estimate_text(trial: Trial) -> str:
    est, cost_ = trial.estimate, trial.cost
    exact = "exact" if est.input_exact else "approximate"
    cap = f"≤ {est.output_cap:,} output tokens" if est.output_cap is not None \
        else "output uncapped"
    if not cost_.known:
        price = "cost unknown (no price for this model)"
    else:
        price = f"{_range(cost_)} at standard prices (estimate)"
        if trial.batch_cost.known:
            price += f"; in a batch: {_range(trial.batch_cost)}"
    return f"{est.input_tokens:,} input tokens ({exact}), {cap}; {price}"


def _range(cost_: CostRange) -> str:
    high = money(cost_.high) if cost_.high is not None else "unbounded"
    return f"~{money(cost_.low)}–{high}"


def _check_cost(trial: Trial, max_cost: float | None) -> None:
    """--max-cost caps the upper estimate, at the standard prices a synchronous call is
    paid at; nothing is sent when it cannot be checked or is over."""
    if max_cost is None:
        return
    job, requests = trial.job, trial.estimate.requests
    if not trial.cost.known:
        raise BudgetExceeded(f"{job.name}: the price of {job.spec.model} is unknown, so "
                             "--max-cost cannot be checked; nothing was sent",
                             hint="add its price under prices: in batchrun.yaml")
    if trial.cost.high is None:
        raise BudgetExceeded(f"{job.name}: output is uncapped, so {requests:,} requests have "
                             "no upper cost to check --max-cost against; nothing was sent",
                             where=job.at("params"),
                             hint="set params.max_tokens (or max_completion_tokens)")
    if trial.cost.high > Decimal(str(max_cost)):
        raise BudgetExceeded(f"{job.name}: {requests:,} request{'s' * (requests != 1)} "
                             f"estimated at up to {money(trial.cost.high)} at standard "
                             f"prices, over --max-cost {money(max_cost)}; nothing was sent",
                             hint="raise --max-cost, or try fewer points (--sample N)")


def _answer(ws: Workspace, job: Job, pending: dict[str, Rendered],
            concurrency: int) -> dict[str, Outcome]:
    """Each pending request answered now, several at a time."""
    if not pending:
        return {}
    expect = Expect(job.expect)
    validator = AnswerValidator(job.output_schema) if job.output_schema is not None else None
    api = ws.api
    with ThreadPoolExecutor(max_workers=min(concurrency, len(pending))) as pool:
        futures = {key: pool.submit(api.answer_now, request.endpoint, request.body,
                                    custom_id=key, expect=expect, validator=validator)
                   for key, request in pending.items()}
        return {key: future.result() for key, future in futures.items()}


def _settle(ws: Workspace, trial: Trial, outcomes: dict[str, Outcome],
            options: TrialOptions) -> None:
    """Record what each call cost, keep the valid answers, and say per point."""
    job = trial.job
    kind = "f32" if job.expect == "embedding" else "json"
    keep: list[tuple[str, str, bytes, str | None, str | None]] = []
    for key, outcome in outcomes.items():
        model = outcome.model or job.spec.model
        price = ws.prices.lookup(model) or ws.prices.lookup(job.spec.model)
        usd = cost(outcome.usage, price.standard) if price is not None else None
        trial.calls.append(SyncCall(job.name, key, job.spec.endpoint, model, outcome.ok,
                                    outcome.billed, outcome.usage,
                                    usd if outcome.billed else Decimal(0)))
        if outcome.ok:
            keep.append((key, kind, encode_value(kind, outcome.value), outcome.model, None))
    with ws.ledger.transaction():
        synclog.record(ws.ledger, trial.calls)
        if options.use_cache and keep:
            ws.ledger.put_results(keep, via=SYNC)
            trial.kept = len(keep)
    manifest.write(ws.ledger)
    calls = {call.key: call for call in trial.calls}
    for entry in trial.points:
        if entry.request is None or entry.status == CACHED:
            continue
        key = entry.request.key
        outcome = outcomes[key]
        entry.call = calls.pop(key, None)      # a twin request's point shows no second call
        if outcome.ok:   # shown as the cache keeps it (an embedding as float32)
            entry.result = ws.ledger.result(key) if options.use_cache else Result(
                key, kind, outcome.value, outcome.model, None, utc_now(), SYNC)
            entry.status = OK
            entry.answer = entry.result.value if entry.result is not None else outcome.value
        else:
            entry.status = INVALID if outcome.billed else FAILED
            entry.problem = outcome.reason


def _write(ws: Workspace, trial: Trial) -> None:
    """The valid answers into the points' payloads, stamped as apply stamps them."""
    job = trial.job
    writer = ws.writer(job)
    names = read_names(job)
    for entry in trial.points:
        if entry.result is None:
            continue
        point = entry.point
        writer.result(point.id, entry.result, inputs_digest(job.fingerprint, point.id,
                                                            point.payload),
                      ws.ledger.provider, field_digests(point.payload, names))
    writer.flush()
    trial.written = writer.written
