"""A job's request parameters and its provider, checked before anything is sent: params by
name against the installed SDK of the job's provider (a typo would fail every request),
what the provider's API requires (Anthropic: `max_tokens`), which endpoints it has, and
its limits per batch.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.metadata
import importlib.util
from pathlib import Path

from . import vectors
from .errors import SpecError
from .provider import config as providers
from .spec import RESERVED_PARAMS, JobSpec, ProviderConfig
from .yamlfile import Positions

# Where the installed SDKs declare the body parameters of each endpoint. Read as source,
# not imported: importing an SDK costs most of a second, and `validate` must not.
_SDK_PARAMS = {
    "/v1/chat/completions": ("openai", "types/chat/completion_create_params.py",
                             "CompletionCreateParamsBase"),
    "/v1/responses": ("openai", "types/responses/response_create_params.py",
                      "ResponseCreateParamsBase"),
    "/v1/embeddings": ("openai", "types/embedding_create_params.py", "EmbeddingCreateParams"),
    "/v1/messages": ("anthropic", "types/message_create_params.py", "MessageCreateParamsBase"),
}
# Body fields batchrun writes from the spec for Anthropic's Messages API.
ANTHROPIC_RESERVED = {"model", "messages", "system", "stream", "output_format"}


@functools.cache
def known_params(endpoint: str) -> frozenset[str]:
    """The request body keys the installed SDK knows for an endpoint (the keys its
    TypedDict of create params declares)."""
    package, rel, name = _SDK_PARAMS[endpoint]
    found = importlib.util.find_spec(package)
    if found is None or found.origin is None:
        return frozenset()
    tree = ast.parse((Path(found.origin).parent / rel).read_text(encoding="utf-8"))
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)
    return frozenset(item.target.id for item in cls.body
                     if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name))


def wire_endpoint(spec: JobSpec, dialect: str) -> str:
    """The API endpoint a job's requests go to: Anthropic's jobs all go to /v1/messages."""
    return "/v1/messages" if dialect == "anthropic" else spec.endpoint


def check_provider(spec: JobSpec, provider: ProviderConfig, positions: Positions) -> None:
    """What the job's provider does not take: an endpoint it lacks, a batch over its limits."""
    dialect = providers.dialect(provider)
    who = providers.label(provider)
    if dialect == "anthropic" and spec.endpoint not in ("/v1/chat/completions", "/v1/messages"):
        raise SpecError(f"{who} has no {spec.endpoint}; its Messages API answers chat "
                        "(endpoint /v1/messages, or /v1/chat/completions, which maps onto it)",
                        where=positions.at(("endpoint",)),
                        hint="use another provider for this job (a job's own provider: "
                             "overrides batchrun.yaml's)")
    if dialect != "anthropic" and spec.endpoint == "/v1/messages":
        raise SpecError(f"/v1/messages is Anthropic's Messages API; {who} has "
                        "/v1/chat/completions", where=positions.at(("endpoint",)),
                        hint="set provider: {name: anthropic}, or endpoint: /v1/chat/completions")
    caps = providers.CAPABILITIES[dialect]
    for key, value, limit in (("max_requests", spec.batch.max_requests, caps.max_requests),
                              ("max_bytes", int(spec.batch.max_bytes), caps.max_bytes)):
        if value > limit:
            raise SpecError(f"batch.{key} {value:,} is over {who}'s limit of {limit:,} per batch",
                            where=positions.at(("batch", key)), hint=f"lower batch.{key}")


def check_params(spec: JobSpec, positions: Positions, dialect: str) -> None:
    endpoint = wire_endpoint(spec, dialect)
    if dialect == "anthropic":
        _check_anthropic(spec, positions)
    else:
        _check_openai(spec, positions)
    known = known_params(endpoint)
    package = _SDK_PARAMS[endpoint][0]
    reserved = ANTHROPIC_RESERVED if dialect == "anthropic" else RESERVED_PARAMS
    for key in spec.params:
        if key not in known:
            # Params are sent as written: a typo would fail every request with a 400.
            close = difflib.get_close_matches(key, sorted(known - reserved), n=1)
            raise SpecError(f"unknown param {key!r} for {endpoint}"
                            + (f"; did you mean {close[0]!r}?" if close else ""),
                            where=positions.at(("params", key)),
                            hint=f"params go into every request as written, and the "
                                 f"{package} SDK {importlib.metadata.version(package)} knows "
                                 f"no such param for {endpoint} (a newer SDK may)")


def _check_reserved(spec: JobSpec, positions: Positions, reserved: set[str]) -> None:
    for key in spec.params:
        if key in reserved:
            raise SpecError(f"{key!r} is set by batchrun from the spec and cannot be a param",
                            where=positions.at(("params", key)),
                            hint="use model:, prompt: and output: instead")


def _check_anthropic(spec: JobSpec, positions: Positions) -> None:
    _check_reserved(spec, positions, ANTHROPIC_RESERVED)
    if "max_tokens" not in spec.params:
        raise SpecError("Anthropic's Messages API requires max_tokens, the most tokens an "
                        "answer may use", where=positions.at(("params",)),
                        hint="add it to params, e.g. params: {max_tokens: 1024}; it also "
                             "bounds the cost estimate")
    config = spec.params.get("output_config")
    if isinstance(config, dict) and "format" in config and \
            (spec.output.fields is not None or spec.output.schema_ is not None):
        raise SpecError("output_config.format is written by batchrun from output.fields or "
                        "output.schema", where=positions.at(("params", "output_config", "format")),
                        hint="remove it from params")
    _check_not_embedding(spec, positions)


def _check_openai(spec: JobSpec, positions: Positions) -> None:
    _check_reserved(spec, positions, RESERVED_PARAMS)
    if spec.endpoint == "/v1/embeddings":
        if spec.prompt.system is not None:
            raise SpecError("/v1/embeddings takes no system prompt; expected only "
                            "prompt.user, the text to embed",
                            where=positions.at(("prompt", "system")),
                            hint="remove prompt.system")
        if spec.output.fields is not None or spec.output.schema_ is not None:
            raise SpecError("/v1/embeddings returns vectors; expected no output.fields or "
                            "output.schema", where=positions.at(("output",)),
                            hint="remove them: the embedding itself is written back")
        if spec.output.vector is not None and spec.output.key is not None:
            raise SpecError("expected output.vector or output.key, not both: the embedding "
                            "goes into the vector, and the stamp into the payload",
                            where=positions.at(("output", "key")), hint="remove output.key")
        vectors.check_dimensions(spec, positions)
        if spec.input.truncate and vectors.input_limit_of(spec) is None:
            raise SpecError(f"batchrun does not know the input limit of {spec.model}, so it "
                            "cannot truncate to it", where=positions.at(("input", "truncate")),
                            hint="set input.max_tokens to the model's limit")
        return
    _check_not_embedding(spec, positions)


def _check_not_embedding(spec: JobSpec, positions: Positions) -> None:
    if spec.output.vector is not None:
        raise SpecError("output.vector takes embeddings; expected endpoint: "
                        "/v1/embeddings", where=positions.at(("output", "vector")),
                        hint="remove it, or embed with /v1/embeddings")
    if spec.input.truncate or spec.input.max_tokens:
        raise SpecError("input.truncate applies to /v1/embeddings only",
                        where=positions.at(("input",)), hint="remove input")
