"""The life of a batch, driven by the clock: validating → in_progress → finalizing → completed.

Nothing runs in the background. Whenever a batch is read, `advance` brings it to the
present: it works out from the configured durations which transitions and which
requests were due by now, performs them in order, and dates each one when it was due
(not when it was noticed), so the `*_at` timestamps are those of a batch that ran on its
own. Side roads: a validation error fails the batch; cancel goes through `cancelling` to
`cancelled`; the completion window (or the `expire_after_requests` fault) expires it.
Requests run in a shuffled order fixed by the seed, so the output file is not in input
order and an interrupted batch has finished a scattered subset.
"""

from __future__ import annotations

import json
import random
from array import array
from pathlib import Path
from typing import Any

from . import ids, models
from .api_error import bad_request
from .config import EmulatorConfig
from .faults import Faults, draw
from .log import RequestLog
from .responder import respond_with_faults
from .state import BatchRecord, EmulatorState, FileRecord, jsonl_line
from .validation import line_offsets

CHUNK = 500  # requests executed between two commits of a batch's progress
OUTPUT_FILE_LIFETIME = 30 * 86_400
DEFAULT_SHOWN_TOKEN_LIMIT = 2_000_000  # the limit named when `token_limit_batches` forces one
_LEFTOVER_MESSAGES = {
    "batch_expired": "This request could not be executed before the completion window "
                     "expired.",
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
}
_UNFINISHED = ("in_progress", "finalizing")


class Lifecycle:
    def __init__(self, state: EmulatorState, log: RequestLog, config: EmulatorConfig):
        self.state = state
        self.log = log
        self.config = config
        self.faults = Faults()
        self._offsets: dict[str, array] = {}
        self._orders: dict[str, array] = {}

    def remember_offsets(self, batch_id: str, offsets: array) -> None:
        self._offsets[batch_id] = offsets

    # -- the state machine
    def advance(self, batch: BatchRecord, now: float) -> None:
        cfg = self.config
        while not batch.terminal:
            if batch.status == "validating":
                due = batch.created_at + cfg.validating_seconds
                if now < due:
                    return
                self._end_validation(batch, due)
            elif batch.status == "in_progress":
                if not self._progress(batch, now):
                    return
            elif batch.status == "finalizing":
                due = (batch.finalizing_at or 0) + cfg.finalizing_seconds
                if now < due:
                    return
                self._finish(batch, "completed", due)
            elif batch.status == "cancelling":
                due = (batch.cancelling_at or 0) + cfg.cancelling_seconds
                if now < due:
                    return
                self._finish(batch, "cancelled", due, "batch_cancelled")

    def cancel(self, batch: BatchRecord, now: float) -> None:
        self.advance(batch, now)
        if batch.status in ("cancelling", "cancelled"):
            return
        if batch.terminal:
            raise bad_request(f"Cannot cancel a batch with status '{batch.status}'.")
        batch.status, batch.cancelling_at = "cancelling", now
        self.state.save_batch(batch)

    def _end_validation(self, batch: BatchRecord, at: float) -> None:
        errors = batch.validation_errors or self._token_limit_errors(batch)
        if errors:
            batch.errors = errors
            self._finish(batch, "failed", at)
            return
        batch.status, batch.in_progress_at = "in_progress", at
        batch.total = len(self._offsets_of(batch))
        batch.model = models.dated(batch.requested_model or "")
        batch.usage = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
        self.state.save_batch(batch)

    def _token_limit_errors(self, batch: BatchRecord) -> list[dict[str, Any]]:
        limit = self.faults.enqueued_token_limit
        enqueued = sum(b.enqueued_tokens for b in self.state.batches.values()
                       if b.status in _UNFINISHED and b.requested_model == batch.requested_model)
        if batch.token_limit_forced or (limit is not None
                                        and enqueued + batch.enqueued_tokens > limit):
            shown = limit if limit is not None else DEFAULT_SHOWN_TOKEN_LIMIT
            return [{"code": "token_limit_exceeded", "line": None, "param": None,
                     "message": f"Enqueued token limit reached for {batch.requested_model} in "
                                f"organization {self.config.organization}. Limit: {shown:,} "
                                "enqueued tokens. Please try again once some in_progress "
                                "batches have been completed."}]
        return []

    def _progress(self, batch: BatchRecord, now: float) -> bool:
        """Run what was due by `now`; True when the batch changed state."""
        per_request = self.config.seconds_per_request
        started = batch.in_progress_at or batch.created_at
        limit = batch.total
        cap = batch.faults.get("expire_after_requests")
        if cap is not None:
            limit = min(limit, cap)
        until = min(now, batch.expires_at)
        due = limit if per_request <= 0 else min(limit, int((until - started) / per_request))
        while batch.done < due:
            self._execute(batch, batch.done, min(due, batch.done + CHUNK))
        if batch.done == batch.total:
            batch.status, batch.finalizing_at = "finalizing", started + batch.total * per_request
            self.state.save_batch(batch)
            return True
        if cap is not None and batch.done >= cap:
            self._finish(batch, "expired", started + batch.done * per_request, "batch_expired")
            return True
        if now >= batch.expires_at:
            self._finish(batch, "expired", batch.expires_at, "batch_expired")
            return True
        return False

    # -- executing requests
    def _offsets_of(self, batch: BatchRecord) -> array:
        if batch.id not in self._offsets:  # after a restart
            self._offsets[batch.id] = line_offsets(self._input_path(batch))
        return self._offsets[batch.id]

    def _order_of(self, batch: BatchRecord) -> array:
        if batch.id not in self._orders:
            order = array("q", range(batch.total))
            random.Random(f"{self.config.seed}/{batch.ordinal}").shuffle(order)
            self._orders[batch.id] = order
        return self._orders[batch.id]

    def _input_path(self, batch: BatchRecord) -> Path:
        return self.state.part_path(batch.id, "input")

    def _requests(self, batch: BatchRecord, start: int, end: int):
        """(position, request) in execution order, read from the batch's copy of its input."""
        offsets, order = self._offsets_of(batch), self._order_of(batch)
        with self._input_path(batch).open("rb") as fh:
            for position in range(start, end):
                fh.seek(offsets[order[position]])
                yield position, json.loads(fh.readline())

    def _execute(self, batch: BatchRecord, start: int, end: int) -> None:
        events = []
        per_request = self.config.seconds_per_request
        with self.state.part_path(batch.id, "output").open("ab") as out, \
                self.state.part_path(batch.id, "error").open("ab") as err:
            for position, request in self._requests(batch, start, end):
                when = (batch.in_progress_at or 0) + (position + 1) * per_request
                line, status, outcome, usage = self._answer(batch, request, when)
                (out if status == 200 else err).write(line)
                if status == 200:
                    batch.completed += 1
                    for key in ("input", "cached", "output", "reasoning"):
                        batch.usage[key] += usage[key]  # type: ignore[index]
                else:
                    batch.failed += 1
                events.append({"event": "request_executed", "time": when,
                               "batch_id": batch.id, "custom_id": request["custom_id"],
                               "status_code": status, "outcome": outcome,
                               "billed": status == 200})
            batch.output_bytes, batch.error_bytes = out.tell(), err.tell()
        self.log.append_executed(batch.id, start, events)
        batch.done = end
        self.state.save_batch(batch)

    def _answer(self, batch: BatchRecord, request: dict[str, Any],
                when: float) -> tuple[bytes, int, str, dict[str, int]]:
        faults, custom_id = batch.faults, request["custom_id"]

        def chance(kind: str) -> float:
            return draw(faults.get("seed", 0), batch.ordinal, custom_id, kind)

        body = request["body"]
        if batch.deployment is not None:  # Azure: the line names a deployment, not a model
            body = {**body, "model": batch.requested_model}
        reply = respond_with_faults(batch.endpoint, body, when=when, rates=faults, chance=chance)
        status, outcome, usage = reply.status_code, reply.outcome, reply.usage
        if status == 0:
            response: dict[str, Any] = {"status_code": 0, "request_id": "", "body": {}}
        else:
            request_id = ids.request_uuid() if batch.endpoint == "/v1/responses" and \
                outcome != "server_error" else ids.request_id()
            response = {"status_code": status, "request_id": request_id, "body": reply.body}
        line = {"id": ids.batch_request_id(when + 2), "custom_id": custom_id,
                "response": response, "error": None}
        return jsonl_line(line), status, outcome, usage

    # -- terminal states
    def _finish(self, batch: BatchRecord, status: str, at: float,
                leftover: str | None = None) -> None:
        if leftover and batch.in_progress_at is not None and batch.done < batch.total:
            with self.state.part_path(batch.id, "error").open("ab") as err:
                for _, request in self._requests(batch, batch.done, batch.total):
                    err.write(jsonl_line({"id": ids.batch_request_id(at), "custom_id":
                                      request["custom_id"], "response": None,
                                      "error": {"code": leftover,
                                                "message": _LEFTOVER_MESSAGES[leftover]}}))
        for kind in ("output", "error"):
            part = self.state.part_path(batch.id, kind)
            if part.exists() and part.stat().st_size:
                lifetime = batch.output_expires_after or OUTPUT_FILE_LIFETIME
                record = FileRecord(id=ids.file_id(), bytes=part.stat().st_size,
                                    created_at=int(at), filename=f"{batch.id}_{kind}.jsonl",
                                    purpose="batch_output", expires_at=int(at) + lifetime,
                                    sequence=self.state.next_file_sequence(),
                                    batch_id=batch.id, part=kind)
                self.state.add_file(record, part, keep_source=True)
                setattr(batch, f"{kind}_file_id", record.id)
        batch.status = status
        setattr(batch, f"{status}_at", at)
        self.state.save_batch(batch)
        for kind in ("output", "error", "input"):
            self.state.part_path(batch.id, kind).unlink(missing_ok=True)
        self._offsets.pop(batch.id, None)
        self._orders.pop(batch.id, None)
