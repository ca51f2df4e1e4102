"""What a rerun sends, for every way the previous run can have been left: intents packed
for a spec that has changed since, an upload whose id was never recorded, results to
retry or force, budgets over several jobs and waves, a job that needs another, a batch
collected by another job's command, a cleaned artifacts folder."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import time
from decimal import Decimal

import pytest
from conftest import SLOW, sharded_project, wait_until

from runner.budget import Budget
from runner.emulator import Faults
from runner.errors import BudgetExceeded
from runner.estimate import CostRange, Estimate
from runner.jobs import load_jobs
from runner.ledger import Ledger
from runner.project import load_project
from runner.reconcile import JobPlan
from runner.records import Result
from runner.select import Selection
from runner.writeback import Writer, stamp_key

JOB = "jobs/tags.yaml"

BRIEF = """\
name: brief
needs: [tags]
source:
  collection: videos
  fields: [title, llm_tags]
prompt:
  user: "One line about {{ title }}, a {{ llm_tags.category }} video."
model: gpt-4o-mini
endpoint: /v1/chat/completions
params: {max_tokens: 40}
output:
  key: llm_brief
  fields:
    line: {type: string}
"""


pytestmark = pytest.mark.usefixtures("api_key")


def new_project(root, emulator, points=30, shard=10):
    return sharded_project(root, emulator, points, shard)


def uploads(emulator) -> int:
    return sum(n for (method, path), n in emulator.counting.calls.items()
               if (method, path) == ("POST", "/v1/files"))


def executions(emulator) -> dict[str, list[str]]:
    history: dict[str, list[str]] = {}
    for event in emulator.emulator.log.events:
        if event["event"] == "request_executed":
            history.setdefault(event["custom_id"], []).append(event["outcome"])
    return history


def written(project, key="llm_tags") -> int:
    return sum(key in p for p in project.payloads().values())


def backing_off(project, for_at_least: float) -> int:
    """Requests the ledger holds back for at least `for_at_least` more seconds (read while
    an apply may be writing it; never written here)."""
    ledger = project.state / "state.db"
    if not ledger.exists():
        return 0
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM requests WHERE state='retry' "
                              "AND not_before > ?", (time.time() + for_at_least,)).fetchone()[0]
        except sqlite3.OperationalError:   # apply is still creating it
            return 0


# ---- intents left by an earlier run ---------------------------------------------------

def test_shards_prepared_for_an_old_template_are_never_sent(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    project.run("prepare", JOB)                         # packed, recorded, not sent
    project.edit("prompts/tags.user.j2", "Title:", "Video title:")
    wanted = set()
    project.run("apply", JOB)
    for event in emulator.batches_created():
        wanted.update(event["custom_ids"])
    stamps = {p[stamp_key("tags")]["key"] for p in project.payloads().values()}
    assert wanted == stamps and len(stamps) == 30       # only the new template's requests
    assert len(emulator.batches_created()) == 3


def test_shards_prepared_and_unchanged_are_sent_once_and_uploaded_once(serve_emulator,
                                                                       tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    prepared = project.run("prepare", JOB).stdout
    assert "Prepared 3 shards" in prepared and uploads(emulator) == 0
    project.run("apply", JOB)
    assert len(emulator.batches_created()) == 3 and uploads(emulator) == 3
    assert written(project) == 30


def test_an_upload_whose_id_was_never_recorded_is_found_not_repeated(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    killed = project.spawn("apply", JOB, crash_at="upload-unrecorded")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert uploads(emulator) == 1
    project.run("apply", JOB)
    assert uploads(emulator) == 3                       # the first upload was reused
    assert len(emulator.batches_created()) == 3 and written(project) == 30


# ---- --retry-failed and --force ---------------------------------------------------------

def test_retry_failed_gives_each_failed_request_a_fresh_set_of_attempts(serve_emulator,
                                                                        tmp_path):
    emulator = serve_emulator(faults=Faults(request_failure_rate=1.0))
    project = new_project(tmp_path / "p", emulator, points=5)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 2")
    project.run("apply", JOB, expect=3)
    assert all(len(o) == 2 for o in executions(emulator).values())
    project.run("apply", JOB, expect=3)                # failed for good: not sent again
    assert all(len(o) == 2 for o in executions(emulator).values())
    project.run("apply", JOB, "--retry-failed", expect=3)
    assert all(len(o) == 4 for o in executions(emulator).values())   # two more, not one
    emulator.emulator.faults = Faults()
    result = project.run_json("apply", JOB, "--retry-failed")
    assert result["failed"] == 0 and written(project) == 5
    assert project.run_json("status")["failures"] == []


def test_force_resends_every_request_once_even_in_waves(serve_emulator, tmp_path):
    emulator = serve_emulator(SLOW, faults=Faults(enqueued_token_limit=6_000))
    project = new_project(tmp_path / "p", emulator)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 3\n  max_enqueued_tokens: 6000")
    project.run("apply", JOB)
    first = {p[stamp_key("tags")]["batch"] for p in project.payloads().values()}
    result = project.run_json("apply", JOB, "--force")
    assert result["jobs"]["tags"]["sent"] == 30 and result["jobs"]["tags"]["written"] == 30
    assert all(len(o) == 2 for o in executions(emulator).values())
    again = {p[stamp_key("tags")]["batch"] for p in project.payloads().values()}
    assert not first & again                            # every point has the new answer
    assert project.run_json("apply", JOB)["jobs"]["tags"]["sent"] == 0


def test_force_awaits_batches_already_in_flight_instead_of_paying_for_them_again(
        serve_emulator, tmp_path):
    emulator = serve_emulator(SLOW)
    project = new_project(tmp_path / "p", emulator)
    project.run("apply", JOB, "--no-wait")
    project.run("apply", JOB, "--force")
    assert all(len(o) == 1 for o in executions(emulator).values()) and written(project) == 30
    project.run("apply", JOB, "--force")                # nothing in flight now: all resent
    assert all(len(o) == 2 for o in executions(emulator).values())


# ---- budgets --------------------------------------------------------------------------

def two_jobs(project, same_requests=False):
    """A second job, `titles`, like `tags`; with `same_requests`, its requests are the same
    (the schema name is part of the request)."""
    text = (project.root / JOB).read_text()
    project.write("jobs/titles.yaml", text.replace("name: tags", "name: titles").replace(
        "key: llm_tags", "key: llm_titles" + ("\n  name: tags" if same_requests else "")))


def test_a_job_over_its_budget_is_refused_and_the_others_still_run(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    two_jobs(project)
    project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: 0.0001")
    result = project.run("apply", expect=1)
    assert "tags: not run (refused, see the error below)" in result.stdout
    assert "Error: jobs/tags.yaml:" in result.stderr and "budget.max_cost_usd" in result.stderr
    assert written(project, "llm_titles") == 30 and written(project, "llm_tags") == 0
    refused = project.run_json("apply", expect=1)
    assert refused["refused"] == ["tags"] and "budget" in refused["jobs"]["tags"]["refused"]


def test_max_cost_covers_all_jobs_of_the_run_together(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    two_jobs(project)
    one_job = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]["cost_usd_high"]
    # room for one job's upper estimate, not two
    result = project.run("apply", "--max-cost", f"{one_job * 1.5:.6f}", expect=1)
    assert "over what is left of this run's --max-cost" in result.stderr
    assert len(emulator.batches_created()) == 3         # the first job only


def test_a_budget_counts_the_waves_held_back_by_the_queue_limit(serve_emulator, tmp_path):
    emulator = serve_emulator(faults=Faults(enqueued_token_limit=6_000))
    project = new_project(tmp_path / "p", emulator)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 3\n  max_enqueued_tokens: 6000")
    everything = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]
    assert everything["requests"] == 30                 # a plan shows every wave
    budget = everything["cost_usd_high"] * 0.7          # more than one wave, less than all
    project.edit(JOB, "max_cost_usd: 1.00", f"max_cost_usd: {budget:.6f}")
    result = project.run("apply", JOB, expect=1)
    assert "30 requests are estimated" in result.stderr
    assert uploads(emulator) == 0 and not emulator.batches_created()


def test_a_retry_pass_over_budget_stops_the_job_instead_of_looping(serve_emulator, tmp_path):
    def over_budget_retries(name):
        emulator = serve_emulator(faults=Faults(seed=1, request_failure_rate=0.5))
        project = new_project(tmp_path / name, emulator)
        high = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]["cost_usd_high"]
        project.edit(JOB, "max_cost_usd: 1.00", f"max_cost_usd: {high * 1.2:.6f}")
        return project

    result = over_budget_retries("json").run_json("apply", JOB, expect=1)   # it returns
    tags = result["jobs"]["tags"]
    assert tags["sent"] == 30 and 0 < tags["waiting"] < 30
    assert "budget" in tags["refused"] and result["refused"] == ["tags"]
    text = over_budget_retries("text").run("apply", JOB, expect=1)
    assert "30 requests sent in 3 batches" in text.stdout
    assert "then stopped by its budget (see the error below)" in text.stdout
    assert "Error: jobs/tags.yaml:" in text.stderr


def test_a_job_stopped_by_its_budget_releases_the_room_its_waves_reserved(project):
    two_jobs(project)
    project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: 6")
    project.edit("jobs/titles.yaml", "max_cost_usd: 1.00", "max_cost_usd: 100")
    tags, titles = load_jobs([], load_project(project.root), project.root)
    dollars = Budget(10, lambda job, e: CostRange(Decimal(e.input_tokens),
                                                  Decimal(e.input_tokens), None))

    def plan(name, packed, held):
        return JobPlan(name, requests=packed, estimate=Estimate(packed, packed),
                       held_back=Estimate(held, held))

    dollars.charge(tags, plan("tags", 2, 4))        # $2 sent, $4 reserved for its waves
    with pytest.raises(BudgetExceeded):
        dollars.charge(titles, plan("titles", 5, 0))    # 2 + 4 + 5 > 10
    with pytest.raises(BudgetExceeded):
        dollars.charge(tags, plan("tags", 3, 4))    # retries: 2 + 7 > its own 6; it stops
    dollars.charge(titles, plan("titles", 5, 0))    # its reservation is gone: 2 + 5 <= 10


def test_force_after_the_ledger_was_lost_still_resends_everything(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=10)
    project.run("apply", JOB)
    shutil.rmtree(project.state)                    # a CI runner without the cache
    project.run("apply", JOB, "--force")            # adopts yesterday's batches, resends
    assert all(len(o) == 2 for o in executions(emulator).values())


# ---- jobs that share requests -----------------------------------------------------------

def test_a_request_in_a_shard_another_job_prepared_is_not_waited_for(serve_emulator,
                                                                    tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=10)
    two_jobs(project, same_requests=True)
    project.run("prepare")                       # tags packs the shared requests
    result = project.run("apply", "jobs/titles.yaml")   # returns, and says what to do
    assert "wait for a shard another job prepared: `batchrun submit` sends it" in result.stdout
    assert not emulator.batches_created()
    project.run("submit")
    project.run("apply")
    assert written(project) == 10 and written(project, "llm_titles") == 10
    assert len(emulator.sent_keys()) == 10                # each shared request sent once


def test_requests_a_later_job_drops_from_its_old_shard_are_sent_in_the_same_run(
        serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=10)
    text = (project.root / JOB).read_text()
    project.write("jobs/alpha.yaml", text.replace("name: tags", "name: alpha")   # runs first
                  .replace("key: llm_tags", "key: llm_alpha\n  name: tags"))    # same requests
    project.run("prepare", JOB)                   # tags packs the shared requests
    project.edit(JOB, "match: {any: [US, GB, CA]}", "match: {any: [FR]}")   # tags needs none
    result = project.run_json("apply")
    assert result["jobs"]["alpha"]["sent"] == 10 and written(project, "llm_alpha") == 10
    assert not result["stalled"]


def test_retry_failed_reaches_a_request_another_job_sent_first(serve_emulator, tmp_path):
    emulator = serve_emulator(faults=Faults(request_failure_rate=1.0))
    project = new_project(tmp_path / "p", emulator, points=5)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 1")
    two_jobs(project, same_requests=True)
    project.run("apply", expect=3)
    failures = project.run_json("show", "titles", "--failed", expect=None)["failures"]
    assert len(failures) == 5                    # recorded under tags, listed for titles too
    emulator.emulator.faults = Faults()
    result = project.run_json("apply", "jobs/titles.yaml", "--retry-failed")
    assert result["jobs"]["titles"]["sent"] == 5 and written(project, "llm_titles") == 5


# ---- jobs that need others ---------------------------------------------------------------

def test_a_job_that_needs_another_waits_for_its_answers(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=12)
    project.write("jobs/brief.yaml", BRIEF)
    plan = project.run_json("plan")["jobs"]["brief"]
    assert plan["unready"] == 12 and plan["to_submit"] == 0 and not plan["render_errors"]
    assert "12 waiting for tags" in project.run("plan").stdout
    project.run("apply")
    payloads = project.payloads().values()
    assert all("llm_tags" in p and "llm_brief" in p for p in payloads)
    assert project.run_json("plan")["pending"] is False


def test_points_the_needed_job_failed_on_are_skipped_not_fatal(serve_emulator, tmp_path):
    emulator = serve_emulator(faults=Faults(seed=5, request_failure_rate=0.5))
    project = new_project(tmp_path / "p", emulator, points=12)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 1")
    project.write("jobs/brief.yaml", BRIEF)
    result = project.run_json("apply", expect=3)
    tags_failed = result["jobs"]["tags"]["failed"]
    assert 0 < tags_failed < 12
    brief = result["jobs"]["brief"]
    assert brief["unready"] == tags_failed
    assert written(project, "llm_brief") + tags_failed + brief["failed"] == 12
    assert brief["up_to_date"] + brief["unready"] + brief["failed"] == 12


def test_a_prepared_shard_of_a_needing_job_takes_no_queue_room_from_the_needed_one(
        serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=12)
    project.write("jobs/brief.yaml", BRIEF)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 3\n  max_enqueued_tokens: 2000")
    project.run("apply")
    project.edit("prompts/tags.user.j2", "Title:", "Video title:")
    project.edit("jobs/brief.yaml", "One line about", "A line about")
    project.run("prepare")                        # brief's shard: prepared, never created
    result = project.run_json("apply")
    assert result["jobs"]["tags"]["sent"] == 12 and result["jobs"]["brief"]["sent"] == 12
    assert not result["stalled"] and result["in_flight"] == 0


def test_a_backoff_no_point_waits_for_keeps_no_apply_awake(serve_emulator, tmp_path):
    emulator = serve_emulator(faults=Faults(enqueued_token_limit=2_000))
    project = new_project(tmp_path / "p", emulator, points=10)
    # Polling once a second, apply backs off 4 s after the queue refuses its batch: time
    # enough to see the backoff in the ledger and kill apply before it sends again.
    project.write_config(provider={**project.provider, "poll_interval": 1.0})
    killed = project.spawn("apply", JOB)          # refused by the queue, backing off
    wait_until(lambda: backing_off(project, for_at_least=1.0) == 10,
               "10 requests backing off in the ledger")
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    project.write_config()
    emulator.emulator.faults = Faults()
    project.edit("prompts/tags.user.j2", "Title:", "Video title:")   # those requests: gone
    result = project.run_json("apply", JOB)
    assert result["jobs"]["tags"]["sent"] == 10 and written(project) == 10
    store = Ledger(project.state, emulator.url.rstrip("/"))
    stale = store.db.execute("SELECT COUNT(*) FROM requests WHERE state='retry' "
                             "AND not_before > 0").fetchone()[0]
    assert stale == 10                            # the old requests, backing off for no one,
    assert store.next_retry_time() is None        # give apply nothing to wait for
    store.close()


# ---- collection and artifacts ---------------------------------------------------------

def test_a_batch_is_judged_by_its_own_jobs_max_attempts_whoever_collects_it(
        serve_emulator, tmp_path):
    emulator = serve_emulator(faults=Faults(request_failure_rate=1.0))
    project = new_project(tmp_path / "p", emulator, points=5)
    two_jobs(project)
    project.edit(JOB, "max_attempts: 3", "max_attempts: 1")
    project.run("apply", JOB, "--no-wait")
    project.run("collect", "jobs/titles.yaml")          # collects tags' batch too
    failures = project.run_json("show", "tags", "--failed", expect=None)["failures"]
    assert len(failures) == 5 and all(f["attempts"] == 1 for f in failures)


def test_a_cleaned_artifacts_folder_is_refetched_from_the_provider(serve_emulator, tmp_path):
    emulator = serve_emulator(SLOW)
    project = new_project(tmp_path / "p", emulator)
    project.run("apply", JOB, "--no-wait")
    shutil.rmtree(project.state / "artifacts")
    project.run("apply", JOB)
    assert written(project) == 30 and len(emulator.batches_created()) == 3


def test_cancel_skips_batches_that_finished_meanwhile(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator)
    project.run("apply", JOB, "--no-wait")              # instant: finished at the provider
    result = project.run_json("cancel", JOB)
    assert result["cancelled"] == [] and len(result["not_cancelled"]) == 3
    assert "Cannot cancel a batch with status 'completed'" in result["not_cancelled"][0]
    project.run("apply", JOB)
    assert written(project) == 30


# ---- plan ------------------------------------------------------------------------------

def test_results_waiting_in_the_cache_are_work_for_plan(serve_emulator, tmp_path):
    emulator = serve_emulator()
    project = new_project(tmp_path / "p", emulator, points=10)
    project.run("apply", JOB)
    with project.qdrant() as client:
        client.delete_payload("videos", ["llm_tags", stamp_key("tags")], list(range(1, 11)))
    plan = project.run("plan", JOB, "--detailed-exitcode", expect=2)
    assert "10 to write from the result cache" in plan.stdout
    assert project.run_json("apply", JOB)["jobs"]["tags"]["sent"] == 0
    assert written(project) == 10
    project.run("plan", JOB, "--detailed-exitcode", expect=0)


def test_points_deleted_while_their_requests_were_out_are_let_go(project):
    # With a Qdrant server, points can be deleted during the hours a batch takes; the
    # write-back of the others must go through (embedded Qdrant is ours alone meanwhile,
    # so the deletion happens here between buffering the writes and sending them).
    project.seed(6)
    job = load_jobs([JOB], load_project(project.root), project.root)[0]
    with project.qdrant() as client:
        writer = Writer(client, job, write_batch=100)
        for point in Selection(client, job, page=100).points():
            writer.result(point.id, Result(f"key{point.id}", "json", {"n": point.id}, "m", "b",
                                           "now"), "inputs", "emulator")
        client.delete("videos", [2, 5])
        assert writer.flush() == 4
    payloads = project.payloads()
    assert sorted(payloads) == [1, 3, 4, 6] and all("llm_tags" in p for p in payloads.values())


def test_every_command_that_locks_can_wait_for_the_lock(project):
    for command in ("apply", "prepare", "submit", "collect", "cancel", "demo"):
        assert "--lock-timeout SECONDS" in project.run(command, "--help").stdout, command


def test_a_ledger_of_a_development_version_is_refused_with_what_to_do(project):
    project.seed(3)
    project.state.mkdir(parents=True)
    db = sqlite3.connect(project.state / "state.db")
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', '1')")
    db.commit()
    db.close()
    refused = project.run("plan", JOB, expect=1)
    assert "written by a development version of batchrun (state schema 1)" in refused.stderr
    assert "move the folder away to start over" in refused.stderr
