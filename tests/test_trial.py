"""`batchrun try`: a job on a few points now, through the synchronous API over real HTTP,
its answers validated like batch answers, kept in the result cache so that apply does not
pay for them again, and its spend kept apart from batch spend."""

from __future__ import annotations

import io
import json

from rich.console import Console
from test_endpoints import RESPONSES_JOB
from test_guidance import SUMMARY

from runner.emulator import Faults, HttpFault
from runner.jobs import load_jobs
from runner.keys import request_key
from runner.project import load_project
from runner.select import Point
from runner.trial import CACHED, INVALID, OK, Trial, TrialPoint
from runner.trialview import try_table
from runner.writeback import stamp_key

JOB = "jobs/tags.yaml"
SELECTED = 30      # the first 30 sample videos are all from the US: all selected


def sync_keys(emulator) -> set[str]:
    """Request keys the emulator answered synchronously (no batch)."""
    batch = set(emulator.sent_keys())
    return {key for key in emulator.emulator.executions() if key not in batch}


def test_try_5_then_apply_sends_exactly_the_other_requests(http_project):
    http_project.seed(SELECTED)
    tried = http_project.run_json("try", "tags", "--sample", "5")
    assert [p["status"] for p in tried["points"]] == [OK] * 5 and tried["kept"] == 5
    keys = {p["custom_id"] for p in tried["points"]}
    assert sync_keys(http_project.emulator) == keys            # the very requests keyed
    assert not http_project.emulator.batches_created()
    applied = http_project.run_json("apply", JOB)["jobs"]["tags"]
    sent = http_project.emulator.sent_keys()
    assert len(sent) == SELECTED - 5 and not keys & set(sent)
    assert applied["written"] == SELECTED and applied["written_from_cache"] == 5
    stamps = {pid: p[stamp_key("tags")] for pid, p in http_project.payloads().items()}
    tried_ids = {p["id"] for p in tried["points"]}
    assert all(stamps[i]["via"] == "sync" and stamps[i]["price"] == "standard"
               and stamps[i]["batch"] is None for i in tried_ids)
    assert all("via" not in s and s["batch"] for i, s in stamps.items() if i not in tried_ids)


def test_try_shows_inputs_beside_answers_and_what_it_cost(http_project):
    http_project.seed(10)
    result = http_project.run("try", "tags", "--id", "4", "--id", "2")
    out = result.stdout.splitlines()
    assert out[0].startswith("point 4 (") and out[1].startswith("  title: ")
    answer = next(line for line in out if line.startswith("  → llm_tags: "))
    assert set(json.loads(answer.split(": ", 1)[1])) == {"topics", "category", "language"}
    assert any(line.startswith("point 2 (") for line in out)
    assert "sending 2 requests to " in result.stderr and "at standard prices (estimate)" \
        in result.stderr
    estimate = next(line for line in out if line.startswith("Estimate: 2 requests, "))
    assert "at standard prices (estimate); in a batch: ~$" in estimate
    assert next(line for line in out if line.startswith("Spent: 2 calls, ")).endswith(
        " at standard prices.")
    assert "Nothing was written to Qdrant (--write writes the valid answers)." in out
    assert not any("llm_tags" in p for p in http_project.payloads().values())


def test_spend_is_in_the_manifest_and_costs_apart_from_batches(http_project):
    http_project.seed(10)
    tried = http_project.run_json("try", "tags", "--sample", "3")
    sync = http_project.manifest()["jobs"]["tags"]["synchronous"]
    assert [(row["calls"], row["billed_calls"], row["price"]) for row in sync] == [
        (3, 3, "standard")]
    assert sync[0]["cost_usd"] == tried["spent"]["cost_usd"] > 0
    http_project.run("apply", JOB)
    report = http_project.run_json("costs")
    assert report["synchronous"]["total"]["calls"] == 3
    assert report["synchronous"]["groups"]["tags"]["cost_usd"] == tried["spent"]["cost_usd"]
    assert report["total"]["requests"] == 7          # the batches: the other 7 only
    text = http_project.run("costs").stdout
    assert "Synchronous calls (`batchrun try`), at standard prices" in text


def test_answers_already_cached_are_shown_not_bought_twice(http_project):
    http_project.seed(10)
    http_project.run("try", "tags")
    calls = sum(http_project.emulator.emulator.executions().values())
    again = http_project.run_json("try", "tags")
    assert [p["status"] for p in again["points"]] == [CACHED] * 5
    assert sum(http_project.emulator.emulator.executions().values()) == calls
    fresh = http_project.run_json("try", "tags", "--no-cache")
    assert [p["status"] for p in fresh["points"]] == [OK] * 5 and fresh["kept"] == 0
    assert sum(http_project.emulator.emulator.executions().values()) == calls + 5


def test_no_cache_keeps_nothing_so_apply_sends_every_point(http_project):
    http_project.seed(10)
    http_project.run("try", "tags", "--no-cache")
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == 10


def test_schema_failures_are_shown_with_their_reason_and_exit_3(http_project):
    http_project.seed(10)
    http_project.emulator.emulator.faults = Faults(invalid_json_rate=1.0)
    result = http_project.run("try", "tags", "--sample", "2", expect=3)
    failures = [line for line in result.stdout.splitlines() if line.startswith("  ✗ ")]
    assert len(failures) == 2 and all("llm_tags: invalid: invalid JSON" in f for f in failures)
    assert "2 points without a valid answer (✗ above)." in result.stdout
    data = http_project.run_json("try", "tags", "--sample", "2", expect=3)
    assert [p["status"] for p in data["points"]] == [INVALID] * 2 and data["kept"] == 0
    assert data["spent"]["billed"] == 2      # an unusable answer is still paid for


def test_max_cost_refuses_before_anything_is_sent(http_project):
    http_project.seed(10)
    result = http_project.run("try", "tags", "--max-cost", "0.000001", expect=1)
    assert "5 requests estimated at up to $" in result.stderr
    assert "at standard prices, over --max-cost $0.0000010; nothing was sent" in result.stderr
    assert http_project.emulator.counting.posts() == 0


def test_write_stamps_the_tried_points_so_apply_leaves_them(http_project):
    http_project.seed(10)
    tried = http_project.run_json("try", "tags", "--id", "3", "--write")
    assert tried["written"] == 1
    payload = http_project.payloads()[3]
    assert payload["llm_tags"] == tried["points"][0]["answer"]
    assert payload[stamp_key("tags")]["via"] == "sync"
    plan = http_project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["up_to_date"] == 1 and plan["to_submit"] == 9


def test_an_embeddings_job_and_a_responses_job_answer_at_once(http_project):
    http_project.seed(4)
    http_project.write("jobs/embed.yaml", """
name: embed
source: {collection: videos, fields: [title]}
prompt: {user: "{{ title }}"}
model: text-embedding-3-small
endpoint: /v1/embeddings
params: {dimensions: 64}
output: {key: title_vector}
""")
    http_project.write("jobs/mood.yaml", RESPONSES_JOB)
    vectors = http_project.run_json("try", "embed", "--sample", "2")
    assert all(len(p["answer"]) == 64 for p in vectors["points"])
    moods = http_project.run_json("try", "mood", "--sample", "2")
    assert all(p["answer"]["mood"] in ("happy", "sad", "neutral") for p in moods["points"])
    assert sync_keys(http_project.emulator) == {
        p["custom_id"] for p in vectors["points"] + moods["points"]}
    http_project.run("apply", "jobs/embed.yaml")
    assert len(http_project.emulator.sent_keys()) == 2    # the two not tried
    written = http_project.payloads()
    tried = vectors["points"][0]
    assert written[tried["id"]]["title_vector"] == tried["answer"]


def test_a_server_error_after_the_sdk_retries_is_a_failed_point(http_project):
    http_project.seed(3)
    http_project.emulator.emulator.faults = Faults(
        http=(HttpFault("POST /v1/chat/completions", 503, times=100),))
    data = http_project.run_json("try", "tags", "--id", "1", expect=3)
    assert data["points"][0]["status"] == "failed"
    assert data["points"][0]["reason"].startswith("http 503")
    assert data["spent"] == {"calls": 1, "billed": 0, "input_tokens": 0, "output_tokens": 0,
                             "cost_usd": 0.0, "price": "standard"}


def test_on_a_terminal_the_answers_are_a_table_beside_the_inputs(project):
    project.seed(3)
    job = load_jobs([JOB], load_project(project.root), project.root)[0]
    ok = TrialPoint(Point(1, {"title": "A song"}, None), None, OK,
                    answer={"category": "Music"})
    bad = TrialPoint(Point(2, {"title": "A talk"}, None), None, INVALID,
                     problem="schema: at /category: 'Talk' is not one of ['Music']")
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(try_table(Trial(job, [ok, bad])))
    text = console.export_text()
    assert "title: A song" in text and '"category": "Music"' in text
    assert "invalid: schema: at /category:" in text


def test_the_key_of_a_tried_request_is_the_key_apply_packs(http_project):
    http_project.seed(5)
    tried = http_project.run_json("try", "tags", "--id", "1")
    rendered = http_project.run_json("render", "tags", "--id", "1")["requests"][0]
    assert tried["points"][0]["custom_id"] == rendered["custom_id"] == request_key(
        rendered["endpoint"], rendered["body"])


def test_a_point_its_template_fails_on_is_shown_with_where_and_why(project):
    project.seed(3)
    project.write("jobs/summary.yaml", SUMMARY)
    data = project.run_json("try", "summary", "--id", "2", expect=3)
    (point,) = data["points"]
    assert point["status"] == "error" and point["custom_id"] is None
    assert point["reason"] == ("jobs/summary.yaml:7: prompt.user: payload field 'llm_tags' is "
                               "missing (it needs tags: apply that first)")
