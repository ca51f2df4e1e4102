"""Any OpenAI-compatible Batch API (Groq, …) through `provider.base_url`: the OpenAI layout
under another base path, a model batchrun has no price for — "price unknown", never $0."""

from __future__ import annotations

from conftest import API_KEY, Project

from runner.emulator import EmulatorConfig

JOB = "jobs/tags.yaml"
UNPRICED = "ft:gpt-4o-mini-2024-07-18:acme::tags01"   # a model no price table lists


def test_a_compatible_api_under_another_base_path_runs_end_to_end(tmp_path, serve_emulator,
                                                                 monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    emulator = serve_emulator(EmulatorConfig.instant(base_path="/compat/openai/v1"))
    base_url = emulator.url.removesuffix("/v1") + "/compat/openai/v1"
    project = Project(tmp_path / "project", {"name": "openai", "base_url": base_url,
                                             "poll_interval": 0.01})
    project.edit(JOB, "model: gpt-4o-mini", f"model: {UNPRICED}")
    project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: null")
    project.seed(10)
    plan = project.run("plan", JOB)
    assert "cost unknown (no price for this model" in plan.stdout
    assert project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]["cost_usd_low"] is None
    applied = project.run("apply", JOB)
    assert "cost unknown for some batches (no price for the model)" in applied.stdout
    assert len(emulator.sent_keys()) == 10
    costs = project.run_json("costs")
    assert costs["total"]["unpriced_batches"] == 1 and costs["total"]["cost_usd"] == 0
    assert costs["providers"] == {base_url: costs["total"]}
    assert ("POST", "/compat/openai/v1/batches") in emulator.counting.calls
    assert "1 batch(es) used a model with no known price" in project.run("costs").stdout
    assert project.run_json("apply", JOB)["submitted"] == 0
