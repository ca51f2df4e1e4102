"""`batchrun repair`: the ledger rebuilt from the provider, a damaged one kept aside.

The ledger (state.db) is the source of truth, so nothing rebuilds a damaged one silently.
Repair moves it aside — `state.db.damaged-<UTC time>`, with its write-ahead log; nothing
is deleted — copies over the cached answers still readable in it, and adopts every batch
the provider has for the jobs (in flight, or finished within the look-back), as a run on
a fresh CI runner would. The next `apply` then collects those batches instead of paying
for them again, and points whose stamps match are up to date as before.

What it cannot bring back: answers of batches older than the look-back that were cached
but never written to Qdrant (unless salvaged), and the attempt counts of failed requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import ledgerfile, manifest
from .workspace import Workspace


@dataclass
class Repaired:
    ledger: Path
    damaged: str | None = None                   # why the old ledger was put aside
    moved_aside: list[Path] = field(default_factory=list)
    salvaged: int = 0                             # cached answers copied from it
    adopted: int = 0                              # batches adopted from the provider
    open_batches: int = 0                         # batches now in the ledger, not collected


def repair(ws: Workspace, *, lookback_hours: float) -> Repaired:
    """Put a damaged ledger aside and rebuild it from the provider (call under the lock)."""
    path = ws.project.state_dir / ledgerfile.FILENAME
    done = Repaired(path, ledgerfile.damage(path) or ledgerfile.scan(path))
    if done.damaged:
        done.moved_aside = ledgerfile.move_aside(path)
    ledger = ws.ledger   # a new, empty one when the old was moved aside
    if done.moved_aside:
        with ledger.transaction():
            done.salvaged = ledgerfile.salvage_results(done.moved_aside[0], ledger)
    done.adopted = ws.adopt(lookback=lookback_hours * 3600)
    done.open_batches = len(ledger.batches(open_only=True))
    manifest.write(ledger)
    return done


def repaired_json(done: Repaired) -> dict:
    return {"ledger": str(done.ledger), "damaged": done.damaged,
            "moved_aside": [str(p) for p in done.moved_aside], "salvaged_results": done.salvaged,
            "adopted": done.adopted, "open_batches": done.open_batches}


def repaired_lines(done: Repaired) -> list[str]:
    if done.damaged:
        lines = [f"{done.ledger}: {done.damaged}",
                 "moved it aside (nothing deleted): " + ", ".join(p.name for p in done.moved_aside)]
        if done.salvaged:
            lines.append(f"copied {done.salvaged:,} cached answers still readable in it")
    else:
        lines = [f"{done.ledger} is intact: kept as it is"]
    lines.append(f"adopted {done.adopted:,} batch{'es' * (done.adopted != 1)} from the provider; "
                 f"{done.open_batches:,} to collect")
    lines.append("Next: `batchrun apply` collects and writes them; nothing adopted is paid "
                 "for again.")
    return lines
