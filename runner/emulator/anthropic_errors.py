"""Anthropic's error answers: `{"type": "error", "error": {"type", "message"}, "request_id"}`.

The HTTP status goes with the error type (docs: "HTTP errors"): 400 invalid_request_error,
401 authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large,
429 rate_limit_error, 500 api_error, 529 overloaded_error. Messages about the request body
name the offending field by its path, the way the real API's validator words them
("requests.0.custom_id: String should have at most 64 characters", "max_tokens: Field
required"); `Path` builds those paths.
"""

from __future__ import annotations

from typing import Any

from . import ids

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "api_error",
               504: "api_error", 529: "overloaded_error"}
STATUS_OF_TYPE = {"invalid_request_error": 400, "authentication_error": 401,
                  "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                  "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}
# The messages of the transient errors, as the real service words them.
TRANSIENT_MESSAGES = {"api_error": "Internal server error", "overloaded_error": "Overloaded",
                      "rate_limit_error": "Number of requests has exceeded your rate limit. "
                                          "Please try again later."}


class AnthropicError(Exception):
    """An error answer; `status` follows from `type` unless given."""

    def __init__(self, type: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.type = type
        self.message = message
        self.status = status or STATUS_OF_TYPE.get(type, 400)
        self.headers = headers or {}

    def error(self) -> dict[str, Any]:
        """The error object (what an `errored` batch result nests)."""
        return {"type": self.type, "message": self.message}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        return {"type": "error", "error": self.error(),
                "request_id": request_id or ids.anthropic_request_id()}


def invalid(path: str, message: str) -> AnthropicError:
    """A 400 about the field at `path` ("" for the body itself)."""
    return AnthropicError("invalid_request_error", f"{path}: {message}" if path else message)


class Path:
    """A dotted field path, as the API prints it: `requests.3.params.messages.0.content`."""

    def __init__(self, *parts: str | int):
        self.parts = tuple(str(p) for p in parts if p != "")

    def __truediv__(self, part: str | int) -> Path:
        return Path(*self.parts, part)

    def __str__(self) -> str:
        return ".".join(self.parts)

    def missing(self) -> AnthropicError:
        return invalid(str(self), "Field required")

    def wrong_type(self, expected: str) -> AnthropicError:
        return invalid(str(self), f"Input should be a valid {expected}")

    def extra(self) -> AnthropicError:
        return invalid(str(self), "Extra inputs are not permitted")

    def says(self, message: str) -> AnthropicError:
        return invalid(str(self), message)


def expect(value: Any, kind: type | tuple[type, ...], path: Path, name: str) -> Any:
    """`value` if it is of `kind` (bools are not integers), else the validator's 400."""
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise path.wrong_type(name)
    if not isinstance(value, kind):
        raise path.wrong_type(name)
    return value
