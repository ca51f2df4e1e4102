"""Every line of every real Batch API file becomes the outcome its shape calls for.

Expected counts come from the files' README (tests/data/openai-batch-real/README.md) and from
reading the raw JSON in this file; token sums are recomputed here from the raw `usage` blocks,
not through runner.results.
"""

from __future__ import annotations

import base64
import json
import struct
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from runner.results import MAX_REASON, Expect, Usage, parse_line, strip_fences

REAL = Path(__file__).parent / "data" / "openai-batch-real"


def raw_lines(relative: str) -> list[dict]:
    with (REAL / relative).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def outcomes(relative: str, expect: Expect, validator=None):
    return [parse_line(obj, expect=expect, validator=validator) for obj in raw_lines(relative)]


def raw_usage(relative: str) -> Usage:
    """Token sums straight from the raw usage blocks of the status-200 lines."""
    sums = Counter()
    for obj in raw_lines(relative):
        response = obj["response"]
        if response is None or response["status_code"] != 200:
            continue
        usage = response["body"]["usage"]
        if "input_tokens" in usage:  # /v1/responses
            sums["input"] += usage["input_tokens"]
            sums["output"] += usage["output_tokens"]
            sums["cached"] += usage["input_tokens_details"]["cached_tokens"]
            sums["reasoning"] += usage["output_tokens_details"]["reasoning_tokens"]
        else:  # chat and embeddings; Groq and embeddings lack the *_details blocks
            sums["input"] += usage["prompt_tokens"]
            sums["output"] += usage.get("completion_tokens", 0)
            sums["cached"] += usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
            sums["reasoning"] += usage.get("completion_tokens_details", {}).get(
                "reasoning_tokens", 0)
        assert usage["total_tokens"] == usage.get("prompt_tokens", usage.get("input_tokens")) \
            + usage.get("completion_tokens", usage.get("output_tokens", 0))
    return Usage(sums["input"], sums["cached"], sums["output"], sums["reasoning"])


def total(results) -> Usage:
    return sum((o.usage for o in results), Usage())


# (file, expect, {kind: count}, retryable lines, billed lines)
REAL_FILES = [
    ("chat-plain/gpt-4o-mini.output.jsonl", Expect.TEXT, {"ok": 100}, 0, 100),
    ("chat-plain/gpt-5-nano.output.jsonl", Expect.TEXT, {"ok": 100}, 0, 100),
    ("chat-json-schema/output.jsonl", Expect.JSON, {"ok": 2}, 0, 2),
    ("chat-json-mode/output.jsonl", Expect.JSON, {"ok": 42}, 0, 42),
    ("chat-finish-length/output.jsonl", Expect.JSON, {"ok": 102, "truncated": 26}, 26, 128),
    ("embeddings/output.jsonl", Expect.EMBEDDING, {"ok": 3}, 0, 3),
    ("errors/chat-completions-400.errors.jsonl", Expect.TEXT, {"http": 100}, 1, 0),
    ("errors/embeddings-400.errors.jsonl", Expect.EMBEDDING, {"http": 1}, 0, 0),
    ("groq/output.run1.jsonl", Expect.TEXT, {"ok": 3}, 0, 3),
    ("groq/output.run2.jsonl", Expect.TEXT, {"ok": 3}, 0, 3),
    ("responses-api/ayush.output.first300.jsonl", Expect.JSON, {"ok": 300}, 0, 300),
    ("responses-api/valzaak.output.jsonl", Expect.TEXT, {"ok": 3}, 0, 3),
]


@pytest.mark.parametrize("relative,expect,kinds,retryable,billed", REAL_FILES,
                         ids=[f[0] for f in REAL_FILES])
def test_every_real_line_gets_the_outcome_its_shape_calls_for(relative, expect, kinds,
                                                              retryable, billed):
    results = outcomes(relative, expect)
    assert Counter(o.kind for o in results) == kinds
    assert sum(o.retryable for o in results) == retryable
    assert sum(o.billed for o in results) == billed
    assert [o.custom_id for o in results] == [obj["custom_id"] for obj in raw_lines(relative)]
    for outcome in results:
        assert outcome.ok == (outcome.reason is None)
        assert outcome.reason is None or "\n" not in outcome.reason


@pytest.mark.parametrize("relative", [f[0] for f in REAL_FILES])
def test_summed_usage_equals_the_raw_usage_blocks(relative):
    results = outcomes(relative, Expect.TEXT)  # usage does not depend on what is expected
    assert total(results) == raw_usage(relative)


def test_reasoning_tokens_are_counted_inside_output_tokens():
    usage = total(outcomes("chat-plain/gpt-5-nano.output.jsonl", Expect.TEXT))
    assert 0 < usage.reasoning_tokens < usage.output_tokens
    assert usage == raw_usage("chat-plain/gpt-5-nano.output.jsonl")


def test_plain_text_is_the_message_content_and_the_dated_model_is_reported():
    for obj, outcome in zip(raw_lines("chat-plain/gpt-4o-mini.output.jsonl"),
                            outcomes("chat-plain/gpt-4o-mini.output.jsonl", Expect.TEXT),
                            strict=True):
        assert outcome.value == obj["response"]["body"]["choices"][0]["message"]["content"]
        assert outcome.model == "gpt-4o-mini-2024-07-18"
        assert outcome.status_code == 200


def test_truncated_lines_are_retryable_billed_and_exactly_the_length_ones():
    raw = raw_lines("chat-finish-length/output.jsonl")
    results = outcomes("chat-finish-length/output.jsonl", Expect.JSON)
    for obj, outcome in zip(raw, results, strict=True):
        finish = obj["response"]["body"]["choices"][0]["finish_reason"]
        if finish == "length":
            assert outcome.reason == "truncated: finish_reason=length"
            assert outcome.retryable and outcome.billed and outcome.usage.output_tokens == 300
        else:
            assert outcome.ok and set(outcome.value) >= {"image_url", "size", "remarks"}


def test_fenced_json_followed_by_a_note_still_parses():
    # Five real answers close the fence and then add "Note: the image URL is a placeholder…".
    raw = raw_lines("chat-finish-length/output.jsonl")
    choices = [obj["response"]["body"]["choices"][0] for obj in raw]
    noted = [i for i, choice in enumerate(choices) if choice["finish_reason"] == "stop"
             and not choice["message"]["content"].rstrip().endswith("```")]
    results = outcomes("chat-finish-length/output.jsonl", Expect.JSON)
    assert len(noted) == 5
    assert all(results[i].ok for i in noted)


def test_responses_api_text_is_joined_from_output_text_parts_fenced_or_not():
    results = outcomes("responses-api/ayush.output.first300.jsonl", Expect.JSON)
    assert all(set(o.value) == {"score", "niche"} for o in results)
    text = outcomes("responses-api/valzaak.output.jsonl", Expect.TEXT)
    assert text[0].value.startswith("太陽系の惑星")
    assert text[0].model == "gpt-4.1-nano-2025-04-14"


def test_one_embedding_input_gives_the_vector():
    raw = raw_lines("embeddings/output.jsonl")
    for obj, outcome in zip(raw, outcomes("embeddings/output.jsonl", Expect.EMBEDDING),
                            strict=True):
        assert outcome.value == obj["response"]["body"]["data"][0]["embedding"]
        assert len(outcome.value) == 1536


def test_http_400_lines_are_final_and_the_status_0_line_is_retried():
    results = outcomes("errors/chat-completions-400.errors.jsonl", Expect.TEXT)
    odd = [o for o in results if o.status_code == 0]
    assert len(odd) == 1 and odd[0].custom_id == "request-2"
    assert odd[0].reason == "http 0 with an empty body" and odd[0].retryable
    four_hundreds = [o for o in results if o.status_code == 400]
    assert len(four_hundreds) == 99
    assert not any(o.retryable or o.billed for o in four_hundreds)
    assert four_hundreds[0].reason.startswith(
        "http 400 unsupported_parameter: Unsupported parameter: 'max_tokens'")


def test_a_400_with_null_code_is_labelled_by_its_type():
    [outcome] = outcomes("errors/embeddings-400.errors.jsonl", Expect.EMBEDDING)
    assert outcome.reason.startswith("http 400 invalid_request_error: This model's maximum "
                                     "context length is 8192 tokens")
    assert not outcome.retryable


# The output really has {"analysis": <string>, "speaker_points": [...]} (see the README).
DEBATE_SCHEMA = {
    "type": "object", "required": ["analysis", "speaker_points"], "additionalProperties": False,
    "properties": {
        "analysis": {"type": "string"},
        "speaker_points": {"type": "array", "items": {
            "type": "object", "required": ["speaker", "contributions"],
            "properties": {"speaker": {"type": "object", "required": ["name", "party"]},
                           "contributions": {"type": "array"}}}},
    },
}


def test_real_structured_output_validates_against_the_schema_it_was_made_with():
    validator = jsonschema.Draft202012Validator(DEBATE_SCHEMA)
    results = outcomes("chat-json-schema/output.jsonl", Expect.JSON, validator)
    assert all(o.ok for o in results)


def test_a_schema_changed_after_the_run_fails_at_the_changed_field():
    # The repo later made `analysis` an object; the real outputs no longer fit.
    schema = {**DEBATE_SCHEMA, "properties": {**DEBATE_SCHEMA["properties"],
                                              "analysis": {"type": "object"}}}
    results = outcomes("chat-json-schema/output.jsonl", Expect.JSON,
                       jsonschema.Draft202012Validator(schema))
    assert all(o.reason.startswith("schema: at /analysis: ") for o in results)
    assert all(o.retryable and o.billed for o in results)


# Synthetic lines for shapes no real file has, built like the real ones.

def chat_line(content, *, finish="stop", refusal=None, usage=None, status=200):
    message = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    body = {"object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    return {"id": "batch_req_x", "custom_id": "c-1",
            "response": {"status_code": status, "request_id": "r", "body": body}, "error": None}


def error_line(status, error):
    return {"id": "batch_req_x", "custom_id": "c-1",
            "response": {"status_code": status, "request_id": "r", "body": {"error": error}},
            "error": None}


@pytest.mark.parametrize("code", ["batch_expired", "batch_cancelled"])
def test_expired_and_cancelled_requests_are_retried_and_not_billed(code):
    line = {"id": "batch_req_x", "custom_id": "c-1", "response": None,
            "error": {"code": code, "message": "This request could not be executed before the "
                                              "completion window expired."}}
    outcome = parse_line(line, expect=Expect.JSON)
    assert (outcome.ok, outcome.retryable, outcome.billed) == (False, True, False)
    assert outcome.reason.startswith(f"{code}: This request") and outcome.kind == code


@pytest.mark.parametrize("status,retryable", [(500, True), (503, True), (429, True),
                                              (400, False), (404, False), (422, False)])
def test_server_errors_and_rate_limits_are_retried_other_4xx_are_not(status, retryable):
    outcome = parse_line(error_line(status, {"message": "boom", "type": "server_error",
                                             "param": None, "code": None}), expect=Expect.TEXT)
    assert outcome.retryable is retryable
    assert outcome.reason == f"http {status} server_error: boom" and not outcome.billed


def test_a_refusal_is_final_and_billed():
    outcome = parse_line(chat_line(None, refusal="I can't help with that"), expect=Expect.JSON)
    assert outcome.reason == "refusal: I can't help with that"
    assert not outcome.retryable and outcome.billed


def test_a_content_filter_stop_counts_as_a_refusal():
    outcome = parse_line(chat_line("", finish="content_filter"), expect=Expect.TEXT)
    assert outcome.kind == "refusal" and not outcome.retryable


def responses_line(status="completed", parts=(), incomplete=None):
    body = {"object": "response", "status": status, "model": "gpt-4.1-nano-2025-04-14",
            "incomplete_details": incomplete,
            "output": [{"type": "message", "role": "assistant", "content": list(parts)}],
            "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 16, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 56}}
    return {"id": "batch_req_x", "custom_id": "c-1",
            "response": {"status_code": 200, "request_id": "r", "body": body}, "error": None}


def test_responses_incomplete_at_max_output_tokens_is_a_retryable_truncation():
    line = responses_line("incomplete", [{"type": "output_text", "text": '{"a": '}],
                          incomplete={"reason": "max_output_tokens"})
    outcome = parse_line(line, expect=Expect.JSON)
    assert outcome.reason == "truncated: incomplete (max_output_tokens)"
    assert outcome.retryable and outcome.billed and outcome.usage.output_tokens == 16


def test_responses_refusal_part_is_a_refusal():
    line = responses_line(parts=[{"type": "refusal", "refusal": "I can't help with that"}])
    outcome = parse_line(line, expect=Expect.TEXT)
    assert outcome.reason == "refusal: I can't help with that" and not outcome.retryable


def test_invalid_json_names_the_error_and_its_position():
    # Positions count within the unfenced text: {"a": 1 "b": 2} has its stray quote at 8.
    outcome = parse_line(chat_line('```json\n{"a": 1 "b": 2}\n```'), expect=Expect.JSON)
    assert outcome.reason == "invalid JSON: Expecting ',' delimiter at char 8"
    assert outcome.retryable and outcome.billed


TAGS_SCHEMA = {"type": "object", "required": ["topics", "category"],
               "properties": {"topics": {"type": "array", "items": {"type": "string"}},
                              "category": {"enum": ["Music", "Gaming", "News"]}}}


@pytest.mark.parametrize("answer,reason", [
    ('{"topics": [], "category": "Sport"}',
     "schema: at /category: 'Sport' is not one of ['Music', 'Gaming', 'News']"),
    ('{"topics": ["a", 2], "category": "News"}', "schema: at /topics/1: 2 is not of type 'string'"),
    ('{"topics": []}', "schema: at /: 'category' is a required property"),
])
def test_schema_failures_report_the_json_path_of_the_best_error(answer, reason):
    validator = jsonschema.Draft202012Validator(TAGS_SCHEMA)
    outcome = parse_line(chat_line(answer), expect=Expect.JSON, validator=validator)
    assert outcome.reason == reason and outcome.retryable


def test_cached_and_reasoning_tokens_are_read_from_the_details_blocks():
    usage = {"prompt_tokens": 2000, "completion_tokens": 700, "total_tokens": 2700,
             "prompt_tokens_details": {"cached_tokens": 1536},
             "completion_tokens_details": {"reasoning_tokens": 640}}
    outcome = parse_line(chat_line("hi", usage=usage), expect=Expect.TEXT)
    assert outcome.usage == Usage(2000, 1536, 700, 640)


def test_usages_add_field_by_field():
    assert Usage(1, 2, 3, 4) + Usage(10, 20, 30, 40) == Usage(11, 22, 33, 44)


def test_several_embeddings_come_back_in_index_order():
    vector = struct.pack("<2f", 0.5, -0.25)
    data = [{"object": "embedding", "index": 1, "embedding": [3.0, 4.0]},
            {"object": "embedding", "index": 0, "embedding": base64.b64encode(vector).decode()}]
    line = {"id": "b", "custom_id": "e", "error": None, "response": {
        "status_code": 200, "request_id": "r",
        "body": {"object": "list", "data": data, "model": "text-embedding-3-small",
                 "usage": {"prompt_tokens": 7, "total_tokens": 7}}}}
    outcome = parse_line(line, expect=Expect.EMBEDDING)
    assert outcome.value == [[0.5, -0.25], [3.0, 4.0]]
    assert outcome.usage == Usage(input_tokens=7)


def test_asking_for_text_from_an_embeddings_batch_is_a_final_mismatch():
    [obj] = raw_lines("embeddings/output.jsonl")[:1]
    outcome = parse_line(obj, expect=Expect.JSON)
    assert outcome.kind == "mismatch" and not outcome.retryable and outcome.billed


@pytest.mark.parametrize("line", [
    {"custom_id": "c", "response": "oops", "error": None},
    {"custom_id": "c", "response": None, "error": None},
    {"custom_id": "c", "response": {"status_code": 200, "body": {"object": "odd"}}},
    {"custom_id": "c", "response": {"body": {}}},
])
def test_lines_without_the_batch_shape_are_malformed_not_exceptions(line):
    outcome = parse_line(line, expect=Expect.TEXT)
    assert outcome.kind == "malformed" and not outcome.ok


def test_reasons_are_one_bounded_line():
    message = "first line\nsecond line " + "x" * 5000
    outcome = parse_line(error_line(400, {"message": message, "code": "too_long"}),
                         expect=Expect.TEXT)
    assert "\n" not in outcome.reason and len(outcome.reason) <= MAX_REASON
    assert outcome.reason.startswith("http 400 too_long: first line second line xxx")


@pytest.mark.parametrize("text,inner", [
    ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ('  ```\n[1, 2]\n```  ', "[1, 2]"),
    ('```JSON\n{"a": 1}\n``` \n\nNote: the URL is a placeholder.', '{"a": 1}'),
    ('```json\n{"a": "unterminated', '{"a": "unterminated'),
    ('```{"a": 1}```', '{"a": 1}'),
    ('{"md": "```python\\nx\\n```"}', '{"md": "```python\\nx\\n```"}'),
    ("\n  plain  \n", "plain"),
])
def test_strip_fences_unwraps_only_a_leading_fence(text, inner):
    assert strip_fences(text) == inner
