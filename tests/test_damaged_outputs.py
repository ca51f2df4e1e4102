"""Damaged output and error files, end to end: the real `openai` SDK over HTTP to a served
emulator that spoils downloads. Every good line is written, every bad one is reported,
nothing readable is paid for twice, and damage that persists ends in reported failures
bounded by batch.max_attempts."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from conftest import Project, sharded_project
from test_json_output import check  # tests/ is on sys.path: the documented schemas

from runner.emulator import Faults, FileDamage

JOB = "jobs/tags.yaml"
POINTS, SHARD = 30, 10          # three batches of ten requests
# What each damage spoils in a file of ten lines: the requests left without a readable line.
LOST = {"truncated": 1, "invalid_utf8": 1, "html": 10, "empty": 10, "no_response": 1,
        "duplicate_line": 0, "unknown_custom_id": 0}
# The bad lines each damage adds, as `apply --json` counts them per batch.
BAD_LINES = {"truncated": {"unreadable": 1}, "invalid_utf8": {"unreadable": 1},
             "html": {"unreadable": 7}, "empty": {}, "no_response": {"malformed": 1},
             "duplicate_line": {"duplicate": 1}, "unknown_custom_id": {"unknown": 1}}


@pytest.fixture
def damaged(tmp_path, api_key, serve_emulator):
    def make(*damages: FileDamage, max_attempts: int = 3, faults: dict | None = None) -> Project:
        emulator = serve_emulator(faults=Faults(damaged_files=damages, **(faults or {})))
        project = sharded_project(tmp_path / "project", emulator, points=POINTS, shard=SHARD)
        project.edit(JOB, "max_attempts: 3", f"max_attempts: {max_attempts}")
        return project
    return make


def written(project: Project) -> set:
    return {pid for pid, payload in project.payloads().items() if "llm_tags" in payload}


def executions(project: Project) -> Counter:
    return project.emulator.emulator.executions()


def first_batch(applied: dict) -> dict:
    return min(applied["collected"], key=lambda c: c["batch_id"])


def batch_created(project: Project, ordinal: int) -> list[str]:
    return project.emulator.batches_created()[ordinal - 1]["custom_ids"]


@pytest.mark.parametrize("damage", sorted(LOST))
def test_a_damage_that_goes_away_costs_one_more_download_and_nothing_else(damaged, damage):
    project = damaged(FileDamage("output", damage, times=1, batches=(1,)))
    applied = check("apply", project.run("apply", JOB, "--json").stdout)
    assert written(project) == set(range(1, POINTS + 1))
    assert set(executions(project).values()) == {1}       # nothing was sent twice
    assert len(project.emulator.batches_created()) == 3
    first = [c for c in applied["collected"] if c["batch_id"] ==
             project.emulator.batches_created()[0]["batch_id"]][0]
    if LOST[damage] or damage == "empty":
        # Read again: whole. The first copy is mentioned, nothing is counted bad.
        assert "downloaded again, whole" in first["note"]
        assert first["problems"] == []
    else:
        # A duplicate or a stranger is readable: ignored and reported, nothing to fetch again.
        assert {k: first["lines"][k] for k in BAD_LINES[damage]} == BAD_LINES[damage]
        assert len(first["problems"]) == 1 and "ignored" in first["problems"][0]
    assert applied["failed"] == 0 and applied["jobs"]["tags"]["failures"] == []


@pytest.mark.parametrize("damage", sorted(LOST))
def test_a_damage_that_stays_retries_only_the_requests_it_hid(damaged, damage):
    project = damaged(FileDamage("output", damage, batches=(1,)))
    applied = project.run_json("apply", JOB)
    assert written(project) == set(range(1, POINTS + 1))   # every good line written
    ran = executions(project)
    hidden = {key for key, count in ran.items() if count > 1}
    assert len(hidden) == LOST[damage] and set(ran.values()) <= {1, 2}
    first = [c for c in applied["collected"] if c["batch_id"] ==
             project.emulator.batches_created()[0]["batch_id"]][0]
    assert {k: first["lines"].get(k, 0) for k in BAD_LINES[damage]} == BAD_LINES[damage]
    if LOST[damage]:
        # Sent again in a batch of their own, once: it was whole.
        assert len(project.emulator.batches_created()) == 4
        assert set(batch_created(project, 4)) == hidden
        assert first["lines"]["retry"] == LOST[damage]
        assert "downloaded twice" in first["note"]
        assert "may have been billed" in first["note"]
    if BAD_LINES[damage]:
        problem = first["problems"][0]
        assert problem.startswith(".batchrun/artifacts/outputs/") and ".jsonl:" in problem
    assert applied["failed"] == 0
    # A second apply has nothing to do.
    again = project.run_json("apply", JOB)
    assert again["submitted"] == 0 and executions(project) == ran


def test_damage_on_every_download_ends_in_failures_bounded_by_max_attempts(damaged):
    # The last 40 bytes of every output file are cut: each batch loses its last line.
    project = damaged(FileDamage("output", "truncated", bytes=40), max_attempts=2)
    result = project.run("apply", JOB, expect=3)
    applied = check("apply", project.run("apply", JOB, "--json", expect=3).stdout)
    ran = executions(project)
    failures = applied["jobs"]["tags"]["failures"]
    assert len(failures) == 1 and failures[0]["attempts"] == 2
    lost = failures[0]["key"]
    assert ran[lost] == 2                                # paid max_attempts times, no more
    reason = failures[0]["reason"]
    assert reason.startswith("unreadable: .batchrun/artifacts/outputs/")
    assert ".jsonl:3: invalid JSON" in reason and reason.endswith("(gave up after 2 attempts)")
    # Each of the three first batches lost one line; of those three sent again, one was lost
    # again. Every other request ran once, and every point but the one is written.
    assert sorted(ran.values()) == [1] * 27 + [2] * 3
    assert len(written(project)) == POINTS - 1
    assert "1 failed" in result.stdout and f"failed {lost[:12]}: unreadable" in result.stdout
    shown = project.run("show", "tags", "--failed").stdout.splitlines()
    assert shown[0] == "tags: 1 request failed for good (`apply --retry-failed` sends them again)"
    assert f"({lost[:12]}, 2 attempts): unreadable: .batchrun/artifacts/outputs/" in shown[1]
    listed = check("show", project.run("show", "tags", "--failed", "--json").stdout)["failures"]
    assert [f["key"] for f in listed] == [lost] and listed[0]["reason"] == reason
    project.run("apply", JOB, expect=3)            # failed for good: not sent again
    assert executions(project) == ran


def test_a_damaged_error_file_loses_only_the_failures_it_held(damaged):
    project = damaged(FileDamage("error", "html", batches=(1,)), max_attempts=4,
                      faults={"request_failure_rate": 0.3, "seed": 5})
    applied = project.run_json("apply", JOB, expect=None)
    first = project.emulator.batches_created()[0]
    collected = [c for c in applied["collected"] if c["batch_id"] == first["batch_id"]][0]
    assert collected["lines"]["unreadable"] == 7 and "damaged error file" in collected["note"]
    failed_first = collected["lines"]["retry"]
    assert failed_first >= 1
    ran = executions(project)
    # The answers of the output file are written and were paid for once.
    answered_first = [key for key in first["custom_ids"] if ran[key] == 1]
    assert len(answered_first) == 10 - failed_first
    failures = {f["key"] for f in applied["jobs"]["tags"]["failures"]}
    assert len(written(project)) + len(failures) == POINTS


def test_after_deleting_the_state_directory_the_damaged_batch_is_collected_again(damaged):
    """The issue's report: a cut first output file made every rerun fail the same way,
    even from an empty .batchrun/. Now the batches are adopted, the good lines written,
    and only the lost request is sent again."""
    project = damaged(FileDamage("output", "truncated", bytes=40, batches=(1,)))
    project.run("apply", JOB, "--no-wait")
    shutil.rmtree(project.root / ".batchrun")
    project.run("apply", JOB)
    ran = executions(project)
    assert written(project) == set(range(1, POINTS + 1))
    assert sorted(ran.values()) == [1] * 29 + [2]
