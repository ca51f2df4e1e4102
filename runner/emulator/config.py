"""How fast the emulator moves a batch through its states, and the limits it enforces.

The real service takes minutes to hours per batch. Tests want every state at once
("instant"); a person watching the demo wants a few seconds per state ("demo"). Either
way the same state machine runs: only these durations differ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Limits of the real Batch API (https://platform.openai.com/docs/guides/batch).
MAX_REQUESTS_PER_BATCH = 50_000
# "200 MB": enforced as 200,000,000 bytes, the stricter reading, so that a packer that
# respects the emulator also respects the real service.
MAX_BATCH_BYTES = 200_000_000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
DAY = 86_400.0


@dataclass(frozen=True)
class EmulatorConfig:
    """Durations are in seconds of the emulator's clock; 0 means "at the next read"."""

    validating_seconds: float = 0.0
    seconds_per_request: float = 0.0
    finalizing_seconds: float = 0.0
    cancelling_seconds: float = 0.0
    completion_window_seconds: float = DAY
    seed: int = 0  # output order and ids of work derive from it
    max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH
    max_batch_bytes: int = MAX_BATCH_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    organization: str = "org-emulator"
    # Where the OpenAI layout is served: "/v1", or e.g. "/compat/openai/v1" for a
    # provider whose base URL has a longer path. The Azure layout is always under /openai.
    base_path: str = "/v1"
    azure_deployments: dict[str, str] = field(default_factory=dict)  # {deployment: model}

    def __post_init__(self) -> None:
        path = "/" + self.base_path.strip("/")
        if path == "/" or path.startswith(("/openai/", "/_emulator")) or path == "/openai":
            raise ValueError(f"base path {self.base_path!r} must be a path like /v1 or "
                             "/compat/openai/v1, outside /openai and /_emulator")
        object.__setattr__(self, "base_path", path)
        object.__setattr__(self, "azure_deployments", dict(self.azure_deployments))

    @classmethod
    def instant(cls, **overrides: Any) -> EmulatorConfig:
        """Every state is passed at the next read: what tests want."""
        return cls(**overrides)

    @classmethod
    def demo(cls, **overrides: Any) -> EmulatorConfig:
        """A few seconds per state, so a person can watch a batch progress."""
        values: dict[str, Any] = dict(validating_seconds=3.0, seconds_per_request=0.1,
                                      finalizing_seconds=2.0, cancelling_seconds=2.0)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EmulatorConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown speed {name!r}; expected one of {', '.join(PRESETS)}")
        return getattr(cls, name)(**{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS = ("instant", "demo")
