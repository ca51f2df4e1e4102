"""Anthropic's Message Batches through the official `anthropic` SDK (and batchrun's
emulator in its Anthropic dialect, in-process).

Requests go inline in the create call — no file upload: the shard's lines are exactly
the `requests` entries (`{"custom_id", "params"}`), so the body is streamed from the
shard file with its length known, never held whole in memory. A batch is `in_progress`,
`canceling` or `ended`; an ended batch is read as completed, cancelled (cancel was
asked) or expired (some requests expired), in the vocabulary the rest of batchrun uses.
Its results are streamed from the results endpoint into the artifacts as one JSONL file.

Message Batches carry no metadata: a batch is found again by its size, its creation
time and, once it has ended, the `custom_id`s of its results (sizematch.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
from anthropic.types.messages import MessageBatch

from ..artifacts import Artifacts
from ..errors import ProviderError
from ..project import ProjectContext
from ..results import AnswerCheck, Expect, Outcome
from . import BatchView, Counts, Downloaded, Submission
from . import config as providers
from .anthropic_results import parse_result
from .calls import Calls, api_key, error_body
from .inprocess import ORIGIN, emulator

_HEAD, _TAIL = b'{"requests":[', b"]}"


class AnthropicBatches:
    caps = providers.CAPABILITIES["anthropic"]

    def __init__(self, client: anthropic.Anthropic, label: str, poll_interval: float,
                 emulator: Any = None, *, key_env: str = "ANTHROPIC_API_KEY"):
        self.client = client
        self.label = label
        self.poll_interval = poll_interval
        self.emulator = emulator
        self._call = Calls(anthropic, label, key_env)
        self.list_lag = 0.0   # found by size and time (sizematch.py), never by a list lag

    def upload(self, path: Path, filename: str) -> str:
        raise ProviderError(f"{self.label} takes a batch's requests inline, not as a file")

    def find_file(self, filename: str, size: int) -> str | None:
        return None

    def create_once(self, submission: Submission) -> BatchView:
        """Create the Message Batch with one HTTP call, never retried by the SDK: the body
        streams from the shard (each line one request; commas between them)."""
        lines = submission.requests
        length = len(_HEAD) + submission.size - lines + max(lines - 1, 0) + len(_TAIL)
        client = self.client.with_options(max_retries=0)

        def body() -> Iterator[bytes]:
            yield _HEAD
            with submission.shard.open("rb") as fh:
                for number, line in enumerate(fh):
                    yield (b"," if number else b"") + line.rstrip(b"\n")
            yield _TAIL

        return view(self._call.once("creating a message batch", lambda: client.post(
            "/v1/messages/batches", cast_to=MessageBatch, content=body(),
            options={"headers": {"Content-Type": "application/json",
                                 "Content-Length": str(length)}})))

    def retrieve(self, batch_id: str) -> BatchView:
        return view(self._call(f"reading batch {batch_id}",
                               lambda: self.client.messages.batches.retrieve(batch_id)))

    def cancel(self, batch_id: str) -> BatchView:
        return view(self._call(f"cancelling batch {batch_id}",
                               lambda: self.client.messages.batches.cancel(batch_id)))

    def recent_batches(self, since: float) -> Iterator[BatchView]:
        """Batches created at or after `since` (epoch seconds), newest first."""
        page = self._call("listing message batches",
                          lambda: self.client.messages.batches.list(limit=100))
        while True:
            for batch in page.data:
                found = view(batch)
                if found.created_at < since:
                    return
                yield found
            if not page.has_next_page():
                return
            page = self._call("listing message batches", page.get_next_page)

    def download(self, file_id: str, artifacts: Artifacts, kind: str) -> Downloaded:
        raise ProviderError(f"{self.label} keeps no files; a batch's requests are its shard",
                            hint="the shard is in the state directory's artifacts/shards")

    def download_results(self, batch: BatchView, artifacts: Artifacts,
                         kind: str) -> dict[str, Downloaded]:
        """The results of an ended batch, streamed into the artifacts as one file."""
        def fetch() -> str:
            decoder = self.client.messages.batches.results(batch.id)
            try:
                return artifacts.put_file(kind, decoder.http_response.iter_bytes(1 << 20))
            finally:
                decoder.close()

        sha = self._call(f"downloading the results of batch {batch.id}", fetch)
        path = artifacts.path(kind, sha)
        return {"output": Downloaded(sha, path, path.stat().st_size)}

    def parse_line(self, line: dict, *, expect: Expect, validator: Any = None) -> Outcome:
        return parse_result(line, expect=expect, validator=validator)

    def stored_files(self) -> dict[str, int]:
        """Message Batches keep no files: requests go inline, results are streamed."""
        return {}

    def delete_file(self, file_id: str) -> None:
        raise ProviderError(f"{self.label} keeps no files to delete ({file_id})")

    def answer_now(self, endpoint: str, body: dict, *, custom_id: str, expect: Expect,
                   validator: AnswerCheck | None = None) -> Outcome:
        """One rendered request (a Message Batch entry's `params`) answered at once by the
        Messages API, with the SDK's retries, as the `Outcome` its result line in a batch
        would give: the answer, or the error, is wrapped as that line and parsed by
        anthropic_results.py. A rejected API key raises ProviderError."""
        try:
            message = self.client.post("/v1/messages", body=body, cast_to=object)
            result: dict[str, Any] = {"type": "succeeded", "message": message}
        except anthropic.AuthenticationError as exc:
            raise self._call.rejected_key("answering a request", exc) from None
        except anthropic.APIStatusError as exc:
            result = {"type": "errored", "error": error_body(exc)}
        except anthropic.APIConnectionError as exc:
            result = {"type": "errored", "error": {"type": "error", "error": {
                "type": "api_error",
                "message": f"could not reach {self.label} ({exc.__cause__ or exc})"}}}
        return parse_result({"custom_id": custom_id, "result": result}, expect=expect,
                            validator=validator)


def _epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def view(batch: MessageBatch) -> BatchView:
    """A Message Batch in the vocabulary of every provider (module doc)."""
    counts = batch.request_counts.model_dump()
    total = sum(counts.values())
    created = batch.created_at.timestamp()
    status = {"in_progress": "in_progress", "canceling": "cancelling"}.get(
        batch.processing_status, "completed")
    if batch.processing_status == "ended":
        status = ("cancelled" if batch.cancel_initiated_at is not None
                  else "expired" if counts.get("expired") else "completed")
    info: dict[str, Any] = {"created_at": created, "in_progress_at": created,
                            "expires_at": _epoch(batch.expires_at), "request_counts": counts}
    ended = _epoch(batch.ended_at)
    if ended is not None:
        info[f"{status}_at"] = ended
    if batch.cancel_initiated_at is not None:
        info["cancelling_at"] = _epoch(batch.cancel_initiated_at)
    done = counts.get("succeeded", 0)
    return BatchView(id=batch.id, status=status, created_at=created, info=info,
                     request_counts=Counts(total, done, counts.get("errored", 0)),
                     endpoint="/v1/messages", in_progress_at=created, requests=total)


def open_anthropic(project: ProjectContext, emulator_speed: str | None) -> AnthropicBatches:
    """Anthropic (key and endpoint from the environment, as the SDK reads them, or the
    provider's base_url / api_key_env), or the emulator in its Anthropic dialect."""
    cfg = project.config.provider
    if cfg.name == "emulator":
        app, http, poll = emulator(project, emulator_speed)
        client = anthropic.Anthropic(api_key="emulator", base_url=ORIGIN,
                                     max_retries=cfg.max_retries, http_client=http)
        return AnthropicBatches(client, providers.label(cfg), poll, app)
    key = api_key(project, "sk-ant-…", "{name: emulator, dialect: anthropic}")
    url = providers.base_url(cfg)
    client = anthropic.Anthropic(api_key=key, base_url=url, max_retries=cfg.max_retries)
    return AnthropicBatches(client, f"Anthropic at {url}", cfg.poll_interval,
                            key_env=providers.key_env(cfg))
