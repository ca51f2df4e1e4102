"""The synchronous endpoints answer like a batch line for the same body, honour the same
faults, and count as executions."""

from __future__ import annotations

import json

import openai
import pytest
from emulator_fixtures import chat_request, client, emulator, inprocess_client, run_batch  # noqa: F401  (fixtures)

from runner.emulator import Faults, HttpFault
from runner.keys import request_key

VIDEO = "Video 7: a live concert in Berlin, music, crowd, lights"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You tag videos."},
                                             {"role": "user", "content": VIDEO}]}
RESPONSES = {"model": "gpt-4.1-mini", "input": VIDEO, "instructions": "Tag the video."}
EMBEDDINGS = {"model": "text-embedding-3-small", "input": VIDEO, "encoding_format": "float"}


def _batched(client, endpoint: str, body: dict) -> dict:
    """The body of the batch answer to the same request, keyed like batchrun keys it."""
    line = {"custom_id": request_key(endpoint, body), "method": "POST", "url": endpoint,
            "body": body}
    _, output, errors = run_batch(client, [line], endpoint=endpoint)
    assert errors == []
    return output[0]["response"]["body"]


def test_a_chat_completion_answered_at_once_is_the_batch_answer(client, emulator):
    batch_body = _batched(client, "/v1/chat/completions", CHAT)
    answer = client.chat.completions.create(**CHAT)
    assert answer.choices[0].message.content == \
        batch_body["choices"][0]["message"]["content"]
    assert answer.usage.model_dump(exclude_none=True) == batch_body["usage"]
    assert answer.model == batch_body["model"] == "gpt-4o-mini-2024-07-18"
    assert emulator.executions(billed=True) == {request_key("/v1/chat/completions", CHAT): 2}


def test_a_response_answered_at_once_is_the_batch_answer(client, emulator):
    batch_body = _batched(client, "/v1/responses", RESPONSES)
    answer = client.responses.create(**RESPONSES)
    batch_text = batch_body["output"][-1]["content"][0]["text"]
    assert answer.output_text == batch_text and answer.status == "completed"
    usage = answer.usage.model_dump(exclude_none=True)
    assert usage.pop("input_tokens_details") == {**batch_body["usage"].pop(
        "input_tokens_details"), "cache_write_tokens": 0}
    assert usage == batch_body["usage"]


def test_an_embedding_answered_at_once_is_the_batch_answer(client, emulator):
    batch_body = _batched(client, "/v1/embeddings", EMBEDDINGS)
    answer = client.embeddings.create(**EMBEDDINGS)
    assert answer.data[0].embedding == batch_body["data"][0]["embedding"]
    assert answer.usage.prompt_tokens == batch_body["usage"]["prompt_tokens"] > 0


def test_the_sdk_decodes_default_base64_embeddings(emulator):
    loose = openai.OpenAI(api_key="test", base_url="http://emulator.invalid/v1",
                          http_client=inprocess_client(emulator)._client)
    vector = loose.embeddings.create(model="text-embedding-3-large", input=VIDEO,
                                     dimensions=8).data[0].embedding
    assert len(vector) == 8 and abs(sum(v * v for v in vector) - 1) < 1e-5


def test_an_http_fault_on_a_sync_route_is_retried_by_the_sdk(client, emulator):
    emulator.faults = Faults(http=(HttpFault("POST /v1/chat/completions", 429, times=2),))
    assert client.chat.completions.create(**CHAT).choices[0].finish_reason == "stop"
    emulator.faults = Faults(http=(HttpFault("POST /v1/responses", 503, retry_after_ms=70),))
    with pytest.raises(openai.InternalServerError) as caught:
        client.with_options(max_retries=0).responses.create(**RESPONSES)
    assert caught.value.response.headers["retry-after-ms"] == "70"
    assert sum(emulator.executions().values()) == 1  # refused calls ran nothing


def test_a_failing_request_is_a_5xx_logged_as_executed_and_not_billed(client, emulator):
    emulator.faults = Faults(request_failure_rate=1.0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.with_options(max_retries=0).chat.completions.create(**CHAT)
    assert caught.value.status_code in (500, 503)
    assert caught.value.response.headers["retry-after-ms"] == "10"
    key = request_key("/v1/chat/completions", CHAT)
    assert emulator.executions() == {key: 1} and emulator.executions(billed=True) == {}


def test_each_call_draws_again_so_a_retry_can_succeed(client, emulator):
    emulator.faults = Faults(request_failure_rate=0.5, seed=4)
    outcomes = []
    for _ in range(12):
        try:
            client.with_options(max_retries=0).chat.completions.create(**CHAT)
            outcomes.append("ok")
        except openai.InternalServerError:
            outcomes.append("failed")
    assert set(outcomes) == {"ok", "failed"}


@pytest.mark.parametrize("fault,finish_reason", [("invalid_json_rate", "stop"),
                                                  ("truncation_rate", "length")])
def test_invalid_and_truncated_json_answers_come_back_at_once_too(client, emulator, fault,
                                                                  finish_reason):
    emulator.faults = Faults(**{fault: 1.0})
    answer = client.chat.completions.create(**CHAT, response_format={"type": "json_object"})
    assert answer.choices[0].finish_reason == finish_reason
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.choices[0].message.content)


def test_what_the_real_endpoint_refuses_is_refused_and_runs_nothing(client, emulator):
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(**{**CHAT, "model": "gpt-4o-mni"})
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as streaming:
        client.chat.completions.create(**CHAT, stream=True)
    assert streaming.value.param == "stream"
    assert emulator.executions() == {}


def test_a_refusal_of_the_model_is_the_batch_refusal(client, emulator):
    body = {**CHAT, "model": "gpt-5-mini", "max_tokens": 100}
    line = chat_request(request_key("/v1/chat/completions", body), VIDEO,
                        model="gpt-5-mini", max_tokens=100)
    _, _, errors = run_batch(client, [line])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**body)
    assert refused.value.body == errors[0]["response"]["body"]["error"]
    assert emulator.executions(billed=False) == {line["custom_id"]: 2}
