"""The ledger's schema, as named, append-only migrations.

Each migration is applied once, in order, inside one transaction, and recorded by name in
`migrations`; a ledger that lists a migration this batchrun does not know was written by a
newer batchrun and is refused rather than misread. Never edit a migration that has shipped:
add the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import BatchrunError


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(db: sqlite3.Connection) -> None:
        # Statement by statement: executescript() would commit the caller's transaction.
        statement = ""
        for line in sql.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                db.execute(statement)
                statement = ""
        if statement.strip():
            db.execute(statement)
    return run


_LEDGER = """
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
) WITHOUT ROWID
"""

_POINT_FAILURES = """
CREATE TABLE IF NOT EXISTS point_failures (   -- points the last packing pass could not send
    job TEXT NOT NULL,
    point TEXT NOT NULL,             -- the point id as JSON (an integer or a UUID string)
    reason TEXT NOT NULL,            -- where and what: a template line, bad text, a size
    PRIMARY KEY (job, point)
) WITHOUT ROWID
"""

# Exactly once across copies of a project and across a batch list that lags behind
# creation: when a create call began (its outcome is unknown until the batch is seen), and
# the batches of a shard that another copy (or a lost create) made and that were given up
# for the one kept — cancelled if still running, never collected.
_EXACTLY_ONCE = """
ALTER TABLE batches ADD COLUMN create_at REAL;
CREATE TABLE IF NOT EXISTS superseded (
    batch_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    shard TEXT NOT NULL,
    kept TEXT NOT NULL,              -- the batch of the same shard kept instead
    status TEXT NOT NULL,            -- its status when it was given up
    at REAL NOT NULL
) WITHOUT ROWID
"""

# Answers given at once by the synchronous API (`batchrun try`) join the result cache
# beside batch answers, saying so (`via`) — the stamp written from them says it too, and at
# what price; each call's tokens and cost at standard prices are kept apart from the
# batches'. A point waiting for an answer keeps the digest of each field it was rendered
# from, for its stamp, so a later plan can name the fields that changed.
_SYNC_ANSWERS = """
ALTER TABLE results ADD COLUMN via TEXT NOT NULL DEFAULT 'batch';   -- batch | sync
ALTER TABLE points ADD COLUMN fields TEXT;   -- {field: digest} of its inputs (JSON), or NULL
CREATE TABLE IF NOT EXISTS sync_calls (    -- one synchronous call: what it cost
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    key TEXT NOT NULL,               -- the request key (as in a batch line's custom_id)
    at REAL NOT NULL,                -- when the answer arrived (epoch seconds)
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,             -- as the answer reports it (dated), else as sent
    ok INTEGER NOT NULL,             -- a usable, valid answer
    billed INTEGER NOT NULL,         -- the API charged for it
    input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
    cost_usd TEXT                    -- at standard prices (Decimal as text); NULL: unknown
);
CREATE INDEX IF NOT EXISTS sync_calls_job ON sync_calls(job)
"""


def _incremental_vacuum(db: sqlite3.Connection) -> None:
    # Rows come and go by the hundred thousand (requests queued then answered, points
    # waiting then written): let the file give their pages back. The mode takes effect
    # with a VACUUM, which cannot run in a transaction: `migrate` runs it after the commit
    # (`finish_incremental_vacuum`), and again on a later open if it was interrupted.
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")


INCREMENTAL = 2   # PRAGMA auto_vacuum's value for INCREMENTAL

# More than one provider (issue 15): Anthropic bills prompt-cache writes apart, a batch
# may be adopted without metadata (by its size, then its results' custom_ids), and a batch
# found to be someone else's is remembered so it is not examined again.
_PROVIDERS = """
ALTER TABLE batches ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE batches ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE batches ADD COLUMN adopted TEXT;   -- metadata | ids | size (verified at collection)
CREATE TABLE IF NOT EXISTS foreign_batches (
    batch_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID
"""

# `batchrun try` on Anthropic: the prompt-cache writes of each synchronous call, kept as the
# batches keep theirs (its cost always counted them; its token figures did not).
_SYNC_CACHE_WRITES = """
ALTER TABLE sync_calls ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_calls ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0
"""

# The ledger as batchrun 0.1 wrote it ("state schema 2" in its meta table). Ledgers of
# that release hold exactly these tables and count as having applied it.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_ledger", _script(_LEDGER)),
    # Points that cannot be sent (a template failing on their data, text that is not
    # Unicode, a request over the size cap): failed points, listed by `show --failed`.
    Migration("0002_point_failures", _script(_POINT_FAILURES)),
    Migration("0003_sync_answers", _script(_SYNC_ANSWERS)),
    Migration("0004_incremental_vacuum", _incremental_vacuum),
    Migration("0005_exactly_once", _script(_EXACTLY_ONCE)),
    Migration("0006_providers", _script(_PROVIDERS)),
    Migration("0007_sync_cache_writes", _script(_SYNC_CACHE_WRITES)),
)

# The `meta.schema` value of ledgers written before migrations were named, and which
# migration it stands for. Schema 1 (development versions) never recorded which provider
# answered, so its results cannot be told from the emulator's: it is not migrated.
LEGACY_SCHEMA = {"2": "0001_ledger"}


class NewerLedger(Exception):
    """The ledger lists migrations this batchrun does not know."""

    def __init__(self, unknown: list[str]):
        self.unknown = unknown
        super().__init__(", ".join(unknown))


def upgrade(db: sqlite3.Connection, path: Path, legacy: str | None) -> None:
    """Bring the ledger at `path` up to date (`legacy`: its `meta.schema`, from before
    migrations were named), or say why it cannot be."""
    if legacy is not None and legacy not in LEGACY_SCHEMA:
        # Schema 1 (development versions) did not record who answered, and its stamps
        # do not say either: its results cannot be told from the emulator's.
        raise BatchrunError(f"{path.parent} was written by a development version of batchrun "
                            f"(state schema {legacy}), which did not record which "
                            "provider answered",
                            hint="move the folder away to start over; batches it has in "
                                 "flight finish at the provider and are not adopted")
    if legacy is not None and not has_table(db, "migrations"):
        adopt_legacy(db, legacy)
    try:
        migrate(db)
    except NewerLedger as exc:
        raise BatchrunError(f"{path} was written by a newer batchrun (migrations {exc})",
                            hint="upgrade batchrun, or use another state_dir") from None


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every migration the ledger lacks, each in its own transaction; returns the
    names applied. The caller has the connection in autocommit mode. Safe beside another
    process opening the same ledger: each migration is re-checked under the write lock."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
               "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    unknown = sorted(applied_names(db) - {m.name for m in MIGRATIONS})
    if unknown:
        raise NewerLedger(unknown)
    applied = []
    for migration in MIGRATIONS:
        if migration.name in applied_names(db):
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            if migration.name not in applied_names(db):
                migration.apply(db)
                db.execute("INSERT INTO migrations (name) VALUES (?)", (migration.name,))
                applied.append(migration.name)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finish_incremental_vacuum(db)
    return applied


def finish_incremental_vacuum(db: sqlite3.Connection) -> bool:
    """Put a ledger that has applied 0004_incremental_vacuum in that mode (a VACUUM,
    once: seconds for a ledger of a million requests). Skipped, for a later open, while
    another process writes to it (a reader must not wait on a writer). True when done."""
    if "0004_incremental_vacuum" not in applied_names(db):
        return False
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
        return True
    timeout = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute("PRAGMA busy_timeout = 0")
    try:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")
    except sqlite3.OperationalError:   # busy: another process is writing
        return False
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return True


def has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                      (name,)).fetchone() is not None


def applied_names(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM migrations")}


def adopt_legacy(db: sqlite3.Connection, schema: str) -> None:
    """A ledger from before named migrations: record the migration its schema stands for."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
               "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    db.execute("INSERT OR IGNORE INTO migrations (name) VALUES (?)", (LEGACY_SCHEMA[schema],))
    db.execute("COMMIT")
