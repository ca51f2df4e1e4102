"""The Message Batches lifecycle through the official `anthropic` SDK: create, poll, results
of every type, cancel, expiry, list pagination, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anthropic
import httpx2
import pytest
from emulator_fixtures import clock, emulator, new_emulator, paced  # noqa: F401  (fixtures)
from test_emulator_anthropic_fixtures import (  # noqa: F401  (fixtures)
    MODEL,
    ROOT,
    claude,
    inprocess_client,
    local,
    request,
    requests,
    results,
    run,
    sdk_client,
    wait,
)

from runner.emulator import EmulatorConfig, Faults


def _at(clock_value: float) -> datetime:
    return datetime.fromtimestamp(clock_value, tz=UTC)


def test_a_batch_runs_to_ended_and_every_request_succeeds(claude):
    batch = claude.messages.batches.create(requests=requests(5))
    assert batch.type == "message_batch" and batch.id.startswith("msgbatch_01")
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 5
    ended = wait(claude, batch.id)
    assert ended.request_counts.model_dump() == {"processing": 0, "succeeded": 5,
                                                 "errored": 0, "canceled": 0, "expired": 0}
    assert ended.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    assert ended.ended_at is not None and ended.archived_at is None
    found = results(claude, batch.id)
    assert sorted(found) == [f"r{i}" for i in range(5)]
    for result in found.values():
        assert result.type == "succeeded"
        assert result.message.role == "assistant" and result.message.stop_reason == "end_turn"
        assert result.message.usage.service_tier == "batch"
        assert result.message.model == "claude-haiku-4-5-20251001"  # the alias, dated


def test_the_timestamps_follow_the_clock_and_counts_stay_processing_until_the_end(clock, paced):
    client = inprocess_client(paced)
    start = clock.now
    batch = client.messages.batches.create(requests=requests(4))
    assert batch.created_at == _at(start)
    assert batch.expires_at == _at(start) + timedelta(hours=24)
    clock.advance(12)  # 10 s before the first request, 1 s each: two have run
    running = client.messages.batches.retrieve(batch.id)
    assert running.processing_status == "in_progress"
    assert running.request_counts.processing == 4 and running.request_counts.succeeded == 0
    clock.advance(100)
    ended = client.messages.batches.retrieve(batch.id)
    # 10 s waiting, 4 × 1 s of requests, 10 s finishing: dated when due, not when read.
    assert ended.ended_at == _at(start + 24)
    assert ended.request_counts.succeeded == 4


def test_results_come_in_an_order_fixed_by_the_seed_not_the_request_order(new_emulator):
    orders = []
    for seed in (3, 3, 4):
        client = inprocess_client(new_emulator(config=EmulatorConfig.instant(seed=seed)))
        batch = client.messages.batches.create(requests=requests(30))
        wait(client, batch.id)
        orders.append([line.custom_id for line in client.messages.batches.results(batch.id)])
    assert orders[0] == orders[1] != orders[2]
    assert orders[0] != [f"r{i}" for i in range(30)]
    assert sorted(orders[0]) == sorted(f"r{i}" for i in range(30))


def test_an_invalid_request_is_errored_while_the_others_succeed(local):
    batch_requests = [*requests(2), request("bad-model", "hello", model="claude-sonet-4-5"),
                      request("too-long", "hello", max_tokens=200_000)]
    batch, found = run(local, batch_requests)
    assert batch.request_counts.succeeded == 2 and batch.request_counts.errored == 2
    missing = found["bad-model"]
    assert missing.type == "errored" and missing.error.type == "error"
    assert missing.error.error.type == "not_found_error"
    assert missing.error.error.message == "model: claude-sonet-4-5"
    assert found["too-long"].error.error.type == "invalid_request_error"
    assert found["too-long"].error.error.message.startswith("max_tokens: 200000 > 64000")


def test_cancel_ends_the_batch_with_finished_results_kept_and_the_rest_canceled(clock, paced):
    client = inprocess_client(paced)
    batch = client.messages.batches.create(requests=requests(10))
    clock.advance(13)  # three requests have run
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at == _at(clock.now)
    clock.advance(5)
    assert client.messages.batches.retrieve(batch.id).processing_status == "canceling"
    clock.advance(5)  # 10 s after the cancel
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at == _at(clock.now)
    assert ended.request_counts.succeeded == 3 and ended.request_counts.canceled == 7
    kinds = [r.type for r in results(client, batch.id).values()]
    assert sorted(kinds) == ["canceled"] * 7 + ["succeeded"] * 3


def test_an_ended_batch_cannot_be_canceled(claude):
    batch = wait(claude, claude.messages.batches.create(requests=requests(1)).id)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.batches.cancel(batch.id)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "already ended" in caught.value.body["error"]["message"]


def test_the_completion_window_expires_what_has_not_run(clock, new_emulator):
    config = EmulatorConfig(seconds_per_request=1, completion_window_seconds=6)
    client = inprocess_client(new_emulator(config=config, clock=clock))
    batch = client.messages.batches.create(requests=requests(10))
    clock.advance(60)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.ended_at == ended.expires_at == _at(clock.now - 54)
    assert (ended.request_counts.succeeded, ended.request_counts.expired) == (6, 4)
    expired = [cid for cid, r in results(client, batch.id).items() if r.type == "expired"]
    assert len(expired) == 4


def test_the_expiry_fault_expires_a_batch_after_n_requests(local, emulator):
    emulator.faults = Faults(expire_after_requests=3)
    batch, found = run(local, requests(8))
    assert batch.request_counts.succeeded == 3 and batch.request_counts.expired == 5
    assert sum(r.type == "expired" for r in found.values()) == 5


def test_results_before_the_end_are_refused(clock, paced):
    client = inprocess_client(paced)
    batch = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)  # the SDK itself checks results_url
    raw = httpx2.Client(transport=httpx2.WSGITransport(app=paced))
    answer = raw.get(f"http://emulator.invalid/v1/messages/batches/{batch.id}/results",
                     headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert answer.status_code == 400 and "not ended" in answer.json()["error"]["message"]


def test_listing_pages_newest_first_with_cursors_both_ways(claude):
    made = [claude.messages.batches.create(requests=requests(1)).id for _ in range(5)]
    newest_first = made[::-1]
    first = claude.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == newest_first[:2]
    assert (first.has_more, first.first_id, first.last_id) == (True, made[4], made[3])
    second = claude.messages.batches.list(limit=2, after_id=first.last_id)
    assert [b.id for b in second.data] == newest_first[2:4] and second.has_more
    back = claude.messages.batches.list(limit=2, before_id=second.first_id)
    assert [b.id for b in back.data] == newest_first[:2] and back.has_more is False
    everything = [b.id for b in claude.messages.batches.list(limit=2)]  # auto-pagination
    assert everything == newest_first


@pytest.mark.parametrize("limit", [0, 1001, "many"])
def test_a_list_limit_outside_1_to_1000_is_refused(local, limit):
    with pytest.raises(anthropic.BadRequestError) as caught:
        local.messages.batches.list(limit=limit)
    assert caught.value.body["error"]["message"].startswith("limit:")


def test_only_an_ended_batch_can_be_deleted_and_then_it_is_gone(clock, paced):
    client = inprocess_client(paced)
    batch = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError, match="cancel it first"):
        client.messages.batches.delete(batch.id)
    clock.advance(100)
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)
    assert [b.id for b in client.messages.batches.list()] == []
    assert paced.anthropic.executions() == {"r0": 1, "r1": 1}  # what ran still counts


def test_results_are_archived_29_days_after_creation(clock, paced):
    client = inprocess_client(paced)
    batch = client.messages.batches.create(requests=requests(1))
    clock.advance(100)
    assert client.messages.batches.retrieve(batch.id).archived_at is None
    clock.advance(29 * 86_400)
    archived = client.messages.batches.retrieve(batch.id)
    assert archived.archived_at == archived.created_at + timedelta(days=29)
    with pytest.raises(anthropic.NotFoundError, match="archived"):
        list(client.messages.batches.results(batch.id))


def test_a_batch_survives_a_restart_from_its_state_dir_and_finishes(tmp_path, clock,
                                                                     new_emulator):
    config = EmulatorConfig(seconds_per_request=1)
    emu = new_emulator(state_dir=tmp_path, config=config, clock=clock)
    client = inprocess_client(emu)
    batch = client.messages.batches.create(requests=requests(6))
    clock.advance(3.5)
    client.messages.batches.retrieve(batch.id)  # three have run and are committed
    emu.restart()
    clock.advance(10)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.request_counts.succeeded == 6
    assert set(results(client, batch.id)) == {f"r{i}" for i in range(6)}
    assert emu.anthropic.executions() == {f"r{i}": 1 for i in range(6)}  # none run twice


def test_the_openai_dialect_still_answers_beside_it(local, emulator):
    run(local, requests(1))
    with httpx2.Client(transport=httpx2.WSGITransport(app=emulator)) as raw:
        listing = raw.get("http://emulator.invalid/v1/batches",
                          headers={"Authorization": "Bearer k"})
    assert listing.status_code == 200 and listing.json()["data"] == []
    assert MODEL.startswith("claude-")


def test_under_a_base_path_results_url_keeps_it(new_emulator):
    emu = new_emulator(config=EmulatorConfig.instant(base_path="/compat/v1"))
    client = sdk_client(ROOT + "/compat", http_client=httpx2.Client(
        transport=httpx2.WSGITransport(app=emu)))
    batch = wait(client, client.messages.batches.create(requests=requests(2)).id)
    assert batch.results_url == f"{ROOT}/compat/v1/messages/batches/{batch.id}/results"
    assert set(results(client, batch.id)) == {"r0", "r1"}
