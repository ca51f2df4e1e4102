"""The emulator's state: its files and batches, kept in a directory so that the emulator
survives its own restart. (Not batchrun's ledger: that is `runner.ledger.Ledger`.)

Layout under the root (the `--state-dir`, or a private temporary directory):

    files/<file_id>.json     the file object         files/<file_id>.data   its bytes
    batches/<batch_id>.json  the batch object and its progress
    parts/<batch_id>.output  results written so far  parts/<batch_id>.error
    log.jsonl                the request log (log.py)

Every record is written whole to a temporary file and renamed into place, so a kill -9
leaves either the old record or the new one. Results are appended to the parts before
the batch record that counts them is written; on load, a part is cut back to the length
its record counts, so work done after the last commit is redone, never doubled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class FileRecord:
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None = None
    sequence: int = 0  # creation order (created_at has only seconds); not in the API object
    batch_id: str | None = None  # of the batch whose output or error file this is
    part: str | None = None  # "output" or "error", for such a file

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes,
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed",
                "expires_at": self.expires_at, "status_details": None}


@dataclass
class BatchRecord:
    id: str
    ordinal: int  # creation order; seeds the output order and the faults
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: float
    expires_at: float
    status: str = "validating"
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    model: str | None = None
    usage: dict[str, int] | None = None
    # Not part of the API object:
    faults: dict[str, Any] = field(default_factory=dict)  # Faults.per_batch() at creation
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    requested_model: str | None = None
    enqueued_tokens: int = 0
    token_limit_forced: bool = False
    output_expires_after: int | None = None
    shown_endpoint: str | None = None  # the endpoint as the client named it (Azure: no /v1)
    deployment: str | None = None  # Azure: the deployment its lines name (model: its model)
    done: int = 0  # requests executed (in output order)
    output_bytes: int = 0  # committed length of parts/<id>.output
    error_bytes: int = 0

    def to_api(self) -> dict[str, Any]:
        def stamp(value: float | None) -> int | None:
            return None if value is None else int(value)

        body: dict[str, Any] = {
            "id": self.id, "object": "batch", "endpoint": self.shown_endpoint or self.endpoint,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id, "created_at": stamp(self.created_at),
            "in_progress_at": stamp(self.in_progress_at), "expires_at": stamp(self.expires_at),
            "finalizing_at": stamp(self.finalizing_at), "completed_at": stamp(self.completed_at),
            "failed_at": stamp(self.failed_at), "expired_at": stamp(self.expired_at),
            "cancelling_at": stamp(self.cancelling_at), "cancelled_at": stamp(self.cancelled_at),
            "request_counts": {"total": self.total, "completed": self.completed,
                               "failed": self.failed},
            "metadata": self.metadata, "model": self.model, "usage": None,
        }
        if self.usage is not None:
            u = self.usage
            body["usage"] = {
                "input_tokens": u["input"], "input_tokens_details": {"cached_tokens": u["cached"]},
                "output_tokens": u["output"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
                "total_tokens": u["input"] + u["output"]}
        return body

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def jsonl_line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, path)


def _read_records(folder: Path, cls: type) -> list:
    known = {f.name for f in dataclasses.fields(cls)}
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a record being written when the process died; its rename never happened
        records.append(cls(**{k: v for k, v in data.items() if k in known}))
    return records


class EmulatorState:
    """The files and batches the emulator serves. In memory: `files` and `batches` (their
    records, in creation order). On disk: the layout above."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, FileRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.writes = 0  # records written or removed by this process
        for sub in ("files", "batches", "parts", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    # -- paths
    def blob_path(self, file_id: str) -> Path:
        return self.root / "files" / f"{file_id}.data"

    def part_path(self, batch_id: str, kind: str) -> Path:
        return self.root / "parts" / f"{batch_id}.{kind}"

    def temp_path(self) -> Path:
        return self.root / "tmp" / uuid.uuid4().hex

    @property
    def log_path(self) -> Path:
        return self.root / "log.jsonl"

    # -- loading after a (re)start, or after another process changed the directory
    def stamp(self) -> tuple[str, int]:
        """Changes whenever a process commits a change (`bump`) or the log grows."""
        generation = self.root / "generation"
        log = self.log_path.stat().st_size if self.log_path.exists() else -1
        return (generation.read_text() if generation.exists() else "", log)

    def bump(self) -> None:
        """Mark the directory changed, for the other processes sharing it."""
        generation = self.root / "generation"
        tmp = generation.with_name(f".generation.{uuid.uuid4().hex}.tmp")
        tmp.write_text(uuid.uuid4().hex)
        os.replace(tmp, generation)

    def load(self) -> None:
        stale = time.time() - 3600
        for leftover in (self.root / "tmp").iterdir():  # uploads a dead process left behind
            if leftover.stat().st_mtime < stale:
                leftover.unlink(missing_ok=True)
        batches = _read_records(self.root / "batches", BatchRecord)
        batches.sort(key=lambda b: (b.ordinal, b.created_at))
        self.batches = {b.id: b for b in batches}
        referenced = {i for b in batches for i in (b.output_file_id, b.error_file_id) if i}
        self.files = {}
        for record in _read_records(self.root / "files", FileRecord):
            blob = self.blob_path(record.id)
            orphan = record.purpose == "batch_output" and record.id not in referenced
            if orphan or not blob.exists():
                self._remove_file_paths(record.id)  # half-finished finalization or deletion
                continue
            self.files[record.id] = record
        self.files = dict(sorted(self.files.items(), key=lambda item: item[1].sequence))
        for batch in batches:
            for kind, length in (("output", batch.output_bytes), ("error", batch.error_bytes)):
                part = self.part_path(batch.id, kind)
                if batch.terminal:
                    part.unlink(missing_ok=True)
                elif part.exists() and part.stat().st_size > length:
                    with part.open("r+b") as fh:
                        fh.truncate(length)

    # -- files
    def add_file(self, record: FileRecord, source: Path, *, keep_source: bool = False) -> None:
        """Put `source` in place as the bytes of `record`, then commit the record."""
        blob = self.blob_path(record.id)
        if keep_source:
            os.link(source, blob)
        else:
            os.replace(source, blob)
        write_json_atomic(self.root / "files" / f"{record.id}.json", dataclasses.asdict(record))
        self.files[record.id] = record
        self.writes += 1

    def next_file_sequence(self) -> int:
        return max((f.sequence for f in self.files.values()), default=0) + 1

    def delete_file(self, file_id: str) -> None:
        self.files.pop(file_id, None)
        self._remove_file_paths(file_id)
        self.writes += 1

    def _remove_file_paths(self, file_id: str) -> None:
        (self.root / "files" / f"{file_id}.json").unlink(missing_ok=True)
        self.blob_path(file_id).unlink(missing_ok=True)

    # -- batches
    def save_batch(self, batch: BatchRecord) -> None:
        write_json_atomic(self.root / "batches" / f"{batch.id}.json", dataclasses.asdict(batch))
        self.batches[batch.id] = batch
        self.writes += 1

    def next_ordinal(self) -> int:
        return max((b.ordinal for b in self.batches.values()), default=0) + 1
