"""The Files and Batches operations, independent of HTTP: what each endpoint does.

One lock serialises every operation: the emulator is a test double, and a single lock
keeps its state obviously consistent. The lock is also a file lock on the state dir, so
two processes may share one (batchrun's in-process emulator while `batchrun status` reads
it too): an operation that finds the directory changed by another process reloads it
first. Each operation then brings every unfinished batch up to the present
(lifecycle.py), so a list shows the same states a retrieve would.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: one process per state dir
    fcntl = None  # type: ignore[assignment]

from . import azure as azure_layout
from . import ids
from .api_error import ApiError, bad_request, invalid_type, invalid_value, missing
from .config import EmulatorConfig
from .damage import Body, damaged, whole
from .faults import FaultCounters, Faults, FileDamage
from .lifecycle import Lifecycle
from .log import RequestLog
from .state import BatchRecord, EmulatorState, FileRecord
from .validation import InputScan, scan_input

ENDPOINTS = ["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]
PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
BATCH_INPUT_LIFETIME = 30 * 86_400
_CREATE_FIELDS = {"input_file_id", "endpoint", "completion_window", "metadata",
                  "output_expires_after"}


class BatchService:
    def __init__(self, root: Path, config: EmulatorConfig, clock: Callable[[], float],
                 faults: Faults):
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.state = EmulatorState(root)
        self.log = RequestLog(self.state.log_path)
        self.lifecycle = Lifecycle(self.state, self.log, config)
        self.counters = FaultCounters()
        self.set_faults(faults)
        self._lock_file = (root / "lock").open("a+b")
        self._depth = 0
        self._seen: tuple[str, int] | None = None
        self._writes = 0
        with self.locked():
            pass  # loads the state

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the thread lock and the state dir's file lock; reload what changed."""
        with self.lock:
            if self._depth == 0:
                if fcntl is not None:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX)
                if self.state.stamp() != self._seen:
                    self.state.load()
                    self.log.load(set(self.state.batches))
                self._writes = self.state.writes
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    if self.state.writes != self._writes:
                        self.state.bump()
                    self._seen = self.state.stamp()
                    if fcntl is not None:
                        fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def close(self) -> None:
        self._lock_file.close()

    def refresh(self) -> None:
        """Take in what another process sharing the state dir changed or logged."""
        with self.locked():
            pass

    # -- faults
    @property
    def faults(self) -> Faults:
        return self.lifecycle.faults

    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.lifecycle.faults = faults
            self.counters = FaultCounters.start(faults)

    # -- time
    def tick(self) -> float:
        """Bring every unfinished batch to the present; the present."""
        now = self.clock()
        for batch in list(self.state.batches.values()):
            if not batch.terminal:
                self.lifecycle.advance(batch, now)
        return now

    # -- files
    def create_file(self, purpose: str | None, filename: str | None, upload: Path,
                    expires_after: dict[str, str]) -> dict[str, Any]:
        if purpose is None:
            raise missing("purpose")
        if purpose not in PURPOSES:
            raise invalid_value("purpose", purpose, PURPOSES)
        if filename is None:
            raise missing("file")
        if purpose == "batch" and PurePosixPath(filename).suffix.lower() not in ("", ".jsonl"):
            # A name without extension passes: the SDK names uploaded bytes "upload", and
            # clients that upload bytes work against the real service (docs/emulator.md).
            raise bad_request("Invalid file format for Batch API. Must be .jsonl", param="file")
        lifetime = BATCH_INPUT_LIFETIME if purpose == "batch" else None
        if expires_after:
            lifetime = _expiry_seconds(expires_after, "expires_after")
        with self.locked():
            now = int(self.tick())
            record = FileRecord(id=ids.file_id(), bytes=upload.stat().st_size, created_at=now,
                                filename=os.path.basename(filename), purpose=purpose,
                                expires_at=None if lifetime is None else now + lifetime,
                                sequence=self.state.next_file_sequence())
            self.state.add_file(record, upload)
            return record.to_api()

    def get_file(self, file_id: str) -> FileRecord:
        with self.locked():
            now = self.tick()
            record = self.state.files.get(file_id)
            if record is None or (record.expires_at is not None and now >= record.expires_at):
                raise ApiError(404, f"No such File object: {file_id}", param="id")
            return record

    def list_files(self, query: dict[str, str]) -> dict[str, Any]:
        limit = _limit(query, 10_000, 10_000)
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_value("order", order, ["asc", "desc"])
        with self.locked():
            now = self.tick()
            records = [r for r in self.state.files.values()
                       if (r.expires_at is None or now < r.expires_at)
                       and query.get("purpose") in (None, r.purpose)]
            records.sort(key=lambda r: r.sequence, reverse=order == "desc")
            return _page([r.to_api() for r in records], limit, query.get("after"), "file")

    def download(self, file_id: str) -> Body:
        """The file's bytes, or what the `damaged_files` fault makes of them."""
        with self.locked():
            record = self.get_file(file_id)
            path = self.state.blob_path(record.id)
            damage = self._damage_for(record)
            return whole(path) if damage is None else damaged(path, damage)

    def _damage_for(self, record: FileRecord) -> FileDamage | None:
        """The first damage that applies to this download, if any; counts it."""
        batch = self.state.batches.get(record.batch_id or "")
        if batch is None or record.part is None:
            return None
        for index, damage in enumerate(self.faults.damaged_files):
            if not damage.matches(record.part, batch.ordinal):
                continue
            key = f"{index}/{record.id}"
            served = self.counters.damaged_downloads.get(key, 0)
            if damage.times is None or served < damage.times:
                self.counters.damaged_downloads[key] = served + 1
                return damage
        return None

    def delete_file(self, file_id: str) -> dict[str, Any]:
        with self.locked():
            record = self.get_file(file_id)
            self.state.delete_file(record.id)
            return {"id": record.id, "object": "file", "deleted": True}

    # -- batches
    def create_batch(self, params: dict[str, Any], *, azure: bool = False) -> dict[str, Any]:
        """`azure`: a call in the Azure layout, whose lines name deployments (azure.py)."""
        unknown = sorted(set(params) - _CREATE_FIELDS)
        if unknown:
            raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if params.get(name) is None:
                raise missing(name)
            if not isinstance(params[name], str):
                raise invalid_type(name, "a string", params[name])
        endpoint = azure_layout.own_endpoint(params["endpoint"]) if azure else params["endpoint"]
        if endpoint not in ENDPOINTS:
            raise invalid_value("endpoint", params["endpoint"], ENDPOINTS)
        if params["completion_window"] != "24h":
            raise invalid_value("completion_window", params["completion_window"], ["24h"])
        metadata = _metadata(params.get("metadata"))
        output_lifetime = None
        if params.get("output_expires_after") is not None:
            output_lifetime = _expiry_seconds(params["output_expires_after"],
                                              "output_expires_after")
        with self.locked():
            now = self.tick()
            deployments = self.config.azure_deployments if azure else None
            scan = self._scan(params["input_file_id"], endpoint, deployments)
            deployment, model = None, scan.model
            if azure and scan.model is not None:
                deployment = scan.model
                model = azure_layout.deployment_model(deployment, endpoint,
                                                      self.config.azure_deployments)
            forced = not scan.errors and self.counters.token_limit_left > 0
            if forced:
                self.counters.token_limit_left -= 1
            batch = BatchRecord(
                id=ids.batch_id(now), ordinal=self.state.next_ordinal(),
                endpoint=endpoint, input_file_id=params["input_file_id"],
                completion_window="24h", metadata=metadata, created_at=now,
                expires_at=now + self.config.completion_window_seconds,
                faults=self.faults.per_batch(), validation_errors=scan.errors,
                requested_model=model, enqueued_tokens=scan.prompt_tokens,
                token_limit_forced=forced, output_expires_after=output_lifetime,
                shown_endpoint=params["endpoint"] if azure else None, deployment=deployment)
            if not scan.errors:
                os.link(self.state.blob_path(batch.input_file_id),
                        self.state.part_path(batch.id, "input"))
                self.lifecycle.remember_offsets(batch.id, scan.offsets)
            self.log.append({"event": "batch_created", "time": now, "batch_id": batch.id,
                             "input_file_id": batch.input_file_id, "endpoint": batch.endpoint,
                             "metadata": metadata, "custom_ids": scan.custom_ids})
            self.state.save_batch(batch)
            return batch.to_api()

    def _scan(self, file_id: str, endpoint: str,
              deployments: dict[str, str] | None) -> InputScan:
        record = self.state.files.get(file_id)
        if record is None or (record.expires_at is not None
                              and self.clock() >= record.expires_at):
            scan = InputScan()
            scan.add("invalid_request", f"Cannot find file {file_id}, or organization "
                     f"{self.config.organization} does not have access to it.", param="file_id")
            return scan
        if record.purpose != "batch":
            raise bad_request(f"The input file {file_id} has purpose '{record.purpose}'; a "
                              "batch needs a file uploaded with purpose 'batch'.",
                              param="input_file_id")
        return scan_input(self.state.blob_path(file_id), endpoint, self.config,
                          count_tokens=self.faults.enqueued_token_limit is not None,
                          deployments=deployments)

    def get_batch(self, batch_id: str) -> BatchRecord:
        with self.locked():
            self.tick()
            batch = self.state.batches.get(batch_id)
            if batch is None:
                raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            return batch

    def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        return self.get_batch(batch_id).to_api()

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self.locked():
            batch = self.get_batch(batch_id)
            self.lifecycle.cancel(batch, self.clock())
            return batch.to_api()

    def list_batches(self, query: dict[str, str]) -> dict[str, Any]:
        limit = _limit(query, 20, 100)
        lag = self.faults.list_lag_seconds  # a list that lags behind creation, like the real one
        with self.locked():
            now = self.tick()
            newest_first = [b.to_api() for b in reversed(self.state.batches.values())
                            if lag <= 0 or now - b.created_at >= lag]
            return _page(newest_first, limit, query.get("after"), "batch")


def _limit(query: dict[str, str], default: int, highest: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_type("limit", "an integer", raw) from None
    if limit < 1:
        raise bad_request(f"Invalid 'limit': integer below minimum value. Expected a value >= "
                          f"1, but got {limit} instead.", param="limit",
                          code="integer_below_min_value")
    if limit > highest:
        raise bad_request(f"Invalid 'limit': integer above maximum value. Expected a value <= "
                          f"{highest}, but got {limit} instead.", param="limit",
                          code="integer_above_max_value")
    return limit


def _page(items: list[dict[str, Any]], limit: int, after: str | None,
          kind: str) -> dict[str, Any]:
    start = 0
    if after is not None:
        position = next((i for i, item in enumerate(items) if item["id"] == after), None)
        if position is None:
            raise bad_request(f"Invalid 'after': no {kind} with id '{after}'.", param="after")
        start = position + 1
    page = items[start:start + limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(items)}


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("metadata", "an object", value)
    if len(value) > 16:
        raise bad_request("Invalid 'metadata': too many properties. Expected an object with at "
                          f"most 16 properties, but got an object with {len(value)} properties "
                          "instead.", param="metadata", code="object_above_max_properties")
    for key, item in value.items():
        if len(key) > 64:
            raise bad_request("Invalid 'metadata': string too long. Expected a string with "
                              f"maximum length 64, but got a string with length {len(key)} "
                              "instead.", param="metadata", code="string_above_max_length")
        if not isinstance(item, str):
            raise invalid_type(f"metadata.{key}", "a string", item)
        if len(item) > 512:
            raise bad_request(f"Invalid 'metadata.{key}': string too long. Expected a string "
                              f"with maximum length 512, but got a string with length "
                              f"{len(item)} instead.", param=f"metadata.{key}",
                              code="string_above_max_length")
    return dict(value)


def _expiry_seconds(value: Any, param: str) -> int:
    """`{"anchor": "created_at", "seconds": 3600..2592000}`, from JSON or a form."""
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    if value.get("anchor") != "created_at":
        raise invalid_value(f"{param}.anchor", value.get("anchor"), ["created_at"])
    try:
        seconds = int(value.get("seconds"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise invalid_type(f"{param}.seconds", "an integer", value.get("seconds")) from None
    if not 3600 <= seconds <= 2_592_000:
        raise bad_request(f"Invalid '{param}.seconds': expected a value between 3600 and "
                          f"2592000, but got {seconds} instead.", param=f"{param}.seconds",
                          code="invalid_value")
    return seconds

