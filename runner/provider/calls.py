"""SDK calls made readable: an SDK error becomes one ProviderError line (what failed,
against which API, what to do), the same for both SDKs — openai and anthropic raise
exceptions of the same names. The SDK's own retries (429, 5xx, network) stay in charge
of transient failures, except for creating a batch, which is never retried blindly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import Location, ProviderError
from . import config as providers

if TYPE_CHECKING:
    from ..project import ProjectContext

T = TypeVar("T")


class Calls:
    def __init__(self, sdk: ModuleType, label: str, key_env: str):
        self.sdk = sdk            # the openai or the anthropic module
        self.label = label
        self.key_env = key_env

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        sdk = self.sdk
        try:
            return fn()
        except sdk.AuthenticationError as exc:
            raise self.rejected_key(what, exc) from None
        except sdk.APIStatusError as exc:
            error = ProviderError(f"{what}: {self.label} answered HTTP {exc.status_code}: "
                                  f"{message(exc)}",
                                  hint="nothing was lost; fix the cause and rerun to resume")
            error.status = exc.status_code
            raise error from None
        except sdk.APIConnectionError as exc:
            raise ProviderError(f"{what}: could not reach {self.label} ({exc.__cause__ or exc})",
                                hint="nothing was lost; rerun when the network is back") from None

    def rejected_key(self, what: str, exc: Exception) -> ProviderError:
        return ProviderError(f"{what}: the API key was rejected by {self.label} "
                             f"({message(exc)})", hint=f"check the key in {self.key_env}")

    def once(self, what: str, fn: Callable[[], T]) -> T:
        """One call that must not be repeated blindly (creating a batch: no idempotency
        key, so a retried create could pay twice). A failure says whether it was transient
        (the call may have taken effect after all) and how long the API asked to wait."""
        sdk = self.sdk
        try:
            return self(what, fn)
        except ProviderError as exc:
            cause = exc.__context__
            exc.transient = isinstance(cause, (sdk.APIConnectionError, sdk.RateLimitError,
                                               sdk.InternalServerError))
            exc.rejected = isinstance(cause, sdk.RateLimitError)   # refused: nothing made
            exc.retry_after = retry_after(cause)
            raise


def api_key(project: ProjectContext, example: str, free: str) -> str:
    """The provider's key, from its environment variable; a clear error when unset."""
    env = providers.key_env(project.config.provider)
    key = os.environ.get(env)
    if not key:
        raise ProviderError(f"environment variable {env} is not set",
                            where=Location(project.file or "batchrun.yaml", 0, "provider"),
                            hint=f"export {env}={example}, or try it for free with "
                                 f"`provider: {free}` in batchrun.yaml")
    return key


def error_body(exc: Any) -> Any:
    """An HTTP error response's JSON body (either SDK's APIStatusError), as a batch's
    error line carries it."""
    try:
        return exc.response.json()
    except ValueError:
        return {"error": {"message": exc.response.text[:500] or str(exc)}}


def retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return min(float(value) / scale, 60.0)
            except ValueError:
                return None
    return None


def message(exc: Any) -> str:
    """The API's own words: OpenAI's `{"error": {"message"}}`, Anthropic's
    `{"type": "error", "error": {"type", "message"}}`, else the SDK's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message if hasattr(exc, "message") else exc)
