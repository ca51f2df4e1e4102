"""With a state dir, files, batches and the request log survive a restart, even kill -9."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2
from emulator_fixtures import (  # noqa: F401  (fixtures)
    PACED,
    ROOT,
    EmulatorProcess,
    FakeClock,
    chat_requests,
    inprocess_client,
    new_emulator,
    read_lines,
    run_batch,
    running_emulator,
    sdk_client,
    submit,
    wait,
)

from runner.emulator import Emulator, EmulatorConfig


def _executed(emu: Emulator) -> list[str]:
    return [e["custom_id"] for e in emu.log.events if e["event"] == "request_executed"]


def test_the_log_records_each_batch_with_its_custom_ids_and_each_request_once(
        tmp_path, new_emulator):
    emu = new_emulator(state_dir=tmp_path, config=EmulatorConfig.instant())
    client = inprocess_client(emu)
    batch = submit(client, chat_requests(3), metadata={"batchrun_shard": "s1"})
    for _ in range(3):
        wait(client, batch.id)  # reading again executes nothing again
    created, *executed = emu.log.events
    assert created == {"event": "batch_created", "time": created["time"], "batch_id": batch.id,
                       "input_file_id": batch.input_file_id,
                       "endpoint": "/v1/chat/completions",
                       "metadata": {"batchrun_shard": "s1"}, "custom_ids": ["r0", "r1", "r2"]}
    assert sorted(e["custom_id"] for e in executed) == ["r0", "r1", "r2"]
    assert all(e["billed"] and e["status_code"] == 200 and e["outcome"] == "ok"
               for e in executed)
    on_disk = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert on_disk == emu.log.events


def test_a_restart_keeps_files_batches_and_log_and_the_batch_carries_on(tmp_path,
                                                                          new_emulator):
    clock = FakeClock()
    first = new_emulator(state_dir=tmp_path, config=PACED, clock=clock)
    client = inprocess_client(first)
    batch = submit(client, chat_requests(6), metadata={"batchrun_job": "tags"})
    clock.advance(13)
    assert client.batches.retrieve(batch.id).request_counts.completed == 3
    first.close()  # the process ends; only the state dir remains

    second = new_emulator(state_dir=tmp_path, config=PACED, clock=clock)
    client = inprocess_client(second)
    assert client.batches.retrieve(batch.id).metadata == {"batchrun_job": "tags"}
    assert client.files.retrieve(batch.input_file_id).bytes > 0
    clock.advance(100)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 6
    assert len(read_lines(client, done.output_file_id)) == 6
    assert sorted(_executed(second)) == [f"r{i}" for i in range(6)]  # each exactly once


def test_work_done_after_the_last_commit_is_redone_not_doubled(tmp_path, new_emulator):
    clock = FakeClock()
    first = new_emulator(state_dir=tmp_path, config=PACED, clock=clock)
    client = inprocess_client(first)
    batch = submit(client, chat_requests(4))
    clock.advance(12)
    client.batches.retrieve(batch.id)  # two requests done and committed
    part = tmp_path / "parts" / f"{batch.id}.output"
    committed = part.read_bytes()
    with part.open("ab") as fh:  # what a kill -9 mid-chunk would leave: an uncommitted line
        fh.write(committed.splitlines(keepends=True)[0])

    client = inprocess_client(new_emulator(state_dir=tmp_path, config=PACED, clock=clock))
    clock.advance(100)
    output = read_lines(client, client.batches.retrieve(batch.id).output_file_id)
    assert sorted(line["custom_id"] for line in output) == ["r0", "r1", "r2", "r3"]


def test_a_served_emulator_killed_with_sigkill_restarts_with_its_state(tmp_path):
    args = ("--port", "0", "--speed", "instant", "--state-dir", str(tmp_path))
    with EmulatorProcess(*args) as server:
        client = sdk_client(server.url)
        batch = submit(client, chat_requests(3), metadata={"batchrun_shard": "abc"})
        output_id = wait(client, batch.id).output_file_id
        pending = submit(client, chat_requests(2, prefix="p"))
    # the `with` killed the process group with SIGKILL
    with EmulatorProcess(*args) as server:
        client = sdk_client(server.url)
        listed = {b.id: b for b in client.batches.list()}
        assert listed[batch.id].metadata == {"batchrun_shard": "abc"}
        assert len(read_lines(client, output_id)) == 3
        assert wait(client, pending.id).request_counts.completed == 2
        with httpx2.Client() as raw:
            log = raw.get(server.url.removesuffix("/v1") + "/_emulator/log").json()["data"]
        assert [e["batch_id"] for e in log if e["event"] == "batch_created"] == \
            [batch.id, pending.id]


def test_a_supervised_emulator_restarts_after_a_crash_and_the_sdk_never_notices(tmp_path):
    args = ("--port", "0", "--speed", "instant", "--state-dir", str(tmp_path),
            "--crash-after-calls", "2", "--restart-on-crash")
    with EmulatorProcess(*args) as server:
        health = server.url.removesuffix("/v1") + "/_emulator/health"
        with httpx2.Client() as raw:
            before = raw.get(health).json()
        client = sdk_client(server.url)  # default retries: a dropped connection is retried
        batch, output, _ = run_batch(client, chat_requests(3))  # crashes on the third call
        assert batch.status == "completed" and len(output) == 3
        with httpx2.Client() as raw:
            after = raw.get(health).json()
        assert (before["restarted"], after["restarted"]) == (False, True)
        assert before["pid"] != after["pid"]
        assert len(list(client.files.list(purpose="batch"))) >= 1


def test_python_dash_m_reports_a_bad_option_as_an_error():
    done = subprocess.run([sys.executable, "-m", "runner.emulator", "--request-failure-rate",
                           "2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--request-failure-rate" in done.stderr


def test_running_emulator_serves_over_http_with_its_state_dir_and_app(tmp_path):
    with running_emulator(tmp_path / "state") as server:
        client = sdk_client(server.url)
        batch, output, _ = run_batch(client, chat_requests(2))
        assert len(output) == 2
        assert [e["batch_id"] for e in server.emulator.log.events
                if e["event"] == "batch_created"] == [batch.id]
    assert (tmp_path / "state" / "batches" / f"{batch.id}.json").exists()


def test_two_emulators_sharing_a_state_dir_see_each_other_and_never_redo_work(
        tmp_path, new_emulator):
    clock = FakeClock()
    one, two = (new_emulator(state_dir=tmp_path, config=PACED, clock=clock) for _ in range(2))
    first, second = inprocess_client(one), inprocess_client(two)
    batch = submit(first, chat_requests(6))
    clock.advance(12)
    assert second.batches.retrieve(batch.id).request_counts.completed == 2  # two ran it
    clock.advance(2)
    assert first.batches.retrieve(batch.id).request_counts.completed == 4  # one carries on
    late = submit(second, chat_requests(1, prefix="late"))
    clock.advance(100)
    assert {b.id for b in first.batches.list()} == {batch.id, late.id}
    assert len(read_lines(first, first.batches.retrieve(batch.id).output_file_id)) == 6
    executed = [e["custom_id"] for e in new_emulator(state_dir=tmp_path, config=PACED,
                                                 clock=clock).log.events
                if e["event"] == "request_executed"]
    assert sorted(executed) == ["late0", *[f"r{i}" for i in range(6)]]
