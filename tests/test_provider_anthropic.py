"""A job answered by Anthropic's Message Batches, end to end through the real `anthropic`
SDK over HTTP to the served emulator: plan, apply, rerun sends nothing, k changed points
send k, costs priced from each result's usage; and a job switched from OpenAI re-sends,
saying why."""

from __future__ import annotations

import json

import pytest
from conftest import API_KEY, http_project_for
from provider_fixtures import (
    ANTHROPIC_KEY,
    CLAUDE,
    JOB,
    anthropic_events,
    anthropic_project,
    anthropic_sent_keys,
    to_anthropic,
)

from runner.emulator import Faults
from runner.pricing import PriceTable


@pytest.fixture
def claude(tmp_path, http_emulator, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    return anthropic_project(tmp_path / "project", http_emulator)


def test_plan_apply_and_rerun_through_the_anthropic_sdk(claude):
    claude.seed(20)
    plan = claude.run_json("plan", JOB)
    assert plan["jobs"]["tags"]["to_submit"] == 20
    assert plan["jobs"]["tags"]["provider"] == f"anthropic:{claude.emulator.url[:-3]}"
    assert plan["jobs"]["tags"]["estimate"]["input_tokens_exact"] is False   # no Claude tokenizer
    assert plan["providers"][plan["jobs"]["tags"]["provider"]]["requests"] == 20
    claude.run("apply", JOB)
    assert len(anthropic_sent_keys(claude.emulator)) == 20
    assert claude.emulator.sent_keys() == []          # nothing went to the OpenAI layout
    for payload in claude.payloads().values():
        assert set(payload["llm_tags"]) == {"topics", "category", "language"}
        assert payload["_batchrun_tags"]["provider"].startswith("anthropic:")
        assert payload["_batchrun_tags"]["model"] == "claude-haiku-4-5-20251001"
    again = claude.run_json("apply", JOB)
    assert again["submitted"] == 0 and len(anthropic_sent_keys(claude.emulator)) == 20


def test_k_changed_points_send_k_requests(claude):
    claude.seed(12)
    claude.run("apply", JOB)
    with claude.qdrant() as client:
        for point_id in (2, 5, 7):
            client.set_payload("videos", {"title": f"A new title for {point_id}"}, [point_id])
    assert claude.run_json("plan", JOB)["jobs"]["tags"]["to_submit"] == 3
    claude.run("apply", JOB)
    assert len(anthropic_sent_keys(claude.emulator)) == 15


def test_costs_come_from_each_results_usage_at_claude_batch_prices(claude):
    claude.seed(10)
    claude.run("apply", JOB)
    executed = [e for e in anthropic_events(claude.emulator, "request_executed")]
    assert len(executed) == 10
    batch = claude.manifest()["jobs"]["tags"]["batches"][0]
    tokens = batch["tokens"]
    price = PriceTable.load().lookup(CLAUDE)
    assert price is not None and price.batch is not None
    expected = (tokens["input"] * price.batch.input + tokens["output"] * price.batch.output) / 10**6
    assert batch["cost_usd"] == pytest.approx(float(expected), abs=1e-8)
    assert batch["billed_model"] == "claude-haiku-4-5-20251001"
    costs = claude.run_json("costs", "--by", "provider")
    assert list(costs["groups"]) == [f"anthropic:{claude.emulator.url[:-3]}"]
    assert costs["total"]["cost_usd"] == pytest.approx(batch["cost_usd"])
    assert costs["total"]["saving_usd"] > 0


def test_a_job_switched_from_openai_to_anthropic_is_sent_again_and_plan_says_why(
        tmp_path, http_emulator, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    project = http_project_for(tmp_path / "project", http_emulator)
    project.seed(8)
    project.run("apply", JOB)
    openai_keys = set(http_emulator.sent_keys())
    to_anthropic(project)
    project.write_config(provider={"name": "anthropic",
                                   "base_url": http_emulator.url.removesuffix("/v1"),
                                   "poll_interval": 0.01})
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 8
    assert f"8 points were answered by another provider ({http_emulator.url})" in plan["reasons"]
    project.run("apply", JOB)
    claude_keys = set(anthropic_sent_keys(http_emulator))
    assert len(claude_keys) == 8 and not claude_keys & openai_keys   # another request each
    assert (project.root / ".batchrun" / "anthropic" / "state.db").is_file()


def test_a_spec_without_max_tokens_is_refused_for_anthropic(claude):
    claude.edit(JOB, "params: {max_tokens: 200}", "params: {}")
    refused = claude.run("plan", JOB, expect=1)
    assert "jobs/tags.yaml:19: params: Anthropic's Messages API requires max_tokens" \
        in refused.stderr
    assert "add it to params" in refused.stderr


def test_params_are_checked_against_the_anthropic_sdk(claude):
    claude.edit(JOB, "params: {max_tokens: 200}", "params: {max_tokens: 200, stop_sequnces: [x]}")
    refused = claude.run("validate", JOB, expect=1)
    assert "unknown param 'stop_sequnces' for /v1/messages; did you mean 'stop_sequences'?" \
        in refused.stderr
    assert "anthropic SDK" in refused.stderr


def test_an_endpoint_anthropic_lacks_is_refused(claude):
    claude.edit(JOB, "endpoint: /v1/chat/completions", "endpoint: /v1/responses")
    refused = claude.run("validate", JOB, expect=1)
    assert "jobs/tags.yaml:18: endpoint: Anthropic has no /v1/responses" in refused.stderr


def test_failed_results_are_retried_or_reported_like_openai_ones(claude):
    claude.seed(30)
    claude.emulator.emulator.faults = Faults(seed=4, request_failure_rate=0.15,
                                             invalid_request_rate=0.1, truncation_rate=0.1)
    outcome = claude.run_json("apply", JOB, expect=3)   # some invalid requests fail for good
    failures = outcome["jobs"]["tags"]["failures"]
    assert failures and all(f["reason"].startswith("http 400 invalid_request_error")
                            for f in failures)
    written = sum("llm_tags" in p for p in claude.payloads().values())
    assert written + len(failures) == 30
    outcomes = [e["outcome"] for e in anthropic_events(claude.emulator, "request_executed")]
    assert "server_error" in outcomes and "truncated" in outcomes   # both were retried


def test_the_emulator_answers_in_the_anthropic_dialect_in_process(project):
    project.provider = {"name": "emulator", "dialect": "anthropic", "emulator_speed": "instant",
                        "poll_interval": 0.01}
    project.write_config()
    to_anthropic(project)
    project.seed(6)
    project.run("apply", JOB)
    stamps = [p["_batchrun_tags"] for p in project.payloads().values()]
    assert {s["provider"] for s in stamps} == {"emulator:anthropic"}
    assert all(s["batch"].startswith("msgbatch_") for s in stamps)
    assert (project.root / ".batchrun" / "emulator-anthropic" / "manifest.json").is_file()


@pytest.mark.slow
def test_the_demo_runs_against_the_anthropic_dialect(project):
    shown = project.run("demo", "--speed", "instant", "--dialect", "anthropic",
                        "--examples", "1")
    assert "240 written" in shown.stdout
    # No embeddings endpoint at Anthropic: the demo tags only, and says so.
    assert "the demo left jobs/embed.yaml out" in shown.stdout
    manifest = project.root / ".batchrun" / "emulator-anthropic" / "manifest.json"
    assert sorted(json.loads(manifest.read_text())["jobs"]) == ["tags"]
    batches = json.loads(manifest.read_text())["jobs"]["tags"]["batches"]
    assert {b["billed_model"] for b in batches} == {"claude-haiku-4-5-20251001"}
    stamps = {p["_batchrun_tags"]["provider"] for p in project.payloads().values()
              if "_batchrun_tags" in p}
    assert stamps == {"emulator:anthropic"}
    again = project.run("demo", "--speed", "instant", "--dialect", "anthropic",
                        "--examples", "1")
    assert "all up to date" in again.stdout
