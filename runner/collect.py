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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from openai.types import Batch

from . import crash
from .errors import ProviderError
from .pack import SHARDS
from .pricing import PriceTable, cost
from .provider import BatchAPI
from .results import Expect, Outcome, Usage, iter_jsonl, parse_line
from .ledger import FAILED, RETRY, TERMINAL, Ledger, encode_value
from .submit import batch_info
from .validate import AnswerValidator

OUTPUTS = "outputs"
TOKEN_LIMIT_CODE = "token_limit_exceeded"
TOKEN_LIMIT_TRIES = 8   # a batch refused this often for a full queue will never fit

Report = Callable[[str], None]


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


def refresh(ledger: Ledger, api: BatchAPI, seqs: list[int] | None = None) -> list[Batch]:
    """Read the provider's status of every open batch (or of `seqs`) into the ledger."""
    seen = []
    for row in ledger.in_flight():
        if seqs is not None and row.seq not in seqs:
            continue
        batch = api.retrieve(row.batch_id)
        if batch.status != row.status or row.info != batch_info(batch):
            with ledger.transaction():
                ledger.update_batch(row.seq, status=batch.status, info=batch_info(batch))
        seen.append(batch)
    return seen


def collect_finished(ledger: Ledger, api: BatchAPI, prices: PriceTable, *, backoff: float,
                     report: Report | None = None) -> list[Collected]:
    """Collect every batch in flight whose provider status is terminal. Each retries its
    failed requests up to the max_attempts its job had when it was packed."""
    done = []
    for row in ledger.in_flight():
        if row.status not in TERMINAL:
            continue
        done.append(collect_batch(ledger, api, row, prices, row.max_attempts,
                                  backoff=backoff))
        if report:
            report(describe(done[-1]))
    return done


def describe(collected: Collected) -> str:
    seen = collected.seen
    parts = [f"{seen['succeeded']:,} ok"]
    for name in ("retry", "failed", "deferred"):
        if seen[name]:
            parts.append(f"{seen[name]:,} {'to retry' if name == 'retry' else name}")
    return (f"{collected.job}: collected batch {collected.batch_id} ({collected.status}): "
            + ", ".join(parts) + (f" — {collected.note}" if collected.note else ""))


def collect_batch(ledger: Ledger, api: BatchAPI, row: Any, prices: PriceTable, max_attempts: int,
                  *, backoff: float) -> Collected:
    batch = api.retrieve(row.batch_id)
    result = Collected(row.seq, row.job, batch.id, batch.status)
    files = {}
    for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        if file_id:
            files[kind] = api.download(file_id, ledger.artifacts, OUTPUTS)
    crash.point("after-download")
    _restore_shard(ledger, api, row, batch)
    expect, validator = expectation(ledger, row.shard)
    now = time.time()
    with ledger.transaction():
        if batch.status == "failed":
            _failed_batch(ledger, row, batch, result, now, backoff)
        answers: list[tuple] = []
        for download in files.values():
            for _, line in iter_jsonl(download.path):
                outcome = parse_line(line, expect=expect, validator=validator)
                _settle(ledger, row, batch, outcome, result, max_attempts, answers)
                if len(answers) >= 1000:
                    ledger.put_results(answers)
                    answers.clear()
        ledger.put_results(answers)
        for key in ledger.unqueued_keys(row.seq):   # in no file: never ran
            ledger.settle(key, row.job, row.seq, state=RETRY, attempts_delta=0,
                         deferrals_delta=1, not_before=0.0,
                         error=f"missing from the files of batch {batch.id} ({batch.status})")
            result.seen["deferred"] += 1
        usd, standard, model = _costs(prices, result.usage, row, batch, result)
        result.cost_usd = usd
        ledger.update_batch(
            row.seq, status=batch.status, info=batch_info(batch), collected_at=now,
            output_file=files["output"].sha if "output" in files else None,
            error_file=files["error"].sha if "error" in files else None,
            seen=dict(sorted(result.seen.items())),
            input_tokens=result.usage.input_tokens, cached_tokens=result.usage.cached_tokens,
            output_tokens=result.usage.output_tokens,
            reasoning_tokens=result.usage.reasoning_tokens, billed_model=model,
            cost_usd=None if usd is None else str(usd),
            cost_standard_usd=None if standard is None else str(standard), note=result.note)
    crash.point("after-results")
    return result


def _restore_shard(ledger: Ledger, api: BatchAPI, row: Any, batch: Batch) -> None:
    """A batch's own input file says what it asked for; if the local copy is gone (the
    artifacts folder was cleaned), fetch it back from the provider."""
    if ledger.artifacts.exists(SHARDS, row.shard):
        return
    download = api.download(batch.input_file_id, ledger.artifacts, SHARDS)
    if download.sha != row.shard:
        raise ProviderError(f"the input file of batch {batch.id} hashes to "
                            f"{download.sha[:12]}, not to its shard {row.shard[:12]}",
                            hint="the provider returned another file; report this")


def expectation(ledger: Ledger, shard: str) -> tuple[Expect, Any]:
    """What the batch's requests asked for, read from its own input file: a result is
    validated against the schema it was requested with, whatever the spec says today."""
    with ledger.artifacts.path(SHARDS, shard).open("rb") as fh:
        first = json.loads(fh.readline())
    body, url = first.get("body", {}), first.get("url")
    if url == "/v1/embeddings":
        return Expect.EMBEDDING, None
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", fmt).get("schema", {})
        return Expect.JSON, AnswerValidator(schema)
    if fmt.get("type") == "json_object":
        return Expect.JSON, None
    return Expect.TEXT, None


def _failed_batch(ledger: Ledger, row: Any, batch: Batch, result: Collected, now: float,
                  backoff: float) -> None:
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    codes = {e.code for e in errors}
    if TOKEN_LIMIT_CODE in codes:
        # The organisation's queue was full: nothing ran, nothing is billed, try later —
        # unless it keeps happening, which means this batch alone is over the limit.
        result.note = "token_limit_exceeded: re-queued with backoff"
        for key in ledger.unqueued_keys(row.seq):
            state = ledger.request(key)
            deferrals = state.deferrals if state else 0
            if deferrals + 1 >= TOKEN_LIMIT_TRIES:
                ledger.settle(key, row.job, row.seq, state=FAILED, attempts_delta=0,
                             deferrals_delta=1, not_before=0.0, error=(
                                 f"token_limit_exceeded {deferrals + 1} times: a batch of "
                                 f"{row.requests:,} requests does not fit the organisation's "
                                 f"enqueued-token limit for {row.model}; set "
                                 "batch.max_enqueued_tokens under that limit (or a smaller "
                                 "batch.max_requests), then apply --retry-failed"))
                result.seen["failed"] += 1
                continue
            ledger.settle(key, row.job, row.seq, state=RETRY, attempts_delta=0,
                         deferrals_delta=1, not_before=now + backoff * 2 ** min(deferrals, 6),
                         error="batch failed: token_limit_exceeded (re-queued)")
            result.seen["deferred"] += 1
        return
    first = errors[0] if errors else None
    where = f" at line {first.line}" if first is not None and first.line else ""
    detail = (f"{first.code}{where}: {first.message}" if first is not None
              else "no reason given")
    result.note = f"failed validation: {detail}"
    for key in ledger.unqueued_keys(row.seq):
        # The same file would fail the same way: do not resubmit blindly.
        ledger.settle(key, row.job, row.seq, state=FAILED, attempts_delta=1,
                     deferrals_delta=0, not_before=0.0,
                     error=f"batch {batch.id} failed validation: {detail}")
        result.seen["failed"] += 1


def _settle(ledger: Ledger, row: Any, batch: Batch, outcome: Outcome, result: Collected,
            max_attempts: int, answers: list[tuple]) -> None:
    """Record one line's outcome: an answer joins `answers` (cached in bulk by the caller),
    a failure becomes a retry or a final failure with its reason."""
    key, job = outcome.custom_id, row.job
    if outcome.billed:
        result.usage = result.usage + outcome.usage
        result.seen["billed"] += 1
        result.model = result.model or outcome.model
    if outcome.ok:
        kind = "f32" if _is_vector(outcome.value) else "json"
        answers.append((key, kind, encode_value(kind, outcome.value),
                        outcome.model or batch.model, batch.id))
        result.seen["succeeded"] += 1
        return
    state = ledger.request(key)
    if state is None or state.batch_seq != row.seq:
        return  # a line for a key this batch no longer owns (answered elsewhere)
    never_ran = outcome.retryable and not outcome.billed and outcome.status_code is None
    attempts = state.attempts + (0 if never_ran else 1)
    if outcome.retryable and attempts < max_attempts:
        ledger.settle(key, job, row.seq, state=RETRY, attempts_delta=0 if never_ran else 1,
                     deferrals_delta=1 if never_ran else 0, not_before=0.0, error=outcome.reason)
        result.seen["deferred" if never_ran else "retry"] += 1
    else:
        why = outcome.reason if not outcome.retryable else \
            f"{outcome.reason} (gave up after {attempts} attempts)"
        ledger.settle(key, job, row.seq, state=FAILED, attempts_delta=0 if never_ran else 1,
                     deferrals_delta=0, not_before=0.0, error=why)
        result.seen["failed"] += 1


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, float) for v in value)


def _costs(prices: PriceTable, usage: Usage, row: Any, batch: Batch,
           result: Collected) -> tuple[Decimal | None, Decimal | None, str]:
    model = result.model or batch.model or row.model
    price = prices.lookup(model) or prices.lookup(row.model)
    if price is None or price.batch is None:
        if usage != Usage():
            result.note = (result.note + "; " if result.note else "") + \
                f"batch price of {model} unknown: cost not computed"
        return None, None, model
    return cost(usage, price.batch), cost(usage, price.standard), model
