"""The starter project that `batchrun init` writes and `batchrun demo` runs.

Its files live in the package (`runner/data/project/`), so `init` works from a plain
`pip install`. Among them is the job-spec JSON Schema (schemas/job.schema.json), so
editors complete and check specs: generated from the spec models (`schema_text`), and
shipped as a file so that `init` starts without loading pydantic
(tests/test_job_schema.py keeps it current).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from .datacheck import Sample
from .errors import BatchrunError, Location
from .scaffold import job_files

SCHEMA_FILE = "schemas/job.schema.json"
PROJECT_FILE = "batchrun.yaml"    # as spec.PROJECT_FILE, which would load pydantic


def starter_files() -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of every file `init` writes."""
    root = resources.files("runner") / "data" / "project"
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            rel = f"{prefix}{entry.name}"
            if entry.is_dir():
                stack.append((entry, rel + "/"))
            else:
                yield rel, entry.read_bytes()


def schema_text() -> str:
    """The job-spec JSON Schema, generated from the spec models."""
    from .spec import job_schema

    return json.dumps(job_schema(), indent=2, sort_keys=True) + "\n"


def init(target: Path) -> list[str]:
    """Write the starter project into `target`; refuse to overwrite anything."""
    return _write(target, list(starter_files()))


def _write(target: Path, files: list[tuple[str, bytes]]) -> list[str]:
    clashes = [rel for rel, _ in files if (target / rel).exists()]
    if clashes:
        raise BatchrunError(f"{len(clashes)} file(s) already exist, nothing was written: "
                            + ", ".join(clashes[:5]), where=Location(str(target)),
                            hint="run init in an empty folder, or move those files away")
    for rel, content in files:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return [rel for rel, _ in files]


def init_for_collection(target: Path, collection: str, job: str, data: Sample,
                        qdrant: dict[str, str] | None) -> list[str]:
    """Write a job that fits `collection` (scaffold.py), its prompts and the job-spec
    schema, and — when the folder has no batchrun.yaml yet — the project file, pointed at
    `qdrant` ({path: …} or {url: …}). Refuses to overwrite anything."""
    files = [(rel, text.encode("utf-8"))
             for rel, text in job_files(collection, data, job).items()]
    starter = dict(starter_files())
    if not (target / PROJECT_FILE).exists():
        config = starter[PROJECT_FILE].decode("utf-8")
        if qdrant:
            (kind, where), = qdrant.items()
            config = config.replace(
                "  path: .qdrant            # embedded Qdrant in this folder; or url: "
                "http://localhost:6333", f"  {kind}: {json.dumps(where)}")
        files.append((PROJECT_FILE, config.encode("utf-8")))
    if not (target / SCHEMA_FILE).exists():
        files.append((SCHEMA_FILE, starter[SCHEMA_FILE]))
    return _write(target, files)


def ensure_project(root: Path) -> list[str]:
    """Scaffold the starter project when `root` has no jobs/tags.yaml yet."""
    if (root / "jobs" / "tags.yaml").exists():
        return []
    return init(root)
