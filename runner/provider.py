"""The Batch API at the edge: the official `openai` SDK, pointed at OpenAI, at any
compatible base URL, or at batchrun's own emulator running in-process.

Everything else in batchrun talks to `BatchAPI`, never to the SDK directly, so SDK errors
become one readable line here (what failed, against which base URL, what to do), and the
SDK's own retries (429, 5xx, network) stay in charge of transient failures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import openai
from openai.types import Batch, FileObject

from .artifacts import Artifacts
from .errors import Location, ProviderError
from .project import ProjectContext
from .results import AnswerCheck, Expect, Outcome, parse_line

T = TypeVar("T")
EMULATOR_URL = "http://emulator.batchrun.invalid/v1"
# The synchronous endpoint of each batch endpoint, under the client's base URL.
SYNC_PATHS = {"/v1/chat/completions": "/chat/completions", "/v1/responses": "/responses",
              "/v1/embeddings": "/embeddings"}


@dataclass(frozen=True)
class Downloaded:
    sha: str
    path: Path
    size: int


class BatchAPI:
    def __init__(self, client: openai.OpenAI, label: str, poll_interval: float,
                 emulator: Any = None, list_lag: float = 0.0):
        self.client = client
        self.label = label            # shown in errors: which API we were talking to
        self.poll_interval = poll_interval
        self.emulator = emulator      # the in-process emulator, when that is the provider
        # How long after a create the batch list may still not show it: a create whose
        # outcome is unknown is looked for this long before it is tried again.
        self.list_lag = list_lag

    # ---- calls -----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except openai.AuthenticationError as exc:
            raise self._rejected_key(what, exc) from None
        except openai.APIStatusError as exc:
            raise ProviderError(f"{what}: {self.label} answered HTTP {exc.status_code}: "
                                f"{_message(exc)}",
                                hint="nothing was lost; fix the cause and rerun to resume") \
                from None
        except openai.APIConnectionError as exc:
            raise ProviderError(f"{what}: could not reach {self.label} ({exc.__cause__ or exc})",
                                hint="nothing was lost; rerun when the network is back") from None

    def _rejected_key(self, what: str, exc: openai.AuthenticationError) -> ProviderError:
        return ProviderError(f"{what}: the API key was rejected by {self.label} "
                             f"({_message(exc)})",
                             hint="check the key in the environment variable your provider "
                                  "uses (OPENAI_API_KEY by default)")

    def upload(self, path: Path, filename: str) -> FileObject:
        with path.open("rb") as fh:
            return self._call("uploading a batch file", lambda: self.client.files.create(
                file=(filename, fh, "application/jsonl"), purpose="batch"))

    def find_file(self, filename: str, size: int) -> FileObject | None:
        """An input file uploaded earlier under this name and size (a run that crashed
        between uploading and recording the file id)."""
        page = self._call("listing files", lambda: self.client.files.list(
            purpose="batch", order="desc", limit=10_000))
        for item in page.data:
            if item.filename == filename and item.bytes == size:
                return item
        return None

    def stored_files(self) -> dict[str, int]:
        """Every file the provider keeps for this key: id → bytes."""
        page = self._call("listing files", lambda: self.client.files.list(order="desc",
                                                                         limit=10_000))
        files = {}
        while True:
            files.update({item.id: item.bytes for item in page.data})
            if not page.has_next_page():
                return files
            page = self._call("listing files", page.get_next_page)

    def delete_file(self, file_id: str) -> None:
        """Delete a stored file; one that is gone already is not an error."""
        def delete() -> None:
            try:
                self.client.files.delete(file_id)
            except openai.NotFoundError:
                pass
        self._call(f"deleting file {file_id}", delete)

    def create_once(self, file_id: str, endpoint: str, metadata: dict[str, str]) -> Batch:
        """Create a batch with one HTTP call, never retried by the SDK: it sends no
        idempotency key, so a retried create could pay twice. A failure says whether it
        was transient (the batch may exist after all) and how long the API asked to wait."""
        client = self.client.with_options(max_retries=0)
        try:
            return self._call("creating a batch", lambda: client.batches.create(
                input_file_id=file_id, endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h", metadata=metadata))
        except ProviderError as exc:
            cause = exc.__context__
            exc.transient = isinstance(cause, (openai.APIConnectionError, openai.RateLimitError,
                                               openai.InternalServerError))
            exc.rejected = isinstance(cause, openai.RateLimitError)   # refused: nothing made
            exc.retry_after = _retry_after(cause)
            raise

    def retrieve(self, batch_id: str) -> Batch:
        return self._call(f"reading batch {batch_id}",
                          lambda: self.client.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> Batch:
        return self._call(f"cancelling batch {batch_id}",
                          lambda: self.client.batches.cancel(batch_id))

    def recent_batches(self, since: float) -> Iterator[Batch]:
        """Batches created at or after `since` (epoch seconds), newest first."""
        page = self._call("listing batches", lambda: self.client.batches.list(limit=100))
        while True:
            for batch in page.data:
                if batch.created_at < since:
                    return
                yield batch
            if not page.has_next_page():
                return
            page = self._call("listing batches", page.get_next_page)

    def answer_now(self, endpoint: str, body: dict, *, custom_id: str, expect: Expect,
                   validator: AnswerCheck | None = None) -> Outcome:
        """One rendered request answered at once by the provider's synchronous endpoint,
        with the SDK's retries (429, 5xx, network), as the same `Outcome` a batch output
        line for it would give: the answer is wrapped as that line and parsed by
        results.py. An HTTP error is a failed outcome, like a batch error line; a rejected
        API key raises ProviderError (no other call could succeed either).

        The body goes out exactly as rendered and keyed — the SDK's generic `post`, which
        its resources call too, rather than `embeddings.create`, which would add
        `encoding_format` and send another request than the one keyed."""
        line: dict[str, Any] = {"custom_id": custom_id, "error": None}
        try:
            answer = self.client.post(SYNC_PATHS[endpoint], body=body, cast_to=object)
            line["response"] = {"status_code": 200, "body": answer}
        except openai.AuthenticationError as exc:
            raise self._rejected_key("answering a request", exc) from None
        except openai.APIStatusError as exc:
            line["response"] = {"status_code": exc.status_code, "body": _error_body(exc)}
        except openai.APIConnectionError as exc:
            line.update(response=None, error={
                "code": "connection_error",
                "message": f"could not reach {self.label} ({exc.__cause__ or exc})"})
        return parse_line(line, expect=expect, validator=validator)

    def download(self, file_id: str, artifacts: Artifacts, kind: str) -> Downloaded:
        """Stream a file's content into the content-addressed artifacts."""
        def fetch() -> str:
            with self.client.files.with_streaming_response.content(file_id) as response:
                return artifacts.put_file(kind, response.iter_bytes(1 << 20))

        sha = self._call(f"downloading file {file_id}", fetch)
        path = artifacts.path(kind, sha)
        return Downloaded(sha, path, path.stat().st_size)


def _error_body(exc: openai.APIStatusError) -> Any:
    """An error response's JSON body, as a batch error line carries it."""
    try:
        return exc.response.json()
    except ValueError:
        return {"error": {"message": exc.response.text[:500] or str(exc)}}


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return min(float(value) / scale, 60.0)
            except ValueError:
                return None
    return None


def _message(exc: openai.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message if hasattr(exc, "message") else exc)


def open_provider(project: ProjectContext, *, emulator_speed: str | None = None) -> BatchAPI:
    """The project's provider, from batchrun.yaml and the environment."""
    cfg = project.config.provider
    if cfg.name == "emulator":
        from .emulator import Emulator, EmulatorConfig  # the emulator is optional weight

        speed = emulator_speed or cfg.emulator_speed
        config = EmulatorConfig.instant() if speed == "instant" else EmulatorConfig.demo()
        emulator = Emulator(state_dir=project.state_dir / "server", config=config)
        client = openai.OpenAI(
            api_key="emulator", base_url=EMULATOR_URL, max_retries=cfg.max_retries,
            http_client=httpx2.Client(transport=httpx2.WSGITransport(app=emulator)))
        poll = min(cfg.poll_interval, 0.05 if speed == "instant" else 1.0)
        return BatchAPI(client, "the batchrun emulator", poll, emulator, list_lag=cfg.list_lag)
    api_key = os.environ.get(cfg.api_key_env)
    if not api_key:
        raise ProviderError(f"environment variable {cfg.api_key_env} is not set",
                            where=Location(project.file or "batchrun.yaml", 0, "provider"),
                            hint=f"export {cfg.api_key_env}=sk-…, or try everything for free "
                            "with `provider: emulator` in batchrun.yaml")
    kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": cfg.max_retries}
    if cfg.base_url:
        kwargs["base_url"] = cfg.base_url
    client = openai.OpenAI(**kwargs)
    return BatchAPI(client, str(client.base_url).rstrip("/"), cfg.poll_interval,
                    list_lag=cfg.list_lag)
