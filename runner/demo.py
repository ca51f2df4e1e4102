"""`batchrun demo`: the starter project run for free on real data.

The demo seeds the embedded Qdrant with 300 real trending YouTube videos shipped with the
package (runner/data/README.md says where they come from) and applies jobs/tags.yaml
against the emulator, never against a paid API.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources

from qdrant_client import QdrantClient, models

from .errors import BatchrunError
from .jobs import Job
from .project import ProjectContext

SAMPLE = "videos.sample.jsonl.gz"
COLLECTION = "videos"


def sample_videos() -> Iterator[dict]:
    with (resources.files("runner") / "data" / SAMPLE).open("rb") as raw, \
            gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def seed(client: QdrantClient, collection: str = COLLECTION) -> int:
    """Load the sample videos (ids 1…300) into `collection`, adding only points it lacks,
    so reseeding never wipes results already written. Returns how many were added.
    A collection of that name holding anything else is someone's data: refuse."""
    if not client.collection_exists(collection):
        client.create_collection(collection, vectors_config={})
    videos = list(sample_videos())
    ids = list(range(1, len(videos) + 1))
    records = client.retrieve(collection, ids, with_payload=["video_id"])
    present = {p.id for p in records}
    foreign = client.count(collection, exact=True).count - len(present) + sum(
        (p.payload or {}).get("video_id") != videos[int(p.id) - 1]["video_id"] for p in records)
    if foreign:
        raise BatchrunError(f"collection {collection!r} already holds {foreign:,} points that "
                            "are not the demo's videos; the demo writes made-up tags and will "
                            "not touch them", hint="run `batchrun demo` in an empty folder")
    points = [models.PointStruct(id=i, vector={}, payload=video)
              for i, video in zip(ids, videos, strict=True) if i not in present]
    for start in range(0, len(points), 500):
        client.upsert(collection, points=points[start:start + 500])
    return len(points)


def with_emulator(project: ProjectContext, dialect: str = "openai") -> ProjectContext:
    """The same project, with the emulator as provider, answering in `dialect`: the demo
    never spends money."""
    provider = project.config.provider.model_copy(update={
        "name": "emulator", "dialect": None if dialect == "openai" else dialect})
    return replace(project, config=project.config.model_copy(update={"provider": provider}))


DEMO_CLAUDE = "claude-haiku-4-5"


def for_dialect(job: Job, project: ProjectContext) -> Job:
    """The starter job as the emulator's `project` provider takes it: for the Anthropic
    dialect, a Claude model, and only the params the anthropic SDK declares (it has no
    temperature); the same prompts and output fields."""
    from . import changes
    from .jobparams import known_params

    provider = project.config.provider
    if provider.dialect != "anthropic":
        return replace(job, provider=provider)
    known = known_params("/v1/messages")
    spec = job.spec.model_copy(update={
        "model": DEMO_CLAUDE, "params": {k: v for k, v in job.spec.params.items() if k in known}})
    converted = replace(job, spec=spec, provider=provider)
    return replace(converted, fingerprint=changes.fingerprint(changes.request_shape(converted)))
