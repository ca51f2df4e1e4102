"""`batchrun costs`: tokens and dollars from the manifest, grouped, with the saving.

Only figures the manifest holds are summed: each batch's tokens come from the `usage` of
its collected lines, its cost from the price table at the time it was collected. A batch
whose price was unknown counts its tokens but leaves its cost out, and the report says so
rather than printing a number it did not compute. Synchronous calls (`batchrun try`) are
reported apart, at the standard prices they were paid at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import manifest
from .errors import BatchrunError, Location
from .ledger import FILENAME as LEDGER_FILE
from .ledger import Ledger
from .manifest import FILENAME
from .project import ProjectContext

TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")


def manifest_file(project: ProjectContext) -> Path:
    return project.state_dir / FILENAME


def project_costs(project: ProjectContext, by: str,
                  warn: Callable[[str], None]) -> dict[str, Any]:
    """The cost report of a project's manifest. A damaged manifest is a view of the ledger
    beside it: rebuilt from it, with a warning, when there is one."""
    path = manifest_file(project)
    try:
        return cost_report(path, by)
    except manifest.Unreadable as exc:
        if not (project.state_dir / LEDGER_FILE).is_file():
            raise
        ledger = Ledger(project.state_dir, project.provider_id)
        try:
            manifest.write(ledger)
        finally:
            ledger.close()
        warn(f"warning: {exc.one_line()}; rebuilt it from the ledger")
        return cost_report(path, by)


def cost_report(path: Path, by: str) -> dict[str, Any]:
    if not path.is_file():
        raise BatchrunError("no manifest yet: nothing has been collected",
                            where=Location(str(path)), hint="run `batchrun apply` first")
    data = manifest.read(path)
    groups: dict[str, dict[str, Any]] = defaultdict(_empty)
    for job, entry in sorted(data.get("jobs", {}).items()):
        for batch in entry.get("batches", []):
            if not batch.get("collected"):
                continue
            _add(groups[_group(by, job, batch)], batch)
    rows = {name: _finish(group) for name, group in sorted(groups.items())}
    total = _empty()
    for group in groups.values():
        _merge(total, group)
    return {"by": by, "groups": rows, "total": _finish(total),
            "synchronous": _synchronous(data, by)}


def _synchronous(data: dict, by: str) -> dict[str, Any]:
    """What `batchrun try` paid at standard prices, grouped the same way, kept apart from
    the batches (there is no saving to show: this is the price the batches halve)."""
    groups: dict[str, dict[str, Any]] = defaultdict(_empty_sync)
    total = _empty_sync()
    for job, entry in sorted(data.get("jobs", {}).items()):
        for row in entry.get("synchronous", []):
            name = {"job": job, "model": row["model"], "day": row["day"]}.get(by, "synchronous")
            for group in (groups[name], total):
                for key in ("calls", "billed_calls", "unpriced_calls"):
                    group[key] += row[key]
                group["cost_usd"] += Decimal(str(row["cost_usd"]))
                for kind in TOKEN_KINDS:
                    group["tokens"][kind] += row["tokens"][kind]
    return {"price": "standard",
            "groups": {name: _finish_sync(g) for name, g in sorted(groups.items())},
            "total": _finish_sync(total)}


def _empty_sync() -> dict[str, Any]:
    return {"calls": 0, "billed_calls": 0, "tokens": dict.fromkeys(TOKEN_KINDS, 0),
            "cost_usd": Decimal(0), "unpriced_calls": 0}


def _finish_sync(group: dict[str, Any]) -> dict[str, Any]:
    return {**group, "cost_usd": float(round(group["cost_usd"], 8))}


def _group(by: str, job: str, batch: dict) -> str:
    if by == "job":
        return job
    if by == "batch":
        return batch.get("batch_id") or batch["shard"][:16]
    if by == "model":
        return batch.get("billed_model") or batch.get("model") or "unknown"
    stamp = (batch.get("timestamps") or {})
    when = stamp.get("completed_at") or stamp.get("created_at")
    if not when:
        return "unknown"
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d")


def _empty() -> dict[str, Any]:
    return {"batches": 0, "requests": 0, "billed_requests": 0,
            "tokens": dict.fromkeys(TOKEN_KINDS, 0),
            "cost_usd": Decimal(0), "cost_standard_usd": Decimal(0), "unpriced_batches": 0}


def _add(group: dict[str, Any], batch: dict) -> None:
    group["batches"] += 1
    group["requests"] += batch.get("requests", 0)
    # Sent is not paid: a cancelled or expired batch bills only the lines that ran.
    group["billed_requests"] += (batch.get("lines_seen") or {}).get("billed", 0)
    for kind in TOKEN_KINDS:
        group["tokens"][kind] += (batch.get("tokens") or {}).get(kind) or 0
    if batch.get("cost_usd") is None:
        group["unpriced_batches"] += 1
    else:
        group["cost_usd"] += Decimal(str(batch["cost_usd"]))
        group["cost_standard_usd"] += Decimal(str(batch.get("cost_standard_usd") or 0))


def _merge(total: dict[str, Any], group: dict[str, Any]) -> None:
    for key in ("batches", "requests", "billed_requests", "cost_usd", "cost_standard_usd",
                "unpriced_batches"):
        total[key] += group[key]
    for kind in TOKEN_KINDS:
        total["tokens"][kind] += group["tokens"][kind]


def _finish(group: dict[str, Any]) -> dict[str, Any]:
    cost, standard = group["cost_usd"], group["cost_standard_usd"]
    return {**group, "cost_usd": float(round(cost, 8)),
            "cost_standard_usd": float(round(standard, 8)),
            "saving_usd": float(round(standard - cost, 8))}
