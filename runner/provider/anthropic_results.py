"""One line of a Message Batch's results → the same `Outcome` as an OpenAI line.

The results endpoint streams one JSON object per request, in no particular order
(docs, "Batch processing", Retrieving batch results):

    {"custom_id": …, "result": {"type": "succeeded", "message": {…a Message…}}}
    {"custom_id": …, "result": {"type": "errored", "error": {"type": "error",
                                "error": {"type": "invalid_request_error", "message": …}}}}
    {"custom_id": …, "result": {"type": "canceled"}}
    {"custom_id": …, "result": {"type": "expired"}}

Mapped like OpenAI's: a succeeded Message is an answer (billed) — unless it stopped at
`max_tokens` (truncated: retried), was a refusal (not retried) or holds no usable text;
an errored request is an HTTP-like failure, retried when the error type is transient
(api_error, overloaded_error, rate_limit_error, timeout_error) and not when the request
itself is wrong (invalid_request_error, not_found_error, …); canceled and expired
requests never ran, and are sent again without counting an attempt. Errored, canceled
and expired requests are not billed. Nothing here raises.
"""

from __future__ import annotations

from typing import Any

from ..results import (
    AnswerCheck,
    Expect,
    Outcome,
    Usage,
    as_dict,
    as_int,
    clip,
    failed,
    json_value,
)

# Error types and the HTTP status the API gives them (docs, "Errors").
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                "billing_error": 402, "permission_error": 403, "not_found_error": 404,
                "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                "timeout_error": 504, "overloaded_error": 529}
TRANSIENT_ERRORS = frozenset({"rate_limit_error", "api_error", "timeout_error",
                              "overloaded_error"})
NEVER_RAN = {"canceled": "batch_cancelled: the batch was cancelled before this request ran",
             "expired": "batch_expired: the batch expired before this request ran"}


def usage_of(message: dict) -> Usage:
    """Anthropic counts input three ways, none inside another: fresh input, cache reads,
    cache writes. batchrun's Usage counts input as a whole with the cached part inside."""
    usage = as_dict(message.get("usage"))
    fresh = as_int(usage.get("input_tokens"))
    read = as_int(usage.get("cache_read_input_tokens"))
    written = as_int(usage.get("cache_creation_input_tokens"))
    hour = as_int(as_dict(usage.get("cache_creation")).get("ephemeral_1h_input_tokens"))
    return Usage(input_tokens=fresh + read + written, cached_tokens=read,
                 output_tokens=as_int(usage.get("output_tokens")),
                 cache_write_tokens=written, cache_write_1h_tokens=min(hour, written))


def parse_result(obj: dict, *, expect: Expect, validator: AnswerCheck | None = None) -> Outcome:
    """The outcome of one line of a Message Batch's results. Never raises."""
    custom_id = obj.get("custom_id")
    custom_id = custom_id if isinstance(custom_id, str) else ""
    result = obj.get("result")
    if not isinstance(result, dict):
        return failed(custom_id, "malformed: the line has no result object", retryable=True)
    kind = result.get("type")
    if kind in NEVER_RAN:
        return failed(custom_id, NEVER_RAN[kind], retryable=True)
    if kind == "errored":
        return _errored(custom_id, as_dict(as_dict(result.get("error")).get("error")))
    if kind != "succeeded":
        return failed(custom_id, f"malformed: unknown result type {kind!r}", retryable=True)
    message = result.get("message")
    if not isinstance(message, dict):
        return failed(custom_id, "malformed: a succeeded result without a message",
                      retryable=True, billed=True, status=200)
    usage = usage_of(message)
    model = message.get("model") if isinstance(message.get("model"), str) else None
    value, reason, retryable = _content(message, expect, validator)
    if reason is not None:
        return Outcome(custom_id, False, None, clip(reason), retryable, True, usage, model, 200)
    return Outcome(custom_id, True, value, None, False, True, usage, model, 200)


def _errored(custom_id: str, error: dict) -> Outcome:
    kind = str(error["type"]) if isinstance(error.get("type"), str) else "error"
    status = ERROR_STATUS.get(kind, 500)
    message = error.get("message") or "(no message)"
    return failed(custom_id, f"http {status} {kind}: {message}",
                  retryable=kind in TRANSIENT_ERRORS, status=status)


def _content(message: dict, expect: Expect,
             validator: AnswerCheck | None) -> tuple[Any, str | None, bool]:
    """(value, None, _) when usable, else (None, reason, retryable)."""
    stop = message.get("stop_reason")
    blocks = [as_dict(b) for b in message.get("content") or [] if isinstance(b, dict)]
    if stop == "refusal":
        return None, "refusal: stop_reason=refusal", False
    if stop in ("max_tokens", "model_context_window_exceeded"):
        return None, f"truncated: stop_reason={stop}", True
    if expect is Expect.EMBEDDING:
        return None, "mismatch: expected embeddings but the body holds a message", False
    tool = next((b for b in blocks if b.get("type") == "tool_use"), None)
    if tool is not None and expect is Expect.JSON:   # a forced tool call holds the JSON
        return json_value_of(tool.get("input"), validator)
    text = "".join(b["text"] for b in blocks if b.get("type") == "text"
                   and isinstance(b.get("text"), str))
    if not text.strip():
        return None, f"empty: no text content (stop_reason={stop})", True
    if expect is Expect.TEXT:
        return text, None, False
    return json_value(text, validator)


def json_value_of(value: Any, validator: AnswerCheck | None) -> tuple[Any, str | None, bool]:
    """A tool call's input: already JSON, checked against the schema like text is."""
    import json

    return json_value(json.dumps(value), validator)
