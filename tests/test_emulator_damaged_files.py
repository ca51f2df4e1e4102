"""Damaged downloads of output and error files: each damage, persistent or transient, chosen
per batch, through the SDK in-process and over HTTP."""

from __future__ import annotations

import json

import httpx2
import pytest
from emulator_fixtures import (  # noqa: F401  (fixtures)
    EmulatorProcess,
    chat_requests,
    client,
    emulator,
    run_batch,
    sdk_client,
    submit,
    wait,
)

from runner.emulator import Faults, FileDamage
from runner.emulator.damage import UNKNOWN_CUSTOM_ID

IDS = {"r0", "r1", "r2"}


def _download(client, file_id: str) -> tuple[bytes, str]:
    answer = client.files.content(file_id)
    return answer.content, answer.response.headers["content-type"]


def _lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8", "replace").splitlines()]


def _check(damage: str, bad: bytes, content_type: str, whole: bytes) -> None:
    """What each damage does to a file of three output lines."""
    first, *rest = whole.splitlines(keepends=True)
    if damage == "truncated":
        assert bad == whole[:-16]
    elif damage == "empty":
        assert bad == b""
    elif damage == "html":
        assert content_type.startswith("text/html") and bad.startswith(b"<html>")
    elif damage == "invalid_utf8":
        with pytest.raises(UnicodeDecodeError):
            bad.decode("utf-8")
        assert len(bad) == len(whole) + 1
        assert [line["custom_id"] for line in _lines(bad)] == \
            [line["custom_id"] for line in _lines(whole)]
    elif damage == "duplicate_line":
        assert bad == whole + first
    elif damage == "unknown_custom_id":
        *kept, stranger = _lines(bad)
        assert kept == _lines(whole) and stranger["custom_id"] == UNKNOWN_CUSTOM_ID
        assert stranger["custom_id"] not in IDS
    elif damage == "no_response":
        answerless, *kept = _lines(bad)
        assert "response" not in answerless and answerless["error"] is None
        assert answerless["custom_id"] == json.loads(first)["custom_id"]
        assert kept == _lines(b"".join(rest))
    else:
        raise AssertionError(damage)
    if damage != "html":
        assert content_type == "application/octet-stream"


@pytest.mark.parametrize("damage", ["truncated", "invalid_utf8", "html", "empty",
                                    "duplicate_line", "unknown_custom_id", "no_response"])
def test_a_transient_damage_spoils_the_first_download_only(client, emulator, damage):
    batch, output, _ = run_batch(client, chat_requests(3))
    assert {line["custom_id"] for line in output} == IDS
    emulator.faults = Faults(damaged_files=(FileDamage("output", damage, times=1),))
    bad, content_type = _download(client, batch.output_file_id)
    whole, _ = _download(client, batch.output_file_id)  # downloaded again: whole
    assert [json.loads(line) for line in whole.splitlines()] == output
    _check(damage, bad, content_type, whole)


def test_a_persistent_damage_spoils_every_download(client, emulator):
    batch, _, _ = run_batch(client, chat_requests(3))
    emulator.faults = Faults(damaged_files=(FileDamage("output", "html"),))
    for _ in range(3):
        assert _download(client, batch.output_file_id)[0].startswith(b"<html>")
    left = emulator.service.counters.damaged_downloads
    assert left == {f"0/{batch.output_file_id}": 3}


def test_damages_chosen_by_batch_and_file_leave_the_others_whole(client, emulator):
    emulator.faults = Faults(request_failure_rate=0.5, seed=3,
                             damaged_files=(FileDamage("error", "empty", batches=(2,)),))
    first, _, first_errors = run_batch(client, chat_requests(8))
    second, second_output, _ = run_batch(client, chat_requests(8, prefix="s"))
    assert first.error_file_id and second.error_file_id and first_errors
    assert _download(client, second.error_file_id)[0] == b""
    assert _lines(_download(client, first.error_file_id)[0]) == first_errors
    assert _lines(_download(client, second.output_file_id)[0]) == second_output


def test_damages_stack_in_order_one_download_each(client, emulator):
    batch, output, _ = run_batch(client, chat_requests(3))
    emulator.faults = Faults(damaged_files=(FileDamage("output", "html", times=1),
                                            FileDamage("output", "truncated", times=1,
                                                       bytes=5)))
    html, truncated, whole = (_download(client, batch.output_file_id)[0] for _ in range(3))
    assert html.startswith(b"<html>") and truncated == whole[:-5]
    assert _lines(whole) == output


def test_damaged_files_are_read_from_the_command_line_and_json(tmp_path):
    (tmp_path / "faults.json").write_text(json.dumps(
        {"damaged_files": [{"file": "error", "damage": "empty", "times": 2}]}))
    args = ("--port", "0", "--speed", "instant", "--faults", str(tmp_path / "faults.json"),
            "--damage-file", "output=truncated,bytes=3,times=1,batches=1")
    with EmulatorProcess(*args) as server:
        with httpx2.Client() as raw:
            faults = raw.get(server.url.removesuffix("/v1") + "/_emulator/faults").json()
        assert faults["faults"]["damaged_files"] == [
            {"file": "error", "damage": "empty", "times": 2, "batches": [], "bytes": 16},
            {"file": "output", "damage": "truncated", "times": 1, "batches": [1], "bytes": 3}]
        client = sdk_client(server.url)
        batch = wait(client, submit(client, chat_requests(2)).id)
        bad, _ = _download(client, batch.output_file_id)
        whole, _ = _download(client, batch.output_file_id)
    assert len(_lines(whole)) == 2 and bad == whole[:-3]


@pytest.mark.parametrize("text", ["output=melted", "input=html", "output=html,times=0",
                                  "output=html,color=3"])
def test_a_bad_damage_is_refused_with_what_is_known(text):
    with pytest.raises(ValueError):
        FileDamage.parse(text)
