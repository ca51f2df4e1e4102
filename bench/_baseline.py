"""The raw baselines: what a competent person would write without batchrun, with the same
filter, fields, page size and write batch size. Run in a child process by
`_common.side("baseline.<name>", ...)`; imports no batchrun code, so its peak RSS is the
baseline's own. A spec's `page` overrides the page size (scale.py hands in batchrun's
paging rule, so that both sides make the same number of passes over the embedded engine).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common
import jinja2
from _common import COLLECTION, FAKE_RESULT, FIELDS, OUTPUT_KEY, SPEC
from qdrant_client import models

PAGE = 10_000          # batchrun's default qdrant.scroll_page
WRITE_BATCH = 1_000    # batchrun's default qdrant.write_batch


def scroll(spec: dict) -> dict:
    """The bare scroll: same filter, same payload fields, same page size, no vectors.
    Run `repeat` times (default 1); the fastest run."""
    client, setup = _common.open_collection(spec, stamped=spec.get("current", False))
    setup_rss = _common.peak_rss_mb()
    flt = _common.qdrant_filter()
    page = spec.get("page", PAGE)
    runs, cpus = [], []
    for _ in range(spec.get("repeat", 1)):
        started, cpu_started = time.perf_counter(), time.process_time()
        count, calls, offset = 0, 0, None
        while True:
            records, offset = client.scroll(COLLECTION, scroll_filter=flt, limit=page,
                                            offset=offset, with_payload=FIELDS,
                                            with_vectors=False)
            count += len(records)
            calls += 1
            del records
            if offset is None:
                break
        runs.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    floor = full_pass(client, flt) if spec.get("floor") else None
    client.close()
    return {"seconds": min(runs), "setup": setup, "setup_rss_mb": setup_rss, "matched": count,
            "scroll_calls": calls, "stages": {"select": min(runs)}, "floor_seconds": floor,
            "own_cpu": min(cpus),
            "stages_cpu": {"select": min(cpus)}}


def full_pass(client: Any, flt: models.Filter) -> float:
    """The embedded engine's floor: one filtered count evaluates the filter on every point,
    as every scroll call does before it returns a page (the fastest of three)."""
    runs = []
    for _ in range(3):
        started = time.process_time()
        client.count(COLLECTION, count_filter=flt, exact=True)
        runs.append(time.process_time() - started)
    return min(runs)


def cold(spec: dict) -> dict:
    """Scroll, render the job's two templates with plain Jinja, json.dumps each request
    into one JSONL file, then set_payload a (fake) result on every point."""
    root = Path(spec["root"])
    client, setup = _common.open_collection(spec)
    setup_rss = _common.peak_rss_mb()
    schema = json.loads(spec["schema"])      # the job's output schema, as a script would hold it
    response_format = {"type": "json_schema", "json_schema": {
        "name": _common.JOB, "strict": True, "schema": schema}}
    stages: dict[str, float] = defaultdict(float)
    stages_cpu: dict[str, float] = defaultdict(float)
    started = mark = time.perf_counter()
    cpu_started = cpu_mark = time.process_time()

    def lap(stage: str) -> None:
        nonlocal mark, cpu_mark
        now, cpu_now = time.perf_counter(), time.process_time()
        stages[stage] += now - mark
        stages_cpu[stage] += cpu_now - cpu_mark
        mark, cpu_mark = now, cpu_now

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root),
                             undefined=jinja2.StrictUndefined)
    system = env.get_template(SPEC["prompt"]["system"])
    user = env.get_template(SPEC["prompt"]["user"])
    flt = _common.qdrant_filter()
    page = spec.get("page", PAGE)
    ids: list[Any] = []
    offset = None
    with (root / "requests.jsonl").open("w", encoding="utf-8") as out:
        while True:
            records, offset = client.scroll(COLLECTION, scroll_filter=flt, limit=page,
                                            offset=offset, with_payload=FIELDS,
                                            with_vectors=False)
            lap("select")
            bodies = []
            for record in records:
                context = {**record.payload, "id": record.id, "payload": record.payload}
                bodies.append((record.id, {"model": SPEC["model"], "messages": [
                    {"role": "system", "content": system.render(context)},
                    {"role": "user", "content": user.render(context)}],
                    **SPEC["params"], "response_format": response_format}))
            lap("render")
            out.writelines(json.dumps({"custom_id": str(i), "method": "POST",
                                       "url": SPEC["endpoint"], "body": body},
                                      ensure_ascii=False) + "\n" for i, body in bodies)
            ids.extend(i for i, _ in bodies)
            lap("pack")
            if offset is None:
                break
    lap("pack")
    for start in range(0, len(ids), WRITE_BATCH):
        # `stamp`: a look-alike stamp beside the result, so that the collection holds as
        # much as apply leaves in it (scale.py compares peak RSS)
        client.batch_update_points(COLLECTION, [
            models.SetPayloadOperation(set_payload=models.SetPayload(
                payload={OUTPUT_KEY: FAKE_RESULT, **({_common.STAMP_KEY: _common.lookalike_stamp(
                    i, spec.get("provider", "emulator"))} if spec.get("stamp") else {})},
                points=[i]))
            for i in ids[start:start + WRITE_BATCH]], wait=True)
    lap("write")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    client.close()
    return {"seconds": seconds, "setup": setup, "setup_rss_mb": setup_rss, "matched": len(ids),
            "stages": dict(stages), "own_cpu": cpu, "stages_cpu": dict(stages_cpu)}


WRITE_CALLS = ("set_payload", "batch_update_points", "upsert")


def write_floor(spec: dict) -> dict:
    """Does any qdrant-client call write a batch of payloads with fewer commits? Each write
    call, on `points` points of an on-disk embedded collection, in batches of WRITE_BATCH:
    µs per point and SQLite commits per point (counted on the engine's own connection)."""
    client, _ = _common.open_collection(spec)
    local = client._client.collections[COLLECTION]           # the engine's storage, to count
    commits = [0]
    local.storage.storage.set_trace_callback(
        lambda sql: commits.__setitem__(0, commits[0] + (sql.strip().upper() == "COMMIT")))
    ids = list(range(1, spec["points"] + 1))
    out = {}
    for call in WRITE_CALLS:
        commits[0] = 0
        started = time.perf_counter()
        for start in range(0, len(ids), WRITE_BATCH):
            chunk = ids[start:start + WRITE_BATCH]
            if call == "set_payload":         # one payload for every point of the call
                client.set_payload(COLLECTION, {OUTPUT_KEY: FAKE_RESULT}, points=chunk)
            elif call == "batch_update_points":
                client.batch_update_points(COLLECTION, [models.SetPayloadOperation(
                    set_payload=models.SetPayload(payload={OUTPUT_KEY: FAKE_RESULT},
                                                  points=[i])) for i in chunk])
            else:                             # whole points: payload and vector again
                records = client.retrieve(COLLECTION, chunk, with_payload=True)
                client.upsert(COLLECTION, [models.PointStruct(
                    id=r.id, vector={}, payload={**r.payload, OUTPUT_KEY: FAKE_RESULT})
                    for r in records])
        seconds = time.perf_counter() - started
        out[call] = {"us_per_point": 1e6 * seconds / len(ids), "commits_per_point":
                     commits[0] / len(ids)}
    client.close()
    return {"calls": out, "seconds": 0.0, "setup": 0.0}


if __name__ == "__main__":
    _common.child_main({"scroll": scroll, "cold": cold, "write_floor": write_floor})
