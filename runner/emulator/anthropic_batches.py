"""Message Batches, independent of HTTP: create, advance with the clock, cancel, list, delete.

A batch is `in_progress` → (`canceling` →) `ended`. Like the OpenAI dialect
(lifecycle.py), nothing runs in the background: whenever a batch is read it is brought to
the present, each request dated when it was due, with the same configured durations
(EmulatorConfig): `validating_seconds` before the first request runs,
`seconds_per_request`, `finalizing_seconds` after the last one, `cancelling_seconds`
from cancel to end, `completion_window_seconds` to expiry (24 h). Requests run in an
order shuffled by the seed, so results are not in request order, and a batch cut short
(expiry, the `expire_after_requests` fault, cancel) has finished a scattered subset; the
rest get `expired` or `canceled` results. `request_counts` are all `processing` until the
batch ends, as the real API documents.

On disk, under `<root>/anthropic/`: `batches/<id>.json` (the record, written whole and
renamed into place), `requests/<id>.jsonl` (one request per line, read by seeking, while
the batch runs), `results/<id>.jsonl` (appended, then the record that counts it is
committed; after a crash the file is cut back to what the record counts).
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import ids
from .anthropic_errors import AnthropicError
from .anthropic_errors import Path as FieldPath
from .anthropic_params import check_batch_request
from .config import EmulatorConfig
from .faults import Faults
from .log import RequestLog
from .state import _read_records, write_json_atomic
from .validation import line_offsets

CHUNK = 500  # requests executed between two commits of a batch's progress
RESULTS_LIFETIME = 29 * 86_400  # results are kept 29 days after creation, then archived


@dataclass(frozen=True)
class Limits:
    """The real service's limits per batch ("100,000 requests or 256 MB"; the stricter
    reading of MB). Tests lower them to exercise the refusals cheaply."""

    max_requests: int = 100_000
    max_batch_bytes: int = 256_000_000


@dataclass
class BatchRecord:
    id: str
    ordinal: int  # creation order: seeds the result order and the fault draws
    created_at: float
    expires_at: float
    total: int
    betas: list[str] = field(default_factory=list)  # the create call's anthropic-beta
    faults: dict[str, Any] = field(default_factory=dict)  # Faults.per_batch() at creation
    status: str = "in_progress"
    done: int = 0  # requests executed, in execution order
    counts: dict[str, int] = field(default_factory=lambda: {
        "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    results_bytes: int = 0  # committed length of results/<id>.jsonl

    def to_api(self, origin: str, now: float) -> dict[str, Any]:
        ended = self.status == "ended"
        counts = dict(self.counts, processing=0) if ended else {
            "processing": self.total, "succeeded": 0, "errored": 0, "canceled": 0,
            "expired": 0}
        archive = self.created_at + RESULTS_LIFETIME
        return {"id": self.id, "type": "message_batch", "processing_status": self.status,
                "request_counts": counts, "created_at": rfc3339(self.created_at),
                "expires_at": rfc3339(self.expires_at), "ended_at": rfc3339(self.ended_at),
                "cancel_initiated_at": rfc3339(self.cancel_initiated_at),
                "archived_at": rfc3339(archive) if ended and now >= archive else None,
                "results_url": f"{origin}/v1/messages/batches/{self.id}/results"
                if ended else None}


def rfc3339(when: float | None) -> str | None:
    if when is None:
        return None
    stamp = datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


# The answer to one request: (result object, log outcome, status code). Given by the app,
# so that this module knows nothing of how a Message is made.
Execute = Callable[[BatchRecord, str, dict[str, Any]], tuple[dict[str, Any], str, int]]


class MessageBatches:
    def __init__(self, root: Path, config: EmulatorConfig, clock: Callable[[], float],
                 faults: Callable[[], Faults], execute: Execute, log: RequestLog):
        self.root = root
        self.config = config
        self.clock = clock
        self.faults = faults
        self.execute = execute
        self.log = log
        self.limits = Limits()
        self.lock = threading.RLock()
        self.batches: dict[str, BatchRecord] = {}
        self._offsets: dict[str, array] = {}
        self._orders: dict[str, list[int]] = {}
        for sub in ("batches", "requests", "results"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        records = sorted(_read_records(self.root / "batches", BatchRecord),
                         key=lambda b: b.ordinal)
        self.batches = {b.id: b for b in records}
        self.log.load(set(self.batches))
        for batch in records:
            results = self._path("results", batch.id)
            if batch.status != "ended" and results.exists() \
                    and results.stat().st_size > batch.results_bytes:
                with results.open("r+b") as fh:  # work after the last commit: redo it
                    fh.truncate(batch.results_bytes)

    def _path(self, kind: str, batch_id: str) -> Path:
        return self.root / kind / f"{batch_id}.{'json' if kind == 'batches' else 'jsonl'}"

    def _save(self, batch: BatchRecord) -> None:
        write_json_atomic(self._path("batches", batch.id), dataclasses.asdict(batch))

    # -- operations
    def create(self, body: Any, betas: frozenset[str]) -> BatchRecord:
        if not isinstance(body, dict):
            raise AnthropicError("invalid_request_error", "The request body must be a JSON "
                                 "object with a 'requests' list.")
        for name in body:
            if name != "requests":
                raise FieldPath(name).extra()
        if "requests" not in body:
            raise FieldPath("requests").missing()
        requests = body["requests"]
        if not isinstance(requests, list):
            raise FieldPath("requests").wrong_type("list")
        if not requests:
            raise FieldPath("requests").says("List should have at least 1 item after "
                                             "validation, not 0")
        if len(requests) > self.limits.max_requests:
            raise FieldPath("requests").says(
                f"List should have at most {self.limits.max_requests} items after "
                f"validation, not {len(requests)}")
        seen: set[str] = set()
        custom_ids = [check_batch_request(r, i, seen) for i, r in enumerate(requests)]
        with self.lock:
            now = self.clock()
            batch = BatchRecord(id=ids.message_batch_id(), ordinal=self._next_ordinal(),
                                created_at=now,
                                expires_at=now + self.config.completion_window_seconds,
                                total=len(requests), betas=sorted(betas),
                                faults=self.faults().per_batch())
            offsets, offset = array("q"), 0
            with self._path("requests", batch.id).open("wb") as fh:
                for request in requests:
                    line = (json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8")
                    offsets.append(offset)
                    offset += fh.write(line)
            self._offsets[batch.id] = offsets
            self.log.append({"event": "batch_created", "time": now, "batch_id": batch.id,
                             "endpoint": "/v1/messages/batches", "custom_ids": custom_ids})
            self._save(batch)
            self.batches[batch.id] = batch
            return batch

    def get(self, batch_id: str) -> BatchRecord:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.status == "deleted":
                raise AnthropicError("not_found_error",
                                     f"message_batch_id: no Message Batch '{batch_id}'")
            self.advance(batch, self.clock())
            return batch

    def cancel(self, batch_id: str) -> BatchRecord:
        with self.lock:
            batch = self.get(batch_id)
            if batch.status == "ended":
                raise AnthropicError("invalid_request_error", f"Message Batch {batch_id} has "
                                     "already ended; only a batch in progress can be "
                                     "canceled.")
            if batch.status == "in_progress":
                batch.status, batch.cancel_initiated_at = "canceling", self.clock()
                self._save(batch)
            return batch

    def delete(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            batch = self.get(batch_id)
            if batch.status != "ended":
                raise AnthropicError("invalid_request_error", f"Message Batch {batch_id} is "
                                     f"{batch.status.replace('_', ' ')}; only a batch whose "
                                     "processing has ended can be deleted (cancel it first).")
            for kind in ("requests", "results"):
                self._path(kind, batch_id).unlink(missing_ok=True)
            batch.status = "deleted"  # a tombstone: the log keeps counting its executions
            self._save(batch)
            return {"id": batch_id, "type": "message_batch_deleted"}

    def page(self, limit: int, after_id: str | None,
             before_id: str | None) -> tuple[list[BatchRecord], bool]:
        """Newest first; `after_id`: the page after that batch; `before_id`: the page
        before it (newer ones). The page, and whether more lie in that direction."""
        with self.lock:
            now = self.clock()
            newest_first = [b for b in reversed(self.batches.values()) if b.status != "deleted"]
            for batch in newest_first:
                self.advance(batch, now)
            position = {b.id: i for i, b in enumerate(newest_first)}
            for name, cursor in (("after_id", after_id), ("before_id", before_id)):
                if cursor is not None and cursor not in position:
                    raise FieldPath(name).says(f"no Message Batch '{cursor}'")
            if before_id is not None:
                end = position[before_id]
                return newest_first[max(0, end - limit):end], end - limit > 0
            start = position[after_id] + 1 if after_id is not None else 0
            return newest_first[start:start + limit], start + limit < len(newest_first)

    def results(self, batch_id: str) -> Iterator[bytes]:
        """The results file, in chunks (opened now: a delete cannot cut the answer)."""
        with self.lock:
            batch = self.get(batch_id)
            if batch.status != "ended":
                raise AnthropicError("invalid_request_error", f"Message Batch {batch_id} has "
                                     "not ended yet; its results are available once "
                                     "processing_status is 'ended'.")
            if self.clock() >= batch.created_at + RESULTS_LIFETIME:
                raise AnthropicError("not_found_error", f"The results of Message Batch "
                                     f"{batch_id} were archived 29 days after its creation.")
            handle = self._path("results", batch_id).open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(1 << 16):
                    yield chunk
        return chunks()

    def _next_ordinal(self) -> int:
        return max((b.ordinal for b in self.batches.values()), default=0) + 1

    # -- time
    def advance(self, batch: BatchRecord, now: float) -> None:
        while batch.status not in ("ended", "deleted"):
            if batch.status == "in_progress":
                if not self._progress(batch, now):
                    return
            else:  # canceling: nothing more runs
                due = (batch.cancel_initiated_at or now) + self.config.cancelling_seconds
                if now < due:
                    return
                self._end(batch, due, "canceled")

    def _progress(self, batch: BatchRecord, now: float) -> bool:
        """Run what was due by `now`; True when the batch ended."""
        cfg = self.config
        start = batch.created_at + cfg.validating_seconds
        cap = batch.faults.get("expire_after_requests")
        limit = batch.total if cap is None else min(batch.total, cap)
        until = min(now, batch.expires_at)
        if until < start:
            due = 0
        elif cfg.seconds_per_request <= 0:
            due = limit
        else:
            due = min(limit, int((until - start) / cfg.seconds_per_request))
        while batch.done < due:
            self._run(batch, min(due, batch.done + CHUNK), start)
        if batch.done == batch.total:
            end = start + batch.total * cfg.seconds_per_request + cfg.finalizing_seconds
            if now < end:
                return False
            self._end(batch, end)
        elif cap is not None and batch.done >= cap:
            self._end(batch, start + batch.done * cfg.seconds_per_request, "expired")
        elif now >= batch.expires_at:
            self._end(batch, batch.expires_at, "expired")
        else:
            return False
        return True

    def _requests(self, batch: BatchRecord, begin: int,
                  end: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, request) in execution order, read by seeking in the requests file."""
        path = self._path("requests", batch.id)
        if batch.id not in self._offsets:  # after a restart
            self._offsets[batch.id] = line_offsets(path)
        if batch.id not in self._orders:
            order = list(range(batch.total))
            random.Random(f"{self.config.seed}/{batch.ordinal}").shuffle(order)
            self._orders[batch.id] = order
        offsets, order = self._offsets[batch.id], self._orders[batch.id]
        with path.open("rb") as fh:
            for position in range(begin, end):
                fh.seek(offsets[order[position]])
                yield position, json.loads(fh.readline())

    def _run(self, batch: BatchRecord, end: int, start: float) -> None:
        events, first = [], batch.done
        with self._path("results", batch.id).open("ab") as out:
            for position, request in self._requests(batch, batch.done, end):
                when = start + (position + 1) * self.config.seconds_per_request
                result, outcome, status = self.execute(batch, request["custom_id"],
                                                       request["params"])
                out.write(_line(request["custom_id"], result))
                batch.counts[result["type"]] += 1
                events.append({"event": "request_executed", "time": when,
                               "batch_id": batch.id, "custom_id": request["custom_id"],
                               "status_code": status, "outcome": outcome,
                               "billed": result["type"] == "succeeded"})
            batch.results_bytes = out.tell()
        self.log.append_executed(batch.id, first, events)  # redone after a crash: once
        batch.done = end
        self._save(batch)

    def _end(self, batch: BatchRecord, at: float, leftover: str | None = None) -> None:
        if leftover and batch.done < batch.total:
            with self._path("results", batch.id).open("ab") as out:
                for _, request in self._requests(batch, batch.done, batch.total):
                    out.write(_line(request["custom_id"], {"type": leftover}))
                batch.results_bytes = out.tell()
            batch.counts[leftover] += batch.total - batch.done
        self._path("results", batch.id).touch()
        batch.status, batch.ended_at = "ended", at
        self._save(batch)
        self._path("requests", batch.id).unlink(missing_ok=True)
        self._offsets.pop(batch.id, None)
        self._orders.pop(batch.id, None)


def _line(custom_id: str, result: dict[str, Any]) -> bytes:
    return (json.dumps({"custom_id": custom_id, "result": result}, ensure_ascii=False)
            + "\n").encode("utf-8")
