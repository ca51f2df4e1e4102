"""The state directory: a crash-safe ledger of batches and requests, the result cache,
content-addressed artifacts, and the lock that keeps two runs apart.

`.batchrun/state.db` (SQLite, WAL) is the source of truth: every change that matters for
money (a batch about to be created, a batch id, a collected result) is one transaction,
so a kill -9 at any instant leaves either the state before or the state after.
`manifest.json` is the human-readable view of it (see manifest.py). Files under
`artifacts/` are named by the sha256 of their bytes and written temp-file-then-rename:
one that exists is complete.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import BatchrunError, LockHeld

SCHEMA_VERSION = 2   # 2: batches record max_attempts and upload_at; the ledger its provider

# Request states. A key is `queued` while a batch that carries it is not yet collected.
QUEUED, RETRY, FAILED = "queued", "retry", "failed"
# Why a point still waits (Store.waiting_states). All but `failed` mean "not settled yet".
# `prepared`: in a shard another job packed and nobody submitted (`batchrun submit` sends
# it); this run cannot settle it, so it does not wait for it.
ANSWERED, IN_FLIGHT, PREPARED, RETRY_READY, BACKING_OFF, UNSENT, FAILED_FOR_GOOD = (
    "answered", "in_flight", "prepared", "retry_ready", "backing_off", "unsent", "failed")
UNSETTLED = (ANSWERED, IN_FLIGHT, RETRY_READY, BACKING_OFF, UNSENT)
IN_FLIGHT_STATES = (ANSWERED, IN_FLIGHT)            # sent, answer not yet written
WAITING_STATES = (RETRY_READY, BACKING_OFF, UNSENT, PREPARED)   # not sent yet
# Batch statuses at the provider that end a batch.
TERMINAL = ("completed", "failed", "expired", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, file TEXT, fingerprint TEXT, endpoint TEXT, model TEXT,
    output_key TEXT,
    details TEXT);                   -- what shaped its requests at the last apply (JSON)
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    shard TEXT NOT NULL,             -- sha256 of the input file's bytes
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    est_input_tokens INTEGER,        -- estimate, for queue limits and budgets
    max_attempts INTEGER NOT NULL,   -- the job's batch.max_attempts when it was packed
    intent_at REAL NOT NULL,         -- when we decided to create it (before any API call)
    status TEXT NOT NULL,            -- 'submitting' until created, then the provider's status
    upload_at REAL,                  -- when an upload of the shard began (a crash may hide one)
    input_file_id TEXT,
    batch_id TEXT UNIQUE,
    info TEXT NOT NULL DEFAULT '{}', -- provider timestamps, request_counts, errors (JSON)
    collected_at REAL,
    output_file TEXT, error_file TEXT,   -- sha256 of the downloaded files
    seen TEXT,                        -- line counts from the files (JSON)
    input_tokens INTEGER, cached_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER,
    billed_model TEXT,
    cost_usd TEXT, cost_standard_usd TEXT,   -- Decimal as text; NULL when the price is unknown
    note TEXT
);
CREATE INDEX IF NOT EXISTS batches_job ON batches(job);
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    state TEXT NOT NULL,             -- queued | retry | failed (done keys live in results)
    batch_seq INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,   -- failed attempts that count against max_attempts
    deferrals INTEGER NOT NULL DEFAULT 0,  -- re-queues that do not (token limit, expiry)
    not_before REAL NOT NULL DEFAULT 0,
    last_error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_batch ON requests(batch_seq, state);
CREATE INDEX IF NOT EXISTS requests_job ON requests(job, state);
CREATE TABLE IF NOT EXISTS points (    -- points waiting for a result, as the last pass saw them
    job TEXT NOT NULL,
    point TEXT NOT NULL,             -- the point id as JSON (an integer or a UUID string)
    key TEXT NOT NULL,               -- the request key it waits for
    inputs TEXT NOT NULL,            -- the digest of its inputs, for its stamp
    PRIMARY KEY (job, point)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_key ON points(key);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- json | f32 (embeddings, packed float32)
    value BLOB NOT NULL,
    model TEXT, batch_id TEXT, at TEXT
) WITHOUT ROWID;
"""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RequestState:
    state: str
    batch_seq: int | None
    attempts: int
    deferrals: int
    not_before: float
    last_error: str | None


@dataclass(frozen=True)
class Result:
    key: str
    kind: str
    value: Any
    model: str | None
    batch_id: str | None
    at: str | None


class Store:
    """The SQLite ledger. One connection; `transaction()` groups writes atomically."""

    def __init__(self, state_dir: Path, provider: str):
        self.dir = state_dir
        self.provider = provider
        state_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(state_dir / "state.db", isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL+NORMAL: a killed process loses nothing
        self.db.execute("PRAGMA busy_timeout=30000")
        self._depth = 0
        if self._meta("schema") is None:   # a new ledger; readers of a live one never write
            self.db.executescript(_SCHEMA)  # executescript must run outside a transaction
            with self.transaction():
                self._migrate(provider)
        elif int(self._meta("schema") or 0) > SCHEMA_VERSION:
            raise BatchrunError(f"{self.dir} was written by a newer batchrun "
                                f"(state schema {self._meta('schema')})",
                                hint="upgrade batchrun, or use another state_dir")
        elif int(self._meta("schema") or 0) < SCHEMA_VERSION:
            # Schema 1 (development versions) did not record who answered, and its stamps
            # do not say either: its results cannot be told from the emulator's.
            raise BatchrunError(f"{self.dir} was written by a development version of batchrun "
                                f"(state schema {self._meta('schema')}), which did not record "
                                "which provider answered",
                                hint="move the folder away to start over; batches it has in "
                                     "flight finish at the provider and are not adopted")
        recorded = self._meta("provider")
        if recorded != provider and self._empty():
            # Nothing was ever sent or answered here (a plan, say): it may change hands.
            with self.transaction():
                self.db.execute("UPDATE meta SET value=? WHERE name='provider'", (provider,))
            recorded = provider
        if recorded != provider:
            # Results and batches belong to the API that produced them: reusing another's
            # would write its answers (or the emulator's made-up ones) as if they were these.
            raise BatchrunError(
                f"{self.dir} holds the batches and results of {recorded}, but the provider "
                f"is now {provider}",
                hint="give each provider its own state_dir in batchrun.yaml (for example "
                     "state_dir: .batchrun-other), or move this folder away to start over")
        self.artifacts = Artifacts(state_dir / "artifacts")

    def _empty(self) -> bool:
        return not self.db.execute("SELECT 1 FROM batches UNION ALL SELECT 1 FROM results "
                                   "LIMIT 1").fetchone()

    def _meta(self, name: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        except sqlite3.OperationalError:   # no meta table yet
            return None
        return row["value"] if row else None

    def _migrate(self, provider: str) -> None:
        if self._meta("schema") is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self.db.execute("INSERT INTO meta VALUES ('provider', ?)", (provider,))

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

    def record_job(self, name: str, **fields: Any) -> None:
        self.db.execute(
            "INSERT INTO jobs (name, file, fingerprint, endpoint, model, output_key, details) "
            "VALUES (:name, :file, :fingerprint, :endpoint, :model, :output_key, :details) "
            "ON CONFLICT(name) DO UPDATE SET file=excluded.file, fingerprint=excluded.fingerprint, "
            "endpoint=excluded.endpoint, model=excluded.model, output_key=excluded.output_key, "
            "details=excluded.details",
            {"name": name, **fields, "details": json.dumps(fields.get("details"))})

    def jobs(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM jobs ORDER BY name").fetchall()

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

    def failures(self, job: str, limit: int | None = None) -> list[sqlite3.Row]:
        """Requests that failed for good and that points of the job still wait for (as its
        last pass saw them: a request the spec no longer makes is not listed), with their
        last error, the first point waiting and how many wait."""
        sql = ("SELECT q.key, q.attempts, q.last_error, MIN(p.point) AS point, "
               "COUNT(*) AS points FROM requests q JOIN points p ON p.key = q.key "
               "WHERE q.state='failed' AND p.job=? GROUP BY q.key ORDER BY q.key")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.db.execute(sql, (job,)).fetchall()

    def failure_count(self, job: str) -> int:
        row = self.db.execute("SELECT COUNT(DISTINCT q.key) FROM requests q JOIN points p "
                              "ON p.key = q.key WHERE q.state='failed' AND p.job=?",
                              (job,)).fetchone()
        return int(row[0])

    def put_results(self, rows: list[tuple[str, str, bytes, str | None, str | None]]) -> None:
        """Cache answers: (key, kind, value, model, batch id) rows; their requests are done."""
        now = utc_now()
        self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                            [(*row, now) for row in rows])
        self.db.executemany("DELETE FROM requests WHERE key=?", [(row[0],) for row in rows])

    def forget_result(self, key: str) -> None:
        self.db.execute("DELETE FROM results WHERE key=?", (key,))

    def result(self, key: str) -> Result | None:
        row = self.db.execute("SELECT key, kind, value, model, batch_id, at FROM results "
                              "WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return Result(row[0], row[1], decode_value(row[1], row[2]), row[3], row[4], row[5])

    # ---- points waiting for results --------------------------------------------------
    # A pass records every point whose request is not answered yet; when a batch is
    # collected, its answers are written to exactly those points, without reading and
    # rendering the whole selection again.

    def forget_points(self, job: str) -> None:
        self.db.execute("DELETE FROM points WHERE job=?", (job,))

    def expect_points(self, rows: list[tuple[str, str, str, str]]) -> None:
        """(job, point id as JSON, key, inputs digest) rows."""
        self.db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?)", rows)

    def answered_points(self, job: str) -> Iterator[tuple[Any, str, Result]]:
        """(point id, inputs digest, result) for waiting points whose key has a result."""
        cursor = self.db.execute(
            "SELECT p.point, p.key, p.inputs, r.kind, r.value, r.model, r.batch_id, r.at "
            "FROM points p JOIN results r ON r.key = p.key WHERE p.job=? ORDER BY p.point",
            (job,))
        while rows := cursor.fetchmany(1000):
            for row in rows:
                result = Result(row[1], row[3], decode_value(row[3], row[4]), row[5], row[6],
                                row[7])
                yield json.loads(row[0]), row[2], result

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
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitting')",
            (job, shard, endpoint, model, requests, size, est_input_tokens, max_attempts,
             time.time()))
        return int(cur.lastrowid)

    def update_batch(self, seq: int, **fields: Any) -> None:
        if "info" in fields and not isinstance(fields["info"], str):
            fields["info"] = json.dumps(fields["info"], sort_keys=True)
        if "seen" in fields and not isinstance(fields["seen"], str):
            fields["seen"] = json.dumps(fields["seen"], sort_keys=True)
        sets = ", ".join(f"{name}=:{name}" for name in fields)
        self.db.execute(f"UPDATE batches SET {sets} WHERE seq=:seq", {**fields, "seq": seq})

    def batch(self, seq: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM batches WHERE seq=?", (seq,)).fetchone()

    def batches(self, *, job: str | None = None, open_only: bool = False) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM batches WHERE 1=1", []
        if job is not None:
            sql += " AND job=?"
            args.append(job)
        if open_only:
            sql += " AND collected_at IS NULL"
        return self.db.execute(sql + " ORDER BY seq", args).fetchall()

    def in_flight(self) -> list[sqlite3.Row]:
        """Batches created at the provider and not yet collected."""
        return self.db.execute("SELECT * FROM batches WHERE collected_at IS NULL "
                               "AND batch_id IS NOT NULL ORDER BY seq").fetchall()

    def known_batch_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT batch_id FROM batches "
                                              "WHERE batch_id IS NOT NULL")}

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
        inherits: its upload (`input_file_id`, `upload_at`)."""
        sql = ("SELECT seq, shard, input_file_id, upload_at FROM batches "
               "WHERE job=? AND status='submitting'")
        if not uploaded:
            sql += " AND input_file_id IS NULL"
        dropped = self.db.execute(sql, (job,)).fetchall()
        for row in dropped:
            # A key with earlier attempts keeps them, as a retry; a fresh one is forgotten.
            self.db.execute("UPDATE requests SET state='retry', batch_seq=NULL, not_before=0 "
                            "WHERE batch_seq=? AND state='queued' AND (attempts>0 OR deferrals>0)",
                            (row["seq"],))
            self.db.execute("DELETE FROM requests WHERE batch_seq=? AND state='queued'",
                            (row["seq"],))
            self.db.execute("DELETE FROM batches WHERE seq=?", (row["seq"],))
        return {row["shard"]: {"input_file_id": row["input_file_id"],
                               "upload_at": row["upload_at"]} for row in dropped}


def encode_value(kind: str, value: Any) -> bytes:
    if kind == "f32":
        return array.array("f", value).tobytes()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_value(kind: str, blob: bytes) -> Any:
    if kind == "f32":
        vector = array.array("f")
        vector.frombytes(blob)
        return vector.tolist()
    return json.loads(blob)


class Artifacts:
    """Content-addressed files: `<kind>/<sha256>.jsonl`, complete or absent."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, sha: str) -> Path:
        return self.root / kind / f"{sha}.jsonl"

    def exists(self, kind: str, sha: str) -> bool:
        return self.path(kind, sha).is_file()

    def open(self, kind: str) -> "ArtifactWriter":
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")
        return ArtifactWriter(os.fdopen(fd, "wb"), Path(tmp), folder)

    @contextlib.contextmanager
    def writer(self, kind: str) -> Iterator["ArtifactWriter"]:
        writer = self.open(kind)
        try:
            yield writer
        except BaseException:
            writer.discard()
            raise
        writer.commit()

    def put_file(self, kind: str, chunks: Iterator[bytes]) -> str:
        with self.writer(kind) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return writer.sha


class ArtifactWriter:
    """Bytes to a temp file, hashed on the way; `commit` renames it to its hash."""

    def __init__(self, fh: IO[bytes], tmp: Path, folder: Path):
        self.fh, self.tmp, self.folder = fh, tmp, folder
        self.hash = hashlib.sha256()
        self.size = 0
        self.lines = 0
        self.sha = ""

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.hash.update(data)
        self.size += len(data)
        self.lines += data.count(b"\n")

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.sha = self.hash.hexdigest()
        final = self.folder / f"{self.sha}.jsonl"
        if final.exists():
            self.tmp.unlink()
        else:
            os.replace(self.tmp, final)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class StateLock:
    """One mutating batchrun per state directory. The kernel releases an flock when its
    process dies, so a lock left by a killed run is never mistaken for a live one."""

    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "lock"
        self.fh: IO[str] | None = None
        self.previous: dict | None = None

    def acquire(self, timeout: float = 0.0, command: str = "") -> None:
        fh = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder(fh)
                    fh.close()
                    raise LockHeld(
                        f"another batchrun is using {self.path.parent} "
                        f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                        f"{holder.get('command', 'a command')} since {holder.get('since', '?')})",
                        hint="wait for it to finish, or pass --lock-timeout SECONDS to wait") \
                        from None
                time.sleep(0.2)
        self.previous = self._holder(fh) or None  # left by a run that was killed
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": utc_now(), "command": command}))
        fh.flush()
        self.fh = fh

    @staticmethod
    def holder_of(state_dir: Path) -> dict:
        """Who holds (or last held) the lock, as it wrote itself down; {} when unknown."""
        try:
            return json.loads((state_dir / "lock").read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    @staticmethod
    def _holder(fh: IO[str]) -> dict:
        fh.seek(0)
        try:
            return json.loads(fh.read() or "{}")
        except json.JSONDecodeError:
            return {}

    def release(self) -> None:
        if self.fh is not None:
            self.fh.seek(0)
            self.fh.truncate()
            self.fh.flush()
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None
