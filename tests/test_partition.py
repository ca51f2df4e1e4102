"""One job split across runners (`--partition I/N`, docs/scale.md), run one after the other
here: every selected point is answered by exactly one runner, each runner keeps its own
state, and adoption never hands one runner's batch to another."""

from __future__ import annotations

import shutil

import pytest
from conftest import sharded_project

JOB = "jobs/tags.yaml"


def written(project) -> set:
    return {i for i, payload in project.payloads().items() if "llm_tags" in payload}


def test_runners_split_a_job_and_together_answer_every_point_once(project):
    project.seed(60)
    shares = [project.run_json("apply", JOB, "--partition", f"{i}/3")["jobs"]["tags"]
              for i in (1, 2, 3)]
    assert all(share["sent"] > 0 for share in shares)
    assert sum(share["sent"] for share in shares) == 60 == len(written(project))
    assert sum(share["matched"] for share in shares) == 60
    for i in (1, 2, 3):
        assert (project.root / ".batchrun" / f"partition-{i}-of-3" / "emulator" /
                "state.db").is_file()
        again = project.run_json("apply", JOB, "--partition", f"{i}/3")["jobs"]["tags"]
        assert again["sent"] == 0
    # The stamps live in Qdrant: a run over the whole job finds every point up to date.
    project.run("plan", JOB, "--detailed-exitcode", expect=0)


def test_the_partition_comes_from_the_environment_too(project, monkeypatch):
    project.seed(20)
    monkeypatch.setenv("BATCHRUN_PARTITION", "2/2")
    sent = project.run_json("apply", JOB)["jobs"]["tags"]["sent"]
    assert 0 < sent < 20
    assert (project.root / ".batchrun" / "partition-2-of-2").is_dir()


def test_a_bad_partition_says_what_is_expected(project):
    project.seed(5)
    result = project.run("plan", JOB, "--partition", "3/2", expect=1)
    assert "--partition '3/2' is not I/N with 1 ≤ I ≤ N" in result.stderr


@pytest.mark.usefixtures("api_key")
def test_a_runner_restarted_empty_adopts_its_own_batch_and_never_another_runners(
        serve_emulator, tmp_path):
    emulator = serve_emulator()               # one provider, shared by both runners
    project = sharded_project(tmp_path / "project", emulator, points=40, shard=100)
    killed = project.spawn("apply", JOB, "--partition", "1/2", crash_at="after-create")
    killed.communicate(timeout=120)
    assert killed.returncode == -9            # runner 1's batch exists, recorded nowhere
    shutil.rmtree(project.root / ".batchrun" / "partition-1-of-2")   # a fresh CI runner
    second = project.run_json("apply", JOB, "--partition", "2/2")
    assert second["adopted"] == 0 and second["jobs"]["tags"]["sent"] > 0
    first = project.run_json("apply", JOB, "--partition", "1/2")
    assert first["adopted"] == 1 and first["jobs"]["tags"]["sent"] == 0
    keys = emulator.sent_keys()
    assert len(keys) == len(set(keys)) == 40  # each request paid for once, by one runner
    assert len(written(project)) == 40
