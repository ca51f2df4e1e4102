"""Polling batches and collecting what they produced into the ledger and result cache.

A finished batch — completed, expired, cancelled or failed — is collected once, in one
transaction: both its output and error files are downloaded (content-addressed), every
line is parsed and validated, each request key becomes a cached result, a retry or a
failure with its reason, tokens and cost are summed from the lines' own `usage`, and the
batch is marked collected. `request_counts` are recorded but never trusted: the files are.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from . import crash
from .answers import AnswerValidator
from .errors import ProviderError
from .jsonl import read_lines
from .ledger import Ledger
from .pack import SHARDS
from .pricing import PriceTable, cost
from .provider.anthropic_body import expected_schema
from .records import TERMINAL, BatchRecord, encode_value
from .results import Expect, Outcome, Usage, clip, unreadable
from .retry import (
    Settlement,
    settle_invalid_batch,
    settle_line,
    settle_never_ran,
    settle_token_limit,
    settle_unreadable,
)
from .sizematch import verify_collected

if TYPE_CHECKING:
    from .provider import BatchView, Downloaded
    from .provider import Provider as BatchAPI

OUTPUTS = "outputs"
TOKEN_LIMIT_CODE = "token_limit_exceeded"
MAX_PROBLEMS = 5   # bad lines described per batch; all are counted

Say = Callable[[str], None]


@dataclass
class Collected:
    seq: int
    job: str
    batch_id: str
    status: str
    seen: Counter = field(default_factory=Counter)   # succeeded / retry / failed / deferred
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal | None = None
    model: str | None = None                         # as the lines report it (dated)
    note: str | None = None
    expect: Expect = Expect.TEXT                     # what its requests asked for
    problems: list[str] = field(default_factory=list)  # bad lines, "file:line: what" (the first)


def refresh(ledger: Ledger, api: BatchAPI, seqs: list[int] | None = None) -> list[BatchView]:
    """Read the provider's status of every open batch (or of `seqs`) into the ledger."""
    seen = []
    for row in ledger.in_flight():
        if seqs is not None and row.seq not in seqs:
            continue
        batch = api.retrieve(row.created_id)
        if batch.status != row.status or row.info != batch.info:
            with ledger.transaction():
                ledger.update_batch(row.seq, status=batch.status, info=batch.info)
        seen.append(batch)
    return seen


def collect_finished(ledger: Ledger, api: BatchAPI, prices: PriceTable, *, backoff: float,
                     say: Say | None = None, root: Path | None = None) -> list[Collected]:
    """Collect every batch in flight whose provider status is terminal. Each retries its
    failed requests up to the max_attempts its job had when it was packed."""
    done = []
    for row in ledger.in_flight():
        if row.status not in TERMINAL:
            continue
        done.append(collect_batch(ledger, api, row, prices, backoff=backoff, root=root))
        if say:
            say(describe(done[-1]))
    return done


def describe(collected: Collected) -> str:
    seen = collected.seen
    parts = [f"{seen['succeeded']:,} ok"]
    for name, label in (("retry", "to retry"), ("failed", "failed"), ("deferred", "deferred"),
                        ("unreadable", "unreadable line{s}"), ("malformed", "malformed line{s}"),
                        ("duplicate", "duplicate line{s} ignored"),
                        ("unknown", "line{s} of unknown requests ignored")):
        if seen[name]:
            parts.append(f"{seen[name]:,} " + label.format(s="s" * (seen[name] != 1)))
    return (f"{collected.job}: collected batch {collected.batch_id} ({collected.status}): "
            + ", ".join(parts) + (f" — {collected.note}" if collected.note else ""))


def collect_batch(ledger: Ledger, api: BatchAPI, row: BatchRecord, prices: PriceTable, *,
                  backoff: float, root: Path | None = None) -> Collected:
    """Collect one finished batch; its failed requests are retried up to the max_attempts
    its job had when it was packed. A file with a damaged line (cut short, not UTF-8, not
    JSON — an HTML page —, a line of no Batch API shape) or empty against the batch's own
    counts is downloaded once more before its requests are settled: a download that went
    wrong once is whole the second time. Not to be called inside a ledger transaction."""
    row = ledger.batch(row.seq)   # as it is now: a twin of the same size may have swapped
    batch = api.retrieve(row.created_id)
    files = api.download_results(batch, ledger.artifacts, OUTPUTS)
    crash.point("after-download")
    _restore_shard(ledger, api, row, batch)
    expect, validator = expectation(ledger, row.shard)
    if row.adopted == "size":
        unverified = Collected(row.seq, row.job, batch.id, batch.status, expect=expect)
        if not verify_collected(ledger, row, batch, files, unverified):
            return unverified   # someone else's batch of the same size: released (sizematch.py)
    reading = _Reading(ledger, api, row, batch, expect, validator, root)
    try:
        return reading.settle(files, prices, backoff, first_try=True)
    except _Damaged as damaged:   # rolled back: download those files again, once
        again = api.download_results(batch, ledger.artifacts, OUTPUTS)
        files.update({kind: again[kind] for kind in damaged.damage if kind in again})
        return reading.settle(files, prices, backoff, first_try=False,
                              first_damage=damaged.damage)


class _Damaged(Exception):
    """Files of a batch were damaged: the collection is rolled back to download them again."""

    def __init__(self, damage: dict[str, str]):
        super().__init__("; ".join(damage.values()))
        self.damage = damage


class _Reading:
    """One collection of a batch's files, in one ledger transaction: every readable line
    settles the request it names, once; every bad line is counted and described."""

    def __init__(self, ledger: Ledger, api: BatchAPI, row: BatchRecord, batch: BatchView,
                 expect: Expect, validator: AnswerValidator | None, root: Path | None):
        self.ledger, self.api, self.row, self.batch, self.root = ledger, api, row, batch, root
        self.expect, self.validator = expect, validator

    def settle(self, files: dict[str, Downloaded], prices: PriceTable, backoff: float, *,
               first_try: bool, first_damage: dict[str, str] | None = None) -> Collected:
        """Settle every request of the batch from its files. On the first try, damaged
        files raise _Damaged (and the transaction rolls back); on the second, what is
        still unreadable is settled as lost."""
        ledger, row, batch = self.ledger, self.row, self.batch
        result = Collected(row.seq, row.job, batch.id, batch.status, expect=self.expect)
        now = time.time()
        with ledger.transaction():
            if batch.status == "failed":
                _failed_batch(ledger, row, batch, result, now, backoff)
            lines = _Lines(ledger, self.api, row, batch, result, self.expect, self.validator)
            for kind, download in files.items():
                lines.read(kind, download.path, self._shown(download.path))
                if download.size == 0 and _expected_lines(batch, kind):
                    lines.damage.setdefault(kind, f"{self._shown(download.path)} is empty, "
                                            f"though the batch counts {kind} lines")
            lines.flush()
            ledger.put_staged_results()   # in key order, once per batch
            if lines.damage and first_try:
                raise _Damaged(lines.damage)
            damage = next(iter(lines.damage.values()), None)
            for key in ledger.unqueued_keys(row.seq):   # in no readable line
                if damage is not None:
                    _record(ledger, row, key, result, settle_unreadable(
                        ledger.request(key), row.max_attempts,
                        f"unreadable: no readable line for it in the files of batch {batch.id} "
                        f"({damage})"))
                    lines.lost += 1
                else:
                    _record(ledger, row, key, result, settle_never_ran(batch.id, batch.status))
            if lines.damage:
                _add_note(result, _damage_note(lines.damage, lines.lost,
                                               again=first_damage is not None))
            elif first_damage:
                _add_note(result, "the first download was damaged "
                          f"({'; '.join(first_damage.values())}); downloaded again, whole")
            elif result.problems:
                _add_note(result, f"bad lines ignored, the first: {result.problems[0]}")
            usd, standard, model = _costs(prices, result.usage, row, batch, result)
            result.cost_usd = usd
            ledger.update_batch(
                row.seq, status=batch.status, info=batch.info, collected_at=now,
                output_file=files["output"].sha if "output" in files else None,
                error_file=files["error"].sha if "error" in files else None,
                seen=dict(sorted(result.seen.items())),
                input_tokens=result.usage.input_tokens, cached_tokens=result.usage.cached_tokens,
                output_tokens=result.usage.output_tokens,
                reasoning_tokens=result.usage.reasoning_tokens, billed_model=model,
                cache_write_tokens=result.usage.cache_write_tokens,
                cache_write_1h_tokens=result.usage.cache_write_1h_tokens,
                cost_usd=None if usd is None else str(usd),
                cost_standard_usd=None if standard is None else str(standard),
                note=result.note)
        crash.point("after-results")
        return result

    def _shown(self, path: Path) -> str:
        """A downloaded file as the user finds it: relative to the project."""
        if self.root is not None and path.is_relative_to(self.root):
            return str(path.relative_to(self.root))
        return str(path)


def _expected_lines(batch: BatchView, kind: str) -> int:
    """How many lines the batch's own counts promise in its output or error file."""
    counts = batch.request_counts
    if counts is None:
        return 0
    return counts.completed if kind == "output" else counts.failed


def _damage_note(damage: dict[str, str], lost: int, *, again: bool) -> str:
    twice = " (downloaded twice)" if again else ""
    return (f"damaged {' and '.join(damage)} file{'s' * (len(damage) > 1)}{twice}: "
            f"{next(iter(damage.values()))}; {lost:,} request{'s' * (lost != 1)} without a "
            "readable line count an attempt (they ran and may have been billed; their tokens "
            "are unknown)")


def _add_note(result: Collected, note: str) -> None:
    result.note = f"{result.note}; {note}" if result.note else note


class _Lines:
    """The lines of one batch's files: each settles the request it names, once. A line
    that cannot be read settles its request as a failed attempt when it still shows the
    custom_id; a second line for a request, or one for a request this batch never had,
    is counted and ignored."""

    def __init__(self, ledger: Ledger, api: BatchAPI, row: BatchRecord, batch: BatchView,
                 result: Collected, expect: Expect, validator: AnswerValidator | None):
        self.ledger, self.api, self.row, self.batch, self.result = ledger, api, row, batch, result
        self.expect, self.validator = expect, validator
        self.owed = set(ledger.unqueued_keys(row.seq))   # at most a batch's requests
        self.seen: set[str] = set()
        self.answers: list[tuple] = []
        self.damage: dict[str, str] = {}   # file kind → its first damaged line, where and what
        self.lost = 0                      # requests settled without a readable line

    def read(self, kind: str, path: Path, shown: str) -> None:
        for line in read_lines(path):
            at = f"{shown}:{line.number}"
            if line.obj is None:
                self.damage.setdefault(kind, f"{at}: {line.problem}")
                self._problem("unreadable", f"{at}: {line.problem}")
                if line.custom_id in self.owed and line.custom_id not in self.seen:
                    self.lost += 1
                    self._line(unreadable(line.custom_id, f"{at}: {line.problem}"), at)
                continue
            outcome = self.api.parse_line(line.obj, expect=self.expect, validator=self.validator)
            if outcome.kind == "malformed" and not outcome.billed:
                self.damage.setdefault(kind, f"{at}: {outcome.reason}")
                self._problem("malformed", f"{at}: {outcome.reason}")
            self._line(outcome, at)

    def _line(self, outcome: Outcome, at: str) -> None:
        key = outcome.custom_id
        if key in self.seen:
            self._problem("duplicate", f"{at}: a second line for request {key[:12]}: ignored")
            return
        if key not in self.owed and self.ledger.request(key) is None \
                and self.ledger.result(key) is None:
            self._problem("unknown", f"{at}: custom_id {clip(repr(key), 40)} is no request of "
                                     "this batch: ignored")
            return
        self.seen.add(key)
        _settle(self.ledger, self.row, self.batch, outcome, self.result, self.answers)
        if len(self.answers) >= 1000:
            self.flush()

    def _problem(self, kind: str, text: str) -> None:
        self.result.seen[kind] += 1
        if len(self.result.problems) < MAX_PROBLEMS:
            self.result.problems.append(text)

    def flush(self) -> None:
        self.ledger.stage_results(self.answers)
        self.answers.clear()


def _restore_shard(ledger: Ledger, api: BatchAPI, row: BatchRecord, batch: BatchView) -> None:
    """A batch's own input file says what it asked for; if the local copy is gone (the
    artifacts folder was cleaned), fetch it back from the provider."""
    if ledger.artifacts.exists(SHARDS, row.shard):
        return
    if not api.caps.uploads or not batch.input_file_id:
        raise ProviderError(f"the shard {row.shard[:12]} of batch {batch.id} is missing from "
                            f"{ledger.artifacts.path(SHARDS, row.shard).parent}, and "
                            f"{api.label} keeps no copy of a batch's requests",
                            hint="restore the state directory's artifacts (a CI cache), or "
                                 "move it away: the batch's answers are then sent again")
    download = api.download(batch.input_file_id, ledger.artifacts, SHARDS)
    if download.sha != row.shard:
        raise ProviderError(f"the input file of batch {batch.id} hashes to "
                            f"{download.sha[:12]}, not to its shard {row.shard[:12]}",
                            hint="the provider returned another file; report this")


def expectation(ledger: Ledger, shard: str) -> tuple[Expect, AnswerValidator | None]:
    """What the batch's requests asked for, read from its own input file: a result is
    validated against the schema it was requested with, whatever the spec says today."""
    with ledger.artifacts.path(SHARDS, shard).open("rb") as fh:
        first = json.loads(fh.readline())
    if "params" in first:   # a Message Batch request (provider/anthropic_body.py)
        schema = expected_schema(first)
        return (Expect.JSON, AnswerValidator(schema)) if schema is not None \
            else (Expect.TEXT, None)
    body, url = first.get("body", {}), str(first.get("url") or "")
    if url.endswith("/embeddings"):   # /v1/embeddings, or Azure's /embeddings
        return Expect.EMBEDDING, None
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", fmt).get("schema", {})
        return Expect.JSON, AnswerValidator(schema)
    if fmt.get("type") == "json_object":
        return Expect.JSON, None
    return Expect.TEXT, None


def _failed_batch(ledger: Ledger, row: BatchRecord, batch: BatchView, result: Collected,
                  now: float, backoff: float) -> None:
    errors = batch.errors
    if TOKEN_LIMIT_CODE in {e.code for e in errors}:
        result.note = "token_limit_exceeded: re-queued with backoff"
        for key in ledger.unqueued_keys(row.seq):
            _record(ledger, row, key, result, settle_token_limit(
                ledger.request(key), requests=row.requests, model=row.model, now=now,
                backoff=backoff))
        return
    first = errors[0] if errors else None
    where = f" at line {first.line}" if first is not None and first.line else ""
    detail = (f"{first.code}{where}: {first.message}" if first is not None
              else "no reason given")
    result.note = f"failed validation: {detail}"
    for key in ledger.unqueued_keys(row.seq):
        _record(ledger, row, key, result, settle_invalid_batch(batch.id, detail))


def _settle(ledger: Ledger, row: BatchRecord, batch: BatchView, outcome: Outcome,
            result: Collected, answers: list[tuple]) -> None:
    """Record one line's outcome: an answer joins `answers` (cached in bulk by the caller),
    a failure becomes a retry or a final failure (retry.py) with its reason."""
    if outcome.billed:
        result.usage = result.usage + outcome.usage
        result.seen["billed"] += 1
        result.model = result.model or outcome.model
    if outcome.ok:
        # Only an embeddings batch holds vectors: a JSON answer that is a list of
        # numbers stays JSON, exactly as it came.
        kind = "f32" if result.expect is Expect.EMBEDDING else "json"
        answers.append((outcome.custom_id, kind, encode_value(kind, outcome.value),
                        outcome.model or batch.model, batch.id))
        result.seen["succeeded"] += 1
        return
    state = ledger.request(outcome.custom_id)
    if state is None or state.batch_seq != row.seq:
        return  # a line for a key this batch no longer owns (answered elsewhere)
    _record(ledger, row, outcome.custom_id, result, settle_line(outcome, state, row.max_attempts))


def _record(ledger: Ledger, row: BatchRecord, key: str, result: Collected,
            settlement: Settlement) -> None:
    ledger.settle(key, row.job, row.seq, state=settlement.state,
                  attempts_delta=settlement.attempts_delta,
                  deferrals_delta=settlement.deferrals_delta,
                  not_before=settlement.not_before, error=settlement.error)
    result.seen[settlement.counted_as] += 1


def _costs(prices: PriceTable, usage: Usage, row: BatchRecord, batch: BatchView,
           result: Collected) -> tuple[Decimal | None, Decimal | None, str]:
    model = result.model or batch.model or row.model
    price = prices.lookup(model) or prices.lookup(row.model)
    if price is None or price.batch is None:
        if usage != Usage():
            result.note = (result.note + "; " if result.note else "") + \
                f"batch price of {model} unknown: cost not computed"
        return None, None, model
    return cost(usage, price.batch), cost(usage, price.standard), model
