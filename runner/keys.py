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
from typing import Any, BinaryIO

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


def file_sha256(fh: BinaryIO, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(chunk), b""):
        h.update(block)
    return h.hexdigest()
