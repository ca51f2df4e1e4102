"""The emulator's Batches API: create, retrieve, lifecycle, cancel, expiry and lists."""

from __future__ import annotations

import openai
import pytest
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
    read_lines,
    run_batch,
    submit,
    upload,
    wait,
)

from runner.emulator import EmulatorConfig

STAMPS = ("created_at", "in_progress_at", "finalizing_at", "completed_at")


def test_a_batch_keeps_its_metadata_and_starts_validating(client):
    batch = submit(client, chat_requests(2), metadata={"batchrun_job": "tags",
                                                       "batchrun_shard": "ab" * 32})
    assert batch.status == "validating" and batch.object == "batch"
    assert batch.id.startswith("batch_") and len(batch.id) == len("batch_") + 32
    assert int(batch.id[6:14], 16) == batch.created_at  # the id starts with its time
    assert batch.metadata == {"batchrun_job": "tags", "batchrun_shard": "ab" * 32}
    assert batch.expires_at == batch.created_at + 86_400
    assert client.batches.retrieve(batch.id).metadata == batch.metadata


def test_a_batch_runs_to_completed_with_its_output_in_a_batch_output_file(client):
    batch, output, errors = run_batch(client, chat_requests(5))
    assert batch.status == "completed" and batch.error_file_id is None and errors == []
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
    assert batch.model == "gpt-4o-mini-2024-07-18"
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"
    assert client.files.retrieve(batch.output_file_id).filename == f"{batch.id}_output.jsonl"
    assert sorted(line["custom_id"] for line in output) == [f"r{i}" for i in range(5)]
    usage = batch.usage
    assert usage.input_tokens == sum(line["response"]["body"]["usage"]["prompt_tokens"]
                                     for line in output)
    assert usage.output_tokens == sum(line["response"]["body"]["usage"]["completion_tokens"]
                                      for line in output)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_each_state_is_reached_on_the_clock_with_its_timestamp_and_counts(paced, clock,
                                                                          paced_client):
    client = paced_client
    batch = submit(client, chat_requests(4))
    start = batch.created_at
    clock.advance(9)
    assert client.batches.retrieve(batch.id).status == "validating"
    clock.advance(1)
    running = client.batches.retrieve(batch.id)
    assert (running.status, running.in_progress_at) == ("in_progress", start + 10)
    assert running.request_counts.model_dump() == {"total": 4, "completed": 0, "failed": 0}
    clock.advance(2.5)
    assert client.batches.retrieve(batch.id).request_counts.completed == 2
    clock.advance(1.5)
    finalizing = client.batches.retrieve(batch.id)
    assert (finalizing.status, finalizing.finalizing_at) == ("finalizing", start + 14)
    assert finalizing.output_file_id is None  # files appear when the batch completes
    clock.advance(10)
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.completed_at) == ("completed", start + 24)
    assert [getattr(done, s) for s in STAMPS] == [start, start + 10, start + 14, start + 24]
    assert done.failed_at is done.cancelled_at is done.expired_at is None


def test_output_lines_are_shuffled_yet_cover_every_custom_id(local):
    requests = chat_requests(40)
    _, output, _ = run_batch(local, requests)
    order = [line["custom_id"] for line in output]
    assert order != [r["custom_id"] for r in requests]
    assert sorted(order) == sorted(r["custom_id"] for r in requests)


def test_the_output_order_is_fixed_by_the_seed(new_emulator):
    orders = []
    for seed in (7, 7, 8):
        client = inprocess_client(new_emulator(config=EmulatorConfig.instant(seed=seed)))
        _, output, _ = run_batch(client, chat_requests(30))
        orders.append([line["custom_id"] for line in output])
    assert orders[0] == orders[1] != orders[2]


@pytest.mark.parametrize("metadata,param", [
    ({f"k{i}": "v" for i in range(17)}, "metadata"),
    ({"k" * 65: "v"}, "metadata"),
    ({"k": "v" * 513}, "metadata.k"),
    ({"k": ["a", "b"]}, "metadata.k"),
], ids=["17 pairs", "key of 65", "value of 513", "value not a string"])
def test_metadata_beyond_the_limits_is_a_400_naming_the_parameter(local, metadata, param):
    file_id = upload(local, chat_requests(1))
    with pytest.raises(openai.BadRequestError) as caught:
        local.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                             completion_window="24h", metadata=metadata)
    assert caught.value.body["param"] == param


def test_metadata_at_the_limits_is_accepted(local):
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}
    assert submit(local, chat_requests(1), metadata=metadata).metadata == metadata


@pytest.mark.parametrize("field,value", [("completion_window", "1h"),
                                         ("endpoint", "/v1/images/generations")])
def test_an_unsupported_window_or_endpoint_is_a_400_invalid_value(client, field, value):
    params = {"input_file_id": upload(client, chat_requests(1)),
              "endpoint": "/v1/chat/completions", "completion_window": "24h", field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(**params)
    assert caught.value.status_code == 400
    assert (caught.value.body["code"], caught.value.body["param"]) == ("invalid_value", field)


def test_an_unknown_batch_id_is_404(client):
    for call in (client.batches.retrieve, client.batches.cancel):
        with pytest.raises(openai.NotFoundError):
            call("batch_0123456789abcdef0123456789abcdef")


def test_batches_are_listed_newest_first_and_paged_with_has_more(client):
    created = [submit(client, chat_requests(1), metadata={"n": str(i)}).id for i in range(5)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == created[::-1][:2] and first.has_more is True
    assert first.first_id == created[4] and first.last_id == created[3]
    last = client.batches.list(limit=2, after=created[1])
    assert [b.id for b in last.data] == [created[0]] and last.has_more is False
    assert [b.id for b in client.batches.list(limit=2)] == created[::-1]  # every page


@pytest.mark.parametrize("limit", [0, 101])
def test_a_list_limit_outside_1_to_100_is_a_400(client, limit):
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.list(limit=limit)
    assert caught.value.body["param"] == "limit"


def test_cancel_goes_through_cancelling_and_keeps_the_finished_lines(paced, clock,
                                                                     paced_client):
    client = paced_client
    batch = submit(client, chat_requests(10))
    clock.advance(13.5)  # validated at 10, three requests done at 13
    cancelling = client.batches.cancel(batch.id)
    assert (cancelling.status, cancelling.cancelling_at) == ("cancelling", batch.created_at + 13)
    clock.advance(5)
    assert client.batches.retrieve(batch.id).request_counts.completed == 3  # nothing runs
    clock.advance(5)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at == batch.created_at + 23
    finished = read_lines(client, cancelled.output_file_id)
    rest = read_lines(client, cancelled.error_file_id)
    assert len(finished) == 3 and len(rest) == 7
    assert {line["custom_id"] for line in finished + rest} == {f"r{i}" for i in range(10)}
    for line in rest:
        assert line["response"] is None and line["error"]["code"] == "batch_cancelled"
    assert client.batches.cancel(batch.id).status == "cancelled"  # cancelling again is fine


def test_cancel_while_validating_ends_with_no_files(paced, clock, paced_client):
    batch = submit(paced_client, chat_requests(3))
    paced_client.batches.cancel(batch.id)
    clock.advance(60)
    cancelled = paced_client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output_file_id is cancelled.error_file_id is None


def test_cancelling_a_finished_batch_is_a_400_never_a_retried_409(client):
    batch, _, _ = run_batch(client, chat_requests(1))
    with pytest.raises(openai.BadRequestError, match="Cannot cancel a batch with status "
                                                     "'completed'"):
        client.batches.cancel(batch.id)


def test_a_batch_expires_at_the_end_of_its_window_keeping_what_finished(clock, new_emulator):
    emu = new_emulator(config=EmulatorConfig(seconds_per_request=10,
                                             completion_window_seconds=55), clock=clock)
    client = inprocess_client(emu)
    batch = submit(client, chat_requests(8))
    clock.advance(1000)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at == batch.created_at + 55
    output = read_lines(client, expired.output_file_id)
    leftover = read_lines(client, expired.error_file_id)
    assert len(output) == 5 and len(leftover) == 3
    assert all(line["response"] is None and line["error"]["code"] == "batch_expired"
               for line in leftover)
    assert expired.request_counts.model_dump() == {"total": 8, "completed": 5, "failed": 0}


def test_a_batch_on_a_missing_input_file_fails_validation(client):
    batch = client.batches.create(input_file_id="file-doesnotexist0000000000",
                                  endpoint="/v1/chat/completions", completion_window="24h")
    failed = wait(client, batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors.data[0].code == "invalid_request"
    assert "Cannot find file file-doesnotexist" in failed.errors.data[0].message


def test_deleting_the_input_file_after_create_does_not_stop_the_batch(paced, clock,
                                                                      paced_client):
    batch = submit(paced_client, chat_requests(2))
    paced_client.files.delete(batch.input_file_id)
    clock.advance(100)
    assert paced_client.batches.retrieve(batch.id).request_counts.completed == 2
