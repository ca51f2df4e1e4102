"""`batchrun repair`: a damaged ledger is moved aside, never deleted, and the ledger is
rebuilt from the provider, so the next apply pays for nothing it had already sent."""

from __future__ import annotations

import os
import re
import sqlite3

import openai
import pytest
from conftest import API_KEY, sharded_project
from test_damaged_state import damage_pages

JOB = "jobs/tags.yaml"
pytestmark = pytest.mark.usefixtures("api_key")


@pytest.fixture
def submitted(http_emulator, tmp_path):
    """30 points sent in 3 batches (not yet collected) of a project over HTTP."""
    project = sharded_project(tmp_path / "project", http_emulator, points=30)
    assert project.run_json("apply", JOB, "--no-wait")["submitted"] == 3
    return project


def assert_paid_once_and_written(project, batches: int = 3) -> None:
    emulator = project.emulator
    assert len(emulator.batches_created()) == batches
    keys = emulator.sent_keys()
    assert len(keys) == len(set(keys)) == 30
    assert all(n == 1 for n in emulator.emulator.executions().values())
    assert sum("llm_tags" in p for p in project.payloads().values()) == 30
    assert project.run_json("plan", JOB)["pending"] is False


def test_a_garbage_ledger_is_moved_aside_and_rebuilt_and_apply_pays_nothing_again(submitted):
    ledger = submitted.state / "state.db"
    garbage = os.urandom(8192)
    ledger.write_bytes(garbage)
    assert "the ledger is damaged" in submitted.run("apply", JOB, expect=1).stderr
    out = submitted.run("repair", JOB).stdout.splitlines()
    assert out[0] == (f"{ledger}: it is not a SQLite database (its first bytes are not SQLite's "
                      "header)")
    moved = re.fullmatch(r"moved it aside \(nothing deleted\): (state\.db\.damaged-\S+)", out[1])
    assert moved, out[1]
    assert (submitted.state / moved.group(1)).read_bytes() == garbage   # kept, byte for byte
    assert out[2:] == ["adopted 3 batches from the provider; 3 to collect",
                       "Next: `batchrun apply` collects and writes them; nothing adopted is "
                       "paid for again."]
    submitted.run("apply", JOB)
    assert_paid_once_and_written(submitted)


def test_a_ledger_cut_in_half_is_rebuilt_and_apply_pays_nothing_again(submitted):
    ledger = submitted.state / "state.db"
    os.truncate(ledger, ledger.stat().st_size // 2)
    out = submitted.run_json("repair", JOB)
    assert out["damaged"].startswith("it is cut short")
    assert out["adopted"] == 3
    submitted.run("apply", JOB)
    assert_paid_once_and_written(submitted)


def test_a_ledger_damaged_inside_gives_back_the_answers_still_readable_in_it(http_project):
    http_project.seed(30)
    http_project.run("apply", JOB)
    damaged = damage_pages(http_project.state / "state.db", "batches")
    out = http_project.run_json("repair", JOB)
    assert out["damaged"] == "SQLite cannot read it (database disk image is malformed)"
    assert out["salvaged_results"] == 30
    assert (http_project.state / out["moved_aside"][0]).read_bytes() == damaged
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == 30        # nothing sent again
    assert http_project.run_json("plan", JOB)["pending"] is False


def test_repair_keeps_an_intact_ledger_and_adopts_what_it_lacks(submitted):
    out = submitted.run_json("repair", JOB)
    assert out["damaged"] is None and out["moved_aside"] == [] and out["adopted"] == 0
    assert out["open_batches"] == 3
    (submitted.state / "state.db").unlink()       # lost, as on a fresh CI runner
    out = submitted.run_json("repair", JOB)
    assert out["damaged"] is None and out["adopted"] == 3
    submitted.run("apply", JOB)
    assert_paid_once_and_written(submitted)


def test_finished_batches_whose_input_files_are_gone_are_given_up_not_a_stuck_error(
        submitted):
    submitted.run("apply", JOB)                       # collected and written
    submitted.run("gc")                               # their shards deleted here
    client = openai.OpenAI(api_key=API_KEY, base_url=submitted.emulator.url)
    for batch in client.batches.list():               # and their inputs at the provider
        client.files.delete(batch.input_file_id)      # (as gc does on the emulator)
    (submitted.state / "state.db").write_bytes(os.urandom(8192))
    assert submitted.run_json("repair", JOB)["adopted"] == 0   # before: HTTP 404, every run
    with sqlite3.connect(submitted.state / "state.db") as db:   # given up, and remembered
        assert db.execute("SELECT count(*) FROM superseded WHERE status LIKE "
                          "'completed; input file gone'").fetchone()[0] == 3
    assert submitted.run_json("apply", JOB)["submitted"] == 0   # written already: nothing
    assert "input file is gone" not in submitted.run("apply", JOB).stderr   # remembered
    assert_paid_once_and_written(submitted)
