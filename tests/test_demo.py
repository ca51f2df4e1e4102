"""`batchrun demo` ends with vectors Qdrant can search (issue 14): jobs/embed.yaml embeds
every video tags.yaml tags into the named vector `embedding`, and one vector search prints
the nearest titles — through the embedded Qdrant and the emulator, checked against an
independent query made with the real openai SDK."""

from __future__ import annotations

from emulator_fixtures import sdk_client
from qdrant_client import models

from runner.demo import QUERY

TAGGED_REGIONS = ["US", "GB", "CA"]      # the filter both demo jobs share


def search_lines(stdout: str) -> list[str]:
    """The search heading and the hits printed under it."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Vector search in Qdrant"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))
    return lines[start:end]


def test_the_demo_embeds_every_tagged_video_and_searches_the_vectors(project, http_emulator):
    out = project.run("demo", "--speed", "instant", "--examples", "1").stdout
    # A folder with only tags.yaml (an older demo's) gets the embed job and its vector.
    assert "Wrote the starter project: jobs/embed.yaml" in out
    assert "embed: created vector 'embedding' (1,536 dimensions, Cosine) in 'videos'" in out
    assert "embed: 240 matched, 240 requests sent in 3 batches, 240 written" in out

    tagged = models.Filter(must=[models.FieldCondition(
        key="region", match=models.MatchAny(any=TAGGED_REGIONS))])
    with project.qdrant() as client:
        points, _ = client.scroll("videos", scroll_filter=tagged, limit=1000,
                                  with_payload=["title", "_batchrun_embed"],
                                  with_vectors=["embedding"])
        others, _ = client.scroll("videos", limit=1000, with_vectors=["embedding"],
                                  scroll_filter=models.Filter(must_not=tagged.must))
        assert len(points) == 240 and len(others) == 60
        assert all(len(p.vector["embedding"]) == 1536 for p in points)
        assert all("_batchrun_embed" in p.payload for p in points)     # the stamp
        assert all(not p.vector for p in others)                      # not selected: no vector

        # The same query, embedded by the emulator through the SDK, searched independently.
        query = sdk_client(http_emulator.url).embeddings.create(
            model="text-embedding-3-small", input=QUERY, encoding_format="float")
        expected = client.query_points("videos", query=query.data[0].embedding,
                                       using="embedding", limit=3, with_payload=["title"]).points
    heading, *hits = search_lines(out)
    assert heading == (f"Vector search in Qdrant: the 3 videos nearest to {QUERY!r} "
                       "(vector 'embedding', text-embedding-3-small):")
    assert hits == [f"  {p.score:.3f}  {p.payload['title']}" for p in expected]
    assert "deterministic hashes of the text, not of its meaning" in out

    # It ends by writing its report page, and saying where.
    page = project.root / "report.html"
    assert out.splitlines()[-1].startswith(f"Report: {page} (") and page.is_file()
    assert '<tr data-job="tags">' in page.read_text(encoding="utf-8")

    # What the README says next works as printed: plan, without --create-vectors.
    plan = project.run("plan").stdout
    assert "= embed (jobs/embed.yaml): 240 matched, all up to date" in plan
    assert plan.splitlines()[-1] == "Plan: nothing to do; 2 jobs up to date."

    # And the demo again: nothing to send, and the same search (no videos printed: 0).
    again = project.run("demo", "--speed", "instant", "--examples", "0").stdout
    assert not [line for line in again.splitlines() if line.startswith("point ")]
    assert "= tags (jobs/tags.yaml): 240 matched, all up to date" in again
    assert "= embed (jobs/embed.yaml): 240 matched, all up to date" in again
    assert search_lines(again) == search_lines(out)
