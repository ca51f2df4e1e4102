"""Writing results back into Qdrant, each beside its stamp.

A point's result goes under the job's output key and its stamp under `_batchrun_<job>`,
in one top-level merge (`set_payload`), so two jobs writing the same point never touch
each other's keys. The stamp records what produced the result — the request key, the
digest of the inputs it was rendered from, who answered, the model, the batch, when — and
is what the next apply compares to decide that a point is up to date.

Writes are buffered and sent `write_batch` points per `batch_update_points` call. A point
deleted while its request was out (batches take hours) is let go; the others are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import crash
from .ledger import Ledger
from .records import Result

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from .jobs import Job

STAMP_PREFIX = "_batchrun_"


def stamp_key(job_name: str) -> str:
    """The payload key holding a job's stamp, beside its result."""
    return STAMP_PREFIX + job_name


def stamp(inputs: str, result: Result, provider: str) -> dict:
    """What a point carries beside its result: the request key that produced it, the
    digest of the inputs it was rendered from, who answered (a provider's base URL, or
    `emulator`), the model, the batch and when the answer arrived."""
    return {"key": result.key, "inputs": inputs, "provider": provider, "model": result.model,
            "batch": result.batch_id, "at": result.at}


class Writer:
    """The writes of one job to its collection, buffered."""

    def __init__(self, client: QdrantClient, job: Job, *, write_batch: int):
        self.client = client
        self.job = job
        self.collection = job.spec.source.collection
        self.stamp_key = stamp_key(job.name)
        self.write_batch = write_batch
        self._writes: list[models.SetPayloadOperation] = []
        self.written = 0

    def result(self, point_id: Any, result: Result, inputs: str, provider: str) -> None:
        """A result and its stamp."""
        self._merge(point_id, {self.job.output_key: result.value,
                               self.stamp_key: stamp(inputs, result, provider)})

    def restamp(self, point_id: Any, old_stamp: dict, inputs: str) -> None:
        """The same result, rendered from inputs that hash differently (a new digest
        scheme, a field order Qdrant changed): only the stamp's `inputs` is renewed."""
        self._merge(point_id, {self.stamp_key: {**old_stamp, "inputs": inputs}})

    def _merge(self, point_id: Any, payload: dict) -> None:
        from qdrant_client import models

        self._writes.append(models.SetPayloadOperation(
            set_payload=models.SetPayload(payload=payload, points=[point_id])))
        if len(self._writes) >= self.write_batch:
            self.flush()

    def flush(self) -> int:
        """Send the writes still buffered; returns how many points they touched."""
        writes, self._writes = self._writes, []
        if writes:
            try:
                self.client.batch_update_points(self.collection, writes, wait=True)
            except Exception:
                # A point deleted while its request was out fails the whole call: write
                # the others, and let the deleted ones go.
                existing = self._existing(writes)
                if len(existing) == len(writes):
                    raise   # not a deleted point: the original error stands
                writes = existing
                if writes:
                    self.client.batch_update_points(self.collection, writes, wait=True)
            crash.point("mid-write")
        self.written += len(writes)
        return len(writes)

    def _existing(self, writes: list[models.SetPayloadOperation]) -> list:
        ids = [op.set_payload.points[0] for op in writes]   # type: ignore[index]
        present = {p.id for p in self.client.retrieve(self.collection, ids, with_payload=False)}
        return [op for op, point_id in zip(writes, ids, strict=True) if point_id in present]


def write_answered(ledger: Ledger, writer: Writer) -> int:
    """Write the results that arrived for the points the last pass left waiting; returns
    how many points were written."""
    job = writer.job.name
    written = 0
    for point_id, inputs, result in ledger.answered_points(job):
        writer.result(point_id, result, inputs, ledger.provider)
        written += 1
    if written:
        writer.flush()
        with ledger.transaction():
            ledger.forget_answered(job)
    return written
