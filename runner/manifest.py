"""The manifest: `.batchrun/manifest.json`, the human-readable record of what was sent
and what it cost.

It is a deterministic view of the ledger (ledger.py), rewritten atomically whenever a
batch changes: per job its fingerprint, per batch its id, shard, requests, status,
timestamps, request counts (the API's and the ones seen in the files), tokens and cost at
batch prices; and, apart, what synchronous calls (`batchrun try`) cost at standard prices,
by day and model. No secrets and no record contents: keys are hashes. `batchrun costs`
reads this file, so a manifest committed or cached on its own can still be reported on.
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import synclog
from .errors import BatchrunError, Location
from .keys import KEY_SCHEME
from .ledger import Ledger
from .pricing import usd

FORMAT = 1
FILENAME = "manifest.json"


def build(ledger: Ledger) -> dict:
    jobs: dict[str, dict] = {}
    for record in ledger.jobs().values():
        jobs[record.name] = {"file": record.file, "fingerprint": record.fingerprint,
                             "endpoint": record.endpoint, "model": record.model,
                             "output_key": record.output_key, "batches": []}
    for row in ledger.batches():
        if not row.shard:
            continue  # a shard being packed right now; not a batch yet
        job = jobs.setdefault(row.job, {"batches": []})
        job["batches"].append(_batch(row))
    # Answers `batchrun try` paid for at standard prices, apart from the batches.
    for name, rows in synclog.spend(ledger).items():
        jobs.setdefault(name, {"batches": []})["synchronous"] = rows
    return {"format": FORMAT, "key_scheme": KEY_SCHEME, "provider": ledger.provider,
            "jobs": jobs}


def _batch(row: Any) -> dict:
    info = row.info
    entry: dict[str, Any] = {
        "batch_id": row.batch_id, "shard": row.shard, "requests": row.requests,
        "bytes": row.bytes, "status": row.status, "endpoint": row.endpoint,
        "model": row.model, "collected": row.collected_at is not None,
    }
    times = {k: info[k] for k in ("created_at", "in_progress_at", "finalizing_at", "completed_at",
                                  "failed_at", "expired_at", "cancelled_at", "expires_at")
             if k in info}
    if times:
        entry["timestamps"] = times
    if "request_counts" in info:
        entry["request_counts"] = info["request_counts"]
    if "errors" in info:
        entry["errors"] = info["errors"]
    if row.seen:
        entry["lines_seen"] = row.seen
    if row.est_input_tokens:
        entry["estimated_input_tokens"] = row.est_input_tokens
    if row.collected_at is not None:
        entry["tokens"] = {"input": row.input_tokens, "cached_input": row.cached_tokens,
                           "output": row.output_tokens, "reasoning": row.reasoning_tokens}
        if row.cache_write_tokens:   # prompt-cache writes, billed apart (Anthropic)
            entry["tokens"]["cache_write"] = row.cache_write_tokens
            entry["tokens"]["cache_write_1h"] = row.cache_write_1h_tokens or 0
        entry["billed_model"] = row.billed_model
        entry["cost_usd"] = usd(Decimal(row.cost_usd)) if row.cost_usd else None
        entry["cost_standard_usd"] = (usd(Decimal(row.cost_standard_usd))
                                      if row.cost_standard_usd else None)
        entry["output_file"] = row.output_file
        entry["error_file"] = row.error_file
    if row.note:
        entry["note"] = row.note
    if row.adopted:
        entry["adopted"] = row.adopted
    return entry


def write(ledger: Ledger) -> Path:
    """Rewrite the manifest if it changed (temp file + rename: never half-written)."""
    path = ledger.dir / FILENAME
    data = (json.dumps(build(ledger), indent=2, sort_keys=True, ensure_ascii=False)
            + "\n").encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return path
    fd, tmp = tempfile.mkstemp(dir=ledger.dir, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def damage(state_dir: Path) -> str | None:
    """Why the manifest in `state_dir` is not JSON at all (damaged, not merely written by
    another version); None when it is, or is absent."""
    path = state_dir / FILENAME
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path} was damaged ({exc})"
    return None if isinstance(data, dict) else f"{path} was damaged (not a JSON object)"


class Unreadable(BatchrunError):
    """The manifest is not a manifest this batchrun can read (damaged, or newer)."""


def read(path: Path) -> dict:
    """The manifest's data; Unreadable (naming the file) when it is damaged or written in a
    format or key scheme this batchrun does not know."""
    where = Location(str(path))
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unreadable(f"not a manifest: {exc}", where=where,
                         hint="the ledger (state.db) beside it is the source of truth; "
                              "`batchrun costs` rebuilds the manifest from it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise Unreadable(f"manifest format {got!r}, expected {FORMAT}", where=where,
                         hint="written by another batchrun version; the ledger beside it is "
                              "the source of truth")
    if data.get("key_scheme") != KEY_SCHEME:
        raise Unreadable(f"keys computed by {data.get('key_scheme')!r}, expected {KEY_SCHEME}",
                         where=where, hint="written by another batchrun version")
    return data
