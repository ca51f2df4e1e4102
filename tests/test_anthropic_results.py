"""One line of a Message Batch's results becomes the same Outcome as an OpenAI line
(runner/provider/anthropic_results.py): answers, retries, final failures, usage, cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runner.answers import AnswerValidator
from runner.pricing import PriceTable, cost
from runner.provider.anthropic_results import parse_result, usage_of
from runner.records import RequestState
from runner.results import Expect, Usage
from runner.retry import settle_line

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["tag"],
          "properties": {"tag": {"type": "string"}}}
USAGE = {"input_tokens": 100, "output_tokens": 40, "cache_read_input_tokens": 1000,
         "cache_creation_input_tokens": 300,
         "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}}


def succeeded(content, stop="end_turn", usage=None):
    return {"custom_id": "k1", "result": {"type": "succeeded", "message": {
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-haiku-4-5-20251001", "content": content, "stop_reason": stop,
        "stop_sequence": None, "usage": usage or {"input_tokens": 10, "output_tokens": 5}}}}


def errored(kind, message="boom"):
    return {"custom_id": "k1", "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": kind, "message": message}}}}


def text(value):
    return [{"type": "text", "text": value}]


def test_a_succeeded_message_is_an_answer_billed_with_its_model():
    outcome = parse_result(succeeded(text('{"tag": "music"}')), expect=Expect.JSON,
                           validator=AnswerValidator(SCHEMA))
    assert outcome.ok and outcome.value == {"tag": "music"} and outcome.billed
    assert outcome.model == "claude-haiku-4-5-20251001" and outcome.status_code == 200


def test_text_blocks_are_joined_and_fences_stripped():
    outcome = parse_result(succeeded(text("```json\n{\"tag\":") + text(' "x"}\n```')),
                           expect=Expect.JSON)
    assert outcome.value == {"tag": "x"}
    assert parse_result(succeeded(text("plain")), expect=Expect.TEXT).value == "plain"


def test_a_forced_tool_call_holds_the_json():
    content = [{"type": "tool_use", "id": "toolu_01", "name": "answer", "input": {"tag": "y"}}]
    outcome = parse_result(succeeded(content, stop="tool_use"), expect=Expect.JSON,
                           validator=AnswerValidator(SCHEMA))
    assert outcome.ok and outcome.value == {"tag": "y"}


@pytest.mark.parametrize(("line", "reason", "retryable", "billed"), [
    (succeeded(text('{"tag": "mu'), stop="max_tokens"), "truncated: stop_reason=max_tokens",
     True, True),
    (succeeded(text("I can't help with that request."), stop="refusal"),
     "refusal: stop_reason=refusal", False, True),
    (succeeded([]), "empty: no text content (stop_reason=end_turn)", True, True),
    (succeeded(text('{"tag": 3}')), "schema: at /tag: 3 is not of type 'string'", True, True),
    (succeeded(text("not json")), "invalid JSON: Expecting value at char 0", True, True),
    (errored("invalid_request_error", "max_tokens: Field required"),
     "http 400 invalid_request_error: max_tokens: Field required", False, False),
    (errored("not_found_error", "model: claude-sonet-4-5"),
     "http 404 not_found_error: model: claude-sonet-4-5", False, False),
    (errored("api_error", "Internal server error"), "http 500 api_error: Internal server error",
     True, False),
    (errored("overloaded_error", "Overloaded"), "http 529 overloaded_error: Overloaded", True,
     False),
    ({"custom_id": "k1", "result": {"type": "canceled"}},
     "batch_cancelled: the batch was cancelled before this request ran", True, False),
    ({"custom_id": "k1", "result": {"type": "expired"}},
     "batch_expired: the batch expired before this request ran", True, False),
    ({"custom_id": "k1", "result": {"type": "paused"}}, "malformed: unknown result type 'paused'",
     True, False),
    ({"custom_id": "k1"}, "malformed: the line has no result object", True, False),
])
def test_failures_map_to_the_same_outcomes_as_openai_lines(line, reason, retryable, billed):
    outcome = parse_result(line, expect=Expect.JSON, validator=AnswerValidator(SCHEMA))
    assert not outcome.ok
    assert (outcome.reason, outcome.retryable, outcome.billed) == (reason, retryable, billed)


def test_canceled_and_expired_requests_never_ran_so_count_no_attempt():
    state = RequestState("queued", 1, 0, 0, 0.0, None)
    for kind in ("canceled", "expired"):
        outcome = parse_result({"custom_id": "k", "result": {"type": kind}}, expect=Expect.TEXT)
        settled = settle_line(outcome, state, max_attempts=1)
        assert (settled.state, settled.attempts_delta, settled.counted_as) == \
            ("retry", 0, "deferred")
    server = parse_result(errored("api_error"), expect=Expect.TEXT)
    assert settle_line(server, state, max_attempts=3).attempts_delta == 1


def test_usage_counts_cache_reads_and_writes_inside_input():
    usage = usage_of({"usage": USAGE})
    assert usage == Usage(input_tokens=1400, cached_tokens=1000, output_tokens=40,
                          cache_write_tokens=300, cache_write_1h_tokens=100)


def test_cost_bills_fresh_input_cache_reads_and_both_cache_writes_at_their_rates():
    price = PriceTable.load().lookup("claude-sonnet-4-5-20250929")
    assert price is not None
    usd = cost(usage_of({"usage": USAGE}), price.standard)
    # 100 × $3 + 1000 × $0.30 + 200 × $3.75 + 100 × $6 + 40 × $15, per 1M tokens
    assert usd == Decimal("0.002550")
    assert price.batch is not None   # batch: unpublished cache rates bill at the input rate
    # 1400 × $1.50 + 40 × $7.50
    assert cost(usage_of({"usage": USAGE}), price.batch) == Decimal("0.002400")
