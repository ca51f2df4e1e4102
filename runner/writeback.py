"""Writing results back into Qdrant, each beside its stamp.

A point's result goes under the job's output key and its stamp under `_batchrun_<job>`,
in one top-level merge (`set_payload`), so two jobs writing the same point never touch
each other's keys. A dotted output key (`llm.tags`) is set inside its nested object,
beside what else it holds; an embeddings job with `output.vector` writes the vector into
that named vector (searchable), and only the stamp into the payload. The stamp records
what produced the result — the request key, the digest of the inputs it was rendered
from, who answered, the model, the batch, when, and where it went — and is what the next
apply compares to decide that a point is up to date.

Writes are buffered and sent `write_batch` points per `batch_update_points` call. A point
deleted while its request was out (batches take hours) is let go; the others are written.

The embedded engine stores a whole point (payload and every vector) on each operation
that touches it, one SQLite commit each: a vector and its stamp as two operations cost
two commits. It serves one process at a time, so there the writer reads the points of a
batch, merges the result and the stamp in, and upserts each point once (`whole_points`).
A server takes each batch in one request, and gets the operations as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import crash
from .ledger import Ledger
from .records import BATCH, Result

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from .jobs import Job

STAMP_PREFIX = "_batchrun_"
# The parts of a stamp a pass decides by (decide.py). A pass reads only these: the rest
# (the field digests, the model, when) was half of what a stamp adds to a scroll page
# (543 → 272 bytes a point, traced by bench/scale.py), and only a changed point needs the
# digests (read for those points alone: pointchanges.ChangedPoints).
STAMP_READ = ("key", "inputs", "provider", "batch", "to")


def stamp_key(job_name: str) -> str:
    """The payload key holding a job's stamp, beside its result."""
    return STAMP_PREFIX + job_name


def stamp_path(job_name: str, part: str | None = None) -> str:
    """The stamp's key (or one part of the stamp) as a Qdrant JSON path: quoted, since a
    job name may hold a dot, which a path reads as nesting."""
    quoted = f'"{stamp_key(job_name)}"'
    return quoted if part is None else f"{quoted}.{part}"


def stamp(inputs: str, result: Result, provider: str, to: str,
          fields: dict[str, str] | None = None) -> dict:
    """What a point carries beside its result: the request key that produced it, the
    digest of the inputs it was rendered from (and of each field it read, so a later plan
    can name what changed), who answered (a provider's base URL, or `emulator`), the
    model, the batch, when the answer arrived, and where it was written (`to`: the output
    key, or `vector NAME`). An answer from the synchronous API (`batchrun try`) has no
    batch, and says how it came and at what price."""
    out: dict[str, Any] = {"key": result.key, "inputs": inputs, "provider": provider,
                           "model": result.model, "batch": result.batch_id, "at": result.at,
                           "to": to}
    if fields is not None:
        out["fields"] = fields
    if result.via != BATCH:
        out.update(via=result.via, price=result.price)
    return out


class Writer:
    """The writes of one job to its collection, buffered, `write_batch` points a call."""

    def __init__(self, client: QdrantClient, job: Job, *, write_batch: int,
                 whole_points: bool = False):
        self.client = client
        self.job = job
        self.collection = job.spec.source.collection
        self.stamp_key = stamp_key(job.name)
        self.stamp_path = stamp_path(job.name)
        self.write_batch = write_batch
        self._writes: list[tuple[Any, list[Any]]] = []   # (point id, its operations)
        self.written = 0
        # Where the result goes: a named vector, a nested key (parent path, leaf), or a
        # top-level key merged together with the stamp.
        self.vector = job.output_vector
        parent, _, leaf = job.output_key.rpartition(".")
        self.parent, self.leaf = parent or None, leaf
        # Two operations per point (a vector or a nested key, and the stamp) are merged
        # into one upsert per point on the embedded engine (see the module docstring).
        self.whole_points = whole_points and (self.vector is not None or self.parent is not None)

    def result(self, point_id: Any, result: Result, inputs: str, provider: str,
               fields: dict[str, str] | None = None) -> None:
        """A result and its stamp."""
        from qdrant_client import models

        stamped = {self.stamp_key: stamp(inputs, result, provider, self.job.writes, fields)}
        if self.vector is not None:
            ops = [models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
                points=[models.PointVectors(id=point_id, vector={self.vector: result.value})])),
                _set(point_id, stamped)]
        elif self.parent is not None:   # beside what else the nested object holds
            ops = [_set(point_id, {self.leaf: result.value}, key=self.parent),
                   _set(point_id, stamped)]
        else:
            ops = [_set(point_id, {self.leaf: result.value, **stamped})]
        self._add(point_id, ops)

    def restamp(self, point_id: Any, inputs: str, fields: dict[str, str] | None = None) -> None:
        """The same result, rendered from inputs that hash differently (a new digest
        scheme, a field order Qdrant changed, a field the template does not read): only
        the stamp's digests are renewed, merged into the stamp (the rest of it stays)."""
        renewed: dict[str, Any] = {"inputs": inputs}
        if fields is not None:
            renewed["fields"] = fields
        self._add(point_id, [_set(point_id, renewed, key=self.stamp_path)])

    def _add(self, point_id: Any, ops: list[Any]) -> None:
        self._writes.append((point_id, ops))
        if len(self._writes) >= self.write_batch:
            self.flush()

    def flush(self) -> int:
        """Send the writes still buffered; returns how many points they touched."""
        writes, self._writes = self._writes, []
        if writes:
            try:
                self._send(writes)
            except Exception:
                # A point deleted while its request was out fails the whole call: write
                # the others, and let the deleted ones go.
                existing = self._existing(writes)
                if len(existing) == len(writes):
                    raise   # not a deleted point: the original error stands
                writes = existing
                if writes:
                    self._send(writes)
            crash.point("mid-write")
        self.written += len(writes)
        return len(writes)

    def _send(self, writes: list[tuple[Any, list[Any]]]) -> None:
        if self.whole_points:
            self._upsert_merged(writes)
            return
        self.client.batch_update_points(self.collection, [op for _, ops in writes for op in ops],
                                        wait=True)

    def _upsert_merged(self, writes: list[tuple[Any, list[Any]]]) -> None:
        """Each point once: read it, apply its operations to the copy, store it whole."""
        from qdrant_client import models

        records = self.client.retrieve(self.collection, [point_id for point_id, _ in writes],
                                       with_payload=True, with_vectors=True)
        current = {record.id: record for record in records}
        missing = [point_id for point_id, _ in writes if point_id not in current]
        if missing:
            raise LookupError(f"points {missing[:5]} no longer exist")   # see flush()
        points = []
        for point_id, ops in writes:
            record = current[point_id]
            payload = dict(record.payload or {})
            vector: dict[str, Any] = dict(record.vector) if isinstance(record.vector, dict) \
                else ({} if record.vector is None else {"": record.vector})
            for op in ops:
                if isinstance(op, models.UpdateVectorsOperation):
                    written = op.update_vectors.points[0].vector   # {name: values}, ours
                    assert isinstance(written, dict)
                    vector.update(written)
                else:
                    _merge_into(payload, op.set_payload.payload, op.set_payload.key)
            points.append(models.PointStruct(
                id=point_id, payload=payload,
                vector=vector[""] if set(vector) == {""} else vector))
        self.client.upsert(self.collection, points=points, wait=True)

    def _existing(self, writes: list[tuple[Any, list[Any]]]) -> list[tuple[Any, list[Any]]]:
        ids = [point_id for point_id, _ in writes]
        present = {p.id for p in self.client.retrieve(self.collection, ids, with_payload=False)}
        return [write for write in writes if write[0] in present]


def _merge_into(payload: dict, values: dict, key: str | None) -> None:
    """set_payload's merge, on a copy: `values` into the object at the path `key` (made
    when missing), or at the top."""
    target = payload
    for part in _path_keys(key or ""):
        inner = target.get(part)
        target[part] = inner = dict(inner) if isinstance(inner, dict) else {}
        target = inner
    target.update(values)


def _path_keys(path: str) -> list[str]:
    """The keys of a JSON path of plain (`llm.tags`) and quoted (`"_batchrun_a.b".inputs`)
    keys, the two kinds batchrun writes."""
    keys = []
    while path:
        if path.startswith('"'):
            end = path.index('"', 1)
            keys.append(path[1:end])
            path = path[end + 1:].removeprefix(".")
        else:
            key, _, path = path.partition(".")
            keys.append(key)
    return keys


def _set(point_id: Any, payload: dict, key: str | None = None) -> Any:
    from qdrant_client import models

    return models.SetPayloadOperation(set_payload=models.SetPayload(
        payload=payload, points=[point_id], key=key))


def write_answered(ledger: Ledger, writer: Writer) -> int:
    """Write the results that arrived for the points the last pass left waiting; returns
    how many points were written."""
    job = writer.job.name
    written = 0
    for point_id, inputs, fields, result in ledger.answered_points(job):
        writer.result(point_id, result, inputs, ledger.provider, fields)
        written += 1
    if written:
        writer.flush()
        with ledger.transaction():
            ledger.forget_answered(job)
    return written
