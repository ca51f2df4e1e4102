"""A job answered by Azure OpenAI's Batch API through `openai.AzureOpenAI` (an endpoint, an
api-version, the api-key header, deployment names in place of model names) over HTTP to
the served emulator's Azure layout: plan, apply, rerun, k changes, costs, and exactly once
across a kill and a lost state directory (Azure batches carry metadata)."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
from conftest import API_KEY, SLOW, http_project_for
from provider_fixtures import AZURE_KEY, JOB, azure_project

from runner.emulator import EmulatorConfig

DEPLOYMENT = "tags-batch"


@pytest.fixture
def azure_emulator(serve_emulator):
    return serve_emulator(EmulatorConfig.instant(azure_deployments={DEPLOYMENT: "gpt-4o-mini"}))


def deployed(root, emulator, monkeypatch, **provider):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    project = azure_project(root, emulator, deployments={DEPLOYMENT: "gpt-4o-mini"}, **provider)
    project.edit(JOB, "model: gpt-4o-mini", f"model: {DEPLOYMENT}")
    return project


def test_plan_apply_and_rerun_through_the_azure_client(tmp_path, azure_emulator, monkeypatch):
    project = deployed(tmp_path / "project", azure_emulator, monkeypatch)
    project.seed(15)
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 15
    assert plan["estimate"]["cost_usd_low"] is not None   # priced as the deployment's model
    project.run("apply", JOB)
    assert len(azure_emulator.sent_keys()) == 15
    shard = next((project.state / "artifacts" / "shards").iterdir())
    line = json.loads(shard.read_text().splitlines()[0])
    assert line["url"] == "/chat/completions" and line["body"]["model"] == DEPLOYMENT
    for payload in project.payloads().values():
        assert payload["_batchrun_tags"]["provider"] == f"azure:{azure_emulator.url[:-3]}"
        assert payload["_batchrun_tags"]["model"] == "gpt-4o-mini-2024-07-18"
    assert project.run_json("apply", JOB)["submitted"] == 0
    with project.qdrant() as client:
        for point_id in (3, 9):
            client.set_payload("videos", {"title": f"Retitled {point_id}"}, [point_id])
    project.run("apply", JOB)
    assert len(azure_emulator.sent_keys()) == 17
    batch = project.manifest()["jobs"]["tags"]["batches"][0]
    assert batch["billed_model"] == "gpt-4o-mini-2024-07-18" and batch["cost_usd"] > 0
    assert project.run_json("costs")["total"]["unpriced_batches"] == 0


def test_the_same_job_on_azure_and_on_openai_is_two_requests(tmp_path, azure_emulator,
                                                            monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    openai_project = http_project_for(tmp_path / "openai", azure_emulator)
    azure = azure_project(tmp_path / "azure", azure_emulator)   # deployment gpt-4o-mini
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    for project in (openai_project, azure):
        project.seed(5)
        project.run("apply", JOB)
    keys = azure_emulator.sent_keys()
    assert len(keys) == 10 and len(set(keys)) == 10


def test_a_kill_after_create_and_a_lost_state_directory_never_pay_twice(tmp_path, serve_emulator,
                                                                        monkeypatch):
    emulator = serve_emulator(SLOW)
    project = azure_project(tmp_path / "project", emulator)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    project.seed(20)
    project.edit(JOB, "max_requests: 100", "max_requests: 10")
    killed = project.spawn("apply", JOB, crash_at="after-create")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    project.run("apply", JOB, "--no-wait")
    shutil.rmtree(project.root / ".batchrun")
    result = project.run("apply", JOB)
    assert "adopted batch" in result.stderr
    keys = emulator.sent_keys()
    assert len(keys) == 20 and len(set(keys)) == 20
    assert project.run_json("plan", JOB)["pending"] is False


def test_azure_needs_its_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    from conftest import Project
    project = Project(tmp_path / "project", {"name": "azure"})
    project.seed(2)
    refused = project.run("apply", JOB, expect=1)
    assert "provider azure needs its resource endpoint" in refused.stderr
    assert "AZURE_OPENAI_ENDPOINT" in refused.stderr


def test_batch_limits_are_the_providers(tmp_path, monkeypatch):
    from conftest import Project
    project = Project(tmp_path / "project", {"name": "azure", "base_url": "https://x.invalid"})
    project.edit(JOB, "max_requests: 100", "max_requests: 100000")
    project.run("validate", JOB)                        # Azure takes 100,000 per file
    project.write_config(provider={"name": "openai"})
    refused = project.run("validate", JOB, expect=1)
    assert "batch.max_requests 100,000 is over OpenAI's limit of 50,000 per batch" in \
        refused.stderr


def test_a_job_switched_from_openai_to_azure_is_sent_again_and_plan_says_why(
        tmp_path, azure_emulator, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    project = http_project_for(tmp_path / "project", azure_emulator)
    project.seed(6)
    project.run("apply", JOB)
    project.write_config(provider={"name": "azure", "base_url": azure_emulator.url[:-3],
                                   "poll_interval": 0.01})
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 6
    assert f"6 points were answered by another provider ({azure_emulator.url})" in \
        plan["reasons"]
    project.run("apply", JOB)
    keys = azure_emulator.sent_keys()
    assert len(keys) == 12 and len(set(keys)) == 12
