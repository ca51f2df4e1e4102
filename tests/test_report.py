"""`batchrun report` and `--report` (issue 16): the page's data comes from what batchrun
keeps — the plan's counts, the spec, the ledger's failures and batches, the points in
Qdrant — and the command that writes it reads only, like `plan`. The page in a browser:
tests/test_report_browser.py."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import GeneratorType

import jsonschema
import pytest
from conftest import Project
from qdrant_client import models

from runner.emulator import Faults
from runner.jobs import load_jobs
from runner.lock import StateLock
from runner.progress import Reporter
from runner.project import load_project
from runner.report import FIRST_RUN, report_data
from runner.workspace import Workspace

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "output"
PLAN_COUNTS = ("matched", "up_to_date", "cached", "in_flight", "waiting", "failed", "unready",
               "to_submit", "requests", "render_errors")


def valid(name: str, output: str) -> dict:
    data = json.loads(output)
    jsonschema.validate(data, json.loads((SCHEMAS / f"{name}.schema.json").read_text()))
    return data


@contextlib.contextmanager
def workspace(project: Project) -> Iterator[Workspace]:
    """The workspace a command in the project opens (all its jobs, no progress)."""
    context = load_project(project.root)
    ws = Workspace(context, load_jobs([], context, project.root), Reporter(quiet=True))
    try:
        yield ws
    finally:
        ws.close()


def ledger_dump(project: Project) -> list[str]:
    db = sqlite3.connect(project.state / "state.db")
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture
def applied(http_project: Project) -> Project:
    """40 points applied over HTTP, one attempt each, a fifth of the requests failing."""
    http_project.seed(40)
    http_project.edit("jobs/tags.yaml", "max_attempts: 3", "max_attempts: 1")
    http_project.emulator.emulator.faults = Faults(seed=4, request_failure_rate=0.2)
    http_project.run("apply", expect=3)
    return http_project


def test_the_report_counts_what_plan_json_counts(applied):
    plan = applied.run_json("plan")["jobs"]["tags"]
    assert plan["failed"] > 0 and plan["up_to_date"] > 0
    out = valid("report", applied.run("report", "--json").stdout)
    assert {k: out["jobs"]["tags"][k] for k in PLAN_COUNTS} == {k: plan[k] for k in PLAN_COUNTS}
    assert out["jobs"]["tags"]["rows"] == 40
    page = Path(out["path"])
    assert page == applied.root / "report.html" and page.stat().st_size == out["bytes"]


def test_the_report_takes_every_failure_and_batch_from_the_ledger(applied):
    failed = applied.run_json("show", "tags", "--failed", "--limit", "1000")["failures"]
    costs = applied.run_json("costs")["total"]
    written = applied.payloads()
    with workspace(applied) as ws:
        data = report_data(ws, ws.plan())
        [job] = data.jobs
        assert isinstance(job.points, GeneratorType)      # streamed from Qdrant, not a list
        failures = list(job.failures)
        assert [(f.key, f.reason, f.point_ids[0]) for f in failures] == \
            [(f["key"], f["reason"], f["point"]) for f in failed]
        collected = [b for b in data.batches if b.tokens is not None]
        assert len(collected) == costs["batches"] > 0
        assert sum(b.tokens.input for b in collected) == costs["tokens"]["input"]
        assert sum(b.tokens.output for b in collected) == costs["tokens"]["output"]
        # exact in the ledger; the manifest that `costs` sums rounds each batch to 1e-8
        spent = sum((b.cost_usd for b in collected if b.cost_usd is not None), Decimal(0))
        assert abs(spent - Decimal(str(costs["cost_usd"]))) <= Decimal("1e-8") * len(collected)
        assert spent > 0
        assert {b.provider for b in data.batches} == {ws.ledger.provider}
        points = {point_id: result for point_id, _, result in job.points}
        assert points == {i: written[i].get("llm_tags") for i in written}
        assert list(job.input_fields) == ["title", "channel_title", "category", "tags",
                                          "description"]


def test_points_that_cannot_be_rendered_are_reported_where_plan_strict_refuses(applied):
    with applied.qdrant() as client:
        client.upsert("videos", points=[models.PointStruct(
            id=1000, vector={}, payload={"region": "US", "channel_title": "no title"})])
    assert "payload field 'title' is missing" in applied.run("plan", "--strict", expect=1).stderr
    out = valid("report", applied.run("report", "--json").stdout)
    assert sum(out["jobs"]["tags"]["render_errors"].values()) == 1
    with workspace(applied) as ws:
        [job] = report_data(ws, ws.plan()).jobs
        [error] = job.render_errors
        assert (error.where, error.point_ids, error.point_count) == \
            ("prompts/tags.user.j2:1", [1000], 1)
        assert "payload field 'title' is missing" in error.reason
        assert job.counts.unrenderable == 1 and job.counts.matched == 41


def test_the_report_says_what_changed_since_the_last_apply_as_plan_does(project):
    project.seed(6)
    project.run("apply")
    project.edit("prompts/tags.user.j2", "Title: {{ title }}", "Video title: {{ title }}")
    reasons = project.run_json("plan")["jobs"]["tags"]["reasons"]
    with workspace(project) as ws:
        [job] = report_data(ws, ws.plan()).jobs
    assert list(job.changes) == [*reasons, "    -Title: {{ title }}",
                                 "    +Video title: {{ title }}"]
    assert reasons == ["template prompts/tags.user.j2 changed"]


def test_apply_report_says_what_that_run_changed(project):
    project.seed(6)
    first = valid("apply", project.run("apply", "--report", "--json").stdout)
    html = Path(first["report"]["path"]).read_text(encoding="utf-8")
    assert f"<li>{FIRST_RUN}</li>" in html
    project.edit("jobs/tags.yaml", "max_tokens: 200", "max_tokens: 300")
    text = project.run("apply", "--report=after.html").stdout
    assert text.splitlines()[-1].startswith(f"Report: {project.root / 'after.html'} (")
    html = (project.root / "after.html").read_text(encoding="utf-8")
    assert "<li>params.max_tokens 200 → 300</li>" in html
    assert project.run_json("plan")["jobs"]["tags"]["reasons"] == []   # applied: nothing left


def test_costs_report_writes_the_page_and_says_where(project):
    project.seed(5)
    project.run("apply")
    out = valid("costs", project.run("costs", "--report", "--json").stdout)
    assert out["report"]["path"] == str(project.root / "report.html")
    assert Path(out["report"]["path"]).stat().st_size == out["report"]["bytes"]
    assert "Report: " in project.run("costs", "--report", "c.html").stdout
    assert (project.root / "c.html").is_file()


def test_the_report_reads_only_so_it_runs_while_an_apply_holds_the_lock(applied):
    before, manifest = ledger_dump(applied), applied.manifest()
    lock = StateLock(applied.state)
    lock.acquire(command="apply")
    try:
        assert "another batchrun is using" in applied.run("apply", expect=1).stderr
        applied.run("report", "-o", "during.html")
    finally:
        lock.release()
    assert (applied.root / "during.html").is_file()
    assert ledger_dump(applied) == before and applied.manifest() == manifest


def test_a_job_path_after_report_is_refused_not_taken_for_the_page(project):
    project.seed(3)
    spec = (project.root / "jobs" / "tags.yaml").read_text()
    refused = project.run("apply", "--report", "jobs/tags.yaml", expect=2)
    assert "jobs/tags.yaml is a job spec, not where to write the report" in refused.stderr
    assert (project.root / "jobs" / "tags.yaml").read_text() == spec
    assert project.run_json("plan")["jobs"]["tags"]["to_submit"] == 3   # nothing ran


def test_a_report_into_a_missing_folder_says_so(project):
    project.seed(3)
    missing = project.run("report", "-o", "out/report.html", expect=1)
    assert "no such folder for the report" in missing.stderr
    assert "out/report.html" in missing.stderr
