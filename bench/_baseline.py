"""The raw baselines: what a competent person would write without batchrun, with the same
filter, fields, page size and write batch size. Run in a child process by
`_common.side("baseline.<name>", ...)`; imports no batchrun code, so its peak RSS is the
baseline's own.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
from qdrant_client import models

import _common
from _common import COLLECTION, FAKE_RESULT, FIELDS, OUTPUT_KEY, SPEC

PAGE = 10_000          # batchrun's default qdrant.scroll_page
WRITE_BATCH = 1_000    # batchrun's default qdrant.write_batch


def scroll(spec: dict) -> dict:
    """The bare scroll: same filter, same payload fields, same page size, no vectors.
    Run `repeat` times (default 1); the fastest run."""
    client, setup = _common.open_collection(spec, stamped=spec.get("current", False))
    flt = _common.qdrant_filter()
    runs = []
    for _ in range(spec.get("repeat", 1)):
        started = time.perf_counter()
        count, offset = 0, None
        while True:
            records, offset = client.scroll(COLLECTION, scroll_filter=flt, limit=PAGE,
                                            offset=offset, with_payload=FIELDS,
                                            with_vectors=False)
            count += len(records)
            if offset is None:
                break
        runs.append(time.perf_counter() - started)
    client.close()
    return {"seconds": min(runs), "setup": setup, "matched": count,
            "stages": {"select": min(runs)}}


def cold(spec: dict) -> dict:
    """Scroll, render the job's two templates with plain Jinja, json.dumps each request
    into one JSONL file, then set_payload a (fake) result on every point."""
    root = Path(spec["root"])
    client, setup = _common.open_collection(spec)
    schema = json.loads(spec["schema"])      # the job's output schema, as a script would hold it
    response_format = {"type": "json_schema", "json_schema": {
        "name": _common.JOB, "strict": True, "schema": schema}}
    stages: dict[str, float] = defaultdict(float)
    started = mark = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[stage] += now - mark
        mark = now

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root),
                             undefined=jinja2.StrictUndefined)
    system = env.get_template(SPEC["prompt"]["system"])
    user = env.get_template(SPEC["prompt"]["user"])
    flt = _common.qdrant_filter()
    ids: list[Any] = []
    offset = None
    with (root / "requests.jsonl").open("w", encoding="utf-8") as out:
        while True:
            records, offset = client.scroll(COLLECTION, scroll_filter=flt, limit=PAGE,
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
        client.batch_update_points(COLLECTION, [
            models.SetPayloadOperation(set_payload=models.SetPayload(
                payload={OUTPUT_KEY: FAKE_RESULT}, points=[i]))
            for i in ids[start:start + WRITE_BATCH]], wait=True)
    lap("write")
    seconds = time.perf_counter() - started
    client.close()
    return {"seconds": seconds, "setup": setup, "matched": len(ids), "stages": dict(stages)}


if __name__ == "__main__":
    _common.child_main({"scroll": scroll, "cold": cold})
