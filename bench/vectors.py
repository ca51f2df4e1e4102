"""vectors: writing N embeddings of 1536 dimensions into a named vector, batchrun vs raw.

batchrun's side is its write-back (`runner.writeback.Writer`: each point's vector into the
named vector and its stamp into the payload, `write_batch` points per call); the raw side
is a bare `update_vectors` loop on the same points in batches of the same size, vectors
only. Each side runs in its own child process on a collection it builds (embedded, in
memory or on disk), and is timed over the writes alone; peak RSS is the child's
`ru_maxrss` at its end. The vectors are generated on the fly, one batch at a time, the
same for both sides. Targets: batchrun ≤ 1.3× the raw loop; peak RSS beyond the raw
side flat from N/10 to N points.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from _common import REPO, Table, arguments, scratch

DIMENSIONS = 1536
BATCH = 1000
TARGET = 1.3
VECTOR = "embedding"


def vectors(ids: list[int]) -> Iterator[tuple[int, list[float]]]:
    for point_id in ids:
        rng = random.Random(point_id)
        values = [rng.gauss(0.0, 1.0) for _ in range(DIMENSIONS)]
        norm = sum(v * v for v in values) ** 0.5
        yield point_id, [v / norm for v in values]


def build(where: str, n: int):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:") if where == "memory" else \
        QdrantClient(path=where)
    client.create_collection("videos", vectors_config={
        VECTOR: models.VectorParams(size=DIMENSIONS, distance=models.Distance.COSINE)})
    for start in range(1, n + 1, BATCH):
        client.upsert("videos", points=[
            models.PointStruct(id=i, vector={}, payload={"title": f"video {i}"})
            for i in range(start, min(start + BATCH, n + 1))])
    return client


def raw_side(client, n: int) -> float:
    from qdrant_client import models

    started = time.perf_counter()
    ids = list(range(1, n + 1))
    for start in range(0, n, BATCH):
        client.update_vectors("videos", points=[
            models.PointVectors(id=i, vector={VECTOR: v})
            for i, v in vectors(ids[start:start + BATCH])])
    return time.perf_counter() - started


def batchrun_side(client, n: int) -> float:
    sys.path.insert(0, str(REPO))
    from runner.jobs import load_job
    from runner.project import load_project
    from runner.records import Result
    from runner.writeback import Writer

    root = Path(sys.argv[-1]).parent
    job = load_job(root / "embed.yaml", load_project(root), root)
    writer = Writer(client, job, write_batch=BATCH, whole_points=True)   # as on the embedded engine
    started = time.perf_counter()
    for point_id, vector in vectors(list(range(1, n + 1))):
        writer.result(point_id, Result(f"key{point_id}", "f32", vector, "text-embedding-3-small",
                                       "batch_bench", "2026-01-01T00:00:00Z"),
                      "m2:inputs", "emulator")
    writer.flush()
    return time.perf_counter() - started


def child(spec: dict) -> dict:
    client = build(spec["where"], spec["points"])
    measure = raw_side if spec["side"] == "raw" else batchrun_side
    seconds = measure(client, spec["points"])
    client.close()
    return {"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(side: str, where: str, points: int, root: Path) -> dict:
    spec = {"side": side, "where": where, "points": points}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec),
                           str(root / "embed.yaml")], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {side} side failed on {where}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


JOB = """name: embed
source: {collection: videos, fields: [title]}
prompt: {user: "{{ title }}"}
model: text-embedding-3-small
endpoint: /v1/embeddings
output: {vector: embedding}
"""


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    args = arguments(__doc__, 20_000, disk_points=dict(
        type=int, default=5_000, help="points for the on-disk run (default 5,000)"))
    with scratch(args.keep) as tmp:
        (tmp / "embed.yaml").write_text(JOB)
        table = Table(f"vectors — {DIMENSIONS}-dimension embeddings into a named vector")
        for where, n in (("memory", args.points), ("disk", args.disk_points)):
            small = min(max(n // 10, BATCH), n)   # the smaller size, never above n
            figures = {}
            for size in sorted({small, n}):
                for side in ("raw", "batchrun"):
                    path = "memory" if where == "memory" else str(tmp / f"q-{side}-{size}")
                    figures[side, size] = run(side, path, size, tmp)
                    table.row(f"{where}: {side} at {size:,} points",
                              figures[side, size]["seconds"], figures[side, size]["rss_mb"])
            table.ratio(f"{where}: batchrun / raw update_vectors at {n:,}",
                        figures["batchrun", n]["seconds"] / figures["raw", n]["seconds"], TARGET)
            if small < n:   # growth needs two sizes
                extra = [figures["batchrun", s]["rss_mb"] - figures["raw", s]["rss_mb"]
                         for s in (small, n)]
                table.ratio(f"{where}: RSS beyond raw, growth {small:,} → {n:,}",
                            extra[1] - extra[0], 25.0, " MB")
        table.print()


if __name__ == "__main__":
    main()
