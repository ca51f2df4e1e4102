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

from .errors import BatchrunError, Location

SCHEMA_FILE = "schemas/job.schema.json"


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
    files = list(starter_files())
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


def ensure_project(root: Path) -> list[str]:
    """Scaffold the starter project when `root` has no jobs/tags.yaml yet."""
    if (root / "jobs" / "tags.yaml").exists():
        return []
    return init(root)
