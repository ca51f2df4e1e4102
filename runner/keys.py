"""Content hashing in one place: canonical JSON, request keys, file digests.

The request key is what makes batchrun make-like: two requests with the same key are the
same request, so a key that was answered once never costs money again. It is the sha256
of the canonical JSON of `{"endpoint": ..., "body": ...}` where body is exactly what is
sent. Changing how keys are computed would silently re-send everything, so the scheme has
a name (`KEY_SCHEME`) that the manifest records.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_SCHEME = "sha256/canonical-json/v1"


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(obj: Any) -> str:
    """sha256 of a JSON-able value's canonical form."""
    return sha256_hex(canonical_json(obj))


def request_key(endpoint: str, body: dict) -> str:
    """The request key, also sent as the batch line's `custom_id`."""
    return digest({"endpoint": endpoint, "body": body})


class BodyFrame:
    """The bodies of one job's requests differ only in a few keys (the messages, the
    input); everything else — model, params, the output schema — is the same. A frame
    serialises that constant part once, so each request costs one serialisation of its
    own part, for its key and for its batch line, byte-identical to `canonical_json`.

    The batch line takes the shape of the provider's batch input: an OpenAI input file's
    `{"custom_id", "method", "url", "body"}` (`line="openai"`), or an entry of an
    Anthropic Message Batch's `requests`, `{"custom_id", "params"}` (`line="params"`)."""

    def __init__(self, endpoint: str, constant: dict, variable: tuple[str, ...], *,
                 line: str = "openai"):
        self.endpoint = endpoint
        self.constant = constant
        marks = {key: f"\0{i}\0" for i, key in enumerate(variable)}
        text = canonical_json({**constant, **marks}).decode("utf-8")
        self.order: list[str] = []
        self.chunks: list[bytes] = []
        rest = text
        while True:
            found = [(rest.find(json.dumps(mark)), key) for key, mark in marks.items()
                     if key not in self.order]
            found = [(at, key) for at, key in found if at >= 0]
            if not found:
                break
            at, key = min(found)
            self.chunks.append(rest[:at].encode("utf-8"))
            self.order.append(key)
            rest = rest[at + len(json.dumps(marks[key])):]
        self.chunks.append(rest.encode("utf-8"))
        quoted = json.dumps(endpoint, ensure_ascii=False).encode("utf-8")
        self._key_tail = b',"endpoint":' + quoted + b"}"
        self._line_head = (b'","params":' if line == "params"
                           else b'","method":"POST","url":' + quoted + b',"body":')

    def body(self, values: dict) -> dict:
        return {**self.constant, **values}

    def serialise(self, values: dict) -> bytes:
        out = [self.chunks[0]]
        for key, chunk in zip(self.order, self.chunks[1:], strict=True):
            out.append(canonical_json(values[key]))
            out.append(chunk)
        return b"".join(out)

    def key(self, body: bytes) -> str:
        """The request key: equal to `request_key(endpoint, self.body(values))`."""
        return hashlib.sha256(b'{"body":' + body + self._key_tail).hexdigest()

    def line(self, key: str, body: bytes) -> bytes:
        """The batch input line for this request, custom_id = key."""
        return b'{"custom_id":"' + key.encode("ascii") + self._line_head + body + b"}\n"


KEY_SET_SCHEME = "sum256/v1"


class KeySetDigest:
    """A digest of a set of request keys that does not depend on their order: the sum of
    the keys (sha256 values) modulo 2**256, hashed once more. Two passes that would send
    the same requests, in whatever order they meet the points, have the same digest; a
    saved plan (`plan -o`) compares it with what apply would send now."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, key: str) -> None:
        self.count += 1
        self._sum = (self._sum + int(key, 16)) % (1 << 256)

    def hexdigest(self) -> str:
        return sha256_hex(self._sum.to_bytes(32, "big"))
