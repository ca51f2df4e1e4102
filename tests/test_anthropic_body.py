"""A job spec maps onto Anthropic's Messages API body and Message Batch request line
(runner/provider/anthropic_body.py); the request key covers that endpoint and body."""

from __future__ import annotations

import json

from runner.keys import canonical_json, request_key
from runner.provider.anthropic_body import (
    ENDPOINT,
    constant_part,
    structured_schema,
    variable_part,
)
from runner.render import render_body, request_frame

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["topics", "n"],
          "properties": {"topics": {"type": "array", "items": {"type": "string"},
                                    "maxItems": 8, "description": "What it is about"},
                         "n": {"type": "integer", "minimum": 1, "maximum": 5}}}


def test_the_body_holds_model_params_system_the_user_message_and_the_output_format():
    body = {**constant_part("claude-haiku-4-5", {"max_tokens": 200}, SCHEMA),
            **variable_part("You tag videos.", "A concert in Berlin")}
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 200
    assert body["system"] == "You tag videos."
    assert body["messages"] == [{"role": "user", "content": "A concert in Berlin"}]
    assert body["output_config"]["format"]["type"] == "json_schema"


def test_no_system_prompt_sends_no_system_key():
    assert variable_part(None, "hi") == {"messages": [{"role": "user", "content": "hi"}]}


def test_an_output_config_in_params_keeps_its_keys_beside_the_format():
    body = constant_part("claude-opus-4-5", {"max_tokens": 9, "output_config": {"effort": "low"}},
                         SCHEMA)
    assert body["output_config"]["effort"] == "low" and "format" in body["output_config"]


def test_constraints_structured_outputs_refuse_move_into_descriptions():
    schema = structured_schema(SCHEMA)
    topics, n = schema["properties"]["topics"], schema["properties"]["n"]
    assert "maxItems" not in topics and topics["description"] == "What it is about\n\n{maxItems: 8}"
    assert "minimum" not in n and n["description"] == "{minimum: 1, maximum: 5}"
    assert SCHEMA["properties"]["n"]["minimum"] == 1          # the job's own schema is untouched


def test_one_of_becomes_any_of_and_unsupported_formats_are_described():
    schema = structured_schema({"type": "object", "properties": {
        "x": {"oneOf": [{"type": "string", "format": "iri"}, {"type": "null"}]},
        "y": {"type": "string", "format": "date"}}})
    x = schema["properties"]["x"]
    assert "oneOf" not in x
    assert x["anyOf"][0] == {"type": "string", "description": '{format: "iri"}'}
    assert schema["properties"]["y"]["format"] == "date"


def test_a_job_on_anthropic_frames_lines_as_message_batch_requests(project):
    project.provider = {"name": "emulator", "dialect": "anthropic"}
    project.write_config()
    project.edit("jobs/tags.yaml", "model: gpt-4o-mini", "model: claude-haiku-4-5")
    project.edit("jobs/tags.yaml", "{temperature: 0, max_tokens: 200}", "{max_tokens: 200}")
    job = _load(project)
    frame = request_frame(job)
    assert frame.endpoint == ENDPOINT
    payload = {"title": "T", "channel_title": "C", "category": "Music", "tags": [],
               "description": "D"}
    body = render_body(job, 1, payload)
    parts = {k: body[k] for k in ("messages", "system")}
    serialised = frame.serialise(parts)
    assert json.loads(serialised) == body and serialised == canonical_json(body)
    key = frame.key(serialised)
    assert key == request_key(ENDPOINT, body)
    line = json.loads(frame.line(key, serialised))
    assert line == {"custom_id": key, "params": body}


def test_the_same_prompt_to_two_vendors_is_two_requests(project):
    payload = {"title": "T", "channel_title": "C", "category": "Music", "tags": [],
               "description": "D"}
    openai_job = _load(project)
    openai_key = request_key(request_frame(openai_job).endpoint,
                             render_body(openai_job, 1, payload))
    project.provider = {"name": "emulator", "dialect": "anthropic"}
    project.write_config()
    project.edit("jobs/tags.yaml", "{temperature: 0, max_tokens: 200}", "{max_tokens: 200}")
    anthropic_job = _load(project)          # the same model name, the same prompt
    anthropic_key = request_key(ENDPOINT, render_body(anthropic_job, 1, payload))
    assert openai_key != anthropic_key


def _load(project):
    from runner.jobs import load_jobs
    from runner.project import load_project

    return load_jobs(["jobs/tags.yaml"], load_project(project.root), project.root)[0]
