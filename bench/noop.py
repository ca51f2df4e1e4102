"""noop: every point is current; `apply` and `plan` against a bare scroll.

Measured twice: --points (default 20,000) in an embedded on-disk Qdrant, made current by a
real cold `apply` first; and --memory-points (default 100,000; 0 skips it) in an
in-memory collection, which each child builds and marks current itself (see
`_batchrun.mark_current`). On disk each side runs --repeat times (default 3) in its
process and the fastest run counts; in memory once (a run takes ≈ 10 s). Targets: apply
and plan ≤ 1.2× the bare scroll, 0 POST requests, every selected point found up to date.
apply's time leaves out the in-process emulator's (its start-up reads its whole request
log; a real API costs one GET here).
"""

from __future__ import annotations

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

TARGET = 1.2


def measure(title: str, spec: dict, setup_rows: list[tuple[str, float]], profile: dict) -> None:
    base = side("baseline.scroll", **spec)
    applied = side("batchrun.apply", stages=True, **spec, **profile)
    planned = side("batchrun.plan", **spec)
    table = comparison(title, setup_rows, base, "bare scroll (baseline)", applied,
                       "start-up, list batches")
    table.row("batchrun plan", planned["seconds"], planned["rss_mb"])
    table.ratio("no-op apply (own time) / bare scroll", applied["own_seconds"] / base["seconds"],
                TARGET)
    table.ratio("plan / bare scroll", planned["seconds"] / base["seconds"], TARGET)
    table.check("POST requests on a no-op apply", applied["posts"], 0)
    table.check("points up to date (apply)", applied["up_to_date"], base["matched"])
    table.check("points up to date (plan)", planned["up_to_date"], base["matched"])
    table.print((base, applied))


def main() -> None:
    args = arguments(__doc__, 20_000, memory_points=dict(
        type=int, default=100_000, help="points in the in-memory run (0: skip it)"), repeat=dict(
        type=int, default=3, help="time each side this many times in its process and keep "
        "the fastest (default 3 on disk; the in-memory run always once)"))
    profiles = Profiles(args.profile, "noop")
    with scratch(args.keep) as tmp:
        root = tmp / "disk"
        built = build_on_disk(root, args.points)
        spec = {"root": str(root), "qdrant": DISK, "points": args.points}
        cold = side("batchrun.apply", setup=True, **spec)
        spec["repeat"] = args.repeat
        measure(f"noop — {args.points:,} points, embedded Qdrant on disk "
                f"({cold['matched']:,} selected)",
                spec, [("build the collection (setup)", built),
                       (f"cold apply to make it current (setup, sent {cold['sent']:,})",
                        cold["seconds"])], profiles.spec("disk"))
        if args.memory_points:
            root = tmp / "memory"
            write_project(root, MEMORY)
            measure(f"noop — {args.memory_points:,} points, in-memory Qdrant",
                    {"root": str(root), "qdrant": MEMORY, "points": args.memory_points,
                     "current": True}, [], profiles.spec("memory"))
    profiles.print()


if __name__ == "__main__":
    main()
