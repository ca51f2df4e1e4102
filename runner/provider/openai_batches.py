"""The OpenAI Batch API through the official `openai` SDK: OpenAI itself, any compatible
base URL (Groq, …), Azure OpenAI (`openai.AzureOpenAI`: an endpoint, an api-version,
the `api-key` header, deployment names in place of model names), and batchrun's emulator
in its OpenAI or Azure dialect, in-process.

Requests go up as a JSONL file (Files API, purpose `batch`), the batch carries
`metadata: {batchrun_job, batchrun_shard, batchrun_target}` so a run that lost its state
finds it again, and a finished batch leaves an output file and an error file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from openai.types import Batch

from ..artifacts import Artifacts
from ..errors import Location, ProviderError
from ..project import ProjectContext
from ..results import AnswerCheck, Expect, Outcome, parse_line
from . import BatchIssue, BatchView, Counts, Downloaded, Submission
from . import config as providers
from .calls import Calls, error_body
from .calls import api_key as _key
from .inprocess import ORIGIN as EMULATOR_ORIGIN
from .inprocess import emulator as _emulator

EMULATOR_URL = EMULATOR_ORIGIN + "/v1"
# The synchronous endpoint of each batch endpoint, under the client's base URL.
SYNC_PATHS = {"/v1/chat/completions": "/chat/completions", "/v1/responses": "/responses",
              "/v1/embeddings": "/embeddings"}
_TIMES = ("created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
          "expired_at", "cancelling_at", "cancelled_at", "expires_at")


class BatchAPI:
    """The OpenAI-layout Batch API behind one SDK client."""

    def __init__(self, client: openai.OpenAI, label: str, poll_interval: float,
                 emulator: Any = None, *, caps: providers.Capabilities | None = None,
                 key_env: str = "OPENAI_API_KEY", list_lag: float = 0.0):
        self.client = client
        self.label = label            # shown in errors: which API we were talking to
        self.poll_interval = poll_interval
        self.emulator = emulator      # the in-process emulator, when that is the provider
        self.caps = caps or providers.CAPABILITIES["openai"]
        # How long after a create the batch list may still not show it: a create whose
        # outcome is unknown is looked for this long before it is tried again.
        self.list_lag = list_lag
        self._call = Calls(openai, label, key_env)

    def upload(self, path: Path, filename: str) -> str:
        with path.open("rb") as fh:
            return self._call("uploading a batch file", lambda: self.client.files.create(
                file=(filename, fh, "application/jsonl"), purpose="batch")).id

    def find_file(self, filename: str, size: int) -> str | None:
        """An input file uploaded earlier under this name and size (a run that crashed
        between uploading and recording the file id)."""
        page = self._call("listing files", lambda: self.client.files.list(
            purpose="batch", order="desc", limit=10_000))
        for item in page.data:
            if item.filename == filename and item.bytes == size:
                return item.id
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

    def create_once(self, submission: Submission) -> BatchView:
        """Create a batch with one HTTP call, never retried by the SDK (calls.Calls.once)."""
        client = self.client.with_options(max_retries=0)
        file_id = submission.file_id
        if file_id is None:
            raise ValueError("an OpenAI batch is created from an uploaded file")
        return view(self._call.once("creating a batch", lambda: client.batches.create(
            input_file_id=file_id, endpoint=submission.endpoint,  # type: ignore[arg-type]
            completion_window="24h", metadata=submission.metadata)))

    def retrieve(self, batch_id: str) -> BatchView:
        return view(self._call(f"reading batch {batch_id}",
                               lambda: self.client.batches.retrieve(batch_id)))

    def cancel(self, batch_id: str) -> BatchView:
        return view(self._call(f"cancelling batch {batch_id}",
                               lambda: self.client.batches.cancel(batch_id)))

    def recent_batches(self, since: float) -> Iterator[BatchView]:
        """Batches created at or after `since` (epoch seconds), newest first."""
        page = self._call("listing batches", lambda: self.client.batches.list(limit=100))
        while True:
            for batch in page.data:
                if batch.created_at < since:
                    return
                yield view(batch)
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
            raise self._call.rejected_key("answering a request", exc) from None
        except openai.APIStatusError as exc:
            line["response"] = {"status_code": exc.status_code, "body": error_body(exc)}
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

    def download_results(self, batch: BatchView, artifacts: Artifacts,
                         kind: str) -> dict[str, Downloaded]:
        """Both files of a finished batch, whatever its status: never trust the counts."""
        files = {}
        for name, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if file_id:
                files[name] = self.download(file_id, artifacts, kind)
        return files

    def parse_line(self, line: dict, *, expect: Expect, validator: Any = None) -> Outcome:
        return parse_line(line, expect=expect, validator=validator)


def view(batch: Batch) -> BatchView:
    """An OpenAI batch object as batchrun reads every provider's."""
    info: dict[str, Any] = {name: getattr(batch, name) for name in (*_TIMES, "output_file_id",
                            "error_file_id", "model") if getattr(batch, name, None) is not None}
    counts = batch.request_counts
    if counts is not None:
        info["request_counts"] = counts.model_dump()
    errors = tuple(BatchIssue(e.code, e.message, e.line)
                   for e in (batch.errors.data if batch.errors and batch.errors.data else []))
    if errors:
        info["errors"] = [e.model_dump(exclude_none=True) for e in batch.errors.data]  # type: ignore[union-attr]
    return BatchView(
        id=batch.id, status=batch.status, created_at=float(batch.created_at), info=info,
        request_counts=Counts(counts.total, counts.completed, counts.failed) if counts else None,
        metadata=dict(batch.metadata) if batch.metadata else None, endpoint=batch.endpoint,
        input_file_id=batch.input_file_id, output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id, model=getattr(batch, "model", None), errors=errors,
        in_progress_at=batch.in_progress_at, requests=counts.total if counts else None)


def open_openai(project: ProjectContext, emulator_speed: str | None) -> BatchAPI:
    """OpenAI, a compatible base URL, or the emulator in its OpenAI dialect."""
    cfg = project.config.provider
    if cfg.name == "emulator":
        emulator, http, poll = _emulator(project, emulator_speed)
        client = openai.OpenAI(api_key="emulator", base_url=EMULATOR_URL,
                               max_retries=cfg.max_retries, http_client=http)
        return BatchAPI(client, providers.label(cfg), poll, emulator, list_lag=cfg.list_lag)
    kwargs: dict[str, Any] = {"api_key": _key(project, "sk-…", "emulator"),
                              "max_retries": cfg.max_retries}
    if cfg.base_url:
        kwargs["base_url"] = cfg.base_url
    client = openai.OpenAI(**kwargs)
    return BatchAPI(client, str(client.base_url).rstrip("/"), cfg.poll_interval,
                    key_env=providers.key_env(cfg), list_lag=cfg.list_lag)


def open_azure(project: ProjectContext, emulator_speed: str | None) -> BatchAPI:
    """Azure OpenAI: `{endpoint}/openai/…?api-version=V` with the `api-key` header."""
    cfg = project.config.provider
    caps = providers.CAPABILITIES["azure"]
    version = providers.api_version(cfg)
    if cfg.name == "emulator":
        emulator, http, poll = _emulator(project, emulator_speed)
        client = openai.AzureOpenAI(api_key="emulator", azure_endpoint=EMULATOR_ORIGIN,
                                    api_version=version, max_retries=cfg.max_retries,
                                    http_client=http)
        return BatchAPI(client, providers.label(cfg), poll, emulator, caps=caps,
                        list_lag=cfg.list_lag)
    endpoint = providers.base_url(cfg)
    if not endpoint:
        raise ProviderError("provider azure needs its resource endpoint",
                            where=Location(project.file or "batchrun.yaml", 0, "provider"),
                            hint="set provider.base_url: https://RESOURCE.openai.azure.com, or "
                                 "export AZURE_OPENAI_ENDPOINT")
    key = _key(project, "…", "{name: emulator, dialect: azure}")
    client = openai.AzureOpenAI(api_key=key, azure_endpoint=endpoint,
                                api_version=version, max_retries=cfg.max_retries)
    return BatchAPI(client, f"Azure OpenAI at {endpoint}", cfg.poll_interval, caps=caps,
                    key_env=providers.key_env(cfg), list_lag=cfg.list_lag)
