"""Checking Messages API parameters the way the real API does, for a batch or a sync call.

Two depths, because the real Batches API works in two steps:

- `check_shape` (at batch creation, and first for POST /v1/messages): the fields the
  request schema requires — `custom_id` rules, `params` with `model`, `max_tokens` and
  `messages` of the right types. A violation is a 400 for the whole create call
  ("requests.0.params.max_tokens: Field required").
- `check_params` (when a batch request runs, or for a sync call before answering): what
  only the service knows — the model exists, `max_tokens` fits it, message contents,
  tools and `tool_choice`, `thinking`, the structured-output schema. A violation makes
  that one request `errored` (a 400/404 for a sync call).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .anthropic_errors import AnthropicError, Path, expect
from .anthropic_schema import check_output_schema

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MODEL = re.compile(
    r"^claude-(?:(?:opus|sonnet|haiku|fable|mythos)-\d+(?:-\d+)?|\d+(?:-\d+)?-"
    r"(?:opus|sonnet|haiku)|mythos-preview|instant-1\.2|2\.[01])(?:-\d{8}|-latest)?$")
# Aliases the API answers with a dated id (seen in its examples); others come back as sent.
DATED = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
# Output token maxima of older families (models overview); newer ones: a generous bound,
# so that the emulator never refuses what the real API accepts.
_MAX_OUTPUT = [(re.compile(r"^claude-3-(opus|sonnet|haiku)"), 4096),
               (re.compile(r"^claude-3-5-"), 8192),
               (re.compile(r"^claude-(opus-4-0|opus-4-1|opus-4-2025|opus-4-1-2025)"), 32000),
               (re.compile(r"^claude-(3-7-sonnet|sonnet-4-0|sonnet-4-2025|sonnet-4-5|"
                           r"haiku-4-5|opus-4-5)"), 64000)]
DEFAULT_MAX_OUTPUT = 128000
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"
KNOWN_PARAMS = frozenset({
    "model", "max_tokens", "messages", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "output_config",
    "output_format", "service_tier", "cache_control", "container", "context_management",
    "mcp_servers", "inference_geo", "speed", "diagnostics", "user_profile_id"})
_BLOCK_TYPES = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking",
                          "redacted_thinking", "search_result", "server_tool_use",
                          "web_search_tool_result", "container_upload"})


def dated_model(model: str) -> str:
    return DATED.get(model, model)


def max_output_tokens(model: str) -> int:
    return next((cap for pattern, cap in _MAX_OUTPUT if pattern.match(model)),
                DEFAULT_MAX_OUTPUT)


# -- depth 1: the request schema ----------------------------------------------------------
def check_batch_request(request: Any, index: int, seen: set[str]) -> str:
    """One entry of `requests` at creation; its custom_id."""
    path = Path("requests", index)
    if not isinstance(request, dict):
        raise path.wrong_type("dictionary")
    for name in request:
        if name not in ("custom_id", "params"):
            raise (path / name).extra()
    if "custom_id" not in request:
        raise (path / "custom_id").missing()
    custom_id = expect(request["custom_id"], str, path / "custom_id", "string")
    if not custom_id:
        raise (path / "custom_id").says("String should have at least 1 character")
    if len(custom_id) > 64:
        raise (path / "custom_id").says("String should have at most 64 characters")
    if not CUSTOM_ID.match(custom_id):
        raise (path / "custom_id").says("String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
    if custom_id in seen:
        raise (path / "custom_id").says(
            f"custom_id '{custom_id}' is used by more than one request; each custom_id must "
            "be unique within a Message Batch")
    seen.add(custom_id)
    if "params" not in request:
        raise (path / "params").missing()
    check_shape(request["params"], path / "params")
    if request["params"].get("stream") is True:
        raise (path / "params" / "stream").says(
            "streaming is not supported in a Message Batch")
    return custom_id


def check_shape(params: Any, path: Path | None = None) -> None:
    """The required fields of a Messages API request body and their types."""
    path = path or Path()
    if not isinstance(params, dict):
        raise path.wrong_type("dictionary")
    for name in ("max_tokens", "messages", "model"):
        if name not in params:
            raise (path / name).missing()
    max_tokens = expect(params["max_tokens"], int, path / "max_tokens", "integer")
    if max_tokens < 0:
        raise (path / "max_tokens").says("Input should be greater than or equal to 0")
    expect(params["messages"], list, path / "messages", "list")
    expect(params["model"], str, path / "model", "string")


# -- depth 2: what the service checks when it runs the request ----------------------------
@dataclass
class Checked:
    """What the responder needs from valid params."""

    model: str
    output_schema: dict[str, Any] | None = None  # output_config.format (or output_format)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    tool_choice: dict[str, Any] = field(default_factory=lambda: {"type": "auto"})
    thinking_budget: int | None = None  # reasoning tokens to spend first, if thinking


def check_params(params: dict[str, Any], betas: frozenset[str] = frozenset()) -> Checked:
    """Raise the API's error for params it would refuse (404 for an unknown model)."""
    check_shape(params)
    for name in params:
        if name not in KNOWN_PARAMS:
            raise Path(name).extra()
    model = params["model"]
    if not _MODEL.match(model):
        raise AnthropicError("not_found_error", f"model: {model}")
    cap = max_output_tokens(model)
    if params["max_tokens"] > cap:
        raise Path("max_tokens").says(
            f"{params['max_tokens']} > {cap}, which is the maximum allowed number of output "
            f"tokens for {dated_model(model)}")
    _check_messages(params["messages"])
    _check_system(params.get("system"))
    _check_sampling(params)
    checked = Checked(model=model)
    _check_tools(params, checked)
    _check_thinking(params, checked)
    checked.output_schema = _output_schema(params, betas)
    return checked


def _check_messages(messages: list[Any]) -> None:
    if not messages:
        raise Path("messages").says("at least one message is required")
    for index, message in enumerate(messages):
        path = Path("messages", index)
        if not isinstance(message, dict):
            raise path.wrong_type("dictionary")
        if "role" not in message:
            raise (path / "role").missing()
        if message["role"] not in ("user", "assistant"):
            raise (path / "role").says("Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise (path / "content").missing()
        content = message["content"]
        last_assistant = index == len(messages) - 1 and message["role"] == "assistant"
        if isinstance(content, str):
            if not content and not last_assistant:
                raise path.says("all messages must have non-empty content except for the "
                                "optional final assistant message")
            continue
        expect(content, list, path / "content", "list")
        if not content and not last_assistant:
            raise path.says("all messages must have non-empty content except for the "
                            "optional final assistant message")
        for number, block in enumerate(content):
            _check_block(block, path / "content" / number)


def _check_block(block: Any, path: Path) -> None:
    if not isinstance(block, dict):
        raise path.wrong_type("dictionary")
    kind = block.get("type")
    if kind is None:
        raise (path / "type").missing()
    if kind not in _BLOCK_TYPES:
        raise (path / "type").says(f"Input tag '{kind}' found using 'type' does not match "
                                   "any of the expected tags")
    if kind == "text":
        if "text" not in block:
            raise (path / "text").missing()
        expect(block["text"], str, path / "text", "string")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    expect(system, list, Path("system"), "string or list of text blocks")
    for index, block in enumerate(system):
        path = Path("system", index)
        if not isinstance(block, dict) or block.get("type") != "text":
            raise (path / "type").says("Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise (path / "text").missing()


def _check_sampling(params: dict[str, Any]) -> None:
    for name, high in (("temperature", 1), ("top_p", 1)):
        if name in params and params[name] is not None:
            value = expect(params[name], (int, float), Path(name), "number")
            if not 0 <= value <= high:
                raise Path(name).says(f"Input should be between 0 and {high}")
    if params.get("top_k") is not None:
        expect(params["top_k"], int, Path("top_k"), "integer")
    stops = params.get("stop_sequences")
    if stops is not None:
        expect(stops, list, Path("stop_sequences"), "list")
        for index, stop in enumerate(stops):
            expect(stop, str, Path("stop_sequences", index), "string")


def _check_tools(params: dict[str, Any], checked: Checked) -> None:
    tools = params.get("tools") or []
    expect(tools, list, Path("tools"), "list")
    for index, tool in enumerate(tools):
        path = Path("tools", index)
        if not isinstance(tool, dict):
            raise path.wrong_type("dictionary")
        if "name" not in tool:
            raise (path / "name").missing()
        name = expect(tool["name"], str, path / "name", "string")
        if "input_schema" not in tool:
            if tool.get("type") not in (None, "custom"):
                continue  # a server tool (web_search_…): its schema is Anthropic's own
            raise (path / "input_schema").missing()
        if not _TOOL_NAME.match(name):
            raise (path / "name").says("String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
        schema = expect(tool["input_schema"], dict, path / "input_schema", "dictionary")
        if schema.get("type") != "object":
            raise (path / "input_schema" / "type").says("Input should be 'object'")
        if tool.get("strict") is True:
            check_output_schema(schema, f"{path}.input_schema")
        if name in checked.tools:
            raise Path("tools").says("Tool names must be unique.")
        checked.tools[name] = schema
    choice = params.get("tool_choice")
    if choice is None:
        return
    choice = expect(choice, dict, Path("tool_choice"), "dictionary")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise Path("tool_choice", "type").says(
            "Input should be 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not checked.tools:
        raise Path("tool_choice").says(
            f"tool_choice of type '{kind}' requires at least one tool in 'tools'")
    if kind == "tool":
        if "name" not in choice:
            raise Path("tool_choice", "name").missing()
        if choice["name"] not in checked.tools:
            raise Path("tool_choice", "name").says(
                f"Tool '{choice['name']}' not found in 'tools'")
    checked.tool_choice = choice


def _check_thinking(params: dict[str, Any], checked: Checked) -> None:
    thinking = params.get("thinking")
    if thinking is None:
        return
    thinking = expect(thinking, dict, Path("thinking"), "dictionary")
    kind = thinking.get("type")
    if kind == "disabled":
        return
    if kind not in ("enabled", "adaptive"):
        raise Path("thinking", "type").says("Input should be 'enabled', 'adaptive' or "
                                            "'disabled'")
    if checked.tool_choice.get("type") in ("any", "tool"):
        raise Path("thinking").says("Thinking may not be enabled when tool_choice forces "
                                    "tool use.")
    if kind == "adaptive":
        checked.thinking_budget = min(1024, params["max_tokens"] // 4)
        return
    budget = expect(thinking.get("budget_tokens"), int, Path("thinking", "budget_tokens"),
                    "integer")
    if budget < 1024:
        raise Path("thinking", "budget_tokens").says("Input should be greater than or equal "
                                                      "to 1024")
    if params["max_tokens"] <= budget:
        raise Path("").says("`max_tokens` must be greater than `thinking.budget_tokens`.")
    checked.thinking_budget = budget


def _output_schema(params: dict[str, Any], betas: frozenset[str]) -> dict[str, Any] | None:
    """The schema of `output_config.format`, or of the deprecated beta `output_format`."""
    config = params.get("output_config")
    fmt, where = None, "output_config.format"
    if config is not None:
        config = expect(config, dict, Path("output_config"), "dictionary")
        for name in config:
            if name not in ("format", "effort", "task_budget"):
                raise Path("output_config", name).extra()
        fmt = config.get("format")
    if params.get("output_format") is not None:
        if STRUCTURED_OUTPUTS_BETA not in betas:
            raise Path("output_format").says(
                "Extra inputs are not permitted (it needs the "
                f"'anthropic-beta: {STRUCTURED_OUTPUTS_BETA}' header; prefer "
                "output_config.format)")
        if fmt is not None:
            raise Path("output_format").says("Both output_format and output_config.format "
                                              "were provided; use only output_config.format")
        fmt, where = params["output_format"], "output_format"
    if fmt is None:
        return None
    fmt = expect(fmt, dict, Path(*where.split(".")), "dictionary")
    if fmt.get("type") != "json_schema":
        raise Path(*where.split("."), "type").says("Input should be 'json_schema'")
    if "schema" not in fmt:
        raise Path(*where.split("."), "schema").missing()
    check_output_schema(fmt["schema"], f"{where}.schema")
    return fmt["schema"]
