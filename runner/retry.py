"""The retry rule, as pure functions: what becomes of a request whose attempt failed.

collect.py reads each line of a finished batch into an outcome (results.py) and records
what is decided here in the ledger; nothing here does I/O, so the rule is a table:

    the line failed, retryable, attempts left       → retry (counts an attempt)
    the line is unreadable or malformed, or the      → retry (counts an attempt: it may
      files were damaged and hold no readable line     have run and been billed)
      for it
    the request never ran (expired, cancelled)       → retry (a deferral: no attempt)
    not retryable (a 400, a refusal), or no attempts → failed for good, with the reason
    the batch failed: token_limit_exceeded           → retry later, backing off; failed
                                                       once it keeps happening
    the batch failed validation                      → failed (the same file would fail
                                                       the same way)
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import FAILED, RETRY, RequestState
from .results import Outcome

TOKEN_LIMIT_TRIES = 8   # a batch refused this often for a full queue will never fit
MAX_BACKOFF_DOUBLINGS = 6


@dataclass(frozen=True)
class Settlement:
    """How one request's ledger row changes, and how the batch's summary counts it."""

    state: str              # RETRY or FAILED
    attempts_delta: int     # attempts that count against max_attempts
    deferrals_delta: int    # re-queues that do not (the request never ran)
    error: str
    counted_as: str         # "retry" | "deferred" | "failed"
    not_before: float = 0.0


def settle_line(outcome: Outcome, state: RequestState, max_attempts: int) -> Settlement:
    """A failed line of an output or error file (`outcome.ok` is False)."""
    never_ran = outcome.never_ran
    attempts = state.attempts + (0 if never_ran else 1)
    reason = outcome.reason or "failed"
    if outcome.retryable and attempts < max_attempts:
        return Settlement(RETRY, 0 if never_ran else 1, 1 if never_ran else 0, reason,
                          "deferred" if never_ran else "retry")
    why = reason if not outcome.retryable else f"{reason} (gave up after {attempts} attempts)"
    return Settlement(FAILED, 0 if never_ran else 1, 0, why, "failed")


def settle_token_limit(state: RequestState | None, *, requests: int, model: str, now: float,
                       backoff: float) -> Settlement:
    """A request of a batch that failed with `token_limit_exceeded`: the organisation's
    queue was full, nothing ran and nothing is billed. Try later, backing off — unless it
    keeps happening, which means this batch alone is over the limit."""
    deferrals = state.deferrals if state else 0
    if deferrals + 1 >= TOKEN_LIMIT_TRIES:
        return Settlement(FAILED, 0, 1, (
            f"token_limit_exceeded {deferrals + 1} times: a batch of {requests:,} requests "
            f"does not fit the organisation's enqueued-token limit for {model}; set "
            "batch.max_enqueued_tokens under that limit (or a smaller batch.max_requests), "
            "then apply --retry-failed"), "failed")
    return Settlement(RETRY, 0, 1, "batch failed: token_limit_exceeded (re-queued)", "deferred",
                      not_before=now + backoff * 2 ** min(deferrals, MAX_BACKOFF_DOUBLINGS))


def settle_never_ran(batch_id: str, status: str) -> Settlement:
    """A request of a finished batch that is in none of its files: it never ran."""
    return Settlement(RETRY, 0, 1, f"missing from the files of batch {batch_id} ({status})",
                      "deferred")


def settle_invalid_batch(batch_id: str, detail: str) -> Settlement:
    """A request of a batch the provider refused as a whole (its input file failed
    validation): the same file would fail the same way, so it is not resubmitted blindly."""
    return Settlement(FAILED, 1, 0, f"batch {batch_id} failed validation: {detail}", "failed")


def settle_unreadable(state: RequestState | None, max_attempts: int, reason: str) -> Settlement:
    """A request whose batch's files were damaged and hold no readable line for it (cut
    short, not UTF-8, an HTML page, empty): it ran and may have been billed, but its answer
    is lost. It counts an attempt, so damage that persists ends in a reported failure
    instead of paying again and again."""
    attempts = (state.attempts if state else 0) + 1
    if attempts < max_attempts:
        return Settlement(RETRY, 1, 0, reason, "retry")
    return Settlement(FAILED, 1, 0, f"{reason} (gave up after {attempts} attempts)", "failed")
