"""Submitting shards exactly once, whatever happens in between.

The ledger records the intent (shard hash, status `submitting`) before any API call.
The batch is created with `metadata: {batchrun_job, batchrun_shard}`, and its id is
recorded at once. A run that died anywhere in between is finished by the next one:
`adopt()` lists recent batches and attaches any it does not know to the matching intent,
or, for a state directory that never saw them (a fresh CI runner, a deleted .batchrun/,
a CI cache restored from an older run), adopts them whole by downloading their input
file. Only then are missing batches created. Creating is never retried blindly: the SDK
sends no idempotency key, so after a failed create we look for the batch before trying
again.

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

from . import crash, sizematch
from .errors import BatchrunError, ProviderError
from .ledger import Ledger
from .pack import SHARDS
from .provider import Submission
from .records import QUEUED, BatchRecord

if TYPE_CHECKING:
    from .provider import BatchView as Batch
    from .provider import Provider as BatchAPI

CLOCK_SKEW = 300.0            # seconds of disagreement tolerated between us and the API
ADOPT_LOOKBACK = 72 * 3600.0  # in flight (24 h window) plus time to collect what finished
CREATE_ATTEMPTS = 5

Say = Callable[[str], None]


def metadata(job: str, shard: str, target: str) -> dict[str, str]:
    """What a batch carries to be found again: the job, its shard, and the data it is for
    (`ProjectContext.target_id`), so another project's job of the same name never matches."""
    return {"batchrun_job": job, "batchrun_shard": shard, "batchrun_target": target}


def input_filename(job: str, shard: str) -> str:
    return f"batchrun-{job}-{shard}.jsonl"


def adopt(ledger: Ledger, api: BatchAPI, targets: Mapping[str, str],
          max_attempts: Mapping[str, int], *, lookback: float = ADOPT_LOOKBACK,
          say: Say | None = None) -> int:
    """Attach batches the provider has and the ledger lacks, for these jobs (name → the
    target id of their data; name → their batch.max_attempts). Returns how many."""
    if not api.caps.metadata:
        return sizematch.adopt(ledger, api, set(targets), say=say)
    submitting = {(r.job, r.shard): r for r in ledger.batches(open_only=True)
                  if r.status == "submitting"}
    since = time.time() - lookback
    if submitting:
        since = min(since, min(r.intent_at for r in submitting.values()) - CLOCK_SKEW)
    known = ledger.known_batch_ids()
    adopted = 0
    for batch in api.recent_batches(since):
        meta = batch.metadata or {}
        job, shard = meta.get("batchrun_job"), meta.get("batchrun_shard")
        if job is None or job not in targets or meta.get("batchrun_target") != targets[job] \
                or not shard or batch.id in known:
            continue
        intent = submitting.pop((job, shard), None)
        with ledger.transaction():
            if intent is not None:
                _record(ledger, intent.seq, batch)
                ledger.update_batch(intent.seq, adopted="metadata")
            else:
                _adopt_unknown(ledger, api, job, shard, batch, max_attempts[job])
        known.add(batch.id)
        adopted += 1
        if say:
            say(f"{job}: adopted batch {batch.id} ({batch.status}) created by an earlier run")
    return adopted


def _adopt_unknown(ledger: Ledger, api: BatchAPI, job: str, shard: str, batch: Batch,
                   max_attempts: int) -> None:
    """A batch of ours the ledger never saw: fetch its input file to learn its keys."""
    if not batch.input_file_id:
        raise ProviderError(f"batch {batch.id} claims shard {shard[:12]} but names no input "
                            "file; not adopting it")
    download = api.download(batch.input_file_id, ledger.artifacts, SHARDS)
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


def _record(ledger: Ledger, seq: int, batch: Batch) -> None:
    ledger.update_batch(seq, batch_id=batch.id, status=batch.status,
                       input_file_id=batch.input_file_id, info=batch.info)


def batch_info(batch: Batch) -> dict:
    """What the manifest keeps of a batch: timestamps, counts, errors (provider/)."""
    return batch.info


def submit_pending(ledger: Ledger, api: BatchAPI, targets: Mapping[str, str], *,
                   lookback: float = ADOPT_LOOKBACK, say: Say | None = None) -> list[int]:
    """Create a batch for every recorded intent of these jobs (name → target id). Call
    `adopt` first. Without batch metadata, an intent first looks for a batch an earlier
    run made of it (sizematch.py, step 3) within `lookback` seconds."""
    created = []
    earlier = sizematch.Candidates(ledger, api, time.time() - lookback) \
        if not api.caps.metadata and lookback > 0 else None
    for row in ledger.batches(open_only=True):
        if row.status != "submitting" or row.job not in targets:
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
    return created


def _submit_one(ledger: Ledger, api: BatchAPI, row: BatchRecord, target: str) -> Batch:
    seq, job, shard = row.seq, row.job, row.shard
    file_id = row.input_file_id
    path = ledger.artifacts.path(SHARDS, shard)
    if not api.caps.uploads:
        # The create call is the upload: record that it begins, so that a run that dies
        # before recording its answer knows to look for the batch (sizematch.py).
        _need_shard(path, job, shard)
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
            _need_shard(path, job, shard)
            with ledger.transaction():
                ledger.update_batch(seq, upload_at=time.time())
        file_id = found or api.upload(path, name)
        crash.point("upload-unrecorded")
        with ledger.transaction():
            ledger.update_batch(seq, input_file_id=file_id)
        crash.point("after-upload")
    submission = Submission(path, row.endpoint, row.requests, row.bytes,
                            metadata(job, shard, target), file_id)
    since = (row.upload_at if not api.caps.uploads and row.upload_at else row.intent_at)
    batch = _create_exactly_once(api, submission, ledger, row, since=since - CLOCK_SKEW)
    crash.point("after-create")
    with ledger.transaction():
        _record(ledger, seq, batch)
    crash.point("after-record")
    return batch


def _need_shard(path: Path, job: str, shard: str) -> None:
    if not path.is_file():
        raise BatchrunError(f"the shard {shard[:12]} of {job} is missing from "
                            f"{path.parent}; it was never sent",
                            hint="run `batchrun apply` (or `batchrun prepare`) to "
                                 "pack its requests again")


def _create_exactly_once(api: BatchAPI, submission: Submission, ledger: Ledger,
                         row: BatchRecord, *, since: float) -> Batch:
    """Create the batch; after a transient failure, look for it before trying again:
    by its metadata, or (without) by its size and time (sizematch.py)."""
    delay = 1.0
    known = ledger.known_batch_ids()
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return api.create_once(submission)
        except ProviderError as exc:
            if not exc.transient or attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(exc.retry_after or delay)
            delay = min(delay * 2, 30.0)
            if not api.caps.metadata:   # did the failed call create it after all?
                found = sizematch.Candidates(ledger, api, since).take(row, since)
                if found is not None:
                    with ledger.transaction():
                        ledger.update_batch(row.seq, adopted=found[1])
                    return found[0]
                continue
            for batch in api.recent_batches(since):
                if batch.id not in known and (batch.metadata or {}) == submission.metadata:
                    return batch
    raise AssertionError("unreachable")
