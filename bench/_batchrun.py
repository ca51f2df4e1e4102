"""batchrun's side, driven through its public entry points: `runner.apply.apply(Workspace)`
and `Workspace.plan()`, on the project under `root`, with the in-process emulator at instant
speed (or, when the project names another provider, that one: `memory` serves the
emulator from its own process). Run in a child process by
`_common.side("batchrun.<name>", spec)`; spec has `root`, `qdrant` (".qdrant" on disk, or
":memory:": the child builds the collection itself, `current` to mark it up to date),
`points`, and optionally `setup` (the run only prepares the next ones), `repeat`,
`stages`, `profile`, `change` (k: after marking the collection current, edit the title of
k selected points before the run), `trace` (tracemalloc: what the run leaves allocated,
by owner) and `floor` (time one filtered pass of the engine after the run).

Only the command is timed, from loading the project and its jobs to the end of
`apply`/`plan`, as the CLI runs them; opening or building the collection is not (the
baselines pay the same and it is reported apart). With `stages`, functions are wrapped
from the outside (`Stages`) to split the time; nothing under runner/ is changed.
"""

from __future__ import annotations

import cProfile
import functools
import gc
import hashlib
import os
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common  # first: it puts this checkout on sys.path
import httpx2
import openai
from _common import MEMORY
from qdrant_client import QdrantClient

import runner.apply
import runner.keys
import runner.ledger
import runner.manifest
import runner.pack
import runner.reconcile
import runner.report
import runner.workspace
import runner.writeback
from runner.emulator import Emulator, EmulatorConfig
from runner.jobs import load_jobs
from runner.progress import Reporter
from runner.project import load_project
from runner.provider import EMULATOR_URL, BatchAPI
from runner.records import Result
from runner.select import Selection
from runner.spec import QdrantConfig
from runner.workspace import Options, Workspace
from runner.writeback import Writer

# The modules running apply's loop; they import the stage functions under their own names.
FLOW = [runner.apply, runner.workspace]
PAGE = QdrantConfig().scroll_page
WRITE_BATCH = QdrantConfig().write_batch


# ---- instruments -----------------------------------------------------------------------

class Stages:
    """Exclusive seconds per stage, by wrapping functions from the outside: time spent in
    a nested wrapped call counts for the inner stage only. Wall-clock seconds, and CPU
    seconds of this process (`cpu`: what a shared, loaded machine does not inflate)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._stack: list[tuple[float, float]] = []

    def call(self, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._stack.append((0.0, 0.0))
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            inner, inner_cpu = self._stack.pop()
            self.seconds[stage] += elapsed - inner
            self.cpu[stage] += cpu - inner_cpu
            if self._stack:
                outer, outer_cpu = self._stack[-1]
                self._stack[-1] = (outer + elapsed, outer_cpu + cpu)

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            return self.call(stage, original, *args, **kwargs)

        setattr(owner, name, timed_call)


# (owners, attribute, stage key of _common.STAGES): each name is patched where it is looked up.
APPLY_STAGES: list[tuple[list[Any], str, str]] = [
    ([runner.reconcile], "inputs_digest", "stamp"),
    ([runner.reconcile], "render_parts", "render"),
    ([runner.keys.BodyFrame], "serialise", "key"),
    ([runner.keys.BodyFrame], "key", "key"),
    ([runner.reconcile], "prompt_tokens", "estimate"),
    ([runner.ledger.Ledger], "result", "ledger"),
    ([runner.ledger.Ledger], "request", "ledger"),
    ([runner.ledger.Ledger], "expect_points", "ledger"),
    ([runner.keys.BodyFrame], "line", "pack"),
    ([runner.pack.Packer], "add", "pack"),
    ([runner.pack.Packer], "close", "pack"),
    ([runner.workspace], "write_answered", "write"),
    ([runner.writeback.Writer], "result", "write"),
    ([runner.writeback.Writer], "restamp", "write"),
    ([runner.workspace.Workspace], "tidy", "gc"),
    (FLOW, "adopt", "adopt"),
    (FLOW, "submit_pending", "submit"),
    (FLOW, "refresh", "poll"),
    (FLOW, "collect_finished", "collect"),
    ([runner.manifest], "write", "manifest"),
]
CLIENT_STAGES = [("scroll", "select"), ("count", "count"), ("batch_update_points", "write")]


def instrument(stages: Stages, client: QdrantClient) -> list[str]:
    """Wrap every stage function that exists; return the names runner/ no longer has.
    With a served provider (the emulator in its own process), the time spent waiting for
    its HTTP answers is the provider's ("emulator"), not batchrun's."""
    missing = []
    stages.wrap(httpx2.Client, "send", "emulator")
    for owners, name, stage in [*APPLY_STAGES, *(([client], n, s) for n, s in CLIENT_STAGES)]:
        found = [owner for owner in owners if hasattr(owner, name)]
        for owner in found:
            stages.wrap(owner, name, stage)
        if not found:
            missing.append(f"{getattr(owners[0], '__name__', 'QdrantClient')}.{name}")
    return missing


class CountingApp:
    """The emulator's WSGI app, counting the calls it is sent and timing them."""

    def __init__(self, app: Emulator, stages: Stages):
        self.app = app
        self.calls: Counter[str] = Counter()
        self.handle = app.__call__
        stages.wrap(self, "handle", "emulator")

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.calls[f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"] += 1
        return self.handle(environ, start_response)

    def posts(self) -> int:
        return sum(n for call, n in self.calls.items() if call.startswith("POST /v1/"))


# ---- the collection --------------------------------------------------------------------

def open_collection(spec: dict) -> tuple[QdrantClient, float]:
    started = time.perf_counter()
    client, _ = _common.open_collection(spec)
    if spec.get("setup"):
        _common.unsynced(client)
    if spec["qdrant"] == MEMORY and spec.get("current"):
        mark_current(client, Path(spec["root"]))
    if spec.get("change"):
        change(client, spec["points"], spec["change"])
    return client, time.perf_counter() - started


def change(client: QdrantClient, points: int, k: int) -> None:
    """Edit the title of k selected points, evenly spread (as a user's pipeline would)."""
    selected = _common.selected_ids(points)
    for point_id in (selected[i * len(selected) // k] for i in range(k)):
        [record] = client.retrieve(_common.COLLECTION, [point_id], with_payload=["title"])
        client.set_payload(_common.COLLECTION, {"title": f"{record.payload['title']} (edited)"},
                           points=[point_id])


def mark_current(client: QdrantClient, root: Path) -> None:
    """Make every selected point up to date the way apply leaves it — a result and a
    stamp whose inputs digest matches — without sending 80,000 requests through the
    emulator first. (`noop` checks that apply then finds every point up to date.)"""
    project = load_project(root)
    [job] = load_jobs([], project, root)
    writer = Writer(client, job, write_batch=WRITE_BATCH)
    for point in Selection(client, job, page=PAGE, embedded=True).points():
        inputs = runner.reconcile.inputs_digest(job.fingerprint, point.id, point.payload)
        key = hashlib.sha256(inputs.encode()).hexdigest()
        result = Result(key, "json", _common.FAKE_RESULT, _common.STAMP_MODEL,
                        _common.STAMP_BATCH, _common.STAMP_AT)
        writer.result(point.id, result, inputs, project.provider_id)
    writer.flush()


# ---- batchrun --------------------------------------------------------------------------

def workspace(root: Path, client: QdrantClient, stages: Stages) -> tuple[Workspace, Any]:
    """A Workspace as the CLI builds it. It opens Qdrant through its own `qdrant` property
    (so whatever that does after connecting is measured), but `connect` hands it the
    collection this process opened or built. The in-process emulator at instant speed
    sits behind a counting wrapper when the project uses it."""
    project = load_project(root)
    jobs = load_jobs([], project, root)
    ws = Workspace(project, jobs, Reporter(quiet=True), Options(emulator_speed="instant"))
    sys.modules[Workspace.__module__].connect = lambda _project: client
    counting = None
    if project.config.provider.name == "emulator":
        emulator = stages.call("emulator", Emulator, state_dir=project.state_dir / "emulator",
                               config=EmulatorConfig.instant())
        counting = CountingApp(emulator, stages)
        http = httpx2.Client(transport=httpx2.WSGITransport(app=counting))
        api = openai.OpenAI(api_key="emulator", base_url=EMULATOR_URL, http_client=http,
                            max_retries=project.config.provider.max_retries)
        ws._api = BatchAPI(api, "the batchrun emulator",
                           min(project.config.provider.poll_interval, 0.05), emulator)
    return ws, counting


def batchrun(spec: dict, command: Callable[[Workspace], dict]) -> dict:
    """Run `command` on a fresh Workspace `repeat` times (default 1); the fastest run."""
    if spec.get("sqlite_cache_kb"):       # scale.py --sqlite-cache-mb
        runner.ledger.CACHE_KB = spec["sqlite_cache_kb"]
    client, setup = open_collection(spec)
    setup_rss = _common.peak_rss_mb()
    stages = Stages()
    missing = instrument(stages, client) if spec.get("stages") else []
    runs = []
    for _ in range(spec.get("repeat", 1)):
        stages.seconds.clear()
        stages.cpu.clear()
        runs.append(timed(spec, client, stages, command))
        # A CLI run ends its process; here the next run must not find this one's workspace
        # alive (Workspace.qdrant gc.freeze()s everything, itself included).
        gc.unfreeze()
        gc.collect()
    client.close()
    return {**min(runs, key=lambda r: r["own_seconds"]), "setup": setup, "setup_rss_mb": setup_rss,
            "uninstrumented": missing}


def timed(spec: dict, client: QdrantClient, stages: Stages,
          command: Callable[[Workspace], dict]) -> dict:
    profile = cProfile.Profile() if spec.get("profile") else None
    calls = ScrollCalls(client)
    if spec.get("trace"):
        gc.collect()
        tracemalloc.start(30)
        before = tracemalloc.take_snapshot()
    started, cpu_started = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    ws, counting = workspace(Path(spec["root"]), client, stages)
    out = command(ws)
    ws.ledger.close()
    if profile:
        profile.disable()
        profile.dump_stats(spec["profile"])
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    traced = retained(before) if spec.get("trace") else None
    if counting:
        counting.app.close()
    emulator_s = stages.seconds.get("emulator", 0.0)
    # The side's peak, taken before the measurements below: tracing a scroll costs memory
    # of its own (a traced block for each of the engine's per-call sort of every id).
    rss_mb = _common.peak_rss_mb()
    return {**out, "rss_run_mb": rss_mb, "seconds": seconds, "emulator_seconds": emulator_s,
            "own_seconds": seconds - emulator_s, "scroll_calls": calls.per_pass(),
            "posts": counting.posts() if counting else None,
            "calls": dict(counting.calls) if counting else {}, "stages": dict(stages.seconds),
            "own_cpu": cpu - stages.cpu.get("emulator", 0.0), "stages_cpu": dict(stages.cpu),
            "traced": traced, "floor_seconds": full_pass(client) if spec.get("floor") else None,
            "stamp_bytes": stamp_bytes(client, ws.jobs[0]) if spec.get("floor") else None,
            "state_bytes": folder_bytes(Path(spec["root"]) / ".batchrun")}


class ScrollCalls:
    """How many scroll calls each full pass made (a pass starts with offset None)."""

    def __init__(self, client: QdrantClient):
        self.passes: list[int] = []
        original = client.scroll

        def scroll(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("offset") is None:
                self.passes.append(0)
            self.passes[-1] += 1
            return original(*args, **kwargs)

        client.scroll = scroll  # type: ignore[method-assign]

    def per_pass(self) -> int:
        return max(self.passes, default=0)


def retained(before: tracemalloc.Snapshot) -> dict:
    """What the run left allocated, by owner: the embedded collection (allocated inside
    qdrant_client: what was written into it), batchrun (inside runner/, not qdrant), and
    the rest (imports, the SDK, caches). Bytes, and the traced peak."""
    after = tracemalloc.take_snapshot()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    owners: dict[str, int] = defaultdict(int)
    for stat in after.compare_to(before, "traceback"):
        files = [frame.filename for frame in stat.traceback]
        owner = ("collection" if any("qdrant_client" in f for f in files) else
                 "batchrun" if any(f"{os.sep}runner{os.sep}" in f for f in files) else "other")
        owners[owner] += stat.size_diff
    return {**owners, "peak": peak}


def full_pass(client: QdrantClient) -> float:
    """One filtered count: the pass every scroll call of the embedded engine makes."""
    flt = _common.qdrant_filter()
    runs = []
    for _ in range(3):
        started = time.process_time()
        client.count(_common.COLLECTION, count_filter=flt, exact=True)
        runs.append(time.process_time() - started)
    return min(runs)


def stamp_bytes(client: QdrantClient, job: Any, points: int = 10_000) -> float:
    """Bytes each point's stamp adds to a record of a scroll page (traced): batchrun reads
    the parts a pass decides by with the job's fields, a raw scroll reads none. Measured
    after a cold run, when every point has one."""
    fields = list(job.spec.source.fields or [])
    parts = [runner.writeback.stamp_path(job.name, part) for part in runner.writeback.STAMP_READ]
    held, read = [], 1
    for payload in (fields, [*fields, *parts]):
        gc.collect()
        tracemalloc.start()
        records, _ = client.scroll(_common.COLLECTION, scroll_filter=_common.qdrant_filter(),
                                   limit=points, with_payload=payload)
        # what the page holds once returned (not the peak: at a million points the engine's
        # transient sort of every id outweighs a 10,000-record page)
        held.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        read = max(len(records), 1)
        del records
    return (held[1] - held[0]) / read


def folder_bytes(folder: Path) -> dict:
    """Bytes of the state directory, by part: state.db (and its WAL), shards, outputs, the
    in-process emulator's copies (`server/`), the rest."""
    parts: dict[str, int] = defaultdict(int)
    for path in folder.rglob("*") if folder.is_dir() else []:
        if path.is_file():
            names = path.relative_to(folder).parts
            part = ("emulator copies" if "server" in names else "shards" if "shards" in names
                    else "outputs" if "outputs" in names else
                    "state.db" if path.name.startswith("state.db") else "other")
            parts[part] += path.stat().st_size
    return dict(parts)


def apply(spec: dict) -> dict:
    def run(ws: Workspace) -> dict:
        with ws.locked("apply"):
            outcome = runner.apply.apply(ws)
        job = outcome.runs[_common.JOB]
        plan = job.last
        return {"sent": job.sent, "written": job.written, "matched": plan.matched,
                "up_to_date": plan.up_to_date, "failed": outcome.failed,
                "batches": outcome.submitted}
    return batchrun(spec, run)


def plan(spec: dict) -> dict:
    def run(ws: Workspace) -> dict:
        result = ws.plan()[_common.JOB]
        return {"matched": result.matched, "up_to_date": result.up_to_date,
                "pending": result.pending}
    return batchrun(spec, run)


def report(spec: dict) -> dict:
    """`batchrun report`'s work: a plan pass for the counts, then the page, every point
    streamed from the collection into it."""
    def run(ws: Workspace) -> dict:
        written = runner.report.write_report(ws, Path(spec["out"]))
        result = written.plans[_common.JOB]
        return {"matched": result.matched, "up_to_date": result.up_to_date,
                "bytes": written.bytes, "rows": written.rows[_common.JOB]}
    return batchrun(spec, run)


if __name__ == "__main__":
    _common.child_main({"apply": apply, "plan": plan, "report": report})
