"""What the benchmarks share: the data, the project, child processes, and the tables.

Data: the 300 real videos shipped with batchrun (`runner.demo.sample_videos()`),
replicated to N points with varied title and description, so every point renders to a
different request. The job is the starter `jobs/tags.yaml` (filter region in US/GB/CA,
so 80 % of the points are selected; five fields; a strict JSON schema), with shards of
up to 50,000 requests instead of the demo's 100 and without the demo's $1 budget (a
budget makes batchrun tokenize every request, work no baseline does; `--budget` puts it
back).

Every measured side runs in its own child process (`_baseline.py` imports only
qdrant_client and jinja2; `_batchrun.py` imports batchrun), so that peak RSS
(`ru_maxrss` at the end of the child) belongs to that side alone, and an in-memory
collection lives only inside the child that built it. This module imports no batchrun
code, so it does not weigh on the baselines' memory.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from qdrant_client import QdrantClient, models

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:          # `python bench/x.py` measures this checkout's runner
    sys.path.insert(0, str(REPO))

STARTER = REPO / "runner" / "data" / "project"
SAMPLE = REPO / "runner" / "data" / "videos.sample.jsonl.gz"   # runner.demo.sample_videos()
COLLECTION = "videos"
JOB = "tags"
MEMORY = ":memory:"
DISK = ".qdrant"
UPSERT_BATCH = 1000


def job_spec(budget: float | None = None) -> dict:
    """The starter tags job, with API-sized shards and (by default) no budget."""
    spec = yaml.safe_load((STARTER / "jobs" / "tags.yaml").read_text(encoding="utf-8"))
    spec["batch"]["max_requests"] = 50_000
    spec.pop("budget", None)
    if budget is not None:
        spec["budget"] = {"max_cost_usd": budget}
    return spec


SPEC = job_spec()
FIELDS: list[str] = SPEC["source"]["fields"]
FILTER: dict = SPEC["source"]["filter"]
SELECTED_REGIONS = set(FILTER["must"][0]["match"]["any"])
OUTPUT_KEY: str = SPEC["output"]["key"]
STAMP_KEY = "_batchrun_" + JOB
# Shaped like the emulator's answers to the tags job (five topics), and the stamp like the
# one apply writes beside it, so that a baseline's collection holds as much as batchrun's.
FAKE_RESULT = {"category": "Education", "language": "en",
               "topics": ["chess", "live", "stream", "tournament", "club"]}
STAMP_MODEL = "gpt-4o-mini-2024-07-18"          # a dated model, as answers name it
STAMP_BATCH = "batch_" + "0" * 32
STAMP_AT = "2025-01-01T00:00:00Z"


# Stages of a cold run, as both sides report them (keys) and print them (labels).
STAGES = {
    "select": "select: Qdrant scroll",
    "count": "select: Qdrant count (for the progress total)",
    "stamp": "select: stamp check (inputs digest)",
    "render": "render (Jinja → request body)",
    "key": "key (sha256 of canonical JSON)",
    "estimate": "estimate (tokenize, for the budget)",
    "ledger": "ledger (cache, request state, waiting points)",
    "pack": "pack (JSONL lines, shard file, ledger rows)",
    "adopt": "adopt (list batches)",
    "submit": "submit (upload + create), client side",
    "poll": "poll (status of the batches in flight)",
    "collect": "collect/validate, client side",
    "write": "write back (Qdrant set_payload)",
    "manifest": "manifest.json",
    "emulator": "emulator (provider side, not batchrun's)",
    "other": "other (loop, transactions, waiting, ...)",
}


# ---- data ------------------------------------------------------------------------------

def videos(n: int) -> Iterator[tuple[int, dict]]:
    """(point id, payload) for n points: the sample videos, copy k of each with its own
    title and description."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        sample = [json.loads(line) for line in fh]
    for i in range(n):
        video = dict(sample[i % len(sample)])
        copy = i // len(sample)
        if copy:
            video["title"] = f"{video['title']} (part {copy + 1})"
            video["description"] = (f"Part {copy + 1} of the series. "
                                    f"{video.get('description') or ''} #{i}")
            video["views"] = (video.get("views") or 0) + copy
        yield i + 1, video


def open_qdrant(root: Path, where: str) -> QdrantClient:
    if where == MEMORY:
        return QdrantClient(location=MEMORY)
    return QdrantClient(path=str(root / where))


def unsynced(client: QdrantClient) -> None:
    """For set-up only: let the embedded engine's SQLite files skip fsync. It commits
    once per point written (about 1 ms each on disk); nothing measured runs this way."""
    local = getattr(client, "_client", None)
    for collection in getattr(local, "collections", {}).values():
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if connection is not None:
            connection.execute("PRAGMA synchronous=OFF")


def lookalike_stamp(point_id: int, provider: str = "emulator") -> dict:
    """A stamp shaped like the one apply writes, field for field and of the same lengths
    (for the baselines' copy of a current collection, which must not import batchrun to
    compute the real one)."""
    digest = hashlib.sha256(str(point_id).encode()).hexdigest()
    return {"key": digest, "inputs": "m2:" + digest[:32], "provider": provider,
            "model": STAMP_MODEL, "batch": STAMP_BATCH, "at": STAMP_AT, "to": OUTPUT_KEY}


def seed(client: QdrantClient, n: int, *, stamped: bool = False,
         provider: str = "emulator") -> None:
    """n points in a new collection; `stamped`: selected points also carry a result and
    a stamp of the sizes apply writes."""
    client.create_collection(COLLECTION, vectors_config={})
    unsynced(client)
    batch: list[models.PointStruct] = []
    for point_id, payload in videos(n):
        if stamped and payload["region"] in SELECTED_REGIONS:
            payload[OUTPUT_KEY] = FAKE_RESULT
            payload[STAMP_KEY] = lookalike_stamp(point_id, provider)
        batch.append(models.PointStruct(id=point_id, vector={}, payload=payload))
        if len(batch) == UPSERT_BATCH:
            client.upsert(COLLECTION, batch)
            batch = []
    if batch:
        client.upsert(COLLECTION, batch)


def selected_ids(n: int) -> list[int]:
    return [i for i, v in videos(n) if v["region"] in SELECTED_REGIONS]


def qdrant_filter() -> models.Filter:
    """The job's filter, as the qdrant_client model a plain script would pass."""
    return models.Filter.model_validate(FILTER)


# ---- the project -----------------------------------------------------------------------

def write_project(root: Path, qdrant: str, *, budget: float | None = None,
                  provider: dict | None = None) -> None:
    """A batchrun project: the starter prompts, the tags job, the emulator at instant speed."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STARTER / "prompts", root / "prompts", dirs_exist_ok=True)
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / "tags.yaml").write_text(yaml.safe_dump(job_spec(budget), sort_keys=False),
                                             encoding="utf-8")
    provider = provider or {"name": "emulator", "emulator_speed": "instant",
                            "poll_interval": 0.01}
    (root / "batchrun.yaml").write_text(yaml.safe_dump(
        {"qdrant": {"path": qdrant}, "provider": provider}), encoding="utf-8")


@contextmanager
def scratch(keep: bool = False) -> Iterator[Path]:
    """A temporary folder for one benchmark's projects and data."""
    folder = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    try:
        yield folder
    finally:
        if keep:
            print(f"(kept {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def build_on_disk(root: Path, n: int, *, budget: float | None = None) -> float:
    """A project whose embedded on-disk Qdrant holds n points; returns seconds taken."""
    started = time.perf_counter()
    write_project(root, DISK, budget=budget)
    client = open_qdrant(root, DISK)
    try:
        seed(client, n)
    finally:
        client.close()
    return time.perf_counter() - started


# ---- child processes -------------------------------------------------------------------

RESULT_MARK = "@@bench-result "


def side(name: str, env: dict[str, str] | None = None, **spec: Any) -> dict:
    """Run `name` ("baseline.scroll", "batchrun.apply", ...: a function of _baseline.py or
    _batchrun.py) in a fresh Python process; its result, with the child's peak RSS (MB)
    and CPU seconds."""
    module, function = name.split(".")
    if module == "baseline" and "points" in spec and "page" not in spec:
        spec["page"] = embedded_page(spec["points"])
    cmd = [sys.executable, str(BENCH / f"_{module}.py"), json.dumps({"side": function, **spec})]
    env = {**os.environ, "PYTHONHASHSEED": "0", "NO_COLOR": "1", **(env or {})}
    env.pop("OPENAI_BASE_URL", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"bench side {name!r} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_MARK):])


class Served:
    """An emulator serving from its own process: its base URL and its memory."""

    def __init__(self, url: str, pid: int):
        self.url, self.pid = url, pid

    def peak_rss_mb(self) -> float | None:
        """The process's peak RSS so far (Linux: VmHWM), in MB."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmHWM:")), None)
        return None if kb is None else kb / 1024


def embedded_page(points: int) -> int:
    """batchrun's page on the embedded engine for a collection of `points` (select.py's
    paging rule), for the baselines: both sides make as many passes over the engine."""
    from runner.select import page_size  # in the parent only: the children stay batchrun-free
    from runner.spec import QdrantConfig

    return page_size(points, QdrantConfig().scroll_page, embedded=True)


@contextmanager
def served_emulator(state_dir: Path) -> Iterator[Served]:
    """`batchrun emulator` at instant speed in its own process."""
    proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "emulator", "--port", "0",
                             "--speed", "instant", "--state-dir", str(state_dir)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("export OPENAI_BASE_URL="):
                yield Served(line.split("=", 1)[1].strip(), proc.pid)
                break
        else:
            raise SystemExit(f"the emulator exited ({proc.wait()}) before saying its URL")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def peak_rss_mb() -> float:
    """This process's peak RSS so far, MB (taken after a side's set-up, so that what the
    measured run adds shows apart from what building the collection took)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: kilobytes


def child_main(sides: dict[str, Callable[[dict], dict]]) -> None:
    """The child's end of `side()`: run one side, print its result line."""
    spec = json.loads(sys.argv[1])
    result = sides[spec["side"]](spec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # a side's peak before what it measured after its run (`rss_run_mb`), else at its end
    result["rss_mb"] = result.pop("rss_run_mb", None) or usage.ru_maxrss / 1024   # Linux: KiB
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(RESULT_MARK + json.dumps(result), flush=True)


def open_collection(spec: dict, *, stamped: bool = False) -> tuple[QdrantClient, float]:
    """The collection a side works on (an in-memory one is built here), and the seconds
    it took to open or build it."""
    started = time.perf_counter()
    client = open_qdrant(Path(spec["root"]), spec["qdrant"])
    if spec["qdrant"] == MEMORY:   # `provider`: who the stamps name (batchrun's provider id)
        seed(client, spec["points"], stamped=stamped,
             provider=spec.get("provider", "emulator"))
    return client, time.perf_counter() - started


# ---- command line and output -----------------------------------------------------------

def arguments(doc: str, default_points: int, **extra: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--points", type=int, default=default_points,
                        help=f"points in the collection (default {default_points:,})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="run batchrun's measured sides under cProfile; write "
                             "DIR/<bench>-<n>.prof and print the top functions (slower)")
    for flag, options in extra.items():
        parser.add_argument("--" + flag.replace("_", "-"), **options)
    return parser.parse_args()


class Profiles:
    """`--profile DIR`: a fresh .prof path per measured batchrun side, printed after."""

    def __init__(self, folder: Path | None, bench: str):
        self.folder, self.bench, self.paths = folder, bench, []
        if folder:
            folder.mkdir(parents=True, exist_ok=True)

    def spec(self, what: str) -> dict:
        if not self.folder:
            return {}
        path = self.folder / f"{self.bench}-{len(self.paths) + 1}-{what}.prof"
        self.paths.append(path)
        return {"profile": str(path)}

    def print(self, limit: int = 30) -> None:
        import pstats  # only with --profile
        for path in self.paths:
            print(f"\n--- cProfile of {path.name}, by cumulative time ---")
            pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats(
                "cumulative").print_stats(limit)


def comparison(title: str, setup_rows: list[tuple[str, float]], base: dict, base_label: str,
               applied: dict, emulator_label: str) -> Table:
    """The common head of a timing table: set-up, the baseline, batchrun's apply."""
    table = Table(title)
    for what, seconds in setup_rows:
        table.row(what, seconds)
    table.row("(open/build the collection in each child, not timed)", base["setup"])
    table.row(base_label, base["seconds"], base["rss_mb"])
    table.row("batchrun apply, wall", applied["seconds"], applied["rss_mb"])
    table.row(f"  of which the emulator ({emulator_label})", applied["emulator_seconds"])
    return table


def print_stages(left: dict, right: dict, names: tuple[str, str] = ("raw", "batchrun")) -> None:
    """The per-stage split of two measured sides, side by side."""
    split = []
    for side_ in (left, right):
        stages = dict(side_.get("stages", {}))
        stages["other"] = max(0.0, side_["seconds"] - sum(stages.values()))
        split.append(stages)
    print(f"\n  {'stage (exclusive seconds)':<48} {names[0]:>9} {names[1]:>9}")
    for key, label in STAGES.items():
        if key in split[0] or key in split[1]:
            print(f"  {label:<48} {_seconds(split[0].get(key)):>9} "
                  f"{_seconds(split[1].get(key)):>9}")
    print(f"  {'total':<48} {_seconds(left['seconds']):>9} {_seconds(right['seconds']):>9}")
    missing = sorted({*left.get("uninstrumented", ()), *right.get("uninstrumented", ())})
    if missing:
        print(f"  (not found in runner/, so counted in 'other': {', '.join(missing)})")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Table:
    """Rows of one measurement, printed aligned; ratio lines are what CI greps for."""

    def __init__(self, title: str):
        self.title = title
        self.rows: list[tuple[str, str, str]] = []
        self.ratios: list[str] = []

    def row(self, what: str, seconds: float | None = None, rss_mb: float | None = None) -> None:
        self.rows.append((what, "" if seconds is None else f"{seconds:8.2f} s",
                          "" if rss_mb is None else f"{rss_mb:7.0f} MB"))

    def ratio(self, what: str, value: float, target: float | None, unit: str = "×") -> bool:
        ok = target is None or value <= target
        goal = f"target ≤ {target:g}{unit}" if target is not None else "no target"
        self.ratios.append(f"ratio  {what:<44} {value:7.2f}{unit}  ({goal})"
                           + (f"  {verdict(ok)}" if target is not None else ""))
        return ok

    def check(self, what: str, value: Any, expected: Any) -> bool:
        ok = value == expected
        self.ratios.append(f"check  {what:<44} {value!s:>8}  (expected {expected})  {verdict(ok)}")
        return ok

    def print(self, split: tuple[dict, dict] | None = None,
              names: tuple[str, str] = ("raw", "batchrun")) -> None:
        """The rows and ratio lines; with `split`, two sides' stages after them."""
        print(f"\n{self.title}")
        width = max([len(r[0]) for r in self.rows] + [20])
        for what, seconds, rss in self.rows:
            print(f"  {what:<{width}}  {seconds:>10}  {rss:>10}")
        for line in self.ratios:
            print(line)
        if split:
            print_stages(*split, names)
        sys.stdout.flush()
