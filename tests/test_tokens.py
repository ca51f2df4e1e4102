"""The offline token count must equal what the real API billed, line for line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import tokens

REAL = Path(__file__).parent / "data" / "openai-batch-real"

PAIRS = [
    ("chat-plain/gpt-4o-mini.input.jsonl", "chat-plain/gpt-4o-mini.output.jsonl"),
    ("chat-plain/gpt-5-nano.input.jsonl", "chat-plain/gpt-5-nano.output.jsonl"),
    ("chat-json-mode/input.jsonl", "chat-json-mode/output.jsonl"),
    ("chat-finish-length/input.jsonl", "chat-finish-length/output.jsonl"),
    ("responses-api/valzaak.input.jsonl", "responses-api/valzaak.output.jsonl"),
    ("embeddings/input.jsonl", "embeddings/output.jsonl"),
]


def _lines(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


@pytest.mark.parametrize("input_file,output_file", PAIRS, ids=[p[0] for p in PAIRS])
def test_estimated_input_tokens_equal_the_real_usage(input_file, output_file):
    requests = {r["custom_id"]: r for r in _lines(REAL / input_file)}
    deviations = []
    for line in _lines(REAL / output_file):
        request = requests[line["custom_id"]]
        usage = line["response"]["body"]["usage"]
        billed = usage.get("prompt_tokens", usage.get("input_tokens"))
        counted = tokens.prompt_tokens(request["url"], request["body"])
        assert counted.exact, f"{line['custom_id']}: count should be exact for this shape"
        deviations.append(counted.tokens - billed)
    worst = max(deviations, key=abs)
    print(f"{input_file}: {len(deviations)} lines, largest deviation {worst} tokens")
    assert worst == 0


def test_dated_and_family_model_ids_share_a_tokenizer():
    assert tokens.encoding_name("gpt-4o-mini-2024-07-18") == ("o200k_base", True)
    assert tokens.encoding_name("gpt-4-0613") == ("cl100k_base", True)
    assert tokens.encoding_name("text-embedding-3-small") == ("cl100k_base", True)
    assert tokens.encoding_name("ft:gpt-4o-mini-2024-07-18:acme::9abc") == ("o200k_base", True)


def test_unknown_models_are_counted_but_marked_approximate():
    count = tokens.prompt_tokens("/v1/chat/completions", {
        "model": "mystery-1", "messages": [{"role": "user", "content": "hi"}]})
    assert count.tokens > 0 and not count.exact


def test_a_json_schema_format_adds_tokens_and_is_approximate():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    plain = tokens.prompt_tokens("/v1/chat/completions", body)
    with_schema = tokens.prompt_tokens("/v1/chat/completions", {**body, "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "x", "strict": True, "schema": {"type": "object", "properties": {
            "topics": {"type": "array", "items": {"type": "string"}}}}}}})
    assert with_schema.tokens > plain.tokens and plain.exact and not with_schema.exact


def test_output_cap_comes_from_whichever_field_the_request_uses():
    assert tokens.max_output_tokens("/v1/chat/completions", {"max_tokens": 300}) == 300
    assert tokens.max_output_tokens("/v1/chat/completions", {"max_completion_tokens": 50}) == 50
    assert tokens.max_output_tokens("/v1/responses", {"max_output_tokens": 70}) == 70
    assert tokens.max_output_tokens("/v1/chat/completions", {"max_tokens": None}) is None
    assert tokens.max_output_tokens("/v1/embeddings", {}) == 0
