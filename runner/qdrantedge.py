"""Qdrant's failures as the user's problems: a server that does not answer or refuses the
key, an embedded folder deleted, damaged or full while batchrun runs.

`Diagnosed` wraps the client select.connect() opens: every call goes through, and an
exception it can name becomes a BatchrunError saying what happened, where (batchrun.yaml's
`qdrant`) and what to do; anything else passes unchanged (and is a bug). Nothing that
was collected is lost in any of these cases: answers live in the ledger, and the next run
writes them without paying again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .diagnose import os_problem
from .errors import BatchrunError, Location
from .project import ProjectContext

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

KEPT = "answers already collected are kept in the ledger and written without paying again"


class Diagnosed:
    """A QdrantClient whose failures say what happened and what to do."""

    def __init__(self, client: QdrantClient, project: ProjectContext):
        self._client = client
        self._project = project

    @classmethod
    def of(cls, client: QdrantClient, project: ProjectContext) -> QdrantClient:
        return cast("QdrantClient", cls(client, project))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return self._diagnosing(attr)

    def _diagnosing(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except BatchrunError:
                raise
            except Exception as exc:
                problem = self.diagnose(exc)
                if problem is None:
                    raise
                raise problem from exc
        return call

    def diagnose(self, exc: Exception) -> BatchrunError | None:
        cfg = self._project.config.qdrant
        file = self._project.file or "batchrun.yaml"
        if cfg.url:
            return _server_problem(exc, cfg.url, Location(file, 0, "qdrant.url"))
        path = cfg.path or ".qdrant"
        return _embedded_problem(exc, self._project, path, Location(file, 0, "qdrant.path"))


def _server_problem(exc: Exception, url: str, where: Location) -> BatchrunError | None:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, ResponseHandlingException):
        return BatchrunError(f"cannot reach Qdrant at {url} ({exc})", where=where,
                             hint="start the server, or correct qdrant.url; nothing is lost: "
                                  "rerun when it answers")
    if isinstance(exc, UnexpectedResponse) and exc.status_code in (401, 403):
        return BatchrunError(f"Qdrant at {url} refused the request (HTTP {exc.status_code} "
                             f"{exc.reason_phrase})", where=where,
                             hint="set qdrant.api_key_env to the environment variable holding "
                                  "the server's API key, and export it")
    if isinstance(exc, UnexpectedResponse) and exc.status_code in (429, 500, 502, 503, 504):
        return BatchrunError(f"Qdrant at {url} answered HTTP {exc.status_code} "
                             f"{exc.reason_phrase}", where=where,
                             hint="the server is overloaded or failing; nothing is lost: rerun "
                                  f"when it is back ({KEPT})")
    return None


def _embedded_problem(exc: Exception, project: ProjectContext, path: str,
                      where: Location) -> BatchrunError | None:
    folder = project.root / path
    if not folder.is_dir():
        return BatchrunError(f"the embedded Qdrant folder {path} was deleted while batchrun "
                             "was using it", where=where,
                             hint=f"restore it (or load your points again) and rerun; {KEPT}")
    if isinstance(exc, OSError):
        return os_problem(exc, folder, "the embedded Qdrant")
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL":
        return BatchrunError(f"cannot write the embedded Qdrant at {path}: the disk is full, "
                             "or a file-size limit (`ulimit -f`) was reached", where=where,
                             hint=f"free some space or raise the limit and rerun; {KEPT}")
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return BatchrunError(f"the embedded Qdrant at {path} is damaged ({exc})", where=where,
                             hint=f"restore it from a backup, or load your points again; {KEPT}")
    if name.startswith(("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return BatchrunError(f"cannot write the embedded Qdrant at {path} ({exc})", where=where,
                             hint="if it was moved, replaced or made read-only while batchrun "
                                  f"ran, put it back and rerun; {KEPT}")
    return None
