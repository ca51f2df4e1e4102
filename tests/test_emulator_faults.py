"""Injected faults: HTTP errors, failing and odd requests, token limits, expiry, crashes."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import openai
import pytest
from click.testing import CliRunner
from emulator_fixtures import (  # noqa: F401  (fixtures)
    chat_requests,
    client,
    clock,
    emulator,
    inprocess_client,
    local,
    new_emulator,
    paced,
    paced_client,
    run_batch,
    sdk_client,
    submit,
    upload,
    wait,
)

from runner import tokens
from runner.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorCrashed,
    Faults,
    FileDamage,
    HttpFault,
    start_in_thread,
)
from runner.emulator.command import emulator_command
from runner.errors import BatchrunError


def _failing_ids(errors: list[dict]) -> set[str]:
    return {line["custom_id"] for line in errors}


def test_a_429_is_retried_by_the_sdk_after_retry_after_ms(client, emulator):
    emulator.faults = Faults(http=(HttpFault("POST /v1/batches", 429, times=2),))
    batch = submit(client, chat_requests(1))  # the SDK's two retries absorb the two 429s
    assert client.batches.retrieve(batch.id).id == batch.id
    created = [e for e in emulator.log.events if e["event"] == "batch_created"]
    assert [e["batch_id"] for e in created] == [batch.id]  # created once, not three times
    assert emulator.faults.http[0].times == 2 and emulator.service.counters.http_left == [0]


def test_a_fault_outlasting_the_retries_surfaces_with_its_retry_headers(client, emulator):
    emulator.faults = Faults(http=(HttpFault("POST /v1/files", 429, times=5,
                                             retry_after_ms=1500),))
    with pytest.raises(openai.RateLimitError) as caught:
        client.with_options(max_retries=0).files.create(file=("a.jsonl", b"{}\n"),
                                                        purpose="batch")
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert emulator.service.state.files == {}  # the refused upload left nothing


@pytest.mark.parametrize("status,error", [(500, openai.InternalServerError),
                                          (503, openai.InternalServerError)])
def test_5xx_faults_hit_only_the_chosen_route(client, emulator, status, error):
    batch = submit(client, chat_requests(1))
    emulator.faults = Faults(http=(HttpFault("GET /v1/batches/*", status, times=1),))
    client.batches.list()  # another route: unaffected
    with pytest.raises(error) as caught:
        client.with_options(max_retries=0).batches.retrieve(batch.id)
    assert caught.value.status_code == status
    assert client.batches.retrieve(batch.id).id == batch.id  # the fault was used up


def test_a_fault_after_the_work_means_a_retried_create_makes_a_second_batch(client, emulator):
    emulator.faults = Faults(http=(HttpFault("POST /v1/batches", 500, after=True),))
    file_id = upload(client, chat_requests(2))
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"batchrun_shard": "s1"})
    same = [b for b in client.batches.list() if b.metadata == {"batchrun_shard": "s1"}]
    assert len(same) == 2 and batch.id in {b.id for b in same}  # find it by its metadata


def test_failing_requests_write_5xx_lines_to_the_error_file_and_are_not_billed(local,
                                                                               emulator):
    emulator.faults = Faults(request_failure_rate=1.0)
    batch, output, errors = run_batch(local, chat_requests(8))
    assert batch.status == "completed" and output == [] and batch.output_file_id is None
    assert batch.request_counts.model_dump() == {"total": 8, "completed": 0, "failed": 8}
    for line in errors:
        assert line["response"]["status_code"] in (500, 503) and line["error"] is None
        assert line["response"]["body"]["error"]["type"] == "server_error"
    executed = [e for e in emulator.log.events if e["event"] == "request_executed"]
    assert {(e["outcome"], e["billed"]) for e in executed} == {("server_error", False)}


def test_status_zero_lines_reproduce_the_real_oddity(local, emulator):
    emulator.faults = Faults(status_zero_rate=1.0)
    _, _, errors = run_batch(local, chat_requests(2))
    assert [line["response"] for line in errors] == [{"status_code": 0, "request_id": "",
                                                "body": {}}] * 2


@pytest.mark.parametrize("fault,finish_reason", [("invalid_json_rate", "stop"),
                                                  ("truncation_rate", "length")])
def test_invalid_and_truncated_answers_do_not_parse_and_say_how_they_ended(local, emulator,
                                                                          fault, finish_reason):
    emulator.faults = Faults(**{fault: 1.0})
    _, output, _ = run_batch(local, chat_requests(3, response_format={"type": "json_object"}))
    for line in output:
        choice = line["response"]["body"]["choices"][0]
        assert choice["finish_reason"] == finish_reason
        with pytest.raises(json.JSONDecodeError):
            json.loads(choice["message"]["content"])


def test_fences_wrap_json_answers(local, emulator):
    emulator.faults = Faults(fence_rate=1.0)
    _, output, _ = run_batch(local, chat_requests(2, response_format={"type": "json_object"}))
    for line in output:
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        assert content.startswith("```json\n") and content.endswith("\n```")


def _failures(make: Callable[..., Emulator], seed: int, batches: int = 1) -> list[set[str]]:
    emu = make(config=EmulatorConfig.instant(), faults=Faults(seed=seed,
                                                              request_failure_rate=0.5))
    client = inprocess_client(emu)
    return [_failing_ids(run_batch(client, chat_requests(30))[2]) for _ in range(batches)]


def test_request_faults_are_the_same_for_the_same_seed_and_differ_between_batches(new_emulator):
    first, second = _failures(new_emulator, seed=1, batches=2)
    assert _failures(new_emulator, seed=1, batches=2) == [first, second]
    assert _failures(new_emulator, seed=2) != [first]
    assert 0 < len(first) < 30 and first != second  # a new batch draws again


def test_a_request_that_failed_can_succeed_when_sent_again_in_a_new_batch(local, emulator):
    emulator.faults = Faults(request_failure_rate=0.5)
    requests = chat_requests(20)
    failed = _failing_ids(run_batch(local, requests)[2])
    retry = [r for r in requests if r["custom_id"] in failed]
    _, output, _ = run_batch(local, retry)
    assert failed and output  # some of the failed ones now succeed


def test_the_next_n_batches_fail_with_token_limit_exceeded(local, emulator):
    emulator.faults = Faults(token_limit_batches=2)
    statuses = [run_batch(local, chat_requests(2))[0] for _ in range(3)]
    assert [b.status for b in statuses] == ["failed", "failed", "completed"]
    error = statuses[0].errors.data[0]
    assert error.code == "token_limit_exceeded"
    assert error.message.startswith("Enqueued token limit reached for gpt-4o-mini")


def test_the_enqueued_token_limit_counts_unfinished_batches_of_the_same_model(paced, clock,
                                                                             paced_client):
    client = paced_client
    per_batch = sum(tokens.prompt_tokens(r["url"], r["body"]).tokens for r in chat_requests(10))
    limit = per_batch * 3 // 2  # room for one batch, not two
    paced.faults = Faults(enqueued_token_limit=limit)
    first = submit(client, chat_requests(10))
    clock.advance(10)
    assert client.batches.retrieve(first.id).status == "in_progress"
    second = submit(client, chat_requests(10, prefix="s"))
    other = submit(client, chat_requests(10, prefix="o", model="gpt-4.1-mini"))
    clock.advance(10)
    failed = client.batches.retrieve(second.id)
    assert failed.status == "failed" and failed.errors.data[0].code == "token_limit_exceeded"
    assert f"Limit: {limit:,} enqueued tokens" in failed.errors.data[0].message
    assert client.batches.retrieve(other.id).status == "in_progress"  # its own model's queue
    clock.advance(100)
    assert client.batches.retrieve(first.id).status == "completed"
    again = submit(client, chat_requests(10, prefix="s"))
    clock.advance(100)
    assert client.batches.retrieve(again.id).status == "completed"


def test_expiry_after_n_requests_keeps_them_and_expires_the_rest(local, emulator):
    emulator.faults = Faults(expire_after_requests=3)
    batch, output, errors = run_batch(local, chat_requests(10))
    assert batch.status == "expired" and batch.expired_at is not None
    assert len(output) == 3 and len(errors) == 7
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert all(line["response"] is None for line in errors)


@pytest.mark.parametrize("transport", ["in-process", "http"])
def test_a_lagging_list_hides_batches_younger_than_the_lag(paced, clock, transport):
    paced.faults = Faults(list_lag_seconds=30)
    with start_in_thread(paced) as server:
        client = inprocess_client(paced) if transport == "in-process" else \
            sdk_client(server.url)
        old = submit(client, chat_requests(1))
        clock.advance(20)
        young = submit(client, chat_requests(1, prefix="y"))
        assert [b.id for b in client.batches.list()] == []
        clock.advance(10)
        assert [b.id for b in client.batches.list()] == [old.id]
        assert client.batches.retrieve(young.id).id == young.id  # retrieve does not lag
        clock.advance(20)
        assert [b.id for b in client.batches.list()] == [young.id, old.id]


def test_faults_are_set_over_http_and_an_unknown_fault_is_refused(emulator):
    with start_in_thread(emulator) as server:
        control = server.url.removesuffix("/v1") + "/_emulator/faults"
        with httpx2.Client() as raw:
            answer = raw.post(control, json={"request_failure_rate": 1.0,
                                             "http": ["GET /v1/files=503x1"]})
            assert answer.status_code == 200
            assert answer.json()["left"]["http_left"] == [1]
            refused = raw.post(control, json={"request_failure_rat": 1.0})
            assert refused.status_code == 400 and "request_failure_rat" in refused.text
        client = sdk_client(server.url, max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.files.list()
        _, output, errors = run_batch(client, chat_requests(2))
        assert output == [] and len(errors) == 2


@pytest.mark.parametrize("text,expected", [
    ("POST /v1/batches=429", HttpFault("POST /v1/batches", 429)),
    ("GET /v1/batches/*=503x3,retry-after-ms=250", HttpFault("GET /v1/batches/*", 503, 3, 250)),
    ("POST /v1/files = 500 x 2, after, no-retry-after",
     HttpFault("POST /v1/files", 500, 2, None, after=True)),
])
def test_http_faults_parse_from_the_command_line_syntax(text, expected):
    assert HttpFault.parse(text) == expected


@pytest.mark.parametrize("text", ["POST /v1/batches", "POST /v1/batches=404",
                                  "POST /v1/batches=429,later"])
def test_a_malformed_http_fault_is_an_error_naming_it(text):
    with pytest.raises(ValueError):
        HttpFault.parse(text)
    result = CliRunner().invoke(emulator_command, ["--http-fault", text])
    assert isinstance(result.exception, BatchrunError)
    assert "bad fault" in str(result.exception)


def test_faults_round_trip_through_json():
    faults = Faults(seed=3, http=(HttpFault("* *", 503),), status_zero_rate=0.25,
                    enqueued_token_limit=90_000, crash_after_calls=4, list_lag_seconds=2.5,
                    damaged_files=(FileDamage("error", "truncated", 2, (1, 3), 7),))
    assert Faults.from_json(json.loads(json.dumps(faults.to_json()))) == faults


def test_a_crash_in_process_loses_the_answer_and_restarts_from_the_state_dir(tmp_path,
                                                                             new_emulator):
    emu = new_emulator(state_dir=tmp_path, config=EmulatorConfig.instant(),
                   faults=Faults(crash_after_calls=1))
    client = inprocess_client(emu, max_retries=0)
    file_id = upload(client, chat_requests(2))
    with pytest.raises(EmulatorCrashed):  # the second call does its work, then crashes
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                              completion_window="24h")
    assert emu.restarted
    (batch,) = client.batches.list()  # created before the crash, kept by the restart
    assert wait(client, batch.id).status == "completed"


def test_a_faults_file_with_an_unknown_key_is_refused_before_serving(tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"request_failure_rate": 0.1, "expire_after": 3}))
    result = CliRunner().invoke(emulator_command, ["--faults", str(faults)])
    assert isinstance(result.exception, BatchrunError)
    assert "expire_after" in str(result.exception)


def test_restart_on_crash_without_a_state_dir_is_refused():
    result = CliRunner().invoke(emulator_command, ["--restart-on-crash"])
    assert isinstance(result.exception, BatchrunError)
    assert "--state-dir" in str(result.exception)
