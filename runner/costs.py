"""`batchrun costs`: tokens and dollars from the manifest, grouped, with the saving.

Only figures the manifest holds are summed: each batch's tokens come from the `usage` of
its collected lines, its cost from the price table at the time it was collected. A batch
whose price was unknown counts its tokens but leaves its cost out, and the report says so
rather than printing a number it did not compute. Synchronous calls (`batchrun try`) are
reported apart, at the standard prices they were paid at.

Every provider keeps its own manifest beside its ledger (provider/config.py): the report
sums the real providers' manifests (OpenAI's, Anthropic's, Azure's) — or, for a project
on the emulator, the emulator's, in every dialect — and totals them per provider too.
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
from .synclog import TOKEN_KINDS  # a manifest counts these, for batches and calls alike

REAL_DIRS = (None, "anthropic", "azure")
EMULATOR_DIRS = ("emulator", "emulator-anthropic", "emulator-azure")


def manifest_file(project: ProjectContext) -> Path:
    return project.state_dir / FILENAME


def manifest_files(project: ProjectContext) -> list[Path]:
    """The manifests a cost report sums: the project's provider's, and those of the other
    providers of its kind (real, or the emulator's dialects) that have one."""
    base = (project.root / project.config.state_dir).resolve()
    subdirs = EMULATOR_DIRS if project.config.provider.name == "emulator" else REAL_DIRS
    others = [base / sub / FILENAME if sub else base / FILENAME for sub in subdirs]
    return [manifest_file(project)] + [p for p in others if p.is_file()
                                       and p != manifest_file(project)]


def project_costs(project: ProjectContext, by: str,
                  warn: Callable[[str], None]) -> dict[str, Any]:
    """The cost report of a project's manifests. A damaged manifest of the project's
    provider is a view of the ledger beside it: rebuilt from it, with a warning, when
    there is one."""
    paths = manifest_files(project)
    try:
        return cost_report(paths, by)
    except manifest.Unreadable as exc:
        if exc.where is None or exc.where.file != str(paths[0]) \
                or not (project.state_dir / LEDGER_FILE).is_file():
            raise
        ledger = Ledger(project.state_dir, project.provider_id)
        try:
            manifest.write(ledger)
        finally:
            ledger.close()
        warn(f"warning: {exc.one_line()}; rebuilt it from the ledger")
        return cost_report(paths, by)


def cost_report(paths: Path | list[Path], by: str) -> dict[str, Any]:
    paths = [paths] if isinstance(paths, Path) else paths
    if not paths[0].is_file() and not any(p.is_file() for p in paths[1:]):
        raise BatchrunError("no manifest yet: nothing has been collected",
                            where=Location(str(paths[0])), hint="run `batchrun apply` first")
    groups: dict[str, dict[str, Any]] = defaultdict(_empty)
    providers: dict[str, dict[str, Any]] = defaultdict(_empty)
    manifests: list[tuple[str, dict]] = []
    for path in paths:
        if not path.is_file():
            continue
        data = manifest.read(path)
        provider = str(data.get("provider") or path.parent.name)
        manifests.append((provider, data))
        for job, entry in sorted(data.get("jobs", {}).items()):
            for batch in entry.get("batches", []):
                if not batch.get("collected"):
                    continue
                _add(groups[_group(by, job, batch, provider)], batch)
                _add(providers[provider], batch)
    rows = {name: _finish(group) for name, group in sorted(groups.items())}
    total = _empty()
    for group in groups.values():
        _merge(total, group)
    return {"by": by, "groups": rows, "total": _finish(total),
            "providers": {name: _finish(group) for name, group in sorted(providers.items())},
            "synchronous": _synchronous(manifests, by)}


def _synchronous(manifests: list[tuple[str, dict]], by: str) -> dict[str, Any]:
    """What `batchrun try` paid at standard prices, grouped the same way, kept apart from
    the batches (there is no saving to show: this is the price the batches halve)."""
    groups: dict[str, dict[str, Any]] = defaultdict(_empty_sync)
    total = _empty_sync()
    for provider, data in manifests:
        for job, entry in sorted(data.get("jobs", {}).items()):
            for row in entry.get("synchronous", []):
                _add_sync(groups[{"job": job, "model": row["model"], "day": row["day"],
                                  "provider": provider}.get(by, "synchronous")], total, row)
    return {"price": "standard",
            "groups": {name: _finish_sync(g) for name, g in sorted(groups.items())},
            "total": _finish_sync(total)}


def _add_sync(group: dict[str, Any], total: dict[str, Any], row: dict) -> None:
    for summed in (group, total):
        for key in ("calls", "billed_calls", "unpriced_calls"):
            summed[key] += row[key]
        summed["cost_usd"] += Decimal(str(row["cost_usd"]))
        for kind in TOKEN_KINDS:   # manifests before 0007_sync_cache_writes lack cache_write
            summed["tokens"][kind] += row["tokens"].get(kind, 0)


def _empty_sync() -> dict[str, Any]:
    return {"calls": 0, "billed_calls": 0, "tokens": dict.fromkeys(TOKEN_KINDS, 0),
            "cost_usd": Decimal(0), "unpriced_calls": 0}


def _finish_sync(group: dict[str, Any]) -> dict[str, Any]:
    return {**group, "cost_usd": float(round(group["cost_usd"], 8))}


def _group(by: str, job: str, batch: dict, provider: str) -> str:
    if by == "provider":
        return provider
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
    for kind in TOKEN_KINDS:   # older manifests lack cache_write
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
