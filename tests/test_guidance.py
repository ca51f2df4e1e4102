"""What a user trying batchrun for the first time runs into, and what batchrun says then
(found by following the README alone): every case ends in a message that says what to do,
or a command that finishes."""

from __future__ import annotations

import subprocess
import sys

from runner.emulator import Faults

JOB = "jobs/tags.yaml"

SUMMARY = """\
name: summary
needs: [tags]
source:
  collection: videos
  fields: [title, llm_tags]
prompt:
  user: "Summarise {{ title }} ({{ llm_tags.category }})"
model: gpt-4o-mini
params: {max_tokens: 40}
output:
  key: llm_summary
  fields:
    line: {type: string}
"""


def test_one_job_named_on_the_command_line_brings_the_jobs_it_needs(project):
    project.seed(6)
    project.write("jobs/summary.yaml", SUMMARY)
    plan = project.run("plan", "jobs/summary.yaml").stdout
    assert "+ tags (jobs/tags.yaml)" in plan and "+ summary (jobs/summary.yaml)" in plan
    project.run("apply", "jobs/summary.yaml")
    assert all("llm_summary" in p for p in project.payloads().values())


def test_a_prompt_path_with_an_unusual_ending_is_a_file_not_the_prompt_text(project):
    project.edit(JOB, "user: prompts/tags.user.j2", "user: prompts/tags.user")
    result = project.run("validate", JOB, expect=1)
    assert "prompts/tags.user" in result.stderr and "Traceback" not in result.stderr
    (project.root / "prompts" / "tags.user.j2").rename(project.root / "prompts" / "tags.user")
    project.run("validate", JOB)                # the file, whatever its ending


def test_a_filter_that_selects_nothing_says_where_to_look(project):
    project.seed(6)
    project.edit(JOB, "[US, GB, CA]", "[us]")
    plan = project.run("plan", JOB).stdout
    assert "! tags (jobs/tags.yaml): 0 matched — source.filter selects no point of 'videos' " \
           "(jobs/tags.yaml:" in plan
    assert "up to date" not in plan


def test_a_misspelt_model_gets_a_suggestion_not_a_request_for_its_price(project):
    project.seed(3)
    project.edit(JOB, "model: gpt-4o-mini", "model: gpt-4o-mni")
    assert "did you mean gpt-4o-mini?" in project.run("plan", JOB).stdout


def test_show_failed_names_the_points_and_how_many_more_there_are(http_project):
    http_project.seed(5)
    http_project.edit(JOB, "max_attempts: 3", "max_attempts: 1")
    http_project.emulator.emulator.faults = Faults(request_failure_rate=1.0)
    http_project.run("apply", JOB, expect=3)
    lines = http_project.run("show", "tags", "--failed", "--limit", "2").stdout.splitlines()
    assert lines[0] == "tags: 5 requests failed for good (`apply --retry-failed` sends them again)"
    assert lines[1].startswith("  point 1 (") and ", 1 attempt): http 5" in lines[1]
    assert lines[-1] == "  … 3 more (--limit N shows more)"
    http_project.edit("prompts/tags.user.j2", "Title:", "Video title:")   # new requests
    http_project.emulator.emulator.faults = Faults()
    http_project.run("apply", JOB)
    assert http_project.run("show", "tags", "--failed").stdout.strip() == \
        "tags: no failed requests"                # the old requests are no longer made


def test_status_watch_ends_when_every_batch_has_finished(http_project):
    http_project.seed(5)
    http_project.run("apply", JOB, "--no-wait")   # instant: finished at the provider
    watched = http_project.run("status", "--watch")
    assert "completed" in watched.stdout
    assert watched.stdout.rstrip().endswith("-")   # a finished batch does not expire


def test_a_reader_that_stops_early_is_no_bug(project):
    """`batchrun render tags --sample 100 | head -1`: the rest cannot be written, and that
    is the reader's choice, not an internal error (100 lines are more than a pipe holds)."""
    project.seed(120)
    process = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "-C", str(project.root), "render", "tags",
         "--sample", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().startswith(b"{")
    process.stdout.close()                     # the reader leaves
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 141 and "internal error" not in stderr, stderr
    assert not (project.root / ".batchrun" / "logs").exists()
