"""Jobs of one project answered by different providers (a job's own `provider:` over
batchrun.yaml's): one command plans, applies, watches and costs them together, each
against its provider, with per-provider figures (runner/lanes.py)."""

from __future__ import annotations

import pytest
from conftest import API_KEY, http_project_for
from provider_fixtures import ANTHROPIC_KEY, anthropic_sent_keys


@pytest.fixture
def mixed(tmp_path, http_emulator, monkeypatch):
    """`tags` on OpenAI (batchrun.yaml), `claude_tags` on Anthropic (its own provider:)."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    project = http_project_for(tmp_path / "project", http_emulator)
    spec = (project.root / "jobs" / "tags.yaml").read_text()
    spec = (spec.replace("name: tags", "name: claude_tags")
            .replace("key: llm_tags", "key: claude_tags")
            .replace("model: gpt-4o-mini", "model: claude-haiku-4-5")
            .replace("{temperature: 0, max_tokens: 200}", "{max_tokens: 200}"))
    root = http_emulator.url.removesuffix("/v1")
    project.write("jobs/claude.yaml", spec + f"\nprovider: {{name: anthropic, base_url: "
                                             f"'{root}', poll_interval: 0.01}}\n")
    project.seed(10)
    return project


def test_plan_gives_each_job_its_provider_and_figures_per_provider(mixed):
    plan = mixed.run_json("plan")
    anthropic_id = f"anthropic:{mixed.emulator.url[:-3]}"
    assert plan["jobs"]["claude_tags"]["provider"] == anthropic_id
    assert plan["jobs"]["tags"]["provider"] == mixed.emulator.url
    assert plan["providers"][anthropic_id]["jobs"] == ["claude_tags"]
    assert plan["providers"][anthropic_id]["label"] == "Anthropic"
    assert {p["requests"] for p in plan["providers"].values()} == {10}
    text = mixed.run("plan").stdout
    assert f"  Anthropic ({anthropic_id}): 10 requests, ~$" in text
    assert f"  OpenAI ({mixed.emulator.url}): 10 requests, ~$" in text


def test_apply_sends_each_job_to_its_provider_and_costs_sum_both(mixed):
    result = mixed.run_json("apply")
    assert result["submitted"] == 2
    assert len(mixed.emulator.sent_keys()) == 10
    assert len(anthropic_sent_keys(mixed.emulator)) == 10
    for payload in mixed.payloads().values():
        assert payload["_batchrun_tags"]["provider"] == mixed.emulator.url
        assert payload["_batchrun_claude_tags"]["provider"].startswith("anthropic:")
    assert mixed.run_json("apply")["submitted"] == 0
    costs = mixed.run_json("costs", "--by", "provider")
    assert len(costs["groups"]) == 2 and costs["providers"] == costs["groups"]
    assert costs["total"]["batches"] == 2
    assert "No batches in flight." in mixed.run("status").stdout


def test_a_job_on_one_provider_may_need_a_job_on_another(mixed):
    mixed.edit("jobs/claude.yaml", "source:", "needs: [tags]\nsource:")
    mixed.edit("jobs/claude.yaml", "fields: [title, channel_title, category, tags, description]",
               "fields: [title, llm_tags]")
    mixed.edit("jobs/claude.yaml", "user: prompts/tags.user.j2",
               'user: "Tag {{ title }}; its topics so far: {{ llm_tags.topics | join(\', \') }}"')
    result = mixed.run_json("apply")
    assert result["jobs"]["claude_tags"]["unready"] == 0
    assert all("claude_tags" in p and "llm_tags" in p for p in mixed.payloads().values())
    assert len(anthropic_sent_keys(mixed.emulator)) == 10


def test_the_stage_commands_work_across_providers(mixed):
    prepared = mixed.run_json("prepare")
    paths = sorted(shard["path"] for shard in prepared["shards"])
    assert len(paths) == 2
    assert "/.batchrun/anthropic/artifacts/shards/" in paths[0]
    assert "/.batchrun/artifacts/shards/" in paths[1]
    assert mixed.run_json("submit")["submitted"] == 2
    mixed.run_json("status")
    mixed.run("collect", "--wait")
    assert all("claude_tags" in p and "llm_tags" in p for p in mixed.payloads().values())
    assert mixed.run_json("plan")["pending"] is False
