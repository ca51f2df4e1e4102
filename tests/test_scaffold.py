"""`batchrun init --collection NAME` writes a job that fits the user's own collection and
works as written; without it, the scaffold says how to load data — and what it says works,
for a payload-only collection (no vectors)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from qdrant_client import QdrantClient, models

from runner.cli import cli
from runner.datacheck import Sample
from runner.scaffold import chosen_fields, field_line

ARTICLES = [
    {"title": "Rust 2.0 released", "body": "A long story. " * 60, "tags": ["rust", "release"],
     "year": 2026, "meta": {"source": "blog"}, "video-id": "v1", "id": "a1"},
    {"title": "Qdrant adds payload indexes", "tags": ["qdrant"], "year": 2025, "meta": None,
     "video-id": "v2", "embedding": [0.25] * 64},
    {"title": "Python 3.14", "body": "short", "year": None},
]


def batchrun(cwd: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["-C", str(cwd), *args])
    assert result.exit_code == code, f"batchrun {' '.join(args)}:\n{result.output}"
    return result.stdout if code == 0 else result.output    # an error: what stderr says


def load(folder: Path, collection: str, payloads: list[dict]) -> None:
    client = QdrantClient(path=str(folder))     # payloads only: no vectors at all
    client.create_collection(collection, vectors_config={})
    client.upsert(collection, [models.PointStruct(id=i + 1, vector={}, payload=p)
                               for i, p in enumerate(payloads)])
    client.close()


def instant(root: Path) -> None:
    config = root / "batchrun.yaml"
    config.write_text(config.read_text().replace("  name: emulator",
                                                 "  name: emulator\n  emulator_speed: instant"))


def test_init_collection_writes_a_job_that_works_as_written(tmp_path):
    load(tmp_path / "data" / ".qdrant", "articles", ARTICLES)
    out = batchrun(tmp_path, "init", "proj", "--collection", "articles", "--qdrant",
                   "data/.qdrant")
    assert out.splitlines()[:5] == ["created jobs/summary.yaml", "created prompts/summary."
                                    "system.j2", "created prompts/summary.user.j2",
                                    "created batchrun.yaml", "created schemas/job.schema.json"]
    root = tmp_path / "proj"
    assert 'path: "../data/.qdrant"' in (root / "batchrun.yaml").read_text()
    spec = (root / "jobs" / "summary.yaml").read_text()
    assert 'fields: ["title", "year", "body", "tags", "meta", "video-id", "id"]' in spec
    instant(root)
    assert batchrun(root, "validate") == "ok: jobs/summary.yaml (job summary)\n"
    assert batchrun(root, "plan").splitlines()[0] == \
        "+ summary (jobs/summary.yaml): 3 matched — 3 to submit"
    assert batchrun(root, "apply").splitlines()[0] == \
        "summary: 3 matched, 3 requests sent in 1 batch, 3 written"
    client = QdrantClient(path=str(tmp_path / "data" / ".qdrant"))
    records, _ = client.scroll("articles", with_payload=True)
    client.close()
    assert all(isinstance(r.payload["llm_summary"]["summary"], str) for r in records)


def test_the_prompt_shows_every_field_and_never_fails_on_a_point_that_lacks_one(tmp_path):
    load(tmp_path / "data" / ".qdrant", "articles", ARTICLES)
    batchrun(tmp_path, "init", "proj", "--collection", "articles", "--qdrant", "data/.qdrant")
    root = tmp_path / "proj"
    lines = {json.loads(line)["custom_id"]: json.loads(line) for line in CliRunner().invoke(
        cli, ["-C", str(root), "render", "summary", "--sample", "3"]).stdout_bytes.splitlines()}
    users = sorted(r["body"]["messages"][1]["content"] for r in lines.values())
    third = next(u for u in users if u.startswith("Title: Python 3.14"))
    assert third.splitlines() == ["Title: Python 3.14", "Year: (none)", "Body: short",
                                  "Tags: (none)", "Meta: (none)", "Video-id: (none)",
                                  "Id: (none)"]
    first = next(u for u in users if u.startswith("Title: Rust"))
    assert "Tags: rust, release" in first and "Meta: {'source': 'blog'}" in first
    assert "Id: a1" in first and "Video-id: v1" in first


def test_fields_are_the_most_common_keys_without_vectors_stamps_or_the_output():
    data = Sample("c", [{"a": 1, "v": [0.1] * 40, "_batchrun_x": {}, "llm_x": "old"},
                        {"a": 2, "b": "x"}], 2)
    assert chosen_fields(data, "llm_x") == ["a", "b"]
    assert field_line("b", data) == "B: {{ b if b is defined and b else '(none)' }}"
    long = Sample("c", [{"t": "w" * 600}], 1)
    assert field_line("t", long) == "T: {{ t | truncate(2000) }}"


def test_in_a_project_init_collection_adds_only_the_job(tmp_path):
    batchrun(tmp_path, "init", ".")
    config = (tmp_path / "batchrun.yaml").read_text()
    load(tmp_path / ".qdrant", "products", [{"name": "Rain jacket"}, {"name": "Grinder"}])
    out = batchrun(tmp_path, "init", ".", "--collection", "products", "--job", "describe")
    assert out.splitlines()[:3] == ["created jobs/describe.yaml",
                                    "created prompts/describe.system.j2",
                                    "created prompts/describe.user.j2"]
    assert (tmp_path / "batchrun.yaml").read_text() == config
    instant(tmp_path)
    suggested = re.search(r"then `batchrun (plan [^`]+)`", out).group(1).split()
    assert suggested == ["plan", "jobs/describe.yaml"]     # not every job: tags reads 'videos'
    assert "2 matched — 2 to submit" in batchrun(tmp_path, *suggested)
    again = batchrun(tmp_path, "init", ".", "--collection", "products", "--job", "describe",
                     code=1)
    assert "already exist, nothing was written: jobs/describe.yaml" in again


def test_a_collection_it_cannot_find_or_that_is_empty_says_what_to_do(tmp_path):
    load(tmp_path / "q", "articles", ARTICLES)
    out = batchrun(tmp_path, "init", "p", "--collection", "artcles", "--qdrant", "q", code=1)
    assert "collection 'artcles' not found in the Qdrant at q (collections: articles)" in out
    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("empty", vectors_config={})
    client.close()
    out = batchrun(tmp_path, "init", "p", "--collection", "empty", "--qdrant", "q", code=1)
    assert "collection 'empty' is empty" in out and "vectors are not needed" in out
    assert not (tmp_path / "p" / "jobs").exists()


def test_the_scaffold_says_how_to_load_data_and_what_it_says_works(tmp_path):
    out = batchrun(tmp_path, "init", ".")
    assert "a payload-only collection works" in out
    config = (tmp_path / "batchrun.yaml").read_text()
    assert "Vectors are not needed: a payload-only collection works." in config
    snippet = "\n".join(line[4:] for line in config.splitlines() if line.startswith("#   "))
    subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, check=True)   # as written
    batchrun(tmp_path, "init", ".", "--collection", "articles")
    instant(tmp_path)
    applied = batchrun(tmp_path, "apply", "jobs/summary.yaml").splitlines()
    assert applied[0] == "summary: 1 matched, 1 request sent in 1 batch, 1 written"
