"""Who answers, as data: a job's effective provider, its dialect, its id, where its ledger
lives and what its Batch API allows. Pure: no SDK is imported here, so `plan` and
`validate` can ask all of it.

A project names one provider in batchrun.yaml; a job may override it with its own
`provider:` block. Keys the job gives replace the project's; a job naming another
provider starts from that provider's defaults (the project's OpenAI key variable means
nothing to Anthropic).

Every provider keeps its own ledger (results are the answers of whoever gave them):
`.batchrun/` for OpenAI or a compatible base URL (as before), `.batchrun/anthropic/`,
`.batchrun/azure/`, and for the emulator `.batchrun/emulator/` (OpenAI dialect, as
before), `.batchrun/emulator-anthropic/`, `.batchrun/emulator-azure/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..spec import ProviderConfig

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
AZURE_API_VERSION = "2024-10-21"   # Azure OpenAI's GA data-plane version with batches
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
                   "azure": "AZURE_OPENAI_API_KEY"}


@dataclass(frozen=True)
class Capabilities:
    """What a provider's batch API offers; callers ask these instead of the vendor's name."""

    dialect: str            # openai | anthropic | azure: the wire format of bodies and results
    metadata: bool          # batches carry metadata, so a lost run's batches can be adopted
    uploads: bool           # requests go up as a file (Files API); else inline in the create
    max_requests: int       # per batch
    max_bytes: int          # per batch (input file, or create body)
    sync: bool = True       # a synchronous endpoint answers one request at once (`try`)


# Limits, with where they come from:
# - OpenAI: 50,000 requests, 200 MB per input file (API reference, batches.create).
# - Azure OpenAI: 100,000 requests, 200 MB per file (Microsoft Learn, "Azure OpenAI
#   quotas and limits", Batch limits).
# - Anthropic: 100,000 requests or 256 MB per Message Batch (docs, "Batch processing",
#   Batch limitations).
CAPABILITIES = {
    "openai": Capabilities("openai", metadata=True, uploads=True, max_requests=50_000,
                           max_bytes=200_000_000),
    "azure": Capabilities("azure", metadata=True, uploads=True, max_requests=100_000,
                          max_bytes=200_000_000),
    "anthropic": Capabilities("anthropic", metadata=False, uploads=False, max_requests=100_000,
                              max_bytes=256_000_000),
}


def dialect(cfg: ProviderConfig) -> str:
    """The API a provider speaks: its own name, or the emulator's dialect."""
    if cfg.name == "emulator":
        return cfg.dialect or "openai"
    return cfg.name


def capabilities(cfg: ProviderConfig) -> Capabilities:
    return CAPABILITIES[dialect(cfg)]


def effective(project: ProviderConfig, job: ProviderConfig | None) -> ProviderConfig:
    """A job's provider: the project's, with the keys the job's `provider:` gives."""
    if job is None:
        return project
    given = {name: getattr(job, name) for name in job.model_fields_set}
    if job.name != project.name and "name" in job.model_fields_set:
        return ProviderConfig(**given)
    return project.model_copy(update=given)


def state_subdir(cfg: ProviderConfig) -> str | None:
    """The state directory's subfolder for this provider (None: the state directory)."""
    kind = dialect(cfg)
    if cfg.name == "emulator":
        return "emulator" if kind == "openai" else f"emulator-{kind}"
    return None if kind == "openai" else kind


def key_env(cfg: ProviderConfig) -> str:
    return cfg.api_key_env or DEFAULT_KEY_ENV[dialect(cfg)]


def base_url(cfg: ProviderConfig, environ: Mapping[str, str] | None = None) -> str:
    """Where requests go, as the SDK would resolve it from the environment."""
    env = os.environ if environ is None else environ
    kind = dialect(cfg)
    if kind == "anthropic":
        url = cfg.base_url or env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL
    elif kind == "azure":
        url = cfg.base_url or env.get("AZURE_OPENAI_ENDPOINT") or ""
    else:
        url = cfg.base_url or env.get("OPENAI_BASE_URL") or OPENAI_URL
    return url.rstrip("/")


def api_version(cfg: ProviderConfig, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return cfg.api_version or env.get("OPENAI_API_VERSION") or AZURE_API_VERSION


def provider_id(cfg: ProviderConfig, environ: Mapping[str, str] | None = None) -> str:
    """Who answers, as stamps and the ledger record it: `emulator` (or `emulator:<dialect>`),
    an OpenAI base URL as before, `anthropic:<base URL>`, `azure:<endpoint>`."""
    kind = dialect(cfg)
    if cfg.name == "emulator":
        return "emulator" if kind == "openai" else f"emulator:{kind}"
    url = base_url(cfg, environ)
    return url if kind == "openai" else f"{kind}:{url}"


def label(cfg: ProviderConfig) -> str:
    """How a user names it in a message: the emulator, OpenAI, Anthropic, Azure OpenAI."""
    names = {"openai": "OpenAI", "anthropic": "Anthropic", "azure": "Azure OpenAI"}
    if cfg.name == "emulator":
        kind = dialect(cfg)
        return "the emulator" + ("" if kind == "openai" else f" ({names[kind]} dialect)")
    return names[dialect(cfg)]
