"""What the Anthropic dialect refuses, and how: 400s at batch creation for the request
schema, errored results for what only the service checks, headers, limits."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest
from emulator_fixtures import emulator  # noqa: F401  (fixtures)
from test_emulator_anthropic_fixtures import MODEL, claude, local, request, requests, run  # noqa: F401  (fixtures)

from runner.emulator.anthropic_batches import Limits

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _create_error(client: anthropic.Anthropic, batch_requests) -> dict:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=batch_requests)
    assert caught.value.status_code == 400 and caught.value.body["type"] == "error"
    return caught.value.body["error"]


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.update(custom_id="x" * 65),
     "requests.1.custom_id: String should have at most 64 characters"),
    (lambda r: r.update(custom_id="has space"),
     "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    (lambda r: r.update(custom_id="r0"), "requests.1.custom_id: custom_id 'r0' is used by "),
    (lambda r: r.pop("custom_id"), "requests.1.custom_id: Field required"),
    (lambda r: r["params"].pop("max_tokens"), "requests.1.params.max_tokens: Field required"),
    (lambda r: r["params"].update(max_tokens="many"),
     "requests.1.params.max_tokens: Input should be a valid integer"),
    (lambda r: r["params"].pop("messages"), "requests.1.params.messages: Field required"),
    (lambda r: r["params"].pop("model"), "requests.1.params.model: Field required"),
    (lambda r: r["params"].update(stream=True), "requests.1.params.stream: streaming is not"),
    (lambda r: r.update(metadata={}), "requests.1.metadata: Extra inputs are not permitted"),
], ids=["custom_id too long", "custom_id pattern", "duplicate custom_id", "no custom_id",
        "no max_tokens", "max_tokens not an integer", "no messages", "no model", "stream",
        "unknown key"])
def test_a_malformed_request_refuses_the_whole_batch_naming_the_field(claude, emulator,
                                                                     mutate, message):
    batch_requests = requests(3)
    mutate(batch_requests[1])
    assert _create_error(claude, batch_requests)["message"].startswith(message)
    assert list(claude.messages.batches.list()) == []  # nothing was created


def test_an_empty_request_list_is_refused(local):
    assert _create_error(local, [])["message"] == (
        "requests: List should have at least 1 item after validation, not 0")


def test_more_requests_than_the_limit_are_refused(local, emulator):
    emulator.anthropic.batches.limits = Limits(max_requests=5)
    assert _create_error(local, requests(6))["message"] == (
        "requests: List should have at most 5 items after validation, not 6")
    assert local.messages.batches.create(requests=requests(5)).request_counts.processing == 5


def test_a_body_over_the_byte_limit_is_a_413(claude, emulator):
    emulator.anthropic.batches.limits = Limits(max_batch_bytes=2_000)
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.batches.create(requests=requests(30))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"


@pytest.mark.parametrize("params,kind,message", [
    ({"messages": []}, "invalid_request_error", "messages: at least one message is required"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "invalid_request_error",
     "messages.0.role: Input should be 'user' or 'assistant'"),
    ({"messages": [{"role": "user", "content": ""}]}, "invalid_request_error",
     "messages.0: all messages must have non-empty content"),
    ({"temperature": 1.5}, "invalid_request_error", "temperature: Input should be between"),
    ({"tools": [{"name": "t", "input_schema": {"type": "object"}}] * 2},
     "invalid_request_error", "tools: Tool names must be unique."),
    ({"tool_choice": {"type": "tool", "name": "nope"}}, "invalid_request_error",
     "tool_choice: tool_choice of type 'tool' requires at least one tool"),
    ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "invalid_request_error",
     "thinking.budget_tokens: Input should be greater than or equal to 1024"),
    ({"max_tokens": 1500, "thinking": {"type": "enabled", "budget_tokens": 2000}},
     "invalid_request_error", "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({"top_p": 0.5, "frobnicate": True}, "invalid_request_error",
     "frobnicate: Extra inputs are not permitted"),
    ({"model": "claude-sonnet-4-5-20990101x"}, "not_found_error",
     "model: claude-sonnet-4-5-20990101x"),
], ids=["no messages", "bad role", "empty content", "temperature", "duplicate tools",
        "tool_choice without tools", "small thinking budget", "budget over max_tokens",
        "unknown parameter", "unknown model"])
def test_what_the_service_checks_errors_that_request_and_is_a_4xx_when_sync(
        local, params, kind, message):
    body = {**request("x", "hello")["params"], **params}
    _, found = run(local, [*requests(1), {"custom_id": "x", "params": body}])
    assert found["r0"].type == "succeeded"
    error = found["x"].error.error
    assert (error.type, error.message[:len(message)]) == (kind, message)
    core = {name: body.pop(name) for name in ("model", "max_tokens", "messages")}
    with pytest.raises(anthropic.APIStatusError) as caught:  # the rest as raw JSON: this
        local.messages.create(**core, extra_body=body)  # SDK no longer types temperature
    assert caught.value.status_code == (404 if kind == "not_found_error" else 400)
    assert caught.value.body["error"] == {"type": kind, "message": error.message}


@pytest.mark.parametrize("headers,status,kind", [
    ({"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
    ({"x-api-key": "k"}, 400, "invalid_request_error"),
    ({"x-api-key": "k", "anthropic-version": "june"}, 400, "invalid_request_error"),
    ({"Authorization": "Bearer k", "anthropic-version": "2023-06-01"}, 200, None),
    (HEADERS, 200, None),
], ids=["no key", "no version", "bad version", "bearer", "x-api-key"])
def test_calls_need_an_api_key_and_an_anthropic_version(emulator, headers, status, kind):
    with httpx2.Client(transport=httpx2.WSGITransport(app=emulator)) as raw:
        answer = raw.get("http://emulator.invalid/v1/messages/batches", headers=headers)
    assert answer.status_code == status
    assert answer.headers["request-id"].startswith("req_011C")
    if kind:
        assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == kind


def test_the_sdk_without_a_key_is_refused_with_its_authentication_error(emulator,
                                                                        monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    client = anthropic.Anthropic(base_url="http://emulator.invalid",
                                 http_client=httpx2.Client(
                                     transport=httpx2.WSGITransport(app=emulator)),
                                 default_headers={"Authorization": anthropic.omit})
    with pytest.raises(anthropic.AuthenticationError, match="x-api-key header is required"):
        client.messages.batches.list()


def test_unknown_ids_and_routes_are_404s_in_anthropics_shape(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.batches.retrieve("msgbatch_01NoSuchBatchAnywhere00")
    assert caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.get("/v1/messages/nowhere", cast_to=object)


def test_a_body_that_is_not_json_is_a_400(emulator):
    with httpx2.Client(transport=httpx2.WSGITransport(app=emulator)) as raw:
        answer = raw.post("http://emulator.invalid/v1/messages/batches", headers=HEADERS,
                          content=b"{not json")
    assert answer.status_code == 400
    assert "not valid JSON" in json.loads(answer.text)["error"]["message"]
