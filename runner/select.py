"""Qdrant at the edge: connecting, and streaming the points a job selects.

Reading streams page by page and asks only for the fields the template reads plus the
parts of the job's stamp a pass decides by (writeback.STAMP_READ), never vectors.
Writing results back is writeback.py.

The paging rule. A Qdrant server's scroll is indexed: a page costs what it returns, so
pages are `scroll_page` points (default 10,000). The embedded engine (qdrant-client's
local mode) is not: every scroll call sorts every id of the collection and evaluates the
filter on every point before it returns a page (`LocalCollection._scroll_by_id`), and no
call of qdrant-client returns filtered points without that pass (`count` makes the same
pass, `retrieve` takes no filter). So on the embedded engine one pass over a job makes at
most `EMBEDDED_SCROLLS` scroll calls, whatever the size of the collection: a page is
`max(scroll_page, ceil(points in the collection / EMBEDDED_SCROLLS))`, and reading a
collection of N points costs a bounded number of O(N log N) passes instead of N / 10,000
of them. The memory bound: a page holds at most a quarter of the collection's points,
each as a record with only the selected fields (strings are shared with the engine, which
already holds every point in memory, several times a record's size), and the previous
page is released before the next is read.

With a partition (`--partition I/N`, docs/scale.md), the filter also holds Qdrant's
`slice` condition: the points whose id hashes to slice I-1 of N, disjoint between runners.
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
from .project import Partition, ProjectContext
from .writeback import STAMP_PREFIX, STAMP_READ, stamp_key, stamp_path

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

EMBEDDED_SCROLLS = 4   # scroll calls per pass over the embedded engine (see the paging rule)


def page_size(collection_points: int, scroll_page: int, *, embedded: bool) -> int:
    """Points per scroll call (the paging rule above)."""
    if not embedded:
        return scroll_page
    return max(scroll_page, -(-collection_points // EMBEDDED_SCROLLS))


@dataclass(frozen=True)
class Point:
    id: Any
    payload: dict      # what the template sees: the selected fields
    stamp: dict | None  # what the last write-back of this job recorded
    vector: Any = None  # the named vector asked for (Selection.points(vector=…)), if any


def connect(project: ProjectContext) -> QdrantClient:
    """The project's Qdrant: a server by URL, or the embedded engine (the default). Its
    failures (a server that does not answer, an embedded folder deleted meanwhile) come
    out as what happened and what to do (qdrantedge.py)."""
    from qdrant_client import QdrantClient  # the commands that read Qdrant, only

    from .qdrantedge import Diagnosed

    cfg = project.config.qdrant
    where = Location(project.file or "batchrun.yaml", 0, "qdrant")
    if cfg.url:
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if not api_key:
                raise BatchrunError(f"environment variable {cfg.api_key_env} is not set",
                                    where=where, hint="export the Qdrant API key first")
        client = QdrantClient(url=cfg.url, api_key=api_key, timeout=cfg.timeout)
        return Diagnosed.of(client, project)
    path = cfg.path or ".qdrant"
    if path == ":memory:":
        return QdrantClient(location=":memory:")
    try:
        return Diagnosed.of(QdrantClient(path=str(project.root / path)), project)
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

    def __init__(self, client: QdrantClient, job: Job, *, page: int, embedded: bool = False,
                 partition: Partition | None = None):
        self.client = client
        self.job = job
        self.scroll_page = page
        self.embedded = embedded
        self.collection = job.spec.source.collection
        self.stamp_key = stamp_key(job.name)
        self.stamp_parts = [stamp_path(job.name, part) for part in STAMP_READ]
        self.filter = (qdrant_filter(job.spec.source.filter, job.positions, ("source", "filter"))
                       if job.spec.source.filter is not None else None)
        if partition is not None:
            self.filter = _with_slice(self.filter, partition)
        self._check_collection()

    @property
    def page(self) -> int:
        """Points per scroll call: `scroll_page`, or on the embedded engine enough that a
        pass makes at most EMBEDDED_SCROLLS calls (counting without a filter is free there)."""
        if not self.embedded:
            return self.scroll_page
        return page_size(self.client.count(self.collection, exact=True).count,
                         self.scroll_page, embedded=True)

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
        with_payload: Any = [*fields, *extra, *self.stamp_parts] if fields is not None else True
        for record in self._records(limit, with_payload,
                                    [vector] if vector is not None else False):
            point = self._point(record.id, record.payload or {}, keep=extra)
            if vector is not None:
                vectors = record.vector if isinstance(record.vector, dict) else \
                    {"": record.vector}
                point = Point(point.id, point.payload, point.stamp, vectors.get(vector))
            yield point

    def ids(self) -> Iterator[Any]:
        """The selected points' ids, page by page, without payloads (for sampling)."""
        for record in self._records(None, False, False):
            yield record.id

    def _records(self, limit: int | None, with_payload: Any, with_vectors: Any) -> Iterator[Any]:
        """The selected records, page by page, at most `limit` (and source.limit)."""
        remaining = min(filter(None, (self.job.spec.source.limit, limit)), default=None)
        page = self.page
        offset = None
        while True:
            size = page if remaining is None else min(page, remaining)
            records, offset = self.client.scroll(
                self.collection, scroll_filter=self.filter, limit=size, offset=offset,
                with_payload=with_payload, with_vectors=with_vectors)
            read = len(records)
            yield from records
            records.clear()   # the next page is read with this one released
            if remaining is not None:
                remaining -= read
                if remaining <= 0:
                    return
            if offset is None:
                return

    def points_with_ids(self, ids: list[Any]) -> list[Point]:
        """Those of `ids` that are selected (the job's filter holds for them), as points;
        ids not selected, or not in the collection, are left out."""
        from qdrant_client import models

        by_id = models.HasIdCondition(has_id=ids)
        scope = models.Filter(must=[by_id, self.filter] if self.filter else [by_id])
        fields = self.job.spec.source.fields
        records, _ = self.client.scroll(
            self.collection, scroll_filter=scope, limit=len(ids) or 1,
            with_payload=[*fields, *self.stamp_parts] if fields is not None else True,
            with_vectors=False)
        return [self._point(record.id, record.payload or {}) for record in records]

    def stamps(self, ids: list[Any], part: str) -> dict[Any, dict | None]:
        """One part of the stamps of `ids` (a part a pass does not read, such as the
        field digests), in one call: id → {part: value}, None for a point without one."""
        records = self.client.retrieve(self.collection, ids,
                                       with_payload=[stamp_path(self.job.name, part)])
        return {record.id: (record.payload or {}).get(self.stamp_key) for record in records}

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


def _with_slice(flt: Any, partition: Partition) -> Any:
    """The job's filter, narrowed to the partition's slice of the id space."""
    from qdrant_client import models

    if not hasattr(models, "SliceCondition"):
        raise BatchrunError("--partition needs qdrant-client 1.20 or later (the `slice` "
                            "filter condition); this one has none",
                            hint="pip install -U qdrant-client; a Qdrant server needs 1.19 "
                                 "or later")
    part = models.SliceCondition(slice=models.Slice(total=partition.count,
                                                    index=partition.index - 1))
    return models.Filter(must=[part] if flt is None else [part, flt])


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
