"""Identifiers shaped like the real service's (see tests/data/openai-batch-real/README.md).

`batch_…` and `batch_req_…` ids are 32 hex digits whose first 8 are a Unix timestamp;
completion ids are `chatcmpl-` and 29 letters or digits; request ids 32 hex digits.
They are unique, not reproducible: nothing the emulator decides depends on them.
"""

from __future__ import annotations

import secrets
import string
import uuid

_ALNUM = string.ascii_letters + string.digits


def _hex(count: int) -> str:
    return secrets.token_hex((count + 1) // 2)[:count]


def _alnum(count: int) -> str:
    # One urandom call per id, not one per character: ids are made for every answer line.
    return "".join(_ALNUM[b % len(_ALNUM)] for b in secrets.token_bytes(count))


def _timestamped(prefix: str, when: float) -> str:
    # Real ids: 8 hex of time, 4 hex, "8190", 16 hex (batch_692fe42672e88190907b5ffb24690af4).
    return f"{prefix}{int(when):08x}{_hex(4)}8190{_hex(16)}"


def file_id() -> str:
    return f"file-{_alnum(22)}"


def batch_id(when: float) -> str:
    return _timestamped("batch_", when)


def batch_request_id(when: float) -> str:
    return _timestamped("batch_req_", when)


def chat_completion_id() -> str:
    return f"chatcmpl-{_alnum(29)}"


def response_ids(when: float) -> tuple[str, str]:
    """A response id and the id of its message, which share their tail like the real ones."""
    tail = _hex(16)
    return (f"resp_{int(when):08x}{_hex(4)}8191{_hex(16)}{tail}",
            f"msg_{int(when):08x}{_hex(4)}8191{_hex(16)}{tail}")


def reasoning_id(when: float) -> str:
    return f"rs_{int(when):08x}{_hex(4)}8191{_hex(32)}"


def request_id() -> str:
    return _hex(32)


def request_uuid() -> str:
    """The Responses API's request ids are dashed UUIDs since 2026."""
    return str(uuid.uuid4())


def api_request_id() -> str:
    """The `x-request-id` header of an HTTP answer."""
    return f"req_{_hex(32)}"


# Anthropic's ids: a prefix, "01", then base58 letters (msgbatch_013Zva2CMHLNnXjNJJKqJ2EF,
# msg_01XFDUDYJgAACzvnptvVoYEL, toolu_01A09q90qw90lq917835lq9, req_011CXs6hk18SX5aBxD3jchRc).
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(count: int) -> str:
    return "".join(_BASE58[b % len(_BASE58)] for b in secrets.token_bytes(count))


def message_batch_id() -> str:
    return f"msgbatch_01{_base58(22)}"


def message_id() -> str:
    return f"msg_01{_base58(22)}"


def tool_use_id() -> str:
    return f"toolu_01{_base58(22)}"


def anthropic_request_id() -> str:
    """The `request-id` header (and `request_id` of an error body) of Anthropic's API."""
    return f"req_011C{_base58(20)}"
