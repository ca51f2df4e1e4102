"""Reconcile one job: for every selected point decide what it needs, cheapest first.

1. *up to date*: the stamp written with its result says the point's inputs (the job's
   fingerprint, its id and the fields the template reads) are what they are now. No
   rendering at all: this is what keeps a no-op apply as cheap as reading the points.
2. Otherwise render the request and compute its key. Same key as the stamp → up to date
   (the stamp is refreshed). Key in the result cache → *cached*: written now, for free.
3. Key in a batch not yet collected → *in flight*; failed for good → *failed*; backing
   off before a retry, or beyond the model's queue limit → *waiting*. A point lacking the
   output of a job it `needs` is *unready*: skipped until that job answers for it.
4. Anything else is *pending*: packed into a shard (apply) or counted (plan). Identical
   requests are packed once.

A point whose template fails, whose text is not valid Unicode or whose request is over
the size cap is a *failed point* (failedpoints.py): counted, recorded, never sent; the
other points go on.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .decide import Rules, Verdict, Why, decide, unchanged
from .errors import BatchrunError
from .estimate import Estimate
from .failedpoints import (
    FailedPointLog,
    PointFailures,
    PointProblem,
    not_unicode,
    raise_strict,
    template_failed,
    too_big,
)
from .jobs import Job
from .keys import KeySetDigest
from .ledger import Ledger
from .pack import Packer, Shard
from .pointchanges import ChangedPoints, PointChanges
from .render import RenderError, render_parts, request_frame
from .select import Point, Selection, has
from .tokens import max_output_tokens, prompt_tokens
from .writeback import Writer

Progress = Callable[[str, int], None]
_blake2b = hashlib.blake2b
INPUTS_SCHEME = "m2:"   # how `inputs_digest` hashes; a new scheme re-renders once, sends nothing


@dataclass
class JobPlan:
    job: str
    matched: int = 0
    up_to_date: int = 0
    cached: int = 0        # written from the result cache, free
    in_flight: int = 0
    waiting: int = 0       # retry backing off, or waiting for room in the model's queue
    failed: int = 0
    pending: int = 0       # points whose request must be sent
    requests: int = 0      # distinct requests among them
    new_points: int = 0    # pending because never written
    changed_points: int = 0  # pending because their inputs changed
    retry_points: int = 0  # pending because an earlier attempt failed
    rerun_points: int = 0  # pending because their batch ended before they ran
    other_provider: dict[str, int] = field(default_factory=dict)  # pending: answered elsewhere
    restamped: int = 0
    unready: int = 0       # lack the output of a job this one needs: not sent, not an error
    # points that cannot be sent (template, text, size), by problem: failed, the rest is sent
    point_failures: dict[str, PointFailures] = field(default_factory=dict)
    estimate: Estimate = field(default_factory=Estimate)     # the requests counted above
    held_back: Estimate = field(default_factory=Estimate)    # pending beyond the queue limit
    shards: list[Shard] = field(default_factory=list)
    points: PointChanges = field(default_factory=PointChanges)   # which are new or changed
    keys: KeySetDigest = field(default_factory=KeySetDigest)     # the distinct requests

    def count_pending(self, why: Why | None, stamp: dict | None, point_id: Any = None) -> None:
        """One more pending point, counted by why. Which fields changed on a changed point
        is for `ChangedPoints` to say: the digests are read for those points alone."""
        self.pending += 1
        if why is Why.RETRY:
            self.retry_points += 1
        elif why is Why.RERUN:
            self.rerun_points += 1
        elif why is Why.OTHER_PROVIDER:
            who = str((stamp or {}).get("provider"))
            self.other_provider[who] = self.other_provider.get(who, 0) + 1
        elif why is Why.CHANGED:
            self.changed_points += 1
        else:
            self.new_points += 1
            self.points.add_new(point_id)

    @property
    def point_failed(self) -> int:
        return sum(f.count for f in self.point_failures.values())

    def fail_point(self, point_id: Any, problem: PointProblem) -> None:
        self.point_failures.setdefault(f"{problem.where}\0{problem.problem}",
                                       PointFailures(problem)).add(point_id)

    @property
    def done(self) -> bool:
        """Nothing for apply to do: nothing to send, await or write."""
        return not (self.pending or self.in_flight or self.waiting or self.cached)

    def raise_point_failures(self, job: Job) -> None:
        """--strict: points that cannot be sent stop the job (failedpoints.raise_strict)."""
        raise_strict(self.point_failures, self.matched, job)


def inputs_digest(fingerprint: str, point_id: Any, payload: dict) -> str:
    """What a point's request depends on, hashed fast (this runs once per point on every
    apply). marshal, not pickle: pickling a str caches a UTF-8 copy inside it, and the
    embedded engine keeps every payload string alive, so memory would grow with the
    collection. Not canonical — payload order is Qdrant's stored order — so a spurious
    mismatch is possible, and costs one render, never a request. Tagged with its scheme."""
    try:
        data = marshal.dumps((fingerprint, point_id, payload), 2)
    except ValueError:   # a value marshal cannot write; JSON can, more slowly
        data = json.dumps([fingerprint, point_id, payload], default=str).encode()
    return INPUTS_SCHEME + hashlib.sha256(data).hexdigest()[:32]


def field_digests(payload: dict, names: frozenset[str] | None) -> dict[str, str]:
    """A short digest of each field of `payload` the templates read (`names`; None: all,
    for a template that reads the whole `payload`), for the stamp: a later plan compares
    them to name the fields that changed. Computed only for points that are rendered, so
    a no-op apply never pays for it; hashed like `inputs_digest` (marshal, not canonical,
    a few µs a point), so a spurious difference, or a collision, only misnames a field."""
    out = {}
    for name, value in payload.items():
        if names is not None and name not in names:
            continue
        try:
            data = marshal.dumps(value, 2)
        except ValueError:   # a value marshal cannot write; JSON can, more slowly
            data = json.dumps(value, default=str).encode()
        out[name] = _blake2b(data, digest_size=6).hexdigest()
    return out


def read_names(job: Job) -> frozenset[str] | None:
    """The payload fields a job's templates read; None when one reads `payload` whole."""
    names = set(job.user.reads) | set(job.system.reads if job.system else ())
    return None if "payload" in names else frozenset(names - {"id"})


class _PlanDedupe:
    """Distinct pending keys for `plan`, in a temporary on-disk table, not in memory."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")

    def first(self, key: str) -> bool:
        return self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 1


class _LedgerSink:
    """Records packed shards and their keys in the state ledger (inside the pass's
    transaction, so a pass refused by the budget leaves no trace)."""

    def __init__(self, ledger: Ledger, job: Job, uploaded: dict[str, dict[str, Any]],
                 endpoint: str):
        self.ledger, self.job = ledger, job
        self.uploaded = uploaded   # shard → its upload, of intents this pass replaced
        self.endpoint = endpoint   # the provider's endpoint its batches are created for

    def open_shard(self) -> int:
        spec = self.job.spec
        return self.ledger.new_batch(job=self.job.name, shard="", endpoint=self.endpoint,
                                    model=spec.model, requests=0, size=0, est_input_tokens=0,
                                    max_attempts=spec.batch.max_attempts)

    def add_key(self, seq: int, key: str) -> None:
        self.ledger.queue(key, self.job.name, seq)

    def close_shard(self, shard: Shard) -> None:
        # The same shard packed again (nothing changed since an interrupted run) reuses
        # the file that run uploaded.
        self.ledger.update_batch(shard.seq, shard=shard.sha, requests=shard.requests,
                                bytes=shard.bytes, est_input_tokens=shard.est_input_tokens,
                                **self.uploaded.get(shard.sha, {}))


@dataclass(frozen=True)
class PassOptions:
    """What one pass may do. Without a writer it only counts (plan); with one it writes
    cached results and renewed stamps to Qdrant; with `pack` too, it packs pending
    requests into shards recorded in the ledger."""

    pack: bool = False
    estimate: bool = False
    # --force: stamps and the cache are ignored, except answers from `fresh_batches` (the
    # batches this run sent), so a forced run still settles.
    force: bool = False
    fresh_batches: frozenset[str] = frozenset()
    # shard → its upload, of intents the caller dropped before this pass (see
    # Ledger.drop_intents): a shard packed again reuses the file.
    uploaded: dict[str, dict[str, Any]] = field(default_factory=dict)
    # output keys of the jobs this one `needs`: a point lacking one is not ready yet.
    needed: tuple[str, ...] = ()
    # keep every new and changed point's id, not only the first few (`plan --points`)
    every_point: bool = False


def reconcile(job: Job, selection: Selection, ledger: Ledger, options: PassOptions,
              writer: Writer | None = None, progress: Progress | None = None) -> JobPlan:
    """One pass over a job's points. The caller owns the transaction."""
    pass_ = _Pass(job, ledger, options, writer,
                  lambda ids: selection.stamps(ids, "fields"))
    try:
        for point in selection.points():
            pass_.plan.matched += 1
            if progress and pass_.plan.matched % 1000 == 0:
                progress("scanned", pass_.plan.matched)
            pass_.reconcile_point(point)
        pass_.finish()
    except BaseException:
        if pass_.packer:
            pass_.packer.abort()
        raise
    if progress:
        progress("scanned", pass_.plan.matched)
    return pass_.plan


def _queue_room(job: Job, ledger: Ledger) -> list[int] | None:
    """Input tokens that may still be enqueued for the job's model (None: no limit)."""
    limit = job.spec.batch.max_enqueued_tokens
    if limit is None:
        return None
    return [limit - ledger.enqueued_tokens(job.spec.model)]


class _Waiting:
    """The points a packing pass leaves waiting for an answer, recorded in the ledger (in
    batches of rows) so answers can be written to them without another full pass."""

    def __init__(self, ledger: Ledger, job: str):
        self.ledger, self.job = ledger, job
        self.rows: list[tuple[str, str, str, str, str | None]] = []
        ledger.forget_points(job)

    def add(self, point_id: Any, key: str, inputs: str, fields: dict[str, str]) -> None:
        # ids are integers or UUID strings; stored as their JSON text
        self.rows.append((self.job, str(point_id) if isinstance(point_id, int)
                          else json.dumps(point_id), key, inputs,
                          json.dumps(fields, sort_keys=True, separators=(",", ":"))))
        if len(self.rows) >= 1000:
            self.flush()

    def flush(self) -> None:
        self.ledger.expect_points(self.rows)
        self.rows = []


class _Pass:
    """The decisions of one pass, point by point (see the module docstring)."""

    def __init__(self, job: Job, ledger: Ledger, options: PassOptions, writer: Writer | None,
                 stamp_digests: Callable[[list[Any]], dict[Any, dict | None]]):
        self.job, self.ledger, self.options, self.writer = job, ledger, options, writer
        self.plan = JobPlan(job.name, points=PointChanges(every=options.every_point))
        self.changed = ChangedPoints(self.plan.points, stamp_digests)
        self.read_names = read_names(job)
        self.now = time.time()
        self.rules = Rules(ledger.provider, options.force, options.fresh_batches, job.writes)
        spec = job.spec
        self.frame = request_frame(job)
        self.packer = Packer(ledger.artifacts, _LedgerSink(ledger, job, options.uploaded,
                                                           self.frame.endpoint),
                             max_requests=spec.batch.max_requests,
                             max_bytes=spec.batch.max_bytes) \
            if writer is not None and options.pack else None
        self.dedupe = None if self.packer else _PlanDedupe()
        self.waiting = _Waiting(ledger, job.name) if self.packer else None
        self.failed = FailedPointLog(ledger, job.name) if self.packer else None
        batch = spec.batch   # a request line may be no bigger than this
        self.max_line = min(int(batch.max_request_bytes), int(batch.max_bytes))
        # The queue limit shapes what one wave sends; a plan shows every request.
        self.queue_room = _queue_room(job, ledger) if self.packer else None
        self.estimate = options.estimate or self.queue_room is not None

    def finish(self) -> None:
        self.changed.flush()
        if self.writer is not None:
            self.writer.flush()
        if self.packer:
            self.plan.shards = self.packer.close()
        if self.waiting:
            self.waiting.flush()
        if self.failed:
            self.failed.flush()

    def fail(self, point: Point, problem: PointProblem) -> None:
        """A point that cannot be sent: counted by problem, recorded, and skipped."""
        self.plan.fail_point(point.id, problem)
        if self.failed is not None:
            self.failed.add(point.id, problem)

    def reconcile_point(self, point: Point) -> None:
        """Decide what one point needs (decide.py), and do it: count it, write it from
        the cache, record that it waits for its key, or pack its request."""
        job, plan, ledger = self.job, self.plan, self.ledger
        inputs = inputs_digest(job.fingerprint, point.id, point.payload)
        if unchanged(point.stamp, inputs, self.rules):
            plan.up_to_date += 1
            return
        try:
            parts = render_parts(job, point.id, point.payload)
        except RenderError as exc:
            if any(not has(point.payload, key) for key in self.options.needed):
                plan.unready += 1   # a job it needs has not answered for this point yet
            else:
                self.fail(point, template_failed(exc, job))
            return
        try:
            body = self.frame.serialise(parts)
        except UnicodeEncodeError as exc:
            self.fail(point, not_unicode(point.payload, exc))
            return
        key = self.frame.key(body)
        fields = field_digests(point.payload, self.read_names)
        cached = ledger.result(key)
        decision = decide(point.stamp, key, cached, ledger.request(key), self.now, self.rules)
        verdict = decision.verdict
        if verdict is Verdict.RESTAMP:
            plan.up_to_date += 1
            plan.restamped += 1
            if self.writer is not None:
                self.writer.restamp(point.id, inputs, fields)
            return
        if verdict is Verdict.CACHED:
            plan.cached += 1
            if self.writer is not None and cached is not None:
                self.writer.result(point.id, cached, inputs, ledger.provider, fields)
            return
        line = self.frame.line(key, body) if verdict is Verdict.PENDING else b""
        if len(line) > self.max_line:    # never sent, so it waits for nothing
            self.fail(point, too_big(len(line), job))
            return
        if cached is not None and self.packer is not None:
            # Forced: the old answer goes, so a point held back for a later wave waits
            # for the new one instead of taking the old one back.
            ledger.forget_result(key)
        if self.waiting is not None:   # whatever happens below, this point waits for `key`
            self.waiting.add(point.id, key, inputs, fields)
        if verdict is Verdict.IN_FLIGHT:
            plan.in_flight += 1
        elif verdict is Verdict.FAILED:
            plan.failed += 1
        elif verdict is Verdict.WAITING:
            plan.waiting += 1
        else:
            plan.count_pending(decision.why, point.stamp, point.id)
            if decision.why is Why.CHANGED:
                self.changed.add(point.id, fields)
            if self.dedupe is not None and not self.dedupe.first(key):
                return  # the same request as another pending point: counted once, sent once
            self._request(key, line, parts)

    def _request(self, key: str, line: bytes, parts: Any) -> None:
        """A pending request: estimated, then packed — or held back for a later wave."""
        job, plan = self.job, self.plan
        plan.keys.add(key)
        tokens = prompt_tokens(self.frame.endpoint, self.frame.body(parts), job.priced_model) \
            if self.estimate else None
        cap = max_output_tokens(self.frame.endpoint, self.frame.constant) if tokens else None
        if self.queue_room is not None and tokens is not None:
            limit = job.spec.batch.max_enqueued_tokens or 0
            if tokens.tokens > limit:
                raise BatchrunError(f"a request of {tokens.tokens:,} input tokens can never fit "
                                    f"in batch.max_enqueued_tokens ({limit:,})",
                                    where=job.at("batch", "max_enqueued_tokens"),
                                    hint="raise the limit, or shorten the prompt")
            if tokens.tokens > self.queue_room[0]:
                plan.pending -= 1
                plan.waiting += 1
                plan.held_back.add(tokens, cap)   # still counts against the budget
                return
            self.queue_room[0] -= tokens.tokens
        plan.requests += 1
        if tokens is not None:
            plan.estimate.add(tokens, cap)
        if self.packer is not None:
            self.packer.add(key, line, tokens.tokens if tokens else 0)
