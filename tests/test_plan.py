"""plan says what apply would do and why, like terraform, and spends nothing."""

from __future__ import annotations

import time

from conftest import cancel_midway, http_project_for
from emulator_fixtures import FakeClock

from runner.emulator import EmulatorConfig, Faults

JOB = "jobs/tags.yaml"


def test_a_new_job_is_marked_new_with_its_estimate_and_a_closing_line(project):
    project.seed(20)
    out = project.run("plan", JOB).stdout.splitlines()
    assert out[0] == "+ tags (jobs/tags.yaml): 20 matched — 20 to submit"
    assert out[1] == "    why: new job (never applied); 20 new points"
    assert out[2].startswith("    estimate: ") and "(estimate)" in out[2]
    assert out[-1].startswith("Plan: 1 job, 20 requests, ~$") and out[-1].endswith("(estimate).")


def test_plan_spends_nothing_and_writes_nothing(http_project):
    http_project.seed(20)
    http_project.run("plan", JOB)
    assert http_project.emulator.counting.calls == {}
    assert not any("llm_tags" in p for p in http_project.payloads().values())


def test_an_up_to_date_job_is_marked_equal(project):
    project.seed(20)
    project.run("apply", JOB)
    out = project.run("plan", JOB).stdout.splitlines()
    assert out == ["= tags (jobs/tags.yaml): 20 matched, all up to date",
                   "Plan: nothing to do; 1 job up to date."]


def test_the_reasons_name_what_changed_in_the_spec_with_a_template_diff(project):
    project.seed(20)
    project.run("apply", JOB)
    project.edit(JOB, "model: gpt-4o-mini", "model: gpt-4.1-mini")
    project.edit(JOB, "temperature: 0,", "temperature: 0.5,")
    project.edit("prompts/tags.user.j2", "Channel: {{ channel_title }}", "By: {{ channel_title }}")
    text = project.run("plan", JOB).stdout
    assert text.splitlines()[0] == "~ tags (jobs/tags.yaml): 20 matched — 20 to submit"
    assert ("    why: model gpt-4o-mini → gpt-4.1-mini; params.temperature 0 → 0.5; "
            "template prompts/tags.user.j2 changed") in text
    assert "        -Channel: {{ channel_title }}\n        +By: {{ channel_title }}" in text
    reasons = project.run_json("plan", JOB)["jobs"]["tags"]["reasons"]
    assert reasons == ["model gpt-4o-mini → gpt-4.1-mini", "params.temperature 0 → 0.5",
                       "template prompts/tags.user.j2 changed"]


def test_changed_and_new_points_are_counted_separately(project):
    project.seed(20)
    project.run("apply", JOB)
    with project.qdrant() as client:
        client.set_payload("videos", {"title": "changed"}, [3, 4])
    project.seed(2, start=20)
    reasons = project.run_json("plan", JOB)["jobs"]["tags"]["reasons"]
    assert reasons == ["2 new points: 21, 22", "2 points changed: 3, 4",
                       "title changed on 2 points: 3, 4"]


def test_failed_attempts_waiting_for_a_retry_are_a_reason(http_project):
    http_project.seed(30)
    http_project.emulator.emulator.faults = Faults(seed=1, request_failure_rate=0.3)
    http_project.run("apply", JOB, "--no-wait")
    http_project.run("collect", JOB)
    plan = http_project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] > 0
    assert f"{plan['to_submit']} failed attempts to retry" in plan["reasons"]


def test_detailed_exitcode_is_0_when_nothing_to_do_2_when_pending_1_on_error(project):
    project.seed(10)
    assert project.run("plan", JOB, "--detailed-exitcode", expect=2).exit_code == 2
    assert project.run("plan", JOB, expect=0).exit_code == 0
    project.run("apply", JOB)
    project.run("plan", JOB, "--detailed-exitcode", expect=0)
    project.edit(JOB, "model: gpt-4o-mini", "modle: gpt-4o-mini")
    project.run("plan", JOB, "--detailed-exitcode", expect=1)


def test_a_symlinked_spec_is_named_as_the_user_names_it(project):
    # The repository's demo links jobs/tags.yaml into the starter project.
    project.seed(3)
    real = project.root / "starter" / "tags.yaml"
    real.parent.mkdir()
    (project.root / JOB).rename(real)
    (project.root / JOB).symlink_to("../starter/tags.yaml")
    assert "tags (jobs/tags.yaml): 3 matched" in project.run("plan", JOB).stdout


def test_requests_a_cancelled_batch_never_ran_are_a_reason_of_their_own(serve_emulator,
                                                                         tmp_path, api_key):
    clock = FakeClock(time.time())
    emulator = serve_emulator(EmulatorConfig(validating_seconds=0.1, seconds_per_request=0.2),
                              clock=clock)
    project = http_project_for(tmp_path / "p", emulator)
    project.seed(20)
    cancel_midway(project, clock)                # 5 requests run, then the batch stops
    reasons = project.run_json("plan", JOB)["jobs"]["tags"]["reasons"]
    assert any(r.endswith("never ran (their batch expired, was cancelled or found the queue "
                          "full)") for r in reasons)
    assert not any("failed attempts" in r for r in reasons)
