"""The ledger: a crash-safe record of batches, requests and the result cache.

`.batchrun/state.db` (SQLite, WAL) is the source of truth: every change that matters for
money (a batch about to be created, a batch id, a collected result) is one transaction,
so a kill -9 at any instant leaves either the state before or the state after. The
manifest (manifest.py) is a readable view of it; the shard and output files live beside it
(artifacts.py). Rows come out as typed records, never as raw rows.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import migrations
from .artifacts import Artifacts, private_file
from .diagnose import ensure_dir
from .ledgerfile import FILENAME, LedgerDamaged, check_owner, damage
from .records import (
    SUBMITTING,
    BatchRecord,
    FailureRecord,
    JobRecord,
    RequestState,
    Result,
    decode_value,
    utc_now,
)

__all__ = ["FILENAME", "Ledger"]
WAL_LIMIT = 64 << 20       # bytes the WAL file keeps between transactions
CACHE_KB = 32 << 10        # SQLite page cache

_BATCH_COLUMNS = {f.name for f in fields(BatchRecord)}


class Ledger:
    """The SQLite ledger. One connection; `transaction()` groups writes atomically."""

    def __init__(self, state_dir: Path, provider: str):
        self.dir = state_dir
        self.provider = provider
        ensure_dir(state_dir, "the state directory",
                   fix="set state_dir in batchrun.yaml to a folder batchrun may create")
        path = state_dir / FILENAME
        problem = damage(path)
        if problem is not None:   # before SQLite reads it: say which file, and the way out
            raise LedgerDamaged(path, problem)
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
        # database's own mode.
        private_file(path)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL+NORMAL: a killed process loses nothing
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")  # not the largest collect's
        # Keys are hashes, each new one on a random page: 32 MB (default 2) keep them at hand
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KB}")
        for suffix in ("-wal", "-shm"):   # left 0644 by an older batchrun, perhaps
            if path.with_name(FILENAME + suffix).exists():
                private_file(path.with_name(FILENAME + suffix))
        self._depth = 0
        migrations.upgrade(self.db, self.dir / FILENAME, self.meta("schema"))
        check_owner(self)
        self.db.execute("CREATE TEMP TABLE staged_results (key TEXT, kind TEXT, value BLOB, "
                        "model TEXT, batch_id TEXT)")   # stage_results(); this connection's
        self.artifacts = Artifacts(state_dir / "artifacts")

    def empty(self) -> bool:
        return not self.db.execute("SELECT 1 FROM batches UNION ALL SELECT 1 FROM results "
                                   "LIMIT 1").fetchone()

    def meta(self, name: str) -> str | None:
        if not migrations.has_table(self.db, "meta"):
            return None
        row = self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                        "value=excluded.value", (name, value))

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # ---- jobs ------------------------------------------------------------------------

    def record_job(self, name: str, *, file: str, fingerprint: str, endpoint: str, model: str,
                   output_key: str, details: dict) -> None:
        self.db.execute(
            "INSERT INTO jobs (name, file, fingerprint, endpoint, model, output_key, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET file=excluded.file, "
            "fingerprint=excluded.fingerprint, endpoint=excluded.endpoint, "
            "model=excluded.model, output_key=excluded.output_key, details=excluded.details",
            (name, file, fingerprint, endpoint, model, output_key, json.dumps(details)))

    def jobs(self) -> dict[str, JobRecord]:
        out = {}
        for row in self.db.execute("SELECT * FROM jobs ORDER BY name"):
            data = dict(row)
            data["details"] = json.loads(data["details"]) if data["details"] else None
            out[row["name"]] = JobRecord(**data)
        return out

    # ---- requests and results --------------------------------------------------------

    def request(self, key: str) -> RequestState | None:
        row = self.db.execute("SELECT state, batch_seq, attempts, deferrals, not_before, "
                              "last_error FROM requests WHERE key=?", (key,)).fetchone()
        return RequestState(*row) if row else None

    def queue(self, key: str, job: str, batch_seq: int) -> None:
        self.db.execute(
            "INSERT INTO requests (key, job, state, batch_seq) VALUES (?, ?, 'queued', ?) "
            "ON CONFLICT(key) DO UPDATE SET state='queued', batch_seq=excluded.batch_seq",
            (key, job, batch_seq))

    def settle(self, key: str, job: str, batch_seq: int, *, state: str, attempts_delta: int,
               deferrals_delta: int, not_before: float, error: str | None) -> None:
        self.db.execute(
            "INSERT INTO requests (key, job, state, batch_seq, attempts, deferrals, not_before, "
            "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "state=excluded.state, batch_seq=excluded.batch_seq, "
            "attempts=requests.attempts + ?, deferrals=requests.deferrals + ?, "
            "not_before=excluded.not_before, last_error=excluded.last_error",
            (key, job, state, batch_seq, attempts_delta, deferrals_delta, not_before, error,
             attempts_delta, deferrals_delta))

    def unqueued_keys(self, batch_seq: int) -> list[str]:
        """Keys of a batch still queued (neither answered nor failed in its files)."""
        return [r[0] for r in self.db.execute(
            "SELECT key FROM requests WHERE batch_seq=? AND state='queued'", (batch_seq,))]

    # Backoffs that matter: of requests some point still waits for (a request no point
    # needs any more, after a spec change, is never sent and must not keep apply awake).
    _AWAITED_RETRY = ("state='retry' AND not_before > 0 "
                      "AND key IN (SELECT key FROM points)")

    def next_retry_time(self) -> float | None:
        """When the earliest backing-off retry may be sent (epoch seconds), if any."""
        row = self.db.execute(f"SELECT MIN(not_before) FROM requests WHERE {self._AWAITED_RETRY}"
                              ).fetchone()
        return row[0]

    def backoff_expired(self, now: float) -> bool:
        row = self.db.execute(f"SELECT 1 FROM requests WHERE {self._AWAITED_RETRY} "
                              "AND not_before <= ? LIMIT 1", (now,)).fetchone()
        return row is not None

    # A request is recorded under the job that first sent it; another job with the same
    # request finds it through the points waiting for it.
    _OF_JOB = "(job=? OR key IN (SELECT key FROM points WHERE job=?))"

    def reset_failed(self, job: str) -> int:
        cur = self.db.execute("UPDATE requests SET state='retry', attempts=0, not_before=0 "
                              f"WHERE state='failed' AND {self._OF_JOB}", (job, job))
        return cur.rowcount

    def failures(self, job: str, limit: int | None = None) -> list[FailureRecord]:
        """Requests that failed for good and that points of the job still wait for (as its
        last pass saw them: a request the spec no longer makes is not listed), with their
        last error, the first point waiting and how many wait."""
        sql = ("SELECT q.key, q.attempts, q.last_error, MIN(p.point) AS point, "
               "COUNT(*) AS points FROM requests q JOIN points p ON p.key = q.key "
               "WHERE q.state='failed' AND p.job=? GROUP BY q.key ORDER BY q.key")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [FailureRecord(r["key"], r["attempts"], r["last_error"], json.loads(r["point"]),
                              r["points"]) for r in self.db.execute(sql, (job,))]

    def failure_count(self, job: str) -> int:
        row = self.db.execute("SELECT COUNT(DISTINCT q.key) FROM requests q JOIN points p "
                              "ON p.key = q.key WHERE q.state='failed' AND p.job=?",
                              (job,)).fetchone()
        return int(row[0])

    def put_results(self, rows: list[tuple[str, str, bytes, str | None, str | None]], *,
                    via: str = "batch") -> None:
        """Cache answers: (key, kind, value, model, batch id) rows; their requests are done.
        `via`: how they were answered, `batch` or `sync` (`batchrun try`)."""
        now = utc_now()
        self.db.executemany("INSERT OR REPLACE INTO results (key, kind, value, model, "
                            "batch_id, at, via) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(*row, now, via) for row in rows])
        self.db.executemany("DELETE FROM requests WHERE key=?", [(row[0],) for row in rows])

    def stage_results(self, rows: list[tuple[str, str, bytes, str | None, str | None]]) -> None:
        """A collected batch's answers, in a temporary table until `put_staged_results`
        caches them in key order (each page of the cache touched once, not per answer)."""
        self.db.executemany("INSERT INTO temp.staged_results VALUES (?, ?, ?, ?, ?)", rows)

    def put_staged_results(self) -> None:
        """Cache the staged answers (a key answered twice keeps its last line, as
        put_results would); their requests are done."""
        self.db.execute("INSERT OR REPLACE INTO results (key, kind, value, model, batch_id, at) "
                        "SELECT key, kind, value, model, batch_id, ? FROM staged_results "
                        "ORDER BY key, rowid", (utc_now(),))
        self.db.execute("DELETE FROM requests WHERE key IN (SELECT key FROM staged_results)")
        self.db.execute("DELETE FROM staged_results")

    def forget_result(self, key: str) -> None:
        self.db.execute("DELETE FROM results WHERE key=?", (key,))

    def result(self, key: str) -> Result | None:
        row = self.db.execute("SELECT key, kind, value, model, batch_id, at, via FROM results "
                              "WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return Result(row[0], row[1], decode_value(row[1], row[2]), row[3], row[4], row[5],
                      row[6])

    # ---- points waiting for results --------------------------------------------------
    # A pass records every point whose request is not answered yet; when a batch is
    # collected, its answers are written to exactly those points, without reading and
    # rendering the whole selection again.

    def forget_points(self, job: str) -> None:
        self.db.execute("DELETE FROM points WHERE job=?", (job,))

    def expect_points(self, rows: list[tuple[str, str, str, str, str | None]]) -> None:
        """(job, point id as JSON, key, inputs digest, field digests as JSON) rows."""
        self.db.executemany("INSERT OR REPLACE INTO points (job, point, key, inputs, fields) "
                            "VALUES (?, ?, ?, ?, ?)", rows)

    def answered_points(self, job: str) -> Iterator[tuple[Any, str, dict | None, Result]]:
        """(point id, inputs digest, field digests, result) for waiting points whose key
        has a result."""
        cursor = self.db.execute(
            "SELECT p.point, p.key, p.inputs, r.kind, r.value, r.model, r.batch_id, r.at, "
            "r.via, p.fields FROM points p JOIN results r ON r.key = p.key WHERE p.job=? "
            "ORDER BY p.point", (job,))
        while rows := cursor.fetchmany(1000):
            for row in rows:
                result = Result(row[1], row[3], decode_value(row[3], row[4]), row[5], row[6],
                                row[7], row[8])
                yield json.loads(row[0]), row[2], json.loads(row[9]) if row[9] else None, result

    def forget_answered(self, job: str) -> None:
        self.db.execute("DELETE FROM points WHERE job=? AND key IN (SELECT key FROM results)",
                        (job,))

    def waiting_states(self, job: str, now: float) -> dict[str, int]:
        """Points still waiting, by why: answered (not yet written), in_flight, prepared,
        retry_ready, backing_off, failed, unsent (held back by the queue limit)."""
        rows = self.db.execute(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM results r WHERE r.key = p.key) "
            "THEN 'answered' WHEN q.state = 'queued' AND b.batch_id IS NULL AND b.job != ? "
            "THEN 'prepared' WHEN q.state = 'queued' THEN 'in_flight' "
            "WHEN q.state = 'failed' THEN 'failed' "
            "WHEN q.state = 'retry' AND q.not_before > ? THEN 'backing_off' "
            "WHEN q.state = 'retry' THEN 'retry_ready' ELSE 'unsent' END, COUNT(*) "
            "FROM points p LEFT JOIN requests q ON q.key = p.key "
            "LEFT JOIN batches b ON b.seq = q.batch_seq WHERE p.job=? GROUP BY 1",
            (job, now, job)).fetchall()
        return {r[0]: r[1] for r in rows}

    # ---- batches ---------------------------------------------------------------------

    def new_batch(self, *, job: str, shard: str, endpoint: str, model: str, requests: int,
                  size: int, est_input_tokens: int | None, max_attempts: int) -> int:
        cur = self.db.execute(
            "INSERT INTO batches (job, shard, endpoint, model, requests, bytes, "
            "est_input_tokens, max_attempts, intent_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job, shard, endpoint, model, requests, size, est_input_tokens, max_attempts,
             time.time(), SUBMITTING))
        return int(cur.lastrowid or 0)

    def update_batch(self, seq: int, **changes: Any) -> None:
        unknown = set(changes) - _BATCH_COLUMNS
        if unknown:
            raise TypeError(f"no such batch fields: {', '.join(sorted(unknown))}")
        for name in ("info", "seen"):
            if name in changes and not isinstance(changes[name], str):
                changes[name] = json.dumps(changes[name], sort_keys=True)
        sets = ", ".join(f"{name}=:{name}" for name in changes)
        self.db.execute(f"UPDATE batches SET {sets} WHERE seq=:seq", {**changes, "seq": seq})

    def batch(self, seq: int) -> BatchRecord:
        return BatchRecord.of(self.db.execute("SELECT * FROM batches WHERE seq=?",
                                              (seq,)).fetchone())

    def batches(self, *, job: str | None = None, open_only: bool = False) -> list[BatchRecord]:
        sql, args = "SELECT * FROM batches WHERE 1=1", []
        if job is not None:
            sql += " AND job=?"
            args.append(job)
        if open_only:
            sql += " AND collected_at IS NULL"
        return [BatchRecord.of(r) for r in self.db.execute(sql + " ORDER BY seq", args)]

    def in_flight(self) -> list[BatchRecord]:
        """Batches created at the provider and not yet collected."""
        return [BatchRecord.of(r) for r in self.db.execute(
            "SELECT * FROM batches WHERE collected_at IS NULL AND batch_id IS NOT NULL "
            "ORDER BY seq")]

    def known_batch_ids(self) -> set[str]:
        """Every batch this ledger has decided about: its own, and those it gave up for
        another batch of the same shard (`supersede`)."""
        return {r[0] for r in self.db.execute("SELECT batch_id FROM batches WHERE batch_id "
                                              "IS NOT NULL UNION SELECT batch_id FROM superseded")}

    def supersede(self, batch_id: str, *, job: str, shard: str, kept: str,
                  status: str) -> None:
        """A batch of `shard` given up for `kept` (a duplicate another copy created, or
        one a lost create made): never adopted, collected or paid for through this ledger."""
        self.db.execute("INSERT OR IGNORE INTO superseded VALUES (?, ?, ?, ?, ?, ?)",
                        (batch_id, job, shard, kept, status, time.time()))

    def output_mean(self, job: str, model: str) -> float | None:
        """Output tokens per billed request in the job's collected batches of `model`."""
        row = self.db.execute(
            "SELECT SUM(output_tokens), SUM(json_extract(seen, '$.billed')) FROM batches "
            "WHERE job=? AND model=? AND collected_at IS NOT NULL", (job, model)).fetchone()
        tokens, lines = row[0], row[1]
        return tokens / lines if tokens is not None and lines else None

    def enqueued_tokens(self, model: str) -> int:
        """Estimated input tokens of `model` in the provider's queue: batches created and
        not yet collected. Shards prepared but never submitted take no room (if they are
        sent together later and overfill it, the provider's token_limit_exceeded makes
        them wait their turn)."""
        row = self.db.execute("SELECT COALESCE(SUM(est_input_tokens), 0) FROM batches "
                              "WHERE model=? AND collected_at IS NULL AND batch_id IS NOT NULL",
                              (model,)).fetchone()
        return int(row[0])

    def drop_intents(self, job: str, *, uploaded: bool) -> dict[str, dict[str, Any]]:
        """Forget the job's shards recorded but never created as batches, before a pass
        packs afresh: the spec or the data may have changed since, and what they hold is
        re-packed if still pending. With `uploaded`, also those whose input file was
        uploaded (only after `adopt` has matched every batch the provider has). Their
        keys go back to what they were. Returns, by shard, what a shard packed again
        inherits: its upload (`input_file_id`, `upload_at`) and when a create of it began
        (`create_at`: the batch may exist though no list showed it yet)."""
        sql = ("SELECT seq, shard, input_file_id, upload_at, create_at FROM batches "
               "WHERE job=? AND status=?")
        if not uploaded:
            sql += " AND input_file_id IS NULL"
        dropped = self.db.execute(sql, (job, SUBMITTING)).fetchall()
        for row in dropped:
            # A key with earlier attempts keeps them, as a retry; a fresh one is forgotten.
            self.db.execute("UPDATE requests SET state='retry', batch_seq=NULL, not_before=0 "
                            "WHERE batch_seq=? AND state='queued' AND (attempts>0 OR deferrals>0)",
                            (row["seq"],))
            self.db.execute("DELETE FROM requests WHERE batch_seq=? AND state='queued'",
                            (row["seq"],))
            self.db.execute("DELETE FROM batches WHERE seq=?", (row["seq"],))
        return {row["shard"]: {"input_file_id": row["input_file_id"],
                               "upload_at": row["upload_at"], "create_at": row["create_at"]}
                for row in dropped}
