"""Answers belong to who gave them: made-up emulator answers never count for the real API,
a ledger serves one provider, and projects sharing an organisation never adopt each
other's batches."""

from __future__ import annotations

from conftest import API_KEY, http_project_for

from runner.emulator import EmulatorConfig

JOB = "jobs/tags.yaml"


def test_switching_from_the_emulator_to_a_real_provider_sends_everything_for_real(
        project, serve_emulator, monkeypatch):
    project.seed(20)
    project.run("apply", JOB)                  # tried for free, in-process
    real = serve_emulator()                    # stands in for the paid API
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    project.write_config(provider={"name": "openai", "base_url": real.url, "poll_interval": 0.01})
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 20
    assert plan["reasons"] == ["new job (never applied)",   # for this provider's ledger
                               "20 points were answered by another provider (emulator)"]
    project.run("apply", JOB)
    assert len(real.sent_keys()) == 20
    assert all(p["_batchrun_tags"]["provider"] == real.url for p in project.payloads().values())


def test_a_state_directory_serves_one_provider(http_project, serve_emulator):
    http_project.seed(5)
    http_project.run("apply", JOB)
    other = serve_emulator()
    http_project.write_config(provider={"name": "openai", "base_url": other.url,
                                        "poll_interval": 0.01})
    refused = http_project.run("plan", JOB, expect=1)
    assert f"holds the batches and results of {http_project.emulator.url}, but the provider " \
           f"is now {other.url}" in refused.stderr
    assert "give each provider its own state_dir" in refused.stderr
    http_project.write_config(provider={"name": "openai", "base_url": other.url,
                                        "poll_interval": 0.01}, state_dir=".batchrun-other")
    http_project.run("apply", JOB)
    assert len(other.sent_keys()) == 5


def test_another_project_with_the_same_job_name_never_adopts_our_batches(
        serve_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    emulator = serve_emulator(EmulatorConfig(validating_seconds=3600))   # stays in flight
    ours = http_project_for(tmp_path / "ours", emulator)
    theirs = http_project_for(tmp_path / "theirs", emulator)
    for project in (ours, theirs):
        project.seed(10)
    ours.run("apply", JOB, "--no-wait")
    result = theirs.run_json("apply", JOB, "--no-wait")
    assert result["adopted"] == 0 and result["submitted"] == 1
    assert len(emulator.batches_created()) == 2
    metadata = [b["metadata"] for b in emulator.batches_created()]
    assert metadata[0]["batchrun_target"] != metadata[1]["batchrun_target"]


def test_the_demo_refuses_a_collection_that_holds_someone_elses_data(project):
    project.seed(5, start=100)          # real-looking data under ids the demo would use
    with project.qdrant() as client:
        client.set_payload("videos", {"video_id": "not-the-demo"}, [101])
    refused = project.run("demo", "--speed", "instant", expect=1)
    assert "collection 'videos' already holds" in refused.stderr
    assert all("llm_tags" not in p for p in project.payloads().values())


def test_a_state_directory_that_holds_nothing_yet_may_change_provider(http_project,
                                                                      serve_emulator):
    http_project.seed(5)
    http_project.run("plan", JOB)                 # opens the ledger, sends nothing
    other = serve_emulator()
    http_project.write_config(provider={"name": "openai", "base_url": other.url,
                                        "poll_interval": 0.01})
    http_project.run("apply", JOB)
    assert len(other.sent_keys()) == 5
