"""Messages made by the Anthropic dialect: deterministic content from the prompt's words,
structured output valid against its schema, forced tool calls, stop reasons, usage, and
a synchronous POST /v1/messages that answers like the batch path."""

from __future__ import annotations

import json

import anthropic
import jsonschema
import pytest
from emulator_fixtures import emulator  # noqa: F401  (fixtures)
from test_emulator_anthropic_fixtures import MODEL, claude, local, request, run, text_of  # noqa: F401  (fixtures)

from runner.emulator.anthropic_params import STRUCTURED_OUTPUTS_BETA

TAGS_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["topics", "category",
                                                                  "language", "live"],
    "properties": {
        "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "category": {"type": "string", "enum": ["Music", "Gaming", "News", "Other"]},
        "language": {"type": "string"},
        "live": {"type": "boolean"},
        "published": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "source": {"$ref": "#/$defs/source"}},
    "$defs": {"source": {"type": "object", "additionalProperties": False,
                         "required": ["host"],
                         "properties": {"host": {"type": "string", "format": "hostname"},
                                        "address": {"type": "string", "format": "ipv4"},
                                        "length": {"type": "string", "format": "duration"}}}},
}
USER = "Video: a live Music concert in Berlin, techno and lights. Answer in JSON."


def _params(**extra):
    return {"model": MODEL, "max_tokens": 400, "system": "You tag videos.",
            "messages": [{"role": "user", "content": USER}], **extra}


def _checked(value, schema=TAGS_SCHEMA):
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    return value


def test_a_sync_message_is_shaped_like_the_real_one_and_made_of_the_prompts_words(claude):
    message = claude.messages.create(**_params(system="Describe the video in one sentence.",
                                               messages=[{"role": "user", "content":
                                                          "Berlin techno concert at night"}]))
    assert message.id.startswith("msg_01") and message.type == "message"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    words = text_of(message).lower()
    assert "berlin" in words and "techno" in words
    usage = message.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0
    assert usage.service_tier == "standard"


def test_the_sync_answer_is_the_batch_answer_for_the_same_params(local):
    params = _params(output_config={"format": {"type": "json_schema", "schema": TAGS_SCHEMA}})
    sync = local.messages.create(**params)
    _, found = run(local, [{"custom_id": "same", "params": params}])
    batched = found["same"].message
    assert sync.content == batched.content and sync.stop_reason == batched.stop_reason
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        assert getattr(sync.usage, name) == getattr(batched.usage, name)


def test_the_same_prompt_always_gets_the_same_answer(local, emulator):
    first = local.messages.create(**_params())
    again = local.messages.create(**_params())
    assert first.content == again.content and first.id != again.id


def test_structured_output_is_json_valid_against_its_schema(local):
    message = local.messages.create(**_params(output_config={
        "format": {"type": "json_schema", "schema": TAGS_SCHEMA}}))
    value = _checked(json.loads(text_of(message)))
    assert value["category"] == "Music"  # the enum value the record mentions
    assert "berlin" in [t.lower() for t in value["topics"]]


def test_the_deprecated_output_format_needs_its_beta_header(local):
    legacy = {"output_format": {"type": "json_schema", "schema": TAGS_SCHEMA}}  # raw JSON
    with pytest.raises(anthropic.BadRequestError, match="output_format"):
        local.messages.create(**_params(), extra_body=legacy)
    message = local.messages.create(**_params(), extra_body=legacy, extra_headers={
        "anthropic-beta": STRUCTURED_OUTPUTS_BETA})
    _checked(json.loads(text_of(message)))


@pytest.mark.parametrize("schema,message", [
    ({"type": "object", "properties": {"a": {"type": "string"}}},
     "output_config.format.schema: For 'object' type, 'additionalProperties' must be "
     "explicitly set to false"),
    ({"type": "object", "additionalProperties": False,
      "properties": {"n": {"type": "integer", "minimum": 1}}},
     "output_config.format.schema: For 'integer' type, property 'minimum' is not supported"),
    ({"type": "object", "additionalProperties": False,
      "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 3}}},
     "output_config.format.schema: For 'array' type, 'minItems' values other than 0 or 1 "
     "are not supported"),
    ({"$defs": {"node": {"type": "object", "additionalProperties": False,
                         "properties": {"next": {"$ref": "#/$defs/node"}}}},
      "$ref": "#/$defs/node"},
     "output_config.format.schema: Recursive schemas are not supported"),
], ids=["open object", "minimum", "minItems 3", "recursive"])
def test_a_schema_outside_the_supported_subset_is_refused(local, schema, message):
    with pytest.raises(anthropic.BadRequestError) as caught:
        local.messages.create(**_params(output_config={
            "format": {"type": "json_schema", "schema": schema}}))
    assert caught.value.body["error"]["message"].startswith(message)
    assert caught.value.body["type"] == "error" and caught.value.request_id.startswith("req_")


def test_a_forced_tool_call_answers_with_input_valid_against_the_tool_schema(claude):
    tools = [{"name": "record_tags", "description": "Record the tags.",
              "input_schema": TAGS_SCHEMA},
             {"name": "other_tool", "input_schema": {"type": "object", "properties": {}}}]
    message = claude.messages.create(**_params(tools=tools, tool_choice={
        "type": "tool", "name": "record_tags"}))
    assert message.stop_reason == "tool_use"
    (block,) = message.content  # a forced call has no text before it
    assert block.type == "tool_use" and block.name == "record_tags"
    assert block.id.startswith("toolu_01")
    _checked(block.input)


def test_with_auto_tool_choice_a_tool_is_called_only_when_the_prompt_names_it(local):
    tools = [{"name": "lookup_weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    plain = local.messages.create(**_params(tools=tools))
    assert plain.stop_reason == "end_turn" and plain.content[0].type == "text"
    named = local.messages.create(**_params(tools=tools, messages=[
        {"role": "user", "content": "Use lookup_weather for Berlin"}]))
    assert named.stop_reason == "tool_use" and named.content[-1].input["city"]


def test_max_tokens_cuts_the_answer_and_bills_exactly_the_cap(local):
    message = local.messages.create(**_params(max_tokens=5, output_config={
        "format": {"type": "json_schema", "schema": TAGS_SCHEMA}}))
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5
    with pytest.raises(json.JSONDecodeError):
        json.loads(text_of(message))


def test_a_stop_sequence_ends_the_answer_where_it_appears(local):
    message = local.messages.create(**_params(
        messages=[{"role": "user", "content": "Berlin concert, techno music"}],
        system=None, stop_sequences=["music"]))
    full = text_of(local.messages.create(**_params(
        messages=[{"role": "user", "content": "Berlin concert, techno music"}], system=None)))
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "music"
    assert text_of(message) == full[:full.index("music")]


def test_a_prefilled_assistant_turn_is_continued_not_repeated(local):
    base = [{"role": "user", "content": USER}]
    whole = text_of(local.messages.create(**_params(messages=base)))
    prefix = whole[:9]
    continued = local.messages.create(**_params(messages=[
        *base, {"role": "assistant", "content": prefix}]))
    assert prefix + text_of(continued) == whole


def test_thinking_spends_its_tokens_first_and_shows_a_thinking_block(local):
    message = local.messages.create(**_params(max_tokens=4000, thinking={
        "type": "enabled", "budget_tokens": 2000}))
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text"] and message.content[0].signature
    plain = local.messages.create(**_params(max_tokens=4000))
    assert message.usage.output_tokens > plain.usage.output_tokens


def test_a_cached_system_prompt_reports_cache_tokens(local):
    long_system = "You tag videos by their title and description. " * 150
    system = [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]
    seen = set()
    for i in range(8):
        usage = local.messages.create(**_params(system=system, messages=[
            {"role": "user", "content": f"Video {i}: Berlin concert"}])).usage
        seen.add("read" if usage.cache_read_input_tokens else "created")
        assert usage.cache_read_input_tokens + usage.cache_creation_input_tokens >= 1024
        assert usage.input_tokens < 50  # only the uncached rest
    assert seen == {"read", "created"}


def test_count_tokens_agrees_with_the_billed_input(local):
    params = _params()
    billed = local.messages.create(**params).usage
    counted = local.messages.count_tokens(model=MODEL, system=params["system"],
                                          messages=params["messages"])
    assert counted.input_tokens == billed.input_tokens


def test_a_request_in_a_batch_gets_the_same_content_as_alone(local):
    single = request("one", "Berlin techno concert")
    _, found = run(local, [single, request("two", "Paris jazz evening")])
    alone = local.messages.create(**single["params"])
    assert found["one"].message.content == alone.content
    assert found["two"].message.content != alone.content
