"""The retry rule (runner/retry.py): what becomes of a request whose attempt failed."""

from __future__ import annotations

import pytest

from runner.records import FAILED, RETRY, RequestState
from runner.results import Outcome, Usage, unreadable
from runner.retry import (
    TOKEN_LIMIT_TRIES,
    settle_invalid_batch,
    settle_line,
    settle_never_ran,
    settle_token_limit,
    settle_unreadable,
)


def outcome(reason: str, *, retryable: bool, billed: bool, status: int | None) -> Outcome:
    return Outcome("key", False, None, reason, retryable, billed, Usage(), None, status)


def state(attempts: int = 0, deferrals: int = 0) -> RequestState:
    return RequestState("queued", 1, attempts, deferrals, 0.0, None)


SERVER_ERROR = outcome("http 500: boom", retryable=True, billed=False, status=500)
INVALID_JSON = outcome("invalid JSON: Expecting value", retryable=True, billed=True, status=200)
EXPIRED = outcome("batch_expired: not run", retryable=True, billed=False, status=None)
BAD_REQUEST = outcome("http 400 invalid_request_error: bad", retryable=False, billed=False,
                      status=400)
REFUSAL = outcome("refusal: I can't", retryable=False, billed=True, status=200)
MALFORMED = outcome("malformed: neither a response nor an error", retryable=True, billed=False,
                    status=None)
UNREADABLE = unreadable("key", "outputs/x.jsonl:20: invalid JSON: Expecting value at char 0")


@pytest.mark.parametrize("line, attempts, expected", [
    pytest.param(SERVER_ERROR, 0, (RETRY, 1, 0, "retry"), id="5xx with attempts left: retry"),
    pytest.param(INVALID_JSON, 1, (RETRY, 1, 0, "retry"), id="invalid output: retry"),
    pytest.param(SERVER_ERROR, 2, (FAILED, 1, 0, "failed"), id="the last attempt: failed"),
    pytest.param(EXPIRED, 2, (RETRY, 0, 1, "deferred"),
                 id="never ran (expired): a deferral, not an attempt"),
    pytest.param(BAD_REQUEST, 0, (FAILED, 1, 0, "failed"), id="a 400 is not retried"),
    pytest.param(REFUSAL, 0, (FAILED, 1, 0, "failed"), id="a refusal is not retried"),
    pytest.param(MALFORMED, 0, (RETRY, 1, 0, "retry"),
                 id="a malformed line may hide a billed run: an attempt"),
    pytest.param(UNREADABLE, 1, (RETRY, 1, 0, "retry"),
                 id="an unreadable line that shows its custom_id: an attempt"),
    pytest.param(UNREADABLE, 2, (FAILED, 1, 0, "failed"),
                 id="an unreadable line on the last attempt: failed"),
])
def test_a_failed_line(line, attempts, expected):
    settled = settle_line(line, state(attempts), max_attempts=3)
    assert (settled.state, settled.attempts_delta, settled.deferrals_delta,
            settled.counted_as) == expected


def test_giving_up_says_after_how_many_attempts_and_a_final_failure_says_why():
    assert settle_line(SERVER_ERROR, state(2), 3).error == \
        "http 500: boom (gave up after 3 attempts)"
    assert settle_line(BAD_REQUEST, state(0), 3).error == BAD_REQUEST.reason


def test_a_full_queue_backs_off_doubling_then_fails_with_what_to_do():
    first = settle_token_limit(state(deferrals=0), requests=10, model="m", now=100.0,
                               backoff=2.0)
    later = settle_token_limit(state(deferrals=3), requests=10, model="m", now=100.0,
                               backoff=2.0)
    assert (first.state, first.not_before) == (RETRY, 102.0)
    assert (later.state, later.not_before) == (RETRY, 116.0)
    last = settle_token_limit(state(deferrals=TOKEN_LIMIT_TRIES - 1), requests=10, model="m",
                              now=100.0, backoff=2.0)
    assert last.state == FAILED and "batch.max_enqueued_tokens" in last.error


def test_a_batch_refused_whole_fails_and_a_missing_line_never_ran():
    assert settle_invalid_batch("batch_1", "invalid_url at line 2: x").state == FAILED
    never = settle_never_ran("batch_1", "expired")
    assert (never.state, never.attempts_delta, never.deferrals_delta) == (RETRY, 0, 1)


def test_a_request_lost_in_damaged_files_counts_an_attempt_until_none_is_left():
    reason = "unreadable: no readable line for it in the files of batch b (x.jsonl:1: …)"
    first = settle_unreadable(state(0), 3, reason)
    assert (first.state, first.attempts_delta, first.deferrals_delta, first.error,
            first.counted_as) == (RETRY, 1, 0, reason, "retry")
    last = settle_unreadable(state(2), 3, reason)
    assert (last.state, last.attempts_delta, last.counted_as) == (FAILED, 1, "failed")
    assert last.error == f"{reason} (gave up after 3 attempts)"
    assert settle_unreadable(None, 1, reason).state == FAILED
