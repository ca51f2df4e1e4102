"""memory: peak RSS of `apply` at 10,000 and 100,000 points, against the bare scroll.

Each side runs in its own process on an in-memory collection it builds itself, and
reports `ru_maxrss` at its end: the collection, Python and the libraries are in every
figure. The bare scroll reads a collection shaped as apply leaves it (a result and a
stamp on every selected point), so the difference is what batchrun itself holds.
Sides: the bare scroll, a no-op `apply` (every point current) and a cold `apply` (every
point pending) against `batchrun emulator` served at instant speed from its own process,
so that the emulator's memory (its tokenizer alone is 45 MB) is not counted as
batchrun's; --in-process-emulator counts it. Target: apply at the larger size ≤ the bare
scroll's peak + 50 MB.
"""

from __future__ import annotations

from contextlib import nullcontext

from _common import MEMORY, Table, arguments, scratch, served_emulator, side, write_project

TARGET_MB = 50


def main() -> None:
    args = arguments(__doc__, 100_000, small=dict(
        type=int, default=10_000, help="the smaller size (default 10,000)"),
        in_process_emulator=dict(action="store_true", help="run the emulator inside apply"))
    sizes = sorted({args.small, args.points})
    rss: dict[tuple[str, int], float] = {}
    with scratch(args.keep) as tmp:
        for n in sizes:
            root = tmp / f"memory-{n}"
            spec = {"root": str(root), "qdrant": MEMORY, "points": n}
            with (nullcontext() if args.in_process_emulator
                  else served_emulator(tmp / f"emulator-{n}")) as served:
                write_project(root, MEMORY, provider=served and {
                    "name": "openai", "base_url": served.url, "poll_interval": 0.01})
                env = {"OPENAI_API_KEY": "sk-bench-not-a-key"}
                rss["scroll", n] = side("baseline.scroll", current=True, **spec)["rss_mb"]
                rss["noop", n] = side("batchrun.apply", current=True, env=env, **spec)["rss_mb"]
                rss["cold", n] = side("batchrun.apply", env=env, **spec)["rss_mb"]
    table = Table(f"memory — peak RSS at {' and '.join(f'{n:,}' for n in sizes)} points, "
                  "in-memory Qdrant")
    inside = " (with the emulator in it)" if args.in_process_emulator else ""
    for what, label in (("scroll", "bare scroll (baseline)"), ("noop", "no-op apply"),
                        ("cold", "cold apply" + inside)):
        for n in sizes:
            table.row(f"{label} at {n:,}", None, rss[what, n])
    big, small = sizes[-1], sizes[0]
    for what in ("noop", "cold"):
        table.ratio(f"{what} apply − bare scroll at {big:,}",
                    rss[what, big] - rss["scroll", big], TARGET_MB, " MB")
    if big != small:
        for what in ("scroll", "noop", "cold"):
            table.ratio(f"{what}: growth {small:,} → {big:,}",
                        rss[what, big] - rss[what, small], None, " MB")
    table.print()


if __name__ == "__main__":
    main()
