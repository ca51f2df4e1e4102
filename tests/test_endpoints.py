"""All three endpoints end to end: chat (JSON and text), responses, embeddings — and jobs
that read what other jobs wrote (`needs`)."""

from __future__ import annotations

import math

JOB = "jobs/tags.yaml"


def write_job(project, name, body):
    project.write(f"jobs/{name}.yaml", body)
    return f"jobs/{name}.yaml"


def test_an_embeddings_job_writes_unit_vectors_and_caches_them(http_project):
    http_project.seed(12)
    job = write_job(http_project, "embed", """
name: embed
source: {collection: videos, fields: [title]}
prompt: {user: "{{ title }}"}
model: text-embedding-3-small
endpoint: /v1/embeddings
params: {dimensions: 256}
output: {key: title_vector}
""")
    http_project.run("apply", job)
    for payload in http_project.payloads().values():
        vector = payload["title_vector"]
        assert len(vector) == 256 and all(isinstance(v, float) for v in vector)
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-4)
    sent = len(http_project.emulator.sent_keys())
    with http_project.qdrant() as client:       # wipe the written vectors: the cache refills them
        client.delete_payload("videos", ["title_vector", "_batchrun_embed"], list(range(1, 13)))
    http_project.run("apply", job)
    assert len(http_project.emulator.sent_keys()) == sent
    assert all(len(p["title_vector"]) == 256 for p in http_project.payloads().values())


def test_a_responses_job_writes_schema_valid_json(http_project):
    http_project.seed(5)
    job = write_job(http_project, "mood", """
name: mood
source: {collection: videos, fields: [title, description]}
prompt:
  system: Classify the mood of a video.
  user: "{{ title }}\\n{{ description }}"
model: gpt-4.1-mini
endpoint: /v1/responses
params: {max_output_tokens: 100}
output:
  fields:
    mood: {type: string, enum: [happy, sad, neutral]}
    score: {type: number, minimum: 0, maximum: 1}
""")
    http_project.run("apply", job)
    for payload in http_project.payloads().values():
        assert payload["mood"]["mood"] in ("happy", "sad", "neutral")
        assert 0 <= payload["mood"]["score"] <= 1


def test_a_text_job_writes_the_answer_text(project):
    project.seed(3)
    job = write_job(project, "blurb", """
name: blurb
source: {collection: videos, fields: [title]}
prompt: {user: "Write a one-line blurb for: {{ title }}"}
model: gpt-4o-mini
params: {max_tokens: 60}
""")
    project.run("apply", job)
    assert all(isinstance(p["blurb"], str) and p["blurb"] for p in project.payloads().values())


def test_a_job_that_needs_another_runs_after_it_and_resends_only_what_changed(http_project):
    http_project.seed(10)
    summary = write_job(http_project, "summary", """
name: summary
needs: [tags]
source: {collection: videos, fields: [title, llm_tags]}
prompt: {user: "Summarise {{ title }} given the topics {{ llm_tags.topics | join(', ') }}"}
model: gpt-4o-mini
params: {max_tokens: 60}
""")
    out = http_project.run_json("apply", JOB, summary)
    assert out["jobs"]["tags"]["written"] == 10 and out["jobs"]["summary"]["written"] == 10
    batches = http_project.emulator.batches_created()
    assert [b["metadata"]["batchrun_job"] for b in batches] == ["tags", "summary"]
    http_project.run("apply", JOB, summary)
    assert len(http_project.emulator.batches_created()) == 2
    with http_project.qdrant() as client:
        client.set_payload("videos", {"description": "A different description"}, [4])
    out = http_project.run_json("apply", JOB, summary)
    assert out["jobs"]["tags"]["sent"] == 1
    # summary reads tags' output: resent only if that output changed for point 4
    assert out["jobs"]["summary"]["sent"] <= 1


def test_a_dependent_job_listed_first_still_runs_second(project):
    project.seed(4)
    summary = write_job(project, "a_summary", """
name: a_summary
needs: [tags]
source: {collection: videos, fields: [llm_tags]}
prompt: {user: "{{ llm_tags.category }}"}
model: gpt-4o-mini
params: {max_tokens: 20}
""")
    out = project.run_json("apply", summary, JOB)
    assert out["jobs"]["a_summary"]["written"] == 4


RESPONSES_JOB = """
name: mood
source: {collection: videos, fields: [title]}
prompt: {system: Classify the mood of a video., user: "{{ title }}"}
model: gpt-4.1-mini
endpoint: /v1/responses
params: {max_output_tokens: 100}
output:
  fields:
    mood: {type: string, enum: [happy, sad, neutral]}
batch: {max_attempts: 2}
"""


def faulty_responses_project(tmp_path, serve_emulator, **rates):
    from conftest import http_project_for

    from runner.emulator import Faults

    project = http_project_for(tmp_path / "p", serve_emulator(faults=Faults(seed=3, **rates)))
    project.seed(6)
    return project, write_job(project, "mood", RESPONSES_JOB)


def test_a_responses_refusal_is_reported_and_never_retried(tmp_path, serve_emulator, api_key):
    project, job = faulty_responses_project(tmp_path, serve_emulator, refusal_rate=1.0)
    applied = project.run_json("apply", job, expect=3)
    failures = applied["jobs"]["mood"]["failures"]
    assert len(failures) == 6 and {f["attempts"] for f in failures} == {1}
    assert all(f["reason"].startswith("refusal: I'm sorry") for f in failures)
    assert len(project.emulator.sent_keys()) == 6            # one batch, nothing resent


def test_an_incomplete_responses_answer_is_retried_then_reported(tmp_path, serve_emulator,
                                                                 api_key):
    project, job = faulty_responses_project(tmp_path, serve_emulator, truncation_rate=1.0)
    applied = project.run_json("apply", job, expect=3)
    failures = applied["jobs"]["mood"]["failures"]
    assert len(failures) == 6
    assert all(f["reason"] == "truncated: incomplete (max_output_tokens) (gave up after 2 "
               "attempts)" for f in failures)
    assert len(project.emulator.sent_keys()) == 12           # each sent twice: max_attempts
