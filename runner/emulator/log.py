"""The request log: what the emulator was asked to do, for tests to check "sent at most once".

Two kinds of event, one JSON object per line of `<root>/log.jsonl`:

    {"event": "batch_created", "time": 1767225600.0, "batch_id": "batch_…",
     "input_file_id": "file-…", "endpoint": "/v1/chat/completions",
     "metadata": {...} | null, "custom_ids": ["…", …]}
    {"event": "request_executed", "time": …, "batch_id": "batch_…" | null, "custom_id": "…",
     "status_code": 200, "outcome": "ok", "billed": true}

`outcome` is one of ok, truncated, invalid_json, refusal, invalid_request, server_error,
status_zero. `billed` is true when the request produced a 200 answer, which the real
service charges for (truncated and invalid answers included). A synchronous call
(POST /v1/chat/completions, ...) is a `request_executed` event with `batch_id` null,
`endpoint`, and as `custom_id` the request key batchrun would give it (sync.py).

The log lives on disk only: memory holds counts per batch, never events, so a run of a
million requests costs the log a few bytes per batch. Readers stream the file
(`iter_events`, `executions`).

An event is appended before the state it describes is committed (state.py). After a crash,
events of batches that were never committed are dropped on load, and a request redone
after a crash is logged once: the log never shows more than what happened.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TAIL_CHUNK = 1 << 16


class RequestLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._created: set[str] = set()  # batches whose batch_created event is logged
        self._executed: dict[str, int] = {}  # per batch: request_executed events logged
        self._scanned = 0  # bytes of the file counted so far

    # -- reading (streams the file; safe while the emulator appends)
    def iter_events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Every event so far (of `kind`, if given), oldest first, read from disk."""
        with self._lock:
            end = self.path.stat().st_size if self.path.exists() else 0
        if not end:
            return
        with self.path.open("rb") as fh:
            read = 0
            for line in fh:
                read += len(line)
                if read > end or not line.endswith(b"\n"):
                    break  # appended after we started, or being written by another process
                event = json.loads(line)
                if kind is None or event["event"] == kind:
                    yield event

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first (a list read from disk: prefer `iter_events`
        for large runs)."""
        return list(self.iter_events())

    def executions(self, *, billed: bool | None = None) -> Counter[str]:
        """How many times each custom_id was executed (batch and synchronous calls);
        with `billed`, only the executions that were (True) or were not (False) billed."""
        counts: Counter[str] = Counter()
        for event in self.iter_events("request_executed"):
            if billed is None or event["billed"] is billed:
                counts[event["custom_id"]] += 1
        return counts

    # -- writing
    def append(self, event: dict[str, Any]) -> None:
        """Append a batch_created event (once per batch) or a synchronous execution."""
        with self._lock:
            if event["event"] == "batch_created":
                batch_id = str(event["batch_id"])
                if batch_id in self._created:
                    return
                self._created.add(batch_id)
            self._write([event])

    def append_executed(self, batch_id: str, start: int, events: list[dict[str, Any]]) -> None:
        """The executions of a batch's requests at positions start, start+1, … (execution
        order). Positions already logged (redone after a crash) are not logged again."""
        with self._lock:
            logged = self._executed.get(batch_id, 0)
            fresh = events[max(0, logged - start):]
            if fresh:
                self._executed[batch_id] = max(logged, start + len(events))
                self._write(fresh)

    def _write(self, events: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
            self._scanned = fh.tell()

    # -- loading after a (re)start, or after another process appended
    def load(self, batch_ids: set[str]) -> None:
        """Count what the file holds beyond what was counted; drop the events of batches
        that were never committed (a crash between the event and its commit)."""
        with self._lock:
            if not self.path.exists():
                self._reset()
                return
            size = self._cut_partial_line()
            if size < self._scanned:
                self._reset()  # rewritten by another process: count it all again
            if self._count_from(self._scanned, batch_ids):
                self._drop_orphans(batch_ids)

    def _reset(self) -> None:
        self._created, self._executed, self._scanned = set(), {}, 0

    def _cut_partial_line(self) -> int:
        """Truncate a last line that a crash cut short; the file's size afterwards."""
        with self.path.open("r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                start = max(0, end - _TAIL_CHUNK)
                fh.seek(start)
                chunk = fh.read(end - start)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            if end != size:
                fh.truncate(end)
            return end

    def _count_from(self, offset: int, batch_ids: set[str]) -> bool:
        """Count the events after `offset`; True when one belongs to an unknown batch."""
        orphans = False
        with self.path.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                event = json.loads(line)
                batch_id = event.get("batch_id")
                if batch_id is not None and batch_id not in batch_ids:
                    orphans = True
                elif event["event"] == "batch_created":
                    self._created.add(batch_id)
                elif batch_id is not None:
                    self._executed[batch_id] = self._executed.get(batch_id, 0) + 1
            self._scanned = fh.tell()
        return orphans

    def _drop_orphans(self, batch_ids: set[str]) -> None:
        kept = self.path.with_name(f".{self.path.name}.kept")
        with self.path.open("rb") as source, kept.open("wb") as sink:
            for line in source:
                batch_id = json.loads(line).get("batch_id")
                if batch_id is None or batch_id in batch_ids:
                    sink.write(line)
        os.replace(kept, self.path)
        self._reset()
        self._count_from(0, batch_ids)
