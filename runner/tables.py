"""What the other commands print — stages, status, failures, points, costs, validation —
as readable text and as stable JSON, from results the commands hand in. Nothing here
reads the API: the commands fetch, these functions format.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .pack import SHARDS
from .records import TERMINAL
from .views import job_counts, money

if TYPE_CHECKING:
    from .artifacts import Artifacts
    from .batchfile import FileCheck
    from .collect import Collected
    from .jobs import Job
    from .reconcile import JobPlan
    from .records import BatchRecord
    from .workspace import Workspace


def prepare_json(ws: Workspace, plans: dict[str, JobPlan]) -> dict[str, Any]:
    return {"jobs": {n: job_counts(p) for n, p in plans.items()},
            "shards": [{"job": name, "sha256": s.sha, "requests": s.requests, "bytes": s.bytes,
                        "path": str(_shard_path(ws.ledger_of(name).artifacts, s.sha))}
                       for name, plan in plans.items() for s in plan.shards]}


def prepare_lines(ws: Workspace, plans: dict[str, JobPlan]) -> list[str]:
    shards = [(name, s) for name, plan in plans.items() for s in plan.shards]
    lines = [f"{name}: {_shard_path(ws.ledger_of(name).artifacts, s.sha)} "
             f"({s.requests:,} requests, {s.bytes:,} bytes)" for name, s in shards]
    lines.append(f"Prepared {len(shards)} shard{'s' * (len(shards) != 1)}; "
                 "`batchrun submit` sends them.")
    return lines


def _shard_path(artifacts: Artifacts, sha: str) -> Any:
    return artifacts.path(SHARDS, sha)


def _created(ws: Workspace) -> list[BatchRecord]:
    return [r for r in ws.ledger.batches(open_only=True) if r.batch_id]


def submit_json(ws: Workspace, created: int, adopted: int) -> dict[str, Any]:
    return {"submitted": created, "adopted": adopted,
            "batches": [{"job": r.job, "batch_id": r.batch_id, "status": r.status,
                         "requests": r.requests} for r in _created(ws)]}


def submit_lines(ws: Workspace, created: int, adopted: int) -> list[str]:
    return [f"Submitted {created} batch{'es' * (created != 1)}"
            + (f", adopted {adopted}" if adopted else "")
            + f"; {len(_created(ws))} in flight. `batchrun status` follows them."]


def collect_json(collected: list[Collected], plans: dict[str, JobPlan]) -> dict[str, Any]:
    return {"collected": [{"batch_id": c.batch_id, "job": c.job, "status": c.status,
                           "lines": dict(c.seen)} for c in collected],
            "jobs": {n: job_counts(p) for n, p in plans.items()}}


def collect_lines(plans: dict[str, JobPlan]) -> list[str]:
    return [f"{name}: {plan.cached:,} written, {plan.in_flight:,} in flight, "
            f"{plan.pending:,} not yet sent, {plan.failed:,} failed"
            for name, plan in plans.items()]


def validate_json(jobs: list[Job], checks: dict[str, FileCheck]) -> dict[str, Any]:
    checked: list[dict[str, Any]] = [{"file": job.file, "job": job.name, "ok": True}
                                     for job in jobs]
    checked += [{"file": path, "kind": c.summary.kind, "lines": c.summary.lines, "ok": c.ok,
                 "problems": c.problem_count} for path, c in checks.items()]
    return {"checked": checked,
            "problems": [str(p) for c in checks.values() for p in c.problems]}


def validate_lines(jobs: list[Job], checks: dict[str, FileCheck]) -> list[str]:
    lines = [f"ok: {job.file} (job {job.name})" for job in jobs]
    for path, check in checks.items():
        count = check.summary.lines
        lines.append(f"{'ok' if check.ok else 'FAILED'}: {path} ({check.summary.kind} file, "
                     f"{count:,} line{'s' * (count != 1)})")
    return lines + [str(p) for c in checks.values() for p in c.problems]


def show_json(ws: Workspace, job: Job, *, limit: int) -> dict[str, Any]:
    return {"points": [{"id": i, "inputs": inputs, "result": result}
                       for i, inputs, result in ws.selection(job).peek(limit)]}


def show_lines(ws: Workspace, job: Job, *, limit: int) -> list[str]:
    """A few points with their inputs and the result written for them, side by side."""
    lines = []
    for point_id, inputs, result in ws.selection(job).peek(limit):
        lines.append(f"point {point_id}")
        for name, value in inputs.items():
            lines.append(f"  {name}: {_short(value)}")
        if result is None:
            shown = "(not written yet)"
        elif job.output_vector is not None:
            shown = f"{len(result):,} dimensions: {_short(result[:4], 60)[:-1]}, …]"
        else:
            shown = _short(result, 200)
        lines.append(f"  → {job.writes}: {shown}")
    return lines or [f"{job.name}: no points selected"]


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def status_rows(open_batches: list[tuple[BatchRecord, str, dict]],
                now: float) -> list[dict[str, Any]]:
    """Rows of `status`: each open batch (ledger row, provider status, batch info) with
    its progress, age and time to expiry."""
    out = []
    for row, status, info in open_batches:
        counts = info.get("request_counts") or {}
        created = info.get("created_at") or row.intent_at
        expires = info.get("expires_at")
        out.append({"job": row.job, "batch_id": row.batch_id, "status": status,
                    "done": counts.get("completed", 0) + counts.get("failed", 0),
                    "total": counts.get("total") or row.requests,
                    "age_seconds": int(now - created),
                    "expires_in_seconds": int(expires - now) if expires and status not in
                    TERMINAL else None})   # a finished batch no longer expires
    return out


def status_lines(rows: list[dict[str, Any]], ws: Workspace) -> list[str]:
    if not rows:
        failed = sum(ws.ledger.failure_count(j.name) for j in ws.jobs)
        return ["No batches in flight." + (f" {failed:,} requests failed; `batchrun show JOB "
                                           "--failed` says why." if failed else "")]
    header = ("JOB", "BATCH", "STATE", "DONE/TOTAL", "AGE", "EXPIRES IN")
    table = [header] + [(r["job"], r["batch_id"] or "(submitting)", r["status"],
                         f"{r['done']:,}/{r['total']:,}", _duration(r["age_seconds"]),
                         _duration(r["expires_in_seconds"])) for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in table]


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


def failure_rows(ws: Workspace, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for job in ws.jobs:
        for row in ws.ledger.failures(job.name, limit=limit):
            rows.append({"job": job.name, "key": row.key, "attempts": row.attempts,
                         "reason": row.last_error, "point": row.point,
                         "points": row.points})
    return rows


def failure_lines(ws: Workspace, job: Job, rows: list[dict[str, Any]]) -> list[str]:
    """`show --failed`: one line per failed request, the points waiting for it, and how
    many more there are."""
    total = ws.ledger.failure_count(job.name)
    if not total:
        return [f"{job.name}: no failed requests"]
    lines = [f"{job.name}: {total:,} request{'s' * (total != 1)} failed for good "
             "(`apply --retry-failed` sends them again)"]
    for r in rows:
        more = f" and {r['points'] - 1:,} more" if r["points"] > 1 else ""
        tries = f"{r['attempts']} attempt{'s' * (r['attempts'] != 1)}"
        lines.append(f"  point {r['point']}{more} ({r['key'][:12]}, {tries}): {r['reason']}")
    if total > len(rows):
        lines.append(f"  … {total - len(rows):,} more (--limit N shows more)")
    return lines


def cost_lines(report: dict[str, Any], by: str) -> list[str]:
    header = (by.upper(), "BATCHES", "SENT", "BILLED", "INPUT", "CACHED", "OUTPUT", "REASONING",
              "COST", "AT STANDARD", "SAVED")
    table = [header]
    for name, row in [*report["groups"].items(), ("total", report["total"])]:
        tokens = row["tokens"]
        table.append((name, f"{row['batches']:,}", f"{row['requests']:,}",
                      f"{row['billed_requests']:,}",
                      f"{tokens['input']:,}", f"{tokens['cached_input']:,}",
                      f"{tokens['output']:,}", f"{tokens['reasoning']:,}",
                      money(row["cost_usd"]), money(row["cost_standard_usd"]),
                      money(row["saving_usd"])))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
             for line in table]
    providers = report.get("providers") or {}
    if len(providers) > 1 and by != "provider":
        lines.extend(f"  {name}: {row['batches']:,} batches, {money(row['cost_usd'])}"
                     for name, row in providers.items())
    cache_write = report["total"]["tokens"].get("cache_write", 0)
    if cache_write:
        lines.append(f"{cache_write:,} input tokens were written to a prompt cache (inside "
                     "INPUT, billed at the cache-write price).")
    unpriced = report["total"]["unpriced_batches"]
    lines.append("Costs at Batch API prices, from each line's usage and the price table. SENT: "
                 "requests in batches; BILLED: lines that ran (a cancelled batch bills fewer).")
    if unpriced:
        lines.append(f"{unpriced} batch(es) used a model with no known price: their tokens are "
                     "counted, their cost is not (add prices: in batchrun.yaml).")
    return lines
