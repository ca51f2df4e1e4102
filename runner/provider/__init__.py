"""The Batch API at the edge: one interface, one module per vendor, listed in one dict.

Everything else in batchrun talks to a `Provider`, never to an SDK: it submits a shard,
reads batches (as `BatchView`s, the same for every vendor), cancels, lists recent batches
for adoption, downloads what a finished batch produced, and turns each line of it into
the same `Outcome`s. What differs between vendors is stated as `Capabilities` (batch
metadata or not, uploads or inline requests, limits per batch), and the flow asks those,
never the vendor's name.

    openai (any compatible base_url), azure, the emulator's   openai_batches.py   openai SDK
      openai and azure dialects
    anthropic, the emulator's anthropic dialect               anthropic_batches.py  anthropic SDK

Importing this package loads no SDK: `open_provider` imports the vendor's module when a
command first talks to the API (plan never does).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .config import Capabilities

if TYPE_CHECKING:
    from ..answers import AnswerValidator
    from ..artifacts import Artifacts
    from ..project import ProjectContext
    from ..results import AnswerCheck, Expect, Outcome


@dataclass(frozen=True)
class Downloaded:
    sha: str
    path: Path
    size: int


@dataclass(frozen=True)
class Counts:
    """Requests of a batch as the provider counts them (never trusted over the files)."""

    total: int
    completed: int
    failed: int


@dataclass(frozen=True)
class BatchIssue:
    """Why a provider refused a batch as a whole (OpenAI's `errors.data`)."""

    code: str | None
    message: str | None
    line: int | None = None


@dataclass(frozen=True)
class BatchView:
    """A batch as any provider reports it, in OpenAI's vocabulary of statuses:
    validating, in_progress, finalizing, completed, failed, expired, cancelling,
    cancelled (records.TERMINAL end it)."""

    id: str
    status: str
    created_at: float                       # epoch seconds
    info: dict[str, Any]                    # what the manifest keeps: timestamps, counts, errors
    request_counts: Counts | None = None
    metadata: dict[str, str] | None = None
    endpoint: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    errors: tuple[BatchIssue, ...] = ()
    in_progress_at: float | None = None
    requests: int | None = None             # how many requests it holds, when the API says


@dataclass(frozen=True)
class Submission:
    """One shard to create a batch from: its file, and what it is sent with."""

    shard: Path
    endpoint: str
    requests: int
    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    file_id: str | None = None              # the uploaded input file (uploading providers)


class Provider(Protocol):
    caps: Capabilities
    label: str                  # shown in errors: which API we were talking to
    poll_interval: float
    emulator: Any               # the in-process emulator, when that is the provider
    list_lag: float             # seconds a batch list may lag behind a create (submit.py)

    def upload(self, path: Path, filename: str) -> str: ...
    def find_file(self, filename: str, size: int) -> str | None: ...
    def create_once(self, submission: Submission) -> BatchView: ...
    def retrieve(self, batch_id: str) -> BatchView: ...
    def cancel(self, batch_id: str) -> BatchView: ...
    def recent_batches(self, since: float) -> Iterator[BatchView]: ...
    def download(self, file_id: str, artifacts: Artifacts, kind: str) -> Downloaded: ...
    def download_results(self, batch: BatchView, artifacts: Artifacts,
                         kind: str) -> dict[str, Downloaded]: ...
    def parse_line(self, line: dict, *, expect: Expect,
                   validator: AnswerValidator | None) -> Outcome: ...
    def answer_now(self, endpoint: str, body: dict, *, custom_id: str, expect: Expect,
                   validator: AnswerCheck | None = None) -> Outcome: ...
    def stored_files(self) -> dict[str, int]: ...
    def delete_file(self, file_id: str) -> None: ...


# name → "module:factory"; each factory takes (ProjectContext, emulator_speed) and
# returns a Provider. The emulator's entry picks the module of its dialect.
PROVIDERS = {
    "openai": "openai_batches:open_openai",
    "azure": "openai_batches:open_azure",
    "anthropic": "anthropic_batches:open_anthropic",
}


def open_provider(project: ProjectContext, *, emulator_speed: str | None = None) -> Provider:
    """The project's provider (its `config.provider`), from batchrun.yaml and the environment."""
    from .config import dialect

    module, _, factory = PROVIDERS[dialect(project.config.provider)].partition(":")
    loaded = importlib.import_module(f"{__name__}.{module}")
    return getattr(loaded, factory)(project, emulator_speed)


def __getattr__(name: str) -> Any:
    """`BatchAPI` and `EMULATOR_URL`, as before the package (bench/ imports them); the
    openai SDK loads only when they are asked for."""
    if name in ("BatchAPI", "EMULATOR_URL"):
        from . import openai_batches

        return getattr(openai_batches, name)
    raise AttributeError(name)
