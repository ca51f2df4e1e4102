"""The request log: what the emulator was asked to do, for tests to check "sent at most once".

Two kinds of event, one JSON object each, in memory and (always) appended to
`<root>/log.jsonl`:

    {"event": "batch_created", "time": 1767225600.0, "batch_id": "batch_…",
     "input_file_id": "file-…", "endpoint": "/v1/chat/completions",
     "metadata": {...} | null, "custom_ids": ["…", …]}
    {"event": "request_executed", "time": …, "batch_id": "batch_…", "custom_id": "…",
     "status_code": 200, "outcome": "ok", "billed": true}

`outcome` is one of ok, truncated, invalid_json, invalid_request, server_error,
status_zero. `billed` is true when the request produced a 200 answer, which the real
service charges for (truncated and invalid answers included).

An event is appended before the state it describes is committed (state.py). After a crash,
events of batches that were never committed are dropped on load, and a request redone
after a crash is logged once: the log never shows more than what happened.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any


class RequestLog:
    def __init__(self, path: Path):
        self.path = path
        self._events: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every event so far, oldest first."""
        with self._lock:
            return list(self._events)

    def load(self, batch_ids: set[str]) -> None:
        self._events, self._seen = [], set()
        if not self.path.exists():
            return
        with self.path.open("r+b") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                fh.truncate(end)  # the last line, cut by a crash
        for line in data[:end].splitlines():
            event = json.loads(line)
            if event.get("batch_id") in batch_ids:
                self._remember(event)

    def append(self, event: dict[str, Any]) -> None:
        with self._lock:
            if not self._remember(event):
                return
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(event, ensure_ascii=False) + "\n")

    def _remember(self, event: dict[str, Any]) -> bool:
        key = (event["event"], event["batch_id"] + "\0" + event.get("custom_id", ""))
        if key in self._seen:
            return False
        self._seen.add(key)
        self._events.append(event)
        return True
