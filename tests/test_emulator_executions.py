"""Counting executions (what ran and was billed), and an emulator whose memory does not grow
with the number of requests it executed."""

from __future__ import annotations

import array
import types
from collections import Counter
from typing import Any

import httpx2
from emulator_fixtures import (  # noqa: F401  (fixtures)
    PACED,
    FakeClock,
    chat_requests,
    clock,
    inprocess_client,
    new_emulator,
    paced,
    paced_client,
    run_batch,
    running_emulator,
    sdk_client,
    submit,
    wait,
)

from runner.emulator import EmulatorConfig, Faults
from runner.emulator.log import RequestLog


def test_executions_count_each_custom_id_once_per_batch_that_ran_it(new_emulator):
    emu = new_emulator(config=EmulatorConfig.instant())
    client = inprocess_client(emu)
    run_batch(client, chat_requests(4))
    run_batch(client, chat_requests(2))  # r0 and r1 again, in a new batch
    emu.faults = Faults(request_failure_rate=1.0)
    run_batch(client, chat_requests(1))  # r0 runs a third time and fails: not billed
    assert emu.executions() == Counter({"r0": 3, "r1": 2, "r2": 1, "r3": 1})
    assert emu.executions(billed=True) == Counter({"r0": 2, "r1": 2, "r2": 1, "r3": 1})
    assert emu.executions(billed=False) == Counter({"r0": 1})


def test_a_batch_cancelled_while_validating_executes_nothing(paced, paced_client, clock):
    batch = submit(paced_client, chat_requests(5))
    clock.advance(5)  # still validating (10 s)
    paced_client.batches.cancel(batch.id)
    clock.advance(100)
    done = paced_client.batches.retrieve(batch.id)
    assert done.status == "cancelled" and done.output_file_id is None
    assert paced.executions() == Counter()


def test_an_expired_batch_counts_only_the_requests_that_ran(new_emulator):
    clock = FakeClock()
    config = EmulatorConfig(validating_seconds=10, seconds_per_request=1,
                            completion_window_seconds=14.5)
    emu = new_emulator(config=config, clock=clock)
    client = inprocess_client(emu)
    batch = submit(client, chat_requests(10))
    clock.advance(100)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired"
    ran = emu.executions()
    assert sum(ran.values()) == 4 and set(ran.values()) == {1}
    leftovers = [line["custom_id"] for line in _lines(client, expired.error_file_id)
                 if line["error"] and line["error"]["code"] == "batch_expired"]
    assert sorted(leftovers + list(ran)) == sorted(f"r{i}" for i in range(10))


def test_a_served_emulator_reports_its_executions_on_an_admin_route(tmp_path):
    with running_emulator(tmp_path / "state") as server:
        client = sdk_client(server.url)
        run_batch(client, chat_requests(3))
        run_batch(client, chat_requests(1))
        with httpx2.Client() as raw:
            answer = raw.get(server.url.removesuffix("/v1") + "/_emulator/executions").json()
        assert answer["executed"] == {"r0": 2, "r1": 1, "r2": 1}
        assert answer["billed"] == answer["executed"]
        assert Counter(answer["executed"]) == server.emulator.executions()


def test_a_request_redone_after_a_crash_is_logged_once(tmp_path):
    log = RequestLog(tmp_path / "log.jsonl")
    log.append({"event": "batch_created", "batch_id": "b1", "custom_ids": ["a", "b", "c"]})
    log.append_executed("b1", 0, [_executed("b1", "a"), _executed("b1", "b")])
    reopened = RequestLog(tmp_path / "log.jsonl")  # a restart: counts come from the file
    reopened.load({"b1"})
    reopened.append_executed("b1", 1, [_executed("b1", "b"), _executed("b1", "c")])  # redo b
    assert reopened.executions() == Counter({"a": 1, "b": 1, "c": 1})


def test_loading_drops_a_cut_last_line_and_the_events_of_uncommitted_batches(tmp_path):
    path = tmp_path / "log.jsonl"
    log = RequestLog(path)
    log.append({"event": "batch_created", "batch_id": "kept", "custom_ids": ["a"]})
    log.append_executed("kept", 0, [_executed("kept", "a")])
    log.append({"event": "batch_created", "batch_id": "never-committed", "custom_ids": ["x"]})
    with path.open("ab") as fh:
        fh.write(b'{"event": "request_exec')  # the process died while writing
    reopened = RequestLog(path)
    reopened.load({"kept"})
    assert [e["batch_id"] for e in reopened.iter_events()] == ["kept", "kept"]
    assert path.read_bytes().endswith(b"}\n")


def test_memory_does_not_grow_with_the_number_of_requests_executed(new_emulator):
    held = []
    for count in (100, 1_100):
        emu = new_emulator(config=EmulatorConfig.instant())
        batch, output, _ = run_batch(inprocess_client(emu), chat_requests(count))
        assert batch.status == "completed" and len(output) == count
        assert sum(1 for _ in emu.log.iter_events()) == 1 + count  # all on disk
        held.append(_objects_reachable(emu))
    small, large = held
    # Ten times the requests; what the emulator keeps may differ by a few ids or strings,
    # never by something per request (the old in-memory log held ~10 objects per request).
    assert large - small < 50, (small, large)


def _executed(batch_id: str, custom_id: str) -> dict[str, Any]:
    return {"event": "request_executed", "batch_id": batch_id, "custom_id": custom_id,
            "status_code": 200, "outcome": "ok", "billed": True}


def _lines(client: Any, file_id: str | None) -> list[dict[str, Any]]:
    import json
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


_OPAQUE = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
           types.MethodType, types.CodeType)


def _objects_reachable(root: Any) -> int:
    """Objects (and array items) an emulator holds: its attributes, followed through
    containers and instances, not into modules, classes or functions."""
    seen: set[int] = set()
    count = 0
    todo = [root]
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(id(item))
        count += 1
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
        elif isinstance(item, array.array):
            count += len(item)
        elif hasattr(item, "__dict__"):
            todo.append(vars(item))
    return count
