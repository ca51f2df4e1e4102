"""cold: every point pending; `apply` against a raw script doing the same I/O.

batchrun: a full `apply` against the in-process emulator at instant speed — select,
render, key, pack, submit, poll, collect, validate, write back. The raw baseline: scroll,
render the same templates with plain Jinja, json.dumps each request into a JSONL file,
and set_payload a fake result on every point. Measured on an embedded on-disk collection
(--points, default 20,000; each side on its own copy), where Qdrant's writes dominate,
and on an in-memory one (--memory-points, default 20,000; 0 skips it), where they do not.
The emulator's own time (it stands in for OpenAI's servers) is measured apart and left out
of the target: cold apply ≤ 1.5× the raw baseline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _common import (
    DISK,
    MEMORY,
    Profiles,
    arguments,
    build_on_disk,
    comparison,
    scratch,
    side,
    write_project,
)

from runner.jobs import load_jobs
from runner.project import load_project

TARGET = 1.5


def measure(title: str, raw: dict, ours: dict, setup_rows: list[tuple[str, float]]) -> None:
    root = Path(raw["root"])
    [job] = load_jobs([], load_project(root), root)
    base = side("baseline.cold", schema=json.dumps(job.output_schema), **raw)
    applied = side("batchrun.apply", stages=True, **ours)
    own = applied["own_seconds"]
    table = comparison(f"{title} ({base['matched']:,} selected)", setup_rows, base,
                       "raw script (baseline)", applied, "provider side")
    table.row("  batchrun's own time (wall − emulator)", own)
    table.ratio("cold apply (own time) / raw script", own / base["seconds"], TARGET)
    table.ratio("cold apply (wall, incl. emulator) / raw script",
                applied["seconds"] / base["seconds"], None)
    table.check("requests sent", applied["sent"], base["matched"])
    table.check("points written", applied["written"], base["matched"])
    table.print((base, applied))


def main() -> None:
    args = arguments(__doc__, 20_000, memory_points=dict(
        type=int, default=20_000, help="points in the in-memory run (0: skip it)"), budget=dict(
        type=float, help="give the job a budget (USD): apply then tokenizes every request"))
    profiles = Profiles(args.profile, "cold")
    with scratch(args.keep) as tmp:
        if args.points:
            ours, raw = tmp / "disk-batchrun", tmp / "disk-raw"
            built = build_on_disk(ours, args.points, budget=args.budget)
            shutil.copytree(ours, raw)
            spec = {"qdrant": DISK, "points": args.points}
            measure(f"cold — {args.points:,} points, embedded Qdrant on disk",
                    {"root": str(raw), **spec},
                    {"root": str(ours), **spec, **profiles.spec("disk")},
                    [("build the collection (setup)", built)])
        if args.memory_points:
            root = tmp / "memory"
            write_project(root, MEMORY, budget=args.budget)
            spec = {"root": str(root), "qdrant": MEMORY, "points": args.memory_points}
            measure(f"cold — {args.memory_points:,} points, in-memory Qdrant",
                    spec, {**spec, **profiles.spec("memory")}, [])
    profiles.print()


if __name__ == "__main__":
    main()
