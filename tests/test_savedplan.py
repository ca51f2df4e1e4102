"""Saved plans for review in CI (terraform's `plan -out`): `plan -o plan.json`, then
`apply plan.json` applies exactly what was reviewed, or refuses, before anything is sent,
saying what changed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from test_guidance import SUMMARY

JOB = "jobs/tags.yaml"
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "saved-plan.schema.json"


def saved(project) -> dict:
    return json.loads((project.root / "plan.json").read_text())


def test_a_saved_plan_is_applied_exactly_and_then_is_spent(http_project):
    http_project.seed(20)
    out = http_project.run("plan", "-o", "plan.json").stdout.splitlines()
    assert out[-1].startswith("Saved this plan to plan.json: `batchrun apply plan.json`")
    data = saved(http_project)
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    jsonschema.validate(data["plan"], json.loads(
        (SCHEMA.parent / "output" / "plan.schema.json").read_text()))
    assert data["jobs"]["tags"]["requests"] == 20 and data["paths"] == []
    assert data["plan"]["jobs"]["tags"]["to_submit"] == 20       # what the reviewer saw
    http_project.run("apply", "plan.json")
    assert len(http_project.emulator.sent_keys()) == 20
    again = http_project.run("apply", "plan.json", expect=1)   # what it showed is done
    assert "this plan has been applied already: every job it covers is up to date" \
        in again.stderr
    assert len(http_project.emulator.sent_keys()) == 20


def test_data_changed_since_the_plan_refuses_and_sends_nothing(http_project):
    http_project.seed(20)
    http_project.run("plan", JOB, "-o", "plan.json")
    with http_project.qdrant() as client:
        client.set_payload("videos", {"title": "edited after review"}, [7])
    result = http_project.run("apply", "plan.json", expect=1)
    assert result.stderr.startswith("Error: plan.json: the specs or the data changed since "
                                    "this plan was made, so apply would not do what was "
                                    "reviewed: tags: it would send other requests than the "
                                    "plan (as many, 20): the data they are rendered from "
                                    "changed")
    assert "hint: plan again (`batchrun plan -o plan.json`), review it, and apply that; " \
           "nothing was sent" in result.stderr
    http_project.seed(1, start=20)
    result = http_project.run("apply", "plan.json", expect=1)
    assert "tags: it would send 21 requests, the plan 20 (new now: " in result.stderr
    assert http_project.emulator.counting.posts() == 0
    assert not any("llm_tags" in p for p in http_project.payloads().values())


def test_a_spec_changed_since_the_plan_refuses_naming_the_change(project):
    project.seed(5)
    project.run("plan", "-o", "plan.json")
    project.edit(JOB, "model: gpt-4o-mini", "model: gpt-4.1-mini")
    result = project.run("apply", "plan.json", expect=1)
    assert "tags: its spec changed (model gpt-4o-mini → gpt-4.1-mini)" in result.stderr
    project.edit(JOB, "model: gpt-4.1-mini", "model: gpt-4o-mini")
    project.run("apply", "plan.json")                 # reverted: what was reviewed again


def test_a_job_added_to_the_folder_is_not_what_was_reviewed(project):
    project.seed(5)
    project.run("plan", "-o", "folder.json")
    project.run("plan", JOB, "-o", "one.json")
    project.write("jobs/summary.yaml", SUMMARY)
    result = project.run("apply", "folder.json", expect=1)
    assert "the plan covers tags, the specs now give summary, tags" in result.stderr
    project.run("apply", "one.json")              # named its job: still exactly that
    assert all("llm_summary" not in p for p in project.payloads().values())


def test_points_waiting_for_a_needed_job_are_sent_once_it_answers_as_planned(project):
    project.seed(5)
    project.write("jobs/summary.yaml", SUMMARY)
    project.run("plan", "-o", "plan.json")
    assert saved(project)["jobs"]["summary"]["unready"] == 5
    project.run("apply", "plan.json")
    assert all("llm_summary" in p for p in project.payloads().values())


def test_what_a_saved_plan_cannot_be_combined_with(project):
    project.seed(3)
    project.run("plan", "-o", "plan.json")
    assert "--force and --retry-failed would send other requests" in project.run(
        "apply", "plan.json", "--force", expect=1).stderr
    assert "a saved plan is applied alone" in project.run(
        "apply", "plan.json", JOB, expect=1).stderr
    (project.root / "other.json").write_text("{}")
    assert "other.json: not a saved plan of this batchrun" in project.run(
        "apply", "other.json", expect=1).stderr
    assert "missing.json: no such saved plan" in project.run(
        "apply", "missing.json", expect=1).stderr


def test_a_plan_for_another_provider_is_refused(project, tmp_path):
    project.seed(3)
    project.run("plan", "-o", "plan.json")
    data = saved(project)
    data["provider"] = "https://api.openai.com/v1"
    (project.root / "plan.json").write_text(json.dumps(data))
    result = project.run("apply", "plan.json", expect=1)
    assert "the plan was made for https://api.openai.com/v1, and the provider is now " \
           "emulator" in result.stderr
