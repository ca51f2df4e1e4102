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
from typing import TYPE_CHECKING

from . import crash
from .answers import AnswerValidator
from .errors import ProviderError
from .ledger import Ledger
from .pack import SHARDS
from .pricing import PriceTable, cost
from .provider.anthropic_body import expected_schema
from .records import TERMINAL, BatchRecord, encode_value
from .results import Expect, Outcome, Usage, iter_jsonl
from .retry import (
    Settlement,
    settle_invalid_batch,
    settle_line,
    settle_never_ran,
    settle_token_limit,
)
from .sizematch import verify_collected

if TYPE_CHECKING:
    from .provider import BatchView
    from .provider import Provider as BatchAPI

OUTPUTS = "outputs"
TOKEN_LIMIT_CODE = "token_limit_exceeded"

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
                     say: Say | None = None) -> list[Collected]:
    """Collect every batch in flight whose provider status is terminal. Each retries its
    failed requests up to the max_attempts its job had when it was packed."""
    done = []
    for row in ledger.in_flight():
        if row.status not in TERMINAL:
            continue
        done.append(collect_batch(ledger, api, row, prices, backoff=backoff))
        if say:
            say(describe(done[-1]))
    return done


def describe(collected: Collected) -> str:
    seen = collected.seen
    parts = [f"{seen['succeeded']:,} ok"]
    for name in ("retry", "failed", "deferred"):
        if seen[name]:
            parts.append(f"{seen[name]:,} {'to retry' if name == 'retry' else name}")
    return (f"{collected.job}: collected batch {collected.batch_id} ({collected.status}): "
            + ", ".join(parts) + (f" — {collected.note}" if collected.note else ""))


def collect_batch(ledger: Ledger, api: BatchAPI, row: BatchRecord, prices: PriceTable, *,
                  backoff: float) -> Collected:
    """Collect one finished batch; its failed requests are retried up to the max_attempts
    its job had when it was packed."""
    batch = api.retrieve(row.created_id)
    result = Collected(row.seq, row.job, batch.id, batch.status)
    files = api.download_results(batch, ledger.artifacts, OUTPUTS)
    crash.point("after-download")
    _restore_shard(ledger, api, row, batch)
    expect, validator = expectation(ledger, row.shard)
    result.expect = expect
    now = time.time()
    if row.adopted == "size" and not verify_collected(ledger, row, batch, files, result):
        return result   # someone else's batch of the same size: released (sizematch.py)
    with ledger.transaction():
        if batch.status == "failed":
            _failed_batch(ledger, row, batch, result, now, backoff)
        answers: list[tuple] = []
        for download in files.values():
            for _, line in iter_jsonl(download.path):
                outcome = api.parse_line(line, expect=expect, validator=validator)
                _settle(ledger, row, batch, outcome, result, answers)
                if len(answers) >= 1000:
                    ledger.put_results(answers)
                    answers.clear()
        ledger.put_results(answers)
        for key in ledger.unqueued_keys(row.seq):   # in no file: never ran
            _record(ledger, row, key, result, settle_never_ran(batch.id, batch.status))
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
            cost_standard_usd=None if standard is None else str(standard), note=result.note)
    crash.point("after-results")
    return result


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
