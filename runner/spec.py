"""Job specs and the project file, as data: the models, their keys and their checks.

A job spec says which points to read (`source`), how to turn each into a request
(`prompt`, `model`, `endpoint`, `params`), what comes back (`output`) and how to send it
(`batch`, `budget`). `batchrun.yaml`, optional, holds what jobs share: the Qdrant
connection, the provider, the state directory, price overrides. Unknown keys are errors:
a typo must not silently change what is sent, or what it costs. Loading files into these
models, with errors that point into the YAML, is project.py and jobs.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

PROJECT_FILE = "batchrun.yaml"
MAX_BATCH_REQUESTS = 50_000          # the OpenAI Batch API's limit per input file (the default)
MAX_BATCH_BYTES = 200_000_000        # 200 MB, counted in decimal megabytes to stay under the limit
# The largest any provider takes; each provider's own limits are checked per job (jobs.py).
MAX_ANY_REQUESTS = 100_000
MAX_ANY_BYTES = 256_000_000
# A request line bigger than this is a mistake far more often than a need (1 MB of text is
# some 250,000 tokens, over most context windows): such a point fails instead of costing.
MAX_REQUEST_BYTES = 1_000_000
ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages")
PROVIDERS = ("openai", "anthropic", "azure", "emulator")
DIALECTS = ("openai", "anthropic", "azure")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Body fields batchrun itself writes from the spec; setting them in `params` is an error.
RESERVED_PARAMS = {"model", "messages", "input", "instructions", "response_format", "text",
                   "stream", "n"}
# Request body parameters people write at the top level of a spec by mistake.
COMMON_PARAMS = {"temperature", "max_tokens", "max_completion_tokens", "max_output_tokens",
                 "top_p", "seed", "stop", "reasoning_effort", "reasoning", "presence_penalty",
                 "frequency_penalty", "dimensions", "encoding_format", "logprobs",
                 "service_tier", "verbosity"}



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)



# Sizes as people write them ("200MB", "500kB", 1000000), in decimal units like the API's
# limits; the JSON Schema says the same for editors.
Size = Annotated[pydantic.ByteSize, Field(gt=0), pydantic.WithJsonSchema({
    "anyOf": [{"type": "integer", "minimum": 1},
              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[kKmMgG]?[iI]?[bB]?\s*$"}]})]


class ProviderConfig(_Strict):
    name: Literal["openai", "anthropic", "azure", "emulator"] = Field(
        "openai", description="openai (the real API or any compatible base_url), anthropic "
        "(Message Batches), azure (Azure OpenAI), or emulator (batchrun's own, in-process, "
        "free).")
    dialect: Literal["openai", "anthropic", "azure"] | None = Field(
        None, description="For the emulator: which API it answers as (default openai).")
    base_url: str | None = Field(None, description="API base URL (default: $OPENAI_BASE_URL "
                                 "or api.openai.com; $ANTHROPIC_BASE_URL or api.anthropic.com; "
                                 "for azure the resource endpoint, default "
                                 "$AZURE_OPENAI_ENDPOINT).")
    api_key_env: str | None = Field(None, description="Environment variable with the key "
                                    "(default OPENAI_API_KEY, ANTHROPIC_API_KEY or "
                                    "AZURE_OPENAI_API_KEY).")
    api_version: str | None = Field(None, description="For azure: the api-version (default "
                                    "$OPENAI_API_VERSION, else 2024-10-21).")
    deployments: dict[str, str] = Field(default_factory=dict, description="For azure: "
                                        "deployment name → model it runs, for estimates and "
                                        "prices before the answers say.")
    poll_interval: float = Field(30.0, gt=0, description="Seconds between status polls.")
    max_retries: int = Field(5, ge=0, description="SDK retries per API call (429, 5xx, network).")
    emulator_speed: Literal["instant", "demo"] = Field(
        "demo", description="For the emulator: instant, or a few seconds per state.")
    adopt_lookback_hours: float = Field(
        72.0, ge=0, description="How far back batches are looked for to adopt (72 h: in "
        "flight plus time to collect). For providers without batch metadata (anthropic), 0 "
        "trusts the state directory alone: a lost one may pay again.")
    list_lag: float = Field(60.0, ge=0, description="Seconds the provider's batch list may "
                            "lag behind a create: a create whose answer was lost is looked "
                            "for this long before it is tried again.")


# ---- job spec -------------------------------------------------------------------------

class Source(_Strict):
    collection: str = Field(min_length=1, description="Qdrant collection to read points from.")
    filter: dict[str, Any] | None = Field(
        None, description="A Qdrant filter, in the JSON shape of Qdrant's REST API.")
    fields: list[str] | None = Field(
        None, description="Payload fields the template sees (default: all but batchrun's own).")
    limit: int | None = Field(None, gt=0, description="Read at most this many points (trial runs).")


class Prompt(_Strict):
    system: str | None = Field(None, description="System prompt: a template file path (.j2, "
                               ".jinja, .txt, .md) relative to the project, or inline text.")
    user: str = Field(description="User prompt (for /v1/embeddings: the text to embed): a "
                      "template file path or inline text.")


class Output(_Strict):
    key: str | None = Field(None, min_length=1, pattern=r"^[^.]+(\.[^.]+)*$",
                            description="Payload key the result is written under (default: "
                            "the job name); a dotted key (llm.tags) writes inside a nested "
                            "object, beside what else it holds.")
    vector: str | None = Field(None, description="For /v1/embeddings: the named vector the "
                               "embedding is written to (\"\" for the collection's unnamed "
                               "default vector), where Qdrant can search it; the stamp stays "
                               "in the payload.")
    fields: dict[str, dict[str, Any]] | None = Field(
        None, description="Output fields as JSON Schema fragments; becomes a strict JSON Schema.")
    schema_: str | dict[str, Any] | None = Field(
        None, alias="schema", description="A JSON Schema file (under schemas/) or inline mapping.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="Schema name sent to the API (default: the job name).")


class InputRules(_Strict):
    truncate: Literal["tokens"] | None = Field(
        None, description="For /v1/embeddings: cut a text longer than the model's input limit "
        "to that many tokens (without it, such a point is reported, never sent to fail).")
    max_tokens: int | None = Field(None, gt=0, description="The model's input limit in "
                                   "tokens, for a model batchrun does not know.")


class BatchLimits(_Strict):
    max_requests: int = Field(MAX_BATCH_REQUESTS, ge=1, le=MAX_ANY_REQUESTS,
                              description="Requests per shard (limit: OpenAI 50,000; Azure "
                              "and Anthropic 100,000).")
    max_bytes: Size = Field(pydantic.ByteSize(MAX_BATCH_BYTES), le=MAX_ANY_BYTES,
                            description="Bytes per shard, e.g. 200MB (limit: OpenAI and Azure "
                            "200 MB; Anthropic 256 MB).")
    max_request_bytes: Size = Field(
        pydantic.ByteSize(MAX_REQUEST_BYTES), le=MAX_ANY_BYTES,
        description="Bytes per request, e.g. 1MB: a point whose rendered request is bigger "
        "fails, with its id, instead of being sent.")
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per request, across batches.")
    max_enqueued_tokens: int | None = Field(
        None, gt=0, description="Input tokens in flight per model at once; more waits for a "
        "later wave (your organisation's batch queue limit).")


class Budget(_Strict):
    max_cost_usd: float | None = Field(None, ge=0, description="Refuse to submit when the "
                                       "estimated cost of what would be sent exceeds this.")


class JobSpec(_Strict):
    name: str | None = Field(None, description="Unique job name (default: the file name).")
    description: str | None = Field(None, description="Free text; changing it sends nothing.")
    needs: list[str] = Field(default_factory=list, description="Jobs whose output this job reads.")
    source: Source = Field(description="Which points to read: collection, filter, fields, limit.")
    prompt: Prompt = Field(description="How a point becomes a request: user (and system), each "
                           "a template file or inline text.")
    model: str = Field(min_length=1, description="Model id, e.g. gpt-4o-mini.")
    endpoint: Literal["/v1/chat/completions", "/v1/responses", "/v1/embeddings",
                      "/v1/messages"] = Field(
        "/v1/chat/completions", description="Batch API endpoint (/v1/messages: Anthropic's "
        "Messages API; with provider anthropic, /v1/chat/completions means it too).")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Other body parameters: temperature, max_tokens…")
    input: InputRules = Field(default_factory=InputRules, description="What is done with a "
                              "text over the model's input limit (embeddings): truncate.")
    output: Output = Field(default_factory=Output, description="What comes back: key, and "
                           "fields or schema, or a named vector.")
    batch: BatchLimits = Field(default_factory=BatchLimits, description="Shard and request "
                               "sizes and attempts: max_requests, max_bytes, "
                               "max_request_bytes, max_attempts.")
    budget: Budget = Field(default_factory=Budget, description="max_cost_usd: refuse to "
                           "submit past this estimate.")
    provider: ProviderConfig | None = Field(
        None, description="Who answers this job, over batchrun.yaml's provider: keys given "
        "here replace the project's; another name starts from that provider's defaults.")


# ---- project file ---------------------------------------------------------------------

class QdrantConfig(_Strict):
    path: str | None = Field(None, description="Embedded Qdrant directory (default .qdrant), "
                             "or :memory:.")
    url: str | None = Field(None, description="Qdrant server URL; replaces the embedded engine.")
    api_key_env: str | None = Field(None, description="Environment variable holding the "
                                    "server's API key.")
    timeout: int | None = Field(None, gt=0, description="Server request timeout, seconds.")
    scroll_page: int = Field(10_000, ge=1, description="Points read per scroll request.")
    write_batch: int = Field(1_000, ge=1, description="Points written per update request.")


class Project(_Strict):
    qdrant: QdrantConfig = Field(default_factory=QdrantConfig, description="The Qdrant "
                                 "connection: path (embedded) or url.")
    provider: ProviderConfig = Field(default_factory=ProviderConfig, description="The Batch "
                                     "API: name (openai, anthropic, azure or emulator), "
                                     "base_url, api_key_env.")
    state_dir: str = Field(".batchrun", description="Where artifacts, the result cache and the "
                           "manifest live (cache it in CI).")
    jobs: str = Field("jobs", description="Default folder of job specs.")
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="Price overrides per model.")


def job_schema() -> dict:
    """The job-spec JSON Schema editors use (exported to schemas/job.schema.json)."""
    schema = JobSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "batchrun job spec"
    return schema

