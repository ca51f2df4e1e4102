"""Submitting shards exactly once, whatever happens in between.

The ledger records the intent (shard hash, status `submitting`) before any API call.
The batch is created with `metadata: {batchrun_job, batchrun_shard, batchrun_target}`,
and its id is recorded at once. A run that died anywhere in between is finished by the
next one: `adopt()` lists recent batches and attaches any it does not know to the
matching intent, or, for a state directory that never saw them (a fresh CI runner, a
deleted .batchrun/, a CI cache restored from an older run), adopts them whole by
downloading their input file. Only then are missing batches created.

Creating is never retried blindly: the SDK sends no idempotency key, so the moment a
create begins is recorded (`create_at`), and a create whose answer nobody saw (a kill, a
lost response) is looked for over `provider.list_lag` — a list may show a batch only
some time after it was created — before the shard is created again. Copies of the
project that share no ledger may still both create a shard's batch; every list settles
that by one rule (rivals.py), right after creating and while batches validate.

That is for providers whose batches carry metadata. For those that carry none
(Anthropic), the batch is found by its size, its time and its results' custom_ids
instead: sizematch.py says how, and what that cannot tell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from . import crash, rivals, sizematch
from .errors import BatchrunError, Location, ProviderError
from .ledger import Ledger
from .pack import SHARDS
from .provider import Downloaded, Submission
from .records import QUEUED, SUBMITTING, TERMINAL, BatchRecord

if TYPE_CHECKING:
    from .provider import BatchView as Batch
    from .provider import Provider as BatchAPI

CLOCK_SKEW = 300.0            # seconds of disagreement tolerated between us and the API
CREATE_ATTEMPTS = 5

Say = Callable[[str], None]


def metadata(job: str, shard: str, target: str) -> dict[str, str]:
    """What a batch carries to be found again: the job, its shard, and the data it is for
    (`ProjectContext.target_id`), so another project's job of the same name never matches."""
    return {"batchrun_job": job, "batchrun_shard": shard, "batchrun_target": target}


def input_filename(job: str, shard: str) -> str:
    return f"batchrun-{job}-{shard}.jsonl"


def adopt(ledger: Ledger, api: BatchAPI, targets: Mapping[str, str],
          max_attempts: Mapping[str, int], *, lookback: float,
          since: float | None = None, unknown: bool = True, say: Say | None = None) -> int:
    """Attach batches the provider has and the ledger lacks, for these jobs (name → the
    target id of their data; name → their batch.max_attempts), and settle shards that
    have more than one batch (rivals.py). With `unknown` false, only shards the ledger
    holds are looked at (a check in the middle of a run). Batches are looked for back to
    `since`, else `lookback` seconds (provider.adopt_lookback_hours). Returns how many
    were adopted."""
    if not api.caps.metadata:   # no rivals to tell apart without metadata (sizematch.py)
        return sizematch.adopt(ledger, api, set(targets), say=say) if unknown else 0
    open_rows = ledger.batches(open_only=True)
    submitting = {(r.job, r.shard): r for r in open_rows if r.status == SUBMITTING}
    holding = {r.batch_id: r for r in open_rows if r.batch_id}
    if since is None:
        since = time.time() - lookback
        if submitting:
            since = min(since, min(r.intent_at for r in submitting.values()) - CLOCK_SKEW)
    settled = ledger.known_batch_ids() - set(holding)   # collected, or given up
    groups: dict[tuple[str, str], list[Batch]] = {}
    for batch in api.recent_batches(since):
        meta = batch.metadata or {}
        job, shard = meta.get("batchrun_job"), meta.get("batchrun_shard")
        if job is None or job not in targets or meta.get("batchrun_target") != targets[job] \
                or not shard or batch.id in settled:
            continue
        groups.setdefault((job, shard), []).append(batch)
    adopted = 0
    for (job, shard), batches in groups.items():
        row = next((holding[b.id] for b in batches if b.id in holding),
                   submitting.get((job, shard)))
        if (row is None and not unknown) or all(b.id in holding for b in batches):
            continue
        decision = rivals.settle(batches)
        if decision.kept is None:   # none running or completed: no duplicate to settle
            if unknown:
                adopted += _adopt_each(ledger, api, job, shard, batches, row, max_attempts,
                                       say)
            continue
        adopted += _keep(ledger, api, job, shard, decision, row, max_attempts, say)
    return adopted


def _adopt_each(ledger: Ledger, api: BatchAPI, job: str, shard: str, batches: list[Batch],
                row: BatchRecord | None, max_attempts: Mapping[str, int],
                say: Say | None) -> int:
    """Batches of one shard, none running: attach the first to the intent, adopt the
    others whole (an expired batch holds the answers it finished)."""
    adopted = 0
    intent = row if row is not None and row.batch_id is None else None
    for batch in batches:
        if row is not None and batch.id == row.batch_id:
            continue
        with ledger.transaction():
            if intent is not None:
                _record(ledger, intent.seq, batch)
                ledger.update_batch(intent.seq, adopted="metadata")
                intent = None
            elif not _adopt_unknown(ledger, api, job, shard, batch, max_attempts[job]):
                if say:
                    say(f"{job}: skipped batch {batch.id} ({batch.status}) of an earlier run: "
                        "its input file is gone (deleted by gc, or by hand), so its requests "
                        "cannot be known; any of them not written yet is sent again")
                continue
        adopted += 1
        if say:
            say(f"{job}: adopted batch {batch.id} ({batch.status}) created by an earlier run")
    return adopted


def _keep(ledger: Ledger, api: BatchAPI, job: str, shard: str,
          decision: rivals.Settlement[Batch], row: BatchRecord | None,
          max_attempts: Mapping[str, int], say: Say | None) -> int:
    """Keep one batch of the shard: cancel the others still running (cancel first, then
    record: a crash in between leaves a cancelled batch the next look gives up again),
    and make the ledger's row (or a new one) follow the kept batch."""
    kept = decision.kept
    assert kept is not None
    for batch in decision.cancel:
        try:
            api.cancel(batch.id)
        except ProviderError:
            pass   # it finished meanwhile: paid, and given up all the same
        if say:
            say(f"{job}: cancelled batch {batch.id} ({batch.status}): it duplicates "
                f"{kept.id} for the same shard, created first by another copy of this project")
    mine = row.batch_id if row is not None else None
    with ledger.transaction():
        for batch in decision.given_up:
            ledger.supersede(batch.id, job=job, shard=shard, kept=kept.id, status=batch.status)
        if row is None:
            if not _adopt_unknown(ledger, api, job, shard, kept, max_attempts[job]):
                return 0   # finished, its input file gone: given up (see _adopt_unknown)
        elif mine != kept.id:
            _record(ledger, row.seq, kept)
    if mine == kept.id:
        return 0
    if say:
        said = (f"gave up its batch {mine}: {kept.id} was created first for the same shard "
                "by another copy of this project; following it") if mine else \
            f"adopted batch {kept.id} ({kept.status}) created by an earlier run"
        say(f"{job}: {said}")
    return 1


def settle_duplicates(ledger: Ledger, api: BatchAPI, targets: Mapping[str, str],
                      rows: list[BatchRecord], *, say: Say | None = None) -> int:
    """Settle the shards of `rows` (open batches of these jobs) that another copy of the
    project may also have created: right after creating them, and while they validate
    or after someone else cancelled them. One list, back to the earliest of them.
    Returns how many rows now follow another batch."""
    if not rows:
        return 0
    since = min(min(r.intent_at, r.create_at or r.intent_at) for r in rows) - CLOCK_SKEW
    return adopt(ledger, api, targets, {}, lookback=0.0, since=since, unknown=False, say=say)


def _adopt_unknown(ledger: Ledger, api: BatchAPI, job: str, shard: str, batch: Batch,
                   max_attempts: int) -> bool:
    """A batch of ours the ledger never saw: its shard (kept here, or its input file
    fetched) says its keys. A finished batch whose input file is gone — gc deletes the
    files of collected batches — is given up (remembered, so it is not looked at again):
    False."""
    if not batch.input_file_id:
        raise ProviderError(f"batch {batch.id} claims shard {shard[:12]} but names no input "
                            "file; not adopting it")
    if ledger.artifacts.intact(SHARDS, shard):
        path = ledger.artifacts.path(SHARDS, shard)
        download = Downloaded(shard, path, path.stat().st_size)
    else:
        try:
            download = api.download(batch.input_file_id, ledger.artifacts, SHARDS)
        except ProviderError as exc:
            if exc.status != 404 or batch.status not in TERMINAL:
                raise
            ledger.supersede(batch.id, job=job, shard=shard, kept="",
                             status=f"{batch.status}; input file gone")
            return False
    if download.sha != shard:
        raise ProviderError(f"batch {batch.id} claims shard {shard[:12]} but its input file "
                            f"hashes to {download.sha[:12]}; not adopting it")
    keys, model = [], ""
    with download.path.open("rb") as fh:
        for raw in fh:
            line = json.loads(raw)
            keys.append(line["custom_id"])
            model = model or line.get("body", {}).get("model", "")
    seq = ledger.new_batch(job=job, shard=shard, endpoint=batch.endpoint or "", model=model,
                          requests=len(keys), size=download.size, est_input_tokens=None,
                          max_attempts=max_attempts)
    ledger.update_batch(seq, intent_at=float(batch.created_at), input_file_id=batch.input_file_id,
                        adopted="metadata")
    _record(ledger, seq, batch)
    for key in keys:
        state = ledger.request(key)
        if ledger.result(key) is None and (state is None or state.state != QUEUED):
            ledger.queue(key, job, seq)
    return True


def _record(ledger: Ledger, seq: int, batch: Batch) -> None:
    ledger.update_batch(seq, batch_id=batch.id, status=batch.status,
                       input_file_id=batch.input_file_id, info=batch.info)


def batch_info(batch: Batch) -> dict:
    """What the manifest keeps of a batch: timestamps, counts, errors (provider/)."""
    return batch.info


def submit_pending(ledger: Ledger, api: BatchAPI, targets: Mapping[str, str], *,
                   lookback: float, say: Say | None = None) -> list[int]:
    """Create a batch for every recorded intent of these jobs (name → target id). Call
    `adopt` first. Without batch metadata, an intent first looks for a batch an earlier
    run made of it (sizematch.py, step 3) within `lookback` seconds."""
    created = []
    earlier = sizematch.Candidates(ledger, api, time.time() - lookback) \
        if not api.caps.metadata and lookback > 0 else None
    for row in ledger.batches(open_only=True):
        if row.status != SUBMITTING or row.job not in targets:
            continue
        found = earlier.take(row, earlier.since) if earlier is not None else None
        if found is not None:
            sizematch.record(ledger, row, *found, say=say)
            continue
        batch = _submit_one(ledger, api, row, targets[row.job])
        created.append(row.seq)
        if say:
            say(f"{row.job}: submitted batch {batch.id} "
                   f"({row.requests:,} requests, {row.bytes:,} bytes)")
    if created:
        # Another copy of the project may have created a batch of the same shard meanwhile:
        # of two creates, the later is always followed by this look, which sees both.
        settle_duplicates(ledger, api, targets, [ledger.batch(seq) for seq in created], say=say)
    return created


def _submit_one(ledger: Ledger, api: BatchAPI, row: BatchRecord, target: str) -> Batch:
    seq, job, shard = row.seq, row.job, row.shard
    file_id = row.input_file_id
    path = ledger.artifacts.path(SHARDS, shard)
    if not api.caps.uploads:
        # The create call is the upload: record that it begins, so that a run that dies
        # before recording its answer knows to look for the batch (sizematch.py).
        _check_shard(ledger, job, shard)
        with ledger.transaction():
            ledger.update_batch(seq, upload_at=time.time())
        crash.point("create-begun")
        row = ledger.batch(seq)
    elif not file_id:
        name = input_filename(job, shard)
        # Only an upload that began before (and was never recorded) can be at the provider
        # already; listing the organisation's files for every new shard would be slow.
        found = api.find_file(name, row.bytes) if row.upload_at else None
        if found is None:
            _check_shard(ledger, job, shard)
            with ledger.transaction():
                ledger.update_batch(seq, upload_at=time.time())
        file_id = found or api.upload(path, name)
        crash.point("upload-unrecorded")
        with ledger.transaction():
            ledger.update_batch(seq, input_file_id=file_id)
        crash.point("after-upload")
    submission = Submission(path, row.endpoint, row.requests, row.bytes,
                            metadata(job, shard, target), file_id)
    known = ledger.known_batch_ids()
    batch = None
    if api.caps.metadata:
        since = min(row.intent_at, row.create_at or row.intent_at) - CLOCK_SKEW
        if row.create_at is not None:
            # A create of this shard began before and nobody saw its answer (a kill, a lost
            # response): the batch may exist, and a list lagging behind creation may not
            # show it yet. Look for it until the lag is over before paying for it again.
            batch = find_created(api, submission.metadata, since=since, known=known,
                                 until=row.create_at + api.list_lag)
    else:
        since = (row.upload_at if not api.caps.uploads and row.upload_at else row.intent_at) \
            - CLOCK_SKEW
    if batch is None:
        with ledger.transaction():
            ledger.update_batch(seq, create_at=time.time())
        crash.point("before-create")
        batch = _create_exactly_once(api, submission, ledger, row, since=since, known=known)
        crash.point("after-create")
    with ledger.transaction():
        _record(ledger, seq, batch)
    crash.point("after-record")
    return batch


def _check_shard(ledger: Ledger, job: str, shard: str) -> Path:
    """The shard's file, intact (its bytes hash to its name), or a BatchrunError."""
    path = ledger.artifacts.path(SHARDS, shard)
    if not ledger.artifacts.intact(SHARDS, shard):
        raise _unusable_shard(job, shard, path)
    return path


def _unusable_shard(job: str, shard: str, path: Path) -> BatchrunError:
    """A shard to upload that is missing or damaged (its bytes do not hash to its name).
    A damaged one is moved aside, never sent: the next pass packs it again."""
    again = "run `batchrun apply` (or `batchrun prepare`) to pack its requests again"
    if not path.is_file():
        return BatchrunError(f"the shard {shard[:12]} of {job} is missing from "
                             f"{path.parent}; it was never uploaded", hint=again)
    aside = path.with_name(f"{path.name}.damaged")
    path.replace(aside)
    return BatchrunError(f"the shard {shard[:12]} of {job} is damaged: its bytes do not hash "
                         f"to its name; moved it aside to {aside.name}, nothing was sent",
                         where=Location(str(path)), hint=again)


def find_created(api: BatchAPI, meta: dict[str, str], *, since: float, known: set[str],
                 until: float) -> Batch | None:
    """A batch with this metadata that the ledger does not know, looked for until `until`
    (epoch seconds): a list may show a batch only some time after it was created."""
    while True:
        for batch in api.recent_batches(since):
            if batch.id not in known and (batch.metadata or {}) == meta:
                return batch
        left = until - time.time()
        if left <= 0:
            return None
        time.sleep(min(left, api.poll_interval, 5.0))


def _create_exactly_once(api: BatchAPI, submission: Submission, ledger: Ledger,
                         row: BatchRecord, *, since: float, known: set[str]) -> Batch:
    """Create the batch; after a failure that may have created it after all, look for it
    before trying again: by its metadata (over the time the list may lag), or, without
    metadata, by its size and time (sizematch.py)."""
    delay = 1.0
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        began = time.time()
        try:
            return api.create_once(submission)
        except ProviderError as exc:
            if not exc.transient or attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(exc.retry_after or delay)
            delay = min(delay * 2, 30.0)
            if not api.caps.metadata:   # did the failed call create it after all?
                match = sizematch.Candidates(ledger, api, since).take(row, since)
                if match is not None:
                    with ledger.transaction():
                        ledger.update_batch(row.seq, adopted=match[1])
                    return match[0]
                continue
            # Refused for its rate (429), the create did nothing; a server error or a
            # dropped connection may have created the batch.
            until = began if exc.rejected else began + api.list_lag
            found = find_created(api, submission.metadata, since=since, known=known,
                                 until=until)
            if found is not None:
                return found
    raise AssertionError("unreachable")


def cancel_in_flight(ledger: Ledger, api: BatchAPI, jobs: set[str]) -> tuple[list[str], list[str]]:
    """Cancel every batch of `jobs` in flight: the ids cancelling, and why the others
    could not be (a batch that finished between our last look and now)."""
    cancelled, problems = [], []
    for row in ledger.in_flight():
        if row.job not in jobs or row.status in TERMINAL:
            continue
        try:
            batch = api.cancel(row.created_id)
        except ProviderError as exc:
            problems.append(f"{row.batch_id}: {exc.message}")
            continue
        with ledger.transaction():
            ledger.update_batch(row.seq, status=batch.status)
        cancelled.append(batch.id)
    return cancelled, problems
