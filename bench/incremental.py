"""incremental: change k = 1 % of the points; `apply` must send exactly k requests.

An embedded on-disk collection of --points (default 20,000) is made current by a cold
`apply` (set-up); then a no-op `apply` is timed; then the titles of k selected points
change, `plan` must report k pending and `apply` must send k requests (2 POSTs: one
upload, one batch). Its time is compared with the no-op's: the ideal is the no-op plus k
requests' worth of work.
"""

from __future__ import annotations

from _common import (
    COLLECTION,
    DISK,
    Profiles,
    Table,
    arguments,
    build_on_disk,
    open_qdrant,
    scratch,
    selected_ids,
    side,
)


def change(root, ids: list[int]) -> None:
    """Edit the title of each point in `ids` (one set_payload per point, like a user's
    pipeline updating records)."""
    client = open_qdrant(root, DISK)
    try:
        for point_id, record in zip(ids, client.retrieve(COLLECTION, ids, with_payload=["title"]),
                                    strict=True):
            client.set_payload(COLLECTION, {"title": f"{record.payload['title']} (edited)"},
                               points=[point_id])
    finally:
        client.close()


def main() -> None:
    args = arguments(__doc__, 20_000, percent=dict(
        type=float, default=1.0, help="share of the points to change, in %% (default 1)"))
    profiles = Profiles(args.profile, "incremental")
    k = max(1, round(args.points * args.percent / 100))
    with scratch(args.keep) as tmp:
        root = tmp / "project"
        built = build_on_disk(root, args.points)
        spec = {"root": str(root), "qdrant": DISK, "points": args.points}
        cold = side("batchrun.apply", setup=True, **spec)
        noop = side("batchrun.apply", stages=True, **spec)
        selected = selected_ids(args.points)
        changed = sorted(selected[i * len(selected) // k] for i in range(k))
        change(root, changed)
        planned = side("batchrun.plan", **spec)
        applied = side("batchrun.apply", stages=True, **spec, **profiles.spec("apply"))
        again = side("batchrun.apply", **spec)
    table = Table(f"incremental — {args.points:,} points, embedded Qdrant on disk, "
                  f"{k:,} changed ({args.percent:g} %)")
    table.row("build the collection (setup)", built)
    table.row(f"cold apply to make it current (setup, sent {cold['sent']:,})", cold["seconds"])
    table.row("no-op apply", noop["seconds"], noop["rss_mb"])
    table.row(f"incremental apply ({k:,} changed)", applied["seconds"], applied["rss_mb"])
    table.row("  of which the emulator (provider side)", applied["emulator_seconds"])
    extra = applied["own_seconds"] - noop["own_seconds"]
    table.row(f"  own time over the no-op's: {1000 * extra / k:.2f} ms per changed point", extra)
    table.ratio("incremental apply / no-op apply (wall)", applied["seconds"] / noop["seconds"],
                None)
    table.ratio("incremental apply / no-op apply (own time)",
                applied["own_seconds"] / noop["own_seconds"], None)
    table.check("points pending in plan", planned["pending"], k)
    table.check("requests sent", applied["sent"], k)
    table.check("POST requests (upload + batch)", applied["posts"], 2)
    table.check("requests sent by the apply after", again["sent"], 0)
    table.print((noop, applied), ("no-op", "changed"))
    profiles.print()


if __name__ == "__main__":
    main()
