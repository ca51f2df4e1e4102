"""`batchrun demo`: the starter project run for free on real data.

The demo seeds the embedded Qdrant with 300 real trending YouTube videos shipped with the
package (runner/data/README.md says where they come from), adds the named vector
jobs/embed.yaml writes (as `apply --create-vectors` would), applies jobs/tags.yaml and
jobs/embed.yaml against the emulator, never against a paid API, and ends with one vector
search over the new vectors. The emulator's vectors are deterministic functions of the
text, not of its meaning: the search shows that the vectors are written where Qdrant
searches them, not that the neighbours are alike.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from qdrant_client import QdrantClient, models

from .errors import BatchrunError
from .jobs import Job
from .project import ProjectContext

if TYPE_CHECKING:
    from .workspace import Workspace

SAMPLE = "videos.sample.jsonl.gz"
COLLECTION = "videos"
DEMO_JOBS = ("jobs/tags.yaml", "jobs/embed.yaml")
QUERY = "cooking recipes"


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


def demo_jobs(dialect: str) -> tuple[str, ...]:
    """The demo's job files for an emulator answering in `dialect`: Anthropic has no
    embeddings endpoint, so its demo tags only."""
    return DEMO_JOBS if dialect != "anthropic" else DEMO_JOBS[:1]


def ensure_demo_jobs(root: Path) -> list[str]:
    """The starter project when `root` has none; in a folder an older demo made, the demo
    jobs it lacks (embed.yaml came later). Never overwrites a file."""
    from .starter import ensure_project, starter_files

    written = ensure_project(root)
    if written:
        return written
    missing = [rel for rel in DEMO_JOBS if not (root / rel).exists()]
    if missing:
        starter = dict(starter_files())
        for rel in missing:
            (root / rel).write_bytes(starter[rel])
    return missing


def add_vectors(client: QdrantClient, jobs: list[Job]) -> list[str]:
    """Add the named vectors the jobs write and the collection lacks, with the model's
    dimension and Cosine distance — what `apply --create-vectors` does — so that `plan`
    and `apply` work afterwards without the flag. Returns what was done, one line each."""
    from .vectors import check_vector

    return [f"{job.name}: {done}" for job in jobs
            if (done := check_vector(client, job, create=True))]


def nearest(ws: Workspace, job: Job, query: str, limit: int = 3) -> list[tuple[str, float]]:
    """The titles of the `limit` points whose vector from `job` is nearest to `query`,
    with their scores: the query embedded as the job embeds a point (same model, params
    and input rule) by the provider's synchronous endpoint, then one Qdrant query."""
    from .keys import request_key
    from .render import fit_input, request_frame
    from .results import Expect

    body = request_frame(job).body({"input": fit_input(job, query)})
    outcome = ws.api.answer_now(job.spec.endpoint, body, expect=Expect.EMBEDDING,
                                custom_id=request_key(job.spec.endpoint, body))
    if not outcome.ok:
        raise BatchrunError(f"embedding the query {query!r} with {job.spec.model} failed: "
                            f"{outcome.reason}", hint="run `batchrun demo` again")
    hits = ws.qdrant.query_points(job.spec.source.collection, query=outcome.value,
                                  using=job.output_vector or None, limit=limit,
                                  with_payload=["title"]).points
    return [((hit.payload or {}).get("title", f"point {hit.id}"), hit.score) for hit in hits]
