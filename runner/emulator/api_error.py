"""The error answers of the real API: `{"error": {"message", "type", "param", "code"}}`.

Status codes matter to clients: the SDK retries 408, 409, 429 and 5xx. A permanent error
is therefore always 400 (or 401/404), never 409, or a client would retry it.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def bad_request(message: str, *, param: str | None = None,
                code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def missing(param: str) -> ApiError:
    return bad_request(f"Missing required parameter: '{param}'.", param=param,
                       code="missing_required_parameter")


def invalid_value(param: str, value: Any, supported: list[str]) -> ApiError:
    quoted = [f"'{s}'" for s in supported]
    listing = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    return bad_request(f"Invalid value: '{value}'. Supported values are: {listing}.",
                       param=param, code="invalid_value")


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return bad_request(f"Invalid type for '{param}': expected {expected}, but got "
                       f"{json_type_name(value)} instead.", param=param, code="invalid_type")
