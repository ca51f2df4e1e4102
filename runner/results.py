"""Turning the lines of Batch API output and error files into outcomes.

One line of an output or error file becomes one `Outcome`: did the request give a usable
value, and if not, why, whether another attempt could help, whether it was billed, and the
tokens the API reported. Every shape here was seen in a real file (tests/data/openai-batch-real,
see its README) or is documented by OpenAI:

- a chat completion, a Responses API response, or an embeddings list, with status 200;
- `response.status_code` >= 400 with `response.body.error` (whose `code` and `param` may be
  null) and a null top-level `error`;
- `response: null` with a top-level `error` (`batch_expired`, `batch_cancelled`);
- `status_code: 0` with an empty body and no error at all.

Keys are often missing rather than null (`refusal`, `*_tokens_details`, `logprobs`), so every
lookup tolerates both. Ids are never validated: their formats change over time and by vendor.
Nothing here raises on a strange line; it becomes a failed outcome whose reason says what was
wrong (`malformed: …` when the line itself does not have the shape of a Batch API line). A line
that cannot even be read (jsonl.py) still becomes an outcome when it shows its custom_id
(`unreadable: …`).
"""

from __future__ import annotations

import base64
import enum
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import jsonschema


class AnswerCheck(Protocol):
    """What checks an answer against its schema: jsonschema's validator interface
    (answers.AnswerValidator puts a fast check in front of one)."""

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]: ...

# Line-level errors (top-level `error`) that only mean "this request never ran".
RETRYABLE_BATCH_ERRORS = frozenset({"batch_expired", "batch_cancelled"})
MAX_REASON = 240  # characters; reasons are shown one per line


@dataclass(frozen=True)
class Usage:
    """Tokens as the API reported them for one line (0 when absent)."""

    input_tokens: int = 0  # prompt_tokens (chat, embeddings) or input_tokens (responses)
    cached_tokens: int = 0  # *_tokens_details.cached_tokens, a subset of input_tokens
    output_tokens: int = 0  # completion_tokens / output_tokens, reasoning included
    reasoning_tokens: int = 0  # *_tokens_details.reasoning_tokens, a subset of output_tokens
    # Written to a prompt cache (Anthropic's cache_creation_input_tokens), a subset of
    # input_tokens, and of those the ones written for an hour rather than five minutes.
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.cached_tokens + other.cached_tokens,
                     self.output_tokens + other.output_tokens,
                     self.reasoning_tokens + other.reasoning_tokens,
                     self.cache_write_tokens + other.cache_write_tokens,
                     self.cache_write_1h_tokens + other.cache_write_1h_tokens)


class Expect(enum.Enum):
    """What the job wants back from each request."""

    TEXT = "text"
    JSON = "json"
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class Outcome:
    custom_id: str
    ok: bool
    value: Any  # when ok: JSON value (JSON), text (TEXT), list[float] or vectors (EMBEDDING)
    reason: str | None  # when not ok: one readable line
    retryable: bool  # another attempt may succeed (5xx, 429, 0, expired, bad or cut-off output)
    billed: bool  # the API charged for this line (status 200, even when the output is unusable)
    usage: Usage
    model: str | None  # the (dated) model id the API reported
    status_code: int | None

    @property
    def kind(self) -> str:
        """A short category for counting: ok, http, batch_expired, truncated, invalid JSON, …"""
        if self.ok:
            return "ok"
        reason = self.reason or ""
        for kind in ("http", "batch_expired", "batch_cancelled", "truncated", "invalid JSON",
                     "schema", "refusal", "empty", "mismatch", "malformed",
                     "unreadable"):
            if reason.startswith(kind):
                return kind
        return "error"

    @property
    def never_ran(self) -> bool:
        """The line itself says the request never ran: its batch expired or was cancelled
        first. Nothing else is taken to mean that (a malformed line may hide a billed run)."""
        return self.kind in ("batch_expired", "batch_cancelled")


def clip(text: str, limit: int = MAX_REASON) -> str:
    """One line, at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_CLOSING_FENCE = re.compile(r"^[ \t]*```", re.MULTILINE)
_ONE_LINE_FENCE = re.compile(r"`{3}(?:[A-Za-z]+[ \t])?(.*?)`{3}\Z", re.DOTALL)


def strip_fences(text: str) -> str:
    """Remove a ```json … ``` (or bare ``` … ```) wrapper and surrounding whitespace.

    Only a text that opens with a fence is unwrapped (a JSON string holding markdown is left
    alone). What follows the closing fence is dropped: real answers add notes there ("Note:
    the image URL is a placeholder…"). An opening fence never closed (a truncated answer) is
    removed too, so the JSON error that follows points into the JSON, not at the backticks."""
    stripped = text.strip()
    if not stripped.startswith("```"):
        return stripped
    newline = stripped.find("\n")
    if newline < 0:
        match = _ONE_LINE_FENCE.match(stripped)
        return match.group(1).strip() if match else stripped.lstrip("`").strip()
    inner = stripped[newline + 1:]
    closing = _CLOSING_FENCE.search(inner)
    return (inner[: closing.start()] if closing else inner).strip()


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def usage_of(body: dict) -> Usage:
    """The usage block of a chat, responses or embeddings body; missing keys count 0."""
    usage = as_dict(body.get("usage"))
    in_details = as_dict(usage.get("prompt_tokens_details") or usage.get("input_tokens_details"))
    out_details = as_dict(usage.get("completion_tokens_details")
                        or usage.get("output_tokens_details"))
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        cached_tokens=as_int(in_details.get("cached_tokens")),
        output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
        reasoning_tokens=as_int(out_details.get("reasoning_tokens")),
    )


def parse_line(obj: dict, *, expect: Expect,
               validator: AnswerCheck | None = None) -> Outcome:
    """The outcome of one line of an output or error file. Never raises."""
    custom_id = obj.get("custom_id")
    custom_id = custom_id if isinstance(custom_id, str) else ""
    response = obj.get("response")
    if not isinstance(response, dict):
        return _without_response(custom_id, obj.get("error"), response)
    status = response.get("status_code")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    body = response.get("body")
    if status is None:
        return failed(custom_id, "malformed: response.status_code is missing or not a number",
                       retryable=True)
    if not 200 <= status < 300:
        return _http_error(custom_id, status, body)
    if not isinstance(body, dict):
        return failed(custom_id, "malformed: status 200 without a JSON object body",
                       retryable=True, billed=True, status=status)
    usage = usage_of(body)
    model = body.get("model") if isinstance(body.get("model"), str) else None
    value, reason, retryable = _content(body, expect, validator)
    if reason is not None:
        return Outcome(custom_id, False, None, clip(reason), retryable, True, usage, model, status)
    return Outcome(custom_id, True, value, None, False, True, usage, model, status)


def unreadable(custom_id: str, reason: str) -> Outcome:
    """The outcome of a line that could not be read but still shows its custom_id: the
    request ran and may have been billed (its tokens are unknown), and another attempt may
    succeed."""
    return failed(custom_id, f"unreadable: {reason}", retryable=True)


def failed(custom_id: str, reason: str, *, retryable: bool, billed: bool = False,
            status: int | None = None) -> Outcome:
    return Outcome(custom_id, False, None, clip(reason), retryable, billed, Usage(), None, status)


def _without_response(custom_id: str, error: Any, response: Any) -> Outcome:
    if response is not None:
        return failed(custom_id, f"malformed: response is a {type(response).__name__}, "
                                  "not an object", retryable=True)
    if not isinstance(error, dict):
        return failed(custom_id, "malformed: neither a response nor an error", retryable=True)
    code = error.get("code") if isinstance(error.get("code"), str) else "error"
    message = error.get("message") or "(no message)"
    return failed(custom_id, f"{code}: {message}", retryable=code in RETRYABLE_BATCH_ERRORS)


def _http_error(custom_id: str, status: int, body: Any) -> Outcome:
    error = as_dict(as_dict(body).get("error"))
    retryable = status == 0 or status == 429 or status >= 500
    if not error:
        empty = "an empty body" if not body else "a body without an error"
        return failed(custom_id, f"http {status} with {empty}", retryable=retryable,
                       status=status)
    label = error.get("code") or error.get("type")
    head = f"http {status} {label}" if isinstance(label, str) and label else f"http {status}"
    message = error.get("message") or "(no message)"
    return failed(custom_id, f"{head}: {message}", retryable=retryable, status=status)


def _content(body: dict, expect: Expect,
             validator: AnswerCheck | None) -> tuple[Any, str | None, bool]:
    """(value, None, _) when usable, else (None, reason, retryable)."""
    if isinstance(body.get("choices"), list):
        text, reason, retryable = _chat_text(body["choices"])
    elif body.get("object") == "response" or isinstance(body.get("output"), list):
        text, reason, retryable = _responses_text(body)
    elif isinstance(body.get("data"), list):
        if expect is not Expect.EMBEDDING:
            return None, f"mismatch: expected {expect.value} but the body holds embeddings", False
        return _embeddings(body["data"])
    else:
        return None, "malformed: status 200 body has no choices, output or data", True
    if reason is not None:
        return None, reason, retryable
    if expect is Expect.EMBEDDING:
        return None, "mismatch: expected embeddings but the body holds text", False
    if expect is Expect.TEXT:
        return text, None, False
    return json_value(text, validator)


def _chat_text(choices: list) -> tuple[str, str | None, bool]:
    choice = as_dict(choices[0]) if choices else {}
    message = as_dict(choice.get("message"))
    finish = choice.get("finish_reason")
    if message.get("refusal"):
        return "", f"refusal: {message['refusal']}", False
    if finish == "content_filter":
        return "", "refusal: finish_reason=content_filter", False
    if finish == "length":
        return "", "truncated: finish_reason=length", True
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        return "", f"empty: no message content (finish_reason={finish})", True
    return content, None, False


def _responses_text(body: dict) -> tuple[str, str | None, bool]:
    status = body.get("status")
    if status == "incomplete":
        why = as_dict(body.get("incomplete_details")).get("reason") or "unknown"
        if why == "content_filter":
            return "", "refusal: incomplete (content_filter)", False
        return "", f"truncated: incomplete ({why})", True
    if status == "failed":
        error = as_dict(body.get("error"))
        return "", f"empty: response failed: {error.get('code')}: {error.get('message')}", True
    texts, refusals = [], []
    for item in body.get("output") or []:
        for part in as_dict(item).get("content") or []:
            part = as_dict(part)
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "refusal":
                refusals.append(str(part.get("refusal") or ""))
    if refusals:
        return "", f"refusal: {' '.join(refusals)}", False
    text = "".join(texts)
    if not text.strip():
        return "", f"empty: no output_text (status={status})", True
    return text, None, False


def _embeddings(data: list) -> tuple[Any, str | None, bool]:
    try:
        items = sorted(data, key=lambda d: d.get("index", 0))
        vectors = [_vector(d["embedding"]) for d in items]
    except (AttributeError, KeyError, TypeError, ValueError, struct.error):
        return None, "malformed: data[] without usable embeddings", True
    if not vectors:
        return None, "empty: data[] is empty", True
    return (vectors[0] if len(vectors) == 1 else vectors), None, False


def _vector(embedding: Any) -> list[float]:
    if isinstance(embedding, str):  # encoding_format=base64: little-endian float32
        raw = base64.b64decode(embedding)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not isinstance(embedding, list):
        raise TypeError("embedding is not a list")
    return [float(x) for x in embedding]


def json_value(text: str, validator: AnswerCheck | None) -> tuple[Any, str | None, bool]:
    """The JSON an answer holds (fences stripped), checked against the schema: (value,
    None, _) when usable, else (None, reason, retryable)."""
    try:
        value = json.loads(strip_fences(text))
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at char {exc.pos}", True
    if validator is not None:
        import jsonschema.exceptions  # loaded once, where answers are checked

        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            return None, f"schema: at {json_pointer(error.absolute_path)}: {error.message}", True
    return value, None, False


def json_pointer(path) -> str:
    """RFC 6901 pointer of a jsonschema error path; "/" for the root."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts)
