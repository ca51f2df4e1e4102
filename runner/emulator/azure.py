"""The Azure OpenAI URL layout, answered by the same emulator.

What `openai.AzureOpenAI(azure_endpoint=E, api_version=V, api_key=K)` sends (openai-python
`lib/azure.py`): every URL under `E/openai`, with `?api-version=V` and the header
`api-key: K` (or `Authorization: Bearer <Entra ID token>`). Files and batches are
`E/openai/files…`, `E/openai/batches…`; chat completions and embeddings name the
deployment in the path, taken from the body's `model`:
`E/openai/deployments/{model}/chat/completions`; responses stay `E/openai/responses` with
the deployment in the body. With `azure_deployment=D` the deployment routes are under
`E/openai/deployments/D/…`, the others still under `E/openai/…`.
The v1 API (`openai.OpenAI(base_url=E + "/openai/v1/")`) is the OpenAI layout under
`/openai/v1`, with a bearer key and no api-version.

A batch on Azure: its input lines name the endpoint without or with `/v1`
(`"url": "/chat/completions"`), `model` is the name of a deployment, the same on every line
(Microsoft Learn, "Getting started with Azure OpenAI batch deployments"). Which model a
deployment runs is `EmulatorConfig.azure_deployments` ({name: model}); a deployment named
like a known model runs that model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import models
from .api_error import ApiError

PREFIX = "/openai/"
DIALECT_KEY = "batchrun.emulator.azure"  # in the WSGI environ: this call's AzureCall
_DEPLOYMENT_ROUTE = re.compile(
    r"^/openai/deployments/(?P<name>[^/]+)(?P<rest>/(?:chat/completions|embeddings|completions))$")
_NO_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
           "provide a valid key for an active subscription and use a correct regional API "
           "endpoint for your resource.")


@dataclass(frozen=True)
class AzureCall:
    path: str  # the emulator's own path, /v1/…
    deployment: str | None = None  # named by the URL (/openai/deployments/{name}/…)


def translate(path: str, query: Mapping[str, str]) -> AzureCall:
    """The emulator's path for an Azure path (one under PREFIX)."""
    if path.startswith("/openai/v1/"):
        return AzureCall("/v1/" + path[len("/openai/v1/"):])
    if not query.get("api-version"):
        raise ApiError(404, "Resource not found", code="404")  # what Azure answers
    route = _DEPLOYMENT_ROUTE.match(path)
    if route:
        return AzureCall("/v1" + route["rest"], route["name"])
    return AzureCall("/v1/" + path[len(PREFIX):])


def check_key(environ: dict[str, Any]) -> None:
    """Azure takes `api-key: KEY` or `Authorization: Bearer TOKEN` (any, here)."""
    bearer = environ.get("HTTP_AUTHORIZATION", "")
    if environ.get("HTTP_API_KEY", "").strip() or \
            (bearer.startswith("Bearer ") and bearer[7:].strip()):
        return
    raise ApiError(401, _NO_KEY, code="401")


def own_endpoint(endpoint: str) -> str:
    """`/chat/completions` (Azure's spelling) → `/v1/chat/completions`."""
    return endpoint if endpoint.startswith("/v1/") else "/v1" + endpoint


def deployment_model(name: Any, endpoint: str, deployments: Mapping[str, str]) -> str | None:
    """The model a deployment runs, or None when there is no such deployment."""
    if not isinstance(name, str):
        return None
    if name in deployments:
        return deployments[name]
    return name if models.is_known(name, endpoint) else None


def deployment_not_found() -> ApiError:
    return ApiError(404, "The API deployment for this resource does not exist. If you created "
                    "the deployment within the last 5 minutes, please wait a moment and try "
                    "again.", code="DeploymentNotFound")
