"""What the other commands print — stages, status, failures, points, costs, validation —
as readable text and as stable JSON, from results the commands hand in. Nothing here
reads the API: the commands fetch, these functions format.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import failedpoints
from .pack import SHARDS
from .records import TERMINAL
from .views import job_counts, money

if TYPE_CHECKING:
    from .artifacts import Artifacts
    from .collect import Collected
    from .jobs import Job
    from .reconcile import JobPlan
    from .records import BatchRecord
    from .report import Written
    from .retention import Garbage
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
    for name, plan in plans.items():
        if plan.point_failed:
            lines.append(f"{name}: {plan.point_failed:,} points cannot be sent; "
                         f"`batchrun show {name} --failed` says why")
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
                           "lines": dict(c.seen), "problems": c.problems, "note": c.note}
                          for c in collected],
            "jobs": {n: job_counts(p) for n, p in plans.items()}}


def collect_lines(plans: dict[str, JobPlan]) -> list[str]:
    return [f"{name}: {plan.cached:,} written, {plan.in_flight:,} in flight, "
            f"{plan.pending:,} not yet sent, {plan.failed:,} failed"
            for name, plan in plans.items()]


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


def gc_lines(garbage: Garbage, problems: list[str], *, dry_run: bool) -> list[str]:
    """`gc`: what went (or would go), by kind, and what could not."""
    verb = "would free" if dry_run else "freed"
    lines = [f"{'Would remove' if dry_run else 'Removed'} {len(garbage.files):,} file"
             f"{'s' * (len(garbage.files) != 1)} ({size(garbage.file_bytes)}): shards and "
             "output files of collected batches, and leftovers"]
    if garbage.provider_files:
        lines.append(f"{'Would delete' if dry_run else 'Deleted'} {len(garbage.provider_files):,} "
                     f"emulator file{'s' * (len(garbage.provider_files) != 1)} "
                     f"({size(sum(garbage.provider_files.values()))})")
    if garbage.ledger_bytes:
        lines.append(f"state.db: {size(garbage.ledger_bytes)} of free pages "
                     f"{'to give back' if dry_run else 'given back'}")
    lines += [f"not deleted: {problem}" for problem in problems]
    lines.append(f"gc {verb} {size(garbage.total_bytes)}; the result cache and every file of "
                 "a batch not yet collected are kept.")
    return lines


def gc_status_lines(garbage: Garbage) -> list[str]:
    """What gc would free, when it is something: status stays quiet otherwise."""
    if not garbage.total_bytes:
        return []
    return [f"`batchrun gc` would free {size(garbage.total_bytes)} (files of collected "
            "batches, emulator copies, free ledger pages)."]


def size(count: int) -> str:
    """Bytes for a person: 0 B, 812 B, 4.2 KB, 229.0 MB, 1.7 GB."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


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


def point_failure_rows(ws: Workspace, limit: int | None = None) -> list[dict[str, Any]]:
    """Points the last apply (or prepare) of each job could not send, and why."""
    return [{"job": job.name, "point": row.point, "reason": row.reason}
            for job in ws.jobs
            for row in failedpoints.listed(ws.ledger_of(job.name), job.name, limit=limit)]


def failure_lines(ws: Workspace, job: Job, rows: list[dict[str, Any]],
                  points: list[dict[str, Any]] | None = None) -> list[str]:
    """`show --failed`: the points that cannot be sent and why; then one line per failed
    request, the points waiting for it, and how many more there are."""
    lines = _point_failure_lines(ws, job, points or [])
    total = ws.ledger.failure_count(job.name)
    if not total:
        return lines or [f"{job.name}: no failed requests"]
    lines += [f"{job.name}: {total:,} request{'s' * (total != 1)} failed for good "
              "(`apply --retry-failed` sends them again)"]
    for r in rows:
        more = f" and {r['points'] - 1:,} more" if r["points"] > 1 else ""
        tries = f"{r['attempts']} attempt{'s' * (r['attempts'] != 1)}"
        lines.append(f"  point {r['point']}{more} ({r['key'][:12]}, {tries}): {r['reason']}")
    if total > len(rows):
        lines.append(f"  … {total - len(rows):,} more (--limit N shows more)")
    return lines


def _point_failure_lines(ws: Workspace, job: Job, points: list[dict[str, Any]]) -> list[str]:
    total = failedpoints.count(ws.ledger_of(job.name), job.name)
    if not total:
        return []
    lines = [f"{job.name}: {total:,} point{'s' * (total != 1)} cannot be sent (nothing was "
             "paid for them; apply sends each once it renders)"]
    lines += [f"  point {p['point']}: {p['reason']}" for p in points]
    if total > len(points):
        lines.append(f"  … {total - len(points):,} more (--limit N shows more)")
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
    lines += _cache_write_lines(report["total"])
    unpriced = report["total"]["unpriced_batches"]
    lines.append("Costs at Batch API prices, from each line's usage and the price table. SENT: "
                 "requests in batches; BILLED: lines that ran (a cancelled batch bills fewer).")
    if unpriced:
        lines.append(f"{unpriced} batch(es) used a model with no known price: their tokens are "
                     "counted, their cost is not (add prices: in batchrun.yaml).")
    return lines + _sync_cost_lines(report["synchronous"], by)


def _sync_cost_lines(sync: dict[str, Any], by: str) -> list[str]:
    """`batchrun try`'s calls, at standard prices, in a table of their own."""
    if not sync["total"]["calls"]:
        return []
    header = (by.upper(), "CALLS", "BILLED", "INPUT", "CACHED", "OUTPUT", "REASONING", "COST")
    table = [header]
    for name, row in [*sync["groups"].items(), ("total", sync["total"])]:
        tokens = row["tokens"]
        table.append((name, f"{row['calls']:,}", f"{row['billed_calls']:,}",
                      f"{tokens['input']:,}", f"{tokens['cached_input']:,}",
                      f"{tokens['output']:,}", f"{tokens['reasoning']:,}",
                      money(row["cost_usd"])))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["", "Synchronous calls (`batchrun try`), at standard prices — not in the batch "
                 "figures above:"]
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
              for line in table]
    lines += _cache_write_lines(sync["total"])
    if sync["total"]["unpriced_calls"]:
        lines.append(f"{sync['total']['unpriced_calls']} call(s) used a model with no known "
                     "price: their cost is not counted.")
    return lines


def _cache_write_lines(total: dict[str, Any]) -> list[str]:
    cache_write = total["tokens"].get("cache_write", 0)
    return [f"{cache_write:,} input tokens were written to a prompt cache (inside INPUT, "
            "billed at the cache-write price)."] if cache_write else []


def report_json(written: Written, *, with_jobs: bool = False) -> dict[str, Any]:
    """Where the report is; with `with_jobs`, each job's counts as `plan --json` prints
    them and the rows the page's table holds."""
    out: dict[str, Any] = {"path": str(written.path), "bytes": written.bytes}
    if with_jobs:
        out["jobs"] = {name: {**job_counts(plan), "rows": written.rows.get(name, 0)}
                       for name, plan in written.plans.items()}
    return out


def report_lines(written: Written, *, with_jobs: bool = False) -> list[str]:
    lines = []
    if with_jobs:
        for name, plan in written.plans.items():
            counts = job_counts(plan)
            states = [f"{counts[key]:,} {label}" for key, label in _REPORTED if counts[key]]
            unrendered = sum(counts["render_errors"].values())
            if unrendered:
                states.append(f"{unrendered:,} cannot be rendered")
            lines.append(f"{name}: {counts['matched']:,} matched" +
                         "".join(f", {s}" for s in states))
    lines.append(f"Report: {written.path} ({_bytes(written.bytes)}); open it in a browser, "
                 "it needs no server.")
    return lines


_REPORTED = (("up_to_date", "up to date"), ("cached", "to write from the result cache"),
             ("in_flight", "in flight"), ("waiting", "waiting"), ("failed", "failed"),
             ("unready", "waiting for another job"), ("to_submit", "to submit"))


def _bytes(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count / 1024:,.0f} KB"
    return f"{count / 1024 / 1024:,.1f} MB"
