"""Qdrant-native results (issue 14): embeddings into named vectors Qdrant can search, the
vector config checked before any spending, long inputs truncated by a declared rule or
reported, nested result keys beside their siblings — through the real openai SDK against
the emulator over HTTP, and the embedded Qdrant."""

from __future__ import annotations

import json

from qdrant_client import models

from runner.writeback import stamp_key

EMBED = "jobs/embed.yaml"


def embed_job(project, *, vector: str = "embedding", extra: str = "") -> str:
    project.write(EMBED, f"""
name: embed
source: {{collection: videos, fields: [title, description]}}
prompt: {{user: "{{{{ title }}}}\\n{{{{ description }}}}"}}
model: text-embedding-3-small
endpoint: /v1/embeddings
output: {{vector: "{vector}"}}
{extra}""")
    return EMBED


def videos_with_vector(project, count: int, size: int = 1536, name: str = "embedding") -> None:
    with project.qdrant() as client:
        client.create_collection("videos", vectors_config={
            name: models.VectorParams(size=size, distance=models.Distance.COSINE)})
    project.seed(count)


def posts(project) -> int:
    return project.emulator.counting.posts()


def test_embeddings_go_into_a_named_vector_qdrant_can_search(http_project):
    videos_with_vector(http_project, 12)
    job = embed_job(http_project)
    estimate = next(line for line in http_project.run("plan", job).stdout.splitlines()
                    if line.strip().startswith("estimate:"))
    assert "input tokens (exact), no output tokens;" in estimate   # embeddings bill input only
    applied = http_project.run_json("apply", job)
    assert applied["jobs"]["embed"]["sent"] == 12
    with http_project.qdrant() as client:
        records, _ = client.scroll("videos", limit=100, with_vectors=["embedding"])
        for record in records:
            assert len(record.vector["embedding"]) == 1536
            assert stamp_key("embed") in record.payload       # the stamp stays in the payload
            assert "embed" not in record.payload               # the vector does not
        probe = records[3]
        nearest = client.query_points("videos", query=probe.vector["embedding"],
                                      using="embedding", limit=1).points
    assert nearest[0].id == probe.id
    assert http_project.run_json("apply", job)["jobs"]["embed"]["sent"] == 0   # up to date


def test_a_changed_text_sends_exactly_the_changed_points(http_project):
    videos_with_vector(http_project, 10)
    job = embed_job(http_project)
    http_project.run("apply", job)
    with http_project.qdrant() as client:
        client.set_payload("videos", {"title": "A new title"}, points=[2, 7])
    again = http_project.run_json("apply", job)
    assert again["jobs"]["embed"]["sent"] == 2
    assert http_project.run_json("plan", job)["pending"] is False


def test_a_vector_of_the_wrong_size_is_refused_before_any_upload(http_project):
    videos_with_vector(http_project, 5, size=3072)
    job = embed_job(http_project)
    error = http_project.run("plan", job, expect=1).stderr
    assert ("jobs/embed.yaml:7: output.vector: vector 'embedding' of 'videos' holds 3,072 "
            "dimensions, but text-embedding-3-small returns 1,536") in error
    assert "params.dimensions" in error
    http_project.run("apply", job, expect=1)
    assert posts(http_project) == 0
    # asking the model for more than it returns is refused where it is written
    embed_job(http_project, extra="params: {dimensions: 3072}")
    error = http_project.run("apply", job, expect=1).stderr
    assert ("jobs/embed.yaml:8: params.dimensions: expected params.dimensions between 1 and "
            "1,536 for text-embedding-3-small, got 3072") in error
    assert posts(http_project) == 0


def test_a_missing_vector_is_explained_and_created_only_when_asked(http_project):
    http_project.seed(4)                        # a payload-only collection: no vectors
    job = embed_job(http_project)
    error = http_project.run("apply", job, expect=1).stderr
    assert "collection 'videos' has no vector 'embedding' (its vectors: none)" in error
    assert "batchrun apply --create-vectors" in error
    assert posts(http_project) == 0
    created = http_project.run("apply", job, "--create-vectors")
    assert "created vector 'embedding' (1,536 dimensions, Cosine) in 'videos'" in created.stderr
    with http_project.qdrant() as client:
        records, _ = client.scroll("videos", limit=10, with_vectors=["embedding"])
    assert all(len(r.vector["embedding"]) == 1536 for r in records)


def test_the_unnamed_default_vector_is_written_when_asked_for_explicitly(http_project):
    with http_project.qdrant() as client:
        client.create_collection("videos", vectors_config=models.VectorParams(
            size=256, distance=models.Distance.DOT))
        client.upsert("videos", points=[models.PointStruct(id=i, vector=[0.0] * 256,
                                                           payload={"title": f"t{i}",
                                                                    "description": "d"})
                                        for i in range(1, 4)])
    job = embed_job(http_project, vector="", extra="params: {dimensions: 256}")
    http_project.run("apply", job)
    with http_project.qdrant() as client:
        records, _ = client.scroll("videos", limit=10, with_vectors=True)
    assert all(abs(sum(v * v for v in r.vector) - 1.0) < 1e-3 for r in records)


def long_text(words: int) -> str:
    return " ".join(f"word{i}" for i in range(words))


def test_a_text_over_the_input_limit_is_truncated_by_the_declared_rule(http_project):
    videos_with_vector(http_project, 3)
    with http_project.qdrant() as client:
        client.set_payload("videos", {"description": long_text(9000)}, points=[2])
    job = embed_job(http_project, extra="input: {truncate: tokens}")
    http_project.run("prepare", job)
    shard = next((http_project.state / "artifacts" / "shards").glob("*.jsonl"))
    from runner.tokens import count_text
    inputs = [json.loads(line)["body"]["input"] for line in shard.read_text().splitlines()]
    assert max(count_text(text, "text-embedding-3-small") for text in inputs) == 8192
    http_project.run("apply", job)
    assert http_project.run_json("plan", job)["pending"] is False


def test_without_the_rule_a_text_over_the_limit_is_reported_never_sent(http_project):
    videos_with_vector(http_project, 3)
    with http_project.qdrant() as client:
        client.set_payload("videos", {"description": long_text(9000)}, points=[2])
    job = embed_job(http_project)
    # --strict: the all-or-nothing error (by default the point is a failed point, the
    # others are sent: tests/test_bad_points.py)
    plan = http_project.run("plan", job, "--strict", expect=1).stderr
    assert "over the 8,192-token input limit of text-embedding-3-small" in plan
    assert "ids 2" in plan and "input.truncate: tokens" in plan
    assert posts(http_project) == 0


def test_a_nested_key_is_written_beside_its_siblings(http_project):
    http_project.seed(6)
    with http_project.qdrant() as client:   # another tool wrote llm.summary already
        client.set_payload("videos", {"llm": {"summary": "kept"}}, points=[1, 2, 3])
    http_project.edit("jobs/tags.yaml", "key: llm_tags", "key: llm.tags")
    applied = http_project.run_json("apply", "jobs/tags.yaml")
    assert applied["jobs"]["tags"]["sent"] == 6
    payloads = http_project.payloads()
    for point_id, payload in payloads.items():
        assert set(payload["llm"]["tags"]) == {"topics", "category", "language"}
        assert payload["llm"].get("summary") == ("kept" if point_id <= 3 else None)
    assert http_project.run_json("apply", "jobs/tags.yaml")["jobs"]["tags"]["sent"] == 0
    shown = http_project.run_json("show", "tags", "--limit", "2")["points"]
    assert [set(p["result"]) for p in shown] == [{"topics", "category", "language"}] * 2, shown


def test_moving_the_output_key_rewrites_every_point_from_the_cache_for_free(http_project):
    http_project.seed(5)
    http_project.run("apply", "jobs/tags.yaml")
    sent = len(http_project.emulator.sent_keys())
    http_project.edit("jobs/tags.yaml", "key: llm_tags", "key: video.tags")
    moved = http_project.run_json("apply", "jobs/tags.yaml")
    assert moved["jobs"]["tags"]["sent"] == 0
    assert len(http_project.emulator.sent_keys()) == sent
    assert all("tags" in p["video"] for p in http_project.payloads().values())


def test_a_job_cannot_write_where_another_job_writes_or_inside_it(project):
    project.write("jobs/other.yaml", (project.root / "jobs" / "tags.yaml").read_text()
                  .replace("name: tags", "name: other").replace("key: llm_tags",
                                                                "key: llm_tags.more"))
    error = project.run("validate", expect=1).stderr
    assert "tags writes its output to 'llm_tags', where other (jobs/other.yaml) writes " \
           "'llm_tags.more'" in error


def test_output_vector_belongs_to_embeddings_jobs(project):
    project.edit("jobs/tags.yaml", "key: llm_tags", "vector: embedding")
    error = project.run("validate", expect=1).stderr
    assert "output.vector takes embeddings; expected endpoint: /v1/embeddings" in error


def test_show_says_how_long_a_written_vector_is(http_project):
    videos_with_vector(http_project, 2)
    job = embed_job(http_project)
    http_project.run("apply", job)
    shown = http_project.run("show", "embed", "--limit", "1").stdout
    assert "  → vector embedding: 1,536 dimensions: [" in shown
