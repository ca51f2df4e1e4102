"""The ledger's records, typed: what a row of each table means, and the states it can be in.

Everything that reads the ledger gets these, never raw rows, so a column is named in one
place (here) and a typo is a type error, not a KeyError at run time.
"""

from __future__ import annotations

import array
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Request states. A key is `queued` while a batch that carries it is not yet collected.
QUEUED, RETRY, FAILED = "queued", "retry", "failed"
# Why a point still waits (Ledger.waiting_states). All but `failed` mean "not settled yet".
# `prepared`: in a shard another job packed and nobody submitted (`batchrun submit` sends
# it); this run cannot settle it, so it does not wait for it.
ANSWERED, IN_FLIGHT, PREPARED, RETRY_READY, BACKING_OFF, UNSENT, FAILED_FOR_GOOD = (
    "answered", "in_flight", "prepared", "retry_ready", "backing_off", "unsent", "failed")
UNSETTLED = (ANSWERED, IN_FLIGHT, RETRY_READY, BACKING_OFF, UNSENT)
IN_FLIGHT_STATES = (ANSWERED, IN_FLIGHT)            # sent, answer not yet written
WAITING_STATES = (RETRY_READY, BACKING_OFF, UNSENT, PREPARED)   # not sent yet
# Batch statuses at the provider that end a batch.
TERMINAL = ("completed", "failed", "expired", "cancelled")
SUBMITTING = "submitting"   # a batch's status from its intent until the provider has it


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RequestState:
    state: str
    batch_seq: int | None
    attempts: int
    deferrals: int
    not_before: float
    last_error: str | None


BATCH, SYNC = "batch", "sync"   # how an answer came: in a batch, or at once (`try`)


@dataclass(frozen=True)
class Result:
    key: str
    kind: str
    value: Any
    model: str | None
    batch_id: str | None
    at: str | None
    via: str = BATCH

    @property
    def price(self) -> str:
        """The price column the answer was paid at."""
        return "standard" if self.via == SYNC else "batch"


@dataclass(frozen=True)
class JobRecord:
    """A job as its last packing pass recorded it."""

    name: str
    file: str | None
    fingerprint: str | None
    endpoint: str | None
    model: str | None
    output_key: str | None
    details: dict | None       # what shaped its requests (changes.request_shape)


@dataclass(frozen=True)
class BatchRecord:
    """One shard and the batch created from it: intent, provider state, what it cost."""

    seq: int
    job: str
    shard: str
    endpoint: str
    model: str
    requests: int
    bytes: int
    est_input_tokens: int | None
    max_attempts: int
    intent_at: float
    status: str
    upload_at: float | None
    input_file_id: str | None
    batch_id: str | None
    info: dict
    collected_at: float | None
    output_file: str | None
    error_file: str | None
    seen: dict | None
    input_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    billed_model: str | None
    cost_usd: str | None
    cost_standard_usd: str | None
    note: str | None
    create_at: float | None = None   # a create call began then; its outcome may be unknown
    cache_write_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    adopted: str | None = None    # how an earlier run's batch was found: metadata, ids, size

    @classmethod
    def of(cls, row: sqlite3.Row) -> BatchRecord:
        data = dict(row)
        data["info"] = json.loads(data["info"] or "{}")
        data["seen"] = json.loads(data["seen"]) if data["seen"] else None
        return cls(**data)

    @property
    def created_id(self) -> str:
        """The provider's id of a batch it has created (the ledger's in_flight() are)."""
        if self.batch_id is None:
            raise ValueError(f"batch {self.seq} of {self.job} was never created")
        return self.batch_id


@dataclass(frozen=True)
class FailureRecord:
    """A request that failed for good, and the points of one job still waiting for it."""

    key: str
    attempts: int
    last_error: str | None
    point: Any            # the first point waiting for it
    points: int           # how many points wait for it


@dataclass(frozen=True)
class PointFailureRecord:
    """A point the last packing pass of its job could not turn into a request, and why."""

    point: Any            # the point id
    reason: str           # where and what


def encode_value(kind: str, value: Any) -> bytes:
    """A result as the cache stores it: JSON, or an embedding as packed float32 (`f32`)."""
    if kind == "f32":
        return array.array("f", value).tobytes()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_value(kind: str, blob: bytes) -> Any:
    if kind == "f32":
        vector = array.array("f")
        vector.frombytes(blob)
        return vector.tolist()
    return json.loads(blob)
