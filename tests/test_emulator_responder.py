"""Answers look like the real service's lines and follow the request (format, caps, model)."""

from __future__ import annotations

import base64
import json
import math
from array import array

import jsonschema
import pytest
from emulator_fixtures import chat_request, emulator, local, real_lines, run_batch, shape  # noqa: F401  (fixtures)

from runner import tokens
from runner.emulator.content import Prompt, instance

TAGS = {"type": "object", "additionalProperties": False, "required": ["topics", "category"],
        "properties": {"topics": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                       "category": {"type": "string", "enum": ["Music", "Gaming", "News",
                                                                "Education", "Other"]}}}
VIDEO = "Title: Live in Berlin\nDescription: the band plays their new album; music all night"


def _schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "out", "strict": True,
                                                   "schema": schema}}


def _one(client, request: dict, endpoint: str = "/v1/chat/completions") -> dict:
    request = {**request, "url": endpoint}
    _, output, errors = run_batch(client, [request], endpoint=endpoint)
    return (output + errors)[0]


def _content(line: dict) -> str:
    return line["response"]["body"]["choices"][0]["message"]["content"]


@pytest.mark.parametrize("inputs,outputs,endpoint", [
    ("chat-plain/gpt-4o-mini.input.jsonl", "chat-plain/gpt-4o-mini.output.jsonl",
     "/v1/chat/completions"),
    ("chat-plain/gpt-5-nano.input.jsonl", "chat-plain/gpt-5-nano.output.jsonl",
     "/v1/chat/completions"),
    ("responses-api/valzaak.input.jsonl", "responses-api/valzaak.output.jsonl",
     "/v1/responses"),
    ("embeddings/input.jsonl", "embeddings/output.jsonl", "/v1/embeddings"),
], ids=["gpt-4o-mini", "gpt-5-nano", "responses", "embeddings"])
def test_answers_to_real_inputs_bill_the_real_prompt_tokens_in_the_real_line_shape(
        local, inputs, outputs, endpoint):
    requests = real_lines(inputs)[:20]
    real = {line["custom_id"]: line for line in real_lines(outputs)}
    _, output, errors = run_batch(local, requests, endpoint=endpoint)
    assert errors == [] and len(output) == len(requests)
    for line in output:
        twin = real[line["custom_id"]]
        body, real_body = line["response"]["body"], twin["response"]["body"]
        assert body["model"] == real_body["model"]  # dated like the real answer
        usage, real_usage = body["usage"], real_body["usage"]
        billed = "prompt_tokens" if "prompt_tokens" in usage else "input_tokens"
        assert usage[billed] == real_usage[billed]
        if endpoint == "/v1/responses":  # the 2026 body has more keys than valzaak's 2025 one
            assert set(real_body) <= set(body)
            continue
        assert shape(line) == shape(twin)


def test_a_responses_line_has_the_keys_of_a_real_2026_responses_line(local):
    line = _one(local, {"custom_id": "r", "method": "POST", "body": {
        "model": "gpt-4o-mini", "input": VIDEO, "max_output_tokens": 50}}, "/v1/responses")
    real = real_lines("responses-api/ayush.output.first300.jsonl")[0]
    assert shape(line) == shape(real)
    assert line["response"]["request_id"].count("-") == 4  # a dashed UUID, as in 2026


def test_json_schema_answers_are_valid_compact_json_made_of_the_prompt(local):
    line = _one(local, chat_request("a", VIDEO, response_format=_schema_format(TAGS)))
    content = _content(line)
    value = json.loads(content)
    jsonschema.validate(value, TAGS)
    assert value["category"] == "Music"  # the value the record mentions
    assert "berlin" in value["topics"]
    assert all(topic in VIDEO.lower() for topic in value["topics"])
    assert content == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


SCHEMAS = {
    "nested objects and $defs": {
        "type": "object", "required": ["people"], "additionalProperties": False,
        "$defs": {"person": {"type": "object", "required": ["name", "age", "tags"],
                             "additionalProperties": False,
                             "properties": {"name": {"type": "string"},
                                            "age": {"type": "integer", "minimum": 18,
                                                    "maximum": 99},
                                            "tags": {"type": "array", "minItems": 2,
                                                     "items": {"type": "string"}}}}},
        "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/person"},
                                  "minItems": 1, "maxItems": 3}}},
    "nullable, anyOf, formats and numbers": {
        "type": "object", "additionalProperties": False,
        "required": ["when", "site", "score", "ratio", "flag", "note", "either"],
        "properties": {"when": {"type": "string", "format": "date"},
                       "site": {"type": "string", "format": "uri"},
                       "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                 "multipleOf": 0.25},
                       "ratio": {"type": "integer", "minimum": -5, "exclusiveMaximum": -2},
                       "flag": {"type": "boolean"},
                       "note": {"type": ["string", "null"], "maxLength": 5},
                       "either": {"anyOf": [{"type": "null"}, {"type": "integer"}]}}},
    "recursive tree": {
        "type": "object", "required": ["label", "children"], "additionalProperties": False,
        "properties": {"label": {"type": "string", "minLength": 30},
                       "children": {"type": "array", "items": {"$ref": "#"}}}},
    "const and enum of numbers": {
        "type": "object", "required": ["version", "level"],
        "properties": {"version": {"const": 2}, "level": {"enum": [1, 2, 3]}}},
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_generated_instances_are_valid_against_their_schema(schema):
    for text in (VIDEO, "x", "日本の人口は約何人ですか？", ""):
        jsonschema.validate(instance(schema, Prompt(user=text, full=text)), schema)


def test_an_enum_prefers_the_value_the_user_text_mentions_over_the_instructions():
    schema = {"type": "string", "enum": ["Music", "Gaming", "News"]}
    system = "Pick one of Music, Gaming, News."
    assert instance(schema, Prompt(user="speedrun gaming gaming", full=system)) == "Gaming"
    assert instance(schema, Prompt(user="breaking news today", full=system)) == "News"


def test_json_mode_answers_parse_and_plain_answers_are_prose(local):
    json_mode = _content(_one(local, chat_request("a", VIDEO,
                                                  response_format={"type": "json_object"})))
    assert isinstance(json.loads(json_mode), dict)
    plain = _content(_one(local, chat_request("b", VIDEO)))
    assert plain.endswith(".") and "berlin" in plain.lower()


def test_asking_for_json_without_a_format_gets_fenced_json_like_real_models(local):
    content = _content(_one(local, chat_request("a", VIDEO, system="Answer in JSON.")))
    assert content.startswith("```json\n") and content.endswith("\n```")
    assert isinstance(json.loads(content[len("```json\n"):-len("\n```")]), dict)


def test_max_tokens_cuts_the_answer_with_finish_reason_length_and_unterminated_json(local):
    line = _one(local, chat_request("a", VIDEO * 5, max_tokens=7,
                                    response_format=_schema_format(TAGS)))
    body = line["response"]["body"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 7
    content = _content(line)
    assert tokens.count_text(content, "gpt-4o-mini") == 7
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_max_output_tokens_makes_a_responses_answer_incomplete(local):
    line = _one(local, {"custom_id": "r", "method": "POST", "body": {
        "model": "gpt-4.1-nano", "input": VIDEO, "max_output_tokens": 3}}, "/v1/responses")
    body = line["response"]["body"]
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 3
    assert body["model"] == "gpt-4.1-nano-2025-04-14"


def test_reasoning_models_bill_reasoning_tokens_inside_completion_tokens(local):
    body = _one(local, chat_request("a", VIDEO, model="gpt-5-nano"))["response"]["body"]
    usage = body["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning < usage["completion_tokens"]
    assert "logprobs" not in body["choices"][0] and body["system_fingerprint"] is None
    capped = _one(local, chat_request("b", VIDEO, model="gpt-5-nano",
                                      max_completion_tokens=reasoning - 1))["response"]["body"]
    assert capped["choices"][0]["message"]["content"] == ""  # reasoning used up the cap
    assert capped["choices"][0]["finish_reason"] == "length"


def test_a_reasoning_model_refuses_max_tokens_with_the_real_400_line(local):
    line = _one(local, chat_request("a", VIDEO, model="gpt-5-mini", max_tokens=100))
    real = real_lines("errors/chat-completions-400.errors.jsonl")[0]
    assert line["response"]["status_code"] == 400 and line["error"] is None
    assert line["response"]["body"] == real["response"]["body"]
    assert shape(line) == shape(real)


@pytest.mark.parametrize("asked,reported", [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("gpt-4o", "gpt-4o-2024-08-06"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"), ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
    ("gpt-5-nano", "gpt-5-nano-2025-08-07"), ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
    ("gpt-4o-2024-11-20", "gpt-4o-2024-11-20")])
def test_answers_carry_dated_model_ids(local, asked, reported):
    assert _one(local, chat_request("a", "hi", model=asked))["response"]["body"]["model"] \
        == reported


def _embedding(local, **body) -> dict:
    return _one(local, {"custom_id": "e", "method": "POST",
                        "body": {"input": "I am feeling good today", **body}},
                "/v1/embeddings")["response"]


@pytest.mark.parametrize("model,dimensions,size", [
    ("text-embedding-3-small", None, 1536), ("text-embedding-3-large", None, 3072),
    ("text-embedding-ada-002", None, 1536), ("text-embedding-3-small", 256, 256)])
def test_embeddings_are_deterministic_unit_vectors_of_the_model_dimension(local, model,
                                                                          dimensions, size):
    extra = {} if dimensions is None else {"dimensions": dimensions}
    first = _embedding(local, model=model, **extra)["body"]
    vector = first["data"][0]["embedding"]
    assert len(vector) == size and math.isclose(math.fsum(v * v for v in vector), 1,
                                                rel_tol=1e-5)
    assert first["model"] == model  # embeddings keep their name
    assert _embedding(local, model=model, **extra)["body"]["data"][0]["embedding"] == vector


def test_embeddings_in_base64_decode_to_the_same_vector(local):
    plain = _embedding(local, model="text-embedding-3-small")["body"]["data"][0]["embedding"]
    coded = _embedding(local, model="text-embedding-3-small",
                       encoding_format="base64")["body"]["data"][0]["embedding"]
    decoded = array("f", base64.b64decode(coded)).tolist()
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(plain, decoded, strict=True))


def test_ada_refuses_dimensions_and_long_inputs_get_the_real_context_error(local):
    refused = _embedding(local, model="text-embedding-ada-002", dimensions=256)
    assert refused["status_code"] == 400
    long = _embedding(local, model="text-embedding-3-large", input="word " * 9000)
    real = real_lines("errors/embeddings-400.errors.jsonl")[0]["response"]
    assert long["status_code"] == 400 and shape(long) == shape(real)
    assert long["body"]["error"]["message"].startswith(
        "This model's maximum context length is 8192 tokens")


def test_the_same_request_always_gets_the_same_content(local):
    request = chat_request("a", VIDEO, response_format=_schema_format(TAGS))
    assert _content(_one(local, request)) == _content(_one(local, request))


def test_links_in_the_record_never_become_words_of_the_answer():
    prompt = Prompt(user="Live concert in Berlin. Tickets: https://tickets.example.com/berlin "
                         "and www.example.org/live", full="")
    topics = instance({"type": "array", "items": {"type": "string"}, "maxItems": 8}, prompt)
    assert not {"https", "tickets.example.com", "www", "example", "org", "com"} & set(topics)
    assert "berlin" in topics


def test_a_language_field_gets_the_language_code_of_the_record():
    schema = {"type": "object", "properties": {"language": {"type": "string"}},
              "required": ["language"], "additionalProperties": False}
    french = Prompt(user="Le match de la semaine est dans les vidéos pour vous", full="")
    english = Prompt(user="The match of the week is in the videos for you", full="")
    assert instance(schema, french) == {"language": "fr"}
    assert instance(schema, english) == {"language": "en"}
