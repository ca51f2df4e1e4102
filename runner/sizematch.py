"""Exactly once without batch metadata: finding a batch again by its size, its creation
time and, once it has ended, its results' `custom_id`s (Anthropic's Message Batches
carry no metadata, so a batch cannot say which shard it was made from).

The scheme, for providers whose capabilities say `metadata: False`:

1. The intent (shard, its request count) is recorded before any call, as for every
   provider, and the moment the create call begins is recorded before it is made
   (`upload_at`: for these providers the create *is* the upload).
2. An intent whose create began but whose batch id was never recorded (killed in
   between, or the call failed without an answer) has an unknown outcome. Its batch, if
   any, was created after the call began, holds exactly as many requests, and is not in
   the ledger. `adopt()` looks for such a batch: one that has ended is adopted when its
   results' custom_ids are exactly the shard's keys (`ids`); one in progress cannot be
   read yet and is adopted provisionally (`size`), to be verified when it ends.
3. Before any new batch is created, the same look-up runs over the adoption window
   (`provider.adopt_lookback_hours`, 72 h): a state directory that was lost or restored
   from an older cache finds the batches it made. An ended one is verified by its
   custom_ids; one in progress is adopted provisionally.
4. A provisional adoption is verified at collection (`verify_collected`): results whose
   custom_ids are exactly the keys of another shard adopted by size (two of ours of the
   same size, created in the same instant) swap the two rows' batches. Others mean
   someone else's batch of the same size. It is released — remembered as foreign, its
   keys re-queued without counting an attempt — and the shard is sent at the next pass.
   A wrong guess costs time, never a second payment; a right one costs nothing.

What it cannot do: tell two batches of the same size created in the same window apart
before they end (it waits for them to end), or recognise a batch whose shard would be
packed differently now (the data or the spec changed since the state was lost).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .jsonl import read_lines
from .ledger import Ledger
from .pack import SHARDS
from .records import RETRY, SUBMITTING, TERMINAL, BatchRecord

if TYPE_CHECKING:
    from .collect import Collected
    from .provider import BatchView, Downloaded
    from .provider import Provider as BatchAPI

CLOCK_SKEW = 300.0            # seconds of disagreement tolerated between us and the API
OUTPUTS = "outputs"

Say = Callable[[str], None]


class Candidates:
    """Batches of the provider in a window that the ledger does not know, oldest first;
    listed once, on first use."""

    def __init__(self, ledger: Ledger, api: BatchAPI, since: float):
        self.ledger, self.api, self.since = ledger, api, since
        self._pool: list[BatchView] | None = None

    def pool(self) -> list[BatchView]:
        if self._pool is None:
            known = self.ledger.known_batch_ids() | foreign_ids(self.ledger)
            found = [b for b in self.api.recent_batches(self.since) if b.id not in known]
            # Oldest first, as intents are taken (in the order they were created). The
            # list is newest first: reversed, batches created in the same instant keep
            # their order of creation through the stable sort.
            self._pool = sorted(reversed(found), key=lambda b: b.created_at)
        return self._pool

    def take(self, row: BatchRecord, since: float) -> tuple[BatchView, str] | None:
        """The batch that may be `row`'s, and how it was matched (ids, or size: to verify)."""
        pool = self.pool()
        same = [b for b in pool if b.requests == row.requests and b.created_at >= since]
        for batch in [b for b in same if b.status in TERMINAL]:
            pool.remove(batch)
            if results_are_shard(self.ledger, self.api, row, batch):
                return batch, "ids"
            mark_foreign(self.ledger, batch.id)
        waiting = [b for b in same if b.status not in TERMINAL]
        if waiting:
            pool.remove(waiting[0])
            return waiting[0], "size"
        return None


def adopt(ledger: Ledger, api: BatchAPI, jobs: set[str], *, say: Say | None = None) -> int:
    """Attach a batch to every intent of these jobs whose create began and whose outcome
    is unknown (module doc, step 2). Returns how many were adopted."""
    begun = [r for r in ledger.batches(open_only=True)
             if r.status == SUBMITTING and r.upload_at and r.job in jobs]
    if not begun:
        return 0
    candidates = Candidates(ledger, api, min(r.upload_at or 0 for r in begun) - CLOCK_SKEW)
    adopted = 0
    for row in begun:
        match = candidates.take(row, (row.upload_at or 0) - CLOCK_SKEW)
        if match is not None:
            record(ledger, row, *match, say=say)
            adopted += 1
    return adopted


def record(ledger: Ledger, row: BatchRecord, batch: BatchView, how: str, *,
           say: Say | None = None) -> None:
    with ledger.transaction():
        ledger.update_batch(row.seq, batch_id=batch.id, status=batch.status, info=batch.info,
                            adopted=how)
    if say:
        kind = "its results' custom_ids" if how == "ids" else \
            "its size and time (to be verified by its custom_ids when it ends)"
        say(f"{row.job}: adopted batch {batch.id} ({batch.status}) created by an earlier "
            f"run, matched by {kind}")


def results_are_shard(ledger: Ledger, api: BatchAPI, row: BatchRecord, batch: BatchView) -> bool:
    """An ended batch's results answer exactly the keys of the shard of `row`."""
    files = api.download_results(batch, ledger.artifacts, OUTPUTS)
    return _ids(files) == shard_keys(ledger, row.shard)


def shard_keys(ledger: Ledger, shard: str) -> set[str]:
    keys = set()
    with ledger.artifacts.path(SHARDS, shard).open("rb") as fh:
        for raw in fh:
            keys.add(json.loads(raw)["custom_id"])
    return keys


def _ids(files: dict[str, Downloaded]) -> set[str] | None:
    """The custom_ids of a batch's result files; None when one repeats (not a batch of
    ours: each of our requests has one result)."""
    seen: set[str] = set()
    for download in files.values():
        for custom_id in _custom_ids(download.path):
            if custom_id in seen:
                return None
            seen.add(custom_id)
    return seen


def _custom_ids(path) -> Iterator[str]:
    # A damaged line still counts by the custom_id it shows: whose results these are does
    # not depend on whether each one is readable.
    for line in read_lines(path):
        custom_id = line.obj.get("custom_id") if line.obj is not None else line.custom_id
        yield custom_id if isinstance(custom_id, str) else ""


def verify_collected(ledger: Ledger, row: BatchRecord, batch: BatchView,
                     files: dict[str, Downloaded], result: Collected) -> bool:
    """A provisional adoption, now that its batch has ended: ours if its results answer
    exactly the shard's keys; another provisional row's, swapped with it; else released
    (module doc, step 4). True when ours."""
    ids = _ids(files)
    if ids == shard_keys(ledger, row.shard):
        return True
    twin = _twin(ledger, row, ids)
    if twin is not None:
        # Another shard of ours of the same size, adopted the other way round: each row
        # follows the other's batch, and both are collected as theirs. Nothing is re-sent.
        with ledger.transaction():   # through NULL: a batch id is one row's at a time
            ledger.update_batch(row.seq, batch_id=None)
            ledger.update_batch(twin.seq, batch_id=batch.id, status=batch.status,
                                info=batch.info, adopted="ids")
            ledger.update_batch(row.seq, batch_id=twin.batch_id, status=twin.status,
                                info=twin.info)
        result.note = (f"batch {batch.id} answered the shard {twin.shard[:12]} of the same "
                       f"size: swapped with batch {twin.batch_id}, nothing sent again")
        return False
    reason = (f"batch {batch.id} had the size of this shard but answered other requests: "
              "not ours; sent again")
    now = time.time()
    with ledger.transaction():
        mark_foreign(ledger, batch.id, now)
        for key in ledger.unqueued_keys(row.seq):
            ledger.settle(key, row.job, row.seq, state=RETRY, attempts_delta=0,
                          deferrals_delta=1, not_before=0.0, error=reason)
            result.seen["deferred"] += 1
        ledger.db.execute("DELETE FROM batches WHERE seq=?", (row.seq,))
    result.note = reason
    return False


def _twin(ledger: Ledger, row: BatchRecord, ids: set[str] | None) -> BatchRecord | None:
    """The open row, adopted by size like `row`, whose shard `ids` answer exactly."""
    if ids is None:
        return None
    for other in ledger.batches(open_only=True):
        if other.seq != row.seq and other.adopted == "size" and other.requests == len(ids) \
                and other.batch_id and shard_keys(ledger, other.shard) == ids:
            return other
    return None


# The foreign_batches table (migration 0006_providers) belongs to this scheme alone.
def foreign_ids(ledger: Ledger) -> set[str]:
    return {r[0] for r in ledger.db.execute("SELECT batch_id FROM foreign_batches")}


def mark_foreign(ledger: Ledger, batch_id: str, when: float | None = None) -> None:
    ledger.db.execute("INSERT OR IGNORE INTO foreign_batches VALUES (?, ?)",
                      (batch_id, when or time.time()))
