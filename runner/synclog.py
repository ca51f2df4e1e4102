"""What the synchronous API cost: every call `batchrun try` made, kept in the ledger apart
from batches (the `sync_calls` table of migration 0003_sync_answers).

A synchronous call is paid at standard prices, twice the Batch API's; the manifest and
`batchrun costs` show that spend on its own line, never mixed into the batches' figures.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .ledger import Ledger
from .results import Usage

# The token kinds a manifest counts (costs.py reads batches' by the same names); in the
# order of sync_calls' columns below.
TOKEN_KINDS = ("input", "cached_input", "output", "reasoning", "cache_write")


@dataclass(frozen=True)
class SyncCall:
    job: str
    key: str
    endpoint: str
    model: str               # as the answer reports it (dated), else as sent
    ok: bool                 # a usable, valid answer
    billed: bool
    usage: Usage
    cost_usd: Decimal | None  # at standard prices; None when the price is unknown


def record(ledger: Ledger, calls: list[SyncCall]) -> None:
    """Keep what each call cost (the caller owns the transaction)."""
    now = time.time()
    ledger.db.executemany(
        "INSERT INTO sync_calls (job, key, at, endpoint, model, ok, billed, input_tokens, "
        "cached_tokens, output_tokens, reasoning_tokens, cache_write_tokens, "
        "cache_write_1h_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.job, c.key, now, c.endpoint, c.model, int(c.ok), int(c.billed),
          c.usage.input_tokens, c.usage.cached_tokens, c.usage.output_tokens,
          c.usage.reasoning_tokens, c.usage.cache_write_tokens, c.usage.cache_write_1h_tokens,
          None if c.cost_usd is None else str(c.cost_usd))
         for c in calls])


def spend(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Per job, what its synchronous calls cost, by day and model (for the manifest)."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(_empty)
    cursor = ledger.db.execute(
        "SELECT job, at, model, billed, input_tokens, cached_tokens, output_tokens, "
        "reasoning_tokens, cache_write_tokens, cost_usd FROM sync_calls ORDER BY seq")
    while rows := cursor.fetchmany(1000):
        for row in rows:
            day = datetime.fromtimestamp(row[1], UTC).strftime("%Y-%m-%d")
            group = groups[(row[0], day, row[2])]
            group["calls"] += 1
            group["billed_calls"] += row[3]
            for kind, tokens in zip(TOKEN_KINDS, row[4:9], strict=True):
                group["tokens"][kind] += tokens
            if row[9] is None:
                group["unpriced_calls"] += row[3]   # unpriced and billed: cost unknown
            else:
                group["cost_usd"] += Decimal(row[9])
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (job, day, model), group in sorted(groups.items()):
        out[job].append({"day": day, "model": model, "price": "standard", **group,
                         "cost_usd": float(round(group["cost_usd"], 8))})
    return dict(out)


def _empty() -> dict[str, Any]:
    return {"calls": 0, "billed_calls": 0, "tokens": dict.fromkeys(TOKEN_KINDS, 0),
            "cost_usd": Decimal(0), "unpriced_calls": 0}
