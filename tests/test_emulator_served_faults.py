"""Faults given on the command line reach an SDK client of the served emulator."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from emulator_fixtures import EmulatorProcess, chat_requests, run_batch, sdk_client


def test_command_line_faults_reach_a_client_over_http(tmp_path):
    args = ("--port", "0", "--speed", "instant", "--seed", "5", "--state-dir", str(tmp_path),
            "--http-fault", "POST /v1/batches=429x1,retry-after-ms=20",
            "--http-fault", "GET /v1/files=503x1",
            "--token-limit-batches", "1", "--expire-after-requests", "30",
            "--request-failure-rate", "0.2", "--status-zero-rate", "0.2",
            "--invalid-json-rate", "0.3", "--truncation-rate", "0.3",
            "--enqueued-token-limit", "10000000", "--crash-after-calls", "1000")
    with EmulatorProcess(*args) as server:
        with httpx2.Client() as raw:
            faults = raw.get(server.url.removesuffix("/v1") + "/_emulator/faults").json()
        assert faults["faults"]["seed"] == 5
        assert faults["faults"]["enqueued_token_limit"] == 10_000_000
        assert faults["left"]["calls_before_crash"] == 1000
        client = sdk_client(server.url)
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).files.list()
        requests = chat_requests(40, response_format={"type": "json_object"})
        limited, _, _ = run_batch(client, requests)  # its create met the 429, then a retry
        assert limited.errors.data[0].code == "token_limit_exceeded"
        batch, output, errors = run_batch(client, requests)
        with httpx2.Client() as raw:
            left = raw.get(server.url.removesuffix("/v1") + "/_emulator/faults").json()["left"]
        assert left["http_left"] == [0, 0] and left["token_limit_left"] == 0
    assert batch.status == "expired" and len(output) + len(errors) == 40
    statuses = {line["response"]["status_code"] for line in errors if line["response"]}
    assert 0 in statuses and statuses & {500, 503}
    assert sum(1 for line in errors if line["error"] and
               line["error"]["code"] == "batch_expired") == 10
    reasons = {line["response"]["body"]["choices"][0]["finish_reason"] for line in output}
    assert reasons == {"stop", "length"}
    answers = [line["response"]["body"]["choices"][0]["message"]["content"] for line in output
               if line["response"]["body"]["choices"][0]["finish_reason"] == "stop"]
    assert any(not _parses(answer) for answer in answers)
    assert any(_parses(answer) for answer in answers)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True

