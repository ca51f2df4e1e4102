"""Qdrant at the edge: connecting, and streaming the points a job selects.

Reading streams page by page (`scroll_page` points, default 10,000: the embedded engine
re-sorts every id on every page, so small pages are quadratic) and asks only for the
fields the template reads plus the job's stamp, never vectors. Writing results back is
writeback.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BatchrunError, Location, SpecError
from .filters import qdrant_filter
from .jobs import Job
from .lock import StateLock
from .project import ProjectContext
from .writeback import STAMP_PREFIX, stamp_key

if TYPE_CHECKING:
    from qdrant_client import QdrantClient


@dataclass(frozen=True)
class Point:
    id: Any
    payload: dict      # what the template sees: the selected fields
    stamp: dict | None  # what the last write-back of this job recorded
    vector: Any = None  # the named vector asked for (Selection.points(vector=…)), if any


def connect(project: ProjectContext) -> QdrantClient:
    """The project's Qdrant: a server by URL, or the embedded engine (the default)."""
    from qdrant_client import QdrantClient  # the commands that read Qdrant, only

    cfg = project.config.qdrant
    where = Location(project.file or "batchrun.yaml", 0, "qdrant")
    if cfg.url:
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if not api_key:
                raise BatchrunError(f"environment variable {cfg.api_key_env} is not set",
                                    where=where, hint="export the Qdrant API key first")
        return QdrantClient(url=cfg.url, api_key=api_key, timeout=cfg.timeout)
    path = cfg.path or ".qdrant"
    if path == ":memory:":
        return QdrantClient(location=":memory:")
    try:
        return QdrantClient(path=str(project.root / path))
    except RuntimeError as exc:  # the embedded engine allows one process per folder
        holder = StateLock.holder_of(project.state_dir)
        who = (f" (batchrun {holder.get('command', '')}, pid {holder['pid']} since "
               f"{holder.get('since', '?')})" if holder.get("pid") else "")
        raise BatchrunError(f"embedded Qdrant at {path} is in use by another process{who}",
                            where=where, hint="the embedded engine serves one process at a "
                            "time, readers too: wait for it to finish (`batchrun status` "
                            "works meanwhile), or use a Qdrant server (qdrant: {url: ...})"
                            ) from exc


class Selection:
    """The points one job reads: its collection, filtered, with its fields and stamp."""

    def __init__(self, client: QdrantClient, job: Job, *, page: int):
        self.client = client
        self.job = job
        self.page = page
        self.collection = job.spec.source.collection
        self.stamp_key = stamp_key(job.name)
        self.filter = (qdrant_filter(job.spec.source.filter, job.positions, ("source", "filter"))
                       if job.spec.source.filter is not None else None)
        self._check_collection()

    def _check_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            names = sorted(c.name for c in self.client.get_collections().collections)
            known = f"collections: {', '.join(names)}" if names else "no collections exist yet"
            raise SpecError(f"collection {self.collection!r} not found in Qdrant ({known})",
                            where=self.job.at("source", "collection"),
                            hint="name a collection that exists" if names else
                            "point qdrant: in batchrun.yaml at your data (path or url), or "
                            "run `batchrun demo` here to load the sample videos")

    def count(self) -> int:
        total = self.client.count(self.collection, count_filter=self.filter, exact=True).count
        limit = self.job.spec.source.limit
        return min(total, limit) if limit else total

    def points(self, limit: int | None = None, extra: Iterable[str] = (),
               vector: str | None = None) -> Iterator[Point]:
        """Stream the selected points with their fields and stamp, page by page (with
        `vector`, that named vector too, in `Point.vector`)."""
        fields = self.job.spec.source.fields
        with_payload: Any = [*fields, *extra, self.stamp_key] if fields is not None else True
        remaining = min(filter(None, (self.job.spec.source.limit, limit)), default=None)
        offset = None
        while True:
            size = self.page if remaining is None else min(self.page, remaining)
            records, offset = self.client.scroll(
                self.collection, scroll_filter=self.filter, limit=size, offset=offset,
                with_payload=with_payload,
                with_vectors=[vector] if vector is not None else False)
            for record in records:
                point = self._point(record.id, record.payload or {}, keep=extra)
                if vector is not None:
                    vectors = record.vector if isinstance(record.vector, dict) else \
                        {"": record.vector}
                    point = Point(point.id, point.payload, point.stamp, vectors.get(vector))
                yield point
            if remaining is not None:
                remaining -= len(records)
                if remaining <= 0:
                    return
            if offset is None:
                return

    def peek(self, limit: int | None) -> Iterator[tuple[Any, dict, Any]]:
        """Up to `limit` selected points (None: all, streamed) as (id, inputs, written
        result) for a person; the result of a vector job is its vector."""
        top = self.job.output_key.split(".")[0]
        vector = self.job.output_vector
        for point in self.points(limit=limit, extra=[top] if vector is None else [],
                                 vector=vector):
            if vector is not None:
                yield point.id, point.payload, point.vector
            else:
                yield point.id, point.payload, take(point.payload, self.job.output_key)

    def _point(self, point_id: Any, payload: dict, keep: Iterable[str] = ()) -> Point:
        stamp = payload.pop(self.stamp_key, None)
        if self.job.spec.source.fields is None:  # all fields but batchrun's own
            payload = {k: v for k, v in payload.items() if k in keep or
                       not k.startswith(STAMP_PREFIX)}
            if self.job.output_vector is None and not keep:
                take(payload, self.job.output_key)   # a job never reads its own result
        return Point(point_id, payload, stamp if isinstance(stamp, dict) else None)


def has(payload: dict, dotted: str) -> bool:
    """Whether a payload holds a value at a (dotted) key."""
    head, _, rest = dotted.partition(".")
    if head not in payload:
        return False
    return not rest or (isinstance(payload[head], dict) and has(payload[head], rest))


def take(payload: dict, dotted: str) -> Any:
    """Remove and return the value at a dotted key (None when absent); a nested object
    left empty goes too, so a payload reads the same before the value was written."""
    parent, _, leaf = dotted.rpartition(".")
    if not parent:
        return payload.pop(leaf, None)
    holder = payload.get(parent.split(".")[0])
    if not isinstance(holder, dict):
        return None
    holder = dict(holder)                  # the caller's nested objects stay as they were
    payload[parent.split(".")[0]] = holder
    value = take(holder, dotted.split(".", 1)[1])
    if not holder:
        del payload[parent.split(".")[0]]
    return value
