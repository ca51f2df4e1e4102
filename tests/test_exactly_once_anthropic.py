"""Exactly once on Anthropic's Message Batches, which carry no metadata (runner/sizematch.py):
kills at every stage boundary, a create whose answer was lost, a deleted state directory
with batches in flight or ended, and someone else's batch of the same size — never a
request paid twice, never a result lost.

batchrun runs as a real subprocess (so it can be SIGKILLed) or through the CLI in-process;
the emulator is served over real HTTP from the test process and answers through the
official `anthropic` SDK; its log says what was sent and executed.
"""

from __future__ import annotations

import random
import shutil
import signal
import time

import anthropic
import pytest
from conftest import SLOW
from emulator_fixtures import FakeClock
from provider_fixtures import (
    ANTHROPIC_KEY,
    CLAUDE,
    JOB,
    anthropic_events,
    anthropic_log,
    anthropic_project,
    anthropic_sent_keys,
)
from test_exactly_once import assert_nothing_paid_twice, kill_at_random

from runner.emulator import EmulatorConfig, Faults
from runner.emulator.faults import HttpFault
from runner.ledger import Ledger
from runner.project import load_project
from runner.writeback import stamp_key

POINTS = ("after-pack", "create-begun", "after-create", "after-record", "after-download",
          "after-results", "mid-write")


@pytest.fixture(autouse=True)
def anthropic_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def new_project(root, emulator, points=30, shard=10):
    project = anthropic_project(root, emulator)
    project.write_config(qdrant={"path": ".qdrant", "write_batch": 4})
    project.seed(points)
    project.edit(JOB, "max_requests: 100", f"max_requests: {shard}")
    return project


def assert_each_key_sent_once(emulator):
    keys = anthropic_sent_keys(emulator)
    repeated = {k for k in keys if keys.count(k) > 1}
    assert not repeated, f"{len(repeated)} request keys were put in more than one batch"


def assert_every_point_written(project):
    payloads = project.payloads()
    assert payloads
    for point_id, payload in payloads.items():
        assert "llm_tags" in payload and stamp_key("tags") in payload, f"point {point_id}"
    assert project.run_json("plan", JOB)["pending"] is False


def foreign_batch(emulator, count, model=CLAUDE):
    """A batch someone else created in the same workspace: `count` requests of theirs."""
    client = anthropic.Anthropic(api_key="someone-else", base_url=emulator.url[:-3])
    return client.messages.batches.create(requests=[
        {"custom_id": f"theirs-{i}", "params": {"model": model, "max_tokens": 50, "messages": [
            {"role": "user", "content": f"Their own question {i}"}]}} for i in range(count)])


# One crash point in the fast lane (a batch created whose id was never recorded: the one a
# second run must find without metadata); the others run in `make test-all`.
FAST_CRASH_POINT = "after-create"


@pytest.mark.parametrize("point", [
    pytest.param(point, marks=() if point == FAST_CRASH_POINT else pytest.mark.slow)
    for point in POINTS])
def test_a_kill_at_any_stage_boundary_is_finished_by_the_next_run(point, serve_emulator,
                                                                  tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "project", emulator)
    killed = project.spawn("apply", JOB, crash_at=f"{point}:2" if point == "mid-write" else point)
    out, err = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, f"never reached {point}:\n{out}\n{err}"
    result = project.run("apply", JOB)
    assert_each_key_sent_once(emulator)
    assert len(anthropic_sent_keys(emulator)) == 30
    assert_every_point_written(project)
    if point == "after-create":   # the batch whose id was lost is found by its custom_ids
        assert "matched by its results' custom_ids" in result.stderr


def test_a_kill_after_create_with_the_batch_still_running_is_verified_when_it_ends(
        serve_emulator, tmp_path):
    clock = FakeClock(time.time())                # the batch runs when the test says so
    emulator = serve_emulator(SLOW, clock=clock)
    project = new_project(tmp_path / "project", emulator, points=10)
    killed = project.spawn("apply", JOB, crash_at="after-create")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    result = project.run("apply", JOB, "--no-wait")
    assert "matched by its size and time" in result.stderr
    clock.advance(3600)
    project.run("apply", JOB)
    assert len(emulator.emulator.anthropic.batches.batches) == 1
    assert_each_key_sent_once(emulator)
    assert_every_point_written(project)
    assert project.manifest()["jobs"]["tags"]["batches"][0]["adopted"] == "size"


@pytest.mark.slow
def test_twelve_kills_at_random_times_never_pay_twice_nor_lose_a_result(serve_emulator,
                                                                       tmp_path):
    emulator = serve_emulator(SLOW)
    project = new_project(tmp_path / "project", emulator, points=40)
    kill_at_random(project, random.Random(20261204), runs=12, points=40, edit_every=5)
    project.run("apply", JOB)
    assert_each_key_sent_once(emulator)
    assert_nothing_paid_twice(anthropic_log(emulator))
    assert_every_point_written(project)


def test_a_create_whose_answer_was_lost_is_found_by_its_size_not_made_twice(serve_emulator,
                                                                           tmp_path):
    faults = Faults(http=(HttpFault("POST /v1/messages/batches", 500, times=1, after=True,
                                    retry_after_ms=5),))
    emulator = serve_emulator(faults=faults)
    project = new_project(tmp_path / "project", emulator, points=10)
    project.run("apply", JOB)
    assert len(anthropic_events(emulator, "batch_created")) == 1
    assert_each_key_sent_once(emulator)
    assert_every_point_written(project)


def test_a_deleted_state_directory_adopts_the_batches_in_flight(serve_emulator, tmp_path):
    clock = FakeClock(time.time())
    emulator = serve_emulator(SLOW, clock=clock)
    project = new_project(tmp_path / "project", emulator)
    assert project.run_json("apply", JOB, "--no-wait")["submitted"] == 3
    shutil.rmtree(project.root / ".batchrun")
    result = project.run("apply", JOB, "--no-wait")
    assert result.stderr.count("matched by its size and time") == 3
    clock.advance(3600)
    project.run("apply", JOB)
    assert len(anthropic_events(emulator, "batch_created")) == 3
    assert_each_key_sent_once(emulator)
    assert_every_point_written(project)


def test_a_deleted_state_directory_adopts_ended_batches_by_their_custom_ids(serve_emulator,
                                                                            tmp_path):
    emulator = serve_emulator(EmulatorConfig.instant())
    project = new_project(tmp_path / "project", emulator)
    project.run("apply", JOB, "--no-wait")
    with project.qdrant() as client:   # the results were never written back
        client.delete_payload("videos", ["llm_tags", stamp_key("tags")],
                              points=list(range(1, 31)))
    shutil.rmtree(project.root / ".batchrun")
    result = project.run("apply", JOB)
    assert result.stderr.count("matched by its results' custom_ids") == 3
    assert len(anthropic_events(emulator, "batch_created")) == 3
    assert_every_point_written(project)


def test_someone_elses_batch_of_the_same_size_is_released_and_ours_is_sent(serve_emulator,
                                                                           tmp_path):
    clock = FakeClock(time.time())
    emulator = serve_emulator(SLOW, clock=clock)
    project = new_project(tmp_path / "project", emulator, points=10)
    theirs = foreign_batch(emulator, 10)          # in progress, as big as our shard
    result = project.run("apply", JOB, "--no-wait")
    assert f"adopted batch {theirs.id}" in result.stderr      # provisionally …
    clock.advance(3600)
    result = project.run("apply", JOB, "--no-wait")
    assert "answered other requests: not ours" in result.stderr  # … and released
    clock.advance(3600)
    project.run("apply", JOB)
    created = anthropic_events(emulator, "batch_created")
    assert len(created) == 2 and created[1]["custom_ids"] != created[0]["custom_ids"]
    assert_every_point_written(project)
    batches = project.manifest()["jobs"]["tags"]["batches"]
    assert [b["batch_id"] for b in batches] != [theirs.id] and len(batches) == 1
    again = project.run_json("apply", JOB)        # the foreign batch is remembered
    assert again["adopted"] == 0 and again["submitted"] == 0


def test_an_ended_batch_of_the_same_size_that_is_not_ours_is_never_adopted(serve_emulator,
                                                                          tmp_path):
    emulator = serve_emulator(EmulatorConfig.instant())
    project = new_project(tmp_path / "project", emulator, points=10)
    theirs = foreign_batch(emulator, 10)
    assert emulator.emulator.anthropic.batches.get(theirs.id)   # it ends at the next read
    result = project.run("apply", JOB)
    assert theirs.id not in result.stderr
    assert len(anthropic_events(emulator, "batch_created")) == 2
    assert_every_point_written(project)
    assert project.run_json("costs")["total"]["requests"] == 10   # theirs is not counted


def test_with_no_lookback_a_lost_state_directory_is_not_searched(serve_emulator, tmp_path):
    emulator = serve_emulator(SLOW)
    project = new_project(tmp_path / "project", emulator, points=10)
    project.write_config(provider={**project.provider, "adopt_lookback_hours": 0})
    foreign_batch(emulator, 10)
    result = project.run("apply", JOB)
    assert "adopted" not in result.stderr
    assert len(anthropic_events(emulator, "batch_created")) == 2
    assert_every_point_written(project)


def test_two_shards_of_one_size_adopted_the_wrong_way_round_are_swapped_not_paid_again(
        serve_emulator, tmp_path):
    clock = FakeClock(time.time())
    emulator = serve_emulator(SLOW, clock=clock)
    project = new_project(tmp_path / "project", emulator)
    project.run("apply", JOB, "--no-wait")
    shutil.rmtree(project.root / ".batchrun")
    project.run("apply", JOB, "--no-wait")          # three shards of 10, adopted by size
    context = load_project(project.root)
    ledger = Ledger(context.state_dir, context.provider_id)
    try:                                            # the guess that could not be told apart
        first, second = ledger.batches(open_only=True)[:2]
        with ledger.transaction():
            ledger.update_batch(first.seq, batch_id=None)
            ledger.update_batch(second.seq, batch_id=first.batch_id)
            ledger.update_batch(first.seq, batch_id=second.batch_id)
    finally:
        ledger.close()
    clock.advance(3600)
    result = project.run("apply", JOB)
    assert "swapped with batch" in result.stderr
    assert len(anthropic_events(emulator, "batch_created")) == 3
    assert_each_key_sent_once(emulator)
    assert_every_point_written(project)
