"""Faults in the Anthropic dialect: HTTP 429/500/529 with retry-after, errored results,
broken answers, refusals, determinism by seed, execution counts, crashes; and the same
faults given to a served emulator on its command line."""

from __future__ import annotations

import json
from collections.abc import Callable

import anthropic
import httpx2
import pytest
from emulator_fixtures import EmulatorProcess, emulator, new_emulator  # noqa: F401
from test_emulator_anthropic_fixtures import (  # noqa: F401  (fixtures)
    claude,
    inprocess_client,
    local,
    request,
    requests,
    run,
    sdk_client,
    served_root,
    text_of,
)

from runner.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorCrashed,
    Faults,
    HttpFault,
    start_in_thread,
)

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["tags"],
          "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}


@pytest.mark.parametrize("status,kind", [(429, "rate_limit_error"), (500, "api_error"),
                                         (529, "overloaded_error")])
def test_http_faults_are_retried_by_the_sdk_and_create_once(claude, emulator, status, kind):
    emulator.faults = Faults(http=(HttpFault("POST /v1/messages/batches", status, times=2),))
    batch = claude.messages.batches.create(requests=requests(1))  # two retries absorb them
    created = [e for e in emulator.anthropic.log.iter_events("batch_created")]
    assert [e["batch_id"] for e in created] == [batch.id]
    emulator.faults = Faults(http=(HttpFault("GET /v1/messages/batches/*", status, times=1,
                                             retry_after_ms=1500),))
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.with_options(max_retries=0).messages.batches.retrieve(batch.id)
    assert caught.value.status_code == status and caught.value.body["error"]["type"] == kind
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert claude.messages.batches.retrieve(batch.id).id == batch.id  # the fault is used up


def test_a_fault_after_the_work_makes_a_retried_create_a_second_batch(local, emulator):
    emulator.faults = Faults(http=(HttpFault("POST /v1/messages/batches", 500, after=True),))
    local.messages.batches.create(requests=requests(2))
    assert len(list(local.messages.batches.list())) == 2  # the lost answer was retried


def test_failing_requests_are_errored_api_or_overloaded_and_not_billed(local, emulator):
    emulator.faults = Faults(request_failure_rate=1.0)
    batch, found = run(local, requests(12))
    assert batch.request_counts.errored == 12
    kinds = {r.error.error.type for r in found.values()}
    assert kinds == {"api_error", "overloaded_error"}
    assert emulator.anthropic.executions(billed=True) == {}
    assert emulator.anthropic.executions() == {f"r{i}": 1 for i in range(12)}


def test_the_invalid_request_rate_errors_requests_that_are_not_retryable(local, emulator):
    emulator.faults = Faults(invalid_request_rate=1.0)
    _, found = run(local, requests(3))
    assert {r.error.error.type for r in found.values()} == {"invalid_request_error"}


@pytest.mark.parametrize("fault,stop_reason", [("invalid_json_rate", "end_turn"),
                                                ("truncation_rate", "max_tokens")])
def test_broken_json_answers_do_not_parse_and_say_how_they_ended(local, emulator, fault,
                                                                 stop_reason):
    emulator.faults = Faults(**{fault: 1.0})
    _, found = run(local, requests(3, output_config={
        "format": {"type": "json_schema", "schema": SCHEMA}}))
    for result in found.values():
        assert result.message.stop_reason == stop_reason
        with pytest.raises(json.JSONDecodeError):
            json.loads(text_of(result.message))


def test_a_broken_tool_call_misses_a_required_input(local, emulator):
    emulator.faults = Faults(invalid_json_rate=1.0)
    tools = [{"name": "save", "input_schema": SCHEMA}]
    message = local.messages.create(**request("x", "Berlin concert", tools=tools,
                                              tool_choice={"type": "any"})["params"])
    assert message.stop_reason == "tool_use" and "tags" not in message.content[0].input


def test_refusals_stop_with_reason_refusal(local, emulator):
    emulator.faults = Faults(refusal_rate=1.0)
    _, found = run(local, requests(2))
    for result in found.values():
        assert result.type == "succeeded"  # a refusal is an answer, and it is billed
        assert result.message.stop_reason == "refusal"
        assert result.message.stop_details.type == "refusal"


def _errored(make: Callable[..., Emulator], seed: int, batches: int = 1) -> list[set[str]]:
    emu = make(config=EmulatorConfig.instant(), faults=Faults(seed=seed,
                                                              request_failure_rate=0.5))
    client = inprocess_client(emu)
    return [{cid for cid, r in run(client, requests(30))[1].items() if r.type == "errored"}
            for _ in range(batches)]


def test_faults_are_the_same_for_a_seed_and_drawn_afresh_in_each_batch(new_emulator):
    first, second = _errored(new_emulator, seed=1, batches=2)
    assert _errored(new_emulator, seed=1, batches=2) == [first, second]
    assert _errored(new_emulator, seed=2) != [first]
    assert 0 < len(first) < 30 and first != second


def test_a_sync_call_that_fails_is_retried_by_the_sdk_with_a_fresh_draw(local, emulator):
    emulator.faults = Faults(seed=4, request_failure_rate=0.5)
    params = request("x", "Berlin concert")["params"]
    patient = local.with_options(max_retries=6)
    answers = [patient.messages.create(**params) for _ in range(10)]  # retries absorb them
    assert len({text_of(a) for a in answers}) == 1
    (key,) = emulator.anthropic.executions()
    executed, billed = emulator.anthropic.executions()[key], emulator.anthropic.executions(
        billed=True)[key]
    assert billed == 10 and executed > billed  # some calls failed and were sent again


def test_executions_are_counted_over_http_by_the_admin_route(emulator):
    emulator.faults = Faults(request_failure_rate=0.3, seed=9)
    with start_in_thread(emulator) as server:
        client = sdk_client(served_root(server.url))
        run(client, requests(10))
        run(client, requests(4))
        with httpx2.Client() as raw:
            counts = raw.get(served_root(server.url) + "/_emulator/anthropic/executions").json()
            log = raw.get(served_root(server.url) + "/_emulator/anthropic/log").json()
    assert counts["executed"] == {**{f"r{i}": 1 for i in range(10)},
                                  **{f"r{i}": 2 for i in range(4)}}
    assert sum(counts["billed"].values()) < 14
    assert [e["event"] for e in log["data"]].count("batch_created") == 2


def test_a_crash_loses_the_answer_but_not_the_batch(tmp_path, new_emulator):
    emu = new_emulator(state_dir=tmp_path, config=EmulatorConfig.instant(),
                       faults=Faults(crash_after_calls=0))
    client = inprocess_client(emu, max_retries=0)
    with pytest.raises(anthropic.APIConnectionError) as caught:  # no answer came back
        client.messages.batches.create(requests=requests(3))
    assert isinstance(caught.value.__cause__, EmulatorCrashed)
    assert emu.restarted
    (batch,) = client.messages.batches.list()  # created before the crash, kept
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.request_counts.succeeded == 3
    assert emu.anthropic.executions() == {"r0": 1, "r1": 1, "r2": 1}


def test_command_line_faults_reach_an_anthropic_client(tmp_path):
    args = ("--port", "0", "--speed", "instant", "--seed", "3", "--state-dir", str(tmp_path),
            "--http-fault", "POST /v1/messages/batches=529x1,retry-after-ms=20",
            "--request-failure-rate", "0.2", "--invalid-request-rate", "0.2",
            "--refusal-rate", "0.2", "--expire-after-requests", "20")
    with EmulatorProcess(*args) as server:
        client = sdk_client(served_root(server.url))
        batch, found = run(client, requests(25))
        with httpx2.Client() as raw:
            left = raw.get(server.url.removesuffix("/v1") + "/_emulator/faults").json()["left"]
    assert left["http_left"] == [0]  # the 529 was met, and the SDK's retry went through
    assert batch.request_counts.expired == 5
    kinds = {r.error.error.type for r in found.values() if r.type == "errored"}
    assert "invalid_request_error" in kinds and kinds & {"api_error", "overloaded_error"}
    assert any(r.type == "succeeded" and r.message.stop_reason == "refusal"
               for r in found.values())
