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

# The ledger as batchrun 0.1 wrote it ("state schema 2" in its meta table). Ledgers of
# that release hold exactly these tables and count as having applied it.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_ledger", _script(_LEDGER)),
    Migration("0006_providers", _script(_PROVIDERS)),
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
    return applied


def applied_names(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM migrations")}


def adopt_legacy(db: sqlite3.Connection, schema: str) -> None:
    """A ledger from before named migrations: record the migration its schema stands for."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
               "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    db.execute("INSERT OR IGNORE INTO migrations (name) VALUES (?)", (LEGACY_SCHEMA[schema],))
    db.execute("COMMIT")
