"""copies: two copies of one project apply at once; how many requests run twice?

Issue #11's trial: two folders holding the same project, job and API organisation (two
CI runners, two laptops) start `batchrun apply --no-wait` (or, with --wait, `apply`)
within --window-ms of each other (uniformly drawn); then each runs `batchrun apply` to
collect. The Batch API is
batchrun's emulator, served on 127.0.0.1 from this process, in real time: batches spend
--validating seconds validating, and its list hides batches younger than --list-lag
seconds (0: none). It counts every request it executes — what a real API bills. The goal
is 0 requests executed twice, and every point of both copies written.

    python bench/copies.py                      # 20 trials, ≈ 6 min
    python bench/copies.py --list-lag 2         # a list that lags: --no-wait's limit
    python bench/copies.py --list-lag 2 --wait  # copies that wait look again while validating

This is a correctness measurement, not a timing: it prints counts, and the seconds a
trial took only to say what it costs.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _common import DISK, Table, arguments, open_qdrant, scratch, seed, write_project

from runner.emulator import Emulator, EmulatorConfig, Faults, start_in_thread

JOB = "jobs/tags.yaml"


def copy_of_project(root: Path, url: str, points: int, shard: int) -> Path:
    """One copy: the starter tags job in shards of `shard` requests, its own embedded
    Qdrant holding the same points, the real SDK against the served emulator."""
    write_project(root, DISK, provider={"name": "openai", "base_url": url,
                                        "poll_interval": 0.05, "list_lag": 10.0})
    spec_path = root / "jobs" / "tags.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["batch"]["max_requests"] = shard
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    client = open_qdrant(root, DISK)
    try:
        seed(client, points)
    finally:
        client.close()
    return root


def batchrun(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "NO_COLOR": "1"}
    env.pop("OPENAI_BASE_URL", None)
    env.pop("BATCHRUN_CRASH_AT", None)
    return subprocess.Popen([sys.executable, "-m", "runner.cli", "-C", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen, what: str) -> None:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise SystemExit(f"{what} exited {process.returncode}:\n{out}\n{err}")


def trial(folder: Path, args, rng: random.Random) -> dict:
    emulator = Emulator(state_dir=folder / "emulator",
                        config=EmulatorConfig(validating_seconds=args.validating,
                                              seconds_per_request=0.005,
                                              finalizing_seconds=0.1),
                        faults=Faults(list_lag_seconds=args.list_lag))
    server = start_in_thread(emulator)
    try:
        copies = [copy_of_project(folder / side / "project", server.url, args.points,
                                  args.shard) for side in ("a", "b")]
        started = time.perf_counter()
        mode = () if args.wait else ("--no-wait",)
        first = batchrun(copies[0], "apply", *mode)
        time.sleep(rng.uniform(0, args.window_ms / 1000))   # the second starts within the window
        second = batchrun(copies[1], "apply", *mode)
        finish(first, "copy a")
        finish(second, "copy b")
        for index, copy in enumerate(copies):
            finish(batchrun(copy, "apply"), f"copy {'ab'[index]} collecting")
        seconds = time.perf_counter() - started
        executed = emulator.executions()
        written = [_written(copy) for copy in copies]
        return {"seconds": seconds, "requests": len(executed),
                "twice": sum(n - 1 for n in executed.values() if n > 1),
                "batches": sum(1 for _ in emulator.log.iter_events("batch_created")),
                "written": written}
    finally:
        server.stop()
        emulator.close()


def _written(root: Path) -> int:
    client = open_qdrant(root, DISK)
    try:
        records, _ = client.scroll("videos", limit=100_000, with_payload=["llm_tags"])
        return sum(1 for r in records if r.payload and "llm_tags" in r.payload)
    finally:
        client.close()


def main() -> None:
    args = arguments(__doc__, 60,
                     trials=dict(type=int, default=20, help="trials (default 20)"),
                     shard=dict(type=int, default=10, help="requests per shard (default 10)"),
                     validating=dict(type=float, default=3.0,
                                     help="seconds a batch validates (default 3)"),
                     list_lag=dict(type=float, default=0.0,
                                   help="seconds the batch list hides new batches (default 0)"),
                     wait=dict(action="store_true",
                               help="the copies run `apply` (waiting), not --no-wait"),
                     window_ms=dict(type=float, default=100.0,
                                    help="the second copy starts within this many ms (100)"),
                     seed=dict(type=int, default=11, help="seed of the start offsets"))
    rng = random.Random(args.seed)
    shards = -(-args.points // args.shard)   # every sample point up to 240 is selected
    results = []
    with scratch(args.keep) as tmp:
        for number in range(args.trials):
            result = trial(tmp / f"trial-{number}", args, rng)
            results.append(result)
            print(f"trial {number + 1:>2}: {result['requests']} requests executed, "
                  f"{result['twice']} twice; {result['batches']} batches created for "
                  f"{shards} shards; points written {result['written']}; "
                  f"{result['seconds']:.1f} s", flush=True)
    selected = results[0]["requests"] if results else 0
    table = Table(f"copies — {args.trials} trials of two copies (apply"
                  f"{'' if args.wait else ' --no-wait'}) started within "
                  f"{args.window_ms:g} ms; {args.points} points ({selected} selected), "
                  f"{args.shard} per shard; validating {args.validating:g} s, list lag "
                  f"{args.list_lag:g} s")
    table.row("a trial (both copies submit, then each collects)",
              sum(r["seconds"] for r in results) / max(1, len(results)))
    duplicates = sum(r["batches"] - shards for r in results)
    raced = sum(r["batches"] > shards for r in results)
    table.row(f"duplicate batches created: {duplicates}, in {raced} of {len(results)} trials "
              "(each cancelled or given up; the executions below say whether any ran)")
    table.check("requests executed twice (all trials)", sum(r["twice"] for r in results), 0)
    table.check("points left unwritten (both copies)",
                sum(selected - w for r in results for w in r["written"]), 0)
    table.print()


if __name__ == "__main__":
    main()
